//! The unit's own settings — the operator's reservoir setpoint and the sensors' calibration
//! offsets — in a small file of their own, `<state_dir>/settings.json`, independent of the
//! treatment log: a unit whose log cannot open still runs with its calibration, and a unit
//! that cannot read its calibration says so instead of running with zero offsets.
//!
//! # File format
//! One header line, then the body (JSON of [`UnitSettings`]):
//!
//! ```text
//! coldspray-settings 1 <crc32 of the body, 8 hex digits> <length of the body in bytes>
//! {"setpoint":{"celsius":10.0,"config_c":4.0,"by_uid":1000,"unix_ms":…},"calibration":{"skin":5.0}}
//! ```
//!
//! A file whose header, length or CRC-32 does not match its body is damaged
//! ([`SettingsError::Damaged`]): a torn write, a truncated file or a flipped bit never passes
//! for settings.
//!
//! # Atomic replace
//! [`save`] writes `settings.json.tmp`, fsyncs it, renames it over `settings.json` and fsyncs
//! the directory: after a power cut the file is the old settings or the new ones, never a mix.
//!
//! # Setpoint precedence
//! `[thermostat] setpoint_c` in the configuration is the administrator's setpoint. An
//! operator's `SetSetpoint` overrides it, and the override survives a restart **only while the
//! configured value is the one it was made against** ([`OperatorSetpoint::config_c`]): an
//! administrator who edits `setpoint_c` takes back control at the next start, and the
//! operator's value is dropped ([`UnitSettings::resolve_setpoint`]).

use coldspray_hal::Sensor;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Name of the settings file inside the state directory.
pub const FILE_NAME: &str = "settings.json";
/// First word of the header line.
const MAGIC: &str = "coldspray-settings";
/// Format version written and accepted.
const VERSION: u32 = 1;
/// A settings file is a few hundred bytes; anything much larger is not one.
const MAX_LEN: u64 = 64 * 1024;

/// Why the settings file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// Reading, writing, syncing or renaming failed.
    #[error("settings file {path}: {what}: {source}")]
    Io {
        /// The file or directory concerned.
        path: String,
        /// The step that failed.
        what: &'static str,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file exists but is not intact (bad header, truncated, CRC mismatch, bad JSON).
    #[error("settings file {path} is damaged: {reason}")]
    Damaged {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
}

/// An operator's setpoint, with what it was set against.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OperatorSetpoint {
    /// The setpoint, °C.
    pub celsius: f64,
    /// `[thermostat] setpoint_c` of the configuration in force when it was set, °C.
    pub config_c: f64,
    /// Who set it (D-Bus caller's uid), when known.
    pub by_uid: Option<u32>,
    /// When, ms since the Unix epoch.
    pub unix_ms: i64,
}

/// The settings the unit keeps across restarts (not treatment records).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnitSettings {
    /// The operator's setpoint, when one overrides the configuration's.
    pub setpoint: Option<OperatorSetpoint>,
    /// Calibration offset per sensor, keyed by [`Sensor::name`], in the sensor's unit.
    pub calibration: BTreeMap<String, f64>,
}

/// Which setpoint is in force at start, and why (for the start-up log).
#[derive(Debug, Clone, PartialEq)]
pub enum SetpointChoice {
    /// No operator setpoint saved: the configuration's.
    Config(f64),
    /// The operator's, made against the configuration value still in force.
    Operator(OperatorSetpoint),
    /// The configuration's, because the administrator changed it after the operator's.
    ConfigChanged {
        /// The configuration's value, now in force.
        config_c: f64,
        /// The operator's setpoint that was dropped.
        dropped: OperatorSetpoint,
    },
}

impl SetpointChoice {
    /// The setpoint in force, °C.
    pub fn celsius(&self) -> f64 {
        match self {
            SetpointChoice::Config(c) => *c,
            SetpointChoice::Operator(op) => op.celsius,
            SetpointChoice::ConfigChanged { config_c, .. } => *config_c,
        }
    }

    /// One line for the start-up log: the value in force and why.
    pub fn explain(&self) -> String {
        match self {
            SetpointChoice::Config(c) => {
                format!("setpoint {c:.1} °C from [thermostat] setpoint_c (no operator setpoint)")
            }
            SetpointChoice::Operator(op) => format!(
                "setpoint {:.1} °C set by the operator ({}), in force over [thermostat] \
                 setpoint_c = {:.1} °C, which is unchanged since",
                op.celsius,
                uid_text(op.by_uid),
                op.config_c
            ),
            SetpointChoice::ConfigChanged { config_c, dropped } => format!(
                "setpoint {config_c:.1} °C from [thermostat] setpoint_c: the administrator \
                 changed it from {:.1} °C after the operator ({}) set {:.1} °C, so the \
                 configuration is in force again",
                dropped.config_c,
                uid_text(dropped.by_uid),
                dropped.celsius
            ),
        }
    }
}

/// `uid 1000`, or `uid unknown`.
pub fn uid_text(uid: Option<u32>) -> String {
    uid.map_or_else(|| "uid unknown".to_string(), |u| format!("uid {u}"))
}

impl UnitSettings {
    /// Calibration offsets by [`Sensor::index`] (0 where none was set).
    pub fn calibration_array(&self) -> [f64; 5] {
        let mut cal = [0.0; 5];
        for s in Sensor::ALL {
            cal[s.index()] = self.calibration.get(s.name()).copied().unwrap_or(0.0);
        }
        cal
    }

    /// Sets every calibration offset from an array by [`Sensor::index`] (zeros are kept,
    /// so the file says the sensor was calibrated to 0).
    pub fn set_calibration_array(&mut self, cal: [f64; 5]) {
        for s in Sensor::ALL {
            self.calibration
                .insert(s.name().to_string(), cal[s.index()]);
        }
    }

    /// Applies the precedence rule (see the module doc) against the configured setpoint.
    pub fn resolve_setpoint(&self, config_c: f64) -> SetpointChoice {
        match &self.setpoint {
            None => SetpointChoice::Config(config_c),
            // Exact comparison on purpose: both values come from the same parse of the same
            // text when the configuration is unchanged.
            Some(op) if op.config_c.to_bits() == config_c.to_bits() => {
                SetpointChoice::Operator(op.clone())
            }
            Some(op) => SetpointChoice::ConfigChanged {
                config_c,
                dropped: op.clone(),
            },
        }
    }

    /// The file's bytes: header line and body.
    pub fn encode(&self) -> Vec<u8> {
        // Serializing plain numbers, strings and maps cannot fail.
        let body = serde_json::to_vec(self).unwrap_or_default();
        let mut out = format!(
            "{MAGIC} {VERSION} {:08x} {}\n",
            crc32fast::hash(&body),
            body.len()
        )
        .into_bytes();
        out.extend_from_slice(&body);
        out
    }

    /// Parses and checks the file's bytes; `Err` says what is wrong.
    pub fn decode(bytes: &[u8]) -> Result<UnitSettings, String> {
        let nl = bytes
            .iter()
            .position(|b| *b == b'\n')
            .ok_or("no header line (truncated?)")?;
        let header = std::str::from_utf8(&bytes[..nl]).map_err(|_| "header is not text")?;
        let body = &bytes[nl + 1..];
        let f: Vec<&str> = header.split(' ').collect();
        let [magic, version, crc, len] = f.as_slice() else {
            return Err(format!("bad header {header:?}"));
        };
        if *magic != MAGIC {
            return Err(format!("bad header {header:?}"));
        }
        if version.parse::<u32>().ok() != Some(VERSION) {
            return Err(format!("unknown format version {version}"));
        }
        let len: usize = len.parse().map_err(|_| format!("bad length {len:?}"))?;
        if body.len() != len {
            return Err(format!(
                "body is {} bytes, header says {len} (truncated?)",
                body.len()
            ));
        }
        let crc = u32::from_str_radix(crc, 16).map_err(|_| format!("bad checksum {crc:?}"))?;
        let actual = crc32fast::hash(body);
        if actual != crc {
            return Err(format!("checksum {actual:08x} does not match {crc:08x}"));
        }
        let s: UnitSettings =
            serde_json::from_slice(body).map_err(|e| format!("undecodable body: {e}"))?;
        s.validate()?;
        Ok(s)
    }

    /// Values inside their allowed ranges, sensors known.
    fn validate(&self) -> Result<(), String> {
        for (name, v) in &self.calibration {
            if Sensor::from_name(name).is_none() {
                return Err(format!("unknown sensor {name:?}"));
            }
            if !v.is_finite() || !crate::limits::CALIBRATION.contains(v) {
                return Err(format!("calibration {name} = {v} out of range"));
            }
        }
        if let Some(op) = &self.setpoint {
            let range = crate::limits::SETPOINT_C;
            if !op.celsius.is_finite() || !range.contains(&op.celsius) {
                return Err(format!("setpoint {} out of range", op.celsius));
            }
        }
        Ok(())
    }
}

/// The settings file's path in `state_dir`.
pub fn path(state_dir: &Path) -> PathBuf {
    state_dir.join(FILE_NAME)
}

/// Reads the settings file: `Ok(None)` when there is none, `Err` when it exists but cannot
/// be read or is damaged.
pub fn load(state_dir: &Path) -> Result<Option<UnitSettings>, SettingsError> {
    let file = path(state_dir);
    let shown = file.display().to_string();
    let io = |what, source| SettingsError::Io {
        path: shown.clone(),
        what,
        source,
    };
    let meta = match std::fs::metadata(&file) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io("stat", e)),
    };
    if !meta.is_file() || meta.len() > MAX_LEN {
        return Err(SettingsError::Damaged {
            path: shown,
            reason: format!("not a regular file of at most {MAX_LEN} bytes"),
        });
    }
    let bytes = std::fs::read(&file).map_err(|e| io("read", e))?;
    UnitSettings::decode(&bytes)
        .map(Some)
        .map_err(|reason| SettingsError::Damaged {
            path: shown,
            reason,
        })
}

/// Replaces the settings file atomically: temporary file, fsync, rename, fsync of the
/// directory. Returns only once the new settings are on disk.
pub fn save(state_dir: &Path, settings: &UnitSettings) -> Result<(), SettingsError> {
    let file = path(state_dir);
    let tmp = state_dir.join(format!("{FILE_NAME}.tmp"));
    let io = |p: &Path, what, source| SettingsError::Io {
        path: p.display().to_string(),
        what,
        source,
    };
    std::fs::create_dir_all(state_dir).map_err(|e| io(state_dir, "create directory", e))?;
    {
        let mut f = std::fs::File::create(&tmp).map_err(|e| io(&tmp, "create", e))?;
        f.write_all(&settings.encode())
            .map_err(|e| io(&tmp, "write", e))?;
        f.sync_all().map_err(|e| io(&tmp, "fsync", e))?;
    }
    std::fs::rename(&tmp, &file).map_err(|e| io(&file, "rename", e))?;
    std::fs::File::open(state_dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io(state_dir, "fsync directory", e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> UnitSettings {
        let mut s = UnitSettings {
            setpoint: Some(OperatorSetpoint {
                celsius: 10.0,
                config_c: 4.0,
                by_uid: Some(1000),
                unix_ms: 1_700_000_000_000,
            }),
            ..UnitSettings::default()
        };
        s.set_calibration_array([-3.0, 0.0, 0.0, 5.0, 0.0]);
        s
    }

    #[test]
    fn round_trips_through_the_file() {
        let dir = tempfile::tempdir().unwrap();
        assert!(load(dir.path()).unwrap().is_none(), "no file yet");
        save(dir.path(), &sample()).unwrap();
        assert_eq!(load(dir.path()).unwrap(), Some(sample()));
        assert!(
            !dir.path().join("settings.json.tmp").exists(),
            "the temporary file was renamed"
        );
    }

    #[test]
    fn replace_is_atomic_a_stale_temporary_file_is_ignored_and_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        save(dir.path(), &sample()).unwrap();
        // A crash between writing the temporary file and the rename leaves it behind: the
        // real file still holds the previous settings, and the next save replaces both.
        std::fs::write(dir.path().join("settings.json.tmp"), b"half a fi").unwrap();
        assert_eq!(load(dir.path()).unwrap(), Some(sample()));
        let mut next = sample();
        next.setpoint = None;
        save(dir.path(), &next).unwrap();
        assert_eq!(load(dir.path()).unwrap(), Some(next));
    }

    #[test]
    fn a_flipped_bit_fails_the_checksum() {
        let dir = tempfile::tempdir().unwrap();
        save(dir.path(), &sample()).unwrap();
        let p = path(dir.path());
        let mut bytes = std::fs::read(&p).unwrap();
        let n = bytes.len();
        // "10.0" → "11.0" keeps the JSON valid: only the CRC can tell.
        let text = String::from_utf8(bytes.clone()).unwrap();
        let at = text.find("10.0").unwrap();
        bytes[at + 1] = b'1';
        assert_eq!(bytes.len(), n);
        std::fs::write(&p, &bytes).unwrap();
        let e = load(dir.path()).unwrap_err();
        assert!(matches!(e, SettingsError::Damaged { .. }), "{e}");
        assert!(e.to_string().contains("checksum"), "{e}");
    }

    #[test]
    fn a_truncated_file_is_damaged() {
        let dir = tempfile::tempdir().unwrap();
        save(dir.path(), &sample()).unwrap();
        let p = path(dir.path());
        let bytes = std::fs::read(&p).unwrap();
        for cut in [0, 5, bytes.len() / 2, bytes.len() - 1] {
            std::fs::write(&p, &bytes[..cut]).unwrap();
            let e = load(dir.path()).unwrap_err();
            assert!(matches!(e, SettingsError::Damaged { .. }), "cut {cut}: {e}");
        }
    }

    #[test]
    fn out_of_range_values_are_refused_even_with_a_good_checksum() {
        let mut s = sample();
        s.calibration.insert("skin".into(), 50.0);
        assert!(UnitSettings::decode(&s.encode()).is_err());
    }

    #[test]
    fn a_write_into_a_missing_or_unwritable_place_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let file_as_dir = dir.path().join("plain-file");
        std::fs::write(&file_as_dir, b"x").unwrap();
        let e = save(&file_as_dir, &sample()).unwrap_err();
        assert!(matches!(e, SettingsError::Io { .. }), "{e}");
    }

    #[test]
    fn the_operator_setpoint_holds_only_while_the_config_is_unchanged() {
        let s = sample();
        assert_eq!(s.resolve_setpoint(4.0).celsius(), 10.0);
        assert!(matches!(
            s.resolve_setpoint(4.0),
            SetpointChoice::Operator(_)
        ));
        let changed = s.resolve_setpoint(6.0);
        assert_eq!(changed.celsius(), 6.0);
        assert!(changed.explain().contains("administrator"), "{changed:?}");
        assert_eq!(UnitSettings::default().resolve_setpoint(5.0).celsius(), 5.0);
    }
}
