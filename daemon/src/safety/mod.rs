//! The safety layer: interlocks, alarms and the output gate. It is separate from the
//! controller and always wins: the controller proposes output levels, the gate disposes.

pub mod alarms;
pub mod config;
pub mod gate;
pub mod interlocks;
pub mod sensor_health;
pub mod skin_estimate;

pub use config::SafetyConfig;
