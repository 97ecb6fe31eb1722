//! The control loop: one thread that steps the core at once on an urgent edge or a command,
//! and otherwise on the [`Cadence`]: every `step_ms` while something runs, on each sensor
//! reading (and at least every [`QUIET_STEP`]) while the unit is quiet. Each step drives the
//! outputs, publishes the snapshot, hands events to the journal and beats the watchdog's
//! heartbeat.

use super::cadence::{is_quiet, Cadence, QUIET_STEP};
use super::journal::JournalItem;
use super::notify::Notifier;
use super::outputs::OutputHealth;
use super::sensor_poller::SensorMessage;
use super::watchdog::{Heartbeat, SharedOutputs, StallFlag};
use super::{nanos, settings, status_line, unix_ms_now, RuntimeError, DEFAULT_STOP_REASON};
use crate::api::Snapshot;
use crate::control::{Core, StepOutput};
use crate::handle::{CommandRequest, HandleEnds};
use crate::model::alarm::AlarmKind;
use coldspray_hal::signal::OutputLevels;
use coldspray_hal::{Clock, Input, InputEdge, InputPort, Output};
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc as std_mpsc, Arc};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

/// How often the control loop re-reads the safety inputs' levels, wall time. Edges are the
/// primary path; this catches an edge the kernel or a backend thread lost.
const LEVEL_CHECK: Duration = Duration::from_millis(100);

/// Inputs whose level the loop re-reads: the ones whose loss would leave the unit unsafe.
const CHECKED_INPUTS: [Input; 2] = [Input::Estop, Input::WaterLow];

/// The control loop's state: the core and every end it talks to.
pub(super) struct ControlLoop {
    pub(super) core: Core,
    pub(super) inputs: Box<dyn InputPort>,
    pub(super) inputs_failed: bool,
    /// Writes the outputs; whether they can be written.
    pub(super) output_health: OutputHealth,
    /// Kernel timestamp of an E-stop edge whose reaction is not yet reported.
    pub(super) estop_edge_at: Option<Duration>,
    /// Board time at which the last step's turning-off writes were done, if it changed any.
    pub(super) safe_going_at: Option<Duration>,
    pub(super) clock: Arc<dyn Clock>,
    pub(super) outputs: SharedOutputs,
    pub(super) last: StepOutput,
    pub(super) ends: HandleEnds,
    pub(super) journal: super::journal::JournalSender,
    /// Saves the unit settings (on the journal).
    pub(super) settings_saver: settings::Saver,
    /// Outcome of each settings save: `Err` raises `settings_not_saved`.
    pub(super) settings_status: std_mpsc::Receiver<Result<(), String>>,
    pub(super) identify: std_mpsc::Sender<()>,
    pub(super) heartbeat: Heartbeat,
    /// Set by the watchdog when it drove the outputs safe behind this loop's back.
    pub(super) stalled: StallFlag,
    pub(super) notifier: Notifier,
    /// Board time of the last step (paces the simulated unit).
    pub(super) progress: Arc<AtomicU64>,
    /// Whether the last step found the unit quiet (see [`is_quiet`]); the simulated unit's
    /// pacer ticks slower then.
    pub(super) quiet: Arc<AtomicBool>,
    pub(super) telemetry: Arc<crate::telemetry::Telemetry>,
    pub(super) step: Duration,
    pub(super) speed: f64,
    pub(super) status: String,
    /// The last [`crate::telemetry::StoreHealth`] generation applied to the core.
    pub(super) store_seen: u64,
}

impl ControlLoop {
    pub(super) async fn run(
        mut self,
        mut edges: mpsc::UnboundedReceiver<InputEdge>,
        mut sensors: mpsc::UnboundedReceiver<SensorMessage>,
        mut stop: tokio::sync::watch::Receiver<Option<String>>,
    ) -> Result<(), RuntimeError> {
        let wall_step = self
            .step
            .mul_f64(1.0 / self.speed)
            .max(Duration::from_millis(1));
        // Never longer in wall time than QUIET_STEP (the level re-read period, far under the
        // late-step limit), also on a simulated unit slower than real time.
        let quiet_step = QUIET_STEP
            .mul_f64(1.0 / self.speed)
            .min(QUIET_STEP)
            .max(wall_step);
        let mut cadence = Cadence::new(wall_step, quiet_step);
        let mut last_watchdog = Instant::now();
        let ping = self.notifier.ping_interval();
        let mut last_counters = Instant::now();
        let mut last_status = Instant::now() - Duration::from_secs(10);
        let mut last_level_check = Instant::now();
        let mut last_step = Instant::now();
        loop {
            let mut command: Option<CommandRequest> = None;
            let quiet = cadence.quiet();
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
                    if !urgent && (quiet || last_step.elapsed() < wall_step) {
                        continue;
                    }
                }
                Some(req) = self.ends.commands.recv() => command = Some(req),
                Some(msg) = sensors.recv() => {
                    let mut round_done = self.take_sensor(msg);
                    while let Ok(msg) = sensors.try_recv() {
                        round_done |= self.take_sensor(msg);
                    }
                    // The core has each sample as it comes; whether it steps now is the
                    // cadence's call (quiet: once the round is in; busy: at the tick).
                    if !cadence.steps_on_readings(round_done, last_step.elapsed()) {
                        continue;
                    }
                }
                () = tokio::time::sleep_until(cadence.next()) => cadence.ticked(),
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
            let due = cadence.due(started);
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
            if out.identify && self.identify.send(()).is_err() {
                tracing::error!("self-test: the sensor thread is gone, no chip identities");
            }
            let events = self.core.drain_events();
            let dirty = self.core.take_dirty();
            if dirty.protocols {
                let list = self.core.protocols().to_vec();
                self.to_journal(JournalItem::Protocols(list.clone()));
                self.ends.protocols.send_replace(Arc::new(list));
            }
            if dirty.settings {
                let job = self.settings_saver.job(&self.core);
                if self.journal.send(JournalItem::Settings(job)).is_err() {
                    tracing::error!("unit settings not saved: the journal is gone");
                }
            }
            if !events.is_empty() || reply.is_some() {
                self.to_journal(JournalItem::Events { events, reply });
            }
            let snapshot = self.core.snapshot(now);
            let quiet = is_quiet(&snapshot);
            cadence.stepped(started, quiet);
            self.quiet.store(quiet, Ordering::Relaxed);
            if last_status.elapsed() >= Duration::from_secs(1) {
                last_status = Instant::now();
                self.update_status(&snapshot);
            }
            if last_counters.elapsed() >= Duration::from_secs(60) {
                last_counters = Instant::now();
                self.to_journal(JournalItem::Counters(snapshot.counters.clone()));
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
                .record_step(took, Instant::now() > due + wall_step);
        }
        let reason = stop
            .borrow()
            .clone()
            .unwrap_or_else(|| DEFAULT_STOP_REASON.to_string());
        self.shutdown(&reason).await;
        Ok(())
    }

    /// Hands an item to the journal; if that thread is gone, what the item carries
    /// is not recorded, and the log says so.
    fn to_journal(&self, item: JournalItem) {
        if self.journal.send(item).is_err() {
            tracing::error!("treatment log: NOT recorded: the journal is gone");
        }
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

    /// Hands a sensor message to the core; true when a quiet loop should step on it (a
    /// polling round is complete, or a self-test identity came in).
    fn take_sensor(&mut self, msg: SensorMessage) -> bool {
        match msg {
            SensorMessage::Sample(s) => {
                self.core.on_sensor(s);
                false
            }
            SensorMessage::Identity(s, r) => {
                self.core.on_identity(s, r);
                true
            }
            SensorMessage::RoundDone => true,
        }
    }

    /// Runs a core call; a panic drives every output safe and ends the loop.
    fn guarded<T>(&mut self, f: impl FnOnce(&mut Core) -> T) -> Result<T, RuntimeError> {
        match std::panic::catch_unwind(AssertUnwindSafe(|| f(&mut self.core))) {
            Ok(v) => Ok(v),
            Err(panic) => {
                let mut port = self.outputs.lock().unwrap_or_else(|p| p.into_inner());
                if let Err(e) = port.all_safe() {
                    tracing::error!("driving every output safe after a core panic: {e}");
                }
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
                outputs: OutputLevels::all_off(),
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
            .any(|o| o.is_actuator() && self.last.outputs[*o])
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
        self.to_journal(JournalItem::Events {
            events,
            reply: None,
        });
        self.to_journal(JournalItem::Counters(snapshot.counters.clone()));
        let (tx, rx) = oneshot::channel();
        self.to_journal(JournalItem::Flush(tx));
        if tokio::time::timeout(Duration::from_secs(5), rx)
            .await
            .is_err()
        {
            tracing::error!("treatment log: the final flush did not finish within 5 s");
        }
        self.ends.snapshot.send_replace(Arc::new(snapshot));
        // Refuse the commands still queued.
        self.ends.commands.close();
        while let Ok((_, _, tx)) = self.ends.commands.try_recv() {
            let _ = tx.send(Err(crate::api::CommandError::ShuttingDown));
        }
        // Dropping the journal sender ends the journal after it drained.
        let (dead_tx, _) = tokio::sync::mpsc::unbounded_channel();
        drop(std::mem::replace(&mut self.journal, dead_tx));
    }
}
