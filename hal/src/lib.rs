//! # coldspray-hal
//!
//! The hardware layer of the ColdSpray cold-mist unit.
//!
//! * [`signal`] names every output, input and sensor of the reference hardware (docs/REQUIREMENTS.md §3).
//! * [`port`] defines the three ports a backend implements — [`port::OutputPort`],
//!   [`port::InputPort`] (levels plus timestamped edge events) and [`port::SensorPort`] — and
//!   bundles them with a [`clock::Clock`] into a [`port::Board`].
//! * [`sim`] is the simulated unit: a physics twin of the reservoir, chiller, pump, line,
//!   nozzle and a patch of skin, with fault injection.
//!
//! Backends are interchangeable at start-up: the daemon only ever sees a [`port::Board`].
#![deny(missing_docs)]

pub mod clock;
pub mod drivers;
#[cfg(feature = "tokio")]
pub mod edge_watch;
pub mod emulated;
pub mod error_source;
pub mod linux;
pub mod port;
pub mod reading;
pub mod signal;
pub mod sim;

pub use clock::{Clock, ManualClock, MonotonicClock};
pub use error_source::ErrorSource;
pub use port::{
    Board, EdgeReader, EdgeSink, HalError, InputEdge, InputPort, OutputPort, SensorPort,
};
pub use reading::{ChipIdentity, SensorError, SkinSensorView};
pub use signal::{Input, Output, Sensor};
