//! Paces the simulated unit: advances the twin in (scaled) real time on its own thread.

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

/// Advances the simulated unit in real time (times `speed`) on its own thread, but never more
/// than [`SIM_LEAD`] ahead of the slowest observer: on a loaded machine the simulation slows
/// down instead of letting time pass that nobody saw (which would look like stale sensors).
/// While the control loop reports `quiet`, it ticks every [`QUIET_TICK`] of simulated time
/// (at most [`BUSY_TICK`] of wall time at high speeds) instead of every [`BUSY_TICK`].
pub(super) fn spawn_sim_driver(
    sim: SimUnit,
    speed: f64,
    marks: [Arc<AtomicU64>; 2],
    quiet: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
) -> Result<std::thread::JoinHandle<()>, RuntimeError> {
    std::thread::Builder::new()
        .name("coldspray-sim".into())
        .spawn(move || {
            let clock = sim.clock();
            let mut last = Instant::now();
            let quiet_tick = QUIET_TICK.mul_f64(1.0 / speed).max(BUSY_TICK);
            while !stop.load(Ordering::Relaxed) {
                let tick = if quiet.load(Ordering::Relaxed) {
                    quiet_tick
                } else {
                    BUSY_TICK
                };
                std::thread::sleep(tick);
                let now = Instant::now();
                let wanted = (now - last).mul_f64(speed);
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
