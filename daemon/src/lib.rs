//! # coldsprayd
//!
//! The ColdSpray control daemon as a library: the control core and safety layer, and the
//! parts around them (treatment log, D-Bus API, metrics), with thin binaries in `src/bin/`.
//! See `ARCHITECTURE.md` at the repository root for the tour.
#![forbid(unsafe_code)]

pub mod api;
pub mod config;
pub mod control;
pub mod dbus;
pub mod demo;
pub mod handle;
pub mod limits;
pub mod lockstep;
pub mod metrics;
pub mod model;
pub mod protocol;
pub mod report;
pub mod runtime;
pub mod safe_off;
pub mod safety;
pub mod store;
pub mod telemetry;
pub mod unit_settings;
pub mod view;

pub use api::{Command, CommandError, Event, Reply, Snapshot};
pub use handle::ControlHandle;
pub use model::state::UnitState;
