//! Counters and histograms fed by the event stream ([`ControlHandle::events`]) in a task of
//! their own. The control loop only broadcasts; when this task falls behind, the broadcast
//! drops events for it (counted in `coldspray_events_lagged_total`) instead of waiting.

use super::family::Family;
use super::snapshot::sensor_label;
use super::MetricsError;
use crate::api::Event;
use crate::handle::{ControlHandle, ShutdownSignal};
use crate::model::alarm::{AlarmKind, Priority};
use crate::model::session::{Outcome, StartCause};
use coldspray_hal::Sensor;
use prometheus::proto::MetricFamily;
use prometheus::{Histogram, HistogramOpts, IntCounter, IntCounterVec, Opts, Registry};
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::broadcast::{self, error::RecvError};

/// Laser end → spray start buckets, seconds. An auto-start takes milliseconds (0.5, 1, 2, 5 …
/// 50 ms resolve it); a manual start takes seconds, and the default late threshold
/// (`session.late_after_s`, 10 s) sits among bounds 1–2.5 s apart, so a quantile of late
/// delays lands within a few seconds of the truth (issue 14, defect 3).
pub(crate) const DELAY_BUCKETS_S: [f64; 26] = [
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 3.0, 5.0, 7.5, 9.0,
    10.0, 11.0, 12.5, 15.0, 17.5, 20.0, 25.0, 30.0, 45.0, 60.0,
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
    /// `f64` bits of the last ended session's coldest skin reading; NaN before any (the
    /// series is then absent, not NaN).
    last_skin_min: AtomicU64,
    alarms_raised: IntCounterVec,
    interlock_trips: IntCounterVec,
}

/// Makes metrics and registers them in one registry.
struct Registrar(Registry);

impl Registrar {
    fn register<C: prometheus::core::Collector + Clone + 'static>(
        &self,
        c: C,
    ) -> Result<C, MetricsError> {
        self.0.register(Box::new(c.clone()))?;
        Ok(c)
    }

    fn counter(&self, name: &str, help: &str) -> Result<IntCounter, MetricsError> {
        self.register(IntCounter::new(name, help)?)
    }

    fn counter_vec(
        &self,
        name: &str,
        help: &str,
        labels: &[&str],
    ) -> Result<IntCounterVec, MetricsError> {
        self.register(IntCounterVec::new(Opts::new(name, help), labels)?)
    }

    fn histogram(
        &self,
        name: &str,
        help: &str,
        buckets: &[f64],
    ) -> Result<Histogram, MetricsError> {
        let opts = HistogramOpts::new(name, help).buckets(buckets.to_vec());
        self.register(Histogram::with_opts(opts)?)
    }
}

impl EventMetrics {
    pub(crate) fn new() -> Result<EventMetrics, MetricsError> {
        let r = Registrar(Registry::new());
        let started = r.counter_vec(
            "coldspray_sessions_started_total",
            "Sessions started, by cause.",
            &["cause"],
        )?;
        let ended = r.counter_vec(
            "coldspray_sessions_ended_total",
            "Sessions ended, by outcome.",
            &["outcome"],
        )?;
        let completed = r.counter(
            "coldspray_sessions_completed_total",
            "Sessions that did their job (target reached, band held or spray time completed).",
        )?;
        let aborted = r.counter(
            "coldspray_sessions_aborted_total",
            "Sessions cut short by an interlock, a shutdown or a crash (operator stops excluded).",
        )?;
        let late = r.counter(
            "coldspray_sessions_late_total",
            "Sessions that started later than the late threshold after the laser stopped.",
        )?;
        let delay = r.histogram(
            "coldspray_laser_to_spray_delay_seconds",
            "Delay from the end of laser emission to spray start, per session after a laser pass.",
            &DELAY_BUCKETS_S,
        )?;
        let duration = r.histogram(
            "coldspray_session_duration_seconds",
            "Duration of ended sessions, start to end.",
            &DURATION_BUCKETS_S,
        )?;
        let skin_min = r.histogram(
            "coldspray_session_skin_min_celsius",
            "Coldest skin temperature reached per ended session with a skin sensor.",
            &SKIN_MIN_BUCKETS_C,
        )?;
        let last_skin_min = AtomicU64::new(f64::NAN.to_bits());
        let alarms_raised = r.counter_vec(
            "coldspray_alarms_raised_total",
            "Alarms raised, by priority, kind and sensor (empty unless a sensor alarm).",
            &["priority", "kind", "sensor"],
        )?;
        let interlock_trips = r.counter_vec(
            "coldspray_interlock_trips_total",
            "Interlock trips, by cause (alarm kind) and sensor (empty unless a sensor alarm).",
            &["cause", "sensor"],
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
        for kind in AlarmKind::every(&Sensor::ALL) {
            let sensor = sensor_label(kind);
            alarms_raised.with_label_values(&[kind.priority().name(), kind.code(), sensor]);
            if kind.is_interlock() {
                interlock_trips.with_label_values(&[kind.code(), sensor]);
            }
        }
        Ok(EventMetrics {
            registry: r.0,
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
                    self.last_skin_min.store(min.to_bits(), Ordering::Relaxed);
                }
            }
            Event::AlarmRaised(alarm) => {
                let priority: Priority = alarm.priority;
                let sensor = sensor_label(alarm.kind);
                self.alarms_raised
                    .with_label_values(&[priority.name(), alarm.kind.code(), sensor])
                    .inc();
                if alarm.kind.is_interlock() {
                    self.interlock_trips
                        .with_label_values(&[alarm.kind.code(), sensor])
                        .inc();
                }
            }
            _ => {}
        }
    }
}

impl EventMetrics {
    /// Appends the event-fed families kept outside the registry: those absent until their
    /// first event (the registry cannot leave a gauge out).
    pub(crate) fn collect(&self, out: &mut Vec<MetricFamily>) {
        let last = f64::from_bits(self.last_skin_min.load(Ordering::Relaxed));
        Family::gauge(
            "coldspray_last_session_skin_min_celsius",
            "Coldest skin temperature reached in the last ended session with a skin reading; \
             absent before any.",
        )
        .maybe(&[], (!last.is_nan()).then_some(last))
        .into(out);
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
