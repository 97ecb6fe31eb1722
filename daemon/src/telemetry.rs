//! Lock-free counters the daemon's parts update and the metrics exporter reads.
//!
//! Writers never block: the control loop only does relaxed atomic adds here.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
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

    /// D-Bus calls per method: (calls, errors).
    pub fn dbus_calls(&self) -> BTreeMap<String, (u64, u64)> {
        self.dbus.lock().map(|m| m.clone()).unwrap_or_default()
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
