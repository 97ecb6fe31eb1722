//! Alarm kinds, priorities and the alarm record (IEC 60601-1-8 vocabulary).
//!
//! The alarm *logic* (latching, acknowledge, audio pause) lives in [`crate::safety::alarms`].

use coldspray_hal::Sensor;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::time::Duration;

/// Alarm priority after IEC 60601-1-8.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Priority {
    /// Immediate response needed: the patient may be harmed. Every one is logged durably.
    High,
    /// Prompt response needed.
    Medium,
    /// Awareness only.
    Low,
}

impl Priority {
    /// Every priority, highest first.
    pub const ALL: [Priority; 3] = [Priority::High, Priority::Medium, Priority::Low];

    /// Lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            Priority::High => "high",
            Priority::Medium => "medium",
            Priority::Low => "low",
        }
    }
}

impl fmt::Display for Priority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What an alarm is about. The interlock causes of docs/REQUIREMENTS.md §4 come first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "sensor")]
pub enum AlarmKind {
    /// Interlock: the E-stop is pressed.
    Estop,
    /// Interlock: the reservoir float reports low water.
    WaterLow,
    /// Interlock: pump on, no flow pulses within the dry-run limit.
    DryRun,
    /// Interlock: line pressure above the limit (blocked nozzle, dead-head).
    OverPressure,
    /// Interlock: line pressure below the limit while pumping (leak, burst line).
    UnderPressure,
    /// Interlock: no valid reading from this sensor for the staleness limit.
    SensorStale(Sensor),
    /// Interlock: this sensor reports a value outside its physical range.
    SensorImplausible(Sensor),
    /// Interlock: this sensor's reading has not changed at all for the stuck limit.
    SensorStuck(Sensor),
    /// Interlock: chiller hot side too hot.
    HeatsinkOverTemp,
    /// Interlock: continuous spray longer than the maximum.
    MaxSprayTime,
    /// Interlock: skin colder than the protocol's floor (cold injury).
    SkinBelowFloor,
    /// Chiller on but the reservoir does not cool as expected.
    ChillerIneffective,
    /// Reservoir below the anti-freeze cut-out; the chiller is held off.
    FreezeCutout,
    /// Self-test found a fault.
    SelfTestFailed,
    /// An output line could not be written (GPIO chip gone, driver error): its level is
    /// unknown, so the unit goes to `fault` and rewrites every line each step until writes
    /// work again.
    OutputFault,
    /// The treatment log cannot be written; the unit runs without logging.
    StoreUnavailable,
    /// At start the treatment log held fewer sessions than it had flushed: records were lost
    /// to damage in its files. Latched until acknowledged; the unit keeps working.
    LogDamaged,
    /// The unit's saved settings (calibration offsets, operator setpoint) could not be read
    /// or may have been lost: treatment is refused until a technician confirms the settings
    /// in force (`Maintenance.ConfirmSettings`). Latched.
    SettingsLost,
    /// The unit's settings file could not be written: the change is in force but would be
    /// lost at a restart. Latched; its condition ends with the next successful save.
    SettingsNotSaved,
    /// A write to the treatment log failed (disk full, I/O error): what happened since is not
    /// recorded. Treatment goes on; the condition lasts until a write works again, and the
    /// alarm stays latched until acknowledged.
    LogWriteFailed,
    /// The control loop was silent past the watchdog's stall limit (CPU starvation, a slow
    /// write): the outputs were driven safe and any session ended. Clears by itself once the
    /// loop has stepped on time for a while; the unit then returns to ready.
    ControlStalled,
    /// A session started later than the late threshold after the laser stopped. An advisory
    /// about that one session: removed when acknowledged.
    LateStart,
    /// A service counter passed its reminder.
    ServiceDue,
}

impl AlarmKind {
    /// Every alarm kind, with the three sensor alarms repeated for each of `sensors`.
    pub fn every(sensors: &[Sensor]) -> Vec<AlarmKind> {
        let mut kinds = vec![
            AlarmKind::Estop,
            AlarmKind::WaterLow,
            AlarmKind::DryRun,
            AlarmKind::OverPressure,
            AlarmKind::UnderPressure,
        ];
        for s in sensors {
            kinds.extend([
                AlarmKind::SensorStale(*s),
                AlarmKind::SensorImplausible(*s),
                AlarmKind::SensorStuck(*s),
            ]);
        }
        kinds.extend([
            AlarmKind::HeatsinkOverTemp,
            AlarmKind::MaxSprayTime,
            AlarmKind::SkinBelowFloor,
            AlarmKind::ChillerIneffective,
            AlarmKind::FreezeCutout,
            AlarmKind::SelfTestFailed,
            AlarmKind::OutputFault,
            AlarmKind::StoreUnavailable,
            AlarmKind::LogDamaged,
            AlarmKind::SettingsLost,
            AlarmKind::SettingsNotSaved,
            AlarmKind::LogWriteFailed,
            AlarmKind::ControlStalled,
            AlarmKind::LateStart,
            AlarmKind::ServiceDue,
        ]);
        kinds
    }

    /// Stable machine-readable code (D-Bus, metrics label, log).
    pub fn code(self) -> &'static str {
        match self {
            AlarmKind::Estop => "estop",
            AlarmKind::WaterLow => "water_low",
            AlarmKind::DryRun => "dry_run",
            AlarmKind::OverPressure => "over_pressure",
            AlarmKind::UnderPressure => "under_pressure",
            AlarmKind::SensorStale(_) => "sensor_stale",
            AlarmKind::SensorImplausible(_) => "sensor_implausible",
            AlarmKind::SensorStuck(_) => "sensor_stuck",
            AlarmKind::HeatsinkOverTemp => "heatsink_over_temp",
            AlarmKind::MaxSprayTime => "max_spray_time",
            AlarmKind::SkinBelowFloor => "skin_below_floor",
            AlarmKind::ChillerIneffective => "chiller_ineffective",
            AlarmKind::FreezeCutout => "freeze_cutout",
            AlarmKind::SelfTestFailed => "self_test_failed",
            AlarmKind::OutputFault => "output_fault",
            AlarmKind::StoreUnavailable => "store_unavailable",
            AlarmKind::LogDamaged => "log_damaged",
            AlarmKind::SettingsLost => "settings_lost",
            AlarmKind::SettingsNotSaved => "settings_not_saved",
            AlarmKind::LogWriteFailed => "log_write_failed",
            AlarmKind::ControlStalled => "control_stalled",
            AlarmKind::LateStart => "late_start",
            AlarmKind::ServiceDue => "service_due",
        }
    }

    /// The sensor concerned, for sensor alarms.
    pub fn sensor(self) -> Option<Sensor> {
        match self {
            AlarmKind::SensorStale(s)
            | AlarmKind::SensorImplausible(s)
            | AlarmKind::SensorStuck(s) => Some(s),
            _ => None,
        }
    }

    /// A unique key for this alarm: the code, plus `:sensor` for sensor alarms
    /// (`sensor_stale:skin`). Used to acknowledge one alarm by name.
    pub fn key(self) -> String {
        match self.sensor() {
            Some(s) => format!("{}:{}", self.code(), s.name()),
            None => self.code().to_string(),
        }
    }

    /// Parses a key made by [`AlarmKind::key`].
    pub fn from_key(key: &str) -> Option<AlarmKind> {
        let (code, sensor) = match key.split_once(':') {
            Some((c, s)) => (c, Some(Sensor::from_name(s)?)),
            None => (key, None),
        };
        let kind = match (code, sensor) {
            ("sensor_stale", Some(s)) => AlarmKind::SensorStale(s),
            ("sensor_implausible", Some(s)) => AlarmKind::SensorImplausible(s),
            ("sensor_stuck", Some(s)) => AlarmKind::SensorStuck(s),
            (_, Some(_)) => return None,
            ("estop", None) => AlarmKind::Estop,
            ("water_low", None) => AlarmKind::WaterLow,
            ("dry_run", None) => AlarmKind::DryRun,
            ("over_pressure", None) => AlarmKind::OverPressure,
            ("under_pressure", None) => AlarmKind::UnderPressure,
            ("heatsink_over_temp", None) => AlarmKind::HeatsinkOverTemp,
            ("max_spray_time", None) => AlarmKind::MaxSprayTime,
            ("skin_below_floor", None) => AlarmKind::SkinBelowFloor,
            ("chiller_ineffective", None) => AlarmKind::ChillerIneffective,
            ("freeze_cutout", None) => AlarmKind::FreezeCutout,
            ("self_test_failed", None) => AlarmKind::SelfTestFailed,
            ("output_fault", None) => AlarmKind::OutputFault,
            ("store_unavailable", None) => AlarmKind::StoreUnavailable,
            ("log_damaged", None) => AlarmKind::LogDamaged,
            ("settings_lost", None) => AlarmKind::SettingsLost,
            ("settings_not_saved", None) => AlarmKind::SettingsNotSaved,
            ("log_write_failed", None) => AlarmKind::LogWriteFailed,
            ("control_stalled", None) => AlarmKind::ControlStalled,
            ("late_start", None) => AlarmKind::LateStart,
            ("service_due", None) => AlarmKind::ServiceDue,
            _ => return None,
        };
        Some(kind)
    }

    /// True for the interlock causes of docs/REQUIREMENTS.md §4: each forces the safe state.
    pub fn is_interlock(self) -> bool {
        matches!(
            self,
            AlarmKind::Estop
                | AlarmKind::WaterLow
                | AlarmKind::DryRun
                | AlarmKind::OverPressure
                | AlarmKind::UnderPressure
                | AlarmKind::SensorStale(_)
                | AlarmKind::SensorImplausible(_)
                | AlarmKind::SensorStuck(_)
                | AlarmKind::HeatsinkOverTemp
                | AlarmKind::MaxSprayTime
                | AlarmKind::SkinBelowFloor
        )
    }

    /// Priority of this alarm: high unless named here. High is every interlock but the two a
    /// person resolves without hurry (refill the water, let the spray time reset), and every
    /// fault that stops treatment or leaves the outputs unknown; a kind added without a
    /// priority is high, the safe side.
    pub fn priority(self) -> Priority {
        match self {
            AlarmKind::WaterLow
            | AlarmKind::MaxSprayTime
            | AlarmKind::StoreUnavailable
            | AlarmKind::LogDamaged
            | AlarmKind::SettingsNotSaved
            | AlarmKind::LogWriteFailed => Priority::Medium,
            AlarmKind::FreezeCutout | AlarmKind::LateStart | AlarmKind::ServiceDue => Priority::Low,
            _ => Priority::High,
        }
    }

    /// Whether the alarm stays (latched) after its condition is gone, until acknowledged.
    /// Every fault that stopped treatment latches, except `control_stalled`, which clears
    /// itself after a hold-off so a starved unit returns to ready without anyone; the
    /// informational alarms do not latch, except `late_start` and `log_damaged`, which report
    /// an event that is over at once and stay until someone has seen them.
    pub fn latching(self) -> bool {
        (self.faults_unit() && self != AlarmKind::ControlStalled)
            || matches!(
                self,
                AlarmKind::LateStart
                    | AlarmKind::LogDamaged
                    | AlarmKind::SettingsLost
                    | AlarmKind::SettingsNotSaved
                    | AlarmKind::LogWriteFailed
            )
    }

    /// Whether this alarm puts the unit in `fault` (all actuators off) until cleared.
    pub fn faults_unit(self) -> bool {
        self.is_interlock()
            || matches!(
                self,
                AlarmKind::ChillerIneffective
                    | AlarmKind::SelfTestFailed
                    | AlarmKind::OutputFault
                    | AlarmKind::ControlStalled
            )
    }

    /// Human-readable description for the operator.
    pub fn describe(self) -> String {
        match self {
            AlarmKind::Estop => "E-stop pressed".into(),
            AlarmKind::WaterLow => "Reservoir water low: refill".into(),
            AlarmKind::DryRun => "No flow with the pump running (dry run)".into(),
            AlarmKind::OverPressure => "Line pressure too high (blocked nozzle?)".into(),
            AlarmKind::UnderPressure => "Line pressure too low (leak?)".into(),
            AlarmKind::SensorStale(s) => format!("No valid reading from the {s} sensor"),
            AlarmKind::SensorImplausible(s) => format!("Implausible {s} reading"),
            AlarmKind::SensorStuck(s) => format!("The {s} sensor reading is stuck"),
            AlarmKind::HeatsinkOverTemp => "Chiller heatsink over temperature".into(),
            AlarmKind::MaxSprayTime => "Maximum continuous spray time reached".into(),
            AlarmKind::SkinBelowFloor => "Skin below the cold-injury floor".into(),
            AlarmKind::ChillerIneffective => "Chiller ineffective: reservoir not cooling".into(),
            AlarmKind::FreezeCutout => "Reservoir near freezing: chiller held off".into(),
            AlarmKind::SelfTestFailed => "Self-test failed".into(),
            AlarmKind::OutputFault => "Output driver fault: an output line cannot be set".into(),
            AlarmKind::StoreUnavailable => {
                "Treatment log unavailable: sessions are not recorded".into()
            }
            AlarmKind::LogDamaged => {
                "Treatment log damaged: sessions recorded earlier were lost".into()
            }
            AlarmKind::SettingsLost => {
                "Unit settings unreadable: treatment refused until a technician confirms them"
                    .into()
            }
            AlarmKind::SettingsNotSaved => {
                "Unit settings could not be saved: they are lost at the next restart".into()
            }
            AlarmKind::LogWriteFailed => {
                "Treatment log write failed: what happens now is NOT recorded".into()
            }
            AlarmKind::ControlStalled => {
                "Control loop stalled: outputs were driven safe, treatment stopped".into()
            }
            AlarmKind::LateStart => "Cooling started late after the laser (palliative only)".into(),
            AlarmKind::ServiceDue => "Service due".into(),
        }
    }
}

impl fmt::Display for AlarmKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.key())
    }
}

/// One alarm as the operator sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alarm {
    /// What it is about.
    pub kind: AlarmKind,
    /// Its priority.
    pub priority: Priority,
    /// Operator message in English, with detail (e.g. the value seen): built from `params`
    /// by [`AlarmText::english`](super::alarm_text::AlarmText::english).
    pub message: String,
    /// The values in the message, by name (docs/ALARMS.md lists them per code). Empty in
    /// records written before parameters existed.
    #[serde(default)]
    pub params: super::alarm_text::AlarmParams,
    /// When it was raised (monotonic).
    pub raised_at: Duration,
    /// Wall-clock time it was raised, milliseconds since the Unix epoch.
    pub raised_unix_ms: i64,
    /// Whether its condition is still present.
    pub condition_present: bool,
    /// Whether an operator acknowledged it.
    pub acknowledged: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_for_every_kind() {
        let kinds = AlarmKind::every(&Sensor::ALL);
        assert_eq!(kinds.len(), 20 + 3 * Sensor::ALL.len());
        for k in kinds {
            assert_eq!(AlarmKind::from_key(&k.key()), Some(k), "{k}");
        }
        assert_eq!(AlarmKind::from_key("estop:skin"), None);
        assert_eq!(AlarmKind::from_key("sensor_stale"), None);
    }

    #[test]
    fn every_interlock_faults_the_unit_and_latches() {
        for k in [
            AlarmKind::Estop,
            AlarmKind::DryRun,
            AlarmKind::SensorStale(Sensor::Skin),
        ] {
            assert!(k.is_interlock() && k.latching() && k.faults_unit());
        }
        assert!(!AlarmKind::ServiceDue.faults_unit());
    }
}
