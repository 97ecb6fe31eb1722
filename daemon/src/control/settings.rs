//! Tunable numbers of the control core and the safety layer (`[thermostat]`, `[safety]`,
//! `[session]` sections of the configuration), with their defaults and sources.

use serde::{Deserialize, Serialize};

/// `[thermostat]`: the reservoir chiller.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ThermostatConfig {
    /// Reservoir setpoint, °C (2–15; default 4). Cold-water pads run 5–13 °C (CSZ
    /// Electri-Cool II); mist warms on its way to the skin, so the reservoir runs colder.
    pub setpoint_c: f64,
    /// Total hysteresis band, °C: chiller on above setpoint + ½, off below setpoint − ½.
    pub hysteresis_c: f64,
    /// Minimum chiller on time, s (BrewPi compressor: 180 s).
    pub min_on_s: f64,
    /// Minimum chiller off time, s (BrewPi compressor: 300 s). Protects a compressor.
    pub min_off_s: f64,
    /// Anti-freeze cut-out: chiller forced off below this reservoir temperature, °C.
    pub freeze_cutout_c: f64,
    /// The cut-out releases above this temperature, °C.
    pub freeze_release_c: f64,
    /// Cooling-rate check (Klipper `verify_heater` turned around): while the chiller is on and
    /// the reservoir is above the band, it must fall by at least this much, °C ...
    pub check_gain_c: f64,
    /// ... within this period, s. Otherwise: "chiller ineffective".
    pub check_period_s: f64,
    /// Near the setpoint: accumulated error above the band while the chiller runs, °C·s,
    /// beyond which the chiller is ineffective (Klipper `max_error` 120).
    pub check_max_error: f64,
    /// Chiller on → heatsink must warm by this much, °C ...
    pub hot_side_rise_c: f64,
    /// ... within this time, s (self-test "chiller → heatsink warms").
    pub hot_side_check_s: f64,
    /// Ready when the reservoir is at most this far above the setpoint, °C.
    pub ready_band_c: f64,
    /// Ready is lost when the reservoir rises this far above the setpoint, °C.
    pub unready_band_c: f64,
    /// The fan keeps running this long after the chiller stops, s.
    pub fan_run_on_s: f64,
}

impl Default for ThermostatConfig {
    fn default() -> Self {
        Self {
            setpoint_c: 4.0,
            hysteresis_c: 1.0,
            min_on_s: 180.0,
            min_off_s: 300.0,
            freeze_cutout_c: 1.0,
            freeze_release_c: 2.0,
            check_gain_c: 0.5,
            check_period_s: 180.0,
            check_max_error: 600.0,
            hot_side_rise_c: 1.0,
            hot_side_check_s: 60.0,
            ready_band_c: 1.5,
            unready_band_c: 4.0,
            fan_run_on_s: 60.0,
        }
    }
}

/// `[safety]`: interlock limits (BRIEF §4).
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
        }
    }
}

/// `[session]`: treatment sessions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SessionConfig {
    /// A session starting later than this after the laser stopped is late (palliative only), s.
    pub late_after_s: f64,
    /// A laser end this long before a start is still "its" laser pass, s.
    pub laser_association_s: f64,
    /// Margin above the skin floor at which closed-loop spraying pauses, °C.
    pub floor_margin_c: f64,
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            late_after_s: 10.0,
            laser_association_s: 300.0,
            floor_margin_c: 1.5,
        }
    }
}
