//! Child process of the treatment-log crash test (`tests/tests/store_crash.rs`).
//!
//! Usage: `store_crash_writer STATE_DIR`. Opens the store like the daemon does (closing any
//! session a previous crash left open), then writes sessions with curves and alarms until it
//! is killed. Each record whose `record()` returned `Ok` is printed on stdout, one line each,
//! flushed at once: `S <SessionStart json>`, `A <Alarm json>`, `E <sample count> <SessionRecord json>`.

use std::io::Write;
use std::time::Duration;

use anyhow::Context;
use coldsprayd::model::alarm::{Alarm, AlarmKind};
use coldsprayd::model::session::{Outcome, Sample, SessionRecord, SessionStart, StartCause};
use coldsprayd::protocol::Goal;
use coldsprayd::store::{LogStore, StoreConfig};
use coldsprayd::Event;

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// The curve point `i` of session `id` (the test recomputes it to check what survived).
fn sample(id: u64, i: u32) -> Sample {
    Sample {
        session_id: id,
        t_ms: i * 100,
        mist_c: Some(4.0 + f64::from(i % 5) * 0.1),
        skin_c: Some(42.0 - f64::from(i) * 0.1),
        reservoir_c: Some(3.5),
        pressure_bar: Some(1.2 + f64::from(i % 3) * 0.01),
        pump: true,
        valve: i.is_multiple_of(2),
    }
}

fn main() -> anyhow::Result<()> {
    let dir = std::env::args()
        .nth(1)
        .context("usage: store_crash_writer STATE_DIR")?;
    let config = StoreConfig {
        sample_batch: 10,
        ..StoreConfig::default()
    };
    let store = coldsprayd::store::open(&config, std::path::Path::new(&dir))?;
    store.close_open_sessions(now_ms())?;
    let mut id = store.next_session_id()?;
    let mut out = std::io::stdout().lock();
    loop {
        let t0 = now_ms();
        let start = SessionStart {
            id,
            protocol: format!("p{}", id % 5),
            goal: Goal::Protect,
            cause: StartCause::AutoStart,
            started_at: Duration::from_millis(id * 1000),
            started_unix_ms: t0,
            laser_to_spray_ms: Some(id as f64 * 1.5),
            late: id.is_multiple_of(7),
            skin_target_c: Some(30.0),
            skin_floor_c: 10.0,
        };
        store.record(&Event::SessionStarted(start.clone()))?;
        writeln!(out, "S {}", serde_json::to_string(&start)?)?;
        out.flush()?;
        let n = 10 + (id % 40) as u32;
        for i in 0..n {
            store.record(&Event::Sample(sample(id, i)))?;
            if i == n / 2 {
                let high = Alarm {
                    kind: AlarmKind::OverPressure,
                    priority: AlarmKind::OverPressure.priority(),
                    message: format!("session {id} over pressure"),
                    params: Default::default(),
                    raised_at: Duration::from_millis(id * 1000 + 50),
                    raised_unix_ms: now_ms(),
                    condition_present: true,
                    acknowledged: false,
                };
                store.record(&Event::AlarmRaised(high.clone()))?;
                writeln!(out, "A {}", serde_json::to_string(&high)?)?;
                out.flush()?;
                // A low-priority alarm is not durable: written, not acknowledged here.
                let low = Alarm {
                    kind: AlarmKind::ServiceDue,
                    priority: AlarmKind::ServiceDue.priority(),
                    message: format!("session {id} service due"),
                    params: Default::default(),
                    ..high
                };
                store.record(&Event::AlarmRaised(low))?;
            }
        }
        let record = SessionRecord {
            start: start.clone(),
            ended_at: start.started_at + Duration::from_millis(u64::from(n) * 100),
            ended_unix_ms: now_ms(),
            outcome: Outcome::DurationElapsed,
            peak_skin_c: Some(42.0),
            min_skin_c: Some(42.0 - f64::from(n - 1) * 0.1),
            time_to_target_ms: None,
            above_40_ms: Some(2000),
            spray_ms: u64::from(n) * 50,
            ended_by_alarm: None,
        };
        store.record(&Event::SessionEnded(record.clone()))?;
        writeln!(out, "E {n} {}", serde_json::to_string(&record)?)?;
        out.flush()?;
        id += 1;
    }
}
