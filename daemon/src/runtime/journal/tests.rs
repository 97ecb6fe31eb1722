//! The journal against a store that fails and comes back (a full disk), with a thread
//! playing the control loop.

use super::*;
use crate::model::session::{Outcome, SessionRecord, SessionStart, StartCause};
use crate::protocol::Goal;
use crate::store::{SessionDetail, SessionQuery, Settings};
use std::sync::atomic::AtomicBool;
use std::sync::Mutex;

/// A store whose writes fail while `fail` is set (a full disk), and come back when it is
/// cleared and the journal recovers it.
#[derive(Default)]
struct FlakyStore {
    fail: AtomicBool,
    written: Mutex<Vec<String>>,
    recovers: std::sync::atomic::AtomicU32,
}

impl FlakyStore {
    fn put(&self, what: String) -> Result<(), StoreError> {
        if self.fail.load(Ordering::SeqCst) {
            return Err(StoreError::Io {
                source: "No space left on device (os error 28)".into(),
            });
        }
        self.written.lock().unwrap().push(what);
        Ok(())
    }
}

impl LogStore for FlakyStore {
    fn record(&self, event: &Event) -> Result<(), StoreError> {
        self.put(describe(event).0)
    }
    fn sessions(&self, _: &SessionQuery) -> Result<Vec<SessionRecord>, StoreError> {
        Ok(Vec::new())
    }
    fn session(&self, _: u64) -> Result<Option<SessionDetail>, StoreError> {
        Ok(None)
    }
    fn save_counters(&self, _: &Counters) -> Result<(), StoreError> {
        self.put("counters".into())
    }
    fn save_protocols(&self, _: &[Protocol]) -> Result<(), StoreError> {
        self.put("protocols".into())
    }
    fn save_settings(&self, _: &Settings) -> Result<(), StoreError> {
        self.put("settings".into())
    }
    fn flush(&self) -> Result<(), StoreError> {
        self.put("flush".into())
    }
    fn recover(&self) -> Result<(), StoreError> {
        self.recovers.fetch_add(1, Ordering::SeqCst);
        self.put("probe".into())
    }
}

const TEST_RETRY: Duration = Duration::from_millis(20);

fn start(id: u64) -> SessionStart {
    SessionStart {
        id,
        protocol: "co2".into(),
        goal: Goal::Protect,
        cause: StartCause::Command,
        started_at: Duration::from_secs(1),
        started_unix_ms: 1_767_225_600_000,
        laser_to_spray_ms: None,
        late: false,
        skin_target_c: None,
        skin_floor_c: 10.0,
    }
}

fn ended(id: u64) -> SessionRecord {
    let s = start(id);
    SessionRecord {
        ended_at: s.started_at + Duration::from_secs(5),
        ended_unix_ms: s.started_unix_ms + 5000,
        start: s,
        outcome: Outcome::Stopped,
        peak_skin_c: None,
        min_skin_c: None,
        time_to_target_ms: None,
        above_40_ms: None,
        spray_ms: 5000,
        ended_by_alarm: None,
    }
}

/// The journal with a flaky store, and a thread playing the control loop: it applies
/// every health change (recording what the alarm would show) and marks it applied.
struct Rig {
    /// Stands in for the daemon's main runtime, with a worker of its own so the journal runs
    /// while the test thread blocks.
    _runtime: tokio::runtime::Runtime,
    store: Arc<FlakyStore>,
    telemetry: Arc<Telemetry>,
    tx: JournalSender,
    events: broadcast::Receiver<Event>,
    applied: Arc<Mutex<Vec<Option<String>>>>,
    stop: Arc<AtomicBool>,
}

fn rig() -> Rig {
    let store = Arc::new(FlakyStore::default());
    let telemetry = Arc::new(Telemetry::default());
    let (events_tx, events) = broadcast::channel(64);
    let (tx, rx) = mpsc::unbounded_channel();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    // The journal ends with the runtime; the done channel is not needed here.
    let _done = spawn(
        runtime.handle(),
        Some(store.clone() as Arc<dyn LogStore>),
        events_tx,
        telemetry.clone(),
        rx,
        TEST_RETRY,
    );
    let applied = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let (t, a, s) = (telemetry.clone(), applied.clone(), stop.clone());
    std::thread::spawn(move || {
        let mut seen = 0;
        while !s.load(Ordering::SeqCst) {
            if let Some((generation, failing)) = t.store_health.change_since(seen) {
                seen = generation;
                a.lock().unwrap().push(failing);
                t.store_health.mark_applied(generation);
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    });
    Rig {
        _runtime: runtime,
        store,
        telemetry,
        tx,
        events,
        applied,
        stop,
    }
}

impl Rig {
    fn command(&self, events: Vec<Event>, reply: Reply) -> Result<Reply, CommandError> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(JournalItem::Events {
                events,
                reply: Some((tx, Ok(reply))),
            })
            .unwrap();
        rx.blocking_recv().unwrap()
    }

    /// Waits for the journal to have handled everything sent so far.
    fn sync(&self) {
        let (tx, rx) = oneshot::channel();
        self.tx.send(JournalItem::Flush(tx)).unwrap();
        rx.blocking_recv().unwrap();
    }

    fn applied(&self) -> Vec<Option<String>> {
        self.applied.lock().unwrap().clone()
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

#[test]
fn a_session_that_cannot_be_recorded_is_answered_not_recorded_after_the_alarm() {
    let mut r = rig();
    assert_eq!(
        r.command(
            vec![Event::SessionStarted(start(1))],
            Reply::SessionStarted(1)
        ),
        Ok(Reply::SessionStarted(1))
    );
    r.store.fail.store(true, Ordering::SeqCst);
    let answer = r.command(
        vec![Event::SessionStarted(start(2))],
        Reply::SessionStarted(2),
    );
    // The alarm was applied by the loop before the answer went out.
    let applied = r.applied();
    assert_eq!(applied.len(), 1, "{applied:?}");
    assert!(
        applied[0]
            .as_deref()
            .is_some_and(|w| w.contains("session 2 started")),
        "{applied:?}"
    );
    match answer {
        Err(CommandError::NotRecorded {
            done,
            session_id,
            reason,
        }) => {
            assert_eq!(session_id, Some(2));
            assert!(done.contains("session 2 started and is cooling"), "{done}");
            assert!(reason.contains("No space left"), "{reason}");
        }
        other => panic!("a session that is not on disk was answered {other:?}"),
    }
    assert!(r.telemetry.store_health.failing());
    assert_eq!(r.telemetry.store_write_errors.load(Ordering::Relaxed), 1);
    // Listeners hear "not recorded" before the session's own event.
    let mut heard = Vec::new();
    while let Ok(ev) = r.events.try_recv() {
        heard.push(ev);
    }
    let n = heard.len();
    assert!(n >= 3, "{heard:?}");
    assert!(
        matches!(
            &heard[n - 2],
            Event::NotRecorded {
                session_id: Some(2),
                ..
            }
        ),
        "{heard:?}"
    );
    assert!(matches!(&heard[n - 1], Event::SessionStarted(s) if s.id == 2));

    // The session ends while the disk is still full: not recorded either.
    let answer = r.command(vec![Event::SessionEnded(ended(2))], Reply::Accepted);
    assert!(
        matches!(
            answer,
            Err(CommandError::NotRecorded {
                session_id: Some(2),
                ..
            })
        ),
        "{answer:?}"
    );

    // Space is freed: the next write retries the store, works, and the condition ends.
    r.store.fail.store(false, Ordering::SeqCst);
    std::thread::sleep(TEST_RETRY);
    assert_eq!(
        r.command(
            vec![Event::SessionStarted(start(3))],
            Reply::SessionStarted(3)
        ),
        Ok(Reply::SessionStarted(3))
    );
    assert!(!r.telemetry.store_health.failing());
    assert!(r.store.recovers.load(Ordering::SeqCst) >= 1);
    assert_eq!(r.applied().last(), Some(&None), "{:?}", r.applied());
    let written = r.store.written.lock().unwrap().clone();
    assert!(
        written.contains(&"session 3 started".to_string()),
        "{written:?}"
    );
    assert!(
        !written.contains(&"session 2 started".to_string()),
        "{written:?}"
    );
}

#[test]
fn counters_and_protocols_failures_raise_the_alarm_too() {
    // (A failed settings save is the settings file's: `settings_not_saved`, answered
    // `NotSaved`; see `runtime::settings` and the `settings_file` end-to-end test.)
    for item in [
        JournalItem::Counters(Counters::default()),
        JournalItem::Protocols(Vec::new()),
    ] {
        let r = rig();
        r.store.fail.store(true, Ordering::SeqCst);
        r.tx.send(item).unwrap();
        r.sync();
        assert!(r.telemetry.store_health.failing());
        assert_eq!(r.applied().len(), 1, "{:?}", r.applied());
        assert!(r.telemetry.store_write_errors.load(Ordering::Relaxed) >= 1);
    }
}

#[test]
fn an_idle_journal_retries_a_failing_store_by_itself() {
    let r = rig();
    r.store.fail.store(true, Ordering::SeqCst);
    r.tx.send(JournalItem::Counters(Counters::default()))
        .unwrap();
    r.sync();
    assert!(r.telemetry.store_health.failing());
    r.store.fail.store(false, Ordering::SeqCst);
    // Nothing is written; the journal's own retry brings the store back (bounded wait).
    // The health turns to working before the loop (the rig's thread) has applied it:
    // wait for both.
    let deadline = Instant::now() + Duration::from_secs(10);
    while (r.telemetry.store_health.failing() || r.applied().last() != Some(&None))
        && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!r.telemetry.store_health.failing(), "never retried");
    assert_eq!(r.applied().last(), Some(&None));
}
