//! The running session's curve as it forms, for `Sessions.LiveCurve`: a task follows the
//! control events and keeps the samples of the running session (and of the last one, until
//! the next starts), so a kiosk can draw the curve while the mist sprays.

use crate::api::Event;
use crate::handle::ControlHandle;
use crate::model::session::Sample;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

/// Most samples kept: a session is capped at 120 s (1200 samples at 10 Hz); this bounds the
/// memory even if a longer cap is ever allowed.
pub const MAX_SAMPLES: usize = 36_000;

/// The samples of the running or last session.
#[derive(Debug, Default)]
pub struct LiveCurve {
    inner: Mutex<Curve>,
}

#[derive(Debug, Default)]
struct Curve {
    session_id: u64,
    running: bool,
    samples: Vec<Sample>,
    /// [`MAX_SAMPLES`] reached (said once in the log).
    full: bool,
}

/// What `Sessions.LiveCurve` returns: the session id (0 before the first), whether it still
/// runs, the index to ask from next time, and the samples from the index asked for.
pub type LiveSlice = (u64, bool, u32, Vec<Sample>);

impl LiveCurve {
    /// The samples from index `since` on.
    pub fn since(&self, since: u32) -> LiveSlice {
        let c = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let from = usize::try_from(since)
            .unwrap_or(usize::MAX)
            .min(c.samples.len());
        let next = u32::try_from(c.samples.len()).unwrap_or(u32::MAX);
        (c.session_id, c.running, next, c.samples[from..].to_vec())
    }

    /// Takes one control event.
    pub fn on_event(&self, ev: &Event) {
        let mut c = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        match ev {
            Event::SessionStarted(s) => {
                *c = Curve {
                    session_id: s.id,
                    running: true,
                    samples: Vec::new(),
                    full: false,
                }
            }
            Event::Sample(s) if c.running && s.session_id == c.session_id => {
                if c.samples.len() < MAX_SAMPLES {
                    c.samples.push(*s);
                } else if !c.full {
                    c.full = true;
                    tracing::warn!(
                        "live curve of session {}: over {MAX_SAMPLES} samples, the rest is only \
                         in the treatment log",
                        c.session_id
                    );
                }
            }
            Event::SessionEnded(r) if r.id() == c.session_id => c.running = false,
            _ => {}
        }
    }
}

/// Feeds `curve` from the control events until the channel closes. Samples lost to a lagging
/// receiver show as a gap in `t_ms` and are counted in the telemetry's `events_lagged`.
pub async fn follow(h: ControlHandle, curve: Arc<LiveCurve>) {
    use tokio::sync::broadcast::error::RecvError;
    let mut rx = h.events();
    loop {
        match rx.recv().await {
            Ok(ev) => curve.on_event(&ev),
            Err(RecvError::Lagged(n)) => {
                tracing::warn!("live curve: {n} control events missed");
                h.telemetry.events_lagged.fetch_add(n, Ordering::Relaxed);
            }
            Err(RecvError::Closed) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::export::test_record;

    fn sample(session_id: u64, t_ms: u32) -> Event {
        Event::Sample(Sample {
            session_id,
            t_ms,
            mist_c: Some(3.0),
            skin_c: Some(30.0),
            reservoir_c: Some(4.0),
            pressure_bar: Some(1.0),
            pump: true,
            valve: true,
        })
    }

    #[test]
    fn keeps_the_running_sessions_samples_and_hands_them_out_by_index() {
        let c = LiveCurve::default();
        assert_eq!(c.since(0), (0, false, 0, Vec::new()));
        let r = test_record(7, "pico", None);
        c.on_event(&Event::SessionStarted(r.start.clone()));
        for t in [0, 100, 200] {
            c.on_event(&sample(7, t));
        }
        c.on_event(&sample(6, 300)); // another session's: ignored
        let (id, running, next, s) = c.since(1);
        assert_eq!((id, running, next, s.len()), (7, true, 3, 2));
        assert_eq!(s[0].t_ms, 100);
        assert!(c.since(3).3.is_empty());
        assert!(
            c.since(99).3.is_empty(),
            "an index past the end is not an error"
        );
        c.on_event(&Event::SessionEnded(r));
        let (_, running, next, _) = c.since(0);
        assert!(
            !running && next == 3,
            "the last curve stays until the next session"
        );
    }
}
