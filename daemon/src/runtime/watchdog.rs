//! The in-process watchdog: if the control loop stops stepping, a separate thread drives every
//! output safe and then ends the process so systemd restarts it (and its `ExecStopPost=`
//! safe-off helper runs). systemd's own `WatchdogSec=` is the second, outer layer.

use coldspray_hal::OutputPort;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The outputs, shared by the control loop and the watchdog.
pub type SharedOutputs = Arc<Mutex<Box<dyn OutputPort>>>;

/// Proof of life from the control loop.
#[derive(Debug, Clone)]
pub struct Heartbeat {
    origin: Instant,
    last_ms: Arc<AtomicU64>,
}

impl Default for Heartbeat {
    fn default() -> Self {
        Self::new()
    }
}

impl Heartbeat {
    /// A heartbeat that just beat.
    pub fn new() -> Self {
        Self {
            origin: Instant::now(),
            last_ms: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Called by the control loop after each step.
    pub fn beat(&self) {
        let ms = u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    /// Time since the last beat (wall clock).
    pub fn silence(&self) -> Duration {
        let now = u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX);
        Duration::from_millis(now.saturating_sub(self.last_ms.load(Ordering::Relaxed)))
    }
}

/// Starts the watchdog thread. When the heartbeat is silent for `limit`, it drives every
/// output safe and calls `on_stall` (in the daemon: log and abort the process).
pub fn spawn(
    heartbeat: Heartbeat,
    outputs: SharedOutputs,
    limit: Duration,
    stop: Arc<AtomicBool>,
    on_stall: impl FnOnce(Duration) + Send + 'static,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("coldspray-watchdog".into())
        .spawn(move || {
            let poll = (limit / 10).max(Duration::from_millis(1));
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(poll);
                let silence = heartbeat.silence();
                if silence >= limit {
                    // A poisoned lock means the loop panicked mid-write: take it anyway.
                    let mut port = outputs.lock().unwrap_or_else(|p| p.into_inner());
                    let _ = port.all_safe();
                    drop(port);
                    on_stall(silence);
                    return;
                }
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use coldspray_hal::sim::{SimConfig, SimUnit};
    use coldspray_hal::Output;

    #[test]
    fn a_stalled_loop_leaves_the_simulated_outputs_safe() {
        let sim = SimUnit::new(SimConfig::default());
        let mut board = sim.board();
        board.outputs.set(Output::Pump, true).unwrap();
        board.outputs.set(Output::SprayValve, true).unwrap();
        board.outputs.set(Output::Chiller, true).unwrap();
        let outputs: SharedOutputs = Arc::new(Mutex::new(board.outputs));
        let hb = Heartbeat::new();
        hb.beat();
        let (tx, rx) = std::sync::mpsc::channel();
        let stop = Arc::new(AtomicBool::new(false));
        let t = spawn(
            hb.clone(),
            outputs,
            Duration::from_millis(50),
            stop,
            move |s| {
                let _ = tx.send(s);
            },
        )
        .unwrap();
        // The loop "stalls": no more beats.
        let silence = rx
            .recv_timeout(Duration::from_secs(10))
            .expect("watchdog fired");
        t.join().unwrap();
        assert!(silence >= Duration::from_millis(50));
        assert_eq!(
            sim.truth().outputs,
            [false; 7],
            "every output off after the stall"
        );
    }

    #[test]
    fn a_beating_loop_is_left_alone() {
        let sim = SimUnit::new(SimConfig::default());
        let mut board = sim.board();
        board.outputs.set(Output::Chiller, true).unwrap();
        let outputs: SharedOutputs = Arc::new(Mutex::new(board.outputs));
        let hb = Heartbeat::new();
        let stop = Arc::new(AtomicBool::new(false));
        let fired = Arc::new(AtomicBool::new(false));
        let f = fired.clone();
        let t = spawn(
            hb.clone(),
            outputs,
            Duration::from_millis(200),
            stop.clone(),
            move |_| {
                f.store(true, Ordering::SeqCst);
            },
        )
        .unwrap();
        for _ in 0..50 {
            hb.beat();
            std::thread::sleep(Duration::from_millis(5));
        }
        stop.store(true, Ordering::SeqCst);
        t.join().unwrap();
        assert!(!fired.load(Ordering::SeqCst));
        assert!(sim.truth().outputs[Output::Chiller.index()]);
    }
}
