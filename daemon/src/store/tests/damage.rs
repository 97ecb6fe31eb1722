//! Damaged records and files: reported and skipped, never fatal; lost records noticed at
//! open; a failed write recovered by a reopen.

use super::*;

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
    sessions_a_second_apart(&store, 1..=4, 120, Outcome::TargetReached);
    for id in 1..=4 {
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
        sessions_a_second_apart(&store, 1..=40, 100, Outcome::TargetReached);
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
        sessions_a_second_apart(&store, 1..=5, 10, Outcome::Stopped);
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
