//! Statistics over a set of sessions: the one computation behind [`SledStore::stats`] and the
//! D-Bus `Sessions.Stats` method.
//!
//! [`SledStore::stats`]: super::SledStore::stats

use std::collections::BTreeMap;

use super::export::utc_date;
use super::sled_store::SledStore;
use super::{SessionQuery, StoreError};
use crate::model::session::SessionRecord;

/// Statistics over sessions started in a time range (days are UTC days).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Stats {
    /// Range start, ms since the Unix epoch (inclusive).
    pub from_unix_ms: i64,
    /// Range end, ms since the Unix epoch (exclusive).
    pub to_unix_ms: i64,
    /// Sessions started in the range.
    pub sessions: u64,
    /// Sessions whose outcome counts as completed ([`crate::model::session::Outcome::is_completed`]).
    #[serde(default)]
    pub completed: u64,
    /// Sessions per UTC day (`YYYY-MM-DD`), days without sessions omitted.
    pub sessions_per_day: BTreeMap<String, u64>,
    /// Sessions per outcome name (outcomes without sessions omitted).
    pub by_outcome: BTreeMap<String, u64>,
    /// Sessions that started late after the laser.
    pub late_starts: u64,
    /// Sessions that recorded a laser → spray delay.
    pub with_laser_delay: u64,
    /// Mean laser end → spray start delay over those, ms.
    pub mean_laser_to_spray_ms: Option<f64>,
    /// Largest laser → spray delay, ms.
    pub max_laser_to_spray_ms: Option<f64>,
    /// Total valve-open time, ms.
    pub total_spray_ms: u64,
    /// Highest skin temperature of any session, °C.
    #[serde(default)]
    pub max_peak_skin_c: Option<f64>,
    /// Records that could not be read (skipped).
    pub problems: Vec<String>,
}

impl Stats {
    /// The statistics of `records` (the range is left unbounded: set it when known).
    pub fn of(records: &[SessionRecord]) -> Stats {
        let mut s = Stats {
            from_unix_ms: i64::MIN,
            to_unix_ms: i64::MAX,
            ..Stats::default()
        };
        let mut delay_sum = 0.0;
        for r in records {
            s.sessions += 1;
            s.completed += u64::from(r.outcome.is_completed());
            *s.sessions_per_day
                .entry(utc_date(r.start.started_unix_ms))
                .or_default() += 1;
            *s.by_outcome
                .entry(r.outcome.name().to_string())
                .or_default() += 1;
            s.late_starts += u64::from(r.start.late);
            s.total_spray_ms += r.spray_ms;
            if let Some(d) = r.start.laser_to_spray_ms.filter(|d| d.is_finite()) {
                s.with_laser_delay += 1;
                delay_sum += d;
                s.max_laser_to_spray_ms = Some(s.max_laser_to_spray_ms.map_or(d, |m| m.max(d)));
            }
            if let Some(p) = r.peak_skin_c {
                s.max_peak_skin_c = Some(s.max_peak_skin_c.map_or(p, |m| m.max(p)));
            }
        }
        if s.with_laser_delay > 0 {
            s.mean_laser_to_spray_ms = Some(delay_sum / s.with_laser_delay as f64);
        }
        s
    }

    /// Mean valve-open time per session, s (`None` without sessions).
    pub fn mean_spray_s(&self) -> Option<f64> {
        (self.sessions > 0).then(|| self.total_spray_ms as f64 / 1000.0 / self.sessions as f64)
    }
}

impl SledStore {
    /// Statistics over the sessions started in `from_unix_ms..to_unix_ms`.
    pub fn stats(&self, from_unix_ms: i64, to_unix_ms: i64) -> Result<Stats, StoreError> {
        let listed = self.sessions_checked(&SessionQuery {
            from_unix_ms: Some(from_unix_ms),
            to_unix_ms: Some(to_unix_ms),
            ..SessionQuery::default()
        })?;
        Ok(Stats {
            from_unix_ms,
            to_unix_ms,
            problems: listed.problems.iter().map(ToString::to_string).collect(),
            ..Stats::of(&listed.value)
        })
    }
}
