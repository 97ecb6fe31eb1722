//! Real-time scheduling for the threads that react to inputs.
//!
//! The GPIO edge threads and the daemon's control loop run under `SCHED_FIFO` at
//! [`HardwareConfig::realtime_priority`](super::HardwareConfig::realtime_priority), so that
//! logging, D-Bus calls or a scrape on the same cores wait for them and never the reverse.
//! They block almost all the time (in `poll(2)` or for the next period), so they take little
//! CPU; the kernel's RT throttling (`sched_rt_runtime_us`) still bounds a runaway.

/// Puts the calling thread under `SCHED_FIFO` at `priority`; 0 leaves it as it is. Fails
/// with `EPERM` without `CAP_SYS_NICE` or an `RLIMIT_RTPRIO` of at least `priority`.
pub fn set_current_thread_realtime(priority: u8) -> std::io::Result<()> {
    if priority == 0 {
        return Ok(());
    }
    let param = libc::sched_param {
        sched_priority: i32::from(priority),
    };
    // SAFETY: pthread_self() is the calling thread, alive for the call; `param` is a valid
    // sched_param that outlives it.
    let rc = unsafe { libc::pthread_setschedparam(libc::pthread_self(), libc::SCHED_FIFO, &param) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::from_raw_os_error(rc))
    }
}

/// Lowers (or raises) the calling thread's nice value to `nice` (Linux applies
/// `setpriority(PRIO_PROCESS, tid)` to that one thread). Raising needs `CAP_SYS_NICE`.
pub fn set_current_thread_nice(nice: i32) -> std::io::Result<()> {
    // SAFETY: gettid has no preconditions and returns the calling thread's id.
    let tid = unsafe { libc::gettid() };
    // SAFETY: setpriority only reads its three integer arguments.
    let rc = unsafe { libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, nice) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_leaves_the_thread_alone() {
        std::thread::spawn(|| {
            set_current_thread_realtime(0).unwrap();
            // SAFETY: sched_getscheduler(0) only reads the calling thread's policy.
            let policy = unsafe { libc::sched_getscheduler(0) };
            assert_eq!(policy, libc::SCHED_OTHER);
        })
        .join()
        .unwrap();
    }

    #[test]
    fn a_priority_applies_or_fails_with_a_permission_error() {
        std::thread::spawn(|| match set_current_thread_realtime(5) {
            Ok(()) => {
                // SAFETY: as above.
                let policy = unsafe { libc::sched_getscheduler(0) };
                assert_eq!(policy, libc::SCHED_FIFO);
            }
            Err(e) => assert_eq!(e.raw_os_error(), Some(libc::EPERM), "{e}"),
        })
        .join()
        .unwrap();
    }
}
