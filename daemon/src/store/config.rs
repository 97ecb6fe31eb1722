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
    /// How often the background retention thread checks the caps, seconds (> 0).
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

impl StoreConfig {
    /// Checks the ranges documented on each field.
    pub fn validate(&self) -> Result<(), String> {
        if !(1..=1024).contains(&self.cache_capacity_mb) {
            return Err(format!(
                "cache_capacity_mb = {} is out of range 1..=1024",
                self.cache_capacity_mb
            ));
        }
        if !(1..=600).contains(&self.sample_batch) {
            return Err(format!(
                "sample_batch = {} is out of range 1..=600",
                self.sample_batch
            ));
        }
        if !(10..=10_000).contains(&self.flush_every_ms) {
            return Err(format!(
                "flush_every_ms = {} is out of range 10..=10000",
                self.flush_every_ms
            ));
        }
        if !(self.retention_check_s.is_finite() && self.retention_check_s > 0.0) {
            return Err(format!(
                "retention_check_s = {} must be a positive number",
                self.retention_check_s
            ));
        }
        if self.max_size_mb == 0 {
            return Err("max_size_mb must be at least 1".into());
        }
        if self.record_retention_days != 0
            && (self.curve_retention_days == 0
                || self.record_retention_days < self.curve_retention_days)
        {
            return Err(format!(
                "record_retention_days = {} must be 0 or at least curve_retention_days = {} \
                 (alarms and records outlive curves)",
                self.record_retention_days, self.curve_retention_days
            ));
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
