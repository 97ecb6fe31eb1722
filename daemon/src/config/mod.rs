//! The daemon's configuration file (`/etc/coldspray/coldspray.toml`, or `--config PATH`).
//!
//! Every section is optional and every key has a documented default; unknown keys are errors.
//! A bad file stops start-up with the file, line, key and reason.

use crate::control::settings::{SessionConfig, ThermostatConfig};
use crate::control::CoreConfig;
use crate::limits::SETPOINT_C;
use crate::protocol::validate_name;
use crate::safety::SafetyConfig;
use coldspray_hal::drivers::mlx90614;
use coldspray_hal::sim::SimConfig;
use coldspray_hal::SkinSensorView;
use serde::{Deserialize, Serialize};
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};

mod file;
mod located;

pub use file::{read_config_file, MAX_CONFIG_BYTES};
use located::{key_at_line, line_col, locate_key};
pub use located::{ConfigError, ConfigWarning};

/// Default configuration path (docs/REQUIREMENTS.md §6).
pub const DEFAULT_CONFIG_PATH: &str = "/etc/coldspray/coldspray.toml";
/// Default state directory (docs/REQUIREMENTS.md §6).
pub const DEFAULT_STATE_DIR: &str = "/var/lib/coldspray";
/// Which hardware backend drives the unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Backend {
    /// The simulated unit (developer laptops, UI development, tests).
    Sim,
    /// GPIO character device and I2C on a real board.
    Linux,
}

/// `[unit]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UnitConfig {
    /// `"linux"` (default) or `"sim"`.
    pub backend: Backend,
    /// Where the treatment log lives. Default `/var/lib/coldspray`, or
    /// `$XDG_STATE_HOME/coldspray-sim` (`~/.local/state/coldspray-sim`) on the simulated unit.
    pub state_dir: Option<PathBuf>,
    /// Protocol the foot pedal starts when nothing is armed.
    pub default_protocol: String,
    /// Arm auto-start with `default_protocol` at start (units wired to a laser that always
    /// wants cooling after emission).
    pub arm_at_start: bool,
    /// Control-loop period, ms (1–50). Edges are handled at once, between periods.
    pub step_ms: u64,
    /// Sensor polling period, ms (20–1000).
    pub sensor_period_ms: u64,
    /// Identity for monitoring (`coldspray_unit_info`, see [`crate::metrics::UnitIdentity`]):
    /// serial number, site, room and hardware revision. Default empty (label absent).
    pub serial: String,
    /// Site (clinic) of the unit, for monitoring.
    pub site: String,
    /// Room of the unit within its site, for monitoring.
    pub room: String,
    /// Hardware revision of the unit's board, for monitoring.
    pub hardware_revision: String,
}

impl Default for UnitConfig {
    fn default() -> Self {
        Self {
            backend: Backend::Linux,
            state_dir: None,
            default_protocol: "co2_fractional".into(),
            arm_at_start: false,
            step_ms: 10,
            sensor_period_ms: 100,
            serial: String::new(),
            site: String::new(),
            room: String::new(),
            hardware_revision: String::new(),
        }
    }
}

/// `[sim]`: the simulated unit — the twin's starting conditions and physics, and its speed
/// against the wall clock ([`SimConfig`], docs/TWIN.md).
pub type SimSection = SimConfig;

/// The whole configuration file.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// `[unit]`.
    pub unit: UnitConfig,
    /// `[thermostat]`.
    pub thermostat: ThermostatConfig,
    /// `[safety]`.
    pub safety: SafetyConfig,
    /// `[session]`.
    pub session: SessionConfig,
    /// `[sim]`.
    pub sim: SimSection,
    /// `[dbus]`: which bus the D-Bus API serves on (see [`crate::dbus::DbusConfig`]).
    pub dbus: crate::dbus::DbusConfig,
    /// `[store]`: the treatment log.
    pub store: crate::store::StoreConfig,
    /// `[metrics]`: the Prometheus endpoint (see [`crate::metrics::MetricsConfig`]).
    pub metrics: crate::metrics::MetricsConfig,
    /// `[hardware]`: GPIO lines, I2C bus and sensor addresses of a real board (see
    /// `packaging/hardware/rpi-rev-a.toml`).
    pub hardware: coldspray_hal::linux::HardwareConfig,
}

impl Config {
    /// Reads and validates a file (see [`read_config_file`] for what is refused).
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        Config::load_checked(path).map(|(config, _)| config)
    }

    /// Reads and validates a file; also returns its warnings.
    pub fn load_checked(path: &Path) -> Result<(Config, Vec<ConfigWarning>), ConfigError> {
        let text = read_config_file(path)?;
        Config::parse_checked(&text, &path.display().to_string())
    }

    /// Parses and validates TOML text; also returns its warnings.
    pub fn parse_checked(
        text: &str,
        file: &str,
    ) -> Result<(Config, Vec<ConfigWarning>), ConfigError> {
        let config = Config::parse(text, file)?;
        let warnings = config
            .warnings()
            .into_iter()
            .map(|(key, message)| {
                let (line, column) = locate_key(text, &key).unwrap_or((0, 0));
                ConfigWarning {
                    file: file.to_string(),
                    line,
                    column,
                    key,
                    message,
                }
            })
            .collect();
        Ok((config, warnings))
    }

    /// Parses and validates TOML text; `file` names it in errors.
    pub fn parse(text: &str, file: &str) -> Result<Config, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|e| {
            let (line, column) = e
                .span()
                .map(|span| line_col(text, span.start))
                .unwrap_or((0, 0));
            let key = if line > 0 {
                key_at_line(text, line)
            } else {
                String::new()
            };
            ConfigError::Invalid {
                file: file.to_string(),
                line,
                column,
                key,
                reason: e.message().trim().to_string(),
            }
        })?;
        config.validate().map_err(|(key, reason)| {
            let (line, column) = locate_key(text, &key).unwrap_or((0, 0));
            ConfigError::Invalid {
                file: file.to_string(),
                line,
                column,
                key,
                reason,
            }
        })?;
        Ok(config)
    }

    /// The core's part of the configuration, with the skin sensor the unit has filled in
    /// where `[safety]` leaves it unset.
    pub fn core(&self) -> CoreConfig {
        CoreConfig {
            thermostat: self.thermostat.clone(),
            safety: self.safety.clone().with_skin_sensor(self.skin_sensor()),
            session: self.session.clone(),
            default_protocol: self.unit.default_protocol.clone(),
            arm_at_start: self.unit.arm_at_start,
        }
    }

    /// How the unit's skin sensor sees the spot: on a real board the reference MLX90614,
    /// taken conservatively ([`mlx90614::REFERENCE_VIEW`]); on the simulated unit the sensor
    /// its `[sim] model` fits (the legacy twin's is ideal; docs/TWIN.md).
    pub fn skin_sensor(&self) -> SkinSensorView {
        match self.unit.backend {
            Backend::Linux => mlx90614::REFERENCE_VIEW,
            Backend::Sim => self.sim.skin_sensor_view(),
        }
    }

    /// The state directory in effect.
    pub fn state_dir(&self) -> PathBuf {
        if let Some(dir) = &self.unit.state_dir {
            return dir.clone();
        }
        match self.unit.backend {
            Backend::Linux => PathBuf::from(DEFAULT_STATE_DIR),
            Backend::Sim => std::env::var_os("XDG_STATE_HOME")
                .map(PathBuf::from)
                .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))
                .unwrap_or_else(std::env::temp_dir)
                .join("coldspray-sim"),
        }
    }

    /// Range and consistency checks serde cannot express: `Err((dotted key, reason))`.
    fn validate(&self) -> Result<(), (String, String)> {
        // A bound may be another key's value: the release above the cut-out, the absolute
        // pressure limit above the alarm limit.
        let (t, s, se) = (&self.thermostat, &self.safety, &self.session);
        check_ranges(
            "thermostat",
            [
                ("setpoint_c", t.setpoint_c, SETPOINT_C),
                ("hysteresis_c", t.hysteresis_c, 0.1..=5.0),
                ("min_on_s", t.min_on_s, 0.0..=1800.0),
                ("min_off_s", t.min_off_s, 0.0..=1800.0),
                ("freeze_cutout_c", t.freeze_cutout_c, 0.5..=3.0),
                (
                    "freeze_release_c",
                    t.freeze_release_c,
                    t.freeze_cutout_c + 0.1..=5.0,
                ),
                ("check_gain_c", t.check_gain_c, 0.1..=10.0),
                ("check_period_s", t.check_period_s, 10.0..=3600.0),
                ("check_max_error", t.check_max_error, 10.0..=100_000.0),
                ("hot_side_rise_c", t.hot_side_rise_c, 0.1..=20.0),
                ("hot_side_check_s", t.hot_side_check_s, 5.0..=600.0),
                ("ready_band_c", t.ready_band_c, 0.1..=10.0),
                ("unready_band_c", t.unready_band_c, t.ready_band_c..=20.0),
                ("fan_run_on_s", t.fan_run_on_s, 0.0..=600.0),
            ],
        )?;
        // A stuck limit of 0 turns the stuck check off.
        let stuck = if s.stuck_after_s == 0.0 {
            0.0..=0.0
        } else {
            5.0..=3600.0
        };
        check_ranges(
            "safety",
            [
                ("stale_after_s", s.stale_after_s, 0.2..=2.0),
                ("stuck_after_s", s.stuck_after_s, stuck),
                (
                    "implausible_count",
                    f64::from(s.implausible_count),
                    1.0..=10.0,
                ),
                ("dry_run_s", s.dry_run_s, 0.5..=2.0),
                ("over_pressure_bar", s.over_pressure_bar, 0.5..=8.0),
                (
                    "absolute_max_pressure_bar",
                    s.absolute_max_pressure_bar,
                    s.over_pressure_bar..=10.0,
                ),
                ("over_pressure_s", s.over_pressure_s, 0.0..=5.0),
                (
                    "under_pressure_bar",
                    s.under_pressure_bar,
                    0.0..=s.over_pressure_bar,
                ),
                ("under_pressure_s", s.under_pressure_s, 0.1..=10.0),
                ("heatsink_max_c", s.heatsink_max_c, 30.0..=100.0),
                ("max_spray_s", s.max_spray_s, 5.0..=120.0),
                ("audio_pause_s", s.audio_pause_s, 10.0..=300.0),
                ("self_test_timeout_s", s.self_test_timeout_s, 1.0..=60.0),
                (
                    "skin_floor_tolerance_c",
                    s.skin_floor_tolerance_c,
                    0.0..=1.0,
                ),
            ],
        )?;
        // Unset, the skin sensor's figures are the unit's own (`Config::core`).
        for (key, value, range) in [
            ("skin_sensor_fill", s.skin_sensor_fill, 0.5..=1.0),
            ("skin_sensor_settle_s", s.skin_sensor_settle_s, 0.0..=2.0),
        ] {
            if let Some(value) = value {
                check_ranges("safety", [(key, value, range)])?;
            }
        }
        check_ranges(
            "session",
            [
                ("late_after_s", se.late_after_s, 1.0..=600.0),
                (
                    "laser_association_s",
                    se.laser_association_s,
                    se.late_after_s..=3600.0,
                ),
                ("floor_margin_c", se.floor_margin_c, 0.0..=5.0),
                ("skin_sensor_fill", se.skin_sensor_fill, 0.5..=1.0),
            ],
        )?;
        let u = &self.unit;
        validate_name(&u.default_protocol)
            .map_err(|e| ("unit.default_protocol".to_string(), e.to_string()))?;
        if let Some(dir) = &u.state_dir {
            if dir.as_os_str().is_empty() {
                return Err((
                    "unit.state_dir".to_string(),
                    "is empty: give an absolute path, or leave the key out for the default"
                        .to_string(),
                ));
            }
            if !dir.is_absolute() {
                return Err((
                    "unit.state_dir".to_string(),
                    format!(
                        "`{}` is relative: the treatment log needs an absolute path (the \
                         daemon's working directory is not part of its configuration)",
                        dir.display()
                    ),
                ));
            }
        }
        if let Some(address) = &self.dbus.address {
            if let Err(e) = address.parse::<zbus::Address>() {
                return Err((
                    "dbus.address".to_string(),
                    format!("`{address}` is not a D-Bus address ({e}); e.g. `unix:path=/run/coldspray-bus`"),
                ));
            }
        }
        for (key, value) in [
            ("unit.serial", &u.serial),
            ("unit.site", &u.site),
            ("unit.room", &u.room),
            ("unit.hardware_revision", &u.hardware_revision),
        ] {
            crate::metrics::check_identity_value(value).map_err(|why| (key.to_string(), why))?;
        }
        check_ranges(
            "unit",
            [
                ("step_ms", u.step_ms as f64, 1.0..=50.0),
                ("sensor_period_ms", u.sensor_period_ms as f64, 20.0..=1000.0),
            ],
        )?;
        let sim = &self.sim;
        check_ranges(
            "sim",
            [
                ("speed", sim.speed, 0.1..=1000.0),
                ("ambient_c", sim.ambient_c, 5.0..=40.0),
                ("initial_reservoir_c", sim.initial_reservoir_c, 0.5..=40.0),
                ("water_litres", sim.water_litres, 0.0..=5.0),
                ("spot_cm2", sim.spot_cm2, 1.0..=400.0),
                ("nozzle_mm", sim.nozzle_mm, 10.0..=300.0),
                ("ir_settle_ms", sim.ir_settle_ms, 0.0..=2000.0),
                ("ir_distance_mm", sim.ir_distance_mm, 10.0..=300.0),
            ],
        )?;
        self.store
            .validate()
            .map_err(|reason| ("store".to_string(), reason.to_string()))?;
        self.hardware
            .validate()
            .map_err(|reason| ("hardware".to_string(), reason))?;
        Ok(())
    }
}

impl Config {
    /// Valid values worth a second look: `Vec<(dotted key, message)>`.
    ///
    /// * `unit.default_protocol` not among the factory protocols: it may be a protocol saved
    ///   in the treatment log, which is not open at check time, so this is a warning; if it
    ///   is not there either, the pedal (and `arm_at_start`) start nothing; the daemon then
    ///   logs an error at start, when the saved protocols are known.
    /// * `metrics.listen` on every interface (`0.0.0.0`, `::`): anyone on the network can
    ///   read the unit's state, alarms and counts, without authentication.
    pub fn warnings(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let factory = crate::protocol::Protocol::factory_defaults();
        if !factory.iter().any(|p| p.name == self.unit.default_protocol) {
            let names: Vec<&str> = factory.iter().map(|p| p.name.as_str()).collect();
            out.push((
                "unit.default_protocol".to_string(),
                format!(
                    "`{}` is not a factory protocol ({}); it must be a protocol saved on this \
                     unit (not checkable here: the treatment log is not opened by \
                     --check-config), or the pedal{} will start nothing",
                    self.unit.default_protocol,
                    names.join(", "),
                    if self.unit.arm_at_start {
                        " and arm_at_start"
                    } else {
                        ""
                    }
                ),
            ));
        }
        if self.metrics.enabled && self.metrics.listen.ip().is_unspecified() {
            out.push((
                "metrics.listen".to_string(),
                format!(
                    "{} listens on every network interface: anyone who can reach the unit \
                     can read its metrics (no authentication); prefer 127.0.0.1 or the one \
                     address the Prometheus server uses, and a firewall",
                    self.metrics.listen
                ),
            ));
        }
        out
    }
}

/// Checks each `(key, value, allowed range)` of `section` in turn: the first value outside its
/// range (or not finite) is `Err((section.key, reason))`.
fn check_ranges<const N: usize>(
    section: &str,
    ranges: [(&str, f64, RangeInclusive<f64>); N],
) -> Result<(), (String, String)> {
    for (key, value, range) in ranges {
        let key = format!("{section}.{key}");
        crate::limits::check(&key, value, range).map_err(|e| {
            let reason = format!("{} is outside {}..={}", e.value, e.min, e.max);
            (key, reason)
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
