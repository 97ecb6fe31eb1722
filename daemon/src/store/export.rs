//! Export of the treatment log as CSV or JSON to any writer.
//!
//! # CSV
//! Up to three tables, each introduced by a `# name` line and a header row, separated by an
//! empty line: `# sessions` (one row per session, oldest first), `# samples` (with curves:
//! one row per curve point, `session_id` first) and `# events` (alarms, state changes,
//! configuration changes, self-tests). Times are both ms since the Unix epoch and UTC ISO
//! 8601; empty cells are absent values. Spreadsheet tools read each table after skipping to
//! its header; `#` lines are comments for most CSV readers.
//!
//! # JSON
//! One object: `{"format": "coldspray-log", "schema": 1, "from_unix_ms", "to_unix_ms",
//! "sessions": [ {"record": SessionRecord, "open": bool, "samples": [Sample, ...]} ],
//! "events": [ {"unix_ms", "event"} ], "problems": ["..."]}` (`samples` only with curves).

use std::io::Write;

use super::sled_store::{SledStore, SCHEMA_VERSION};
use super::{SessionQuery, StoreError};
use crate::api::Event;
use crate::model::alarm::Priority;
use crate::model::session::{Sample, SessionRecord};

/// Export file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    /// Comma-separated tables (see the module documentation).
    Csv,
    /// One JSON document.
    Json,
}

/// What an export wrote.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ExportSummary {
    /// Sessions written.
    pub sessions: usize,
    /// Curve samples written.
    pub samples: usize,
    /// Event-log entries written.
    pub events: usize,
    /// Records skipped because they could not be read (also logged).
    pub problems: Vec<String>,
}

/// `YYYY-MM-DD` of a UTC instant (the raw ms when outside chrono's ±262 000 years).
pub(crate) fn utc_date(unix_ms: i64) -> String {
    utc_format(unix_ms, "%Y-%m-%d")
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ` of a UTC instant (the raw ms when outside chrono's range).
pub(crate) fn utc_iso(unix_ms: i64) -> String {
    utc_format(unix_ms, "%Y-%m-%dT%H:%M:%S%.3fZ")
}

fn utc_format(unix_ms: i64, format: &str) -> String {
    chrono::DateTime::from_timestamp_millis(unix_ms)
        .map(|t| t.format(format).to_string())
        .unwrap_or_else(|| unix_ms.to_string())
}

/// An absent value is an empty cell.
fn opt<T: ToString>(v: Option<T>) -> String {
    v.map(|v| v.to_string()).unwrap_or_default()
}

/// Floats with millisecond (or milli-degree) resolution; absent is an empty cell.
fn fixed(v: Option<f64>) -> String {
    v.map(|v| format!("{v:.3}")).unwrap_or_default()
}

fn w(e: std::io::Error) -> StoreError {
    StoreError::Export {
        what: "write",
        source: Box::new(e),
    }
}

fn csv_err(e: csv::Error) -> StoreError {
    StoreError::Export {
        what: "write",
        source: Box::new(e),
    }
}

fn json_err(e: serde_json::Error) -> StoreError {
    StoreError::Export {
        what: "encoding",
        source: Box::new(e),
    }
}

/// The columns of the sessions table, in order (empty cell = unknown).
/// The same names, units and meaning as the keys of `Sessions.List`, plus `started_utc` and
/// `open`; a session still running reads outcome `running`, completed `false`, no end.
pub const SESSION_COLUMNS: [&str; 21] = [
    "id",
    "protocol",
    "goal",
    "cause",
    "started_unix_ms",
    "started_utc",
    "ended_unix_ms",
    "duration_s",
    "outcome",
    "completed",
    "late",
    "laser_to_spray_ms",
    "skin_target_c",
    "skin_floor_c",
    "peak_skin_c",
    "min_skin_c",
    "time_to_target_ms",
    "above_40_ms",
    "spray_ms",
    "open",
    "ended_by_alarm",
];
const SAMPLE_COLUMNS: [&str; 8] = [
    "session_id",
    "t_ms",
    "mist_c",
    "skin_c",
    "reservoir_c",
    "pressure_bar",
    "pump",
    "valve",
];
const EVENT_COLUMNS: [&str; 6] = ["unix_ms", "utc", "type", "key", "priority", "detail"];

fn session_row(r: &SessionRecord, open: bool) -> [String; 21] {
    let s = &r.start;
    let ended = |v: String| if open { String::new() } else { v };
    [
        s.id.to_string(),
        s.protocol.clone(),
        s.goal.name().to_string(),
        s.cause.name().to_string(),
        s.started_unix_ms.to_string(),
        utc_iso(s.started_unix_ms),
        ended(r.ended_unix_ms.to_string()),
        ended(format!("{:.3}", r.duration().as_secs_f64())),
        if open { "running" } else { r.outcome.name() }.to_string(),
        (!open && r.outcome.is_completed()).to_string(),
        s.late.to_string(),
        fixed(s.laser_to_spray_ms),
        fixed(s.skin_target_c),
        format!("{:.3}", s.skin_floor_c),
        fixed(r.peak_skin_c),
        fixed(r.min_skin_c),
        opt(r.time_to_target_ms),
        opt(r.above_40_ms),
        r.spray_ms.to_string(),
        open.to_string(),
        opt(r.ended_by_alarm.clone()),
    ]
}

fn sample_row(s: &Sample) -> [String; 8] {
    [
        s.session_id.to_string(),
        s.t_ms.to_string(),
        opt(s.mist_c),
        opt(s.skin_c),
        opt(s.reservoir_c),
        opt(s.pressure_bar),
        u8::from(s.pump).to_string(),
        u8::from(s.valve).to_string(),
    ]
}

/// Type, alarm key and priority of an event, for the CSV columns.
fn event_columns(e: &Event) -> (&'static str, String, Option<Priority>) {
    match e {
        Event::StateChanged { from, to, .. } => ("state_changed", format!("{from}->{to}"), None),
        Event::AlarmRaised(a) => ("alarm_raised", a.kind.key(), Some(a.priority)),
        Event::AlarmConditionCleared { kind, .. } => ("alarm_condition_cleared", kind.key(), None),
        Event::AlarmAcknowledged { kind, .. } => ("alarm_acknowledged", kind.key(), None),
        Event::AlarmRemoved { kind, .. } => ("alarm_removed", kind.key(), None),
        Event::SessionStarted(s) => ("session_started", s.id.to_string(), None),
        Event::SessionEnded(r) => ("session_ended", r.id().to_string(), None),
        Event::Sample(s) => ("sample", s.session_id.to_string(), None),
        Event::ConfigChanged { .. } => ("config_changed", String::new(), None),
        Event::NotRecorded { session_id, .. } => (
            "not_recorded",
            session_id.map(|id| id.to_string()).unwrap_or_default(),
            None,
        ),
        Event::SelfTestFinished { passed, .. } => (
            "self_test_finished",
            if *passed { "passed" } else { "failed" }.to_string(),
            None,
        ),
    }
}

/// A CSV writer for one table of an export (tables differ in width).
fn table<W: Write>(out: W) -> csv::Writer<W> {
    csv::WriterBuilder::new().flexible(true).from_writer(out)
}

/// Writes the sessions table (header row, then one row per session, in the given order) to
/// `out`; `is_open` tells the sessions still running.
pub fn write_sessions_csv(
    records: &[SessionRecord],
    mut is_open: impl FnMut(u64) -> Result<bool, StoreError>,
    out: &mut dyn Write,
) -> Result<usize, StoreError> {
    let mut t = table(out);
    t.write_record(SESSION_COLUMNS).map_err(csv_err)?;
    for r in records {
        t.write_record(session_row(r, is_open(r.id())?))
            .map_err(csv_err)?;
    }
    t.flush().map_err(w)?;
    Ok(records.len())
}

/// The sessions table as text (what `Sessions.Export` answers for "csv"); `running` is the
/// session still open, if any.
pub fn sessions_csv(records: &[SessionRecord], running: Option<u64>) -> Result<String, StoreError> {
    let mut out = Vec::new();
    write_sessions_csv(records, |id| Ok(Some(id) == running), &mut out)?;
    String::from_utf8(out).map_err(|e| StoreError::Export {
        what: "encoding",
        source: Box::new(e),
    })
}

impl SledStore {
    /// Writes the sessions matching `query` (oldest first; `limit` keeps the newest), their
    /// curves when `with_curves`, and the event log of the query's time range to `out`.
    /// Unreadable records are skipped, logged and listed in the summary (and, in JSON, in
    /// `problems`). The writer is not flushed.
    pub fn export(
        &self,
        query: &SessionQuery,
        format: ExportFormat,
        with_curves: bool,
        out: &mut dyn Write,
    ) -> Result<ExportSummary, StoreError> {
        let listed = self.sessions_checked(query)?;
        let mut summary = ExportSummary {
            problems: listed.problems.iter().map(ToString::to_string).collect(),
            ..ExportSummary::default()
        };
        let from = query.from_unix_ms.unwrap_or(i64::MIN);
        let to = query.to_unix_ms.unwrap_or(i64::MAX);
        let mut records = listed.value;
        records.reverse();

        match format {
            ExportFormat::Csv => {
                writeln!(out, "# sessions").map_err(w)?;
                summary.sessions = write_sessions_csv(&records, |id| self.is_open(id), out)?;
                if with_curves {
                    writeln!(out, "\n# samples").map_err(w)?;
                    let mut t = table(&mut *out);
                    t.write_record(SAMPLE_COLUMNS).map_err(csv_err)?;
                    for r in &records {
                        if let Some(detail) =
                            self.session_checked(r.id())?.into_problems(&mut summary)
                        {
                            for s in &detail.samples {
                                t.write_record(sample_row(s)).map_err(csv_err)?;
                            }
                            summary.samples += detail.samples.len();
                        }
                    }
                    t.flush().map_err(w)?;
                }
                writeln!(out, "\n# events").map_err(w)?;
                let events = self.events(from, to, None)?;
                summary
                    .problems
                    .extend(events.problems.iter().map(ToString::to_string));
                let mut t = table(&mut *out);
                t.write_record(EVENT_COLUMNS).map_err(csv_err)?;
                for e in events.value.iter().rev() {
                    let (kind, key, priority) = event_columns(&e.event);
                    let detail = serde_json::to_string(&e.event).map_err(json_err)?;
                    t.write_record([
                        e.unix_ms.to_string(),
                        utc_iso(e.unix_ms),
                        kind.to_string(),
                        key,
                        opt(priority.map(|p| p.name())),
                        detail,
                    ])
                    .map_err(csv_err)?;
                    summary.events += 1;
                }
                t.flush().map_err(w)?;
            }
            ExportFormat::Json => {
                write!(
                    out,
                    "{{\"format\":\"coldspray-log\",\"schema\":{SCHEMA_VERSION},\"from_unix_ms\":{},\"to_unix_ms\":{},\"sessions\":[",
                    serde_json::to_string(&query.from_unix_ms).map_err(json_err)?,
                    serde_json::to_string(&query.to_unix_ms).map_err(json_err)?,
                )
                .map_err(w)?;
                for (i, r) in records.iter().enumerate() {
                    if i > 0 {
                        out.write_all(b",").map_err(w)?;
                    }
                    write!(
                        out,
                        "{{\"record\":{},\"open\":{}",
                        serde_json::to_string(r).map_err(json_err)?,
                        self.is_open(r.id())?
                    )
                    .map_err(w)?;
                    if with_curves {
                        let samples = self
                            .session_checked(r.id())?
                            .into_problems(&mut summary)
                            .map(|d| d.samples)
                            .unwrap_or_default();
                        write!(
                            out,
                            ",\"samples\":{}",
                            serde_json::to_string(&samples).map_err(json_err)?
                        )
                        .map_err(w)?;
                        summary.samples += samples.len();
                    }
                    out.write_all(b"}").map_err(w)?;
                    summary.sessions += 1;
                }
                out.write_all(b"],\"events\":[").map_err(w)?;
                let events = self.events(from, to, None)?;
                summary
                    .problems
                    .extend(events.problems.iter().map(ToString::to_string));
                for (i, e) in events.value.iter().rev().enumerate() {
                    if i > 0 {
                        out.write_all(b",").map_err(w)?;
                    }
                    out.write_all(&serde_json::to_vec(e).map_err(json_err)?)
                        .map_err(w)?;
                    summary.events += 1;
                }
                write!(
                    out,
                    "],\"problems\":{}}}",
                    serde_json::to_string(&summary.problems).map_err(json_err)?
                )
                .map_err(w)?;
            }
        }
        Ok(summary)
    }
}

impl<T> super::sled_store::Checked<T> {
    /// The value, moving the problems into an export summary.
    fn into_problems(self, summary: &mut ExportSummary) -> T {
        summary
            .problems
            .extend(self.problems.iter().map(ToString::to_string));
        self.value
    }
}

/// A closed session record for tests: started at 1 s, 2 s of spray, ended by an interlock.
#[cfg(test)]
pub(crate) fn test_record(id: u64, protocol: &str, alarm: Option<&str>) -> SessionRecord {
    SessionRecord {
        start: crate::model::session::SessionStart {
            id,
            protocol: protocol.into(),
            goal: crate::protocol::Goal::Protect,
            cause: crate::model::session::StartCause::Trigger,
            started_at: std::time::Duration::from_secs(1),
            started_unix_ms: 1000,
            laser_to_spray_ms: Some(12.5),
            late: false,
            skin_target_c: None,
            skin_floor_c: 10.0,
        },
        ended_at: std::time::Duration::from_secs(3),
        ended_unix_ms: 3000,
        outcome: crate::model::session::Outcome::Interlock,
        peak_skin_c: None,
        min_skin_c: None,
        time_to_target_ms: None,
        above_40_ms: Some(10),
        spray_ms: 2000,
        ended_by_alarm: alarm.map(str::to_string),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_formatting_matches_known_dates() {
        assert_eq!(utc_iso(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(utc_iso(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(utc_iso(1_767_225_599_999), "2025-12-31T23:59:59.999Z");
        assert_eq!(utc_date(-1), "1969-12-31");
    }

    /// One row through the CSV writer (the quoting is the `csv` crate's).
    fn cell(s: &str) -> String {
        let mut t = table(Vec::new());
        t.write_record([s]).unwrap();
        let bytes = t.into_inner().unwrap();
        String::from_utf8(bytes)
            .unwrap()
            .trim_end_matches('\n')
            .to_string()
    }

    #[test]
    fn csv_cells_are_quoted_when_needed() {
        assert_eq!(cell("plain"), "plain");
        assert_eq!(cell("a,b"), "\"a,b\"");
        assert_eq!(cell("say \"hi\""), "\"say \"\"hi\"\"\"");
    }

    /// Moved from `dbus::export_csv` when the two exporters became one: the same checks, on
    /// the superset of columns (`started_utc` and `open` added).
    #[test]
    fn csv_has_a_header_and_quotes_awkward_cells() {
        let csv = sessions_csv(&[test_record(7, "pico", Some("a,\"b\""))], None).unwrap();
        let lines: Vec<_> = csv.lines().collect();
        assert_eq!(lines[0].split(',').count(), SESSION_COLUMNS.len());
        assert!(lines[1].starts_with(
            "7,pico,protect,trigger,1000,1970-01-01T00:00:01.000Z,3000,2.000,interlock,false,false,12.500,,10.000,,,,10,2000,false,"
        ), "{}", lines[1]);
        assert!(lines[1].ends_with("\"a,\"\"b\"\"\""), "{}", lines[1]);
        let running = sessions_csv(&[test_record(7, "pico", None)], Some(7)).unwrap();
        let row = running.lines().nth(1).unwrap();
        assert!(row.ends_with(",true,"), "{running}");
        assert!(
            row.contains(",1970-01-01T00:00:01.000Z,,,running,false,"),
            "a running session has no end yet: {row}"
        );
    }
}
