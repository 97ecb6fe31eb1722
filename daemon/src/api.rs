//! What the control core offers the rest of the daemon (D-Bus, log store, metrics, live view):
//! commands in, a [`Snapshot`] of the unit out, and a stream of [`Event`]s.

use crate::model::alarm::{Alarm, AlarmKind};
use crate::model::session::{Sample, SessionRecord, SessionStart};
use crate::model::state::UnitState;
use crate::protocol::Protocol;
use coldspray_hal::{Output, Sensor};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Per-session overrides accepted with a start command. Absent fields keep the protocol's.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StartOptions {
    /// Spray time, seconds.
    pub spray_s: Option<f64>,
    /// Skin target, °C.
    pub skin_target_c: Option<f64>,
    /// Pump drive, percent.
    pub pump_percent: Option<u8>,
}

/// A command to the control core. Every argument has been validated by the caller against
/// the documented ranges; the core re-checks what depends on its state.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// Start spraying now with a protocol.
    StartSession {
        /// Protocol name.
        protocol: String,
        /// Overrides.
        options: StartOptions,
    },
    /// Stop the running session.
    StopSession,
    /// Arm auto-start: the next end of laser emission starts a session with this protocol.
    Arm {
        /// Protocol name.
        protocol: String,
    },
    /// Disarm auto-start.
    Disarm,
    /// Acknowledge every alarm (`None`) or one alarm by key.
    Acknowledge {
        /// Alarm key (see [`AlarmKind::key`]), or all.
        key: Option<String>,
    },
    /// Silence the buzzer for the audio-pause time (new alarms still sound).
    AudioPause,
    /// Change the reservoir setpoint, °C. It overrides `[thermostat] setpoint_c`, also after
    /// a restart, for as long as that configured value stays what it was when this was set
    /// (an administrator who edits it takes back control at the next start).
    SetSetpoint {
        /// New setpoint.
        celsius: f64,
    },
    /// Enter maintenance mode (only from ready, precooling or fault).
    EnterMaintenance,
    /// Leave maintenance mode (back to precooling).
    ExitMaintenance,
    /// Maintenance: run pump and valve for a while to fill the line.
    Prime {
        /// Seconds, 1–60.
        seconds: f64,
    },
    /// Maintenance: run the pump with the valve open to empty the reservoir.
    Drain {
        /// Seconds, 1–300.
        seconds: f64,
    },
    /// Maintenance: switch one output on for a while (interlocks still apply).
    TestOutput {
        /// The output.
        output: Output,
        /// Seconds, 0.1–30.
        seconds: f64,
    },
    /// Run the self-test (from ready, precooling or maintenance).
    SelfTest,
    /// Set a sensor's calibration offset (added to every raw reading).
    SetCalibration {
        /// Sensor.
        sensor: Sensor,
        /// Offset in the sensor's unit (°C or bar), −5..=5.
        offset: f64,
    },
    /// A technician confirms the settings in force (setpoint, calibration) after the saved
    /// ones could not be read: ends the `settings_lost` alarm, allows treatment again, and
    /// saves these settings.
    ConfirmSettings,
    /// Record a water change (counter).
    RecordWaterChange,
    /// Create or replace a protocol.
    UpsertProtocol(Box<Protocol>),
    /// Delete a protocol (factory protocols can be changed but not deleted).
    DeleteProtocol {
        /// Protocol name.
        name: String,
    },
}

/// What an accepted command produced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Reply {
    /// Accepted; progress shows in the snapshot.
    Accepted,
    /// A session started with this id.
    SessionStarted(u64),
}

/// Why the core refused a command.
#[derive(Debug, Clone, PartialEq, thiserror::Error, Serialize, Deserialize)]
pub enum CommandError {
    /// The unit is not ready to spray.
    #[error("not ready: the unit is {state}")]
    NotReady {
        /// Current state.
        state: UnitState,
    },
    /// An interlock is active.
    #[error("interlock active: {:?}", alarm_keys(.kinds))]
    InterlockActive {
        /// The active interlock alarms.
        kinds: Vec<AlarmKind>,
    },
    /// No protocol by that name.
    #[error("unknown protocol `{0}`")]
    UnknownProtocol(String),
    /// A value outside its allowed range.
    #[error("{name} = {value} is out of range {min}..={max}")]
    OutOfRange {
        /// Argument name.
        name: String,
        /// Value given.
        value: f64,
        /// Smallest allowed.
        min: f64,
        /// Largest allowed.
        max: f64,
    },
    /// Any other invalid argument.
    #[error("invalid argument {name}: {reason}")]
    InvalidArgument {
        /// Argument name.
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// Not allowed in the current state.
    #[error("{action} is not permitted while {state}")]
    NotPermitted {
        /// What was asked.
        action: String,
        /// Current state.
        state: UnitState,
    },
    /// No alarm with that key is active.
    #[error("no active alarm `{0}`")]
    UnknownAlarm(String),
    /// The daemon is shutting down.
    #[error("the daemon is shutting down")]
    ShuttingDown,
    /// The saved settings could not be read: treatment waits for a technician's
    /// `ConfirmSettings`.
    #[error("the unit's saved settings could not be read: a technician must check and confirm them (coldsprayctl maintenance confirm-settings)")]
    SettingsUnconfirmed,
    /// The change is in force now but could not be saved: it is lost at the next restart.
    #[error("in force now but NOT saved (lost at the next restart): {0}")]
    NotSaved(String),
    /// The command was carried out, but what it caused could not be written to the treatment
    /// log (disk full, I/O error). The unit acts on it all the same: cooling is the therapy
    /// and is never withheld because a record cannot be written, so a session started this
    /// way sprays. The `log_write_failed` alarm is raised before this answer is sent.
    #[error("{done}, but it is NOT recorded in the treatment log: {reason}")]
    NotRecorded {
        /// What was done, human-readable ("session 8 started and is cooling").
        done: String,
        /// The session concerned, if any.
        session_id: Option<u64>,
        /// Why the write failed.
        reason: String,
    },
}

/// The keys of alarm kinds, as operators and the D-Bus API name them.
pub fn alarm_keys(kinds: &[AlarmKind]) -> Vec<String> {
    kinds.iter().map(|k| k.key()).collect()
}

impl From<crate::limits::OutOfRange> for CommandError {
    fn from(e: crate::limits::OutOfRange) -> Self {
        CommandError::OutOfRange {
            name: e.name,
            value: e.value,
            min: e.min,
            max: e.max,
        }
    }
}

/// Service counters (docs/REQUIREMENTS.md §4).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Counters {
    /// Pump running time, seconds.
    pub pump_seconds: f64,
    /// Chiller running time, seconds.
    pub chiller_seconds: f64,
    /// Sessions started.
    pub sessions: u64,
    /// Sessions that started late after the laser.
    pub late_sessions: u64,
    /// Water changes recorded.
    pub water_changes: u64,
}

/// The running session, as shown on the kiosk.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionProgress {
    /// Opening record.
    pub start: SessionStart,
    /// Seconds since it started.
    pub elapsed_s: f64,
    /// Seconds of spraying left at most.
    pub remaining_s: f64,
    /// Seconds until the session is expected to end (target reached and held, or the cap).
    #[serde(default)]
    pub end_in_s: f64,
    /// What `end_in_s` rests on.
    #[serde(default)]
    pub end_basis: crate::control::running_session::EndBasis,
    /// Prepare goal: whether the skin is inside the band now.
    pub in_band: bool,
    /// Hottest skin so far, °C.
    pub peak_skin_c: Option<f64>,
    /// Coldest skin so far, °C.
    pub min_skin_c: Option<f64>,
}

/// A maintenance activity in progress.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum MaintenanceActivity {
    /// Priming.
    Prime,
    /// Draining.
    Drain,
    /// Output test of one output.
    TestOutput(Output),
    /// Self-test running.
    SelfTest,
}

/// Everything a reader needs to know about the unit, published after every control step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// Monotonic time of this snapshot.
    pub at: Duration,
    /// Current state.
    pub state: UnitState,
    /// When the state was entered.
    pub state_since: Duration,
    /// Ready to spray at once (state ready, nothing blocking).
    pub ready: bool,
    /// Last valid calibrated reading per sensor (index [`Sensor::index`]); `None` when stale,
    /// faulty or not fitted.
    pub readings: [Option<f64>; 5],
    /// Flow through the meter, L/min.
    pub flow_l_min: f64,
    /// Output levels as driven (index [`Output::index`]).
    pub outputs: [bool; 7],
    /// Reservoir setpoint, °C.
    pub setpoint_c: f64,
    /// Calibration offsets in force, by [`Sensor::index`], in each sensor's unit.
    #[serde(default)]
    pub calibration: [f64; 5],
    /// Alarms that are active or latched.
    pub alarms: Vec<Alarm>,
    /// Audio paused until this monotonic time.
    pub audio_paused_until: Option<Duration>,
    /// Protocol armed for auto-start.
    pub armed: Option<String>,
    /// Running session.
    pub session: Option<SessionProgress>,
    /// Maintenance activity in progress.
    pub maintenance: Option<MaintenanceActivity>,
    /// Laser emitting now.
    pub laser_on: bool,
    /// Service counters.
    pub counters: Counters,
    /// Chiller duty over the last 10 minutes, 0–1.
    pub chiller_duty: f64,
    /// Last self-test: monotonic time and whether it passed.
    pub last_self_test: Option<(Duration, bool)>,
    /// The last self-test's report, one line per check (empty before the first).
    #[serde(default)]
    pub last_self_test_report: Vec<String>,
    /// The reservoir's float switch reports low water.
    #[serde(default)]
    pub water_low: bool,
    /// The protocol a press of the foot pedal starts: the armed one, else the default.
    #[serde(default)]
    pub pedal_protocol: String,
    /// Why a Start would not spray at once, as stable codes; empty when ready.
    #[serde(default)]
    pub not_ready: Vec<String>,
    /// Estimated seconds until ready while precooling (`None`: unknown or not precooling).
    #[serde(default)]
    pub ready_in_s: Option<f64>,
}

impl Snapshot {
    /// The last valid reading of a sensor.
    pub fn reading(&self, sensor: Sensor) -> Option<f64> {
        self.readings[sensor.index()]
    }

    /// Whether an output is on.
    pub fn output(&self, output: Output) -> bool {
        self.outputs[output.index()]
    }

    /// Whether an alarm of this kind is active or latched.
    pub fn has_alarm(&self, kind: AlarmKind) -> bool {
        self.alarms.iter().any(|a| a.kind == kind)
    }
}

/// Something that happened, in the order it happened. Durable events (see
/// [`Event::is_durable`]) are persisted and flushed before anyone else sees them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Event {
    /// The state changed.
    StateChanged {
        /// Monotonic time.
        at: Duration,
        /// Wall-clock time, ms since the Unix epoch.
        unix_ms: i64,
        /// Previous state.
        from: UnitState,
        /// New state.
        to: UnitState,
        /// Why, for people.
        reason: String,
        /// Why, as a stable code (`reservoir_at_setpoint`, `alarm:KEY`, ...: the list is in
        /// `Core::transition`'s callers and the README); empty in records written before codes.
        #[serde(default)]
        code: String,
    },
    /// An alarm was raised.
    AlarmRaised(Alarm),
    /// An alarm's condition went away (it may stay latched).
    AlarmConditionCleared {
        /// Which.
        kind: AlarmKind,
        /// Monotonic time.
        at: Duration,
        /// Wall-clock time, ms since the Unix epoch.
        unix_ms: i64,
    },
    /// An alarm was acknowledged.
    AlarmAcknowledged {
        /// Which.
        kind: AlarmKind,
        /// Monotonic time.
        at: Duration,
        /// Wall-clock time, ms since the Unix epoch.
        unix_ms: i64,
    },
    /// An alarm is gone (acknowledged if latching, and its condition cleared).
    AlarmRemoved {
        /// Which.
        kind: AlarmKind,
        /// Monotonic time.
        at: Duration,
        /// Wall-clock time, ms since the Unix epoch.
        unix_ms: i64,
    },
    /// A session started.
    SessionStarted(SessionStart),
    /// A session ended.
    SessionEnded(SessionRecord),
    /// One 10 Hz curve point of the running session.
    Sample(Sample),
    /// A configuration or protocol change made through a command.
    ConfigChanged {
        /// Monotonic time.
        at: Duration,
        /// Wall-clock time, ms since the Unix epoch.
        unix_ms: i64,
        /// What changed, human-readable.
        what: String,
        /// Who made the change: the D-Bus caller's uid, when known (`None` for changes the
        /// daemon makes itself and for records written before this was kept).
        #[serde(default)]
        by_uid: Option<u32>,
    },
    /// Something happened (the event that follows this one) but could not be written to the
    /// treatment log. Published, never stored.
    NotRecorded {
        /// Wall-clock time, ms since the Unix epoch.
        unix_ms: i64,
        /// What was not recorded, human-readable ("session 8 started").
        what: String,
        /// The session concerned, if any.
        session_id: Option<u64>,
        /// Why the write failed.
        reason: String,
    },
    /// Self-test finished.
    SelfTestFinished {
        /// Monotonic time.
        at: Duration,
        /// Passed.
        passed: bool,
        /// One line per check.
        report: Vec<String>,
    },
}

impl Event {
    /// True for events that must be on disk before anyone is told: session open and close,
    /// every high-priority alarm, state changes.
    pub fn is_durable(&self) -> bool {
        match self {
            Event::SessionStarted(_) | Event::SessionEnded(_) | Event::StateChanged { .. } => true,
            Event::AlarmRaised(a) => a.priority == crate::model::alarm::Priority::High,
            _ => false,
        }
    }
}

impl Snapshot {
    /// The snapshot of a unit that has just powered on: starting, every output off.
    pub fn power_on(setpoint_c: f64) -> Snapshot {
        Snapshot {
            at: Duration::ZERO,
            state: UnitState::Starting,
            state_since: Duration::ZERO,
            ready: false,
            readings: [None; 5],
            flow_l_min: 0.0,
            outputs: [false; 7],
            setpoint_c,
            calibration: [0.0; 5],
            alarms: Vec::new(),
            audio_paused_until: None,
            armed: None,
            session: None,
            maintenance: None,
            laser_on: false,
            counters: Counters::default(),
            chiller_duty: 0.0,
            last_self_test: None,
            last_self_test_report: Vec::new(),
            water_low: false,
            pedal_protocol: String::new(),
            not_ready: vec![UnitState::Starting.name().to_string()],
            ready_in_s: None,
        }
    }
}
