//! The treatment log: sessions with their curves, the event log (alarms, state changes),
//! counters, protocols and runtime settings.
//!
//! The rest of the daemon sees only the [`LogStore`] trait: the D-Bus and metrics readers, the
//! journal that writes, and the start-up that restores counters, protocols, settings
//! and closes the sessions a crash left open.
//!
//! # Implementation: [`SledStore`] (sled 0.34.7) in `<state_dir>/log`
//! Trees: `meta` (schema version, counters, protocols, a copy of the unit settings whose
//! primary is `state_dir/settings.json`, see [`crate::unit_settings`]), `sessions` (id → opening
//! and closing record), `session_time` (start time ‖ id: the time index), `open_sessions`
//! (ids of sessions not yet closed), `samples` (id ‖ first t_ms → a compact chunk of curve
//! points), `events` (time ‖ sequence → alarm, state change, configuration change,
//! self-test). Keys are big-endian, so every range query is a cheap ordered scan. Every value
//! carries a CRC-32 (see `codec`), so a damaged record is detected, reported
//! ([`Checked::problems`], `tracing::warn!`) and skipped — never fatal for the rest.
//! The `schema_version` key is checked at open; older layouts are migrated, newer refused.
//! Beside sled's files, `coldspray-high-water` holds the highest session id ever flushed:
//! if sled, after damage in its own log, opens without error but without the records behind
//! the damage, the mark is above the last stored session and
//! [`SledStore::missing_at_open`] reports it.
//!
//! # Durability rules
//! * **Flushed (fsync'd) before [`LogStore::record`] returns**: a session's opening
//!   ([`Event::SessionStarted`]) and closing ([`Event::SessionEnded`]) records, every
//!   high-priority alarm and every state change ([`Event::is_durable`]); counters, protocols
//!   and settings on save; sessions closed by [`SledStore::close_open_sessions`]. The daemon
//!   acknowledges these only after `record()` returned `Ok`.
//! * **Batched**: curve samples are kept in memory until `sample_batch` of them (default 50 =
//!   5 s at 10 Hz) are collected, then written without a sync; medium and low alarms and the
//!   other events are written without a sync. sled syncs them within `flush_every_ms`
//!   (default 1 s), and every durable record syncs everything written before it.
//! * **Power failure** therefore loses at most the last `sample_batch` samples plus
//!   `flush_every_ms` of a running session's curve (≈ 6 s by default), and non-durable events
//!   of the last `flush_every_ms`; never an acknowledged record. At the next start,
//!   [`SledStore::close_open_sessions`] closes the session left open as
//!   [`Outcome::Aborted`], with its end time and indicators from the samples that survived.
//! * **Retention** ([`SledStore::spawn_retention`]) deletes curves by age
//!   (`curve_retention_days`) and, above `max_size_mb`, oldest first; session records and
//!   the event log only by `record_retention_days` (default never); counters, protocols and
//!   settings never. So alarms and records outlive curves.

use crate::api::{Counters, Event};
use crate::model::session::{Outcome, Sample, SessionRecord};
use crate::protocol::Protocol;

mod codec;
mod config;
pub mod export;
#[doc(hidden)]
pub mod fuzzing;
mod sled_store;
mod stats;
#[cfg(test)]
mod tests;

pub use codec::encoded_curve_len;
pub use config::{StoreConfig, StoreConfigError};
pub use export::{sessions_csv, ExportFormat, ExportSummary, SESSION_COLUMNS};
pub use sled_store::{
    open, Checked, LoggedEvent, RetentionHandle, RetentionReport, Settings, SledStore,
    SCHEMA_VERSION, STORE_DIR,
};
pub use stats::Stats;

/// What caused a store error, kept as the error's source.
pub type Cause = Box<dyn std::error::Error + Send + Sync>;

/// Why the log store failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store could not be opened (permissions, disk full, corruption).
    #[error("cannot open the treatment log at {path}: {reason}")]
    Open {
        /// Directory of the store.
        path: String,
        /// What was being done, and why it failed.
        reason: String,
        /// The underlying error, when there is one.
        #[source]
        source: Option<Cause>,
    },
    /// A read or write failed.
    #[error("treatment log I/O: {source}")]
    Io {
        /// The underlying error (sled's, the file system's, or what made the store refuse).
        #[source]
        source: Cause,
    },
    /// A record could not be decoded (reported and skipped by queries).
    #[error("corrupt record {key}: {reason}")]
    Corrupt {
        /// Record key, hex.
        key: String,
        /// What is wrong.
        reason: String,
    },
    /// An export could not be written or encoded.
    #[error("export {what} failed: {source}")]
    Export {
        /// "write" or "encoding".
        what: &'static str,
        /// The underlying error.
        #[source]
        source: Cause,
    },
    /// This store does not keep what was asked for (a store that only answers queries).
    #[error("the treatment log does not keep {0}")]
    Unsupported(&'static str),
}

/// Filter for listing sessions. Times are wall-clock ms since the Unix epoch.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SessionQuery {
    /// Started at or after.
    pub from_unix_ms: Option<i64>,
    /// Started before.
    pub to_unix_ms: Option<i64>,
    /// Only this protocol.
    pub protocol: Option<String>,
    /// Only this outcome.
    pub outcome: Option<Outcome>,
    /// At most this many, newest first.
    pub limit: Option<usize>,
}

/// One session with its curve.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionDetail {
    /// The closing record (or, for a session still open, a record marked as such).
    pub record: SessionRecord,
    /// Its 10 Hz curve.
    pub samples: Vec<Sample>,
}

/// The log store as the daemon uses it: the one trait between the daemon and the treatment
/// log, implemented by [`SledStore`] (and by fakes in tests).
///
/// Queries serve the D-Bus and metrics readers; writes serve the journal (durable
/// records flushed before they return, see the module documentation); the rest serves the
/// start-up. A store that only answers queries (a test fake) implements `record`, `sessions`
/// and `session`: it saves nothing ([`StoreError::Unsupported`]) and has nothing saved.
pub trait LogStore: Send + Sync {
    /// Records an event. Durable events ([`Event::is_durable`]) are flushed to disk before
    /// this returns; samples may be batched.
    fn record(&self, event: &Event) -> Result<(), StoreError>;

    /// Lists sessions matching `query`, newest first.
    fn sessions(&self, query: &SessionQuery) -> Result<Vec<SessionRecord>, StoreError>;

    /// Fetches one session with its curve.
    fn session(&self, id: u64) -> Result<Option<SessionDetail>, StoreError>;

    /// Disk space the store uses, bytes, when it can tell (exported as a metric; may do
    /// blocking I/O, so callers keep it off the control loop).
    fn size_on_disk(&self) -> Option<u64> {
        None
    }

    /// Saves the service counters (flushed before returning).
    fn save_counters(&self, _counters: &Counters) -> Result<(), StoreError> {
        Err(StoreError::Unsupported("counters"))
    }

    /// Saves the whole protocol list (flushed before returning).
    fn save_protocols(&self, _protocols: &[Protocol]) -> Result<(), StoreError> {
        Err(StoreError::Unsupported("protocols"))
    }

    /// Saves the log's copy of the unit settings (flushed before returning).
    fn save_settings(&self, _settings: &Settings) -> Result<(), StoreError> {
        Err(StoreError::Unsupported("settings"))
    }

    /// Writes everything batched and syncs it to disk.
    fn flush(&self) -> Result<(), StoreError> {
        Ok(())
    }

    /// After a failed write: makes the store writable again if it can (the sled store
    /// reopens its database) and proves it with a flushed write. `Ok` means writes work.
    fn recover(&self) -> Result<(), StoreError> {
        self.flush()
    }

    /// The saved service counters, `None` when never saved.
    fn load_counters(&self) -> Result<Option<Counters>, StoreError> {
        Ok(None)
    }

    /// The saved protocols, `None` when never saved (use the factory ones).
    fn load_protocols(&self) -> Result<Option<Vec<Protocol>>, StoreError> {
        Ok(None)
    }

    /// The log's copy of the unit settings (the settings file is the primary), `None` when
    /// never saved.
    fn load_settings(&self) -> Result<Option<Settings>, StoreError> {
        Ok(None)
    }

    /// Closes sessions left open by a crash as `aborted`; returns their ids. Called once at
    /// start-up, before anything is recorded.
    fn close_open_sessions(&self, _now_unix_ms: i64) -> Result<Vec<u64>, StoreError> {
        Ok(Vec::new())
    }

    /// An id greater than every stored session's (and every id ever handed out).
    fn next_session_id(&self) -> Result<u64, StoreError> {
        Ok(1)
    }

    /// Records the log had flushed but no longer holds, found at open (damage in its files).
    fn lost_at_open(&self) -> Option<String> {
        None
    }
}

/// A saved value that cannot be read falls back to its default, loudly: what start-up does
/// with counters, protocols and settings it cannot read.
pub fn saved_or_default<T>(what: &str, saved: Result<Option<T>, StoreError>) -> Option<T> {
    saved.unwrap_or_else(|e| {
        tracing::warn!("treatment log: saved {what} unreadable, using defaults: {e}");
        None
    })
}
