//! The control core: sensor tracking, the chiller thermostat, sessions and the state machine
//! that ties them to the safety layer.

pub mod core;
pub mod readings;
pub mod running_session;
pub mod settings;
pub mod thermostat;

pub use self::core::{Core, CoreConfig, StepOutput};
pub use crate::model::sensing::SensorSample;
