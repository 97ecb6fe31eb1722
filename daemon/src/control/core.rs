//! The control core: a deterministic, clock-injected state machine. It never reads a clock,
//! touches hardware or does I/O: the runtime (or a test) feeds it sensor samples, input edges,
//! commands and the time, and applies the output levels it returns.

use super::sensors::{FlowMeter, Readings};
use super::session::{ActiveSession, DAMAGE_THRESHOLD_C};
use super::settings::{SessionConfig, ThermostatConfig};
use super::thermostat::Thermostat;
use crate::alarm::AlarmKind;
use crate::api::{
    Command, CommandError, Counters, Event, MaintenanceActivity, Reply, SessionProgress, Snapshot,
    StartOptions,
};
use crate::limits::{self as range, secs};
use crate::protocol::{limits, Protocol};
use crate::safety::alarms::{AlarmManager, Stamp};
use crate::safety::gate::{self, GateInputs};
use crate::safety::interlocks::{InterlockInputs, Interlocks};
use crate::safety::SafetyConfig;
use crate::sensing::SensorSample;
use crate::session::{Outcome, Sample, SessionStart, StartCause};
use crate::state::UnitState;
use crate::unit_settings::{OperatorSetpoint, SetpointChoice, UnitSettings};
use coldspray_hal::{ChipIdentity, Input, InputEdge, Output, Sensor, SensorError};
use std::time::Duration;

/// Interval of the curve samples recorded during a session (10 Hz).
pub const SAMPLE_PERIOD: Duration = Duration::from_millis(100);
/// Pump run of the maintenance self-test's flow check.
const SELF_TEST_FLOW_S: f64 = 3.0;
/// A gap this long between two steps of the control loop is a stall: the watchdog has driven
/// the outputs safe (it acts at the same limit), so the core raises `control_stalled`.
pub const STALL_LIMIT: Duration = Duration::from_secs(1);
/// How long the loop must step on time after a stall before `control_stalled` clears itself.
/// The hold-off is what keeps a starved unit from flapping between fault and ready.
pub const STALL_HOLD_OFF: Duration = Duration::from_secs(10);
/// A gap between steps at least this long during the hold-off is not "on time": the hold-off
/// starts again.
pub const LATE_STEP: Duration = Duration::from_millis(250);

/// Everything the core is configured with.
#[derive(Debug, Clone, PartialEq)]
pub struct CoreConfig {
    /// Chiller thermostat.
    pub thermostat: ThermostatConfig,
    /// Interlock limits.
    pub safety: SafetyConfig,
    /// Sessions.
    pub session: SessionConfig,
    /// Protocol the foot pedal starts when nothing is armed.
    pub default_protocol: String,
    /// Arm auto-start with `default_protocol` at start.
    pub arm_at_start: bool,
}

impl Default for CoreConfig {
    fn default() -> Self {
        Self {
            thermostat: ThermostatConfig::default(),
            safety: SafetyConfig::default(),
            session: SessionConfig::default(),
            default_protocol: "co2_fractional".into(),
            arm_at_start: false,
        }
    }
}

/// The pump duty a step asks for when no session sets one (the pump is off or runs a
/// maintenance task at full drive).
const IDLE_PUMP_DUTY: u8 = 100;

/// What one step asks of the runtime.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StepOutput {
    /// Output levels to drive (already through the safety gate).
    pub outputs: [bool; 7],
    /// Pump drive, percent (1–100, as `OutputPort::set_pump_duty` takes it); it matters only
    /// while the pump runs.
    pub pump_duty: u8,
    /// Ask the sensor thread to read every chip's identity (self-test).
    pub identify: bool,
}

/// What changed that the runtime should persist.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Dirty {
    /// The protocol list changed.
    pub protocols: bool,
    /// Setpoint or calibration changed.
    pub settings: bool,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum SelfTestPhase {
    Identify {
        deadline: Duration,
    },
    Flow {
        until: Duration,
        pulses_at_start: u64,
    },
    HotSide {
        until: Duration,
        start_c: f64,
    },
}

#[derive(Debug, Clone, PartialEq)]
enum Task {
    Prime {
        until: Duration,
    },
    Drain {
        until: Duration,
    },
    TestOutput {
        output: Output,
        until: Duration,
    },
    SelfTest {
        phase: SelfTestPhase,
        report: Vec<String>,
        active: bool,
    },
}

/// Expected part per sensor, checked at self-test.
pub fn expected_part(sensor: Sensor) -> &'static str {
    match sensor {
        Sensor::Reservoir | Sensor::Mist => "TMP117",
        Sensor::Heatsink => "MCP9808",
        Sensor::Skin => "MLX90614",
        Sensor::Pressure => "ADS1115",
    }
}

/// The control core.
#[derive(Debug, Clone)]
pub struct Core {
    session_cfg: SessionConfig,
    default_protocol: String,
    thermostat: Thermostat,
    interlocks: Interlocks,
    alarms: AlarmManager,
    /// The controller's view of the sensors (the safety layer keeps its own).
    sensors: Readings,
    flow: FlowMeter,
    calibration: [f64; 5],
    protocols: Vec<Protocol>,
    state: UnitState,
    state_since: Duration,
    estop: bool,
    water_low: bool,
    laser_on: bool,
    /// Laser end time waiting for a session (auto-start or an operator start).
    laser_ended_at: Option<Duration>,
    /// Time the skin spent above 40 °C since the laser stopped.
    above_40: Duration,
    pending_autostart: Option<Duration>,
    armed: Option<String>,
    session: Option<ActiveSession>,
    task: Option<Task>,
    identities: [Option<Result<ChipIdentity, SensorError>>; 5],
    identify_requested: bool,
    last_self_test: Option<(Duration, bool)>,
    /// Since when the control loop has stepped on time after a stall (`control_stalled`).
    on_time_since: Option<Duration>,
    applied: [bool; 7],
    pump_on_since: Option<Duration>,
    valve_open_since: Option<Duration>,
    counters: Counters,
    chiller_duty: f64,
    next_session_id: u64,
    last_step: Option<Duration>,
    last_sample: Option<Duration>,
    now_unix_ms: i64,
    /// `[thermostat] setpoint_c` of the configuration, °C.
    config_setpoint_c: f64,
    /// The operator's setpoint in force, when it overrides the configuration's.
    operator_setpoint: Option<OperatorSetpoint>,
    /// The uid of the D-Bus caller of the command being applied, when known.
    caller: Option<u32>,
    /// The saved settings could not be read: no treatment until a technician confirms.
    settings_unconfirmed: bool,
    dirty: Dirty,
    events: Vec<Event>,
}

impl Core {
    /// A core in `starting`, every output off, self-test pending.
    ///
    /// `fitted` are the sensors this unit has; `counters` and `next_session_id` come from the
    /// log store (or zero on a new unit).
    pub fn new(
        config: CoreConfig,
        protocols: Vec<Protocol>,
        fitted: &[Sensor],
        counters: Counters,
        next_session_id: u64,
        now: Duration,
    ) -> Self {
        let armed = config
            .arm_at_start
            .then(|| config.default_protocol.clone())
            .filter(|name| protocols.iter().any(|p| &p.name == name));
        let config_setpoint_c = config.thermostat.setpoint_c;
        Self {
            thermostat: Thermostat::new(config.thermostat),
            interlocks: Interlocks::new(config.safety.clone(), fitted, now),
            session_cfg: config.session,
            default_protocol: config.default_protocol,
            alarms: AlarmManager::new(),
            sensors: Readings::new(fitted),
            flow: FlowMeter::default(),
            calibration: [0.0; 5],
            protocols,
            state: UnitState::Starting,
            state_since: now,
            estop: false,
            water_low: false,
            laser_on: false,
            laser_ended_at: None,
            above_40: Duration::ZERO,
            pending_autostart: None,
            armed,
            session: None,
            task: Some(Task::SelfTest {
                phase: SelfTestPhase::Identify {
                    deadline: now + secs(config.safety.self_test_timeout_s),
                },
                report: Vec::new(),
                active: false,
            }),
            identities: Default::default(),
            identify_requested: true,
            last_self_test: None,
            on_time_since: None,
            applied: [false; 7],
            pump_on_since: None,
            valve_open_since: None,
            counters,
            chiller_duty: 0.0,
            next_session_id: next_session_id.max(1),
            last_step: None,
            last_sample: None,
            now_unix_ms: 0,
            config_setpoint_c,
            operator_setpoint: None,
            caller: None,
            settings_unconfirmed: false,
            dirty: Dirty::default(),
            events: Vec::new(),
        }
    }

    /// Current state.
    pub fn state(&self) -> UnitState {
        self.state
    }

    /// The protocol list.
    pub fn protocols(&self) -> &[Protocol] {
        &self.protocols
    }

    /// The reservoir setpoint in effect, °C.
    pub fn setpoint(&self) -> f64 {
        self.thermostat.setpoint()
    }

    /// Calibration offsets, by [`Sensor::index`].
    pub fn calibration(&self) -> [f64; 5] {
        self.calibration
    }

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
        self.pending_autostart = None;
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

    /// Applies a command on behalf of a D-Bus caller: as [`Core::command`], and every
    /// settings change it makes is logged with the caller's uid.
    pub fn command_by(
        &mut self,
        command: Command,
        caller: Option<u32>,
        now: Duration,
        unix_ms: i64,
    ) -> Result<Reply, CommandError> {
        self.caller = caller;
        let r = self.command(command, now, unix_ms);
        self.caller = None;
        r
    }

    /// Takes the events produced since the last call, in order.
    pub fn drain_events(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.events)
    }

    /// Takes and resets the dirty flags.
    pub fn take_dirty(&mut self) -> Dirty {
        std::mem::take(&mut self.dirty)
    }

    fn stamp(&self, at: Duration) -> Stamp {
        Stamp {
            at,
            unix_ms: self.now_unix_ms,
        }
    }

    /// Raises an alarm whose condition the runtime detects (treatment log unavailable,
    /// service due); `present = false` clears its condition.
    pub fn set_runtime_alarm(
        &mut self,
        kind: AlarmKind,
        present: bool,
        message: &str,
        now: Duration,
    ) {
        let stamp = self.stamp(now);
        self.alarms.set(
            kind,
            present,
            || message.to_string(),
            stamp,
            &mut self.events,
        );
    }

    /// Raises a one-off alarm found outside the core: an event, not a lasting condition, so
    /// its condition is over at once and a latching kind stays until acknowledged.
    pub fn raise_runtime_event_alarm(&mut self, kind: AlarmKind, message: &str, now: Duration) {
        let stamp = self.stamp(now);
        self.alarms
            .raise(kind, message.to_string(), stamp, &mut self.events);
        self.alarms.clear_condition(kind, stamp, &mut self.events);
    }

    /// How the last output write went: `Some(error)` raises `output_fault` and puts the unit
    /// in `fault` (actuators commanded off); `None` ends the condition, and the latched alarm
    /// then waits for acknowledgement like any interlock.
    pub fn set_output_fault(&mut self, failure: Option<&str>, now: Duration) {
        let stamp = self.stamp(now);
        self.alarms.set(
            AlarmKind::OutputFault,
            failure.is_some(),
            || failure.unwrap_or_default().to_string(),
            stamp,
            &mut self.events,
        );
        if failure.is_some() {
            self.enter_fault(now, AlarmKind::OutputFault);
        }
    }

    /// How long the control loop was away since its previous step (wall clock on the
    /// hardware, simulated time in the lockstep harness), and whether the watchdog drove the
    /// outputs safe meanwhile. A stall raises `control_stalled` and puts the unit in `fault`
    /// (any session ends as an interlock); the alarm clears by itself once the loop has stepped
    /// on time (no gap of [`LATE_STEP`]) for [`STALL_HOLD_OFF`], and the unit then returns to
    /// ready through precooling.
    pub fn on_loop_gap(&mut self, gap: Duration, watchdog_fired: bool, now: Duration) {
        if watchdog_fired || gap >= STALL_LIMIT {
            let stamp = self.stamp(now);
            let msg = format!(
                "control loop silent for {:.1} s: outputs were driven safe",
                gap.as_secs_f64()
            );
            self.alarms
                .raise(AlarmKind::ControlStalled, msg, stamp, &mut self.events);
            self.enter_fault(now, AlarmKind::ControlStalled);
            self.on_time_since = Some(now);
        } else if gap >= LATE_STEP && self.on_time_since.is_some() {
            self.on_time_since = Some(now);
        }
    }

    /// Ends `control_stalled` once the loop has been on time for the hold-off.
    fn check_stall_recovered(&mut self, now: Duration) {
        let Some(since) = self.on_time_since else {
            return;
        };
        if now.saturating_sub(since) >= STALL_HOLD_OFF {
            self.on_time_since = None;
            let stamp = self.stamp(now);
            self.alarms
                .clear_condition(AlarmKind::ControlStalled, stamp, &mut self.events);
        }
    }

    /// One sensor reading arrives (raw; calibration is applied here).
    pub fn on_sensor(&mut self, mut sample: SensorSample) {
        if let Ok(v) = &mut sample.value {
            *v += self.calibration[sample.sensor.index()];
        }
        self.sensors.update(&sample);
        self.interlocks.on_sample(&sample);
    }

    /// A chip identity arrives (self-test).
    pub fn on_identity(&mut self, sensor: Sensor, result: Result<ChipIdentity, SensorError>) {
        self.identities[sensor.index()] = Some(result);
    }

    /// The current level of an input (polled at start, or after lost events).
    pub fn on_level(&mut self, input: Input, level: bool) {
        match input {
            Input::Estop => self.estop = level,
            Input::WaterLow => self.water_low = level,
            Input::LaserEmission => self.laser_on = level,
            // The pedal acts on press edges only; its level carries no state.
            Input::Trigger | Input::FlowPulse => {}
        }
    }

    /// An input edge arrives. Reactions happen in the next [`Core::step`], which the runtime
    /// runs at once.
    pub fn on_edge(&mut self, edge: InputEdge) {
        match edge.input {
            Input::Estop => self.estop = edge.level,
            Input::WaterLow => self.water_low = edge.level,
            Input::FlowPulse => {
                if edge.level {
                    self.flow.pulse(edge.at);
                    self.interlocks.on_flow_pulse(edge.at);
                }
            }
            Input::LaserEmission => {
                self.laser_on = edge.level;
                // A falling edge is the end of emission even if its rising edge was lost (a
                // simulated interrupt path can drop one): cooling must not depend on both.
                if !edge.level {
                    self.laser_ended_at = Some(edge.at);
                    self.above_40 = Duration::ZERO;
                    if self.armed.is_some() && self.session.is_none() {
                        self.pending_autostart = Some(edge.at);
                    }
                }
            }
            Input::Trigger => {
                // Every press edge is a press (the kernel debounces the line), even when the
                // release before it was lost: a lost edge must not swallow the next stop.
                if edge.level {
                    self.on_pedal(edge.at);
                }
            }
        }
    }

    fn on_pedal(&mut self, at: Duration) {
        if self.session.is_some() {
            self.end_session(at, Outcome::Stopped, None);
        } else if self.state == UnitState::Ready {
            let name = self
                .armed
                .clone()
                .unwrap_or_else(|| self.default_protocol.clone());
            // A refused pedal press (interlock, unknown protocol) is visible in the snapshot.
            let _ = self.start_session(at, &name, &StartOptions::default(), StartCause::Trigger);
        }
    }

    fn transition(&mut self, to: UnitState, now: Duration, reason: impl Into<String>) {
        if self.state == to {
            return;
        }
        let from = self.state;
        self.state = to;
        self.state_since = now;
        self.events.push(Event::StateChanged {
            at: now,
            unix_ms: self.now_unix_ms,
            from,
            to,
            reason: reason.into(),
        });
    }

    fn find_protocol(&self, name: &str) -> Result<Protocol, CommandError> {
        self.protocols
            .iter()
            .find(|p| p.name == name)
            .cloned()
            .ok_or_else(|| CommandError::UnknownProtocol(name.to_string()))
    }

    fn can_spray(&self) -> Result<(), CommandError> {
        let interlocks = self.alarms.active_interlocks();
        if !interlocks.is_empty() || self.estop || self.water_low {
            let mut keys = interlocks;
            if keys.is_empty() {
                keys.push(if self.estop { "estop" } else { "water_low" }.to_string());
            }
            return Err(CommandError::InterlockActive { keys });
        }
        if self.settings_unconfirmed {
            return Err(CommandError::SettingsUnconfirmed);
        }
        if self.state != UnitState::Ready {
            return Err(CommandError::NotReady { state: self.state });
        }
        Ok(())
    }

    fn start_session(
        &mut self,
        now: Duration,
        protocol: &str,
        options: &StartOptions,
        cause: StartCause,
    ) -> Result<u64, CommandError> {
        let mut p = self.find_protocol(protocol)?;
        if let Some(s) = options.spray_s {
            range::check("spray_s", s, limits::SPRAY_S)?;
            p.spray_s = s;
        }
        if let Some(t) = options.skin_target_c {
            range::check("skin_target_c", t, limits::SKIN_TARGET_C)?;
            p.skin_target_c = Some(t);
        }
        if let Some(d) = options.pump_percent {
            range::check(
                "pump_percent",
                f64::from(d),
                range::widen(&limits::PUMP_PERCENT),
            )?;
            p.pump_percent = d;
        }
        p.validate().map_err(|e| CommandError::InvalidArgument {
            name: "options".into(),
            reason: e.to_string(),
        })?;
        self.can_spray()?;

        let laser_end = self
            .laser_ended_at
            .filter(|end| now.saturating_sub(*end) <= secs(self.session_cfg.laser_association_s));
        let delay = laser_end.map(|end| now.saturating_sub(end));
        let late = delay.is_some_and(|d| d > secs(self.session_cfg.late_after_s));
        let id = self.next_session_id;
        self.next_session_id += 1;
        let start = SessionStart {
            id,
            protocol: p.name.clone(),
            goal: p.goal,
            cause,
            started_at: now,
            started_unix_ms: self.now_unix_ms,
            laser_to_spray_ms: delay.map(|d| d.as_secs_f64() * 1000.0),
            late,
            skin_target_c: p.skin_target_c,
            skin_floor_c: p.skin_floor_c,
        };
        self.counters.sessions += 1;
        if late {
            self.counters.late_sessions += 1;
        }
        self.events.push(Event::SessionStarted(start.clone()));
        if late {
            let msg = format!(
                "session {id} started {:.1} s after the laser stopped",
                delay.unwrap_or_default().as_secs_f64()
            );
            // An advisory about this one start: an event, over at once, so the alarm stays
            // until acknowledged and acknowledging removes it.
            let stamp = self.stamp(now);
            self.alarms
                .raise(AlarmKind::LateStart, msg, stamp, &mut self.events);
            self.alarms
                .clear_condition(AlarmKind::LateStart, stamp, &mut self.events);
        }
        self.session = Some(ActiveSession::new(
            start,
            p,
            self.session_cfg.floor_margin_c,
        ));
        self.pending_autostart = None;
        self.last_sample = None;
        self.transition(
            UnitState::Spraying,
            now,
            format!("session {id} started ({})", cause.name()),
        );
        Ok(id)
    }

    fn end_session(&mut self, now: Duration, outcome: Outcome, alarm: Option<String>) {
        let Some(session) = self.session.take() else {
            return;
        };
        let above = self.laser_ended_at.map(|_| self.above_40);
        let record = session.finish(now, self.now_unix_ms, outcome, above, alarm);
        self.events.push(Event::SessionEnded(record));
        self.laser_ended_at = None;
        if self.state == UnitState::Spraying {
            self.transition(UnitState::Ready, now, format!("session ended: {outcome}"));
        }
    }

    /// Handles a command. Output changes take effect at the next step, which the runtime runs
    /// immediately after a command.
    pub fn command(
        &mut self,
        command: Command,
        now: Duration,
        unix_ms: i64,
    ) -> Result<Reply, CommandError> {
        self.now_unix_ms = unix_ms;
        if self.state == UnitState::Stopping {
            return Err(CommandError::ShuttingDown);
        }
        match command {
            Command::StartSession { protocol, options } => self
                .start_session(now, &protocol, &options, StartCause::Command)
                .map(Reply::SessionStarted),
            Command::StopSession => {
                if self.session.is_none() {
                    return Err(self.not_permitted("stop (no session running)"));
                }
                self.end_session(now, Outcome::Stopped, None);
                Ok(Reply::Accepted)
            }
            Command::Arm { protocol } => {
                self.find_protocol(&protocol)?;
                if self.settings_unconfirmed {
                    return Err(CommandError::SettingsUnconfirmed);
                }
                self.armed = Some(protocol);
                Ok(Reply::Accepted)
            }
            Command::Disarm => {
                self.armed = None;
                self.pending_autostart = None;
                Ok(Reply::Accepted)
            }
            Command::Acknowledge { key } => {
                let stamp = self.stamp(now);
                self.alarms
                    .acknowledge(key.as_deref(), stamp, &mut self.events)?;
                Ok(Reply::Accepted)
            }
            Command::AudioPause => {
                let until = now + secs(self.interlocks.config().audio_pause_s);
                self.alarms.audio_pause(until);
                Ok(Reply::Accepted)
            }
            Command::SetSetpoint { celsius } => {
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
                Ok(Reply::Accepted)
            }
            Command::SetCalibration { sensor, offset } => {
                range::check("offset", offset, range::CALIBRATION)?;
                self.calibration[sensor.index()] = offset;
                self.config_changed(
                    now,
                    format!("calibration {sensor} {offset:+.2} {}", sensor.unit()),
                );
                self.dirty.settings = true;
                Ok(Reply::Accepted)
            }
            Command::ConfirmSettings => {
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
                    String::new,
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
                Ok(Reply::Accepted)
            }
            Command::EnterMaintenance => {
                if !matches!(
                    self.state,
                    UnitState::Ready | UnitState::Precooling | UnitState::Fault
                ) {
                    return Err(self.not_permitted("entering maintenance"));
                }
                self.armed = None;
                self.pending_autostart = None;
                self.task = None;
                self.thermostat.force_off(now);
                self.transition(UnitState::Maintenance, now, "technician");
                Ok(Reply::Accepted)
            }
            Command::ExitMaintenance => {
                if self.state != UnitState::Maintenance {
                    return Err(self.not_permitted(
                        "leaving maintenance (the unit is not in maintenance; an alarm may have \
                         ended it: acknowledge the alarms once their cause is fixed)",
                    ));
                }
                self.task = None;
                if self.alarms.fault_latched() {
                    // The unit cannot treat with a fault listed: it waits in `fault` for the
                    // acknowledgement, as after any fault.
                    let keys: Vec<String> = self
                        .alarms
                        .alarms()
                        .iter()
                        .filter(|a| a.kind.faults_unit())
                        .map(|a| a.kind.key())
                        .collect();
                    self.transition(
                        UnitState::Fault,
                        now,
                        format!(
                            "maintenance finished with {} listed: acknowledge to return to ready",
                            keys.join(", ")
                        ),
                    );
                } else {
                    self.transition(UnitState::Precooling, now, "maintenance finished");
                }
                Ok(Reply::Accepted)
            }
            Command::Prime { seconds } => {
                self.require_idle_maintenance("prime")?;
                range::check("seconds", seconds, range::PRIME_S)?;
                self.can_run_actuators()?;
                self.task = Some(Task::Prime {
                    until: now + secs(seconds),
                });
                Ok(Reply::Accepted)
            }
            Command::Drain { seconds } => {
                self.require_idle_maintenance("drain")?;
                range::check("seconds", seconds, range::DRAIN_S)?;
                self.can_run_actuators()?;
                self.task = Some(Task::Drain {
                    until: now + secs(seconds),
                });
                Ok(Reply::Accepted)
            }
            Command::TestOutput { output, seconds } => {
                self.require_idle_maintenance("output test")?;
                range::check("seconds", seconds, range::TEST_OUTPUT_S)?;
                if output.is_actuator() {
                    self.can_run_actuators()?;
                }
                self.task = Some(Task::TestOutput {
                    output,
                    until: now + secs(seconds),
                });
                Ok(Reply::Accepted)
            }
            Command::SelfTest => {
                let active =
                    match self.state {
                        UnitState::Maintenance => {
                            self.require_idle_maintenance("self-test")?;
                            true
                        }
                        UnitState::Ready | UnitState::Precooling => false,
                        UnitState::Fault => return Err(self.not_permitted(
                            "self-test (in fault, enter maintenance to run the active self-test)",
                        )),
                        _ => return Err(self.not_permitted("self-test")),
                    };
                self.identities = Default::default();
                self.identify_requested = true;
                self.task = Some(Task::SelfTest {
                    phase: SelfTestPhase::Identify {
                        deadline: now + secs(self.interlocks.config().self_test_timeout_s),
                    },
                    report: Vec::new(),
                    active,
                });
                Ok(Reply::Accepted)
            }
            Command::RecordWaterChange => {
                self.counters.water_changes += 1;
                self.config_changed(now, "water change".to_string());
                Ok(Reply::Accepted)
            }
            Command::UpsertProtocol(protocol) => {
                protocol
                    .validate()
                    .map_err(|e| CommandError::InvalidArgument {
                        name: "protocol".into(),
                        reason: e.to_string(),
                    })?;
                let what = format!("protocol {} saved", protocol.name);
                match self.protocols.iter_mut().find(|p| p.name == protocol.name) {
                    Some(existing) => *existing = *protocol,
                    None => self.protocols.push(*protocol),
                }
                self.config_changed(now, what);
                self.dirty.protocols = true;
                Ok(Reply::Accepted)
            }
            Command::DeleteProtocol { name } => {
                self.find_protocol(&name)?;
                if Protocol::factory_defaults().iter().any(|p| p.name == name) {
                    return Err(CommandError::InvalidArgument {
                        name: "name".into(),
                        reason: format!("factory protocol `{name}` can be edited but not deleted"),
                    });
                }
                if self
                    .session
                    .as_ref()
                    .is_some_and(|s| s.protocol.name == name)
                {
                    return Err(self.not_permitted("deleting the protocol in use"));
                }
                self.protocols.retain(|p| p.name != name);
                if self.armed.as_deref() == Some(name.as_str()) {
                    self.armed = None;
                }
                self.config_changed(now, format!("protocol {name} deleted"));
                self.dirty.protocols = true;
                Ok(Reply::Accepted)
            }
        }
    }

    fn config_changed(&mut self, now: Duration, what: String) {
        self.events.push(Event::ConfigChanged {
            at: now,
            unix_ms: self.now_unix_ms,
            what,
            by_uid: self.caller,
        });
    }

    fn not_permitted(&self, action: &str) -> CommandError {
        CommandError::NotPermitted {
            action: action.to_string(),
            state: self.state,
        }
    }

    fn require_maintenance(&self, action: &str) -> Result<(), CommandError> {
        if self.state == UnitState::Maintenance {
            Ok(())
        } else {
            Err(self.not_permitted(action))
        }
    }

    fn require_idle_maintenance(&self, action: &str) -> Result<(), CommandError> {
        self.require_maintenance(action)?;
        if self.task.is_some() {
            return Err(CommandError::NotPermitted {
                action: format!("{action} (another maintenance task is running)"),
                state: self.state,
            });
        }
        Ok(())
    }

    fn can_run_actuators(&self) -> Result<(), CommandError> {
        let keys = self.alarms.active_interlocks();
        if keys.is_empty() && !self.estop && !self.water_low {
            Ok(())
        } else {
            Err(CommandError::InterlockActive { keys })
        }
    }

    /// Ends everything for shutdown: the session closes as `shutdown`, outputs go off, and
    /// the state changes to `stopping` with `reason` (why the daemon stops).
    pub fn shutdown(&mut self, now: Duration, unix_ms: i64, reason: &str) -> StepOutput {
        self.now_unix_ms = unix_ms;
        self.end_session(now, Outcome::Shutdown, None);
        self.task = None;
        self.thermostat.force_off(now);
        self.transition(UnitState::Stopping, now, reason.to_string());
        self.applied = [false; 7];
        StepOutput {
            outputs: [false; 7],
            pump_duty: IDLE_PUMP_DUTY,
            identify: false,
        }
    }

    /// One control step at `now`.
    pub fn step(&mut self, now: Duration, unix_ms: i64) -> StepOutput {
        self.now_unix_ms = unix_ms;
        let dt = self
            .last_step
            .map(|t| now.saturating_sub(t))
            .unwrap_or_default();
        self.last_step = Some(now);
        if self.state == UnitState::Stopping {
            return StepOutput {
                outputs: [false; 7],
                pump_duty: IDLE_PUMP_DUTY,
                identify: false,
            };
        }
        self.flow.expire(now);
        let stale_after = secs(self.interlocks.config().stale_after_s);
        let skin = self.sensors.fresh(Sensor::Skin, now, stale_after);
        let reservoir = self.sensors.fresh(Sensor::Reservoir, now, stale_after);
        let heatsink = self.sensors.fresh(Sensor::Heatsink, now, stale_after);

        // Heat dose after the laser: time above 40 °C until the session that follows it ends.
        if self.laser_ended_at.is_some() && skin.is_some_and(|s| s > DAMAGE_THRESHOLD_C) {
            self.above_40 += dt;
        }

        // 1. Safety first: interlocks from raw inputs and the outputs actually driven.
        self.check_stall_recovered(now);
        self.evaluate_interlocks(now);

        // 2. State logic.
        self.advance_state(now, reservoir);

        // 3. Chiller.
        let cooling = matches!(
            self.state,
            UnitState::Precooling | UnitState::Ready | UnitState::Spraying
        ) && !self.alarms.fault_latched();
        let th = self.thermostat.update(now, cooling, reservoir, heatsink);
        let stamp = self.stamp(now);
        self.alarms.set(
            AlarmKind::FreezeCutout,
            th.freeze_cutout,
            || {
                format!(
                    "reservoir below {:.1} °C",
                    self.thermostat.config().freeze_cutout_c
                )
            },
            stamp,
            &mut self.events,
        );
        if let Some(why) = th.ineffective {
            // The condition is the failed check itself: acknowledging clears it and lets the
            // thermostat try again, whose checks raise it again if the chiller is still dead.
            self.alarms.raise(
                AlarmKind::ChillerIneffective,
                why.to_string(),
                stamp,
                &mut self.events,
            );
            self.alarms
                .clear_condition(AlarmKind::ChillerIneffective, stamp, &mut self.events);
            self.enter_fault(now, AlarmKind::ChillerIneffective);
        }

        // 4. Desired outputs.
        let mut desired = [false; 7];
        desired[Output::Chiller.index()] = th.chiller;
        desired[Output::ChillerFan.index()] = th.fan;
        let mut duty = IDLE_PUMP_DUTY;
        if let Some(session) = self.session.as_mut() {
            let drive = session.update(now, skin, self.applied[Output::SprayValve.index()]);
            desired[Output::Pump.index()] = drive.pump;
            desired[Output::SprayValve.index()] = drive.valve;
            duty = session.protocol.pump_percent;
            if let Some(outcome) = drive.end {
                self.end_session(now, outcome, None);
            }
        }
        self.drive_task(now, &mut desired, heatsink);
        desired[Output::LampReady.index()] =
            matches!(self.state, UnitState::Ready | UnitState::Spraying);
        desired[Output::Buzzer.index()] = self.alarms.buzzer(now);
        desired[Output::LampFault.index()] = self.alarms.fault_lamp(now);

        // 5. The gate has the last word.
        let outputs = gate::apply(
            desired,
            GateInputs {
                state: self.state,
                interlock_present: !self.alarms.active_interlocks().is_empty()
                    || self.estop
                    || self.water_low,
                // In maintenance a technician may run the pump and the chiller (the active
                // self-test that checks them) while a fault latched earlier waits for its
                // acknowledgement; a fault whose condition is present still blocks them.
                fault_latched: if self.state == UnitState::Maintenance {
                    self.alarms.fault_present()
                } else {
                    self.alarms.fault_latched()
                },
            },
        );
        self.apply_outputs(now, dt, outputs);
        self.record_sample(now);

        let identify = std::mem::take(&mut self.identify_requested);
        StepOutput {
            outputs,
            pump_duty: duty,
            identify,
        }
    }

    fn evaluate_interlocks(&mut self, now: Duration) {
        let floor = self
            .session
            .as_ref()
            .map_or(10.0, |s| s.protocol.skin_floor_c);
        let found = self.interlocks.evaluate(&InterlockInputs {
            now,
            estop: self.estop,
            water_low: self.water_low,
            pump_on_since: self.pump_on_since,
            valve_open_since: self.valve_open_since,
            in_session: self.session.is_some(),
            skin_floor_c: floor,
        });
        let stamp = self.stamp(now);
        for kind in self.interlocks.kinds() {
            match found.iter().find(|(k, _)| *k == kind) {
                Some((_, msg)) => self
                    .alarms
                    .raise(kind, msg.clone(), stamp, &mut self.events),
                None => self.alarms.clear_condition(kind, stamp, &mut self.events),
            }
        }
        if let Some((first, _)) = found.first() {
            self.enter_fault(now, *first);
        }
    }

    fn enter_fault(&mut self, now: Duration, cause: AlarmKind) {
        if matches!(self.state, UnitState::Fault | UnitState::Stopping) {
            return;
        }
        // Fault first, so the log reads spraying -> fault, then the session's closing record.
        self.transition(UnitState::Fault, now, format!("alarm {}", cause.key()));
        self.end_session(now, Outcome::Interlock, Some(cause.key()));
        self.task = None;
        self.pending_autostart = None;
        self.thermostat.force_off(now);
        self.interlocks.reset_timers();
    }

    fn advance_state(&mut self, now: Duration, reservoir: Option<f64>) {
        match self.state {
            UnitState::Starting => self.run_self_test(now, None),
            UnitState::Fault => {
                // A laser end seen during a fault is dropped: acknowledging an alarm must
                // never start spraying (the patient is not waiting under the nozzle).
                self.pending_autostart = None;
                if !self.alarms.fault_latched() {
                    self.interlocks.restart_staleness(now);
                    self.transition(UnitState::Precooling, now, "fault cleared and acknowledged");
                }
            }
            UnitState::Precooling => {
                if let Some(Task::SelfTest { .. }) = self.task {
                    self.run_self_test(now, None);
                }
                if reservoir.is_some_and(|t| self.thermostat.cold_enough(t, false)) {
                    self.transition(UnitState::Ready, now, "reservoir at setpoint");
                }
            }
            UnitState::Ready => {
                if let Some(Task::SelfTest { .. }) = self.task {
                    self.run_self_test(now, None);
                }
                if !reservoir.is_some_and(|t| self.thermostat.cold_enough(t, true)) {
                    self.transition(UnitState::Precooling, now, "reservoir warmed");
                } else if let Some(laser_end) = self.pending_autostart {
                    if let Some(name) = self.armed.clone() {
                        let _ = self.start_session(
                            now,
                            &name,
                            &StartOptions::default(),
                            StartCause::AutoStart,
                        );
                    }
                    if self.pending_autostart == Some(laser_end) {
                        self.pending_autostart = None;
                    }
                }
            }
            UnitState::Spraying | UnitState::Maintenance | UnitState::Stopping => {}
        }
        // An auto-start that waited too long for ready is dropped (the laser pass is over).
        if let (Some(end), Some(_)) = (self.pending_autostart, self.laser_ended_at) {
            if now.saturating_sub(end) > secs(self.session_cfg.laser_association_s) {
                self.pending_autostart = None;
            }
        }
    }

    fn drive_task(&mut self, now: Duration, desired: &mut [bool; 7], heatsink: Option<f64>) {
        let Some(task) = self.task.clone() else {
            return;
        };
        match task {
            Task::Prime { until } | Task::Drain { until } => {
                if now >= until {
                    self.task = None;
                } else {
                    desired[Output::Pump.index()] = true;
                    desired[Output::SprayValve.index()] = true;
                }
            }
            Task::TestOutput { output, until } => {
                if now >= until {
                    self.task = None;
                } else {
                    desired[output.index()] = true;
                    if output == Output::SprayValve {
                        // The valve is never open without the pump.
                        desired[Output::Pump.index()] = true;
                    }
                }
            }
            Task::SelfTest { .. } if self.state == UnitState::Maintenance => {
                self.run_self_test(now, heatsink);
                if let Some(Task::SelfTest { phase, .. }) = &self.task {
                    match phase {
                        SelfTestPhase::Flow { .. } => {
                            desired[Output::Pump.index()] = true;
                            desired[Output::SprayValve.index()] = true;
                        }
                        SelfTestPhase::HotSide { .. } => {
                            desired[Output::Chiller.index()] = true;
                            desired[Output::ChillerFan.index()] = true;
                        }
                        SelfTestPhase::Identify { .. } => {}
                    }
                }
            }
            Task::SelfTest { .. } => {}
        }
    }

    /// Advances the self-test task. Passive part (identities and plausible readings) in any
    /// state; active part (pump → flow, chiller → heatsink warms) only in maintenance.
    fn run_self_test(&mut self, now: Duration, heatsink: Option<f64>) {
        let Some(Task::SelfTest {
            phase,
            mut report,
            active,
        }) = self.task.clone()
        else {
            return;
        };
        let stale_after = secs(self.interlocks.config().stale_after_s);
        let next = match phase {
            SelfTestPhase::Identify { deadline } => {
                let fitted: Vec<Sensor> = self.sensors.fitted_sensors().collect();
                let mut all_ok = true;
                let mut lines = Vec::new();
                let mut failed = false;
                for s in &fitted {
                    let fresh = self.sensors.fresh(*s, now, stale_after);
                    match &self.identities[s.index()] {
                        Some(Ok(id)) if id.part == expected_part(*s) && fresh.is_some() => {
                            lines.push(format!(
                                "{s}: {} ok, {:.2} {}",
                                id.part,
                                fresh.unwrap_or_default(),
                                s.unit()
                            ));
                        }
                        Some(Ok(id)) if id.part != expected_part(*s) => {
                            failed = true;
                            lines.push(format!(
                                "{s}: found {} where {} expected",
                                id.part,
                                expected_part(*s)
                            ));
                        }
                        Some(Err(e)) => {
                            failed = true;
                            lines.push(format!("{s}: {e}"));
                        }
                        _ => {
                            all_ok = false;
                            lines.push(format!("{s}: no plausible reading yet"));
                        }
                    }
                }
                if failed || (!all_ok && now >= deadline) {
                    report.extend(lines);
                    self.finish_self_test(now, false, report);
                    return;
                }
                if !all_ok {
                    return;
                }
                report.extend(lines);
                if active {
                    Some(SelfTestPhase::Flow {
                        until: now + secs(SELF_TEST_FLOW_S),
                        pulses_at_start: self.flow.total_pulses(),
                    })
                } else {
                    None
                }
            }
            SelfTestPhase::Flow {
                until,
                pulses_at_start,
            } => {
                if now < until {
                    return;
                }
                let pulses = self.flow.total_pulses() - pulses_at_start;
                if pulses == 0 {
                    report.push("pump: no flow pulses".into());
                    self.finish_self_test(now, false, report);
                    return;
                }
                report.push(format!(
                    "pump: {pulses} flow pulses in {SELF_TEST_FLOW_S} s"
                ));
                match heatsink {
                    Some(h) => Some(SelfTestPhase::HotSide {
                        until: now + secs(self.thermostat.config().hot_side_check_s),
                        start_c: h,
                    }),
                    None => {
                        report.push("chiller: no heatsink reading".into());
                        self.finish_self_test(now, false, report);
                        return;
                    }
                }
            }
            SelfTestPhase::HotSide { until, start_c } => {
                let rise = self.thermostat.config().hot_side_rise_c;
                match heatsink {
                    Some(h) if h >= start_c + rise => {
                        report.push(format!("chiller: heatsink +{:.1} °C", h - start_c));
                        None
                    }
                    _ if now >= until => {
                        report.push("chiller: heatsink did not warm".into());
                        self.finish_self_test(now, false, report);
                        return;
                    }
                    _ => return,
                }
            }
        };
        match next {
            Some(phase) => {
                self.task = Some(Task::SelfTest {
                    phase,
                    report,
                    active,
                })
            }
            None => self.finish_self_test(now, true, report),
        }
    }

    fn finish_self_test(&mut self, now: Duration, passed: bool, report: Vec<String>) {
        self.task = None;
        self.last_self_test = Some((now, passed));
        self.events.push(Event::SelfTestFinished {
            at: now,
            passed,
            report: report.clone(),
        });
        if passed {
            if self.state == UnitState::Starting {
                self.transition(UnitState::Precooling, now, "self-test passed");
            }
            if self.state == UnitState::Maintenance {
                // The active self-test has just seen the pump deliver flow and the chiller pump
                // heat: it is the technician's proof that the faults it covers are fixed.
                let stamp = self.stamp(now);
                for kind in [AlarmKind::ChillerIneffective, AlarmKind::SelfTestFailed] {
                    self.alarms.acknowledge_kind(kind, stamp, &mut self.events);
                }
            }
        } else {
            let stamp = self.stamp(now);
            let msg = format!(
                "self-test failed: {}",
                report.last().cloned().unwrap_or_default()
            );
            self.alarms
                .raise(AlarmKind::SelfTestFailed, msg, stamp, &mut self.events);
            // The condition is the failed test itself: it clears on acknowledge.
            self.alarms
                .clear_condition(AlarmKind::SelfTestFailed, stamp, &mut self.events);
            if self.state != UnitState::Maintenance {
                self.enter_fault(now, AlarmKind::SelfTestFailed);
            }
            // In maintenance the technician stays there (every actuator is off: the task
            // ended) to fix the cause and run the self-test again; leaving maintenance with
            // the alarm listed goes to `fault`.
        }
    }

    fn apply_outputs(&mut self, now: Duration, dt: Duration, outputs: [bool; 7]) {
        let pump = outputs[Output::Pump.index()];
        let valve = outputs[Output::SprayValve.index()];
        let chiller = outputs[Output::Chiller.index()];
        self.pump_on_since = if pump {
            self.pump_on_since.or(Some(now))
        } else {
            None
        };
        self.valve_open_since = if valve {
            self.valve_open_since.or(Some(now))
        } else {
            None
        };
        let was = self.applied;
        if was[Output::Pump.index()] {
            self.counters.pump_seconds += dt.as_secs_f64();
        }
        if was[Output::Chiller.index()] {
            self.counters.chiller_seconds += dt.as_secs_f64();
        }
        // Exponential average over ~10 minutes.
        let alpha = (dt.as_secs_f64() / 600.0).min(1.0);
        let on = if chiller { 1.0 } else { 0.0 };
        self.chiller_duty += alpha * (on - self.chiller_duty);
        self.applied = outputs;
    }

    fn record_sample(&mut self, now: Duration) {
        let Some(session) = &self.session else {
            return;
        };
        if self
            .last_sample
            .is_some_and(|t| now.saturating_sub(t) < SAMPLE_PERIOD)
        {
            return;
        }
        self.last_sample = Some(now);
        let stale_after = secs(self.interlocks.config().stale_after_s);
        let read = |s| self.sensors.fresh(s, now, stale_after);
        let t_ms = u32::try_from(session.elapsed(now).as_millis()).unwrap_or(u32::MAX);
        self.events.push(Event::Sample(Sample {
            session_id: session.start.id,
            t_ms,
            mist_c: read(Sensor::Mist),
            skin_c: read(Sensor::Skin),
            reservoir_c: read(Sensor::Reservoir),
            pressure_bar: read(Sensor::Pressure),
            pump: self.applied[Output::Pump.index()],
            valve: self.applied[Output::SprayValve.index()],
        }));
    }

    /// The unit as readers see it.
    pub fn snapshot(&self, now: Duration) -> Snapshot {
        let stale_after = secs(self.interlocks.config().stale_after_s);
        let mut readings = [None; 5];
        for s in Sensor::ALL {
            readings[s.index()] = self.sensors.fresh(s, now, stale_after);
        }
        let ready = self.state == UnitState::Ready
            && !self.settings_unconfirmed
            && self.alarms.active_interlocks().is_empty()
            && !self.estop
            && !self.water_low;
        Snapshot {
            at: now,
            state: self.state,
            state_since: self.state_since,
            ready,
            readings,
            flow_l_min: self.flow.litres_per_minute(),
            outputs: self.applied,
            setpoint_c: self.thermostat.setpoint(),
            calibration: self.calibration,
            alarms: self.alarms.alarms().to_vec(),
            audio_paused_until: self.alarms.audio_paused_until(now),
            armed: self.armed.clone(),
            session: self.session.as_ref().map(|s| SessionProgress {
                start: s.start.clone(),
                elapsed_s: s.elapsed(now).as_secs_f64(),
                remaining_s: s.remaining_s(now),
                in_band: s.in_band_since.is_some(),
                peak_skin_c: s.peak_skin_c,
                min_skin_c: s.min_skin_c,
            }),
            maintenance: self.task.as_ref().and_then(|t| match t {
                Task::Prime { .. } => Some(MaintenanceActivity::Prime),
                Task::Drain { .. } => Some(MaintenanceActivity::Drain),
                Task::TestOutput { output, .. } => Some(MaintenanceActivity::TestOutput(*output)),
                Task::SelfTest { .. } if self.state != UnitState::Starting => {
                    Some(MaintenanceActivity::SelfTest)
                }
                Task::SelfTest { .. } => None,
            }),
            laser_on: self.laser_on,
            counters: self.counters.clone(),
            chiller_duty: self.chiller_duty,
            last_self_test: self.last_self_test,
        }
    }
}
