//! The daemon's configuration file (`/etc/coldspray/coldspray.toml`, or `--config PATH`).
//!
//! Every section is optional and every key has a documented default; unknown keys are errors.
//! A bad file stops start-up with the file, line, key and reason.

use crate::control::settings::{SessionConfig, ThermostatConfig};
use crate::control::CoreConfig;
use crate::limits::SETPOINT_C;
use crate::protocol::validate_name;
use crate::safety::SafetyConfig;
use coldspray_hal::sim::SimConfig;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::{Path, PathBuf};

/// Default configuration path (docs/REQUIREMENTS.md §6).
pub const DEFAULT_CONFIG_PATH: &str = "/etc/coldspray/coldspray.toml";
/// Default state directory (docs/REQUIREMENTS.md §6).
pub const DEFAULT_STATE_DIR: &str = "/var/lib/coldspray";
/// The largest configuration file read (1 MiB; the shipped one is a few KiB).
pub const MAX_CONFIG_BYTES: u64 = 1 << 20;

/// Reads a configuration file safely: only a regular file of at most [`MAX_CONFIG_BYTES`],
/// opened non-blocking so that a FIFO cannot block the caller and checked after opening
/// (`fstat`), so that a device such as `/dev/zero` or a directory is refused before a byte
/// is read.
pub fn read_config_file(path: &Path) -> Result<String, ConfigError> {
    use std::io::Read;
    use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
    let file_name = path.display().to_string();
    let read_err = |reason: String| ConfigError::Read {
        file: file_name.clone(),
        reason,
    };
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(|e| read_err(e.to_string()))?;
    let meta = file.metadata().map_err(|e| read_err(e.to_string()))?;
    let kind = meta.file_type();
    let what = if kind.is_file() {
        None
    } else if kind.is_dir() {
        Some("a directory")
    } else if kind.is_fifo() {
        Some("a FIFO (named pipe)")
    } else if kind.is_char_device() {
        Some("a character device")
    } else if kind.is_block_device() {
        Some("a block device")
    } else if kind.is_socket() {
        Some("a socket")
    } else {
        Some("not a regular file")
    };
    if let Some(what) = what {
        return Err(ConfigError::Refused {
            file: file_name,
            reason: format!("{what}, not a regular file"),
        });
    }
    if meta.len() > MAX_CONFIG_BYTES {
        return Err(ConfigError::Refused {
            file: file_name,
            reason: format!(
                "{} bytes, more than the {MAX_CONFIG_BYTES} a configuration file may have",
                meta.len()
            ),
        });
    }
    let mut bytes = Vec::new();
    file.take(MAX_CONFIG_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| read_err(e.to_string()))?;
    if bytes.len() as u64 > MAX_CONFIG_BYTES {
        return Err(ConfigError::Refused {
            file: file_name,
            reason: format!("grew past {MAX_CONFIG_BYTES} bytes while being read"),
        });
    }
    String::from_utf8(bytes).map_err(|e| read_err(format!("not UTF-8 text: {e}")))
}

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

/// `[sim]`: the simulated unit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SimSection {
    /// Simulated seconds per wall second (0.1–1000; default 1).
    pub speed: f64,
    /// Room temperature, °C.
    pub ambient_c: f64,
    /// Reservoir at power-on, °C.
    pub initial_reservoir_c: f64,
    /// Water at power-on, litres.
    pub water_litres: f64,
    /// Skin IR sensor fitted.
    pub skin_sensor: bool,
    /// Noise seed.
    pub seed: u64,
}

impl Default for SimSection {
    fn default() -> Self {
        let d = SimConfig::default();
        Self {
            speed: 1.0,
            ambient_c: d.ambient_c,
            initial_reservoir_c: d.initial_reservoir_c,
            water_litres: d.water_litres,
            skin_sensor: d.skin_sensor,
            seed: d.seed,
        }
    }
}

impl SimSection {
    /// The twin's starting conditions.
    pub fn twin(&self) -> SimConfig {
        SimConfig {
            ambient_c: self.ambient_c,
            initial_reservoir_c: self.initial_reservoir_c,
            water_litres: self.water_litres,
            skin_sensor: self.skin_sensor,
            seed: self.seed,
        }
    }
}

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

/// A configuration problem, located.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{file}: cannot read: {reason}")]
    Read {
        /// Path.
        file: String,
        /// OS error.
        reason: String,
    },
    /// The path is not something a configuration may be read from (a FIFO, a device, a
    /// directory, a file larger than [`MAX_CONFIG_BYTES`]); nothing was read.
    #[error("{file}: refused: {reason}")]
    Refused {
        /// Path.
        file: String,
        /// What the path is.
        reason: String,
    },
    /// A syntax error, unknown key or wrong type, or a value out of range.
    #[error("{}", Located(.file, .line, .column, .key, .reason))]
    Invalid {
        /// Path.
        file: String,
        /// 1-based line (0 when unknown).
        line: usize,
        /// 1-based column (0 when unknown).
        column: usize,
        /// Dotted key (`thermostat.setpoint_c`), empty when unknown.
        key: String,
        /// What is wrong.
        reason: String,
    },
}

struct Located<'a>(&'a String, &'a usize, &'a usize, &'a String, &'a String);

impl fmt::Display for Located<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Located(file, line, column, key, reason) = self;
        write!(f, "{file}")?;
        if **line > 0 {
            write!(f, ":{line}:{column}")?;
        }
        if !key.is_empty() {
            write!(f, ": key `{key}`")?;
        }
        write!(f, ": {reason}")
    }
}

/// A value that is valid but probably not what the clinic wants, or that can only be fully
/// checked at run time; printed by `--check-config` and logged at start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigWarning {
    /// Path.
    pub file: String,
    /// 1-based line (0 when the key is not in the file: a default).
    pub line: usize,
    /// 1-based column (0 when unknown).
    pub column: usize,
    /// Dotted key.
    pub key: String,
    /// What to look at.
    pub message: String,
}

impl fmt::Display for ConfigWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        Located(
            &self.file,
            &self.line,
            &self.column,
            &self.key,
            &self.message,
        )
        .fmt(f)
    }
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

    /// The core's part of the configuration.
    pub fn core(&self) -> CoreConfig {
        CoreConfig {
            thermostat: self.thermostat.clone(),
            safety: self.safety.clone(),
            session: self.session.clone(),
            default_protocol: self.unit.default_protocol.clone(),
            arm_at_start: self.unit.arm_at_start,
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
        fn range(key: &str, v: f64, lo: f64, hi: f64) -> Result<(), (String, String)> {
            crate::limits::check(key, v, lo..=hi)
                .map(|_| ())
                .map_err(|_| (key.to_string(), format!("{v} is outside {lo}..={hi}")))
        }
        let t = &self.thermostat;
        range(
            "thermostat.setpoint_c",
            t.setpoint_c,
            *SETPOINT_C.start(),
            *SETPOINT_C.end(),
        )?;
        range("thermostat.hysteresis_c", t.hysteresis_c, 0.1, 5.0)?;
        range("thermostat.min_on_s", t.min_on_s, 0.0, 1800.0)?;
        range("thermostat.min_off_s", t.min_off_s, 0.0, 1800.0)?;
        range("thermostat.freeze_cutout_c", t.freeze_cutout_c, 0.5, 3.0)?;
        range(
            "thermostat.freeze_release_c",
            t.freeze_release_c,
            t.freeze_cutout_c + 0.1,
            5.0,
        )?;
        range("thermostat.check_gain_c", t.check_gain_c, 0.1, 10.0)?;
        range("thermostat.check_period_s", t.check_period_s, 10.0, 3600.0)?;
        range(
            "thermostat.check_max_error",
            t.check_max_error,
            10.0,
            100_000.0,
        )?;
        range("thermostat.hot_side_rise_c", t.hot_side_rise_c, 0.1, 20.0)?;
        range(
            "thermostat.hot_side_check_s",
            t.hot_side_check_s,
            5.0,
            600.0,
        )?;
        range("thermostat.ready_band_c", t.ready_band_c, 0.1, 10.0)?;
        range(
            "thermostat.unready_band_c",
            t.unready_band_c,
            t.ready_band_c,
            20.0,
        )?;
        range("thermostat.fan_run_on_s", t.fan_run_on_s, 0.0, 600.0)?;
        let s = &self.safety;
        range("safety.stale_after_s", s.stale_after_s, 0.2, 2.0)?;
        if s.stuck_after_s != 0.0 {
            range("safety.stuck_after_s", s.stuck_after_s, 5.0, 3600.0)?;
        }
        range(
            "safety.implausible_count",
            f64::from(s.implausible_count),
            1.0,
            10.0,
        )?;
        range("safety.dry_run_s", s.dry_run_s, 0.5, 2.0)?;
        range("safety.over_pressure_bar", s.over_pressure_bar, 0.5, 8.0)?;
        range(
            "safety.absolute_max_pressure_bar",
            s.absolute_max_pressure_bar,
            s.over_pressure_bar,
            10.0,
        )?;
        range("safety.over_pressure_s", s.over_pressure_s, 0.0, 5.0)?;
        range(
            "safety.under_pressure_bar",
            s.under_pressure_bar,
            0.0,
            s.over_pressure_bar,
        )?;
        range("safety.under_pressure_s", s.under_pressure_s, 0.1, 10.0)?;
        range("safety.heatsink_max_c", s.heatsink_max_c, 30.0, 100.0)?;
        range("safety.max_spray_s", s.max_spray_s, 5.0, 120.0)?;
        range("safety.audio_pause_s", s.audio_pause_s, 10.0, 300.0)?;
        range(
            "safety.self_test_timeout_s",
            s.self_test_timeout_s,
            1.0,
            60.0,
        )?;
        let se = &self.session;
        range("session.late_after_s", se.late_after_s, 1.0, 600.0)?;
        range(
            "session.laser_association_s",
            se.laser_association_s,
            se.late_after_s,
            3600.0,
        )?;
        range("session.floor_margin_c", se.floor_margin_c, 0.0, 5.0)?;
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
        range("unit.step_ms", u.step_ms as f64, 1.0, 50.0)?;
        range(
            "unit.sensor_period_ms",
            u.sensor_period_ms as f64,
            20.0,
            1000.0,
        )?;
        range("sim.speed", self.sim.speed, 0.1, 1000.0)?;
        range("sim.ambient_c", self.sim.ambient_c, 5.0, 40.0)?;
        range(
            "sim.initial_reservoir_c",
            self.sim.initial_reservoir_c,
            0.5,
            40.0,
        )?;
        range("sim.water_litres", self.sim.water_litres, 0.0, 5.0)?;
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

/// 1-based line and column of a byte offset.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// The dotted key defined on a 1-based line: `section.key`, or the table name for a header.
fn key_at_line(text: &str, line: usize) -> String {
    let mut table = String::new();
    for (i, raw) in text.lines().enumerate() {
        let l = raw.trim();
        if let Some(name) = l.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
            table = name.trim().to_string();
            if i + 1 == line {
                return table;
            }
            continue;
        }
        if i + 1 == line {
            let key = l.split('=').next().unwrap_or("").trim().trim_matches('"');
            return if table.is_empty() {
                key.to_string()
            } else {
                format!("{table}.{key}")
            };
        }
    }
    table
}

/// Where a dotted key is defined: `(line, column)` of its first character.
fn locate_key(text: &str, dotted: &str) -> Option<(usize, usize)> {
    let (table, key) = dotted.rsplit_once('.').unwrap_or(("", dotted));
    let mut current = String::new();
    for (i, raw) in text.lines().enumerate() {
        let l = raw.trim_start();
        if let Some(name) = l
            .trim_end()
            .strip_prefix('[')
            .and_then(|r| r.strip_suffix(']'))
        {
            current = name.trim().to_string();
            continue;
        }
        let k = l.split('=').next().unwrap_or("").trim().trim_matches('"');
        if current == table && k == key && l.contains('=') {
            return Some((i + 1, raw.len() - l.len() + 1));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_gives_documented_defaults() {
        let c = Config::parse("", "x.toml").unwrap();
        assert_eq!(c.thermostat.setpoint_c, 4.0);
        assert_eq!(c.safety.max_spray_s, 120.0);
        assert_eq!(c.unit.backend, Backend::Linux);
        assert_eq!(c.state_dir(), PathBuf::from(DEFAULT_STATE_DIR));
    }

    #[test]
    fn unknown_key_names_file_line_and_key() {
        let text = "[unit]\nbackend = \"sim\"\n\n[thermostat]\nsetpiont_c = 5.0\n";
        let e = Config::parse(text, "/etc/coldspray/coldspray.toml").unwrap_err();
        let ConfigError::Invalid {
            line, key, reason, ..
        } = &e
        else {
            panic!("{e:?}");
        };
        assert_eq!(*line, 5);
        assert_eq!(key, "thermostat.setpiont_c");
        assert!(reason.contains("unknown field"), "{reason}");
        assert!(
            e.to_string()
                .starts_with("/etc/coldspray/coldspray.toml:5:"),
            "{e}"
        );
    }

    #[test]
    fn out_of_range_value_names_its_line() {
        let text = "[unit]\nbackend = \"sim\"\n[thermostat]\nhysteresis_c = 1.0\nsetpoint_c = 30\n";
        let e = Config::parse(text, "c.toml").unwrap_err();
        assert_eq!(
            e,
            ConfigError::Invalid {
                file: "c.toml".into(),
                line: 5,
                column: 1,
                key: "thermostat.setpoint_c".into(),
                reason: "30 is outside 2..=15".into(),
            }
        );
    }

    #[test]
    fn wrong_type_and_syntax_errors_are_located() {
        let e = Config::parse("[sim]\nspeed = \"fast\"\n", "c.toml").unwrap_err();
        assert!(
            matches!(&e, ConfigError::Invalid { line: 2, key, .. } if key == "sim.speed"),
            "{e:?}"
        );
        let e = Config::parse("[sim\nspeed = 1\n", "c.toml").unwrap_err();
        assert!(matches!(e, ConfigError::Invalid { line: 1, .. }), "{e:?}");
        let e = Config::parse("[unit]\nbackend = \"gpio\"\n", "c.toml").unwrap_err();
        assert!(
            matches!(&e, ConfigError::Invalid { line: 2, key, .. } if key == "unit.backend"),
            "{e:?}"
        );
    }

    #[test]
    fn the_shipped_reference_wiring_parses() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../packaging/hardware/rpi-rev-a.toml"
        );
        let c = Config::load(Path::new(path)).unwrap();
        assert_eq!(c.hardware.i2c_bus, PathBuf::from("/dev/i2c-1"));
        let e = Config::parse("[hardware]\nchip = 5\n", "c.toml").unwrap_err();
        assert!(
            matches!(&e, ConfigError::Invalid { line: 2, key, .. } if key == "hardware.chip"),
            "{e:?}"
        );
    }

    #[test]
    fn the_shipped_default_config_is_the_defaults() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../packaging/coldspray.toml");
        let shipped = Config::load(Path::new(path)).unwrap();
        assert_eq!(shipped, Config::default());
        // Every commented default in the shipped file parses and equals the built-in default.
        let text = std::fs::read_to_string(path).unwrap();
        let uncommented: String = text
            .lines()
            .map(|l| {
                l.strip_prefix("# ")
                    .filter(|r| r.contains(" = "))
                    .unwrap_or(l)
            })
            .map(|l| l.split("  #").next().unwrap_or(l).to_string() + "\n")
            .collect();
        let mut explicit = Config::parse(&uncommented, "uncommented").unwrap();
        assert_eq!(explicit.state_dir(), Config::default().state_dir());
        explicit.unit.state_dir = None;
        assert_eq!(explicit, Config::default());
    }

    fn invalid_key(e: &ConfigError) -> (usize, &str, &str) {
        match e {
            ConfigError::Invalid {
                line, key, reason, ..
            } => (*line, key.as_str(), reason.as_str()),
            other => panic!("not an Invalid error: {other:?}"),
        }
    }

    #[test]
    fn a_malformed_dbus_address_is_refused_at_check_time() {
        let text = "[unit]\nbackend = \"sim\"\n[dbus]\naddress = \"unix:pth=/run/x\"\n";
        let e = Config::parse(text, "c.toml").unwrap_err();
        let (line, key, reason) = invalid_key(&e);
        assert_eq!((line, key), (4, "dbus.address"), "{e}");
        assert!(reason.contains("not a D-Bus address"), "{reason}");
        for bad in ["/run/bus", "", "tcp:host=x,port=notaport"] {
            let text = format!("[dbus]\naddress = \"{bad}\"\n");
            assert!(Config::parse(&text, "c.toml").is_err(), "{bad:?} accepted");
        }
        let ok = "[dbus]\naddress = \"unix:path=/run/coldspray-bus\"\n";
        assert!(Config::parse(ok, "c.toml").is_ok());
    }

    #[test]
    fn an_empty_or_relative_state_dir_is_refused() {
        for (value, says) in [("", "is empty"), ("var/lib/coldspray", "is relative")] {
            let text = format!("[unit]\nbackend = \"sim\"\nstate_dir = \"{value}\"\n");
            let e = Config::parse(&text, "c.toml").unwrap_err();
            let (line, key, reason) = invalid_key(&e);
            assert_eq!((line, key), (3, "unit.state_dir"), "{e}");
            assert!(reason.contains(says), "{reason}");
        }
        let ok = "[unit]\nstate_dir = \"/srv/coldspray\"\n";
        assert!(Config::parse(ok, "c.toml").is_ok());
    }

    #[test]
    fn a_default_protocol_that_is_no_factory_protocol_is_a_located_warning() {
        let text = "[unit]\ndefault_protocol = \"my_hifu\"\narm_at_start = true\n";
        let (_, warnings) = Config::parse_checked(text, "c.toml").unwrap();
        let w = warnings
            .iter()
            .find(|w| w.key == "unit.default_protocol")
            .expect("a warning");
        assert_eq!(w.line, 2);
        assert!(w.message.contains("not a factory protocol"), "{w}");
        assert!(w.message.contains("arm_at_start"), "{w}");
        assert!(w.message.contains("not checkable here"), "{w}");
        // The shipped default is a factory protocol: no warning.
        let (_, warnings) = Config::parse_checked("", "c.toml").unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
    }

    #[test]
    fn metrics_on_every_interface_is_a_warning_not_an_error() {
        for listen in ["0.0.0.0:12653", "[::]:12653"] {
            let text = format!("[metrics]\nlisten = \"{listen}\"\n");
            let (_, warnings) = Config::parse_checked(&text, "c.toml").unwrap();
            assert_eq!(warnings.len(), 1, "{warnings:?}");
            assert_eq!(
                (warnings[0].line, warnings[0].key.as_str()),
                (2, "metrics.listen")
            );
            assert!(warnings[0].to_string().contains("every network interface"));
        }
        let text = "[metrics]\nenabled = false\nlisten = \"0.0.0.0:12653\"\n";
        assert!(Config::parse_checked(text, "c.toml").unwrap().1.is_empty());
        let text = "[metrics]\nlisten = \"192.168.1.20:12653\"\n";
        assert!(Config::parse_checked(text, "c.toml").unwrap().1.is_empty());
    }

    #[test]
    fn only_a_bounded_regular_file_is_read() {
        let dir = tempfile::tempdir().unwrap();
        // A directory, a character device, a FIFO (no writer: a blocking open would hang).
        let fifo = dir.path().join("fifo.toml");
        // coreutils' `mkfifo`: the crate forbids `unsafe`, and std has no mkfifo.
        let made = std::process::Command::new("mkfifo")
            .args(["-m", "600"])
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success(), "mkfifo {}: {made}", fifo.display());
        for (path, says) in [
            (dir.path().to_path_buf(), "a directory"),
            (PathBuf::from("/dev/zero"), "a character device"),
            (fifo, "a FIFO"),
        ] {
            let e = Config::load(&path).unwrap_err();
            assert!(
                matches!(&e, ConfigError::Refused { reason, .. } if reason.contains(says)),
                "{}: {e}",
                path.display()
            );
            assert!(e
                .to_string()
                .starts_with(&format!("{}: refused", path.display())));
        }
        let big = dir.path().join("big.toml");
        std::fs::write(&big, "#".repeat(MAX_CONFIG_BYTES as usize + 1)).unwrap();
        let e = Config::load(&big).unwrap_err();
        assert!(matches!(e, ConfigError::Refused { .. }), "{e}");
        let ok = dir.path().join("ok.toml");
        std::fs::write(&ok, "#".repeat(MAX_CONFIG_BYTES as usize - 1)).unwrap();
        assert_eq!(Config::load(&ok).unwrap(), Config::default());
    }

    #[test]
    fn missing_file_is_a_read_error() {
        let e = Config::load(Path::new("/nonexistent/coldspray.toml")).unwrap_err();
        assert!(matches!(e, ConfigError::Read { .. }));
        assert!(e
            .to_string()
            .starts_with("/nonexistent/coldspray.toml: cannot read"));
    }
}
