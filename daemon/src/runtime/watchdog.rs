//! The in-process watchdog: if the control loop stops stepping, a separate thread drives every
//! output safe, and if the loop stays silent, ends the process so systemd restarts it (and its
//! `ExecStopPost=` safe-off helper runs). systemd's own `WatchdogSec=` is the outer layer.
//!
//! Two limits:
//! * after [`Limits::stall`] of silence the outputs are driven safe and the loop is marked
//!   stalled ([`StallFlag`]); when it runs again it raises `control_stalled`, ends any session
//!   and waits in `fault` until it has stepped on time for a while (CPU starvation recovers by
//!   itself, without a restart);
//! * after [`Limits::abort`] of silence the process is ended ([`Stall`] handed to `on_abort`).
//!
//! The watchdog never blocks on the outputs lock: the loop may be the one holding it, hung in
//! a write. It waits at most [`Limits::lock_wait`]; if the lock cannot be had it drives the
//! outputs safe through the backend's lock-free path, if it has one ([`SafeOffPath`]), and
//! ends the process at once (a hung write does not come back by waiting; on Linux the kernel
//! releases the lines as the process exits and `ExecStopPost=` drives them off).

use coldspray_hal::OutputPort;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, TryLockError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The outputs, shared by the control loop and the watchdog.
pub type SharedOutputs = Arc<Mutex<Box<dyn OutputPort>>>;

/// A way to drive every output safe that takes no lock the control loop may hold (on the
/// simulated unit: a second handle onto the twin).
pub type SafeOffPath = Box<dyn FnMut() -> Result<(), String> + Send>;

/// Set by the watchdog when it drove the outputs safe behind a silent loop; the loop takes
/// it ([`StallFlag::take`]) at its next step, and writes no output while it is set.
#[derive(Debug, Clone, Default)]
pub struct StallFlag(Arc<AtomicBool>);

impl StallFlag {
    /// A flag that is not set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether the watchdog drove the outputs safe since the loop last took the flag.
    pub fn is_set(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }

    /// Takes the flag: true once after each time the watchdog fired.
    pub fn take(&self) -> bool {
        self.0.swap(false, Ordering::SeqCst)
    }

    fn set(&self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// The watchdog's limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Silence after which the outputs are driven safe and the loop is marked stalled.
    pub stall: Duration,
    /// Silence after which the process is ended (below systemd's `WatchdogSec=`).
    pub abort: Duration,
    /// How long the watchdog tries for the outputs lock before it gives up on it.
    pub lock_wait: Duration,
}

impl Default for Limits {
    /// 1 s to safe, 4 s to abort (systemd's `WatchdogSec=` is 5 s), 50 ms for the lock.
    fn default() -> Self {
        Self {
            stall: Duration::from_secs(1),
            abort: Duration::from_secs(4),
            lock_wait: Duration::from_millis(50),
        }
    }
}

impl Limits {
    /// The longest the watchdog sleeps between two looks at the heartbeat: a quarter of the
    /// stall limit (at most 4 wake-ups a second while the loop beats).
    fn poll_cap(&self) -> Duration {
        (self.stall / 4).max(Duration::from_millis(1))
    }

    /// How long to sleep after seeing `silence`: until the silence reaches the next limit
    /// (the stall limit, then the abort limit) if no beat comes, 1 ms past it (the heartbeat
    /// counts whole milliseconds), within 1 ms and [`Limits::poll_cap`].
    fn next_check(&self, silence: Duration) -> Duration {
        let limit = if silence < self.stall {
            self.stall
        } else {
            self.abort
        };
        (limit.saturating_sub(silence) + Duration::from_millis(1))
            .clamp(Duration::from_millis(1), self.poll_cap())
    }
}

/// How the outputs were made safe when the watchdog acted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SafeOff {
    /// Through the shared port, under its lock.
    Driven,
    /// Under the lock, but a write failed (the message).
    WriteFailed(String),
    /// The lock was held (a hung write): through the lock-free path, with its result.
    Bypassed(Result<(), String>),
    /// The lock was held and the backend has no lock-free path: only the process exit (the
    /// kernel releasing the lines, then `ExecStopPost=`) makes them safe.
    NoPath,
}

impl SafeOff {
    /// True when the outputs are known to be safe.
    pub fn is_safe(&self) -> bool {
        matches!(self, SafeOff::Driven | SafeOff::Bypassed(Ok(())))
    }
}

impl std::fmt::Display for SafeOff {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SafeOff::Driven => f.write_str("outputs driven safe"),
            SafeOff::WriteFailed(e) => write!(f, "driving the outputs safe failed: {e}"),
            SafeOff::Bypassed(Ok(())) => {
                f.write_str("outputs lock held by the loop: outputs driven safe without it")
            }
            SafeOff::Bypassed(Err(e)) => write!(
                f,
                "outputs lock held by the loop, and the lock-free safe-off failed: {e}"
            ),
            SafeOff::NoPath => f.write_str(
                "outputs lock held by the loop and no lock-free path on this backend: \
                 the process exit releases the lines",
            ),
        }
    }
}

/// Why the watchdog ends the process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stall {
    /// How long the loop had been silent.
    pub silence: Duration,
    /// How the outputs were made safe.
    pub safe_off: SafeOff,
}

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

/// What the watchdog watches and acts on.
pub struct Watchdog {
    /// The loop's heartbeat.
    pub heartbeat: Heartbeat,
    /// The outputs the loop drives.
    pub outputs: SharedOutputs,
    /// The backend's lock-free safe-off, if it has one.
    pub bypass: Option<SafeOffPath>,
    /// Raised when the watchdog drove the outputs safe.
    pub stalled: StallFlag,
    /// When to act.
    pub limits: Limits,
    /// Set to end the watchdog thread.
    pub stop: Arc<AtomicBool>,
}

/// Tries for the lock for at most `wait`; a poisoned lock (the loop panicked mid-write) is
/// taken anyway.
fn lock_bounded(
    outputs: &SharedOutputs,
    wait: Duration,
) -> Option<MutexGuard<'_, Box<dyn OutputPort>>> {
    let deadline = Instant::now() + wait;
    loop {
        match outputs.try_lock() {
            Ok(guard) => return Some(guard),
            Err(TryLockError::Poisoned(p)) => return Some(p.into_inner()),
            Err(TryLockError::WouldBlock) if Instant::now() >= deadline => return None,
            Err(TryLockError::WouldBlock) => std::thread::sleep(Duration::from_millis(1)),
        }
    }
}

impl Watchdog {
    /// Drives every output safe without ever waiting long for the lock.
    fn drive_safe(&mut self) -> SafeOff {
        match lock_bounded(&self.outputs, self.limits.lock_wait) {
            Some(mut port) => {
                // Set under the lock: the loop checks it under the same lock before writing.
                self.stalled.set();
                match port.all_safe() {
                    Ok(()) => SafeOff::Driven,
                    Err(e) => SafeOff::WriteFailed(e.to_string()),
                }
            }
            None => {
                self.stalled.set();
                match self.bypass.as_mut() {
                    Some(bypass) => SafeOff::Bypassed(bypass()),
                    None => SafeOff::NoPath,
                }
            }
        }
    }

    fn run(mut self, on_abort: impl FnOnce(Stall)) {
        // Whether the stall limit was acted on during the current silence.
        let mut acted = false;
        let mut wait = self.limits.poll_cap();
        while !self.stop.load(Ordering::Relaxed) {
            std::thread::sleep(wait);
            let silence = self.heartbeat.silence();
            // Sleep until the silence would reach the next limit (a beating loop pushes it
            // back), but never longer than the cap, so a stop request is seen soon.
            wait = self.limits.next_check(silence);
            if silence < self.limits.stall {
                acted = false;
                continue;
            }
            let abort = silence >= self.limits.abort;
            if acted && !abort {
                continue;
            }
            let safe_off = self.drive_safe();
            // Without the lock the loop is hung inside a write: waiting will not bring it back.
            let lock_held = matches!(safe_off, SafeOff::Bypassed(_) | SafeOff::NoPath);
            if abort || lock_held {
                on_abort(Stall { silence, safe_off });
                return;
            }
            acted = true;
            tracing::error!(
                "control loop silent for {:.1} s: {safe_off}; it raises control_stalled when it \
                 runs again, and the process is ended if it stays silent for {:.1} s",
                silence.as_secs_f64(),
                self.limits.abort.as_secs_f64()
            );
        }
    }
}

/// Starts the watchdog thread. After `limits.stall` of silence it drives every output safe
/// and marks the loop stalled; after `limits.abort` of silence, or at once when the outputs
/// lock cannot be had, it calls `on_abort` (in the daemon: log and abort the process).
pub fn spawn(
    watchdog: Watchdog,
    on_abort: impl FnOnce(Stall) + Send + 'static,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("coldspray-watchdog".into())
        .spawn(move || watchdog.run(on_abort))
}

#[cfg(test)]
mod tests {
    use super::*;
    use coldspray_hal::sim::{SimConfig, SimUnit};
    use coldspray_hal::{HalError, Output};
    use std::sync::mpsc;

    fn limits(stall_ms: u64, abort_ms: u64) -> Limits {
        Limits {
            stall: Duration::from_millis(stall_ms),
            abort: Duration::from_millis(abort_ms),
            lock_wait: Duration::from_millis(20),
        }
    }

    fn watchdog(hb: &Heartbeat, outputs: SharedOutputs, limits: Limits) -> Watchdog {
        Watchdog {
            heartbeat: hb.clone(),
            outputs,
            bypass: None,
            stalled: StallFlag::new(),
            limits,
            stop: Arc::new(AtomicBool::new(false)),
        }
    }

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
        let (tx, rx) = mpsc::channel();
        let t = spawn(watchdog(&hb, outputs, limits(50, 100)), move |s| {
            let _ = tx.send(s.silence);
        })
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
        let w = watchdog(&hb, outputs, limits(200, 400));
        let stop = w.stop.clone();
        let stalled = w.stalled.clone();
        let fired = Arc::new(AtomicBool::new(false));
        let f = fired.clone();
        let t = spawn(w, move |_| {
            f.store(true, Ordering::SeqCst);
        })
        .unwrap();
        for _ in 0..50 {
            hb.beat();
            std::thread::sleep(Duration::from_millis(5));
        }
        stop.store(true, Ordering::SeqCst);
        t.join().unwrap();
        assert!(!fired.load(Ordering::SeqCst));
        assert!(!stalled.is_set());
        assert!(sim.truth().outputs[Output::Chiller.index()]);
    }

    #[test]
    fn the_watchdog_sleeps_until_the_next_limit_within_its_cap() {
        let l = limits(1000, 4000);
        let ms = Duration::from_millis;
        // A loop that just beat: a quarter of the stall limit, then up to the limit itself.
        assert_eq!(l.next_check(ms(0)), ms(250));
        assert_eq!(l.next_check(ms(900)), ms(101));
        assert_eq!(l.next_check(ms(999)), ms(2));
        // Past the stall limit, the abort limit is next.
        assert_eq!(l.next_check(ms(1000)), ms(250));
        assert_eq!(l.next_check(ms(3990)), ms(11));
        assert_eq!(l.next_check(ms(5000)), ms(1));
    }

    #[test]
    fn a_loop_that_comes_back_after_the_stall_limit_is_flagged_not_aborted() {
        let sim = SimUnit::new(SimConfig::default());
        let mut board = sim.board();
        board.outputs.set(Output::Pump, true).unwrap();
        let outputs: SharedOutputs = Arc::new(Mutex::new(board.outputs));
        let hb = Heartbeat::new();
        hb.beat();
        // An abort limit no test machine reaches while the flag is awaited.
        let w = watchdog(&hb, outputs, limits(30, 60_000));
        let stop = w.stop.clone();
        let stalled = w.stalled.clone();
        let aborted = Arc::new(AtomicBool::new(false));
        let a = aborted.clone();
        let t = spawn(w, move |_| a.store(true, Ordering::SeqCst)).unwrap();
        // Wait (bounded) for the watchdog to act on the silence.
        let mut waited = 0;
        while !stalled.is_set() && waited < 10_000 {
            std::thread::sleep(Duration::from_millis(5));
            waited += 5;
        }
        assert!(stalled.is_set(), "the stall limit was never acted on");
        assert!(
            !sim.truth().outputs[Output::Pump.index()],
            "pump driven off"
        );
        // The loop runs again and takes the flag once.
        hb.beat();
        assert!(stalled.take());
        assert!(!stalled.take());
        stop.store(true, Ordering::SeqCst);
        t.join().unwrap();
        assert!(!aborted.load(Ordering::SeqCst), "a stall is not an abort");
    }

    /// An output port whose writes hang (a stuck ioctl, a sysfs write that never returns)
    /// until the test releases them.
    struct HungPort(mpsc::Receiver<()>);

    impl OutputPort for HungPort {
        fn set(&mut self, _: Output, _: bool) -> Result<(), HalError> {
            // Blocks until the sender is dropped.
            let _ = self.0.recv();
            Ok(())
        }
        fn set_pump_duty(&mut self, _: u8) -> Result<(), HalError> {
            Ok(())
        }
        fn commanded(&self, _: Output) -> bool {
            false
        }
    }

    /// The "control loop" hangs inside a write, holding the outputs lock: returns the
    /// outputs, the sender whose drop releases the write, and the hung thread (joined once
    /// released). Returns only once the lock is held.
    fn a_write_hung_under_the_lock() -> (SharedOutputs, mpsc::Sender<()>, JoinHandle<()>) {
        let (release, hang) = mpsc::channel::<()>();
        let outputs: SharedOutputs = Arc::new(Mutex::new(Box::new(HungPort(hang))));
        let o = outputs.clone();
        let (locked_tx, locked_rx) = mpsc::channel();
        let hung = std::thread::spawn(move || {
            let mut port = o.lock().unwrap_or_else(|p| p.into_inner());
            locked_tx.send(()).unwrap();
            port.set(Output::Pump, true)
                .expect("the hung port answers Ok once released");
        });
        locked_rx.recv().unwrap();
        (outputs, release, hung)
    }

    #[test]
    fn a_write_hung_under_the_lock_does_not_block_the_watchdog() {
        let (outputs, release, hung) = a_write_hung_under_the_lock();
        let hb = Heartbeat::new();
        hb.beat();
        // The backend's lock-free path (on the sim: a second handle onto the twin).
        let sim = SimUnit::new(SimConfig::default());
        let mut second = sim.board().outputs;
        sim.board().outputs.set(Output::Pump, true).unwrap();
        let mut w = watchdog(&hb, outputs, limits(50, 60_000));
        w.bypass = Some(Box::new(move || {
            second.all_safe().map_err(|e| e.to_string())
        }));
        let stalled = w.stalled.clone();
        let (tx, rx) = mpsc::channel();
        let t = spawn(w, move |s| {
            let _ = tx.send(s);
        })
        .unwrap();
        // Generous: the watchdog acts 50 ms + 20 ms after the last beat; a loaded machine may
        // take longer, but never ten seconds.
        let stall = rx.recv_timeout(Duration::from_secs(10));
        drop(release);
        let stall = stall.expect("the watchdog fired although the loop held the lock");
        assert_eq!(stall.safe_off, SafeOff::Bypassed(Ok(())));
        assert!(stall.silence >= Duration::from_millis(50));
        assert!(stalled.is_set());
        assert_eq!(
            sim.truth().outputs,
            [false; 7],
            "driven safe without the lock"
        );
        t.join().unwrap();
        hung.join().unwrap();
    }

    #[test]
    fn without_a_lock_free_path_a_hung_write_still_ends_the_process() {
        let (outputs, release, hung) = a_write_hung_under_the_lock();
        let hb = Heartbeat::new();
        hb.beat();
        let (tx, rx) = mpsc::channel();
        let t = spawn(watchdog(&hb, outputs, limits(50, 60_000)), move |s| {
            let _ = tx.send(s);
        })
        .unwrap();
        let stall = rx.recv_timeout(Duration::from_secs(10));
        drop(release);
        let stall = stall.expect("the watchdog fired although the loop held the lock");
        assert_eq!(stall.safe_off, SafeOff::NoPath);
        assert!(!stall.safe_off.is_safe());
        t.join().unwrap();
        hung.join().unwrap();
    }
}
