//! The sensor vocabulary below both the controller and the safety layer: one reading as the
//! sensor thread delivers it. Each side keeps its own view of the readings (the controller
//! in [`crate::control::readings`], the safety layer in [`crate::safety::sensor_health`]).

use coldspray_hal::{Sensor, SensorError};
use std::time::Duration;

/// One reading from the sensor thread (the core applies the calibration offset before either
/// side sees it).
#[derive(Debug, Clone, PartialEq)]
pub struct SensorSample {
    /// Which sensor.
    pub sensor: Sensor,
    /// When it was read (board clock).
    pub at: Duration,
    /// The value, or why there is none.
    pub value: Result<f64, SensorError>,
}
