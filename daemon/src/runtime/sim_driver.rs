//! Paces the simulated unit: advances the twin in (scaled) real time on its own thread.

use super::RuntimeError;
use coldspray_hal::sim::SimUnit;
use coldspray_hal::Clock;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How far the simulated unit may run ahead of the slowest of its observers (the control
/// loop and the sensor thread), in simulated time: one sensor period and a half.
const SIM_LEAD: Duration = Duration::from_millis(150);

/// Advances the simulated unit in real time (times `speed`) on its own thread, but never more
/// than [`SIM_LEAD`] ahead of the slowest observer: on a loaded machine the simulation slows
/// down instead of letting time pass that nobody saw (which would look like stale sensors).
pub(super) fn spawn_sim_driver(
    sim: SimUnit,
    speed: f64,
    marks: [Arc<AtomicU64>; 2],
    stop: Arc<AtomicBool>,
) -> Result<std::thread::JoinHandle<()>, RuntimeError> {
    std::thread::Builder::new()
        .name("coldspray-sim".into())
        .spawn(move || {
            let clock = sim.clock();
            let mut last = Instant::now();
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(1));
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
