//! systemd notifications: `READY=1`, `STATUS=`, `WATCHDOG=1`, `STOPPING=1`.
//!
//! Without systemd (`NOTIFY_SOCKET` unset) every call is a cheap no-op.

use std::time::Duration;

/// Talks to the service manager.
#[derive(Debug, Clone)]
pub struct Notifier {
    enabled: bool,
    watchdog: Option<Duration>,
}

impl Notifier {
    /// Reads `NOTIFY_SOCKET` and `WATCHDOG_USEC` from the environment.
    pub fn from_env() -> Self {
        Self {
            enabled: std::env::var_os("NOTIFY_SOCKET").is_some(),
            watchdog: sd_notify::watchdog_enabled(),
        }
    }

    /// How often the control loop must ping: half the watchdog timeout.
    pub fn ping_interval(&self) -> Option<Duration> {
        self.watchdog.map(|w| w / 2)
    }

    fn send(&self, state: &[sd_notify::NotifyState<'_>]) {
        if self.enabled {
            if let Err(e) = sd_notify::notify(state) {
                tracing::warn!("sd_notify failed: {e}");
            }
        }
    }

    /// Start-up finished: outputs safe, store open, bus name owned.
    pub fn ready(&self, status: &str) {
        self.send(&[
            sd_notify::NotifyState::Ready,
            sd_notify::NotifyState::Status(status),
        ]);
    }

    /// One-line status for `systemctl status`.
    pub fn status(&self, status: &str) {
        self.send(&[sd_notify::NotifyState::Status(status)]);
    }

    /// Watchdog keep-alive, sent by the control loop itself.
    pub fn watchdog(&self) {
        self.send(&[sd_notify::NotifyState::Watchdog]);
    }

    /// Shutdown has begun.
    pub fn stopping(&self) {
        self.send(&[sd_notify::NotifyState::Stopping]);
    }
}
