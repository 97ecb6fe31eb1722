//! Lock-free counters the daemon's parts update and the metrics exporter reads.
//!
//! Writers never block: the control loop only does relaxed atomic adds here.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Duration;

/// Upper bounds (seconds) of the control-step duration histogram buckets.
pub const STEP_BUCKETS_S: [f64; 10] = [
    0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01,
];

/// Counters shared by the whole daemon.
#[derive(Debug, Default)]
pub struct Telemetry {
    /// Control steps run.
    pub steps: AtomicU64,
    /// Steps that finished after their deadline.
    pub overruns: AtomicU64,
    /// Sum of step durations, nanoseconds.
    pub step_ns_sum: AtomicU64,
    /// Step-duration histogram counts (cumulative buckets are built by the exporter); the last
    /// slot counts steps slower than every bound.
    pub step_buckets: [AtomicU64; STEP_BUCKETS_S.len() + 1],
    /// Treatment-log write errors.
    pub store_write_errors: AtomicU64,
    /// Events dropped because a consumer lagged.
    pub events_lagged: AtomicU64,
    /// Whether the treatment log takes writes.
    pub store_health: StoreHealth,
    /// `/metrics` is being served (the `metrics` feature of `Unit.Features`).
    pub metrics_serving: std::sync::atomic::AtomicBool,
    /// D-Bus calls per method: (calls, errors).
    dbus: Mutex<BTreeMap<String, (u64, u64)>>,
}

impl Telemetry {
    /// Records one control step.
    pub fn record_step(&self, took: Duration, overran: bool) {
        self.steps.fetch_add(1, Ordering::Relaxed);
        if overran {
            self.overruns.fetch_add(1, Ordering::Relaxed);
        }
        let ns = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        self.step_ns_sum.fetch_add(ns, Ordering::Relaxed);
        let secs = took.as_secs_f64();
        let slot = STEP_BUCKETS_S
            .iter()
            .position(|bound| secs <= *bound)
            .unwrap_or(STEP_BUCKETS_S.len());
        self.step_buckets[slot].fetch_add(1, Ordering::Relaxed);
    }

    /// Records one D-Bus method call and whether it returned an error.
    pub fn record_dbus_call(&self, method: &str, error: bool) {
        if let Ok(mut map) = self.dbus.lock() {
            let entry = map.entry(method.to_string()).or_default();
            entry.0 += 1;
            if error {
                entry.1 += 1;
            }
        }
    }

    /// Counts `method` at 0 calls and 0 errors if it has not been called yet.
    pub fn register_dbus_method(&self, method: &str) {
        if let Ok(mut map) = self.dbus.lock() {
            map.entry(method.to_string()).or_default();
        }
    }

    /// D-Bus calls per method: (calls, errors).
    pub fn dbus_calls(&self) -> BTreeMap<String, (u64, u64)> {
        self.dbus.lock().map(|m| m.clone()).unwrap_or_default()
    }
}

/// Whether the treatment log takes writes: set by the journal, which finds out;
/// applied by the control loop, which raises or clears the `log_write_failed` alarm; read by
/// the metrics. The loop checks one atomic per step and locks only when something changed.
#[derive(Debug, Default)]
pub struct StoreHealth {
    /// Bumped on every change of `state.failing`.
    generation: AtomicU64,
    state: Mutex<HealthState>,
    applied: Condvar,
}

#[derive(Debug, Default)]
struct HealthState {
    /// Why the last durable write failed; `None` while writes work.
    failing: Option<String>,
    /// The last generation the control loop applied.
    applied: u64,
}

impl StoreHealth {
    fn state(&self) -> MutexGuard<'_, HealthState> {
        // Plain data: a panic elsewhere leaves it usable.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether the last durable write (or flush) failed.
    pub fn failing(&self) -> bool {
        self.state().failing.is_some()
    }

    /// A write failed. Returns the new generation when this is news (writes worked before).
    pub fn set_failing(&self, reason: &str) -> Option<u64> {
        let mut st = self.state();
        let news = st.failing.is_none();
        st.failing = Some(reason.to_string());
        news.then(|| self.generation.fetch_add(1, Ordering::SeqCst) + 1)
    }

    /// A durable write worked. Returns the new generation when this is news.
    pub fn set_working(&self) -> Option<u64> {
        let mut st = self.state();
        let news = st.failing.take().is_some();
        news.then(|| self.generation.fetch_add(1, Ordering::SeqCst) + 1)
    }

    /// The state if it changed after generation `seen`: `(generation, why it fails or None)`.
    pub fn change_since(&self, seen: u64) -> Option<(u64, Option<String>)> {
        if self.generation.load(Ordering::SeqCst) == seen {
            return None;
        }
        let st = self.state();
        Some((self.generation.load(Ordering::SeqCst), st.failing.clone()))
    }

    /// The control loop has applied (and published) generation `generation`.
    pub fn mark_applied(&self, generation: u64) {
        let mut st = self.state();
        st.applied = st.applied.max(generation);
        self.applied.notify_all();
    }

    /// Waits up to `limit` until the control loop applied `generation`; false on time-out
    /// (the loop is gone or stalled: the caller goes on, the loop applies it when it can).
    pub fn wait_applied(&self, generation: u64, limit: Duration) -> bool {
        let st = self.state();
        let (st, _) = self
            .applied
            .wait_timeout_while(st, limit, |st| st.applied < generation)
            .unwrap_or_else(|p| p.into_inner());
        st.applied >= generation
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_land_in_the_right_bucket() {
        let t = Telemetry::default();
        t.record_step(Duration::from_micros(7), false);
        t.record_step(Duration::from_millis(50), true);
        assert_eq!(t.step_buckets[0].load(Ordering::Relaxed), 1);
        assert_eq!(
            t.step_buckets[STEP_BUCKETS_S.len()].load(Ordering::Relaxed),
            1
        );
        assert_eq!(t.overruns.load(Ordering::Relaxed), 1);
        t.record_dbus_call("Start", true);
        t.record_dbus_call("Start", false);
        assert_eq!(t.dbus_calls()["Start"], (2, 1));
    }
}
