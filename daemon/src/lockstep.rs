//! Runs the control core against the simulated unit in lockstep, in simulated time: the
//! deterministic harness behind the scenario, interlock and property tests and the benchmark.
//!
//! Each tick advances the twin by one control period, hands the core the input edges that
//! happened in it, polls the sensors on their own period, steps the core and drives the twin's
//! outputs with the result — the same order the real-time runtime uses.

use crate::api::{Command, CommandError, Event, Reply, Snapshot};
use crate::control::core::STALL_LIMIT;
use crate::control::{Core, CoreConfig, StepOutput};
use crate::model::sensing::SensorSample;
use crate::protocol::Protocol;
use crate::runtime::outputs::OutputHealth;
use coldspray_hal::signal::OutputLevels;
use coldspray_hal::sim::{SimConfig, SimUnit, Truth};
use coldspray_hal::{Board, Input, InputEdge, Output, Sensor};
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
    pub fn new(mut config: CoreConfig, sim: SimConfig) -> Self {
        // The skin sensor the twin fits, where the configuration leaves it unset (as
        // `Config::core` does for the simulated unit).
        config.safety = config.safety.with_skin_sensor(sim.skin_sensor_view());
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
                outputs: OutputLevels::all_off(),
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
    pub fn outputs(&self) -> OutputLevels {
        self.last.outputs
    }

    /// Whether an output is driven on.
    pub fn output(&self, o: Output) -> bool {
        self.last.outputs[o]
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
                self.last.outputs = OutputLevels::all_off();
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
