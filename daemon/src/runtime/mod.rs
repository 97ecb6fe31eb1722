//! The real-time daemon: owns the board, runs the control loop on tokio, and wires the core
//! to the sensor thread, the journal thread, the watchdog and the outside world.
//!
//! ```text
//!  board inputs ──edges──┐                       ┌──> outputs (GPIO / sim)
//!  sensor thread ─samples┼──> control loop (core) ┤
//!  ControlHandle ─commands┘         │             └──> snapshot (watch) ──> D-Bus, metrics, view
//!                                   └──events──> journal thread ──persist──> broadcast
//! ```

pub mod journal;
pub mod notify;
pub mod sensors;
mod settings;
pub mod watchdog;

use crate::alarm::AlarmKind;
use crate::api::{Command, Snapshot};
use crate::config::{Backend, Config};
use crate::control::{Core, StepOutput};
use crate::handle::{CommandRequest, ControlHandle, HandleEnds, UnitInfo};
use crate::lockstep::OutputHealth;
use crate::protocol::Protocol;
use crate::state::UnitState;
use crate::store::{saved_or_default, LogStore};
use coldspray_hal::sim::SimUnit;
use coldspray_hal::{Board, Clock, Input, InputEdge, InputPort, Output};
use journal::JournalItem;
use notify::Notifier;
use sensors::SensorMessage;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc as std_mpsc, Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::{mpsc, oneshot};
use watchdog::{Heartbeat, SharedOutputs, StallFlag};

/// Why the daemon could not start or had to stop.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The hardware backend could not be opened.
    #[error("hardware: {0}")]
    Hardware(String),
    /// A thread could not be started.
    #[error("cannot start the {0} thread: {1}")]
    Thread(&'static str, std::io::Error),
    /// The control loop panicked; outputs were driven safe.
    #[error("control loop panicked: {0}")]
    Panic(String),
}

/// A board-clock time as nanoseconds, for the progress marks the sim pacer reads.
fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// How often the control loop re-reads the safety inputs' levels, wall time. Edges are the
/// primary path; this catches an edge the kernel or a backend thread lost.
const LEVEL_CHECK: Duration = Duration::from_millis(100);

/// Inputs whose level the loop re-reads: the ones whose loss would leave the unit unsafe.
const CHECKED_INPUTS: [Input; 2] = [Input::Estop, Input::WaterLow];

/// How far the simulated unit may run ahead of the slowest of its observers (the control
/// loop and the sensor thread), in simulated time: one sensor period and a half.
const SIM_LEAD: Duration = Duration::from_millis(150);

/// The wall clock, ms since the Unix epoch.
pub fn unix_ms_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// What the daemon was started with, besides the config file.
#[derive(Default)]
pub struct Parts {
    /// The board (already opened by the binary).
    pub board: Option<Board>,
    /// The simulated unit behind the board, when on the sim.
    pub sim: Option<SimUnit>,
    /// The treatment log (None: degraded mode).
    pub store: Option<Arc<dyn LogStore>>,
    /// Why the store is unavailable, when it is.
    pub store_error: Option<String>,
}

/// A running daemon, from [`start`].
pub struct Daemon {
    /// The handle every front end uses.
    pub handle: ControlHandle,
    /// The control thread's result, sent as it ends.
    done: oneshot::Receiver<Result<(), RuntimeError>>,
    stop_tx: tokio::sync::watch::Sender<Option<String>>,
}

/// The reason a plain [`Daemon::stop`] gives in the `stopping` state change.
pub const DEFAULT_STOP_REASON: &str = "daemon stopping";

impl Daemon {
    /// Stops the control loop: session closed as `shutdown`, outputs off, log flushed.
    pub async fn stop(self) -> Result<(), RuntimeError> {
        self.stop_because(DEFAULT_STOP_REASON).await
    }

    /// As [`Daemon::stop`], with the reason the `stopping` state change (the `StateChanged`
    /// signal, the event log and the journal) gives, e.g. "SIGTERM (systemctl stop/restart or
    /// package upgrade)". Returns once the closing session record and the state change are
    /// flushed to the treatment log and broadcast to the front ends.
    pub async fn stop_because(self, reason: &str) -> Result<(), RuntimeError> {
        // The receiver lives as long as the control loop; once it is gone the loop has
        // already ended and `wait` reports how.
        if self.stop_tx.send(Some(reason.to_string())).is_err() {
            tracing::debug!("stop requested after the control loop ended");
        }
        self.wait().await
    }

    /// Waits for the control loop to end (it ends on a panic or after [`Daemon::stop`]).
    pub async fn wait(self) -> Result<(), RuntimeError> {
        match self.done.await {
            Ok(r) => r,
            // The thread died without a result: a panic outside the guarded core calls.
            Err(_) => Err(RuntimeError::Panic(
                "the control thread ended abruptly".into(),
            )),
        }
    }
}

/// Starts the control loop on its own thread. Outputs are driven safe before
/// anything else happens. Returns once the loop runs; [`Notifier::ready`] is the caller's
/// job once its front ends (bus name, metrics socket) are up.
pub fn start(config: &Config, parts: Parts) -> Result<Daemon, RuntimeError> {
    let Parts {
        board,
        sim,
        store,
        store_error,
    } = parts;
    let mut board = board.ok_or_else(|| RuntimeError::Hardware("no board".into()))?;

    // 1. Safe first: every output off before the core even exists.
    if let Err(e) = board.outputs.all_safe() {
        tracing::error!("driving outputs safe at start: {e}");
    }
    let clock = board.clock.clone();
    let speed = if config.unit.backend == Backend::Sim {
        config.sim.speed
    } else {
        1.0
    };

    // 2. Restore what the store remembers; close sessions a crash left open.
    let now_unix = unix_ms_now();
    let mut close_failed = None;
    if let Some(store) = &store {
        match store.close_open_sessions(now_unix) {
            Ok(ids) if !ids.is_empty() => {
                tracing::warn!(
                    "closed {} session(s) left open by a crash as aborted: {ids:?}",
                    ids.len()
                );
            }
            Ok(_) => {}
            Err(e) => {
                tracing::error!("treatment log: NOT recorded: closing open sessions: {e}");
                close_failed = Some(format!("closing sessions left open: {e}"));
            }
        }
    }
    let protocols = store
        .as_ref()
        .and_then(|s| saved_or_default("protocols", s.load_protocols()))
        .filter(|p| !p.is_empty())
        .unwrap_or_else(Protocol::factory_defaults);
    let counters = store
        .as_ref()
        .and_then(|s| saved_or_default("counters", s.load_counters()))
        .unwrap_or_default();
    let next_id = store.as_ref().map_or(1, |s| {
        s.next_session_id().unwrap_or_else(|e| {
            tracing::warn!("treatment log: next session id unreadable: {e}");
            1
        })
    });
    let fitted = board.sensors.fitted();
    let now = clock.now();
    let mut core = Core::new(
        config.core(),
        protocols.clone(),
        &fitted,
        counters,
        next_id,
        now,
    );
    let settings_dir = config.state_dir();
    settings::restore(&mut core, &settings_dir, store.as_deref(), now);
    if let Some(why) = store.as_ref().and_then(|s| s.lost_at_open()) {
        core.raise_runtime_event_alarm(AlarmKind::LogDamaged, &why, now);
    }
    if let Some(why) = &store_error {
        core.set_runtime_alarm(AlarmKind::StoreUnavailable, true, why, now);
    }

    // 3. Channels and threads.
    let info = UnitInfo {
        version: env!("CARGO_PKG_VERSION").to_string(),
        backend: board.backend.to_string(),
        features: features(&board, sim.is_some(), store.is_some(), &fitted),
    };
    let log_store = store.clone();
    let (handle, ends) =
        ControlHandle::new(info, core.snapshot(now), protocols, log_store, sim.clone());
    if let Some(why) = close_failed {
        // The loop raises log_write_failed at its first step; the journal retries the store.
        handle.telemetry.store_health.set_failing(&why);
    }
    let (edge_tx, edge_rx) = mpsc::unbounded_channel::<InputEdge>();
    board
        .inputs
        .subscribe(Arc::new(move |e| {
            let _ = edge_tx.send(e);
        }))
        .map_err(|e| RuntimeError::Hardware(e.to_string()))?;
    for input in Input::ALL {
        match board.inputs.level(input) {
            Ok(level) => core.on_level(input, level),
            Err(e) => tracing::warn!("reading {input}: {e}"),
        }
    }
    let stop_threads = Arc::new(AtomicBool::new(false));
    let (sensor_tx, sensor_rx) = mpsc::unbounded_channel();
    let (identify_tx, identify_rx) = std_mpsc::channel();
    let sensor_mark = Arc::new(AtomicU64::new(nanos(now)));
    let control_mark = Arc::new(AtomicU64::new(nanos(now)));
    let sensor_thread = sensors::spawn(sensors::SensorThread {
        port: board.sensors,
        clock: clock.clone(),
        period: Duration::from_millis(config.unit.sensor_period_ms),
        wall_scale: speed,
        out: sensor_tx,
        identify: identify_rx,
        stop: stop_threads.clone(),
        progress: sensor_mark.clone(),
    })
    .map_err(|e| RuntimeError::Thread("sensor", e))?;
    let sim_thread = match &sim {
        Some(sim) => Some(spawn_sim_driver(
            sim.clone(),
            speed,
            [sensor_mark, control_mark.clone()],
            stop_threads.clone(),
        )?),
        None => None,
    };
    let (journal_tx, journal_rx) = std_mpsc::channel();
    let persistence = store.clone();
    let (settings_status_tx, settings_status) = std_mpsc::channel();
    let settings_saver = settings::Saver {
        dir: settings_dir,
        log: persistence.clone(),
        status: settings_status_tx,
    };
    let journal_thread = journal::spawn(
        persistence,
        ends.events.clone(),
        handle.telemetry.clone(),
        journal_rx,
    )
    .map_err(|e| RuntimeError::Thread("journal", e))?;

    let outputs: SharedOutputs = Arc::new(Mutex::new(board.outputs));
    let heartbeat = Heartbeat::new();
    heartbeat.beat();
    // The loop steps every few ms (wall time, whatever the sim speed); a second of silence is
    // a stall. systemd's WatchdogSec is the outer layer.
    // The backend's lock-free safe-off, for a loop hung in a write under the outputs lock:
    // on the sim a second handle onto the twin. The Linux line request cannot be shared: there
    // the process exit releases the lines and `ExecStopPost=` drives them off.
    let bypass: Option<watchdog::SafeOffPath> = sim.as_ref().map(|sim| {
        let mut second = sim.board().outputs;
        Box::new(move || second.all_safe().map_err(|e| e.to_string())) as watchdog::SafeOffPath
    });
    let stalled = StallFlag::new();
    let _watchdog = watchdog::spawn(
        watchdog::Watchdog {
            heartbeat: heartbeat.clone(),
            outputs: outputs.clone(),
            bypass,
            stalled: stalled.clone(),
            limits: watchdog::Limits::default(),
            stop: stop_threads.clone(),
        },
        |stall| {
            tracing::error!(
                "control loop silent for {:.1} s: {}; aborting for a restart",
                stall.silence.as_secs_f64(),
                stall.safe_off
            );
            std::process::abort();
        },
    )
    .map_err(|e| RuntimeError::Thread("watchdog", e))?;

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(None);
    let telemetry = handle.telemetry.clone();
    let step = Duration::from_millis(config.unit.step_ms);
    let ctl = ControlLoop {
        core,
        // The loop owns the input port: dropping it would stop the backend's edge threads.
        inputs: board.inputs,
        inputs_failed: false,
        output_health: OutputHealth::default(),
        estop_edge_at: None,
        safe_going_at: None,
        clock,
        outputs,
        last: StepOutput {
            outputs: [false; 7],
            pump_duty: 100,
            identify: false,
        },
        ends,
        journal: journal_tx,
        settings_saver,
        settings_status,
        identify: identify_tx,
        heartbeat,
        stalled,
        notifier: Notifier::from_env(),
        progress: control_mark,
        telemetry,
        step,
        speed,
        status: String::new(),
        store_seen: 0,
    };
    // The loop runs on its own thread and runtime: D-Bus calls and scrapes on the main
    // runtime's workers never queue in front of a step, and on the hardware the thread can
    // run at real-time priority.
    let priority = match config.unit.backend {
        Backend::Linux => config.hardware.realtime_priority,
        Backend::Sim => 0,
    };
    let (done_tx, done_rx) = oneshot::channel();
    std::thread::Builder::new()
        .name("coldspray-control".into())
        .spawn(move || {
            match coldspray_hal::linux::set_current_thread_realtime(priority) {
                Ok(()) if priority > 0 => tracing::info!(
                    "control loop and GPIO edge threads at SCHED_FIFO priority {priority}"
                ),
                Ok(()) => {}
                Err(e) => tracing::warn!(
                    "control loop at normal priority: SCHED_FIFO {priority} refused ({e}); \
                     grant LimitRTPRIO= or set [hardware] realtime_priority = 0"
                ),
            }
            let result = match tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .build()
            {
                Ok(rt) => rt.block_on(ctl.run(edge_rx, sensor_rx, stop_rx)),
                Err(e) => Err(RuntimeError::Thread("control runtime", e)),
            };
            stop_threads.store(true, Ordering::SeqCst);
            let _ = sensor_thread.join();
            if let Some(t) = sim_thread {
                let _ = t.join();
            }
            let _ = journal_thread.join();
            let _ = done_tx.send(result);
        })
        .map_err(|e| RuntimeError::Thread("control", e))?;
    Ok(Daemon {
        handle,
        done: done_rx,
        stop_tx,
    })
}

fn features(
    board: &Board,
    sim: bool,
    store: bool,
    fitted: &[coldspray_hal::Sensor],
) -> Vec<String> {
    let mut f = vec![format!("backend:{}", board.backend)];
    if sim {
        f.push("sim".into());
    }
    if fitted.contains(&coldspray_hal::Sensor::Skin) {
        f.push("skin_sensor".into());
    }
    if store {
        f.push("log_store".into());
    }
    f
}

/// Advances the simulated unit in real time (times `speed`) on its own thread, but never more
/// than [`SIM_LEAD`] ahead of the slowest observer: on a loaded machine the simulation slows
/// down instead of letting time pass that nobody saw (which would look like stale sensors).
fn spawn_sim_driver(
    sim: SimUnit,
    speed: f64,
    marks: [Arc<AtomicU64>; 2],
    stop: Arc<AtomicBool>,
) -> Result<std::thread::JoinHandle<()>, RuntimeError> {
    std::thread::Builder::new()
        .name("coldspray-sim".into())
        .spawn(move || {
            let clock = sim.clock();
            let mut last = Instant::now();
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(1));
                let now = Instant::now();
                let wanted = (now - last).mul_f64(speed);
                last = now;
                let slowest = marks
                    .iter()
                    .map(|m| m.load(Ordering::Relaxed))
                    .min()
                    .unwrap_or(0);
                let allowed = Duration::from_nanos(slowest) + SIM_LEAD;
                let step = wanted.min(allowed.saturating_sub(clock.now()));
                if !step.is_zero() {
                    sim.advance(step);
                }
            }
        })
        .map_err(|e| RuntimeError::Thread("sim", e))
}

struct ControlLoop {
    core: Core,
    inputs: Box<dyn InputPort>,
    inputs_failed: bool,
    /// Writes the outputs; whether they can be written.
    output_health: OutputHealth,
    /// Kernel timestamp of an E-stop edge whose reaction is not yet reported.
    estop_edge_at: Option<Duration>,
    /// Board time at which the last step's turning-off writes were done, if it changed any.
    safe_going_at: Option<Duration>,
    clock: Arc<dyn Clock>,
    outputs: SharedOutputs,
    last: StepOutput,
    ends: HandleEnds,
    journal: std_mpsc::Sender<JournalItem>,
    /// Saves the unit settings (on the journal thread).
    settings_saver: settings::Saver,
    /// Outcome of each settings save: `Err` raises `settings_not_saved`.
    settings_status: std_mpsc::Receiver<Result<(), String>>,
    identify: std_mpsc::Sender<()>,
    heartbeat: Heartbeat,
    /// Set by the watchdog when it drove the outputs safe behind this loop's back.
    stalled: StallFlag,
    notifier: Notifier,
    /// Board time of the last step (paces the simulated unit).
    progress: Arc<AtomicU64>,
    telemetry: Arc<crate::telemetry::Telemetry>,
    step: Duration,
    speed: f64,
    status: String,
    /// The last [`crate::telemetry::StoreHealth`] generation applied to the core.
    store_seen: u64,
}

impl ControlLoop {
    async fn run(
        mut self,
        mut edges: mpsc::UnboundedReceiver<InputEdge>,
        mut sensors: mpsc::UnboundedReceiver<SensorMessage>,
        mut stop: tokio::sync::watch::Receiver<Option<String>>,
    ) -> Result<(), RuntimeError> {
        let wall_step = self
            .step
            .mul_f64(1.0 / self.speed)
            .max(Duration::from_millis(1));
        let mut tick = tokio::time::interval(wall_step);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut last_watchdog = Instant::now();
        let ping = self.notifier.ping_interval();
        let mut last_counters = Instant::now();
        let mut last_status = Instant::now() - Duration::from_secs(10);
        let mut last_level_check = Instant::now();
        let mut last_step = Instant::now();
        loop {
            let mut command: Option<CommandRequest> = None;
            let deadline = Instant::now() + wall_step;
            tokio::select! {
                biased;
                _ = stop.changed() => break,
                Some(e) = edges.recv() => {
                    let mut urgent = self.take_edge(e);
                    // Take everything else pending so one step sees all of it.
                    while let Ok(e) = edges.try_recv() {
                        urgent |= self.take_edge(e);
                    }
                    // A flow pulse only feeds the flow meter: the next tick is soon enough,
                    // and stepping on each one (hundreds a second) would delay the E-stop.
                    if !urgent && last_step.elapsed() < wall_step {
                        continue;
                    }
                }
                Some(req) = self.ends.commands.recv() => command = Some(req),
                Some(msg) = sensors.recv() => {
                    self.take_sensor(msg);
                    while let Ok(msg) = sensors.try_recv() {
                        self.take_sensor(msg);
                    }
                    // Readings wait for the tick, unless a flood has kept the tick from running.
                    if last_step.elapsed() < wall_step {
                        continue;
                    }
                }
                _ = tick.tick() => {}
            }
            // Whatever woke the loop, take every reading and edge already queued: under a flood
            // of edges (flow pulses) the biased select would otherwise starve the sensors.
            while let Ok(msg) = sensors.try_recv() {
                self.take_sensor(msg);
            }
            while let Ok(e) = edges.try_recv() {
                self.take_edge(e);
            }
            if last_level_check.elapsed() >= LEVEL_CHECK {
                last_level_check = Instant::now();
                self.check_levels();
            }
            let started = Instant::now();
            let gap = started.saturating_duration_since(last_step);
            last_step = started;
            let now = self.clock.now();
            let unix = unix_ms_now();
            while let Ok(saved) = self.settings_status.try_recv() {
                let failure = saved.err();
                self.core.set_runtime_alarm(
                    AlarmKind::SettingsNotSaved,
                    failure.is_some(),
                    failure.as_deref().unwrap_or_default(),
                    now,
                );
            }
            // A stall (the watchdog drove the outputs safe, or the loop was away past its
            // limit) faults the unit until the loop has been on time for a while.
            let fired = self.stalled.take();
            if fired || gap >= crate::control::core::LATE_STEP {
                tracing::warn!(
                    target: "coldspray::loop",
                    "control loop late: {:.0} ms since the previous step{}",
                    gap.as_secs_f64() * 1e3,
                    if fired { " (the watchdog drove the outputs safe)" } else { "" }
                );
                self.guarded(|core| core.on_loop_gap(gap, fired, now))?;
            }
            let reply = match command {
                Some((cmd, caller, tx)) => {
                    let result = self.guarded(|core| core.command_by(cmd, caller, now, unix))?;
                    Some((tx, result))
                }
                None => None,
            };
            let store_change = self.apply_store_health(now);
            let out = self.guarded(|core| core.step(now, unix))?;
            self.drive(&out);
            self.report_estop_reaction();
            if out.identify {
                let _ = self.identify.send(());
            }
            let events = self.core.drain_events();
            let dirty = self.core.take_dirty();
            if dirty.protocols {
                let list = self.core.protocols().to_vec();
                let _ = self.journal.send(JournalItem::Protocols(list.clone()));
                self.ends.protocols.send_replace(Arc::new(list));
            }
            if dirty.settings {
                let job = self.settings_saver.job(&self.core);
                if self.journal.send(JournalItem::Settings(job)).is_err() {
                    tracing::error!("unit settings not saved: the journal thread is gone");
                }
            }
            if !events.is_empty() || reply.is_some() {
                let _ = self.journal.send(JournalItem::Events { events, reply });
            }
            let snapshot = self.core.snapshot(now);
            if last_status.elapsed() >= Duration::from_secs(1) {
                last_status = Instant::now();
                self.update_status(&snapshot);
            }
            if last_counters.elapsed() >= Duration::from_secs(60) {
                last_counters = Instant::now();
                let _ = self
                    .journal
                    .send(JournalItem::Counters(snapshot.counters.clone()));
            }
            self.ends.snapshot.send_replace(Arc::new(snapshot));
            if let Some(generation) = store_change {
                // The alarm is in the published snapshot: the journal may answer now.
                self.telemetry.store_health.mark_applied(generation);
            }
            self.heartbeat.beat();
            self.progress.store(nanos(now), Ordering::Relaxed);
            if let Some(p) = ping {
                if last_watchdog.elapsed() >= p {
                    last_watchdog = Instant::now();
                    self.notifier.watchdog();
                }
            }
            let took = started.elapsed();
            self.telemetry
                .record_step(took, Instant::now() > deadline + wall_step);
        }
        let reason = stop
            .borrow()
            .clone()
            .unwrap_or_else(|| DEFAULT_STOP_REASON.to_string());
        self.shutdown(&reason).await;
        Ok(())
    }

    /// Raises `log_write_failed` when the journal found the treatment log failing, ends its
    /// condition when writes work again (it stays latched until acknowledged). Returns the
    /// generation applied, to be marked once the snapshot is published.
    fn apply_store_health(&mut self, now: Duration) -> Option<u64> {
        let (generation, failing) = self.telemetry.store_health.change_since(self.store_seen)?;
        self.store_seen = generation;
        let message = match &failing {
            Some(why) => format!("{}: {why}", AlarmKind::LogWriteFailed.describe()),
            None => String::new(),
        };
        self.core
            .set_runtime_alarm(AlarmKind::LogWriteFailed, failing.is_some(), &message, now);
        Some(generation)
    }

    /// Re-reads the safety inputs. An input that cannot be read counts as asserted (E-stop
    /// pressed, water low): a dead edge thread must not leave the unit spraying.
    fn check_levels(&mut self) {
        let mut failed = false;
        for input in CHECKED_INPUTS {
            match self.inputs.level(input) {
                Ok(level) => self.core.on_level(input, level),
                Err(e) => {
                    failed = true;
                    self.core.on_level(input, true);
                    if !self.inputs_failed {
                        tracing::error!("cannot read {input} ({e}): treating it as asserted");
                    }
                }
            }
        }
        self.inputs_failed = failed;
    }

    /// Hands an edge to the core; true when it needs a step at once (anything but a flow
    /// pulse).
    fn take_edge(&mut self, edge: InputEdge) -> bool {
        let urgent = edge.input != Input::FlowPulse;
        // Only a press that finds an actuator running has a reaction to time (and a bouncing
        // or flapping contact on a safe unit logs nothing).
        if edge.input == Input::Estop && edge.level && self.actuator_running() {
            self.estop_edge_at.get_or_insert(edge.at);
        }
        self.core.on_edge(edge);
        urgent
    }

    fn take_sensor(&mut self, msg: SensorMessage) {
        match msg {
            SensorMessage::Sample(s) => self.core.on_sensor(s),
            SensorMessage::Identity(s, r) => self.core.on_identity(s, r),
        }
    }

    /// Runs a core call; a panic drives every output safe and ends the loop.
    fn guarded<T>(&mut self, f: impl FnOnce(&mut Core) -> T) -> Result<T, RuntimeError> {
        match std::panic::catch_unwind(AssertUnwindSafe(|| f(&mut self.core))) {
            Ok(v) => Ok(v),
            Err(panic) => {
                let mut port = self.outputs.lock().unwrap_or_else(|p| p.into_inner());
                let _ = port.all_safe();
                let what = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_else(|| "unknown panic".into());
                tracing::error!("control core panicked: {what}; every output driven safe");
                Err(RuntimeError::Panic(what))
            }
        }
    }

    fn drive(&mut self, out: &StepOutput) {
        let now = self.clock.now();
        let clock = &self.clock;
        let mut at = None;
        let mut port = self.outputs.lock().unwrap_or_else(|p| p.into_inner());
        if self.stalled.is_set() {
            // The watchdog drove every output safe after this step was computed: write
            // nothing; the next step hears of the stall and faults the unit. The lines are
            // off now, so that is what the next step's changes are taken from.
            drop(port);
            self.last = StepOutput {
                outputs: [false; 7],
                ..*out
            };
            self.safe_going_at = None;
            return;
        }
        self.output_health
            .drive(&mut **port, &mut self.core, &self.last, out, now, || {
                at = Some(clock.now())
            });
        drop(port);
        self.safe_going_at = at;
        self.last = *out;
    }

    /// Once the outputs are safe after an E-stop edge, logs how long after the kernel's
    /// timestamp of that edge the last actuator line was driven off (the edge and the clock
    /// share `CLOCK_MONOTONIC` on the hardware, simulated time on the sim).
    fn report_estop_reaction(&mut self) {
        let Some(at) = self.estop_edge_at else {
            return;
        };
        if !self.actuator_running() {
            self.estop_edge_at = None;
            // When the last line went off; lamps and buzzer turning on come after it.
            let off_at = self.safe_going_at.unwrap_or_else(|| self.clock.now());
            let took = off_at.saturating_sub(at);
            tracing::warn!(
                target: "coldspray::estop",
                "E-stop: every actuator off {:.3} ms after the kernel edge",
                took.as_secs_f64() * 1e3
            );
        }
    }

    /// Whether the last step left any actuator (pump, valve, chiller, fan) on.
    fn actuator_running(&self) -> bool {
        Output::ALL
            .iter()
            .any(|o| o.is_actuator() && self.last.outputs[o.index()])
    }

    fn update_status(&mut self, s: &Snapshot) {
        let status = status_line(s);
        if status != self.status {
            self.notifier.status(&status);
            self.status = status;
        }
    }

    async fn shutdown(&mut self, reason: &str) {
        self.notifier.stopping();
        let now = self.clock.now();
        let out = self.core.shutdown(now, unix_ms_now(), reason);
        self.drive(&out);
        {
            let mut port = self.outputs.lock().unwrap_or_else(|p| p.into_inner());
            if let Err(e) = port.all_safe() {
                tracing::error!("driving outputs safe at shutdown: {e}");
            }
        }
        let events = self.core.drain_events();
        let snapshot = self.core.snapshot(now);
        let _ = self.journal.send(JournalItem::Events {
            events,
            reply: None,
        });
        let _ = self
            .journal
            .send(JournalItem::Counters(snapshot.counters.clone()));
        let (tx, rx) = oneshot::channel();
        let _ = self.journal.send(JournalItem::Flush(tx));
        let _ = tokio::time::timeout(Duration::from_secs(5), rx).await;
        self.ends.snapshot.send_replace(Arc::new(snapshot));
        // Refuse the commands still queued.
        self.ends.commands.close();
        while let Ok((_, _, tx)) = self.ends.commands.try_recv() {
            let _ = tx.send(Err(crate::api::CommandError::ShuttingDown));
        }
        // Dropping the journal sender ends the journal thread after it drained.
        let (dead_tx, _) = std_mpsc::channel();
        drop(std::mem::replace(&mut self.journal, dead_tx));
    }
}

/// The one-line status shown by `systemctl status` and the live view's header.
pub fn status_line(s: &Snapshot) -> String {
    let temp = |v: Option<f64>| v.map_or("--".to_string(), |t| format!("{t:.1}°C"));
    let mut line = format!(
        "{}{} reservoir {} mist {}",
        s.state,
        if s.ready { " (ready)" } else { "" },
        temp(s.reading(coldspray_hal::Sensor::Reservoir)),
        temp(s.reading(coldspray_hal::Sensor::Mist)),
    );
    if let Some(session) = &s.session {
        line.push_str(&format!(
            ", session {} {:.0}s",
            session.start.id, session.elapsed_s
        ));
    }
    if !s.alarms.is_empty() {
        let keys: Vec<String> = s.alarms.iter().map(|a| a.kind.key()).collect();
        line.push_str(&format!(", alarms: {}", keys.join(" ")));
    }
    if s.state == UnitState::Fault {
        line.push_str(" — acknowledge when the cause is fixed");
    }
    line
}

/// Sends a command through a handle, logging refusals (used by the demo and the pedal-less
/// test hooks).
pub async fn send_logged(handle: &ControlHandle, cmd: Command) -> bool {
    let what = format!("{cmd:?}");
    match handle.command(cmd).await {
        Ok(_) => true,
        Err(e) => {
            tracing::warn!("{what}: refused: {e}");
            false
        }
    }
}
