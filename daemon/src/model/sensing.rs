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
/// treated spot, °C (resting skin: 32–34 °C; the upper end makes the estimate conservative:
/// a cooler surround than assumed only makes the estimate colder than the spot).
pub const SKIN_SURROUND_C: f64 = 34.0;

/// The smallest share of the skin sensor's signal the treated spot is taken to fill.
pub const MIN_SPOT_FILL: f64 = 0.5;

/// 0 °C in kelvin.
const ZERO_C_K: f64 = 273.15;

/// The Stefan–Boltzmann radiance of a grey body at `c` °C, in K⁴ (σ and ε cancel).
fn radiance_k4(c: f64) -> f64 {
    (c + ZERO_C_K).powi(4)
}

/// The spot temperature behind a skin reading, °C.
///
/// An IR thermometer's thermopile receives the radiance of everything in its field of view,
/// each part weighted by its share of the view, and the chip turns that one signal into one
/// object temperature through the Stefan–Boltzmann law (the MLX90614's thermopile signal is
/// proportional to T_obj⁴ − T_amb⁴ in kelvin: Melexis MLX90614 datasheet rev. 13, "Principle
/// of operation" and "Field of view"; a scene of several temperatures is reported at the
/// temperature of its mean radiance, not its mean temperature: Vollmer & Möllmann, *Infrared
/// Thermal Imaging*, 2nd ed., Wiley 2017, ch. 2). With the spot filling `fill` of the signal
/// and untreated skin at [`SKIN_SURROUND_C`] the rest, in kelvin:
///
/// reading⁴ = fill·spot⁴ + (1 − fill)·surround⁴, so spot = ⁴√((reading⁴ − (1 − fill)·surround⁴)/fill)
///
/// (docs/TWIN.md, "Skin sensor"). A linear mix of temperatures would read the spot warm near
/// the floor: T⁴ weighs the warm surround more than its share of the view. The surround is
/// taken at its warmest, so a cooler one only makes the estimate colder than the spot (the
/// safe side). Never above the reading (warmer-than-skin surroundings are not assumed); with
/// `fill` 1 (an ideal sensor) it is the reading. `fill` is clamped to
/// [`MIN_SPOT_FILL`]..=1.
pub fn spot_from_reading(reading_c: f64, fill: f64) -> f64 {
    let fill = fill.clamp(MIN_SPOT_FILL, 1.0);
    if fill >= 1.0 {
        return reading_c;
    }
    let spot_k4 = (radiance_k4(reading_c) - (1.0 - fill) * radiance_k4(SKIN_SURROUND_C)) / fill;
    let est = spot_k4.max(0.0).powf(0.25) - ZERO_C_K;
    est.min(reading_c)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the sensor reads: the temperature of the view-weighted mean radiance.
    fn reading(spot_c: f64, surround_c: f64, fill: f64) -> f64 {
        (fill * radiance_k4(spot_c) + (1.0 - fill) * radiance_k4(surround_c)).powf(0.25) - ZERO_C_K
    }

    #[test]
    fn the_spot_is_the_radiance_inverse_of_the_reading() {
        // 90 % fill, reading 12 °C: ⁴√((285.15⁴ − 0.1·307.15⁴)/0.9) − 273.15 = 9.22 °C (the
        // linear mix would say 9.56 °C).
        assert!(
            (spot_from_reading(12.0, 0.9) - 9.217).abs() < 0.001,
            "{}",
            spot_from_reading(12.0, 0.9)
        );
        // Exact for the surround assumed.
        for spot in [0.0, 5.0, 10.0, 20.0] {
            let r = reading(spot, SKIN_SURROUND_C, 0.7);
            assert!((spot_from_reading(r, 0.7) - spot).abs() < 1e-9, "{spot}");
        }
        // An ideal sensor: the estimate is the reading, to the bit.
        for r in [-5.0, 9.99, 12.3, 33.7, 40.0] {
            assert_eq!(spot_from_reading(r, 1.0), r);
        }
        // Above the surround the estimate never exceeds the reading.
        assert_eq!(spot_from_reading(40.0, 0.9), 40.0);
        // A fill below the floor of the range is taken at the floor.
        assert_eq!(spot_from_reading(14.0, 0.1), spot_from_reading(14.0, 0.5));
    }

    #[test]
    fn near_the_floor_the_estimate_never_reads_warmer_than_the_spot() {
        // Every plausible surround (cool room to the warmest resting skin), every fill, spots
        // from freezing to above any floor (5–25 °C): the estimate is at or below the true
        // spot.
        let mut worst_cold: f64 = 0.0;
        for surround_tenths in 200..=340 {
            let surround = f64::from(surround_tenths) / 10.0;
            for fill_pct in 50..=100 {
                let fill = f64::from(fill_pct) / 100.0;
                for spot_tenths in 0..=300 {
                    let spot = f64::from(spot_tenths) / 10.0;
                    let est = spot_from_reading(reading(spot, surround, fill), fill);
                    assert!(
                        est <= spot + 1e-9,
                        "surround {surround} fill {fill} spot {spot}: estimate {est}"
                    );
                    if surround_tenths >= 320 && fill_pct == 90 {
                        worst_cold = worst_cold.max(spot - est);
                    }
                }
            }
        }
        // The price, for the reference sensor (fill 0.9) over resting skin at 32–34 °C: the
        // estimate is at most a third of a kelvin cold (the surround's 10 % share of a 2 K
        // error, weighted by (T_surround/T_spot)³ and divided by the fill).
        assert!(worst_cold > 0.2 && worst_cold < 0.35, "{worst_cold}");
    }
}
