//! A year of a busy clinic in the treatment log, against the same data in SQLite.
//!
//! 20 sessions a day of 2 minutes with 10 Hz curves (1200 samples each), 3 alarms a day
//! (one high, two low) and 2 state changes per session, written through `LogStore::record`
//! exactly as the daemon does (durable records flushed). Prints disk size, write throughput,
//! time to open, p50/p99 to fetch one session with its curve, and time to export a month
//! (CSV with curves), for sled and for SQLite (WAL, synchronous=FULL, one row per sample),
//! with sled/SQLite ratios. Goals: ≤ 100 MB/year, fetch ≤ 10 ms, open ≤ 1 s.
//!
//! `COLDSPRAY_BENCH_DAYS` (default 365) shortens the run for CI.

use std::io::Write;
use std::time::{Duration, Instant};

use coldsprayd::model::alarm::{Alarm, AlarmKind};
use coldsprayd::model::session::{Outcome, Sample, SessionRecord, SessionStart, StartCause};
use coldsprayd::model::state::UnitState;
use coldsprayd::protocol::Goal;
use coldsprayd::store::{self, ExportFormat, LogStore, SessionQuery, StoreConfig};
use coldsprayd::Event;

const DAY: i64 = 86_400_000;
/// 2025-01-01T00:00:00Z.
const T0: i64 = 1_735_689_600_000;
const SESSIONS_PER_DAY: u64 = 20;
const SAMPLES: u32 = 1200;

struct Counting(u64);
impl Write for Counting {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len() as u64;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// One generated session: its events in order.
struct Gen {
    start: SessionStart,
    samples: Vec<Sample>,
    end: SessionRecord,
}

fn generate(id: u64, at: i64, rng: &mut Rng) -> Gen {
    let delay = 150.0
        + rng.unit() * 3000.0
        + if rng.next().is_multiple_of(25) {
            15_000.0
        } else {
            0.0
        };
    let start = SessionStart {
        id,
        protocol: [
            "pico",
            "nd_yag",
            "co2_fractional",
            "hifu",
            "rf_microneedling",
        ][(id % 5) as usize]
            .into(),
        goal: if id % 5 >= 3 {
            Goal::Prepare
        } else {
            Goal::Protect
        },
        cause: StartCause::AutoStart,
        started_at: Duration::from_millis((at - T0) as u64),
        started_unix_ms: at,
        laser_to_spray_ms: Some(delay),
        late: delay > 10_000.0,
        skin_target_c: Some(30.0),
        skin_floor_c: 10.0,
    };
    let mut skin = 44.0 + rng.unit() * 4.0;
    let mut mist = 4.0;
    let mut reservoir = 4.0 + rng.unit() * 0.3;
    let samples: Vec<Sample> = (0..SAMPLES)
        .map(|i| {
            skin += (29.0 - skin) * 0.01 + (rng.unit() - 0.5) * 0.08;
            mist += (4.2 - mist) * 0.1 + (rng.unit() - 0.5) * 0.04;
            reservoir += (rng.unit() - 0.5) * 0.02;
            Sample {
                session_id: id,
                t_ms: i * 100,
                mist_c: Some(mist),
                skin_c: Some(skin),
                reservoir_c: Some(reservoir),
                pressure_bar: Some(1.5 + (rng.unit() - 0.5) * 0.05),
                pump: true,
                valve: (i / 3).is_multiple_of(2),
            }
        })
        .collect();
    let end = SessionRecord {
        start: start.clone(),
        ended_at: start.started_at + Duration::from_millis(u64::from(SAMPLES) * 100),
        ended_unix_ms: at + i64::from(SAMPLES) * 100,
        outcome: Outcome::TargetReached,
        peak_skin_c: Some(48.0),
        min_skin_c: Some(29.0),
        time_to_target_ms: Some(60_000),
        above_40_ms: Some(5_000),
        spray_ms: 60_000,
        ended_by_alarm: None,
    };
    Gen {
        start,
        samples,
        end,
    }
}

fn alarm(kind: AlarmKind, at: i64) -> Alarm {
    Alarm {
        kind,
        priority: kind.priority(),
        message: kind.describe(),
        params: Default::default(),
        raised_at: Duration::from_millis((at - T0) as u64),
        raised_unix_ms: at,
        condition_present: true,
        acknowledged: false,
    }
}

fn state(at: i64, from: UnitState, to: UnitState) -> Event {
    Event::StateChanged {
        at: Duration::from_millis((at - T0) as u64),
        unix_ms: at,
        from,
        to,
        reason: "session".into(),
        code: String::new(),
    }
}

fn dir_size(path: &std::path::Path) -> u64 {
    let mut total = 0;
    if let Ok(entries) = std::fs::read_dir(path) {
        for e in entries.flatten() {
            let p = e.path();
            total += if p.is_dir() {
                dir_size(&p)
            } else {
                e.metadata().map_or(0, |m| m.len())
            };
        }
    }
    total
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

struct Figures {
    bytes: u64,
    write: Duration,
    open: Duration,
    p50: Duration,
    p99: Duration,
    export: Duration,
    export_bytes: u64,
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn bench_sled(days: i64, dir: &std::path::Path) -> Figures {
    let config = StoreConfig {
        curve_retention_days: 0,
        max_size_mb: 100_000,
        ..StoreConfig::default()
    };
    let mut rng = Rng(0x5eed);
    let s = store::open(&config, dir).expect("open");
    let t = Instant::now();
    let mut id = 1;
    for day in 0..days {
        let base = T0 + day * DAY + 8 * 3_600_000;
        for k in 0..SESSIONS_PER_DAY {
            let at = base + k as i64 * 1_500_000;
            let g = generate(id, at, &mut rng);
            s.record(&state(at, UnitState::Ready, UnitState::Spraying))
                .expect("record");
            s.record(&Event::SessionStarted(g.start)).expect("record");
            for smp in g.samples {
                s.record(&Event::Sample(smp)).expect("record");
            }
            s.record(&Event::SessionEnded(g.end)).expect("record");
            s.record(&state(at + 120_000, UnitState::Spraying, UnitState::Ready))
                .expect("record");
            id += 1;
        }
        s.record(&Event::AlarmRaised(alarm(AlarmKind::DryRun, base + 100)))
            .expect("alarm");
        s.record(&Event::AlarmRaised(alarm(AlarmKind::LateStart, base + 200)))
            .expect("alarm");
        s.record(&Event::AlarmRaised(alarm(
            AlarmKind::ServiceDue,
            base + 300,
        )))
        .expect("alarm");
    }
    s.flush().expect("flush");
    let write = t.elapsed();
    let live = s.live_bytes().expect("live");
    let sled_size = s.size_on_disk().expect("size");
    drop(s);
    std::thread::sleep(Duration::from_millis(200));
    let bytes = dir_size(dir);
    println!(
        "sled: live data {:.1} MB, sled size_on_disk {:.1} MB, directory {:.1} MB (space amplification {:.2}x)",
        live as f64 / 1e6,
        sled_size as f64 / 1e6,
        bytes as f64 / 1e6,
        bytes as f64 / live as f64
    );
    let mut opens = Vec::new();
    let mut s = None;
    for _ in 0..3 {
        drop(s.take());
        std::thread::sleep(Duration::from_millis(100));
        let t = Instant::now();
        let opened = store::open(&config, dir).expect("reopen");
        opens.push(t.elapsed());
        s = Some(opened);
    }
    let s = s.expect("opened");
    opens.sort();
    let mut fetches = Vec::new();
    for _ in 0..300 {
        let id = 1 + rng.next() % (id - 1);
        let t = Instant::now();
        let d = s.session(id).expect("fetch").expect("present");
        fetches.push(t.elapsed());
        assert_eq!(d.samples.len(), SAMPLES as usize);
    }
    fetches.sort();
    let from = T0 + (days - 30).max(0) * DAY;
    let q = SessionQuery {
        from_unix_ms: Some(from),
        to_unix_ms: Some(T0 + days * DAY),
        ..SessionQuery::default()
    };
    let mut out = Counting(0);
    let t = Instant::now();
    let summary = s
        .export(&q, ExportFormat::Csv, true, &mut out)
        .expect("export");
    let export = t.elapsed();
    assert!(summary.problems.is_empty());
    let mut json = Counting(0);
    let t = Instant::now();
    s.export(&q, ExportFormat::Json, true, &mut json)
        .expect("export");
    println!(
        "sled: month export CSV {} sessions {} samples {:.1} MB in {:.0} ms; JSON {:.1} MB in {:.0} ms",
        summary.sessions,
        summary.samples,
        out.0 as f64 / 1e6,
        ms(export),
        json.0 as f64 / 1e6,
        ms(t.elapsed())
    );
    let t = Instant::now();
    let stats = s.stats(T0, T0 + days * DAY).expect("stats");
    println!(
        "sled: stats over the whole range in {:.0} ms: {} sessions, {} late, mean delay {:.0} ms",
        ms(t.elapsed()),
        stats.sessions,
        stats.late_starts,
        stats.mean_laser_to_spray_ms.unwrap_or(0.0)
    );
    Figures {
        bytes,
        write,
        open: opens[1],
        p50: pct(&fetches, 0.5),
        p99: pct(&fetches, 0.99),
        export,
        export_bytes: out.0,
    }
}

fn bench_sqlite(days: i64, dir: &std::path::Path) -> Figures {
    let path = dir.join("log.sqlite");
    let schema = "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;
        CREATE TABLE IF NOT EXISTS sessions (id INTEGER PRIMARY KEY, started_unix_ms INTEGER NOT NULL,
            protocol TEXT NOT NULL, outcome TEXT, open INTEGER NOT NULL, record TEXT NOT NULL);
        CREATE INDEX IF NOT EXISTS sessions_time ON sessions(started_unix_ms);
        CREATE TABLE IF NOT EXISTS samples (session_id INTEGER NOT NULL, t_ms INTEGER NOT NULL,
            mist_c REAL, skin_c REAL, reservoir_c REAL, pressure_bar REAL, pump INTEGER, valve INTEGER,
            PRIMARY KEY (session_id, t_ms)) WITHOUT ROWID;
        CREATE TABLE IF NOT EXISTS events (id INTEGER PRIMARY KEY, unix_ms INTEGER NOT NULL, event TEXT NOT NULL);
        CREATE INDEX IF NOT EXISTS events_time ON events(unix_ms);";
    let mut rng = Rng(0x5eed);
    let mut db = rusqlite::Connection::open(&path).expect("sqlite open");
    db.execute_batch(schema).expect("schema");
    let t = Instant::now();
    let mut id = 1u64;
    let log_event = |db: &rusqlite::Connection, e: &Event, at: i64| {
        db.execute(
            "INSERT INTO events (unix_ms, event) VALUES (?1, ?2)",
            rusqlite::params![at, serde_json::to_string(e).expect("json")],
        )
        .expect("event");
    };
    for day in 0..days {
        let base = T0 + day * DAY + 8 * 3_600_000;
        for k in 0..SESSIONS_PER_DAY {
            let at = base + k as i64 * 1_500_000;
            let g = generate(id, at, &mut rng);
            log_event(&db, &state(at, UnitState::Ready, UnitState::Spraying), at);
            db.execute(
                "INSERT INTO sessions (id, started_unix_ms, protocol, open, record) VALUES (?1, ?2, ?3, 1, ?4)",
                rusqlite::params![id as i64, at, g.start.protocol, serde_json::to_string(&g.start).expect("json")],
            )
            .expect("start");
            for chunk in g.samples.chunks(50) {
                let tx = db.transaction().expect("tx");
                {
                    let mut st = tx
                        .prepare_cached(
                            "INSERT INTO samples VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                        )
                        .expect("prepare");
                    for s in chunk {
                        st.execute(rusqlite::params![
                            id as i64,
                            s.t_ms,
                            s.mist_c,
                            s.skin_c,
                            s.reservoir_c,
                            s.pressure_bar,
                            s.pump,
                            s.valve
                        ])
                        .expect("sample");
                    }
                }
                tx.commit().expect("commit");
            }
            db.execute(
                "UPDATE sessions SET outcome = ?2, open = 0, record = ?3 WHERE id = ?1",
                rusqlite::params![
                    id as i64,
                    g.end.outcome.name(),
                    serde_json::to_string(&g.end).expect("json")
                ],
            )
            .expect("end");
            log_event(
                &db,
                &state(at + 120_000, UnitState::Spraying, UnitState::Ready),
                at + 120_000,
            );
            id += 1;
        }
        for (k, kind) in [
            AlarmKind::DryRun,
            AlarmKind::LateStart,
            AlarmKind::ServiceDue,
        ]
        .into_iter()
        .enumerate()
        {
            let at = base + 100 * (k as i64 + 1);
            log_event(&db, &Event::AlarmRaised(alarm(kind, at)), at);
        }
    }
    db.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
        .expect("checkpoint");
    let write = t.elapsed();
    drop(db);
    let bytes = dir_size(dir);
    let mut opens = Vec::new();
    for _ in 0..3 {
        let t = Instant::now();
        let db = rusqlite::Connection::open(&path).expect("reopen");
        db.execute_batch(schema).expect("schema");
        let n: i64 = db
            .query_row("SELECT count(*) FROM sessions WHERE open = 1", [], |r| {
                r.get(0)
            })
            .expect("q");
        assert_eq!(n, 0);
        opens.push(t.elapsed());
    }
    opens.sort();
    let db = rusqlite::Connection::open(&path).expect("reopen");
    let fetch = |db: &rusqlite::Connection, id: i64| -> (SessionRecord, Vec<Sample>) {
        let rec: String = db
            .prepare_cached("SELECT record FROM sessions WHERE id = ?1")
            .expect("prep")
            .query_row([id], |r| r.get(0))
            .expect("row");
        let mut st = db
            .prepare_cached("SELECT t_ms, mist_c, skin_c, reservoir_c, pressure_bar, pump, valve FROM samples WHERE session_id = ?1 ORDER BY t_ms")
            .expect("prep");
        let samples = st
            .query_map([id], |r| {
                Ok(Sample {
                    session_id: id as u64,
                    t_ms: r.get(0)?,
                    mist_c: r.get(1)?,
                    skin_c: r.get(2)?,
                    reservoir_c: r.get(3)?,
                    pressure_bar: r.get(4)?,
                    pump: r.get(5)?,
                    valve: r.get(6)?,
                })
            })
            .expect("query")
            .collect::<Result<Vec<_>, _>>()
            .expect("rows");
        (serde_json::from_str(&rec).expect("record"), samples)
    };
    let mut fetches = Vec::new();
    for _ in 0..300 {
        let id = 1 + rng.next() % (id - 1);
        let t = Instant::now();
        let (_, samples) = fetch(&db, id as i64);
        fetches.push(t.elapsed());
        assert_eq!(samples.len(), SAMPLES as usize);
    }
    fetches.sort();
    let from = T0 + (days - 30).max(0) * DAY;
    let mut out = Counting(0);
    let t = Instant::now();
    let ids: Vec<i64> = db
        .prepare("SELECT id FROM sessions WHERE started_unix_ms >= ?1 AND started_unix_ms < ?2 ORDER BY started_unix_ms")
        .expect("prep")
        .query_map([from, T0 + days * DAY], |r| r.get(0))
        .expect("q")
        .collect::<Result<_, _>>()
        .expect("ids");
    let mut records = Vec::new();
    for id in &ids {
        let (rec, samples) = fetch(&db, *id);
        writeln!(out, "{},{},{}", rec.id(), rec.start.protocol, rec.outcome).expect("w");
        records.push(samples);
    }
    for samples in records {
        for s in samples {
            writeln!(
                out,
                "{},{},{:?},{:?},{:?},{:?},{},{}",
                s.session_id,
                s.t_ms,
                s.mist_c,
                s.skin_c,
                s.reservoir_c,
                s.pressure_bar,
                s.pump,
                s.valve
            )
            .expect("w");
        }
    }
    let export = t.elapsed();
    Figures {
        bytes,
        write,
        open: opens[1],
        p50: pct(&fetches, 0.5),
        p99: pct(&fetches, 0.99),
        export,
        export_bytes: out.0,
    }
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else is accepted.
    let days: i64 = std::env::var("COLDSPRAY_BENCH_DAYS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(365)
        .max(1);
    let sessions = days as u64 * SESSIONS_PER_DAY;
    let samples = sessions * u64::from(SAMPLES);
    println!(
        "store_year: {days} days x {SESSIONS_PER_DAY} sessions x {SAMPLES} samples = {sessions} sessions, {samples} samples, {} alarms",
        days * 3
    );

    // Encoding before/after: one session's curve as JSON (one document per chunk) vs compact.
    let g = generate(1, T0, &mut Rng(1));
    let json: usize = g
        .samples
        .chunks(50)
        .map(|c| serde_json::to_vec(c).map_or(0, |v| v.len()))
        .sum();
    let compact = store::encoded_curve_len(&g.samples, 50);
    println!(
        "sample encoding: JSON {:.1} B/sample, packed (fixed-point deltas, bit-packed) {:.2} B/sample ({:.1}x smaller)",
        json as f64 / f64::from(SAMPLES),
        compact as f64 / f64::from(SAMPLES),
        json as f64 / compact as f64
    );

    let sled_dir = tempfile::tempdir().expect("tmp");
    let sq_dir = tempfile::tempdir().expect("tmp");
    let a = bench_sled(days, sled_dir.path());
    let b = bench_sqlite(days, sq_dir.path());
    let per_year = |f: &Figures| f.bytes as f64 / 1e6 * 365.0 / days as f64;
    println!(
        "\n{:<34} {:>14} {:>14} {:>10}",
        "figure", "sled", "sqlite", "sled/sqlite"
    );
    let row = |name: &str, x: f64, y: f64, unit: &str| {
        println!(
            "{:<34} {:>11.2} {unit:<2} {:>11.2} {unit:<2} {:>10.2}",
            name,
            x,
            y,
            x / y
        );
    };
    row(
        "disk size",
        a.bytes as f64 / 1e6,
        b.bytes as f64 / 1e6,
        "MB",
    );
    row(
        "disk size per year (scaled)",
        per_year(&a),
        per_year(&b),
        "MB",
    );
    row(
        "write time",
        a.write.as_secs_f64(),
        b.write.as_secs_f64(),
        "s",
    );
    row(
        "write throughput (samples/s)",
        samples as f64 / a.write.as_secs_f64() / 1e3,
        samples as f64 / b.write.as_secs_f64() / 1e3,
        "k",
    );
    row("time to open (median of 3)", ms(a.open), ms(b.open), "ms");
    row("fetch session+curve p50", ms(a.p50), ms(b.p50), "ms");
    row("fetch session+curve p99", ms(a.p99), ms(b.p99), "ms");
    row(
        "export a month (CSV, curves)",
        ms(a.export),
        ms(b.export),
        "ms",
    );
    println!(
        "(export sizes: sled CSV {:.1} MB, sqlite CSV {:.1} MB)",
        a.export_bytes as f64 / 1e6,
        b.export_bytes as f64 / 1e6
    );
    println!(
        "goals: <= 100 MB/year: {}; fetch p99 <= 10 ms: {}; open <= 1 s: {}",
        if per_year(&a) <= 100.0 {
            "met"
        } else {
            "MISSED"
        },
        if a.p99 <= Duration::from_millis(10) {
            "met"
        } else {
            "MISSED"
        },
        if a.open <= Duration::from_secs(1) {
            "met"
        } else {
            "MISSED"
        },
    );
}
