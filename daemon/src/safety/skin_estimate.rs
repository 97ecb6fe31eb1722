//! The safety layer's own estimate of the treated spot's temperature, for the skin-floor
//! interlock (docs/REQUIREMENTS.md §4.8). The IR skin sensor reads warm near the floor for two
//! reasons (docs/TWIN.md, "Skin sensor"): its field of view takes in warmer untreated skin
//! around the spot, and its filter lags a falling surface. The estimate undoes both from the
//! raw samples with the safety layer's own parameters (`[safety] skin_sensor_fill`,
//! `skin_sensor_settle_s`); it shares no state with the controller's floor guard, only the
//! field-of-view inversion (radiance, T⁴) in [`crate::model::sensing`].
//!
//! * Lag: the filter is first order with τ = settling/3, so the input behind a reading y is
//!   y + τ·dy/dt. Only a *falling* reading is corrected (a rising one is left as read, which is
//!   the cold, safe side), the slope is smoothed over [`RATE_TAU_S`] and the correction is at
//!   most [`MAX_LAG_CORRECTION_C`]: a step in the reading (a calibration change, noise) must not
//!   turn into an unbounded estimate.
//! * Field of view: [`spot_from_reading`] of the lag-corrected reading.

use crate::model::sensing::spot_from_reading;
use coldspray_hal::SkinSensorView;
use std::time::Duration;

/// Time constant of the smoothing of the reading's slope, s.
const RATE_TAU_S: f64 = 1.0;

/// Largest lag correction, °C.
pub const MAX_LAG_CORRECTION_C: f64 = 2.0;

/// Samples further apart than this restart the slope (a gap is no slope), s.
const RATE_GAP_S: f64 = 1.0;

/// The slope of the skin reading and the sensor's parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct SpotEstimate {
    fill: f64,
    tau_s: f64,
    last: Option<(Duration, f64)>,
    /// Smoothed slope of the reading, °C/s.
    rate: f64,
}

impl SpotEstimate {
    /// An estimator for a sensor that sees the spot as `view` says: the spot fills
    /// `spot_fill` of its signal, its filter settles to 95 % in `settle_s`.
    pub fn new(view: SkinSensorView) -> Self {
        Self {
            fill: view.spot_fill,
            tau_s: view.settle_s.max(0.0) / 3.0,
            last: None,
            rate: 0.0,
        }
    }

    /// One valid skin reading at `at`.
    pub fn observe(&mut self, at: Duration, reading_c: f64) {
        if let Some((t, y)) = self.last {
            let dt = at.saturating_sub(t).as_secs_f64();
            if dt > RATE_GAP_S {
                self.rate = 0.0;
            } else if dt > 0.0 {
                let raw = (reading_c - y) / dt;
                self.rate += (raw - self.rate) * (1.0 - (-dt / RATE_TAU_S).exp());
            }
        }
        self.last = Some((at, reading_c));
    }

    /// The lag correction now, °C (zero or negative).
    pub fn lag_correction(&self) -> f64 {
        (self.tau_s * self.rate.min(0.0)).max(-MAX_LAG_CORRECTION_C)
    }

    /// The estimated spot temperature behind `reading_c` (the latest fresh reading), °C.
    pub fn spot(&self, reading_c: f64) -> f64 {
        spot_from_reading(reading_c + self.lag_correction(), self.fill).min(reading_c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    fn view(spot_fill: f64, settle_s: f64) -> SkinSensorView {
        SkinSensorView {
            spot_fill,
            settle_s,
        }
    }

    #[test]
    fn a_steady_reading_is_corrected_for_the_field_of_view_only() {
        let mut e = SpotEstimate::new(view(0.9, 0.3));
        for i in 0..20 {
            e.observe(ms(i * 100), 12.0);
        }
        assert_eq!(e.lag_correction(), 0.0);
        assert!((e.spot(12.0) - 9.217).abs() < 0.001, "{}", e.spot(12.0));
    }

    #[test]
    fn a_falling_reading_is_read_ahead_by_the_filter_time_constant() {
        // Falling 3 °C/s through a 300 ms filter (τ 0.1 s): 0.3 K ahead once the slope settles
        // (6 s: six smoothing time constants).
        let mut e = SpotEstimate::new(view(1.0, 0.3));
        let mut y = 30.0;
        for i in 0..60 {
            e.observe(ms(i * 100), y);
            y -= 0.3;
        }
        assert!(
            (e.lag_correction() + 0.3).abs() < 0.01,
            "{}",
            e.lag_correction()
        );
        assert!((e.spot(14.0) - 13.7).abs() < 0.01);
    }

    #[test]
    fn an_ideal_sensor_is_taken_as_it_reads() {
        // The legacy twin's sensor: no field of view to undo, no lag to read ahead of.
        let mut e = SpotEstimate::new(SkinSensorView::IDEAL);
        for i in 0..60 {
            e.observe(ms(i * 100), 30.0 - 0.3 * i as f64);
        }
        assert_eq!(e.lag_correction(), 0.0);
        assert_eq!(e.spot(12.3), 12.3);
    }

    #[test]
    fn a_step_is_bounded_and_a_rise_is_not_corrected() {
        let mut e = SpotEstimate::new(view(1.0, 2.0));
        e.observe(ms(0), 20.0);
        e.observe(ms(100), 5.0);
        assert_eq!(e.lag_correction(), -MAX_LAG_CORRECTION_C);
        let mut e = SpotEstimate::new(view(1.0, 2.0));
        e.observe(ms(0), 5.0);
        e.observe(ms(100), 20.0);
        assert_eq!(e.spot(20.0), 20.0);
        // A gap restarts the slope.
        e.observe(ms(2000), 10.0);
        assert_eq!(e.lag_correction(), 0.0);
    }
}
