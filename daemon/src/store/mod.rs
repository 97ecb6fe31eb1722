//! The treatment log: sessions with their curves, the event log (alarms, state changes),
//! counters, protocols and runtime settings.
//!
//! The rest of the daemon sees only the [`LogStore`] trait.

use crate::api::Event;
use crate::session::{Outcome, Sample, SessionRecord};

/// Why the log store failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store could not be opened (permissions, disk full, corruption).
    #[error("cannot open the treatment log at {path}: {reason}")]
    Open {
        /// Directory of the store.
        path: String,
        /// Underlying reason.
        reason: String,
    },
    /// A read or write failed.
    #[error("treatment log I/O: {0}")]
    Io(String),
    /// A record could not be decoded (reported and skipped by queries).
    #[error("corrupt record {key}: {reason}")]
    Corrupt {
        /// Record key, hex.
        key: String,
        /// What is wrong.
        reason: String,
    },
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

/// The log store as the daemon uses it.
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
}
