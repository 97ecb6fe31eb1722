//! Tunable numbers of the control core (`[thermostat]` and `[session]` sections of the
//! configuration), with their defaults and sources. The safety layer's limits (`[safety]`)
//! are in [`crate::safety::config`].

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
    /// the reservoir approaches the band, it must fall by at least this much, °C ... (0.25:
    /// a healthy TEC unit half a degree above the band still gains ~0.45 °C in 180 s;
    /// docs/TWIN.md)
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
            check_gain_c: 0.25,
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
    /// Share of the skin sensor's signal that comes from the treated spot (the rest is warm
    /// untreated skin around it). The floor guard judges the estimated spot temperature, not
    /// the reading: an MLX90614xCC (35° FOV) fills at most 0.9 of its signal with the spot
    /// (docs/TWIN.md), so a reading of 12 °C can be a 9.2 °C spot
    /// ([`crate::model::sensing::spot_from_reading`]). 1.0: the reading is the
    /// spot (the legacy twin's ideal sensor).
    pub skin_sensor_fill: f64,
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            late_after_s: 10.0,
            laser_association_s: 300.0,
            floor_margin_c: 1.5,
            skin_sensor_fill: 0.9,
        }
    }
}
