//! Runs the control core against the simulated unit in lockstep, in simulated time: the
//! deterministic harness behind the scenario, interlock and property tests and the benchmark.
//!
//! Each tick advances the twin by one control period, hands the core the input edges that
//! happened in it, polls the sensors on their own period, steps the core and drives the twin's
//! outputs with the result — the same order the real-time runtime uses.

use crate::api::{Command, CommandError, Event, Reply, Snapshot};
use crate::control::core::STALL_LIMIT;
use crate::control::{Core, CoreConfig, SensorSample, StepOutput};
use crate::protocol::Protocol;
use coldspray_hal::sim::{SimConfig, SimUnit, Truth};
use coldspray_hal::{Board, HalError, Input, InputEdge, Output, Sensor};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Control period of the lockstep harness.
pub const STEP: Duration = Duration::from_millis(10);
/// Sensor polling period.
pub const SENSOR_PERIOD: Duration = Duration::from_millis(100);

/// The twin and the core, stepped together.
pub struct Lockstep {
    /// The simulated unit.
    pub sim: SimUnit,
    /// The control core.
    pub core: Core,
    board: Board,
    edges: Arc<Mutex<Vec<InputEdge>>>,
    next_sensor_read: Duration,
    /// Every event the core produced, in order.
    pub events: Vec<Event>,
    last: StepOutput,
    output_health: OutputHealth,
    wall_clock_offset_ms: i64,
    /// A stall the next tick reports to the core: how long the loop was away, and whether
    /// the watchdog drove the outputs safe meanwhile.
    pending_gap: Option<(Duration, bool)>,
}

fn unix_ms(now: Duration) -> i64 {
    // A fixed epoch keeps runs reproducible: 2026-01-01T00:00:00Z plus simulated time.
    1_767_225_600_000 + i64::try_from(now.as_millis()).unwrap_or(i64::MAX)
}

impl Lockstep {
    /// A twin in its power-on state and a core in `starting`, with the factory protocols.
    pub fn new(config: CoreConfig, sim: SimConfig) -> Self {
        let sim = SimUnit::new(sim);
        let mut board = sim.board();
        let edges = Arc::new(Mutex::new(Vec::new()));
        let sink_edges = edges.clone();
        // The sim's input port accepts a subscriber at any time; a failure here is a bug.
        let subscribed = board.inputs.subscribe(Arc::new(move |e| {
            if let Ok(mut q) = sink_edges.lock() {
                q.push(e);
            }
        }));
        assert!(subscribed.is_ok(), "sim input subscription failed");
        let now = board.clock.now();
        let fitted = board.sensors.fitted();
        let mut core = Core::new(
            config,
            Protocol::factory_defaults(),
            &fitted,
            Default::default(),
            1,
            now,
        );
        for input in Input::ALL {
            if let Ok(level) = board.inputs.level(input) {
                core.on_level(input, level);
            }
        }
        Self {
            sim,
            core,
            board,
            edges,
            next_sensor_read: now,
            events: Vec::new(),
            last: StepOutput {
                outputs: [false; 7],
                pump_duty: 100,
                identify: false,
            },
            output_health: OutputHealth::default(),
            wall_clock_offset_ms: 0,
            pending_gap: None,
        }
    }

    /// Moves the wall clock the core is given by `by_ms` (an NTP step, an RTC reset) without
    /// moving the monotonic clock: every later step sees the jumped wall time.
    pub fn jump_wall_clock(&mut self, by_ms: i64) {
        self.wall_clock_offset_ms = self.wall_clock_offset_ms.saturating_add(by_ms);
    }

    fn wall_ms(&self, now: Duration) -> i64 {
        unix_ms(now).saturating_add(self.wall_clock_offset_ms)
    }

    /// Time on the twin's clock.
    pub fn now(&self) -> Duration {
        self.board.clock.now()
    }

    /// The true physical state of the twin.
    pub fn truth(&self) -> Truth {
        self.sim.truth()
    }

    /// The core's snapshot now.
    pub fn snapshot(&self) -> Snapshot {
        self.core.snapshot(self.now())
    }

    /// The levels the last step drove.
    pub fn outputs(&self) -> [bool; 7] {
        self.last.outputs
    }

    /// Whether an output is driven on.
    pub fn output(&self, o: Output) -> bool {
        self.last.outputs[o.index()]
    }

    /// Sends a command and runs the step that applies it, as the runtime does.
    pub fn command(&mut self, command: Command) -> Result<Reply, CommandError> {
        let now = self.now();
        let r = self.core.command(command, now, self.wall_ms(now));
        self.control_step();
        r
    }

    /// One control period: twin, edges, sensors, core, outputs.
    pub fn tick(&mut self) {
        self.sim.advance(STEP);
        let edges: Vec<InputEdge> = self
            .edges
            .lock()
            .map(|mut q| std::mem::take(&mut *q))
            .unwrap_or_default();
        for e in edges {
            self.core.on_edge(e);
        }
        let now = self.now();
        if now >= self.next_sensor_read {
            self.next_sensor_read = now + SENSOR_PERIOD;
            self.read_sensors(now);
        }
        if let Some((gap, fired)) = self.pending_gap.take() {
            self.core.on_loop_gap(gap, fired, now);
        }
        self.control_step();
    }

    /// The control loop is silent for `d` (CPU starvation, a write that takes long) while the
    /// twin runs on and the sensors go unread. Past [`STALL_LIMIT`] the watchdog drives every
    /// output safe, as the runtime's does; the next [`Lockstep::tick`] is the loop's first
    /// step after the silence, told how long it was away.
    pub fn stall(&mut self, d: Duration) {
        let start = self.now();
        let mut fired = false;
        while self.now() - start < d {
            self.sim.advance(STEP);
            if !fired && self.now() - start >= STALL_LIMIT {
                fired = true;
                if let Err(e) = self.board.outputs.all_safe() {
                    tracing::error!("watchdog: driving the outputs safe failed: {e}");
                }
                self.last.outputs = [false; 7];
            }
        }
        self.pending_gap = Some((self.now() - start + STEP, fired));
    }

    fn read_sensors(&mut self, now: Duration) {
        for sensor in self.board.sensors.fitted() {
            let value = self.board.sensors.read(sensor);
            self.core.on_sensor(SensorSample {
                sensor,
                at: now,
                value,
            });
        }
    }

    fn control_step(&mut self) {
        let now = self.now();
        let out = self.core.step(now, self.wall_ms(now));
        if out.identify {
            for sensor in self.board.sensors.fitted() {
                let id = self.board.sensors.identify(sensor);
                self.core.on_identity(sensor, id);
            }
        }
        self.output_health.drive(
            &mut *self.board.outputs,
            &mut self.core,
            &self.last,
            &out,
            now,
            || (),
        );
        self.last = out;
        self.events.extend(self.core.drain_events());
    }

    /// Runs for `d` of simulated time.
    pub fn run_for(&mut self, d: Duration) {
        let end = self.now() + d;
        while self.now() < end {
            self.tick();
        }
    }

    /// Runs until `done` holds (checked after every tick) or `limit` passes; returns the time
    /// it took, or `None` on timeout.
    pub fn run_until(
        &mut self,
        limit: Duration,
        mut done: impl FnMut(&Lockstep) -> bool,
    ) -> Option<Duration> {
        let start = self.now();
        while self.now() - start < limit {
            self.tick();
            if done(self) {
                return Some(self.now() - start);
            }
        }
        None
    }

    /// The reading the core holds for a sensor.
    pub fn reading(&self, sensor: Sensor) -> Option<f64> {
        self.snapshot().reading(sensor)
    }
}

/// How often every output line is rewritten even when nothing changed, so that a lost GPIO
/// chip is found within this time while the unit holds its outputs (spraying, chilling).
pub const REWRITE_EVERY: Duration = Duration::from_secs(1);

/// Drives a step's outputs and keeps track of whether the outputs can be written; the one
/// path from a [`StepOutput`] to the port, for the runtime and for [`Lockstep`].
///
/// A failed write leaves a line at an unknown level: every output is driven safe at once,
/// `output_fault` is raised (the unit goes to `fault`), and each following step rewrites every
/// line until a whole write succeeds, which ends the alarm's condition. Every line is also
/// rewritten each [`REWRITE_EVERY`], which is how a failure is found while nothing changes.
#[derive(Debug, Default)]
pub struct OutputHealth {
    failing: bool,
    /// When every line was last written successfully.
    rewritten_at: Option<Duration>,
}

impl OutputHealth {
    /// Writes what changed from `last` to `out`, or every line while writes
    /// fail and each [`REWRITE_EVERY`]; `safe_going_done` as in [`apply_outputs_marked`],
    /// when anything is written. Tells `core` when writes start or stop failing.
    pub fn drive(
        &mut self,
        port: &mut dyn coldspray_hal::OutputPort,
        core: &mut Core,
        last: &StepOutput,
        out: &StepOutput,
        now: Duration,
        safe_going_done: impl FnOnce(),
    ) {
        let rewrite = self.failing
            || self
                .rewritten_at
                .is_none_or(|t| now.saturating_sub(t) >= REWRITE_EVERY);
        let from = if rewrite {
            every_line_differs(out)
        } else {
            *last
        };
        if from.outputs == out.outputs && from.pump_duty == out.pump_duty {
            return;
        }
        match apply_outputs_marked(port, &from, out, safe_going_done) {
            Err(e) => {
                let _ = port.all_safe();
                let why = format!("cannot set {e}");
                if !self.failing {
                    tracing::error!("output write failed: {why}; every output driven safe");
                }
                self.failing = true;
                core.set_output_fault(Some(&why), now);
            }
            Ok(()) => {
                if rewrite {
                    self.rewritten_at = Some(now);
                }
                if self.failing {
                    tracing::warn!("output writes work again");
                    self.failing = false;
                    core.set_output_fault(None, now);
                }
            }
        }
    }
}

/// A state that differs from `out` on every line and in the pump duty: compared against it,
/// every line is written.
fn every_line_differs(out: &StepOutput) -> StepOutput {
    let mut unknown = *out;
    for o in Output::ALL {
        unknown.outputs[o.index()] = !out.outputs[o.index()];
    }
    unknown.pump_duty = out.pump_duty.wrapping_add(1);
    unknown
}

/// The order outputs are driven in: turning off in this order (valve before pump, so the
/// valve is never open on a stopped pump), turning on in the reverse order.
pub const SAFE_ORDER: [Output; 7] = [
    Output::SprayValve,
    Output::Pump,
    Output::Chiller,
    Output::ChillerFan,
    Output::Buzzer,
    Output::LampReady,
    Output::LampFault,
];

/// Drives the outputs that changed from `last` to `out`, pump duty first so the pump starts at
/// the right strength, calling `safe_going_done` once every output that turns off is off and
/// before any turns on (the moment an E-stop's reaction is complete). Every turn-off is tried;
/// nothing is turned on after a write failed. The first write error is returned. The outputs turning off
/// go in ONE [`coldspray_hal::OutputPort::set_safe`] call, valve first: on Linux that is one
/// `ioctl` per GPIO chip instead of one per output.
pub fn apply_outputs_marked(
    port: &mut dyn coldspray_hal::OutputPort,
    last: &StepOutput,
    out: &StepOutput,
    safe_going_done: impl FnOnce(),
) -> Result<(), HalError> {
    let mut first: Result<(), HalError> = Ok(());
    let mut note = |r: Result<(), HalError>| {
        if let (Err(e), true) = (r, first.is_ok()) {
            first = Err(e);
        }
    };
    if out.pump_duty != last.pump_duty {
        note(port.set_pump_duty(out.pump_duty));
    }
    // Safe-going changes first: off before on, valve before pump when closing.
    // Every output turning off in one call: one hardware write per GPIO chip on Linux.
    let mut offs = [Output::Pump; Output::ALL.len()];
    let mut n = 0;
    for o in SAFE_ORDER {
        let (was, now) = (last.outputs[o.index()], out.outputs[o.index()]);
        if was && !now {
            offs[n] = o;
            n += 1;
        }
    }
    if n > 0 {
        note(port.set_safe(&offs[..n]));
    }
    safe_going_done();
    // Nothing turns on once a write has failed (a pump that did not start must not be
    // followed by an opening valve); the caller then drives everything safe.
    for o in SAFE_ORDER.iter().rev() {
        let (was, now) = (last.outputs[o.index()], out.outputs[o.index()]);
        if !was && now {
            let on = port.set(*o, true);
            let failed = on.is_err();
            note(on);
            if failed {
                break;
            }
        }
    }
    first
}

#[cfg(test)]
mod tests {
    use super::*;
    use coldspray_hal::{HalError, OutputPort};

    #[derive(Debug, Clone, PartialEq)]
    enum Call {
        Set(Output, bool),
        SetSafe(Vec<Output>),
        Duty(u8),
        SafeGoingDone,
    }

    type Log = Arc<Mutex<Vec<Call>>>;

    fn record(log: &Log, call: Call) {
        log.lock().unwrap().push(call);
    }

    /// A port that writes several outputs at once (overrides `set_safe`), like the Linux one.
    struct Grouped(Log);

    impl OutputPort for Grouped {
        fn set(&mut self, output: Output, on: bool) -> Result<(), HalError> {
            record(&self.0, Call::Set(output, on));
            Ok(())
        }
        fn set_safe(&mut self, outputs: &[Output]) -> Result<(), HalError> {
            record(&self.0, Call::SetSafe(outputs.to_vec()));
            Ok(())
        }
        fn set_pump_duty(&mut self, percent: u8) -> Result<(), HalError> {
            record(&self.0, Call::Duty(percent));
            Ok(())
        }
        fn commanded(&self, _: Output) -> bool {
            false
        }
    }

    /// A port with the default `set_safe` (like the sim), failing every write to `fails`.
    struct OneByOne(Log, Option<Output>);

    impl OutputPort for OneByOne {
        fn set(&mut self, output: Output, on: bool) -> Result<(), HalError> {
            record(&self.0, Call::Set(output, on));
            if self.1 == Some(output) {
                return Err(HalError::Io {
                    signal: output.name().to_owned(),
                    detail: "write failed".to_owned(),
                });
            }
            Ok(())
        }
        fn set_pump_duty(&mut self, percent: u8) -> Result<(), HalError> {
            record(&self.0, Call::Duty(percent));
            Ok(())
        }
        fn commanded(&self, _: Output) -> bool {
            false
        }
    }

    fn step(on: &[Output], pump_duty: u8) -> StepOutput {
        let mut outputs = [false; 7];
        for o in on {
            outputs[o.index()] = true;
        }
        StepOutput {
            outputs,
            pump_duty,
            identify: false,
        }
    }

    /// Spraying with the ready lamp lit, then an E-stop: actuators and lamp off, fault lamp
    /// and buzzer on.
    fn estop_from_spraying() -> (StepOutput, StepOutput) {
        let spraying = step(
            &[
                Output::Pump,
                Output::SprayValve,
                Output::Chiller,
                Output::ChillerFan,
                Output::LampReady,
            ],
            60,
        );
        let stopped = step(&[Output::LampFault, Output::Buzzer], 60);
        (spraying, stopped)
    }

    fn apply(
        port: &mut dyn OutputPort,
        log: &Log,
        last: &StepOutput,
        out: &StepOutput,
    ) -> Result<(), HalError> {
        let marker = log.clone();
        apply_outputs_marked(port, last, out, move || {
            record(&marker, Call::SafeGoingDone)
        })
    }

    #[test]
    fn every_output_turning_off_goes_in_one_call_before_the_mark_and_the_ons() {
        let log = Log::default();
        let mut port = Grouped(log.clone());
        let (spraying, stopped) = estop_from_spraying();
        apply(&mut port, &log, &spraying, &stopped).unwrap();
        assert_eq!(
            *log.lock().unwrap(),
            vec![
                Call::SetSafe(vec![
                    Output::SprayValve,
                    Output::Pump,
                    Output::Chiller,
                    Output::ChillerFan,
                    Output::LampReady,
                ]),
                Call::SafeGoingDone,
                Call::Set(Output::LampFault, true),
                Call::Set(Output::Buzzer, true),
            ]
        );
    }

    #[test]
    fn nothing_turning_off_makes_no_safe_call_but_still_marks_before_the_ons() {
        let log = Log::default();
        let mut port = Grouped(log.clone());
        let ready = step(
            &[Output::Chiller, Output::ChillerFan, Output::LampReady],
            100,
        );
        let spraying = step(
            &[
                Output::Pump,
                Output::SprayValve,
                Output::Chiller,
                Output::ChillerFan,
                Output::LampReady,
            ],
            70,
        );
        apply(&mut port, &log, &ready, &spraying).unwrap();
        assert_eq!(
            *log.lock().unwrap(),
            vec![
                Call::Duty(70),
                Call::SafeGoingDone,
                Call::Set(Output::Pump, true),
                Call::Set(Output::SprayValve, true),
            ]
        );
    }

    #[test]
    fn a_port_with_the_default_set_safe_turns_off_one_by_one_valve_first_and_tries_all() {
        let log = Log::default();
        // The pump's write fails: the chiller, fan and lamp must still go off.
        let mut port = OneByOne(log.clone(), Some(Output::Pump));
        let (spraying, stopped) = estop_from_spraying();
        let written = apply(&mut port, &log, &spraying, &stopped);
        assert!(
            matches!(&written, Err(HalError::Io { signal, .. }) if signal == "pump"),
            "the pump's failure is reported: {written:?}"
        );
        assert_eq!(
            *log.lock().unwrap(),
            vec![
                Call::Set(Output::SprayValve, false),
                Call::Set(Output::Pump, false),
                Call::Set(Output::Chiller, false),
                Call::Set(Output::ChillerFan, false),
                Call::Set(Output::LampReady, false),
                Call::SafeGoingDone,
                Call::Set(Output::LampFault, true),
                Call::Set(Output::Buzzer, true),
            ]
        );
    }

    #[test]
    fn a_failed_turn_on_stops_the_turn_ons_and_the_health_drives_everything_safe() {
        // The pump's line cannot be set: the valve after it must not open, every output ends
        // commanded off, and the core hears of it (output_fault, unit in fault).
        let log = Log::default();
        let mut port = OneByOne(log.clone(), Some(Output::Pump));
        let mut core = Core::new(
            CoreConfig::default(),
            Protocol::factory_defaults(),
            &[],
            Default::default(),
            1,
            Duration::ZERO,
        );
        let ready = step(&[Output::LampReady], 100);
        let spraying = step(&[Output::LampReady, Output::Pump, Output::SprayValve], 100);
        let mut health = OutputHealth::default();
        let now = Duration::from_millis(10);
        health.drive(&mut port, &mut core, &ready, &spraying, now, || ());
        let calls = log.lock().unwrap().clone();
        assert!(
            !calls.contains(&Call::Set(Output::SprayValve, true)),
            "the valve opened after the pump failed: {calls:?}"
        );
        let fail_at = calls
            .iter()
            .position(|c| *c == Call::Set(Output::Pump, true))
            .expect("the pump was tried");
        for o in Output::ALL {
            assert!(
                calls[fail_at..].contains(&Call::Set(o, false)),
                "{o} not driven safe after the failure: {calls:?}"
            );
        }
        let snap = core.snapshot(now);
        assert!(
            snap.has_alarm(crate::alarm::AlarmKind::OutputFault),
            "{snap:#?}"
        );
        assert_eq!(snap.state, crate::state::UnitState::Fault);
    }
}
