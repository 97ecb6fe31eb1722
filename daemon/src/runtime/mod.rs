//! The real-time daemon: owns the board, runs the control loop on tokio, and wires the core
//! to the sensor thread, the journal, the watchdog and the outside world.
//!
//! ```text
//!  board inputs ──edges──┐                       ┌──> outputs (GPIO / sim)
//!  sensor thread ─samples┼──> control loop (core) ┤
//!  ControlHandle ─commands┘         │             └──> snapshot (watch) ──> D-Bus, metrics, view
//!                                   └──events──> journal ──persist──> broadcast
//! ```

mod cadence;
mod control_loop;
mod edges;
pub mod journal;
pub mod notify;
pub mod outputs;
pub mod sensor_poller;
mod settings;
mod sim_driver;
pub mod watchdog;

use crate::api::{Command, Snapshot};
use crate::config::{Backend, Config};
use crate::control::{Core, StepOutput};
use crate::handle::{ControlHandle, UnitInfo};
use crate::model::alarm::AlarmKind;
use crate::model::state::UnitState;
use crate::protocol::Protocol;
use crate::store::{saved_or_default, LogStore};
use coldspray_hal::signal::OutputLevels;
use coldspray_hal::sim::SimUnit;
use coldspray_hal::{Board, Input, InputEdge};
use control_loop::ControlLoop;
use notify::Notifier;
use outputs::OutputHealth;
use sim_driver::spawn_sim_driver;
pub use sim_driver::SimSpeed;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc as std_mpsc, Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::{mpsc, oneshot};
use watchdog::{Heartbeat, SharedOutputs, StallFlag};

/// Why the daemon could not start or had to stop.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The runtime was started without a board.
    #[error("hardware: no board")]
    NoBoard,
    /// The board refused what the runtime needs of it (the input edges).
    #[error("hardware: {0}")]
    Hardware(#[source] coldspray_hal::HalError),
    /// A thread could not be started.
    #[error("cannot start the {0} thread: {1}")]
    Thread(&'static str, #[source] std::io::Error),
    /// [`start`] was called outside a tokio runtime: the journal runs on the runtime that
    /// starts the daemon.
    #[error("the daemon must be started from within its tokio runtime: {0}")]
    NoRuntime(#[source] tokio::runtime::TryCurrentError),
    /// The control loop panicked; outputs were driven safe.
    #[error("control loop panicked: {0}")]
    Panic(String),
}

/// A board-clock time as nanoseconds, for the progress marks the sim pacer reads.
fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

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
    /// The simulated unit's speed (the demo slows it down for the parts a person watches);
    /// `None` on the hardware.
    pub sim_speed: Option<SimSpeed>,
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
    let mut board = board.ok_or(RuntimeError::NoBoard)?;

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
    let core_config = config.core();
    let skin = core_config.safety.skin_sensor();
    tracing::info!(
        "skin-floor interlock: the sensor's view on the spot {:.2}, filter settling {:.2} s \
         ([safety] skin_sensor_fill/skin_sensor_settle_s, else the {:?} unit's sensor)",
        skin.spot_fill,
        skin.settle_s,
        config.unit.backend
    );
    let mut core = Core::new(
        core_config,
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
    // The control loop's runtime, built here so the edge descriptors are registered with its
    // reactor before anything runs; it runs on the control thread below.
    let control_runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .enable_io()
        .build()
        .map_err(|e| RuntimeError::Thread("control runtime", e))?;
    let (edge_tx, edge_rx) = mpsc::unbounded_channel::<InputEdge>();
    edges::connect(board.inputs.as_mut(), &control_runtime, edge_tx)?;
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
    let quiet = Arc::new(AtomicBool::new(false));
    let sensor_thread = sensor_poller::spawn(sensor_poller::SensorThread {
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
    let sim_speed = sim.as_ref().map(|_| SimSpeed::new(speed));
    let sim_thread = match (&sim, &sim_speed) {
        (Some(sim), Some(sim_speed)) => Some(spawn_sim_driver(
            sim.clone(),
            sim_speed.clone(),
            [sensor_mark, control_mark.clone()],
            quiet.clone(),
            stop_threads.clone(),
        )?),
        _ => None,
    };
    // The journal runs on the runtime that starts the daemon (the main one).
    let main_runtime = tokio::runtime::Handle::try_current().map_err(RuntimeError::NoRuntime)?;
    let (journal_tx, journal_rx) = mpsc::unbounded_channel();
    let persistence = store.clone();
    let (settings_status_tx, settings_status) = std_mpsc::channel();
    let settings_saver = settings::Saver {
        dir: settings_dir,
        log: persistence.clone(),
        status: settings_status_tx,
    };
    let journal_done = journal::spawn(
        &main_runtime,
        persistence,
        ends.events.clone(),
        handle.telemetry.clone(),
        journal_rx,
        journal::RETRY,
    );

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
            outputs: OutputLevels::all_off(),
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
        quiet,
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
                    "control loop (and the GPIO edges it reads) at SCHED_FIFO priority {priority}"
                ),
                Ok(()) => {}
                Err(e) => tracing::warn!(
                    "control loop at normal priority: SCHED_FIFO {priority} refused ({e}); \
                     grant LimitRTPRIO= or set [hardware] realtime_priority = 0"
                ),
            }
            let result = control_runtime.block_on(ctl.run(edge_rx, sensor_rx, stop_rx));
            drop(control_runtime);
            stop_threads.store(true, Ordering::SeqCst);
            let _ = sensor_thread.join();
            if let Some(t) = sim_thread {
                let _ = t.join();
            }
            // Closed once the journal has drained what the loop sent last.
            let _ = journal_done.recv();
            let _ = done_tx.send(result);
        })
        .map_err(|e| RuntimeError::Thread("control", e))?;
    Ok(Daemon {
        handle,
        done: done_rx,
        stop_tx,
        sim_speed,
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
