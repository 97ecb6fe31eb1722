//! Counters and histograms fed by the event stream ([`ControlHandle::events`]) in a task of
//! their own. The control loop only broadcasts; when this task falls behind, the broadcast
//! drops events for it (counted in `coldspray_events_lagged_total`) instead of waiting.

use super::snapshot::alarm_kinds;
use super::MetricsError;
use crate::alarm::Priority;
use crate::api::Event;
use crate::handle::{ControlHandle, ShutdownSignal};
use crate::session::{Outcome, StartCause};
use coldspray_hal::Sensor;
use prometheus::{Gauge, Histogram, HistogramOpts, IntCounter, IntCounterVec, Opts, Registry};
use std::sync::atomic::Ordering;
use tokio::sync::broadcast::{self, error::RecvError};

/// Laser end → spray start buckets, seconds: milliseconds matter, 10 s is "late".
const DELAY_BUCKETS_S: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];
/// Session duration buckets, seconds (spray time is capped at 120 s).
const DURATION_BUCKETS_S: [f64; 10] =
    [5.0, 10.0, 20.0, 30.0, 45.0, 60.0, 90.0, 120.0, 180.0, 300.0];
/// Per-session minimum skin temperature buckets, °C (floor default 10 °C).
const SKIN_MIN_BUCKETS_C: [f64; 10] = [5.0, 8.0, 10.0, 12.0, 15.0, 18.0, 20.0, 25.0, 30.0, 35.0];

/// The event-fed metrics, registered in their own [`Registry`].
pub(crate) struct EventMetrics {
    pub(crate) registry: Registry,
    started: IntCounterVec,
    ended: IntCounterVec,
    completed: IntCounter,
    aborted: IntCounter,
    late: IntCounter,
    delay: Histogram,
    duration: Histogram,
    skin_min: Histogram,
    last_skin_min: Gauge,
    alarms_raised: IntCounterVec,
    interlock_trips: IntCounterVec,
}

fn register<C: prometheus::core::Collector + Clone + 'static>(
    registry: &Registry,
    c: C,
) -> Result<C, MetricsError> {
    registry.register(Box::new(c.clone()))?;
    Ok(c)
}

impl EventMetrics {
    pub(crate) fn new() -> Result<EventMetrics, MetricsError> {
        let r = Registry::new();
        let started = register(
            &r,
            IntCounterVec::new(
                Opts::new(
                    "coldspray_sessions_started_total",
                    "Sessions started, by cause.",
                ),
                &["cause"],
            )?,
        )?;
        let ended = register(
            &r,
            IntCounterVec::new(
                Opts::new(
                    "coldspray_sessions_ended_total",
                    "Sessions ended, by outcome.",
                ),
                &["outcome"],
            )?,
        )?;
        let completed = register(
            &r,
            IntCounter::new(
                "coldspray_sessions_completed_total",
                "Sessions that did their job (target reached, band held or spray time completed).",
            )?,
        )?;
        let aborted = register(
            &r,
            IntCounter::new(
                "coldspray_sessions_aborted_total",
                "Sessions cut short by an interlock, a shutdown or a crash (operator stops excluded).",
            )?,
        )?;
        let late = register(
            &r,
            IntCounter::new(
                "coldspray_sessions_late_total",
                "Sessions that started later than the late threshold after the laser stopped.",
            )?,
        )?;
        let delay = register(
            &r,
            Histogram::with_opts(
                HistogramOpts::new(
                    "coldspray_laser_to_spray_delay_seconds",
                    "Delay from the end of laser emission to spray start, per session after a laser pass.",
                )
                .buckets(DELAY_BUCKETS_S.to_vec()),
            )?,
        )?;
        let duration = register(
            &r,
            Histogram::with_opts(
                HistogramOpts::new(
                    "coldspray_session_duration_seconds",
                    "Duration of ended sessions, start to end.",
                )
                .buckets(DURATION_BUCKETS_S.to_vec()),
            )?,
        )?;
        let skin_min = register(
            &r,
            Histogram::with_opts(
                HistogramOpts::new(
                    "coldspray_session_skin_min_celsius",
                    "Coldest skin temperature reached per ended session with a skin sensor.",
                )
                .buckets(SKIN_MIN_BUCKETS_C.to_vec()),
            )?,
        )?;
        let last_skin_min = register(
            &r,
            Gauge::new(
                "coldspray_last_session_skin_min_celsius",
                "Coldest skin temperature reached in the last ended session with a skin reading (NaN before any).",
            )?,
        )?;
        last_skin_min.set(f64::NAN);
        let alarms_raised = register(
            &r,
            IntCounterVec::new(
                Opts::new(
                    "coldspray_alarms_raised_total",
                    "Alarms raised, by priority and kind.",
                ),
                &["priority", "kind"],
            )?,
        )?;
        let interlock_trips = register(
            &r,
            IntCounterVec::new(
                Opts::new(
                    "coldspray_interlock_trips_total",
                    "Interlock trips, by cause (alarm kind) and sensor (empty unless a sensor alarm).",
                ),
                &["cause", "sensor"],
            )?,
        )?;

        // Pre-create every series at 0 so rate() and absent-series alerts work from the start.
        for cause in [
            StartCause::Command,
            StartCause::Trigger,
            StartCause::AutoStart,
        ] {
            started.with_label_values(&[cause.name()]);
        }
        for outcome in Outcome::ALL {
            ended.with_label_values(&[outcome.name()]);
        }
        for kind in alarm_kinds() {
            alarms_raised.with_label_values(&[kind.priority().name(), kind.code()]);
            if kind.is_interlock() {
                match kind.sensor() {
                    Some(_) => {
                        for s in Sensor::ALL {
                            interlock_trips.with_label_values(&[kind.code(), s.name()]);
                        }
                    }
                    None => {
                        interlock_trips.with_label_values(&[kind.code(), ""]);
                    }
                }
            }
        }
        Ok(EventMetrics {
            registry: r,
            started,
            ended,
            completed,
            aborted,
            late,
            delay,
            duration,
            skin_min,
            last_skin_min,
            alarms_raised,
            interlock_trips,
        })
    }

    /// Updates the metrics for one event.
    pub(crate) fn observe(&self, event: &Event) {
        match event {
            Event::SessionStarted(start) => {
                self.started.with_label_values(&[start.cause.name()]).inc();
                if start.late {
                    self.late.inc();
                }
                if let Some(ms) = start.laser_to_spray_ms {
                    self.delay.observe(ms / 1000.0);
                }
            }
            Event::SessionEnded(record) => {
                self.ended.with_label_values(&[record.outcome.name()]).inc();
                if record.outcome.is_completed() {
                    self.completed.inc();
                }
                if matches!(
                    record.outcome,
                    Outcome::Interlock | Outcome::Shutdown | Outcome::Aborted
                ) {
                    self.aborted.inc();
                }
                self.duration.observe(record.duration().as_secs_f64());
                if let Some(min) = record.min_skin_c {
                    self.skin_min.observe(min);
                    self.last_skin_min.set(min);
                }
            }
            Event::AlarmRaised(alarm) => {
                let priority: Priority = alarm.priority;
                self.alarms_raised
                    .with_label_values(&[priority.name(), alarm.kind.code()])
                    .inc();
                if alarm.kind.is_interlock() {
                    let sensor = alarm.kind.sensor().map(|s| s.name()).unwrap_or("");
                    self.interlock_trips
                        .with_label_values(&[alarm.kind.code(), sensor])
                        .inc();
                }
            }
            _ => {}
        }
    }
}

/// Feeds `metrics` from `events` (subscribed by the caller, so no event published after
/// [`super::start`] returns is missed) until shutdown or until the loop goes away.
pub(crate) async fn feed(
    handle: ControlHandle,
    mut events: broadcast::Receiver<Event>,
    metrics: std::sync::Arc<EventMetrics>,
    mut shutdown: ShutdownSignal,
) {
    loop {
        tokio::select! {
            changed = shutdown.changed() => {
                if changed.is_err() || *shutdown.borrow() {
                    return;
                }
            }
            received = events.recv() => match received {
                Ok(event) => metrics.observe(&event),
                Err(RecvError::Lagged(n)) => {
                    handle.telemetry.events_lagged.fetch_add(n, Ordering::Relaxed);
                    tracing::warn!(missed = n, "metrics fell behind the event stream");
                }
                Err(RecvError::Closed) => return,
            },
        }
    }
}
