//! Sessions, counters, protocols and settings through reopens; schema and open errors.

use super::*;

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
                code: "alarm:dry_run".into(),
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
