//! Paces the simulated unit: advances the twin in (scaled) real time on its own thread, at a
//! speed the demo may change while it runs ([`SimSpeed`]).

use super::RuntimeError;
use coldspray_hal::sim::SimUnit;
use coldspray_hal::Clock;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often the simulated unit advances while the control loop is busy, wall time: the
/// resolution of simulated time that edges and reactions are measured in.
const BUSY_TICK: Duration = Duration::from_millis(1);

/// How often it advances while the loop is quiet (nothing runs), simulated time: ten times
/// fewer wake-ups; an edge that makes the loop busy brings back [`BUSY_TICK`] at once.
const QUIET_TICK: Duration = Duration::from_millis(10);

/// How far the simulated unit may run ahead of the slowest of its observers (the control
/// loop and the sensor thread), in simulated time: one sensor period and a half.
const SIM_LEAD: Duration = Duration::from_millis(150);

/// The simulated unit's speed (simulated seconds per wall second), shared with whoever paces
/// it. It can be lowered below the configured speed and raised back to it, never above: the
/// control loop's and sensor thread's wall cadence is set from the configured speed.
#[derive(Debug, Clone)]
pub struct SimSpeed {
    bits: Arc<AtomicU64>,
    ceiling: f64,
}

impl SimSpeed {
    /// Lowest speed accepted (as `[sim] speed`).
    pub const MIN: f64 = 0.1;

    /// A speed starting at `ceiling`, the configured speed.
    pub fn new(ceiling: f64) -> SimSpeed {
        let ceiling = ceiling.max(Self::MIN);
        SimSpeed {
            bits: Arc::new(AtomicU64::new(ceiling.to_bits())),
            ceiling,
        }
    }

    /// The speed now.
    pub fn get(&self) -> f64 {
        f64::from_bits(self.bits.load(Ordering::Relaxed))
    }

    /// The configured speed, the highest [`SimSpeed::set`] accepts.
    pub fn ceiling(&self) -> f64 {
        self.ceiling
    }

    /// Runs the simulation at `speed` from now on, clamped to [`SimSpeed::MIN`] and the
    /// ceiling; returns the speed set.
    pub fn set(&self, speed: f64) -> f64 {
        let speed = if speed.is_finite() {
            speed.clamp(Self::MIN, self.ceiling)
        } else {
            self.ceiling
        };
        self.bits.store(speed.to_bits(), Ordering::Relaxed);
        speed
    }
}

/// Advances the simulated unit in real time (times `speed`) on its own thread, but never more
/// than [`SIM_LEAD`] ahead of the slowest observer: on a loaded machine the simulation slows
/// down instead of letting time pass that nobody saw (which would look like stale sensors).
/// While the control loop reports `quiet`, it ticks every [`QUIET_TICK`] of simulated time
/// (at most [`BUSY_TICK`] of wall time at high speeds) instead of every [`BUSY_TICK`].
pub(super) fn spawn_sim_driver(
    sim: SimUnit,
    speed: SimSpeed,
    marks: [Arc<AtomicU64>; 2],
    quiet: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
) -> Result<std::thread::JoinHandle<()>, RuntimeError> {
    std::thread::Builder::new()
        .name("coldspray-sim".into())
        .spawn(move || {
            let clock = sim.clock();
            let mut last = Instant::now();
            while !stop.load(Ordering::Relaxed) {
                let tick = if quiet.load(Ordering::Relaxed) {
                    QUIET_TICK.mul_f64(1.0 / speed.get()).max(BUSY_TICK)
                } else {
                    BUSY_TICK
                };
                std::thread::sleep(tick);
                let now = Instant::now();
                let wanted = (now - last).mul_f64(speed.get());
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

#[cfg(test)]
mod tests {
    use super::SimSpeed;

    #[test]
    fn the_speed_stays_between_the_minimum_and_the_configured_speed() {
        let s = SimSpeed::new(50.0);
        assert_eq!(s.get(), 50.0);
        assert_eq!(s.set(1.0), 1.0);
        assert_eq!(s.clone().get(), 1.0, "clones share the speed");
        assert_eq!(s.set(1000.0), 50.0);
        assert_eq!(s.set(0.0), SimSpeed::MIN);
        assert_eq!(s.set(f64::NAN), 50.0);
    }
}
