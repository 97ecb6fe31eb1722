//! The unit settings at start and on every change: restored from `<state_dir>/settings.json`
//! (see [`crate::unit_settings`]), taken once from the treatment log on a unit from before the
//! file, and saved by the journal — file first, then the log's copy.
//!
//! What start-up does:
//!
//! | settings file | treatment log's copy | result |
//! |---|---|---|
//! | intact | any | its settings; the setpoint by the precedence rule |
//! | missing | none | a new unit: configured setpoint, no offsets |
//! | missing | from before the file | migrated: the log's settings, written to the file |
//! | missing | written after the file | `settings_lost`: the log's copy in force, no treatment until confirmed |
//! | missing | log unavailable | `settings_lost`: configured setpoint, no offsets, no treatment until confirmed |
//! | unreadable or damaged | any | `settings_lost`: the log's copy (or the configuration) in force, no treatment until confirmed |

use super::journal::SettingsJob;
use crate::control::Core;
use crate::model::alarm::AlarmKind;
use crate::store::{saved_or_default, LogStore, Settings};
use crate::unit_settings::{self, OperatorSetpoint, SetpointChoice, UnitSettings};
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc};
use std::time::Duration;

/// The settings the log's copy describes, the configured setpoint taken as its base.
fn from_log(log: &Settings, config_c: f64) -> UnitSettings {
    let mut s = UnitSettings::default();
    s.set_calibration_array(log.calibration_array());
    if log.setpoint_c.to_bits() != config_c.to_bits() {
        s.setpoint = Some(OperatorSetpoint {
            celsius: log.setpoint_c,
            config_c,
            by_uid: None,
            unix_ms: 0,
        });
    }
    s
}

/// Writes the settings at start (migration, a dropped operator setpoint); a failure raises
/// `settings_not_saved`.
fn write_now(core: &mut Core, dir: &Path, why: &str, now: Duration) {
    match unit_settings::save(dir, &core.unit_settings()) {
        Ok(()) => tracing::info!("unit settings written to {} ({why})", dir.display()),
        Err(e) => {
            tracing::error!("unit settings NOT saved ({why}): {e}");
            core.set_runtime_alarm(AlarmKind::SettingsNotSaved, true, &e.to_string(), now);
        }
    }
}

/// Restores the unit settings into `core` at start, logging which setpoint is in force and
/// why; raises `settings_lost` (treatment refused until confirmed) when they cannot be read.
pub(super) fn restore(core: &mut Core, dir: &Path, store: Option<&dyn LogStore>, now: Duration) {
    let config_c = core.setpoint();
    let log = store.map(|s| saved_or_default("settings", s.load_settings()));
    let lost = match unit_settings::load(dir) {
        Ok(Some(file)) => {
            let choice = core.restore_unit_settings(&file);
            tracing::info!(
                "unit settings from {}: {}; calibration {:?}",
                unit_settings::path(dir).display(),
                choice.explain(),
                core.calibration()
            );
            if matches!(choice, SetpointChoice::ConfigChanged { .. }) {
                core.record_config_change(choice.explain(), now);
                write_now(
                    core,
                    dir,
                    "the operator's setpoint gave way to the configuration",
                    now,
                );
            }
            None
        }
        Ok(None) => match &log {
            Some(None) => {
                tracing::info!(
                    "no saved unit settings (a new unit): {}",
                    SetpointChoice::Config(config_c).explain()
                );
                None
            }
            Some(Some(l)) if !l.in_file => {
                let choice = core.restore_unit_settings(&from_log(l, config_c));
                tracing::warn!(
                    "unit settings taken from the treatment log (first start with a settings \
                     file): {}",
                    choice.explain()
                );
                write_now(core, dir, "migrated from the treatment log", now);
                None
            }
            Some(Some(l)) => {
                core.restore_unit_settings(&from_log(l, config_c));
                Some(format!(
                    "the settings file {} is missing although it was written before; the \
                     treatment log's copy is in force",
                    unit_settings::path(dir).display()
                ))
            }
            None => Some(format!(
                "the settings file {} is missing and the treatment log cannot tell whether \
                 the unit was calibrated; running with the configured setpoint and no \
                 calibration offsets",
                unit_settings::path(dir).display()
            )),
        },
        Err(e) => {
            let fallback = match log.as_ref().and_then(Option::as_ref) {
                Some(l) => {
                    core.restore_unit_settings(&from_log(l, config_c));
                    "the treatment log's copy is in force"
                }
                None => "running with the configured setpoint and no calibration offsets",
            };
            Some(format!("{e}; {fallback}"))
        }
    };
    if let Some(why) = lost {
        let why = format!(
            "{why} (setpoint {:.1} °C, calibration {:?}): check them and confirm with \
             `coldsprayctl maintenance confirm-settings`",
            core.setpoint(),
            core.calibration()
        );
        tracing::error!("unit settings lost: {why}");
        core.require_settings_confirmation(&why, now);
    }
}

/// Makes the journal's job that saves the unit settings.
pub(super) struct Saver {
    /// The state directory.
    pub dir: PathBuf,
    /// The treatment log, for its copy.
    pub log: Option<Arc<dyn LogStore>>,
    /// Where each save's outcome goes (the control loop raises or clears the alarm).
    pub status: mpsc::Sender<Result<(), String>>,
}

impl Saver {
    /// A job that saves `core`'s settings as they are now.
    pub fn job(&self, core: &Core) -> SettingsJob {
        let settings = core.unit_settings();
        let (setpoint, calibration) = (core.setpoint(), core.calibration());
        let dir = self.dir.clone();
        let log = self.log.clone();
        let status = self.status.clone();
        Box::new(move || {
            let saved = unit_settings::save(&dir, &settings).map_err(|e| e.to_string());
            if let Some(log) = &log {
                // Written after the settings file: from now on a missing file is a loss.
                let copy = Settings::of_unit(setpoint, calibration, true);
                if let Err(e) = log.save_settings(&copy) {
                    tracing::warn!("treatment log's copy of the unit settings not saved: {e}");
                }
            }
            if status.send(saved.clone()).is_err() {
                tracing::debug!("settings save outcome: the control loop is gone");
            }
            saved
        })
    }
}
