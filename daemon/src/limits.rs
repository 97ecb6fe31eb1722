//! One home for the ranges the unit accepts from an operator or technician: the setpoint,
//! calibration offsets and the maintenance task times, with the one range check every front
//! end uses (the control core for commands, the D-Bus validation, the configuration and the
//! unit settings file). The ranges of a protocol's fields are in [`crate::protocol::limits`].
//!
//! Sources: docs/REQUIREMENTS.md R4.3 (setpoint 2–15 °C) and R2.2 (the technician's
//! maintenance functions and calibration offsets).

use std::ops::RangeInclusive;
use std::time::Duration;

/// Reservoir setpoint, °C.
pub const SETPOINT_C: RangeInclusive<f64> = 2.0..=15.0;
/// Calibration offset, in the sensor's unit (°C or bar).
pub const CALIBRATION: RangeInclusive<f64> = -5.0..=5.0;
/// Prime time, s.
pub const PRIME_S: RangeInclusive<f64> = 1.0..=60.0;
/// Drain time, s.
pub const DRAIN_S: RangeInclusive<f64> = 1.0..=300.0;
/// Output-test time, s.
pub const TEST_OUTPUT_S: RangeInclusive<f64> = 0.1..=30.0;

/// A number outside its allowed range, or not finite.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{name} = {value} is out of range {min}..={max}")]
pub struct OutOfRange {
    /// Argument name.
    pub name: String,
    /// The value given.
    pub value: f64,
    /// Smallest allowed.
    pub min: f64,
    /// Largest allowed.
    pub max: f64,
}

/// Checks that `value` is finite and inside `range`; returns it.
pub fn check(name: &str, value: f64, range: RangeInclusive<f64>) -> Result<f64, OutOfRange> {
    if value.is_finite() && range.contains(&value) {
        Ok(value)
    } else {
        Err(OutOfRange {
            name: name.to_string(),
            value,
            min: *range.start(),
            max: *range.end(),
        })
    }
}

/// An integer range as a range of `f64`, for [`check`].
pub fn widen<T: Into<f64> + Copy>(range: &RangeInclusive<T>) -> RangeInclusive<f64> {
    (*range.start()).into()..=(*range.end()).into()
}

/// A time configured in seconds as a [`Duration`]; a negative time is zero.
pub fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s.max(0.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_rejects_non_finite_and_outside_and_names_the_range() {
        assert_eq!(check("x", 4.0, SETPOINT_C), Ok(4.0));
        for bad in [f64::NAN, f64::INFINITY, 1.9, 15.1] {
            assert!(check("x", bad, SETPOINT_C).is_err(), "{bad}");
        }
        let e = check("seconds", 0.0, PRIME_S).unwrap_err();
        assert_eq!(e.to_string(), "seconds = 0 is out of range 1..=60");
        assert_eq!(widen(&(20u8..=100)), 20.0..=100.0);
        assert_eq!(secs(-1.0), Duration::ZERO);
    }
}
