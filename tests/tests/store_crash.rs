//! Crash test of the treatment log: a child process writes sessions and alarms and is
//! SIGKILLed at random points, again and again on the same store. After every kill the
//! store must open, every record the child acknowledged (printed after `record()` returned
//! `Ok`) must be there and intact, and the session the kill interrupted must be closed as
//! aborted by `close_open_sessions`, with an intact prefix of its curve.
//!
//! `COLDSPRAY_CRASH_KILLS` sets the number of kills (default 60); `COLDSPRAY_CRASH_SEED`
//! replays a run (the seed is printed).

use std::collections::{BTreeMap, HashSet};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use coldsprayd::model::alarm::Alarm;
use coldsprayd::model::session::{Outcome, SessionRecord, SessionStart};
use coldsprayd::store::{LogStore, StoreConfig};
use coldsprayd::Event;

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

/// What the child acknowledged over all runs.
#[derive(Default)]
struct Acked {
    starts: BTreeMap<u64, SessionStart>,
    ends: BTreeMap<u64, (u32, SessionRecord)>,
    alarms: Vec<Alarm>,
}

/// Starts the child, waits for its first acknowledged line when `after_first` (else from
/// spawn), sleeps `delay`, SIGKILLs it, and returns its complete stdout lines.
fn run_and_kill(dir: &std::path::Path, after_first: bool, delay: Duration) -> Vec<String> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_store_crash_writer"))
        .arg(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn the writer");
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        let mut r = BufReader::new(stdout);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match r.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => break,
                // A line cut by the kill was not acknowledged completely: ignore it.
                Ok(_) if buf.last() != Some(&b'\n') => break,
                Ok(_) => {
                    if tx
                        .send(String::from_utf8(buf.clone()).expect("utf-8 line"))
                        .is_err()
                    {
                        break;
                    }
                }
            }
        }
    });
    let mut lines = Vec::new();
    if after_first {
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(line) => lines.push(line),
            Err(e) => panic!("the writer printed nothing: {e}"),
        }
    }
    std::thread::sleep(delay);
    match child.try_wait().expect("poll the writer") {
        Some(status) => panic!("the writer exited by itself: {status}"),
        None => child.kill().expect("SIGKILL the writer"),
    }
    child.wait().expect("reap the writer");
    reader.join().expect("reader thread");
    lines.extend(rx.try_iter());
    lines
}

#[test]
fn acknowledged_records_survive_sigkill_at_random_points() {
    let _ticket = coldspray_e2e::gate::alone();
    let kills: usize = std::env::var("COLDSPRAY_CRASH_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(60);
    let seed: u64 = std::env::var("COLDSPRAY_CRASH_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1)
                | 1
        });
    eprintln!("crash test: {kills} kills, COLDSPRAY_CRASH_SEED={seed}");
    let mut rng = Rng(seed);
    let dir = tempfile::tempdir().expect("temp dir");
    let mut acked = Acked::default();
    let mut mid_session_kills = 0;
    let mut aborted_total = 0;
    let mut closed_unacked = 0;

    for round in 0..kills {
        // Mostly 0–150 ms after the first acknowledged record (mid-run), sometimes 0–60 ms
        // after spawn (during start-up, open and the closing of the previous open session).
        let after_first = !rng.next().is_multiple_of(5);
        let delay_ms = if after_first {
            rng.next() % 150
        } else {
            rng.next() % 60
        };
        let lines = run_and_kill(dir.path(), after_first, Duration::from_millis(delay_ms));
        let mut open_in_round: Option<u64> = None;
        for line in &lines {
            let line = line.trim_end();
            let (tag, rest) = line.split_once(' ').expect("tagged line");
            match tag {
                "S" => {
                    let s: SessionStart = serde_json::from_str(rest).expect("start json");
                    open_in_round = Some(s.id);
                    acked.starts.insert(s.id, s);
                }
                "A" => acked
                    .alarms
                    .push(serde_json::from_str(rest).expect("alarm json")),
                "E" => {
                    let (n, json) = rest.split_once(' ').expect("count and record");
                    let r: SessionRecord = serde_json::from_str(json).expect("record json");
                    assert_eq!(open_in_round, Some(r.id()));
                    open_in_round = None;
                    acked.ends.insert(r.id(), (n.parse().expect("count"), r));
                }
                other => panic!("unexpected line tag {other:?}"),
            }
        }

        let store = coldsprayd::store::open(&StoreConfig::default(), dir.path())
            .unwrap_or_else(|e| panic!("round {round}: store does not open after SIGKILL: {e}"));
        let aborted = store
            .close_open_sessions(now_ms())
            .expect("close open sessions");
        aborted_total += aborted.len();
        if let Some(id) = open_in_round {
            mid_session_kills += 1;
            // Either the kill came before the closing record (then the session must be found
            // open and aborted) or between writing it and printing it (then it is closed).
            if !aborted.contains(&id) {
                let d = store.session(id).expect("read").expect("session present");
                assert_eq!(
                    d.record.outcome,
                    Outcome::DurationElapsed,
                    "round {round}: acknowledged open session {id} neither aborted nor closed \
                     ({aborted:?})"
                );
                closed_unacked += 1;
            }
        }
        for id in &aborted {
            let d = store
                .session(*id)
                .expect("read")
                .expect("aborted session present");
            assert_eq!(d.record.outcome, Outcome::Aborted);
            for (i, s) in d.samples.iter().enumerate() {
                assert_eq!(
                    s.t_ms,
                    i as u32 * 100,
                    "round {round}: session {id} curve gap"
                );
                let skin = 42.0 - i as f64 * 0.1;
                assert!((s.skin_c.expect("skin") - skin).abs() < 0.006);
            }
            // The end is the last stored sample, never later than the wall clock at close.
            let span = d.record.ended_at - d.record.start.started_at;
            assert_eq!(
                span.as_millis() as i64,
                d.record.ended_unix_ms - d.record.start.started_unix_ms
            );
            let last = d.samples.last().map_or(0, |s| u64::from(s.t_ms));
            assert!(span <= Duration::from_millis(last));
        }

        // Everything acknowledged so far, in this round or before, is present and intact.
        for (id, start) in &acked.starts {
            let d = store
                .session(*id)
                .expect("read")
                .unwrap_or_else(|| panic!("round {round}: acknowledged session {id} is missing"));
            assert_eq!(
                &d.record.start, start,
                "round {round}: session {id} start differs"
            );
            match acked.ends.get(id) {
                Some((n, record)) => {
                    assert_eq!(
                        &d.record, record,
                        "round {round}: session {id} record differs"
                    );
                    assert_eq!(
                        d.samples.len(),
                        *n as usize,
                        "round {round}: session {id} curve"
                    );
                }
                // Aborted, or closed by a record written just before the kill.
                None => assert!(
                    matches!(
                        d.record.outcome,
                        Outcome::Aborted | Outcome::DurationElapsed
                    ),
                    "session {id}: {:?}",
                    d.record.outcome
                ),
            }
        }
        let logged: HashSet<String> = store
            .events(i64::MIN, i64::MAX, None)
            .expect("events")
            .value
            .into_iter()
            .filter_map(|e| match e.event {
                Event::AlarmRaised(a) => Some(serde_json::to_string(&a).expect("json")),
                _ => None,
            })
            .collect();
        for a in &acked.alarms {
            let json = serde_json::to_string(a).expect("json");
            assert!(
                logged.contains(&json),
                "round {round}: acknowledged alarm lost: {json}"
            );
        }
        let problems = store
            .sessions_checked(&Default::default())
            .expect("list")
            .problems;
        assert!(
            problems.is_empty(),
            "round {round}: unreadable records {problems:?}"
        );
        drop(store);
    }
    eprintln!(
        "crash test: {kills} kills, {} sessions and {} high alarms acknowledged, \
         {mid_session_kills} kills inside an acknowledged session ({closed_unacked} of them after \
         the unacknowledged close), {aborted_total} sessions aborted",
        acked.starts.len(),
        acked.alarms.len()
    );
    assert!(
        acked.ends.len() >= kills / 4,
        "the writer made too little progress to test"
    );
    assert!(
        mid_session_kills >= kills / 10,
        "too few kills landed inside a session"
    );
}
