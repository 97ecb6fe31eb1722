//! Retention by age and by size, on the background thread.

use super::*;

#[test]
fn retention_expires_curves_before_records_and_alarms() {
    let (_dir, store) = opened_with(StoreConfig {
        curve_retention_days: 30,
        record_retention_days: 365,
        ..config()
    });
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
    let (_dir, store) = opened_with(StoreConfig {
        curve_retention_days: 0,
        max_size_mb: 1,
        ..config()
    });
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
    let (_dir, store) = opened_with(StoreConfig {
        curve_retention_days: 10,
        retention_check_s: 0.02,
        ..config()
    });
    session(&store, 1, T0, "co2", 100, Outcome::TargetReached);
    let now = Arc::new(AtomicI64::new(T0 + DAY));
    let clock_now = Arc::clone(&now);
    // The daemon's main runtime stands in: a worker of its own drives the task while this
    // thread waits.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let _in_runtime = rt.enter();
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
    rt.block_on(handle.stop());
}
