//! The operator settings the core holds: the setpoint and calibration offsets, restored at
//! start, changed by command, and confirmed by a technician after they may have been lost.

use super::Core;
use crate::api::CommandError;
use crate::limits as range;
use crate::model::alarm::AlarmKind;
use crate::model::alarm_text::AlarmText;
use crate::unit_settings::{OperatorSetpoint, SetpointChoice, UnitSettings};
use coldspray_hal::Sensor;
use std::time::Duration;

impl Core {
    /// Restores persisted settings (setpoint and calibration), validating them.
    pub fn restore_settings(&mut self, setpoint_c: Option<f64>, calibration: [f64; 5]) {
        if let Some(sp) = setpoint_c.filter(|sp| sp.is_finite() && range::SETPOINT_C.contains(sp)) {
            self.thermostat.set_setpoint(sp);
        }
        for (slot, value) in self.calibration.iter_mut().zip(calibration) {
            if value.is_finite() && range::CALIBRATION.contains(&value) {
                *slot = value;
            }
        }
    }

    /// Restores the unit's settings file: calibration offsets, and the operator's setpoint
    /// when the precedence rule keeps it (see [`crate::unit_settings`]). Returns which
    /// setpoint is in force and why.
    pub fn restore_unit_settings(&mut self, settings: &UnitSettings) -> SetpointChoice {
        let choice = settings.resolve_setpoint(self.config_setpoint_c);
        if let SetpointChoice::Operator(op) = &choice {
            self.thermostat.set_setpoint(op.celsius);
            self.operator_setpoint = Some(op.clone());
        }
        self.restore_settings(None, settings.calibration_array());
        choice
    }

    /// The settings to keep in the unit's settings file.
    pub fn unit_settings(&self) -> UnitSettings {
        let mut s = UnitSettings {
            setpoint: self.operator_setpoint.clone(),
            ..UnitSettings::default()
        };
        s.set_calibration_array(self.calibration);
        s
    }

    /// The saved settings could not be read (or may have been lost): raises the latching
    /// high `settings_lost` alarm and refuses every start (command, pedal, auto-start) and
    /// arming until a technician checks the settings in force and sends
    /// [`Command::ConfirmSettings`].
    pub fn require_settings_confirmation(&mut self, why: &str, now: Duration) {
        self.settings_unconfirmed = true;
        self.armed = None;
        self.laser.pending_autostart = None;
        self.set_runtime_alarm(AlarmKind::SettingsLost, true, why, now);
    }

    /// Records a settings change the daemon made itself (at start, by the precedence rule)
    /// in the event log; no caller uid.
    pub fn record_config_change(&mut self, what: String, now: Duration) {
        self.config_changed(now, what);
    }

    /// Whether treatment waits for a technician to confirm the settings.
    pub fn settings_unconfirmed(&self) -> bool {
        self.settings_unconfirmed
    }

    pub(super) fn set_setpoint(&mut self, celsius: f64, now: Duration) -> Result<(), CommandError> {
        range::check("setpoint_c", celsius, range::SETPOINT_C)?;
        self.thermostat.set_setpoint(celsius);
        self.operator_setpoint = Some(OperatorSetpoint {
            celsius,
            config_c: self.config_setpoint_c,
            by_uid: self.caller,
            unix_ms: self.now_unix_ms,
        });
        self.config_changed(
            now,
            format!(
                "setpoint {celsius:.1} °C (over [thermostat] setpoint_c = {:.1} °C)",
                self.config_setpoint_c
            ),
        );
        self.dirty.settings = true;
        Ok(())
    }

    pub(super) fn set_calibration(
        &mut self,
        sensor: Sensor,
        offset: f64,
        now: Duration,
    ) -> Result<(), CommandError> {
        range::check("offset", offset, range::CALIBRATION)?;
        self.calibration[sensor.index()] = offset;
        self.config_changed(
            now,
            format!("calibration {sensor} {offset:+.2} {}", sensor.unit()),
        );
        self.dirty.settings = true;
        Ok(())
    }

    /// A technician checked the settings in force: treatment may start again.
    pub(super) fn confirm_settings(&mut self, now: Duration) -> Result<(), CommandError> {
        let what = format!(
            "settings confirmed by a technician: setpoint {:.1} °C, calibration {}",
            self.thermostat.setpoint(),
            Sensor::ALL
                .iter()
                .map(|s| format!("{s} {:+.2}", self.calibration[s.index()]))
                .collect::<Vec<_>>()
                .join(", ")
        );
        self.settings_unconfirmed = false;
        let stamp = self.stamp(now);
        self.alarms.set(
            AlarmKind::SettingsLost,
            false,
            || AlarmText::reason(AlarmKind::SettingsLost, ""),
            stamp,
            &mut self.events,
        );
        if self.alarms.has(AlarmKind::SettingsLost) {
            self.alarms.acknowledge(
                Some(&AlarmKind::SettingsLost.key()),
                stamp,
                &mut self.events,
            )?;
        }
        self.config_changed(now, what);
        self.dirty.settings = true;
        Ok(())
    }
}
