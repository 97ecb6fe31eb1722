//! The sled implementation of the treatment log. See the module documentation of
//! [`crate::store`] for the layout and the durability rules.
//!
//! One file per concern: [`open`](self::open) (open, migration, high-water mark, reopen and
//! the recovery of sessions left open), `write` (recording events and curve chunks), `query`
//! (sessions, curves, the event log), `meta` (counters, protocols, settings, session ids) and
//! `retention` (deleting by age and size). This file holds the shared types and helpers.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use serde::{Deserialize, Serialize};

use super::codec;
use super::config::StoreConfig;
use super::{Cause, LogStore, SessionDetail, SessionQuery, StoreError};
use crate::api::{Counters, Event};
use crate::model::session::{Outcome, Sample, SessionRecord, SessionStart};
use crate::protocol::Protocol;
use coldspray_hal::Sensor;

mod meta;
mod open;
mod query;
mod retention;
mod write;

pub use open::open;
pub use retention::{RetentionHandle, RetentionReport};

/// Schema version written by this build. Bump it and add a step to [`migrate`] whenever the
/// layout of a tree or of a stored document changes incompatibly.
///
/// * 1: the first layout.
/// * 2: curve chunks are written in the packed layout (envelope kind 3); chunks of the first
///   layout (kind 2) are still read, so the migration converts nothing. A build that knows
///   only version 1 refuses a version-2 store instead of reporting its new chunks as corrupt.
pub const SCHEMA_VERSION: u32 = 2;

/// Name of the store's directory under the state directory.
pub const STORE_DIR: &str = "log";

const META_SCHEMA: &[u8] = b"schema_version";
const META_COUNTERS: &[u8] = b"counters";
const META_PROTOCOLS: &[u8] = b"protocols";
const META_SETTINGS: &[u8] = b"settings";
const META_PROBE: &[u8] = b"write_probe";

const DAY_MS: i64 = 86_400_000;

/// File beside sled's own, in the store directory: the highest session id whose opening
/// record was flushed, or whose opening record failed to be written (its session ran all the
/// same), 8 bytes big-endian then their CRC-32 (LE). Kept outside sled so that damage in
/// sled's log, after which sled opens and silently drops everything behind the damage, can be
/// noticed: the mark is then above the last session sled still has. It is also what keeps
/// session ids from being handed out twice when their records were lost.
pub(crate) const HIGH_WATER_FILE: &str = "coldspray-high-water";

/// A query answer together with the records that could not be read (already logged with
/// `tracing::warn!` and skipped).
#[derive(Debug)]
pub struct Checked<T> {
    /// What could be read.
    pub value: T,
    /// Every record that was skipped, as [`StoreError::Corrupt`].
    pub problems: Vec<StoreError>,
}

/// Runtime settings a technician changes (persisted; the config file gives the defaults).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// Reservoir setpoint, °C.
    pub setpoint_c: f64,
    /// Calibration offset per sensor, keyed by [`Sensor::name`], in the sensor's unit.
    pub calibration: BTreeMap<String, f64>,
    /// The unit's settings file (`<state_dir>/settings.json`, the primary copy since it
    /// exists) has been written: a missing file is then a loss, not a unit from before it.
    pub in_file: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            setpoint_c: 4.0,
            calibration: BTreeMap::new(),
            in_file: false,
        }
    }
}

impl Settings {
    /// The calibration offset of a sensor (0 when none was set).
    pub fn offset(&self, sensor: Sensor) -> f64 {
        self.calibration.get(sensor.name()).copied().unwrap_or(0.0)
    }

    /// Sets the calibration offset of a sensor.
    pub fn set_offset(&mut self, sensor: Sensor, offset: f64) {
        self.calibration.insert(sensor.name().to_string(), offset);
    }

    /// The settings of a unit: its setpoint and its offsets by sensor index; `in_file` when
    /// the settings file was written first.
    pub fn of_unit(setpoint_c: f64, calibration: [f64; 5], in_file: bool) -> Settings {
        let mut settings = Settings {
            setpoint_c,
            in_file,
            ..Settings::default()
        };
        for s in Sensor::ALL {
            settings.set_offset(s, calibration[s.index()]);
        }
        settings
    }

    /// The calibration offsets by sensor index.
    pub fn calibration_array(&self) -> [f64; 5] {
        let mut calibration = [0.0; 5];
        for s in Sensor::ALL {
            calibration[s.index()] = self.offset(s);
        }
        calibration
    }
}

/// One entry of the event log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoggedEvent {
    /// Wall-clock time, ms since the Unix epoch (the event's own, or when it was recorded).
    pub unix_ms: i64,
    /// The event.
    pub event: Event,
}

/// A session as stored: opening record, closing record once closed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct StoredSession {
    start: SessionStart,
    end: Option<SessionRecord>,
    #[serde(default)]
    curve_deleted_unix_ms: Option<i64>,
}

impl StoredSession {
    fn record(&self) -> SessionRecord {
        match &self.end {
            Some(r) => r.clone(),
            None => open_record(&self.start),
        }
    }
}

/// The record shown for a session still open: ended when it started, outcome `Aborted`.
/// [`SledStore::is_open`] tells such a session apart.
fn open_record(start: &SessionStart) -> SessionRecord {
    SessionRecord {
        start: start.clone(),
        ended_at: start.started_at,
        ended_unix_ms: start.started_unix_ms,
        outcome: Outcome::Aborted,
        peak_skin_c: None,
        min_skin_c: None,
        time_to_target_ms: None,
        above_40_ms: None,
        spray_ms: 0,
        ended_by_alarm: None,
    }
}

/// The open sled database and its trees. Replaced as a whole when the store is reopened
/// after a write error (sled refuses every operation after one, until reopened).
struct Inner {
    db: sled::Db,
    meta: sled::Tree,
    sessions: sled::Tree,
    session_time: sled::Tree,
    open_sessions: sled::Tree,
    samples: sled::Tree,
    events: sled::Tree,
}

/// What lives as long as the store, across reopens.
struct Shared {
    path: PathBuf,
    config: StoreConfig,
    /// The open database; `None` while it is being reopened.
    current: RwLock<Option<Arc<Inner>>>,
    pending: Mutex<HashMap<u64, Vec<Sample>>>,
    problems_seen: AtomicU64,
    high_water: AtomicU64,
    missing_at_open: Option<String>,
}

/// The treatment log on sled. Cheap to clone (all clones share one database).
#[derive(Clone)]
pub struct SledStore {
    inner: Arc<Shared>,
}

impl std::fmt::Debug for SledStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SledStore")
            .field("path", &self.inner.path)
            .finish_non_exhaustive()
    }
}

/// A failed read or write, its cause kept as the source.
fn io(e: impl Into<Cause>) -> StoreError {
    StoreError::Io { source: e.into() }
}

fn hex(key: &[u8]) -> String {
    key.iter().map(|b| format!("{b:02x}")).collect()
}

fn corrupt(tree: &str, key: &[u8], reason: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt {
        key: format!("{tree}/{}", hex(key)),
        reason: reason.to_string(),
    }
}

fn wall_now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn session_time_key(unix_ms: i64, id: u64) -> [u8; 16] {
    let mut k = [0u8; 16];
    k[..8].copy_from_slice(&codec::time_key(unix_ms));
    k[8..].copy_from_slice(&id.to_be_bytes());
    k
}

fn chunk_key(id: u64, first_t_ms: u32) -> [u8; 12] {
    let mut k = [0u8; 12];
    k[..8].copy_from_slice(&id.to_be_bytes());
    k[8..].copy_from_slice(&first_t_ms.to_be_bytes());
    k
}

impl SledStore {
    fn pending(&self) -> MutexGuard<'_, HashMap<u64, Vec<Sample>>> {
        // A panic while holding the buffer leaves plain data behind: keep going with it.
        self.inner.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The open database, or an error while it is being reopened.
    fn db(&self) -> Result<Arc<Inner>, StoreError> {
        self.inner
            .current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .ok_or_else(|| {
                io("the treatment log is closed after a write error (retried until it reopens)")
            })
    }
    /// Closes the database as a failed write would leave it, for tests of the recovery.
    #[cfg(test)]
    pub(crate) fn close_for_test(&self) {
        self.inner
            .current
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .take();
    }

    fn report(&self, problems: &[StoreError]) {
        for p in problems {
            tracing::warn!(path = %self.inner.path.display(), "treatment log: skipped unreadable record: {p}");
        }
        self.inner
            .problems_seen
            .fetch_add(problems.len() as u64, Ordering::Relaxed);
    }

    /// A raw tree, for tests that damage records on purpose.
    #[cfg(test)]
    pub(crate) fn raw_tree(&self, name: &str) -> sled::Tree {
        let i = self.db().expect("store open");
        match name {
            "meta" => i.meta.clone(),
            "sessions" => i.sessions.clone(),
            "session_time" => i.session_time.clone(),
            "open_sessions" => i.open_sessions.clone(),
            "samples" => i.samples.clone(),
            _ => i.events.clone(),
        }
    }

    /// Directory of the store.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// The configuration it was opened with.
    pub fn config(&self) -> &StoreConfig {
        &self.inner.config
    }

    /// Unreadable records met since the store was opened (for a metric).
    pub fn problems_seen(&self) -> u64 {
        self.inner.problems_seen.load(Ordering::Relaxed)
    }

    /// Schema version of the open store.
    pub fn schema_version(&self) -> u32 {
        SCHEMA_VERSION
    }

    /// Writes every buffered curve chunk and syncs everything to disk.
    pub fn flush(&self) -> Result<(), StoreError> {
        let all: Vec<(u64, Vec<Sample>)> = self.pending().drain().collect();
        for (id, samples) in all {
            self.write_chunk(id, &samples)?;
        }
        self.db()?.db.flush().map_err(io)?;
        Ok(())
    }

    /// Bytes sled uses on disk.
    pub fn size_on_disk(&self) -> Result<u64, StoreError> {
        self.db()?.db.size_on_disk().map_err(io)
    }

    /// Whether a session is open (started, not yet ended or aborted).
    pub fn is_open(&self, id: u64) -> Result<bool, StoreError> {
        self.db()?
            .open_sessions
            .contains_key(id.to_be_bytes())
            .map_err(io)
    }
}

impl LogStore for SledStore {
    fn record(&self, event: &Event) -> Result<(), StoreError> {
        self.record_event(event)
    }

    fn sessions(&self, query: &SessionQuery) -> Result<Vec<SessionRecord>, StoreError> {
        self.sessions_checked(query).map(|c| c.value)
    }

    fn session(&self, id: u64) -> Result<Option<SessionDetail>, StoreError> {
        self.session_checked(id).map(|c| c.value)
    }

    fn size_on_disk(&self) -> Option<u64> {
        SledStore::size_on_disk(self).ok()
    }

    fn save_counters(&self, counters: &Counters) -> Result<(), StoreError> {
        SledStore::save_counters(self, counters)
    }

    fn save_protocols(&self, protocols: &[Protocol]) -> Result<(), StoreError> {
        SledStore::save_protocols(self, protocols)
    }

    fn save_settings(&self, settings: &Settings) -> Result<(), StoreError> {
        SledStore::save_settings(self, settings)
    }

    fn flush(&self) -> Result<(), StoreError> {
        SledStore::flush(self)
    }

    fn recover(&self) -> Result<(), StoreError> {
        self.reopen()?;
        self.prove_writable()
    }

    fn load_counters(&self) -> Result<Option<Counters>, StoreError> {
        SledStore::load_counters(self)
    }

    fn load_protocols(&self) -> Result<Option<Vec<Protocol>>, StoreError> {
        SledStore::load_protocols(self)
    }

    fn load_settings(&self) -> Result<Option<Settings>, StoreError> {
        SledStore::load_settings(self)
    }

    fn close_open_sessions(&self, now_unix_ms: i64) -> Result<Vec<u64>, StoreError> {
        SledStore::close_open_sessions(self, now_unix_ms)
    }

    fn next_session_id(&self) -> Result<u64, StoreError> {
        SledStore::next_session_id(self)
    }

    fn lost_at_open(&self) -> Option<String> {
        self.missing_at_open().map(str::to_owned)
    }
}
