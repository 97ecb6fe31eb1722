//! The `[store]` section of the daemon's configuration.

use serde::{Deserialize, Serialize};

/// `[store]`: the treatment log. Every field has a default; unknown fields are refused.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreConfig {
    /// sled's page cache, MiB (1–1024). sled's own default (1 GiB) is wrong for a Pi; a year
    /// of the busy-clinic benchmark opens and queries well with 8 MiB.
    pub cache_capacity_mb: u64,
    /// Curves (the 10 Hz samples) older than this many days are deleted; the session record,
    /// alarms, the event log and counters stay. 0 keeps curves until the size cap needs room.
    pub curve_retention_days: u32,
    /// Session records and the event log (alarms, state changes) older than this many days are
    /// deleted. 0 (the default) keeps them for ever; counters, protocols and settings are
    /// never deleted. Must be 0 or not below `curve_retention_days`: alarms outlive curves.
    pub record_retention_days: u32,
    /// Cap on the live data of the log, MiB (counted as stored key and value bytes). Above it,
    /// the oldest curves are deleted until the log is at 90 % of the cap; records, alarms and
    /// counters are never deleted for space. sled's file is larger than its live data (space
    /// amplification; the benchmark prints the ratio), so leave head-room on the disk.
    pub max_size_mb: u64,
    /// Curve samples are written in chunks of this many samples (1–600). At 10 Hz the default
    /// 50 is 5 s of curve: at most that much (plus `flush_every_ms`) of a running session's
    /// curve is lost on power failure.
    pub sample_batch: usize,
    /// Background sync period of sled for data not flushed explicitly (sample chunks, low and
    /// medium alarms, other events), ms (10–10000).
    pub flush_every_ms: u64,
    /// How often background retention checks the caps, seconds (> 0).
    pub retention_check_s: f64,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            cache_capacity_mb: 8,
            curve_retention_days: 730,
            record_retention_days: 0,
            max_size_mb: 400,
            sample_batch: 50,
            flush_every_ms: 1000,
            retention_check_s: 600.0,
        }
    }
}

/// Why a `[store]` configuration is refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StoreConfigError {
    /// A value outside its documented range.
    #[error("{field} = {value} is out of range {range}")]
    OutOfRange {
        /// The field.
        field: &'static str,
        /// Its value.
        value: u64,
        /// The range it must be in.
        range: &'static str,
    },
    /// The retention period is not a positive number of seconds.
    #[error("retention_check_s = {0} must be a positive number")]
    RetentionCheck(f64),
    /// No room at all.
    #[error("max_size_mb must be at least 1")]
    NoRoom,
    /// Records would be deleted before their curves.
    #[error(
        "record_retention_days = {record} must be 0 or at least curve_retention_days = {curve} \
         (alarms and records outlive curves)"
    )]
    RecordsBeforeCurves {
        /// `record_retention_days`.
        record: u32,
        /// `curve_retention_days`.
        curve: u32,
    },
}

impl StoreConfig {
    /// Checks the ranges documented on each field.
    pub fn validate(&self) -> Result<(), StoreConfigError> {
        let out_of_range = |field, value: u64, range| StoreConfigError::OutOfRange {
            field,
            value,
            range,
        };
        if !(1..=1024).contains(&self.cache_capacity_mb) {
            return Err(out_of_range(
                "cache_capacity_mb",
                self.cache_capacity_mb,
                "1..=1024",
            ));
        }
        if !(1..=600).contains(&self.sample_batch) {
            return Err(out_of_range(
                "sample_batch",
                self.sample_batch as u64,
                "1..=600",
            ));
        }
        if !(10..=10_000).contains(&self.flush_every_ms) {
            return Err(out_of_range(
                "flush_every_ms",
                self.flush_every_ms,
                "10..=10000",
            ));
        }
        if !(self.retention_check_s.is_finite() && self.retention_check_s > 0.0) {
            return Err(StoreConfigError::RetentionCheck(self.retention_check_s));
        }
        if self.max_size_mb == 0 {
            return Err(StoreConfigError::NoRoom);
        }
        if self.record_retention_days != 0
            && (self.curve_retention_days == 0
                || self.record_retention_days < self.curve_retention_days)
        {
            return Err(StoreConfigError::RecordsBeforeCurves {
                record: self.record_retention_days,
                curve: self.curve_retention_days,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_valid_and_toml_round_trips() {
        let c = StoreConfig::default();
        c.validate().unwrap();
        let text = toml::to_string(&c).unwrap();
        let back: StoreConfig = toml::from_str(&text).unwrap();
        assert_eq!(back, c);
    }

    #[test]
    fn unknown_fields_and_bad_values_are_refused() {
        assert!(toml::from_str::<StoreConfig>("cache_mb = 3").is_err());
        let c: StoreConfig = toml::from_str("sample_batch = 0").unwrap();
        assert!(c.validate().is_err());
        let c: StoreConfig =
            toml::from_str("curve_retention_days = 100\nrecord_retention_days = 50").unwrap();
        assert!(c.validate().is_err());
        let c: StoreConfig = toml::from_str("max_size_mb = 50").unwrap();
        assert_eq!(c.max_size_mb, 50);
        assert_eq!(c.sample_batch, 50);
    }
}
