//! Tests of the sled treatment log on real sled files in temporary directories.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::sled_store::HIGH_WATER_FILE;
use super::*;
use crate::alarm::{Alarm, AlarmKind};
use crate::api::Counters;
use crate::protocol::{Goal, Protocol};
use crate::session::{SessionStart, StartCause};
use crate::state::UnitState;

const DAY: i64 = 86_400_000;
/// 2026-01-01T00:00:00Z.
const T0: i64 = 1_767_225_600_000;

fn start(id: u64, unix_ms: i64, protocol: &str, delay_ms: Option<f64>) -> SessionStart {
    SessionStart {
        id,
        protocol: protocol.into(),
        goal: Goal::Protect,
        cause: StartCause::AutoStart,
        started_at: Duration::from_millis(unix_ms.rem_euclid(1_000_000_000) as u64),
        started_unix_ms: unix_ms,
        laser_to_spray_ms: delay_ms,
        late: delay_ms.is_some_and(|d| d > 10_000.0),
        skin_target_c: Some(30.0),
        skin_floor_c: 10.0,
    }
}

fn samples(id: u64, n: u32) -> Vec<Sample> {
    (0..n)
        .map(|i| Sample {
            session_id: id,
            t_ms: i * 100,
            mist_c: Some(4.0 + f64::from(i % 7) * 0.01),
            skin_c: Some(45.0 - f64::from(i) * 0.05),
            reservoir_c: if i % 10 == 3 { None } else { Some(3.8) },
            pressure_bar: Some(1.5),
            pump: true,
            valve: !i.is_multiple_of(4),
        })
        .collect()
}

fn end(s: &SessionStart, outcome: Outcome, dur_ms: u64) -> SessionRecord {
    SessionRecord {
        start: s.clone(),
        ended_at: s.started_at + Duration::from_millis(dur_ms),
        ended_unix_ms: s.started_unix_ms + dur_ms as i64,
        outcome,
        peak_skin_c: Some(45.0),
        min_skin_c: Some(29.0),
        time_to_target_ms: Some(dur_ms / 2),
        above_40_ms: Some(1000),
        spray_ms: dur_ms,
        ended_by_alarm: None,
    }
}

fn alarm(kind: AlarmKind, unix_ms: i64) -> Alarm {
    Alarm {
        kind,
        priority: kind.priority(),
        message: format!("{} at {unix_ms}", kind.describe()),
        raised_at: Duration::from_secs(5),
        raised_unix_ms: unix_ms,
        condition_present: true,
        acknowledged: false,
    }
}

fn config() -> StoreConfig {
    StoreConfig {
        sample_batch: 50,
        ..StoreConfig::default()
    }
}

/// Records one whole session (start, `n` samples, end).
fn session(store: &SledStore, id: u64, at: i64, protocol: &str, n: u32, outcome: Outcome) {
    let s = start(id, at, protocol, Some(100.0 * id as f64));
    store.record(&Event::SessionStarted(s.clone())).unwrap();
    for smp in samples(id, n) {
        store.record(&Event::Sample(smp)).unwrap();
    }
    store
        .record(&Event::SessionEnded(end(&s, outcome, u64::from(n) * 100)))
        .unwrap();
}

#[test]
fn sessions_round_trip_through_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = open(&config(), dir.path()).unwrap();
        assert_eq!(store.next_session_id().unwrap(), 1);
        session(&store, 1, T0, "co2", 123, Outcome::TargetReached);
        session(&store, 2, T0 + 60_000, "pico", 10, Outcome::Stopped);
        session(&store, 3, T0 + DAY, "co2", 0, Outcome::Interlock);
        store
            .record(&Event::AlarmRaised(alarm(AlarmKind::DryRun, T0 + 5)))
            .unwrap();
        store
            .record(&Event::StateChanged {
                at: Duration::from_secs(1),
                unix_ms: T0 + 7,
                from: UnitState::Ready,
                to: UnitState::Fault,
                reason: "dry run".into(),
            })
            .unwrap();
        store
            .record(&Event::AlarmRaised(alarm(AlarmKind::LateStart, T0 + 9)))
            .unwrap();
    }
    let store = open(&config(), dir.path()).unwrap();
    assert_eq!(store.next_session_id().unwrap(), 4);
    let d = store.session(1).unwrap().unwrap();
    assert_eq!(
        d.record,
        end(
            &start(1, T0, "co2", Some(100.0)),
            Outcome::TargetReached,
            12_300
        )
    );
    let want = samples(1, 123);
    assert_eq!(d.samples.len(), want.len());
    for (a, b) in d.samples.iter().zip(&want) {
        assert_eq!(
            (a.t_ms, a.pump, a.valve, a.session_id),
            (b.t_ms, b.pump, b.valve, 1)
        );
        assert_eq!(a.reservoir_c.is_some(), b.reservoir_c.is_some());
        assert!((a.skin_c.unwrap() - b.skin_c.unwrap()).abs() < 0.006);
    }
    assert!(!store.is_open(1).unwrap());
    assert!(store.session(99).unwrap().is_none());

    let all = store.sessions(&SessionQuery::default()).unwrap();
    assert_eq!(
        all.iter().map(|r| r.id()).collect::<Vec<_>>(),
        vec![3, 2, 1]
    );
    let co2 = store
        .sessions(&SessionQuery {
            protocol: Some("co2".into()),
            ..SessionQuery::default()
        })
        .unwrap();
    assert_eq!(co2.iter().map(|r| r.id()).collect::<Vec<_>>(), vec![3, 1]);
    let day0 = store
        .sessions(&SessionQuery {
            from_unix_ms: Some(T0),
            to_unix_ms: Some(T0 + DAY),
            outcome: Some(Outcome::Stopped),
            ..SessionQuery::default()
        })
        .unwrap();
    assert_eq!(day0.iter().map(|r| r.id()).collect::<Vec<_>>(), vec![2]);
    let newest = store
        .sessions(&SessionQuery {
            limit: Some(1),
            ..SessionQuery::default()
        })
        .unwrap();
    assert_eq!(newest.len(), 1);
    assert_eq!(newest[0].id(), 3);

    let ev = store.events(T0, T0 + 8, None).unwrap();
    assert!(ev.problems.is_empty());
    assert_eq!(ev.value.len(), 2, "{:?}", ev.value);
    assert!(matches!(ev.value[0].event, Event::StateChanged { .. }));
    assert_eq!(
        ev.value[1].event,
        Event::AlarmRaised(alarm(AlarmKind::DryRun, T0 + 5))
    );
    assert_eq!(store.events(T0, T0 + 100, Some(1)).unwrap().value.len(), 1);
}

#[test]
fn a_session_left_open_is_closed_as_aborted_with_its_samples() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(7, T0, "co2", Some(50.0));
    {
        let store = open(&config(), dir.path()).unwrap();
        store.record(&Event::SessionStarted(s.clone())).unwrap();
        for smp in samples(7, 120) {
            store.record(&Event::Sample(smp)).unwrap();
        }
        assert!(store.is_open(7).unwrap());
        let live = store.session(7).unwrap().unwrap();
        assert_eq!(
            live.samples.len(),
            120,
            "buffered samples are visible while open"
        );
        assert_eq!(live.record.outcome, Outcome::Aborted);
        assert_eq!(
            store.sessions(&SessionQuery::default()).unwrap()[0].ended_unix_ms,
            T0
        );
    }
    let store = open(&config(), dir.path()).unwrap();
    assert!(store.is_open(7).unwrap());
    assert_eq!(store.close_open_sessions(T0 + DAY).unwrap(), vec![7]);
    assert!(!store.is_open(7).unwrap());
    let d = store.session(7).unwrap().unwrap();
    assert_eq!(d.samples.len(), 120);
    let r = &d.record;
    assert_eq!(r.outcome, Outcome::Aborted);
    assert_eq!(r.start, s);
    assert_eq!(r.ended_unix_ms, T0 + 11_900);
    assert_eq!(r.duration(), Duration::from_millis(11_900));
    assert_eq!(r.peak_skin_c, Some(45.0));
    assert!((r.min_skin_c.unwrap() - (45.0 - 119.0 * 0.05)).abs() < 0.006);
    // Valve open 3 of every 4 samples, each standing for 100 ms until the next one.
    let valve_ms: u64 = samples(7, 120)[..119].iter().filter(|s| s.valve).count() as u64 * 100;
    assert_eq!(r.spray_ms, valve_ms);
    assert_eq!(r.above_40_ms, Some(100 * 100));
    // Nothing left to close; the end time never passes `now`.
    assert!(store.close_open_sessions(T0 + DAY).unwrap().is_empty());
    store
        .record(&Event::SessionStarted(start(8, T0 + 100, "co2", None)))
        .unwrap();
    drop(store);
    let store = open(&config(), dir.path()).unwrap();
    assert_eq!(store.close_open_sessions(T0 + 50).unwrap(), vec![8]);
    assert_eq!(
        store.session(8).unwrap().unwrap().record.ended_unix_ms,
        T0 + 100
    );
}

#[test]
fn schema_versions_are_checked_and_migrated() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = open(&config(), dir.path()).unwrap();
        session(&store, 1, T0, "co2", 5, Outcome::Stopped);
        // Pretend the store predates the version key.
        store.raw_tree("meta").remove(b"schema_version").unwrap();
    }
    {
        let store = open(&config(), dir.path()).unwrap();
        let v = store
            .raw_tree("meta")
            .get(b"schema_version")
            .unwrap()
            .unwrap();
        assert_eq!(v.as_ref(), &SCHEMA_VERSION.to_be_bytes());
        assert_eq!(store.sessions(&SessionQuery::default()).unwrap().len(), 1);
        store
            .raw_tree("meta")
            .insert(b"schema_version", &999u32.to_be_bytes())
            .unwrap();
        store.flush().unwrap();
    }
    match open(&config(), dir.path()) {
        Err(StoreError::Open { path, reason, .. }) => {
            assert!(path.ends_with("/log"), "{path}");
            assert!(
                reason.contains("999") && reason.contains("newer"),
                "{reason}"
            );
        }
        other => panic!("expected an open error, got {other:?}"),
    }
}

#[test]
fn unopenable_stores_give_a_clear_open_error() {
    let dir = tempfile::tempdir().unwrap();
    // The state directory is a file: nothing can be created under it (holds even for root).
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, b"x").unwrap();
    let err = open(&config(), &file).unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, StoreError::Open { .. }), "{err:?}");
    assert!(text.contains("not-a-dir/log"), "{text}");

    // A second daemon on the same store: sled's lock refuses it.
    let first = open(&config(), dir.path()).unwrap();
    let err = open(&config(), dir.path()).unwrap_err();
    assert!(matches!(err, StoreError::Open { .. }), "{err:?}");
    drop(first);
    open(&config(), dir.path()).unwrap();

    let bad = StoreConfig {
        sample_batch: 0,
        ..config()
    };
    let err = open(&bad, dir.path()).unwrap_err();
    assert!(err.to_string().contains("sample_batch"), "{err}");
}

#[test]
fn counters_protocols_and_settings_persist() {
    let dir = tempfile::tempdir().unwrap();
    let counters = Counters {
        pump_seconds: 3600.5,
        chiller_seconds: 7200.0,
        sessions: 42,
        late_sessions: 3,
        water_changes: 7,
    };
    let mut protocols = Protocol::factory_defaults();
    protocols[0].spray_s = 33.0;
    let mut settings = Settings {
        setpoint_c: 6.5,
        ..Settings::default()
    };
    settings.set_offset(coldspray_hal::Sensor::Skin, -0.4);
    {
        let store = open(&config(), dir.path()).unwrap();
        assert_eq!(store.load_counters().unwrap(), None);
        assert_eq!(store.load_protocols().unwrap(), None);
        assert_eq!(store.load_settings().unwrap(), None);
        store.save_counters(&counters).unwrap();
        store.save_protocols(&protocols).unwrap();
        store.save_settings(&settings).unwrap();
    }
    let store = open(&config(), dir.path()).unwrap();
    assert_eq!(store.load_counters().unwrap(), Some(counters));
    assert_eq!(store.load_protocols().unwrap(), Some(protocols));
    let back = store.load_settings().unwrap().unwrap();
    assert_eq!(back.offset(coldspray_hal::Sensor::Skin), -0.4);
    assert_eq!(back.offset(coldspray_hal::Sensor::Mist), 0.0);
    assert_eq!(back, settings);
}

/// Flips one byte in the middle of a stored value through the sled API.
fn flip(tree: &sled::Tree, key: &[u8]) {
    let mut v = tree.get(key).unwrap().unwrap().to_vec();
    let i = v.len() / 2;
    v[i] ^= 0x5a;
    tree.insert(key, v).unwrap();
}

#[test]
fn corrupt_records_are_reported_and_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&config(), dir.path()).unwrap();
    for id in 1..=4 {
        session(
            &store,
            id,
            T0 + id as i64 * 1000,
            "co2",
            120,
            Outcome::TargetReached,
        );
        store
            .record(&Event::AlarmRaised(alarm(
                AlarmKind::OverPressure,
                T0 + id as i64,
            )))
            .unwrap();
    }
    store.save_counters(&Counters::default()).unwrap();
    // Damage session 2's record, the second chunk of session 3's curve, one event, counters.
    flip(&store.raw_tree("sessions"), &2u64.to_be_bytes());
    let chunk: Vec<u8> = [
        3u64.to_be_bytes().as_slice(),
        5000u32.to_be_bytes().as_slice(),
    ]
    .concat();
    flip(&store.raw_tree("samples"), &chunk);
    let event_key = store.raw_tree("events").iter().nth(1).unwrap().unwrap().0;
    flip(&store.raw_tree("events"), &event_key);
    flip(&store.raw_tree("meta"), b"counters");
    let before = store.problems_seen();

    let listed = store.sessions_checked(&SessionQuery::default()).unwrap();
    assert_eq!(
        listed.value.iter().map(|r| r.id()).collect::<Vec<_>>(),
        vec![4, 3, 1]
    );
    assert_eq!(listed.problems.len(), 1);
    assert!(
        matches!(&listed.problems[0], StoreError::Corrupt { key, reason }
            if key.starts_with("sessions/0000000000000002") && reason.contains("checksum")),
        "{:?}",
        listed.problems
    );
    let s2 = store.session_checked(2).unwrap();
    assert!(s2.value.is_none());
    assert_eq!(s2.problems.len(), 1);
    let s3 = store.session_checked(3).unwrap();
    assert_eq!(s3.problems.len(), 1);
    assert_eq!(
        s3.value.unwrap().samples.len(),
        70,
        "the other chunks survive"
    );
    let ev = store.events(i64::MIN, i64::MAX, None).unwrap();
    assert_eq!((ev.value.len(), ev.problems.len()), (3, 1));
    assert!(matches!(
        store.load_counters(),
        Err(StoreError::Corrupt { .. })
    ));
    assert!(store.problems_seen() > before);

    let mut out = Vec::new();
    let summary = store
        .export(&SessionQuery::default(), ExportFormat::Json, true, &mut out)
        .unwrap();
    assert_eq!((summary.sessions, summary.events), (3, 3));
    assert_eq!(summary.problems.len(), 3, "{:?}", summary.problems);
    let doc: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(doc["problems"].as_array().unwrap().len(), 3);
    let stats = store.stats(i64::MIN, i64::MAX).unwrap();
    assert_eq!((stats.sessions, stats.problems.len()), (3, 1));
    // A session left open whose record is damaged stays reported, not silently closed.
    store
        .record(&Event::SessionStarted(start(9, T0 + 9000, "co2", None)))
        .unwrap();
    flip(&store.raw_tree("sessions"), &9u64.to_be_bytes());
    assert!(store.close_open_sessions(T0 + DAY).unwrap().is_empty());
}

#[test]
fn bytes_flipped_in_the_file_on_disk_never_crash_the_reader() {
    // sled checksums its own log: damage on disk either fails the open with a clear error or
    // loses the damaged segment; every record read back must still be intact (our CRC).
    let dir = tempfile::tempdir().unwrap();
    {
        let store = open(&config(), dir.path()).unwrap();
        for id in 1..=40 {
            session(
                &store,
                id,
                T0 + id as i64 * 1000,
                "co2",
                100,
                Outcome::TargetReached,
            );
        }
    }
    let db_file = dir.path().join("log").join("db");
    let mut bytes = std::fs::read(&db_file).unwrap();
    let len = bytes.len();
    for i in (len / 3..len / 3 + 64).chain(len * 2 / 3..len * 2 / 3 + 64) {
        bytes[i] ^= 0xff;
    }
    std::fs::write(&db_file, &bytes).unwrap();
    match open(&config(), dir.path()) {
        Err(StoreError::Open { path, reason, .. }) => {
            assert!(path.ends_with("log") && !reason.is_empty());
        }
        Err(other) => panic!("wrong error kind: {other:?}"),
        Ok(store) => {
            let listed = store.sessions_checked(&SessionQuery::default()).unwrap();
            for r in &listed.value {
                let d = store.session_checked(r.id()).unwrap();
                if let Some(d) = d.value {
                    assert_eq!(d.record.start.id, r.id());
                    assert!(d
                        .samples
                        .iter()
                        .enumerate()
                        .all(|(i, s)| s.t_ms == i as u32 * 100 || d.samples.len() < 100));
                }
            }
            // If sled dropped the tail of its log, the high-water mark beside it says so.
            let last = listed.value.iter().map(|r| r.id()).max().unwrap_or(0);
            assert_eq!(
                last < 40,
                store.missing_at_open().is_some(),
                "last readable session {last}, report {:?}",
                store.missing_at_open()
            );
            assert!(store.next_session_id().unwrap() > 40);
            eprintln!(
                "on-disk damage: {} sessions readable, {} problems, missing: {:?}",
                listed.value.len(),
                listed.problems.len(),
                store.missing_at_open()
            );
        }
    }
}

#[test]
fn retention_expires_curves_before_records_and_alarms() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = StoreConfig {
        curve_retention_days: 30,
        record_retention_days: 365,
        ..config()
    };
    let store = open(&cfg, dir.path()).unwrap();
    for day in 0..100u64 {
        let at = T0 + day as i64 * DAY;
        session(&store, day + 1, at, "co2", 60, Outcome::TargetReached);
        store
            .record(&Event::AlarmRaised(alarm(AlarmKind::DryRun, at + 1)))
            .unwrap();
    }
    store
        .save_counters(&Counters {
            sessions: 100,
            ..Counters::default()
        })
        .unwrap();
    let now = T0 + 100 * DAY;
    let report = store.enforce_retention(now).unwrap();
    // Sessions started before day 70 lose their curve; the others keep it.
    assert_eq!(report.curves_expired, 70);
    assert_eq!((report.sessions_removed, report.events_removed), (0, 0));
    let old = store.session(70).unwrap().unwrap();
    assert!(old.samples.is_empty());
    assert_eq!(old.record.outcome, Outcome::TargetReached);
    assert_eq!(store.session(71).unwrap().unwrap().samples.len(), 60);
    assert_eq!(
        store.events(i64::MIN, i64::MAX, None).unwrap().value.len(),
        100
    );
    // A second pass at the same time has nothing to do.
    assert_eq!(
        store.enforce_retention(now).unwrap(),
        RetentionReport {
            live_bytes: report.live_bytes,
            ..RetentionReport::default()
        }
    );

    // A year and 20 days later: records and alarms older than 365 days go too.
    let later = T0 + (365 + 20) * DAY;
    let report = store.enforce_retention(later).unwrap();
    assert_eq!(report.curves_expired, 30);
    assert_eq!(report.sessions_removed, 20);
    assert_eq!(report.events_removed, 20);
    assert!(store.session(20).unwrap().is_none());
    assert!(store.session(21).unwrap().is_some());
    assert_eq!(store.load_counters().unwrap().unwrap().sessions, 100);
}

#[test]
fn size_cap_deletes_oldest_curves_only() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = StoreConfig {
        curve_retention_days: 0,
        max_size_mb: 1,
        ..config()
    };
    let store = open(&cfg, dir.path()).unwrap();
    // The packed curves take ~3 KB a session: 400 sessions are above the 1 MiB cap.
    for id in 1..=400u64 {
        session(
            &store,
            id,
            T0 + id as i64 * 60_000,
            "co2",
            1200,
            Outcome::TargetReached,
        );
        store
            .record(&Event::AlarmRaised(alarm(
                AlarmKind::DryRun,
                T0 + id as i64,
            )))
            .unwrap();
    }
    let before = store.live_bytes().unwrap();
    assert!(
        before > 1024 * 1024,
        "test needs more than the cap: {before}"
    );
    let report = store.enforce_retention(T0 + DAY).unwrap();
    assert!(report.curves_for_space > 0);
    assert!(report.live_bytes <= 1024 * 1024 / 10 * 9, "{report:?}");
    // Oldest curves went first; the newest kept theirs; no record or alarm went.
    assert!(store.session(1).unwrap().unwrap().samples.is_empty());
    assert_eq!(store.session(400).unwrap().unwrap().samples.len(), 1200);
    assert_eq!(store.sessions(&SessionQuery::default()).unwrap().len(), 400);
    assert_eq!(
        store.events(i64::MIN, i64::MAX, None).unwrap().value.len(),
        400
    );
}

#[test]
fn background_retention_follows_the_injected_clock() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = StoreConfig {
        curve_retention_days: 10,
        retention_check_s: 0.02,
        ..config()
    };
    let store = open(&cfg, dir.path()).unwrap();
    session(&store, 1, T0, "co2", 100, Outcome::TargetReached);
    let now = Arc::new(AtomicI64::new(T0 + DAY));
    let clock_now = Arc::clone(&now);
    let handle = store
        .spawn_retention(Arc::new(move || clock_now.load(Ordering::SeqCst)))
        .unwrap();
    let wait_runs = |n: u64| {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while handle.runs() < n {
            assert!(
                std::time::Instant::now() < deadline,
                "retention thread stalled"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    };
    wait_runs(2);
    assert_eq!(store.session(1).unwrap().unwrap().samples.len(), 100);
    // The control loop keeps recording while the thread runs.
    session(&store, 2, T0 + 2 * DAY, "co2", 100, Outcome::TargetReached);
    now.store(T0 + 11 * DAY + 1, Ordering::SeqCst);
    let seen = handle.runs();
    wait_runs(seen + 2);
    assert!(store.session(1).unwrap().unwrap().samples.is_empty());
    assert_eq!(store.session(2).unwrap().unwrap().samples.len(), 100);
    assert_eq!(handle.failures(), 0);
    handle.stop();
}

#[test]
fn export_writes_csv_and_json_of_a_range() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&config(), dir.path()).unwrap();
    session(&store, 1, T0, "co2", 30, Outcome::TargetReached);
    session(&store, 2, T0 + DAY, "pico", 20, Outcome::Stopped);
    session(&store, 3, T0 + 2 * DAY, "co2", 10, Outcome::Interlock);
    store
        .record(&Event::AlarmRaised(alarm(
            AlarmKind::SensorStale(coldspray_hal::Sensor::Skin),
            T0 + DAY + 5,
        )))
        .unwrap();
    let q = SessionQuery {
        from_unix_ms: Some(T0),
        to_unix_ms: Some(T0 + 2 * DAY),
        ..SessionQuery::default()
    };
    let mut csv = Vec::new();
    let summary = store.export(&q, ExportFormat::Csv, true, &mut csv).unwrap();
    assert_eq!(
        (summary.sessions, summary.samples, summary.events),
        (2, 50, 1)
    );
    let text = String::from_utf8(csv).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "# sessions");
    assert!(lines[1].starts_with("id,protocol,goal"));
    assert!(
        lines[2].starts_with("1,co2,protect,auto_start,1767225600000,2026-01-01T00:00:00.000Z,")
    );
    assert!(lines[3].starts_with("2,pico,"));
    let samples_at = lines.iter().position(|l| *l == "# samples").unwrap();
    let events_at = lines.iter().position(|l| *l == "# events").unwrap();
    assert_eq!(events_at - samples_at, 50 + 3);
    assert!(lines[events_at + 2].contains("alarm_raised,sensor_stale:skin,high,"));
    let header_cols = lines[1].split(',').count();
    assert!(lines[2..4]
        .iter()
        .all(|l| l.split(',').count() == header_cols));

    let mut json = Vec::new();
    store
        .export(&q, ExportFormat::Json, false, &mut json)
        .unwrap();
    let doc: serde_json::Value = serde_json::from_slice(&json).unwrap();
    let sessions = doc["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 2);
    let first: SessionRecord = serde_json::from_value(sessions[0]["record"].clone()).unwrap();
    assert_eq!(first.id(), 1);
    assert!(sessions[0].get("samples").is_none());
    assert_eq!(doc["events"].as_array().unwrap().len(), 1);
    assert_eq!(doc["schema"], SCHEMA_VERSION);
}

#[test]
fn stats_count_days_late_starts_and_delays() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&config(), dir.path()).unwrap();
    // Delays 100·id ms; late above 10 s is never reached, so mark two late explicitly.
    for (id, at) in [(1u64, T0), (2, T0 + 3_600_000), (3, T0 + DAY + 5)] {
        session(&store, id, at, "co2", 5, Outcome::TargetReached);
    }
    let mut late = start(4, T0 + DAY + 10, "pico", Some(15_000.0));
    late.late = true;
    store.record(&Event::SessionStarted(late.clone())).unwrap();
    store
        .record(&Event::SessionEnded(end(
            &late,
            Outcome::DurationElapsed,
            1000,
        )))
        .unwrap();
    let mut no_laser = start(5, T0 + 2 * DAY, "co2", None);
    no_laser.late = false;
    store
        .record(&Event::SessionStarted(no_laser.clone()))
        .unwrap();
    store
        .record(&Event::SessionEnded(end(&no_laser, Outcome::Stopped, 1000)))
        .unwrap();

    let s = store.stats(T0, T0 + 3 * DAY).unwrap();
    assert_eq!(s.sessions, 5);
    assert_eq!(s.late_starts, 1);
    assert_eq!(s.with_laser_delay, 4);
    let mean = (100.0 + 200.0 + 300.0 + 15_000.0) / 4.0;
    assert!((s.mean_laser_to_spray_ms.unwrap() - mean).abs() < 1e-9);
    assert_eq!(s.max_laser_to_spray_ms, Some(15_000.0));
    assert_eq!(s.sessions_per_day.get("2026-01-01"), Some(&2));
    assert_eq!(s.sessions_per_day.get("2026-01-02"), Some(&2));
    assert_eq!(s.sessions_per_day.get("2026-01-03"), Some(&1));
    assert_eq!(s.by_outcome.get("target_reached"), Some(&3));
    let one_day = store.stats(T0 + DAY, T0 + 2 * DAY).unwrap();
    assert_eq!(one_day.sessions, 2);
    assert_eq!(
        store.stats(T0 - DAY, T0).unwrap().mean_laser_to_spray_ms,
        None
    );
}

#[test]
fn curve_chunks_of_the_first_layout_are_still_read_from_disk() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = open(&config(), dir.path()).unwrap();
        session(&store, 9, T0, "co2", 0, Outcome::Stopped);
        // A chunk written by the first encoder, as an older build left it on disk.
        store
            .raw_tree("samples")
            .insert(chunk_key_for_test(9, 0), &super::codec::V1_CHUNK[..])
            .unwrap();
        store.flush().unwrap();
    }
    let store = open(&config(), dir.path()).unwrap();
    let got = store.session_checked(9).unwrap();
    assert!(got.problems.is_empty(), "{:?}", got.problems);
    let samples = got.value.unwrap().samples;
    assert_eq!(samples.len(), 6);
    assert_eq!(samples[4].t_ms, 407);
    assert_eq!(samples[2].skin_c, None);
    assert!((samples[3].skin_c.unwrap() - 40.87).abs() < 1e-9);
    assert!((samples[4].pressure_bar.unwrap() - 1.498).abs() < 1e-9);
    assert_eq!((samples[1].pump, samples[1].valve), (true, true));
}

fn chunk_key_for_test(id: u64, first_t_ms: u32) -> Vec<u8> {
    let mut k = id.to_be_bytes().to_vec();
    k.extend_from_slice(&first_t_ms.to_be_bytes());
    k
}

#[test]
fn sessions_lost_behind_the_high_water_mark_are_reported_at_open() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = open(&config(), dir.path()).unwrap();
        for id in 1..=5 {
            session(
                &store,
                id,
                T0 + id as i64 * 1000,
                "co2",
                10,
                Outcome::Stopped,
            );
        }
        assert!(store.missing_at_open().is_none());
    }
    assert!(dir.path().join("log").join(HIGH_WATER_FILE).exists());
    {
        // Nothing lost: no report.
        let store = open(&config(), dir.path()).unwrap();
        assert!(store.missing_at_open().is_none());
        assert_eq!(store.problems_seen(), 0);
        // What sled does after damage in its log: the newest records are gone.
        for id in 4..=5u64 {
            store.raw_tree("sessions").remove(id.to_be_bytes()).unwrap();
        }
        store.flush().unwrap();
    }
    let store = open(&config(), dir.path()).unwrap();
    let msg = store.missing_at_open().expect("missing sessions reported");
    assert!(
        msg.contains("up to 5") && msg.contains("session 3"),
        "{msg}"
    );
    assert_eq!(store.problems_seen(), 1);
    // Lost ids are not handed out again; once newer sessions exist the report ends.
    assert_eq!(store.next_session_id().unwrap(), 6);
    session(&store, 6, T0 + 6000, "co2", 10, Outcome::Stopped);
    drop(store);
    let store = open(&config(), dir.path()).unwrap();
    assert!(store.missing_at_open().is_none());
    // A damaged mark is ignored, never fatal.
    drop(store);
    std::fs::write(dir.path().join("log").join(HIGH_WATER_FILE), b"garbage").unwrap();
    let store = open(&config(), dir.path()).unwrap();
    assert!(store.missing_at_open().is_none());
    assert_eq!(store.next_session_id().unwrap(), 7);
}

/// A session whose opening record cannot be written still spends its id: the high-water mark
/// takes it, so neither the open store nor a restart hands it out again, and the restart
/// reports the loss. After a reopen the store writes again, without a restart.
#[test]
fn a_failed_write_keeps_the_id_and_a_reopen_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&config(), dir.path()).unwrap();
    for id in 1..=3 {
        session(
            &store,
            id,
            T0 + id as i64 * 60_000,
            "co2",
            10,
            Outcome::Stopped,
        );
    }
    store.close_for_test();
    let lost = start(4, T0 + 4 * 60_000, "co2", None);
    assert!(
        store.record(&Event::SessionStarted(lost.clone())).is_err(),
        "a closed store reports the failed write"
    );
    assert!(store
        .record(&Event::SessionEnded(end(&lost, Outcome::Stopped, 10)))
        .is_err());
    assert_eq!(store.next_session_id().ok(), None, "no answer while closed");

    store.reopen().expect("reopen");
    assert_eq!(store.next_session_id().unwrap(), 5, "id 4 was spent");
    session(&store, 5, T0 + 5 * 60_000, "co2", 10, Outcome::Stopped);
    let ids: Vec<u64> = store
        .sessions(&SessionQuery::default())
        .unwrap()
        .iter()
        .map(|r| r.id())
        .collect();
    assert_eq!(ids, vec![5, 3, 2, 1]);
    drop(store);

    // The lost id is still spent after a restart, whatever the log holds.
    let dir2 = tempfile::tempdir().unwrap();
    let store = open(&config(), dir2.path()).unwrap();
    session(&store, 1, T0, "co2", 10, Outcome::Stopped);
    store.close_for_test();
    assert!(store
        .record(&Event::SessionStarted(start(2, T0 + 60_000, "co2", None)))
        .is_err());
    drop(store);
    let store = open(&config(), dir2.path()).unwrap();
    assert_eq!(
        store.next_session_id().unwrap(),
        3,
        "id 2 is not handed out twice"
    );
    assert!(
        store.missing_at_open().is_some(),
        "the restart reports the session that was not recorded"
    );
}
