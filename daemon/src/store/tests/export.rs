//! Export and statistics of a range.

use super::*;

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
