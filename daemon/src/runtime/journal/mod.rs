//! The journal: persists the core's events (flushing the durable ones) and only then
//! publishes them and answers the command that caused them. The control loop never waits
//! for the disk.
//!
//! It is a task on the daemon's main runtime that hands each batch of work to the runtime's
//! blocking pool, one batch at a time and in order: the disk work runs on a thread that
//! exists only while there is work (an idle unit has no journal: ARCHITECTURE.md,
//! "Threads"), and the task itself only waits on its channel.
//!
//! A write that fails (disk full, I/O error) is never acknowledged as success. Treatment goes
//! on — cooling is the therapy, and a full disk must not withhold it — but:
//!
//! * the failure is logged at error and counted, [`StoreHealth`] turns to failing, and the
//!   control loop raises the latched `log_write_failed` alarm before anything else is said;
//! * each event that could not be written is preceded by an [`Event::NotRecorded`] (the D-Bus
//!   `NotRecorded` signal), so `SessionStarted`/`SessionEnded` of such a session are known to
//!   be unrecorded even when the session started on the laser with no one to answer;
//! * the command that caused it is answered [`CommandError::NotRecorded`], which says what was
//!   done (e.g. the session that started and is cooling) and that it is not recorded;
//! * the store is retried (reopened, then proved by a flushed write) every [`RETRY`] while it
//!   fails, and before the next write; once a write works the alarm's condition ends, and the
//!   alarm goes when acknowledged. No restart is needed.
//!
//! [`StoreHealth`]: crate::telemetry::StoreHealth

use crate::api::{CommandError, Counters, Event, Reply};
use crate::protocol::Protocol;
use crate::store::{LogStore, StoreError};
use crate::telemetry::Telemetry;
use std::sync::atomic::Ordering;
use std::sync::{mpsc as std_mpsc, Arc};
use std::time::{Duration, Instant};
use tokio::runtime::Handle as RuntimeHandle;
use tokio::sync::{broadcast, mpsc, oneshot};

/// How often a failing store is retried while nothing is written, and at most how often
/// before a write.
pub const RETRY: Duration = Duration::from_secs(2);

/// How long the journal waits for the control loop to raise the alarm of a failed write
/// before it answers anyone (the loop steps every few ms; a stalled loop costs this once).
const ALARM_WAIT: Duration = Duration::from_secs(1);

/// A command's answer, sent once the events it caused are on disk.
pub type PendingReply = (
    oneshot::Sender<Result<Reply, CommandError>>,
    Result<Reply, CommandError>,
);

/// Saves the unit settings; `Err` says why they are not saved.
pub type SettingsJob = Box<dyn FnOnce() -> Result<(), String> + Send>;

/// Work for the journal.
pub enum JournalItem {
    /// Events of one control step, and the answer to the command that step applied.
    Events {
        /// In order.
        events: Vec<Event>,
        /// Answered after the events are persisted.
        reply: Option<PendingReply>,
    },
    /// Save counters.
    Counters(Counters),
    /// Save protocols.
    Protocols(Vec<Protocol>),
    /// Save the unit settings: the job writes the settings file (and the log's copy). Its
    /// error turns the answer of the command of the same step into
    /// [`CommandError::NotSaved`].
    Settings(SettingsJob),
    /// Flush and acknowledge (shutdown).
    Flush(oneshot::Sender<()>),
}

/// The sending side, held by the control loop.
pub type JournalSender = mpsc::UnboundedSender<JournalItem>;

/// Closed (its `recv` returns) once the journal has handled everything and ended, or was
/// dropped with its runtime.
pub type JournalDone = std_mpsc::Receiver<()>;

/// Starts the journal on `runtime`; it ends when every sender is dropped, after handling
/// what they sent. A failing store is retried every `retry` ([`RETRY`] in the daemon).
pub fn spawn(
    runtime: &RuntimeHandle,
    store: Option<Arc<dyn LogStore>>,
    events: broadcast::Sender<Event>,
    telemetry: Arc<Telemetry>,
    rx: mpsc::UnboundedReceiver<JournalItem>,
    retry: Duration,
) -> JournalDone {
    let (done_tx, done) = std_mpsc::channel::<()>();
    let journal = Journal {
        store,
        events,
        telemetry,
        retry,
        last_retry: None,
        settings_failed: None,
    };
    runtime.spawn(async move {
        // Dropped on every way out, which is what the waiter sees.
        let _done = done_tx;
        drive(journal, rx).await;
    });
    done
}

/// Waits for work (or, while the store fails, for the next retry) and runs it on the
/// blocking pool, everything queued at that moment in one go, in order.
async fn drive(mut journal: Journal, mut rx: mpsc::UnboundedReceiver<JournalItem>) {
    loop {
        let first = if journal.telemetry.store_health.failing() {
            match tokio::time::timeout(journal.retry, rx.recv()).await {
                Ok(Some(item)) => Some(item),
                Ok(None) => return,
                // Nothing to write: the idle retry.
                Err(_) => None,
            }
        } else {
            match rx.recv().await {
                Some(item) => Some(item),
                None => return,
            }
        };
        let mut batch: Vec<JournalItem> = first.into_iter().collect();
        while let Ok(item) = rx.try_recv() {
            batch.push(item);
        }
        let work = tokio::task::spawn_blocking(move || {
            if batch.is_empty() {
                journal.retry(true);
            }
            for item in batch {
                journal.handle(item);
            }
            journal
        });
        journal = match work.await {
            Ok(journal) => journal,
            Err(e) => {
                // What the batch carried is lost; the control loop says so at its next
                // send (the channel is closed once this task ends).
                tracing::error!("treatment log: the journal stopped: {e}");
                return;
            }
        };
    }
}

/// A write that failed: what was not recorded, and why.
struct Failure {
    what: String,
    session_id: Option<u64>,
    reason: String,
}

struct Journal {
    store: Option<Arc<dyn LogStore>>,
    events: broadcast::Sender<Event>,
    telemetry: Arc<Telemetry>,
    /// How often a failing store is retried.
    retry: Duration,
    /// When the failing store was last retried.
    last_retry: Option<Instant>,
    /// A settings save that failed, for the answer of the command that caused it (the
    /// control loop sends a step's `Settings` before its `Events`).
    settings_failed: Option<String>,
}

impl Journal {
    fn handle(&mut self, item: JournalItem) {
        match item {
            JournalItem::Events { events, reply } => {
                let not_saved = self.settings_failed.take();
                let mut failure = None;
                for ev in events {
                    if let Err(f) = self.write(&ev) {
                        // Before the event itself: whoever hears of it knows it is unrecorded.
                        self.publish(Event::NotRecorded {
                            unix_ms: super::unix_ms_now(),
                            what: f.what.clone(),
                            session_id: f.session_id,
                            reason: f.reason.clone(),
                        });
                        failure.get_or_insert(f);
                    }
                    log_event(&ev);
                    self.publish(ev);
                }
                if let Some((tx, result)) = reply {
                    let result = match (result, failure, not_saved) {
                        (Ok(reply), Some(f), _) => Err(not_recorded(&reply, f)),
                        (Ok(_), None, Some(e)) => Err(CommandError::NotSaved(e)),
                        (result, _, _) => result,
                    };
                    // The caller may have gone away: nothing left to tell.
                    let _ = tx.send(result);
                }
            }
            JournalItem::Counters(c) => {
                self.save("service counters", |s| s.save_counters(&c));
            }
            JournalItem::Protocols(p) => {
                self.save("protocols", |s| s.save_protocols(&p));
            }
            JournalItem::Settings(job) => {
                if let Err(e) = job() {
                    tracing::error!("unit settings NOT saved: {e}");
                    self.settings_failed = Some(e);
                }
            }
            JournalItem::Flush(done) => {
                self.save("flush", |s| s.flush());
                // The shutdown path may have stopped waiting.
                let _ = done.send(());
            }
        }
    }

    /// No subscriber is fine: nobody is listening.
    fn publish(&self, ev: Event) {
        let _ = self.events.send(ev);
    }

    /// Records one event; a durable one that worked ends a failure.
    fn write(&mut self, ev: &Event) -> Result<(), Failure> {
        let Some(store) = self.store.clone() else {
            return Ok(());
        };
        self.retry(false);
        match store.record(ev) {
            Ok(()) => {
                if ev.is_durable() {
                    self.worked();
                }
                Ok(())
            }
            Err(e) => {
                let (what, session_id) = describe(ev);
                let reason = e.to_string();
                self.failed(&what, &reason);
                Err(Failure {
                    what,
                    session_id,
                    reason,
                })
            }
        }
    }

    /// Saves counters, protocols or settings (each flushed).
    fn save(&mut self, what: &str, f: impl FnOnce(&dyn LogStore) -> Result<(), StoreError>) {
        let Some(store) = self.store.clone() else {
            return;
        };
        self.retry(false);
        match f(&*store) {
            Ok(()) => self.worked(),
            Err(e) => self.failed(what, &e.to_string()),
        }
    }

    /// While the store fails, tries to bring it back: at most every `retry` before a write,
    /// and every `retry` when idle (`idle`).
    fn retry(&mut self, idle: bool) {
        let Some(store) = self.store.clone() else {
            return;
        };
        if !self.telemetry.store_health.failing() {
            return;
        }
        if !idle && self.last_retry.is_some_and(|t| t.elapsed() < self.retry) {
            return;
        }
        self.last_retry = Some(Instant::now());
        match store.recover() {
            Ok(()) => {
                tracing::warn!("treatment log writable again");
                self.worked();
            }
            Err(e) => tracing::warn!("treatment log still not writable: {e}"),
        }
    }

    fn worked(&self) {
        if let Some(generation) = self.telemetry.store_health.set_working() {
            self.telemetry
                .store_health
                .wait_applied(generation, ALARM_WAIT);
        }
    }

    /// A failed write: counted, logged at error, and the alarm raised before anyone is told.
    fn failed(&self, what: &str, e: &str) {
        self.telemetry
            .store_write_errors
            .fetch_add(1, Ordering::Relaxed);
        tracing::error!("treatment log: NOT recorded: {what}: {e}");
        let health = &self.telemetry.store_health;
        if let Some(generation) = health.set_failing(&format!("{what}: {e}")) {
            if !health.wait_applied(generation, ALARM_WAIT) {
                tracing::error!(
                    "the control loop did not raise the log_write_failed alarm in time"
                );
            }
        }
    }
}

/// What an event is, for the operator, and its session.
fn describe(ev: &Event) -> (String, Option<u64>) {
    match ev {
        Event::SessionStarted(s) => (format!("session {} started", s.id), Some(s.id)),
        Event::SessionEnded(r) => (
            format!("session {} ended ({})", r.id(), r.outcome),
            Some(r.id()),
        ),
        Event::Sample(s) => (
            format!("curve of session {}", s.session_id),
            Some(s.session_id),
        ),
        Event::StateChanged { from, to, .. } => (format!("state {from} -> {to}"), None),
        Event::AlarmRaised(a) => (format!("alarm {} raised", a.kind), None),
        Event::AlarmConditionCleared { kind, .. } => {
            (format!("alarm {kind} condition cleared"), None)
        }
        Event::AlarmAcknowledged { kind, .. } => (format!("alarm {kind} acknowledged"), None),
        Event::AlarmRemoved { kind, .. } => (format!("alarm {kind} cleared"), None),
        Event::ConfigChanged { what, .. } => (format!("change: {what}"), None),
        Event::SelfTestFinished { passed, .. } => (
            format!("self-test {}", if *passed { "passed" } else { "failed" }),
            None,
        ),
        Event::NotRecorded { what, .. } => (what.clone(), None),
    }
}

/// The answer to a command that was carried out but not recorded.
fn not_recorded(reply: &Reply, f: Failure) -> CommandError {
    let (done, session_id) = match reply {
        Reply::SessionStarted(id) => (format!("session {id} started and is cooling"), Some(*id)),
        Reply::Accepted => ("done".to_string(), f.session_id),
    };
    CommandError::NotRecorded {
        done,
        session_id,
        reason: format!("{}: {}", f.what, f.reason),
    }
}

/// Mirrors the events that matter to the system journal, with priorities.
fn log_event(ev: &Event) {
    match ev {
        Event::StateChanged {
            from, to, reason, ..
        } => {
            tracing::info!(target: "coldspray::state", "state {from} -> {to}: {reason}");
        }
        Event::AlarmRaised(a) => match a.priority {
            crate::model::alarm::Priority::High => {
                tracing::error!(target: "coldspray::alarm", "ALARM {} [{}]: {}", a.kind, a.priority, a.message);
            }
            _ => {
                tracing::warn!(target: "coldspray::alarm", "alarm {} [{}]: {}", a.kind, a.priority, a.message)
            }
        },
        Event::AlarmAcknowledged { kind, .. } => {
            tracing::info!(target: "coldspray::alarm", "alarm {kind} acknowledged");
        }
        Event::AlarmRemoved { kind, .. } => {
            tracing::info!(target: "coldspray::alarm", "alarm {kind} cleared");
        }
        Event::SessionStarted(s) => tracing::info!(
            target: "coldspray::session",
            "session {} started: protocol {}, {}, laser->spray {}{}",
            s.id,
            s.protocol,
            s.cause.name(),
            s.laser_to_spray_ms.map_or("n/a".to_string(), |d| format!("{d:.1} ms")),
            if s.late { " (LATE)" } else { "" }
        ),
        Event::SessionEnded(r) => tracing::info!(
            target: "coldspray::session",
            "session {} ended: {} after {:.1} s (peak skin {}, min skin {})",
            r.start.id,
            r.outcome,
            r.duration().as_secs_f64(),
            r.peak_skin_c.map_or("n/a".into(), |v| format!("{v:.1} °C")),
            r.min_skin_c.map_or("n/a".into(), |v| format!("{v:.1} °C")),
        ),
        Event::SelfTestFinished { passed, report, .. } => {
            if *passed {
                tracing::info!(target: "coldspray::selftest", "self-test passed: {}", report.join("; "));
            } else {
                tracing::error!(target: "coldspray::selftest", "self-test FAILED: {}", report.join("; "));
            }
        }
        Event::ConfigChanged { what, by_uid, .. } => tracing::info!(
            target: "coldspray::config",
            "{what} (by {})",
            crate::unit_settings::uid_text(*by_uid)
        ),
        Event::NotRecorded { what, reason, .. } => {
            tracing::error!(target: "coldspray::log", "NOT recorded: {what}: {reason}");
        }
        Event::AlarmConditionCleared { .. } | Event::Sample(_) => {}
    }
}

#[cfg(test)]
mod tests;
