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

/// The warmest untreated skin an IR skin sensor's field of view can take in around the
/// treated spot, °C (resting skin: 32–34 °C; the upper end makes the estimate conservative).
pub const SKIN_SURROUND_C: f64 = 34.0;

/// The smallest share of the skin sensor's signal the treated spot is taken to fill.
pub const MIN_SPOT_FILL: f64 = 0.5;

/// The spot temperature behind a skin reading, °C: the IR sensor averages the spot (`fill` of
/// its signal) with untreated skin at up to [`SKIN_SURROUND_C`], so spot =
/// S − (S − reading)/fill (docs/TWIN.md, "Skin sensor"). Never above the reading (warmer-than-
/// skin surroundings are not assumed). `fill` is clamped to [`MIN_SPOT_FILL`]..=1.
pub fn spot_from_reading(reading_c: f64, fill: f64) -> f64 {
    let fill = fill.clamp(MIN_SPOT_FILL, 1.0);
    let est = SKIN_SURROUND_C - (SKIN_SURROUND_C - reading_c) / fill;
    est.min(reading_c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_spot_is_colder_than_the_reading_by_the_unfilled_share() {
        // 90 % fill, reading 12 °C: the spot is 34 − 22/0.9 = 9.56 °C.
        assert!((spot_from_reading(12.0, 0.9) - 9.556).abs() < 0.001);
        assert_eq!(spot_from_reading(12.0, 1.0), 12.0);
        // Above the surround the estimate never exceeds the reading.
        assert_eq!(spot_from_reading(40.0, 0.9), 40.0);
        // A fill below the floor of the range is taken at the floor.
        assert_eq!(spot_from_reading(14.0, 0.1), spot_from_reading(14.0, 0.5));
    }
}
