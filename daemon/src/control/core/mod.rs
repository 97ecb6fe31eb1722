//! The control core: a deterministic, clock-injected state machine. It never reads a clock,
//! touches hardware or does I/O: the runtime (or a test) feeds it sensor samples, input edges,
//! commands and the time, and applies the output levels it returns.
//!
//! One file per job: this one holds the core's state and its small accessors;
//! [`step`](self::step) the control step and the state machine, `commands` the command
//! dispatch, `sessions` treatment sessions, `tasks` the maintenance tasks (prime, drain, output
//! test), `self_test` the self-test, `setpoint` the operator settings, `faults` the alarms the
//! runtime reports and entering `fault`, `inputs` sensor samples and input edges, `snapshot`
//! what readers see.

mod commands;
mod faults;
mod inputs;
mod self_test;
mod sessions;
mod setpoint;
mod snapshot;
mod step;
mod tasks;

pub use self_test::expected_part;
use self_test::SelfTest;
use tasks::Task;

use super::readings::{FlowMeter, Readings};
use super::running_session::ActiveSession;
use super::settings::{SessionConfig, ThermostatConfig};
use super::thermostat::Thermostat;
use crate::api::{CommandError, Counters, Event};
use crate::limits::secs;
use crate::model::state::UnitState;
use crate::protocol::Protocol;
use crate::safety::alarms::{AlarmManager, Stamp};
use crate::safety::interlocks::Interlocks;
use crate::safety::SafetyConfig;
use crate::unit_settings::OperatorSetpoint;
use coldspray_hal::signal::OutputLevels;
use coldspray_hal::{ChipIdentity, Sensor, SensorError};
use std::time::Duration;

/// Interval of the curve samples recorded during a session (10 Hz).
pub const SAMPLE_PERIOD: Duration = Duration::from_millis(100);
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
pub(crate) const IDLE_PUMP_DUTY: u8 = 100;

/// What one step asks of the runtime.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StepOutput {
    /// Output levels to drive (already through the safety gate).
    pub outputs: OutputLevels,
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

/// The levels of the inputs that carry state.
#[derive(Debug, Clone, Copy, Default)]
struct InputLevels {
    /// E-stop pressed.
    estop: bool,
    /// Reservoir float switch: water low.
    water_low: bool,
    /// Laser emitting.
    laser_on: bool,
}

impl InputLevels {
    /// E-stop pressed or water low: no actuator may run.
    fn safety_input_asserted(self) -> bool {
        self.estop || self.water_low
    }
}

/// The last laser pass, for auto-start, lateness and the heat dose after it.
#[derive(Debug, Clone, Copy, Default)]
struct LaserPass {
    /// Laser end time waiting for a session (auto-start or an operator start).
    ended_at: Option<Duration>,
    /// Time the skin spent above 40 °C since the laser stopped.
    above_40: Duration,
    /// A laser end that waits for the unit to be ready to auto-start the armed protocol.
    pending_autostart: Option<Duration>,
}

/// What the self-test needs between steps, and its last result.
#[derive(Debug, Clone, Default)]
struct SelfTestRecord {
    /// Each sensor's chip identity, by [`Sensor::index`].
    identities: [Option<Result<ChipIdentity, SensorError>>; 5],
    /// Ask the sensor thread for the identities at the next step.
    identify_requested: bool,
    /// When the last self-test finished and whether it passed.
    last: Option<(Duration, bool)>,
    /// The last self-test's report, one line per check.
    last_report: Vec<String>,
}

/// The output levels last driven, and since when the pump and valve have been on.
#[derive(Debug, Clone, Copy, Default)]
struct Driven {
    /// The levels.
    levels: OutputLevels,
    /// The pump has been on continuously since.
    pump_on_since: Option<Duration>,
    /// The valve has been open continuously since.
    valve_open_since: Option<Duration>,
    /// Chiller duty, exponential average over ~10 minutes (0–1).
    chiller_duty: f64,
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
    /// E-stop, float switch and laser emission.
    levels: InputLevels,
    /// The last laser pass and what follows it.
    laser: LaserPass,
    armed: Option<String>,
    session: Option<ActiveSession>,
    task: Option<Task>,
    /// How fast the reservoir cools while precooling, for the time-to-ready estimate.
    ready_eta: snapshot::ReadyEta,
    /// Chip identities and the last self-test's result.
    self_test: SelfTestRecord,
    /// Since when the control loop has stepped on time after a stall (`control_stalled`).
    on_time_since: Option<Duration>,
    /// The output levels last driven and since when.
    driven: Driven,
    counters: Counters,
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
            levels: InputLevels::default(),
            laser: LaserPass::default(),
            armed,
            session: None,
            ready_eta: snapshot::ReadyEta::default(),
            task: Some(Task::SelfTest(SelfTest::new(
                now + secs(config.safety.self_test_timeout_s),
                false,
            ))),
            self_test: SelfTestRecord {
                identify_requested: true,
                ..SelfTestRecord::default()
            },
            on_time_since: None,
            driven: Driven::default(),
            counters,
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

    /// Changes state; `code` is the stable reason code (documented with `StateChanged` in
    /// the README), `reason` the text for people.
    fn transition(
        &mut self,
        to: UnitState,
        now: Duration,
        code: impl Into<String>,
        reason: impl Into<String>,
    ) {
        if self.state == to {
            return;
        }
        let from = self.state;
        self.state = to;
        self.state_since = now;
        self.ready_eta = snapshot::ReadyEta::default();
        self.events.push(Event::StateChanged {
            at: now,
            unix_ms: self.now_unix_ms,
            from,
            to,
            reason: reason.into(),
            code: code.into(),
        });
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
}
