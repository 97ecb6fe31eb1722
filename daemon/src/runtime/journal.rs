//! The journal thread: persists the core's events (flushing the durable ones) and only then
//! publishes them and answers the command that caused them. The control loop never waits
//! for the disk.

use crate::api::{CommandError, Counters, Event, Reply};
use crate::protocol::Protocol;
use crate::telemetry::Telemetry;
use std::sync::atomic::Ordering;
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use tokio::sync::{broadcast, oneshot};

/// Where the journal writes. Implemented by the log store; absent in degraded mode.
pub trait Persistence: Send + Sync {
    /// Records one event (durable ones flushed before returning).
    fn record(&self, event: &Event) -> Result<(), String>;
    /// Saves the service counters.
    fn save_counters(&self, counters: &Counters) -> Result<(), String>;
    /// Saves the protocol list.
    fn save_protocols(&self, protocols: &[Protocol]) -> Result<(), String>;
    /// Saves setpoint and calibration offsets.
    fn save_settings(&self, setpoint_c: f64, calibration: [f64; 5]) -> Result<(), String>;
    /// Flushes everything batched.
    fn flush(&self) -> Result<(), String>;
}

/// A command's answer, sent once the events it caused are on disk.
pub type PendingReply = (
    oneshot::Sender<Result<Reply, CommandError>>,
    Result<Reply, CommandError>,
);

/// Saves the unit settings; `Err` says why they are not saved.
pub type SettingsJob = Box<dyn FnOnce() -> Result<(), String> + Send>;

/// Work for the journal thread.
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

/// Starts the thread; it ends when every sender is dropped.
pub fn spawn(
    store: Option<Arc<dyn Persistence>>,
    events: broadcast::Sender<Event>,
    telemetry: Arc<Telemetry>,
    rx: mpsc::Receiver<JournalItem>,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("coldspray-journal".into())
        .spawn(move || {
            let fail = |what: &str, e: String| {
                telemetry.store_write_errors.fetch_add(1, Ordering::Relaxed);
                tracing::error!("treatment log: {what}: {e}");
            };
            // A settings save that failed, for the answer of the command that caused it (the
            // control loop sends a step's `Settings` before its `Events`).
            let mut settings_failed: Option<String> = None;
            for item in rx {
                match item {
                    JournalItem::Events { events: evs, reply } => {
                        let not_saved = settings_failed.take();
                        for ev in evs {
                            if let Some(store) = &store {
                                if let Err(e) = store.record(&ev) {
                                    fail("write", e);
                                }
                            }
                            log_event(&ev);
                            // No subscriber is fine.
                            let _ = events.send(ev);
                        }
                        if let Some((tx, result)) = reply {
                            let result = match (result, not_saved) {
                                (Ok(_), Some(e)) => Err(CommandError::NotSaved(e)),
                                (r, _) => r,
                            };
                            let _ = tx.send(result);
                        }
                    }
                    JournalItem::Counters(c) => {
                        if let Some(Err(e)) = store.as_ref().map(|s| s.save_counters(&c)) {
                            fail("counters", e);
                        }
                    }
                    JournalItem::Protocols(p) => {
                        if let Some(Err(e)) = store.as_ref().map(|s| s.save_protocols(&p)) {
                            fail("protocols", e);
                        }
                    }
                    JournalItem::Settings(job) => {
                        if let Err(e) = job() {
                            tracing::error!("unit settings NOT saved: {e}");
                            settings_failed = Some(e);
                        }
                    }
                    JournalItem::Flush(done) => {
                        if let Some(Err(e)) = store.as_ref().map(|s| s.flush()) {
                            fail("flush", e);
                        }
                        let _ = done.send(());
                    }
                }
            }
        })
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
            crate::alarm::Priority::High => {
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
        Event::AlarmConditionCleared { .. } | Event::Sample(_) => {}
    }
}
