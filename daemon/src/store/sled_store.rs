//! The sled implementation of the treatment log. See the module documentation of
//! [`crate::store`] for the layout and the durability rules.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use serde::{Deserialize, Serialize};
use sled::Transactional;

use super::codec;
use super::config::StoreConfig;
use super::{LogStore, SessionDetail, SessionQuery, StoreError};
use crate::api::{Counters, Event};
use crate::protocol::Protocol;
use crate::session::{Outcome, Sample, SessionRecord, SessionStart};
use coldspray_hal::Sensor;

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
}

/// One entry of the event log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoggedEvent {
    /// Wall-clock time, ms since the Unix epoch (the event's own, or when it was recorded).
    pub unix_ms: i64,
    /// The event.
    pub event: Event,
}

/// Statistics over sessions started in a time range (days are UTC days).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    /// Range start, ms since the Unix epoch (inclusive).
    pub from_unix_ms: i64,
    /// Range end, ms since the Unix epoch (exclusive).
    pub to_unix_ms: i64,
    /// Sessions started in the range.
    pub sessions: u64,
    /// Sessions per UTC day (`YYYY-MM-DD`), days without sessions omitted.
    pub sessions_per_day: BTreeMap<String, u64>,
    /// Sessions per outcome name.
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
    /// Records that could not be read (skipped).
    pub problems: Vec<String>,
}

/// What one retention pass did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RetentionReport {
    /// Sessions whose curve was deleted for age.
    pub curves_expired: usize,
    /// Sessions whose curve was deleted to respect `max_size_mb`.
    pub curves_for_space: usize,
    /// Session records deleted for age (`record_retention_days`).
    pub sessions_removed: usize,
    /// Event-log entries deleted for age.
    pub events_removed: usize,
    /// Live bytes (keys + values) after the pass.
    pub live_bytes: u64,
    /// Records that could not be read during the pass.
    pub problems: Vec<String>,
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

fn io(e: impl std::fmt::Display) -> StoreError {
    StoreError::Io(e.to_string())
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

/// Wall-clock time of an event, when it carries one.
fn event_time(event: &Event) -> Option<i64> {
    match event {
        Event::StateChanged { unix_ms, .. }
        | Event::AlarmConditionCleared { unix_ms, .. }
        | Event::AlarmAcknowledged { unix_ms, .. }
        | Event::AlarmRemoved { unix_ms, .. }
        | Event::ConfigChanged { unix_ms, .. }
        | Event::NotRecorded { unix_ms, .. } => Some(*unix_ms),
        Event::AlarmRaised(a) => Some(a.raised_unix_ms),
        Event::SessionStarted(s) => Some(s.started_unix_ms),
        Event::SessionEnded(r) => Some(r.ended_unix_ms),
        Event::Sample(_) | Event::SelfTestFinished { .. } => None,
    }
}

/// Opens (creating if needed) the treatment log in `state_dir/log`.
///
/// Fails with [`StoreError::Open`] naming the directory and the reason when the configuration
/// is invalid, the directory cannot be created or locked (permissions, another process holds
/// it), the disk is full, sled finds its files corrupt, or the schema is newer than this build.
pub fn open(config: &StoreConfig, state_dir: &Path) -> Result<SledStore, StoreError> {
    let path = state_dir.join(STORE_DIR);
    let open_err = |reason: String| StoreError::Open {
        path: path.display().to_string(),
        reason,
    };
    config
        .validate()
        .map_err(|e| open_err(format!("invalid [store] configuration: {e}")))?;
    std::fs::create_dir_all(&path)
        .map_err(|e| open_err(format!("cannot create directory: {e}")))?;
    let inner = open_inner(config, &path)?;
    let mark = read_high_water(&path);
    let last = last_session(&inner).map_err(|e| open_err(e.to_string()))?;
    let mut missing_at_open = None;
    let problems_seen = AtomicU64::new(0);
    if mark > last {
        let msg = format!(
            "records missing after the last good point: sessions up to {mark} were handed out, \
             the log ends at session {last} (damage in sled's files dropped what followed, or \
             their writes failed)"
        );
        tracing::error!(path = %path.display(), "treatment log: {msg}");
        problems_seen.fetch_add(1, Ordering::Relaxed);
        missing_at_open = Some(msg);
    }
    Ok(SledStore {
        inner: Arc::new(Shared {
            path,
            config: config.clone(),
            current: RwLock::new(Some(Arc::new(inner))),
            pending: Mutex::new(HashMap::new()),
            problems_seen,
            high_water: AtomicU64::new(mark.max(last)),
            missing_at_open,
        }),
    })
}

/// Opens sled in `path` (retrying a held lock) with its trees, migrated to this schema.
fn open_inner(config: &StoreConfig, path: &Path) -> Result<Inner, StoreError> {
    let open_err = |reason: String| StoreError::Open {
        path: path.display().to_string(),
        reason,
    };
    let sled_config = sled::Config::new()
        .path(path)
        .cache_capacity(config.cache_capacity_mb * 1024 * 1024)
        .flush_every_ms(Some(config.flush_every_ms))
        .mode(sled::Mode::LowSpace);
    // sled releases its file lock from a background thread after the last handle is dropped,
    // and a previous daemon (or the handle a reopen just dropped) may still be going: retry a
    // held lock for up to 2 s.
    let mut attempts = 0;
    let db = loop {
        match sled_config.open() {
            Ok(db) => break db,
            Err(sled::Error::Io(e))
                if e.to_string().contains("could not acquire lock") && attempts < 100 =>
            {
                attempts += 1;
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Err(e) => return Err(open_err(format!("sled: {e}"))),
        }
    };
    let tree = |name: &str| {
        db.open_tree(name)
            .map_err(|e| open_err(format!("tree {name}: {e}")))
    };
    let inner = Inner {
        meta: tree("meta")?,
        sessions: tree("sessions")?,
        session_time: tree("session_time")?,
        open_sessions: tree("open_sessions")?,
        samples: tree("samples")?,
        events: tree("events")?,
        db: db.clone(),
    };
    migrate(&inner).map_err(open_err)?;
    Ok(inner)
}

/// The highest session id the database holds (0 when none).
fn last_session(inner: &Inner) -> Result<u64, StoreError> {
    Ok(inner
        .sessions
        .last()
        .map_err(|e| io(format!("tree sessions: {e}")))?
        .and_then(|(k, _)| codec::u64_from_key(&k))
        .unwrap_or(0))
}

/// The high-water mark of `dir` (0 when absent or unreadable; an unreadable one is logged).
fn read_high_water(dir: &Path) -> u64 {
    let file = dir.join(HIGH_WATER_FILE);
    let bytes = match std::fs::read(&file) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return 0,
        Err(e) => {
            tracing::warn!(path = %file.display(), "treatment log high-water mark unreadable: {e}");
            return 0;
        }
    };
    let parsed = (bytes.len() == 12)
        .then(|| {
            let id: [u8; 8] = bytes[..8].try_into().ok()?;
            let crc: [u8; 4] = bytes[8..].try_into().ok()?;
            (crc32fast::hash(&id) == u32::from_le_bytes(crc)).then(|| u64::from_be_bytes(id))
        })
        .flatten();
    parsed.unwrap_or_else(|| {
        tracing::warn!(path = %file.display(), "treatment log high-water mark damaged; ignored");
        0
    })
}

/// Writes and syncs the high-water mark (in place: a torn write fails its CRC and is ignored).
fn write_high_water(dir: &Path, id: u64) -> std::io::Result<()> {
    use std::io::Write;
    let mut bytes = id.to_be_bytes().to_vec();
    bytes.extend_from_slice(&crc32fast::hash(&id.to_be_bytes()).to_le_bytes());
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(dir.join(HIGH_WATER_FILE))?;
    f.write_all(&bytes)?;
    f.sync_data()
}

/// Brings an older layout up to [`SCHEMA_VERSION`]. Version 0 is a store without the key:
/// either new and empty, or written before versioning existed (same layout as 1).
fn migrate(inner: &Inner) -> Result<(), String> {
    let stored = match inner.meta.get(META_SCHEMA).map_err(|e| e.to_string())? {
        None => 0,
        Some(v) => {
            let arr: [u8; 4] = v
                .as_ref()
                .try_into()
                .map_err(|_| format!("schema_version key has {} bytes, not 4", v.len()))?;
            u32::from_be_bytes(arr)
        }
    };
    if stored > SCHEMA_VERSION {
        return Err(format!(
            "schema version {stored} was written by a newer ColdSpray (this one reads up to {SCHEMA_VERSION})"
        ));
    }
    let mut version = stored;
    while version < SCHEMA_VERSION {
        match version {
            // 0 -> 1: nothing to convert, the version key is new.
            0 => {}
            // 1 -> 2: nothing to convert, old curve chunks stay readable as they are.
            1 => {}
            v => return Err(format!("no migration from schema version {v}")),
        }
        version += 1;
        inner
            .meta
            .insert(META_SCHEMA, &version.to_be_bytes())
            .map_err(|e| e.to_string())?;
        inner.db.flush().map_err(|e| e.to_string())?;
        tracing::info!(from = stored, to = version, "treatment log schema migrated");
    }
    Ok(())
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

    /// Closes and reopens the database. sled refuses every write after one failed (a full
    /// disk, EIO) until it is reopened; this is how the log comes back once the cause is gone,
    /// without a restart. Buffered curve samples and the high-water mark are kept. While it
    /// runs, and when it fails, every operation answers an I/O error.
    pub fn reopen(&self) -> Result<(), StoreError> {
        let old = self
            .inner
            .current
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(mut old) = old {
            // Readers hold the old handle only for one call: wait for them (bounded), then
            // drop it so sled releases its file lock.
            for _ in 0..100 {
                match Arc::try_unwrap(old) {
                    Ok(inner) => {
                        drop(inner);
                        break;
                    }
                    Err(still) => {
                        old = still;
                        std::thread::sleep(std::time::Duration::from_millis(10));
                    }
                }
            }
        }
        let fresh = open_inner(&self.inner.config, &self.inner.path)?;
        let last = last_session(&fresh)?;
        self.inner.high_water.fetch_max(last, Ordering::Relaxed);
        *self
            .inner
            .current
            .write()
            .unwrap_or_else(|p| p.into_inner()) = Some(Arc::new(fresh));
        tracing::info!(path = %self.inner.path.display(), "treatment log reopened");
        Ok(())
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

    /// Bytes of live data (keys and values of every tree); what `max_size_mb` caps.
    pub fn live_bytes(&self) -> Result<u64, StoreError> {
        let i = self.db()?;
        let mut total = 0u64;
        for tree in [
            &i.meta,
            &i.sessions,
            &i.session_time,
            &i.open_sessions,
            &i.samples,
            &i.events,
        ] {
            for kv in tree.iter() {
                let (k, v) = kv.map_err(io)?;
                total += (k.len() + v.len()) as u64;
            }
        }
        Ok(total)
    }

    /// An id greater than any stored session id and than any id ever flushed (the
    /// high-water mark), so ids lost to on-disk damage are not handed out again; 1 for an
    /// empty store.
    pub fn next_session_id(&self) -> Result<u64, StoreError> {
        let last = self.db()?.sessions.last().map_err(io)?;
        let last = last.and_then(|(k, _)| codec::u64_from_key(&k)).unwrap_or(0);
        Ok(last
            .max(self.inner.high_water.load(Ordering::Relaxed))
            .saturating_add(1))
    }

    /// Set when the store was opened with fewer sessions than its high-water mark says were
    /// flushed: sled dropped records after damage in its files. Also counted in
    /// [`SledStore::problems_seen`] and logged as an error. It stays set at every open until
    /// sessions above the mark are recorded.
    pub fn missing_at_open(&self) -> Option<&str> {
        self.inner.missing_at_open.as_deref()
    }

    /// Whether a session is open (started, not yet ended or aborted).
    pub fn is_open(&self, id: u64) -> Result<bool, StoreError> {
        self.db()?
            .open_sessions
            .contains_key(id.to_be_bytes())
            .map_err(io)
    }

    fn write_chunk(&self, id: u64, samples: &[Sample]) -> Result<(), StoreError> {
        for part in samples.chunks(codec::MAX_CHUNK_SAMPLES) {
            let Some(first) = part.first() else {
                continue;
            };
            self.db()?
                .samples
                .insert(chunk_key(id, first.t_ms), codec::seal_samples(part))
                .map_err(io)?;
        }
        Ok(())
    }

    fn load_session(&self, id: u64) -> Result<Option<StoredSession>, StoreError> {
        let key = id.to_be_bytes();
        match self.db()?.sessions.get(key).map_err(io)? {
            None => Ok(None),
            Some(v) => codec::open_json(&v)
                .map(Some)
                .map_err(|e| corrupt("sessions", &key, e)),
        }
    }

    fn put_session(
        &self,
        doc: &StoredSession,
        old_start_ms: Option<i64>,
    ) -> Result<(), StoreError> {
        let id = doc.start.id;
        let value = codec::seal_json(doc).map_err(io)?;
        let key = id.to_be_bytes();
        let time_key = session_time_key(doc.start.started_unix_ms, id);
        let old_time_key = old_start_ms
            .filter(|&t| t != doc.start.started_unix_ms)
            .map(|t| session_time_key(t, id));
        let is_open = doc.end.is_none();
        let i = self.db()?;
        (&i.sessions, &i.session_time, &i.open_sessions)
            .transaction(|(sessions, index, open)| {
                sessions.insert(&key, value.as_slice())?;
                if let Some(old) = &old_time_key {
                    index.remove(old)?;
                }
                index.insert(&time_key, &[])?;
                if is_open {
                    open.insert(&key, &[])?;
                } else {
                    open.remove(&key)?;
                }
                Ok::<(), sled::transaction::ConflictableTransactionError<()>>(())
            })
            .map_err(|e| io(format!("session {id}: {e:?}")))
    }

    /// The curve of a session: stored chunks plus what is still buffered.
    fn load_samples(&self, id: u64) -> Result<Checked<Vec<Sample>>, StoreError> {
        let mut samples = Vec::new();
        let mut problems = Vec::new();
        for kv in self.db()?.samples.scan_prefix(id.to_be_bytes()) {
            let (k, v) = kv.map_err(io)?;
            match codec::open_samples(id, &v) {
                Ok(mut chunk) => samples.append(&mut chunk),
                Err(e) => problems.push(corrupt("samples", &k, e)),
            }
        }
        if let Some(buffered) = self.pending().get(&id) {
            samples.extend_from_slice(buffered);
        }
        Ok(Checked {
            value: samples,
            problems,
        })
    }

    fn log_event(&self, event: &Event) -> Result<(), StoreError> {
        let unix_ms = event_time(event).unwrap_or_else(wall_now_ms);
        let seq = self.db()?.db.generate_id().map_err(io)?;
        let mut key = [0u8; 16];
        key[..8].copy_from_slice(&codec::time_key(unix_ms));
        key[8..].copy_from_slice(&seq.to_be_bytes());
        let value = codec::seal_json(event).map_err(io)?;
        self.db()?.events.insert(key, value).map_err(io)?;
        Ok(())
    }

    /// Closes every session left open by a crash or power loss as [`Outcome::Aborted`], with
    /// the quality indicators its stored curve supports, and returns their ids. Its end time is
    /// its last stored sample (its start when it has none), never later than `now_unix_ms`.
    /// Call once at start-up, before recording anything.
    pub fn close_open_sessions(&self, now_unix_ms: i64) -> Result<Vec<u64>, StoreError> {
        let mut closed = Vec::new();
        let keys: Vec<sled::IVec> = self
            .db()?
            .open_sessions
            .iter()
            .keys()
            .collect::<Result<_, _>>()
            .map_err(io)?;
        for key in keys {
            let Some(id) = codec::u64_from_key(&key) else {
                let p = corrupt("open_sessions", &key, "key is not a session id");
                self.report(std::slice::from_ref(&p));
                continue;
            };
            if let Some(buffered) = self.pending().remove(&id) {
                self.write_chunk(id, &buffered)?;
            }
            let doc = match self.load_session(id) {
                Ok(Some(doc)) => doc,
                Ok(None) => {
                    let p = corrupt(
                        "open_sessions",
                        &key,
                        "open marker without a session record",
                    );
                    self.report(std::slice::from_ref(&p));
                    self.db()?.open_sessions.remove(&key).map_err(io)?;
                    continue;
                }
                Err(p) => {
                    // Keep the marker: the record is unreadable, not gone; report every start.
                    self.report(std::slice::from_ref(&p));
                    continue;
                }
            };
            let curve = self.load_samples(id)?;
            self.report(&curve.problems);
            let record = aborted_record(&doc.start, &curve.value, now_unix_ms);
            let started = doc.start.started_unix_ms;
            let new_doc = StoredSession {
                start: doc.start,
                end: Some(record),
                curve_deleted_unix_ms: doc.curve_deleted_unix_ms,
            };
            self.put_session(&new_doc, Some(started))?;
            tracing::warn!(
                session = id,
                "session left open by a crash closed as aborted"
            );
            closed.push(id);
        }
        self.db()?.db.flush().map_err(io)?;
        Ok(closed)
    }

    /// Fetches one session with its curve, reporting unreadable curve chunks.
    pub fn session_checked(&self, id: u64) -> Result<Checked<Option<SessionDetail>>, StoreError> {
        let doc = match self.load_session(id) {
            Ok(Some(doc)) => doc,
            Ok(None) => {
                return Ok(Checked {
                    value: None,
                    problems: Vec::new(),
                })
            }
            Err(p @ StoreError::Corrupt { .. }) => {
                self.report(std::slice::from_ref(&p));
                return Ok(Checked {
                    value: None,
                    problems: vec![p],
                });
            }
            Err(e) => return Err(e),
        };
        let curve = self.load_samples(id)?;
        self.report(&curve.problems);
        Ok(Checked {
            value: Some(SessionDetail {
                record: doc.record(),
                samples: curve.value,
            }),
            problems: curve.problems,
        })
    }

    /// Lists sessions (newest first), reporting unreadable records.
    pub fn sessions_checked(
        &self,
        query: &SessionQuery,
    ) -> Result<Checked<Vec<SessionRecord>>, StoreError> {
        let from = codec::time_key(query.from_unix_ms.unwrap_or(i64::MIN));
        let to = codec::time_key(query.to_unix_ms.unwrap_or(i64::MAX));
        let mut out = Vec::new();
        let mut problems = Vec::new();
        for kv in self.db()?.session_time.range(from..to).rev() {
            if query.limit.is_some_and(|l| out.len() >= l) {
                break;
            }
            let (k, _) = kv.map_err(io)?;
            let Some(id) = k.get(8..).and_then(codec::u64_from_key) else {
                problems.push(corrupt("session_time", &k, "index key is not time and id"));
                continue;
            };
            let doc = match self.load_session(id) {
                Ok(Some(doc)) => doc,
                Ok(None) => {
                    problems.push(corrupt(
                        "session_time",
                        &k,
                        format!("session {id} is missing"),
                    ));
                    continue;
                }
                Err(p @ StoreError::Corrupt { .. }) => {
                    problems.push(p);
                    continue;
                }
                Err(e) => return Err(e),
            };
            let record = doc.record();
            if query
                .protocol
                .as_ref()
                .is_some_and(|p| *p != record.start.protocol)
            {
                continue;
            }
            if query.outcome.is_some_and(|o| o != record.outcome) {
                continue;
            }
            out.push(record);
        }
        self.report(&problems);
        Ok(Checked {
            value: out,
            problems,
        })
    }

    /// Event-log entries (alarms, state changes, configuration changes, self-tests) with
    /// `from_unix_ms <= time < to_unix_ms`, newest first, at most `limit`.
    pub fn events(
        &self,
        from_unix_ms: i64,
        to_unix_ms: i64,
        limit: Option<usize>,
    ) -> Result<Checked<Vec<LoggedEvent>>, StoreError> {
        let mut out = Vec::new();
        let mut problems = Vec::new();
        let range = codec::time_key(from_unix_ms)..codec::time_key(to_unix_ms);
        for kv in self.db()?.events.range(range).rev() {
            if limit.is_some_and(|l| out.len() >= l) {
                break;
            }
            let (k, v) = kv.map_err(io)?;
            let Some(unix_ms) = codec::time_from_key(&k) else {
                problems.push(corrupt("events", &k, "key too short"));
                continue;
            };
            match codec::open_json::<Event>(&v) {
                Ok(event) => out.push(LoggedEvent { unix_ms, event }),
                Err(e) => problems.push(corrupt("events", &k, e)),
            }
        }
        self.report(&problems);
        Ok(Checked {
            value: out,
            problems,
        })
    }

    /// Statistics over the sessions started in `from_unix_ms..to_unix_ms`.
    pub fn stats(&self, from_unix_ms: i64, to_unix_ms: i64) -> Result<Stats, StoreError> {
        let listed = self.sessions_checked(&SessionQuery {
            from_unix_ms: Some(from_unix_ms),
            to_unix_ms: Some(to_unix_ms),
            ..SessionQuery::default()
        })?;
        let mut s = Stats {
            from_unix_ms,
            to_unix_ms,
            problems: listed.problems.iter().map(ToString::to_string).collect(),
            ..Stats::default()
        };
        let mut delay_sum = 0.0;
        for r in &listed.value {
            s.sessions += 1;
            *s.sessions_per_day
                .entry(super::export::utc_date(r.start.started_unix_ms))
                .or_default() += 1;
            *s.by_outcome
                .entry(r.outcome.name().to_string())
                .or_default() += 1;
            s.late_starts += u64::from(r.start.late);
            s.total_spray_ms += r.spray_ms;
            if let Some(d) = r.start.laser_to_spray_ms.filter(|d| d.is_finite()) {
                s.with_laser_delay += 1;
                delay_sum += d;
                s.max_laser_to_spray_ms =
                    Some(s.max_laser_to_spray_ms.map_or(d, |m: f64| m.max(d)));
            }
        }
        if s.with_laser_delay > 0 {
            s.mean_laser_to_spray_ms = Some(delay_sum / s.with_laser_delay as f64);
        }
        Ok(s)
    }

    fn load_meta<T: serde::de::DeserializeOwned>(
        &self,
        key: &[u8],
    ) -> Result<Option<T>, StoreError> {
        match self.db()?.meta.get(key).map_err(io)? {
            None => Ok(None),
            Some(v) => codec::open_json(&v).map(Some).map_err(|e| {
                let p = corrupt("meta", key, e);
                self.report(std::slice::from_ref(&p));
                p
            }),
        }
    }

    fn save_meta<T: Serialize>(&self, key: &[u8], value: &T) -> Result<(), StoreError> {
        let v = codec::seal_json(value).map_err(io)?;
        self.db()?.meta.insert(key, v).map_err(io)?;
        self.db()?.db.flush().map_err(io)?;
        Ok(())
    }

    /// The service counters, `None` when never saved. A corrupt record is
    /// [`StoreError::Corrupt`] (and logged): the caller decides how to go on.
    pub fn load_counters(&self) -> Result<Option<Counters>, StoreError> {
        self.load_meta(META_COUNTERS)
    }

    /// Saves the service counters (flushed before returning).
    pub fn save_counters(&self, counters: &Counters) -> Result<(), StoreError> {
        self.save_meta(META_COUNTERS, counters)
    }

    /// The protocols, `None` when never saved (use [`Protocol::factory_defaults`]).
    pub fn load_protocols(&self) -> Result<Option<Vec<Protocol>>, StoreError> {
        self.load_meta(META_PROTOCOLS)
    }

    /// Saves the whole protocol list (flushed before returning).
    pub fn save_protocols(&self, protocols: &[Protocol]) -> Result<(), StoreError> {
        self.save_meta(META_PROTOCOLS, &protocols)
    }

    /// Writes and flushes a small record (the wall-clock time): `Ok` proves the log takes
    /// writes again after a failure.
    pub fn prove_writable(&self) -> Result<(), StoreError> {
        self.save_meta(META_PROBE, &wall_now_ms())
    }

    /// The runtime settings, `None` when never saved (use the configuration's).
    pub fn load_settings(&self) -> Result<Option<Settings>, StoreError> {
        self.load_meta(META_SETTINGS)
    }

    /// Saves the runtime settings (flushed before returning).
    pub fn save_settings(&self, settings: &Settings) -> Result<(), StoreError> {
        self.save_meta(META_SETTINGS, settings)
    }

    /// Deletes the curve of one session; returns the bytes removed.
    fn delete_curve(&self, id: u64, now_unix_ms: i64) -> Result<u64, StoreError> {
        let mut batch = sled::Batch::default();
        let mut bytes = 0u64;
        for kv in self.db()?.samples.scan_prefix(id.to_be_bytes()) {
            let (k, v) = kv.map_err(io)?;
            bytes += (k.len() + v.len()) as u64;
            batch.remove(k);
        }
        self.db()?.samples.apply_batch(batch).map_err(io)?;
        if let Ok(Some(mut doc)) = self.load_session(id) {
            let started = doc.start.started_unix_ms;
            doc.curve_deleted_unix_ms = Some(now_unix_ms);
            self.put_session(&doc, Some(started))?;
        }
        Ok(bytes)
    }

    /// The oldest session (id > `after`) that still has a curve and is closed, with its start.
    fn oldest_curve(&self, after: Option<u64>) -> Result<Option<(u64, Option<i64>)>, StoreError> {
        let from = after.map_or(0, |a| a.saturating_add(1));
        let Some((k, _)) = self
            .db()?
            .samples
            .range(from.to_be_bytes()..)
            .next()
            .transpose()
            .map_err(io)?
        else {
            return Ok(None);
        };
        let Some(id) = codec::u64_from_key(&k) else {
            return Ok(None);
        };
        if self.is_open(id)? {
            // Open sessions keep their curve; later ids are newer still.
            return Ok(None);
        }
        match self.load_session(id) {
            Ok(Some(doc)) => Ok(Some((id, Some(doc.start.started_unix_ms)))),
            // A curve without a readable record: its age is unknown; it only goes for space.
            Ok(None) | Err(_) => Ok(Some((id, None))),
        }
    }

    /// One retention pass at wall-clock time `now_unix_ms` (see [`StoreConfig`]): expired
    /// curves, then expired records and events, then curves oldest first while the live data
    /// is above `max_size_mb`. Counters, protocols and settings are never deleted.
    pub fn enforce_retention(&self, now_unix_ms: i64) -> Result<RetentionReport, StoreError> {
        let cfg = &self.inner.config;
        let mut report = RetentionReport::default();
        if cfg.curve_retention_days > 0 {
            let cutoff = now_unix_ms - i64::from(cfg.curve_retention_days) * DAY_MS;
            let mut after = None;
            while let Some((id, started)) = self.oldest_curve(after)? {
                match started {
                    Some(t) if t < cutoff => {
                        self.delete_curve(id, now_unix_ms)?;
                        report.curves_expired += 1;
                    }
                    Some(_) => break,
                    None => {}
                }
                after = Some(id);
            }
        }
        if cfg.record_retention_days > 0 {
            let cutoff = now_unix_ms - i64::from(cfg.record_retention_days) * DAY_MS;
            let old: Vec<sled::IVec> = self
                .db()?
                .session_time
                .range(..codec::time_key(cutoff))
                .keys()
                .collect::<Result<_, _>>()
                .map_err(io)?;
            for k in old {
                let Some(id) = k.get(8..).and_then(codec::u64_from_key) else {
                    continue;
                };
                if self.is_open(id)? {
                    continue;
                }
                self.delete_curve(id, now_unix_ms)?;
                let key = id.to_be_bytes();
                let i = self.db()?;
                (&i.sessions, &i.session_time)
                    .transaction(|(sessions, index)| {
                        sessions.remove(&key)?;
                        index.remove(&k)?;
                        Ok::<(), sled::transaction::ConflictableTransactionError<()>>(())
                    })
                    .map_err(|e| io(format!("{e:?}")))?;
                report.sessions_removed += 1;
            }
            let mut batch = sled::Batch::default();
            for k in self.db()?.events.range(..codec::time_key(cutoff)).keys() {
                batch.remove(k.map_err(io)?);
                report.events_removed += 1;
            }
            self.db()?.events.apply_batch(batch).map_err(io)?;
        }
        let cap = cfg.max_size_mb * 1024 * 1024;
        let mut live = self.live_bytes()?;
        if live > cap {
            let target = cap / 10 * 9;
            let mut after = None;
            while live > target {
                let Some((id, _)) = self.oldest_curve(after)? else {
                    tracing::warn!(
                        live_bytes = live,
                        cap_bytes = cap,
                        "treatment log above max_size_mb with no curve left to delete: \
                         records, alarms and counters are kept; raise max_size_mb"
                    );
                    break;
                };
                live = live.saturating_sub(self.delete_curve(id, now_unix_ms)?);
                report.curves_for_space += 1;
                after = Some(id);
            }
            live = self.live_bytes()?;
        }
        report.live_bytes = live;
        Ok(report)
    }

    /// Starts the background retention thread: a pass at once, then every
    /// `retention_check_s`, with wall-clock time from `clock` (ms since the Unix epoch;
    /// injectable for tests). It works in small per-session steps on its own thread, so the
    /// control loop's `record()` calls never wait for it. Dropping the handle stops it.
    pub fn spawn_retention(
        &self,
        clock: Arc<dyn Fn() -> i64 + Send + Sync>,
    ) -> Result<RetentionHandle, StoreError> {
        let store = self.clone();
        let (stop_tx, stop_rx) = std::sync::mpsc::channel::<()>();
        let state = Arc::new(Mutex::new(RetentionState::default()));
        let thread_state = Arc::clone(&state);
        let period = std::time::Duration::from_secs_f64(self.inner.config.retention_check_s);
        let join = std::thread::Builder::new()
            .name("coldspray-retention".into())
            .spawn(move || loop {
                let result = store.enforce_retention(clock());
                {
                    let mut st = thread_state.lock().unwrap_or_else(|p| p.into_inner());
                    st.runs += 1;
                    match result {
                        Ok(r) => st.last = Some(r),
                        Err(e) => {
                            tracing::warn!("treatment log retention pass failed: {e}");
                            st.failures += 1;
                        }
                    }
                }
                match stop_rx.recv_timeout(period) {
                    Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                    _ => return,
                }
            })
            .map_err(io)?;
        Ok(RetentionHandle {
            stop: Some(stop_tx),
            join: Some(join),
            state,
        })
    }
}

#[derive(Debug, Default)]
struct RetentionState {
    runs: u64,
    failures: u64,
    last: Option<RetentionReport>,
}

/// The running retention thread; dropping it stops the thread (after its current step).
#[derive(Debug)]
pub struct RetentionHandle {
    stop: Option<std::sync::mpsc::Sender<()>>,
    join: Option<std::thread::JoinHandle<()>>,
    state: Arc<Mutex<RetentionState>>,
}

impl RetentionHandle {
    /// Passes completed (successful or not).
    pub fn runs(&self) -> u64 {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).runs
    }

    /// Passes that failed (each also logged).
    pub fn failures(&self) -> u64 {
        self.state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .failures
    }

    /// The report of the last successful pass.
    pub fn last_report(&self) -> Option<RetentionReport> {
        self.state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .last
            .clone()
    }

    /// Stops the thread and waits for it.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        drop(self.stop.take());
        if let Some(j) = self.join.take() {
            if j.join().is_err() {
                tracing::warn!("treatment log retention thread panicked");
            }
        }
    }
}

impl Drop for RetentionHandle {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// The closing record of a session found open after a crash, from its stored curve.
fn aborted_record(start: &SessionStart, samples: &[Sample], now_unix_ms: i64) -> SessionRecord {
    let last_t = samples.iter().map(|s| u64::from(s.t_ms)).max().unwrap_or(0);
    let ended_unix_ms =
        (start.started_unix_ms + last_t as i64).min(now_unix_ms.max(start.started_unix_ms));
    let span = (ended_unix_ms - start.started_unix_ms).max(0) as u64;
    let skins: Vec<(u32, f64)> = samples
        .iter()
        .filter_map(|s| s.skin_c.map(|c| (s.t_ms, c)))
        .collect();
    let peak = skins
        .iter()
        .map(|&(_, c)| c)
        .fold(None, |m: Option<f64>, c| Some(m.map_or(c, |m| m.max(c))));
    let min = skins
        .iter()
        .map(|&(_, c)| c)
        .fold(None, |m: Option<f64>, c| Some(m.map_or(c, |m| m.min(c))));
    let time_to_target_ms = start.skin_target_c.and_then(|target| {
        skins
            .iter()
            .find(|&&(_, c)| c <= target)
            .map(|&(t, _)| u64::from(t))
    });
    // Time spent in a state: each sample stands for the time until the next one.
    let mut spray_ms = 0u64;
    let mut above_40 = 0u64;
    for w in samples.windows(2) {
        let dt = u64::from(w[1].t_ms.saturating_sub(w[0].t_ms));
        if w[0].valve {
            spray_ms += dt;
        }
        if w[0].skin_c.is_some_and(|c| c > 40.0) {
            above_40 += dt;
        }
    }
    SessionRecord {
        start: start.clone(),
        ended_at: start.started_at + std::time::Duration::from_millis(span),
        ended_unix_ms,
        outcome: Outcome::Aborted,
        peak_skin_c: peak,
        min_skin_c: min,
        time_to_target_ms,
        above_40_ms: if skins.is_empty() {
            None
        } else {
            Some(above_40)
        },
        spray_ms,
        ended_by_alarm: None,
    }
}

impl LogStore for SledStore {
    fn size_on_disk(&self) -> Option<u64> {
        SledStore::size_on_disk(self).ok()
    }

    fn record(&self, event: &Event) -> Result<(), StoreError> {
        match event {
            Event::Sample(s) => {
                let full = {
                    let mut pending = self.pending();
                    let buf = pending.entry(s.session_id).or_default();
                    buf.push(*s);
                    if buf.len() >= self.inner.config.sample_batch {
                        pending.remove(&s.session_id)
                    } else {
                        None
                    }
                };
                if let Some(chunk) = full {
                    self.write_chunk(s.session_id, &chunk)?;
                }
            }
            Event::SessionStarted(start) => {
                let old = self.load_session(start.id).ok().flatten();
                let doc = StoredSession {
                    start: start.clone(),
                    end: None,
                    curve_deleted_unix_ms: None,
                };
                let written = self
                    .put_session(&doc, old.map(|d| d.start.started_unix_ms))
                    .and_then(|()| self.db()?.db.flush().map(drop).map_err(io));
                // After sled synced the record, so a power cut never leaves the mark ahead of
                // a log that is fine. When the write failed the session runs all the same and
                // its id is spent: the mark takes it (in place, so a full disk still takes
                // it), ids are never handed out twice, and the next start reports the loss.
                let raised =
                    start.id > self.inner.high_water.fetch_max(start.id, Ordering::Relaxed);
                let marked = if raised {
                    write_high_water(&self.inner.path, start.id).map_err(io)
                } else {
                    Ok(())
                };
                match (written, marked) {
                    (Err(e), Err(m)) => {
                        tracing::error!(
                            session = start.id,
                            "treatment log: high-water mark not written either: {m}"
                        );
                        return Err(e);
                    }
                    (Err(e), Ok(())) | (Ok(()), Err(e)) => return Err(e),
                    (Ok(()), Ok(())) => {}
                }
            }
            Event::SessionEnded(record) => {
                let id = record.id();
                let buffered = self.pending().remove(&id);
                if let Some(chunk) = buffered {
                    self.write_chunk(id, &chunk)?;
                }
                let old = self.load_session(id).ok().flatten();
                let doc = StoredSession {
                    start: record.start.clone(),
                    end: Some(record.clone()),
                    curve_deleted_unix_ms: old.as_ref().and_then(|d| d.curve_deleted_unix_ms),
                };
                self.put_session(&doc, old.map(|d| d.start.started_unix_ms))?;
                self.db()?.db.flush().map_err(io)?;
            }
            other => {
                self.log_event(other)?;
                if other.is_durable() {
                    self.db()?.db.flush().map_err(io)?;
                }
            }
        }
        Ok(())
    }

    fn sessions(&self, query: &SessionQuery) -> Result<Vec<SessionRecord>, StoreError> {
        self.sessions_checked(query).map(|c| c.value)
    }

    fn session(&self, id: u64) -> Result<Option<SessionDetail>, StoreError> {
        self.session_checked(id).map(|c| c.value)
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        let pending: Vec<(u64, Vec<Sample>)> = self
            .pending
            .get_mut()
            .map(|p| p.drain().collect())
            .unwrap_or_default();
        let current = self
            .current
            .get_mut()
            .map(|c| c.take())
            .unwrap_or_else(|p| p.into_inner().take());
        let Some(inner) = current else {
            if !pending.is_empty() {
                tracing::warn!("treatment log: buffered samples lost at close: the log is closed");
            }
            return;
        };
        for (id, samples) in pending {
            for part in samples.chunks(codec::MAX_CHUNK_SAMPLES) {
                let Some(first) = part.first() else {
                    continue;
                };
                let value = codec::seal_samples(part);
                if let Err(e) = inner.samples.insert(chunk_key(id, first.t_ms), value) {
                    tracing::warn!("treatment log: buffered samples lost at close: {e}");
                }
            }
        }
        if let Err(e) = inner.db.flush() {
            tracing::warn!("treatment log: final flush failed: {e}");
        }
    }
}
