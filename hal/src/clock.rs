//! Monotonic time sources.
//!
//! Every timestamp in ColdSpray is a [`Duration`] on one monotonic time line. On a real board
//! that line is the kernel's `CLOCK_MONOTONIC`, the same clock GPIO edge events are stamped
//! with, so an edge timestamp and "now" can be subtracted directly. Tests and the simulated
//! unit use a [`ManualClock`] that only moves when told to.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// A source of monotonic time.
pub trait Clock: Send + Sync {
    /// The current time on this clock's monotonic time line.
    fn now(&self) -> Duration;
}

/// The kernel's `CLOCK_MONOTONIC`, the clock GPIO edge events are stamped with.
#[derive(Debug, Clone, Copy, Default)]
pub struct MonotonicClock;

impl Clock for MonotonicClock {
    fn now(&self) -> Duration {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `ts` is a valid, writable timespec; CLOCK_MONOTONIC is always supported on
        // Linux, so the call cannot fail.
        unsafe {
            libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts);
        }
        Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
    }
}

/// A clock that moves only when [`ManualClock::advance`] or [`ManualClock::set`] is called.
///
/// Clones share the same time line.
#[derive(Debug, Clone, Default)]
pub struct ManualClock {
    nanos: Arc<AtomicU64>,
}

impl ManualClock {
    /// A clock standing at zero.
    pub fn new() -> Self {
        Self::default()
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        self.nanos
            .fetch_add(duration_to_nanos(by), Ordering::SeqCst);
    }

    /// Sets the clock to `at` (which must not be earlier than now).
    pub fn set(&self, at: Duration) {
        self.nanos
            .fetch_max(duration_to_nanos(at), Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Duration {
        Duration::from_nanos(self.nanos.load(Ordering::SeqCst))
    }
}

fn duration_to_nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_clones_share_time_and_never_go_back() {
        let a = ManualClock::new();
        let b = a.clone();
        a.advance(Duration::from_millis(1500));
        assert_eq!(b.now(), Duration::from_millis(1500));
        b.set(Duration::from_millis(10));
        assert_eq!(a.now(), Duration::from_millis(1500));
    }

    #[test]
    fn monotonic_clock_moves_forward() {
        let c = MonotonicClock;
        let t0 = c.now();
        std::thread::sleep(Duration::from_millis(2));
        assert!(c.now() > t0);
    }
}
