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
use crate::alarm::Priority;
use crate::api::Event;
use crate::session::{Sample, SessionRecord};

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

/// `YYYY-MM-DD` of a UTC instant.
pub(crate) fn utc_date(unix_ms: i64) -> String {
    let (y, m, d) = civil_from_days(unix_ms.div_euclid(86_400_000));
    format!("{y:04}-{m:02}-{d:02}")
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ` of a UTC instant.
pub(crate) fn utc_iso(unix_ms: i64) -> String {
    let ms_of_day = unix_ms.rem_euclid(86_400_000);
    let (h, rest) = (ms_of_day / 3_600_000, ms_of_day % 3_600_000);
    let (min, rest) = (rest / 60_000, rest % 60_000);
    format!(
        "{}T{h:02}:{min:02}:{:02}.{:03}Z",
        utc_date(unix_ms),
        rest / 1000,
        rest % 1000
    )
}

/// Proleptic Gregorian date of a day count since 1970-01-01 (H. Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

fn csv_cell(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn opt<T: ToString>(v: Option<T>) -> String {
    v.map(|v| v.to_string()).unwrap_or_default()
}

fn w(e: std::io::Error) -> StoreError {
    StoreError::Io(format!("export write failed: {e}"))
}

fn json_err(e: serde_json::Error) -> StoreError {
    StoreError::Io(format!("export encoding failed: {e}"))
}

const SESSION_HEADER: &str = "id,protocol,goal,cause,started_unix_ms,started_utc,ended_unix_ms,\
duration_s,laser_to_spray_ms,late,outcome,peak_skin_c,min_skin_c,time_to_target_ms,above_40_ms,\
spray_ms,ended_by_alarm,open";
const SAMPLE_HEADER: &str = "session_id,t_ms,mist_c,skin_c,reservoir_c,pressure_bar,pump,valve";
const EVENT_HEADER: &str = "unix_ms,utc,type,key,priority,detail";

fn session_row(r: &SessionRecord, open: bool) -> String {
    let s = &r.start;
    [
        s.id.to_string(),
        csv_cell(&s.protocol),
        s.goal.name().to_string(),
        s.cause.name().to_string(),
        s.started_unix_ms.to_string(),
        utc_iso(s.started_unix_ms),
        r.ended_unix_ms.to_string(),
        format!("{:.1}", r.duration().as_secs_f64()),
        opt(s.laser_to_spray_ms),
        s.late.to_string(),
        r.outcome.name().to_string(),
        opt(r.peak_skin_c),
        opt(r.min_skin_c),
        opt(r.time_to_target_ms),
        opt(r.above_40_ms),
        r.spray_ms.to_string(),
        csv_cell(&opt(r.ended_by_alarm.clone())),
        open.to_string(),
    ]
    .join(",")
}

fn sample_row(s: &Sample) -> String {
    format!(
        "{},{},{},{},{},{},{},{}",
        s.session_id,
        s.t_ms,
        opt(s.mist_c),
        opt(s.skin_c),
        opt(s.reservoir_c),
        opt(s.pressure_bar),
        u8::from(s.pump),
        u8::from(s.valve)
    )
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
                writeln!(out, "{SESSION_HEADER}").map_err(w)?;
                for r in &records {
                    writeln!(out, "{}", session_row(r, self.is_open(r.id())?)).map_err(w)?;
                    summary.sessions += 1;
                }
                if with_curves {
                    writeln!(out, "\n# samples\n{SAMPLE_HEADER}").map_err(w)?;
                    for r in &records {
                        if let Some(detail) =
                            self.session_checked(r.id())?.into_problems(&mut summary)
                        {
                            for s in &detail.samples {
                                writeln!(out, "{}", sample_row(s)).map_err(w)?;
                            }
                            summary.samples += detail.samples.len();
                        }
                    }
                }
                writeln!(out, "\n# events\n{EVENT_HEADER}").map_err(w)?;
                let events = self.events(from, to, None)?;
                summary
                    .problems
                    .extend(events.problems.iter().map(ToString::to_string));
                for e in events.value.iter().rev() {
                    let (kind, key, priority) = event_columns(&e.event);
                    let detail = serde_json::to_string(&e.event).map_err(json_err)?;
                    writeln!(
                        out,
                        "{},{},{},{},{},{}",
                        e.unix_ms,
                        utc_iso(e.unix_ms),
                        kind,
                        csv_cell(&key),
                        opt(priority.map(|p| p.name())),
                        csv_cell(&detail)
                    )
                    .map_err(w)?;
                    summary.events += 1;
                }
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

    #[test]
    fn csv_cells_are_quoted_when_needed() {
        assert_eq!(csv_cell("plain"), "plain");
        assert_eq!(csv_cell("a,b"), "\"a,b\"");
        assert_eq!(csv_cell("say \"hi\""), "\"say \"\"hi\"\"\"");
    }
}
