//! Tests of the sled treatment log on real sled files in temporary directories; the helpers
//! that build sessions are here, the tests by concern beside.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::sled_store::HIGH_WATER_FILE;
use super::*;
use crate::api::Counters;
use crate::model::alarm::{Alarm, AlarmKind};
use crate::model::session::{SessionStart, StartCause};
use crate::model::state::UnitState;
use crate::protocol::{Goal, Protocol};

mod damage;
mod export;
mod retention;
mod sessions;

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
        params: Default::default(),
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

/// Sessions `ids` of protocol "co2", one a second from `T0`, each with `n` samples.
fn sessions_a_second_apart(
    store: &SledStore,
    ids: std::ops::RangeInclusive<u64>,
    n: u32,
    outcome: Outcome,
) {
    for id in ids {
        session(store, id, T0 + id as i64 * 1000, "co2", n, outcome);
    }
}

/// A store opened with `cfg` in a fresh temporary directory (removed when dropped).
fn opened_with(cfg: StoreConfig) -> (tempfile::TempDir, SledStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&cfg, dir.path()).unwrap();
    (dir, store)
}
