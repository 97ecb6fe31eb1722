//! The safety layer's limits: the `[safety]` section of the configuration, with defaults.
//! They live with the safety layer so that nothing on the safety path depends on the
//! controller (docs/REQUIREMENTS.md §4.8, R4.14).

use coldspray_hal::drivers::mlx90614;
use coldspray_hal::SkinSensorView;
use serde::{Deserialize, Serialize};

/// `[safety]`: interlock limits (docs/REQUIREMENTS.md §4.8).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SafetyConfig {
    /// A sensor with no valid reading for this long is stale, s.
    pub stale_after_s: f64,
    /// A sensor whose reading has not changed at all for this long is stuck, s (0 disables:
    /// only for test rigs whose sensors are constants).
    pub stuck_after_s: f64,
    /// Consecutive out-of-range readings before a sensor is implausible.
    pub implausible_count: u32,
    /// Pump on with the valve open and no flow pulse for this long: dry run, s.
    pub dry_run_s: f64,
    /// Line pressure above this with the valve open: over-pressure, bar.
    pub over_pressure_bar: f64,
    /// Line pressure above this at any time: over-pressure, bar.
    pub absolute_max_pressure_bar: f64,
    /// Pressure must exceed `over_pressure_bar` this long before tripping, s.
    pub over_pressure_s: f64,
    /// Line pressure below this while pumping with flow: under-pressure (leak), bar.
    pub under_pressure_bar: f64,
    /// Grace after the valve opens before under-pressure is judged, s.
    pub under_pressure_s: f64,
    /// Heatsink above this: over-temperature, °C.
    pub heatsink_max_c: f64,
    /// Maximum continuous spray, s (default 120).
    pub max_spray_s: f64,
    /// Audio pause length, s (IEC 60601-1-8: typically 120).
    pub audio_pause_s: f64,
    /// Starting: time allowed for every sensor to identify and read, s.
    pub self_test_timeout_s: f64,
    /// Share of the skin sensor's signal from the treated spot, for the skin-floor
    /// interlock's own spot estimate (1.0 = the reading is the spot). Unset: the sensor the
    /// unit has ([`SafetyConfig::with_skin_sensor`]). Kept apart from `[session]
    /// skin_sensor_fill` on purpose.
    pub skin_sensor_fill: Option<f64>,
    /// The skin sensor filter's 95 % settling time, s, for the interlock's lag correction.
    /// Unset: the sensor the unit has ([`SafetyConfig::with_skin_sensor`]).
    pub skin_sensor_settle_s: Option<f64>,
    /// The interlock trips when the estimated spot is this far below the protocol's floor, °C
    /// (default 1.0; the raw reading below the floor trips at once). The estimate is the
    /// coldest the spot can be behind the reading (warmest surround assumed, the radiance
    /// inversion of [`crate::model::sensing::spot_from_reading`]): over resting skin at 32–34 °C
    /// it is at most ~0.3 K cold for fill 0.9; on a sensor that sees the spot better than the
    /// fill says it reads colder still, ~2.8 K for an ideal sensor at 12 °C taken at fill 0.9
    /// (docs/SAFETY.md H5).
    pub skin_floor_tolerance_c: f64,
}

impl SafetyConfig {
    /// These limits with the skin sensor the unit has, `fitted`, where `[safety]` leaves its
    /// figures unset; a figure set in the file wins. The daemon passes the reference unit's
    /// MLX90614 ([`mlx90614::REFERENCE_VIEW`]) on the Linux backend and the twin's own sensor
    /// on the simulated unit (`SimConfig::skin_sensor_view`: the legacy twin's is ideal).
    pub fn with_skin_sensor(mut self, fitted: SkinSensorView) -> Self {
        self.skin_sensor_fill.get_or_insert(fitted.spot_fill);
        self.skin_sensor_settle_s.get_or_insert(fitted.settle_s);
        self
    }

    /// The skin sensor the interlock's estimate describes: the figures set, and for a figure
    /// nobody set (limits built without a unit) the reference unit's conservative one.
    pub fn skin_sensor(&self) -> SkinSensorView {
        let reference = mlx90614::REFERENCE_VIEW;
        SkinSensorView {
            spot_fill: self.skin_sensor_fill.unwrap_or(reference.spot_fill),
            settle_s: self.skin_sensor_settle_s.unwrap_or(reference.settle_s),
        }
    }
}

impl Default for SafetyConfig {
    fn default() -> Self {
        Self {
            stale_after_s: 2.0,
            stuck_after_s: 30.0,
            implausible_count: 2,
            dry_run_s: 2.0,
            over_pressure_bar: 3.0,
            absolute_max_pressure_bar: 6.0,
            over_pressure_s: 0.5,
            under_pressure_bar: 0.5,
            under_pressure_s: 1.0,
            heatsink_max_c: 70.0,
            max_spray_s: 120.0,
            audio_pause_s: 120.0,
            self_test_timeout_s: 5.0,
            skin_sensor_fill: None,
            skin_sensor_settle_s: None,
            skin_floor_tolerance_c: 1.0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_skin_sensor_figures_come_from_the_unit_unless_set() {
        let unset = SafetyConfig::default();
        // Built without a unit: the reference MLX90614, the conservative side.
        assert_eq!(unset.skin_sensor(), mlx90614::REFERENCE_VIEW);
        // The unit's sensor fills in what the file left unset ...
        let ideal = unset.clone().with_skin_sensor(SkinSensorView::IDEAL);
        assert_eq!(ideal.skin_sensor(), SkinSensorView::IDEAL);
        // ... and a figure set in the file wins over it.
        let set = SafetyConfig {
            skin_sensor_fill: Some(0.8),
            ..SafetyConfig::default()
        }
        .with_skin_sensor(SkinSensorView::IDEAL);
        assert_eq!(
            set.skin_sensor(),
            SkinSensorView {
                spot_fill: 0.8,
                settle_s: 0.0
            }
        );
    }
}
