//! Opening the store: sled and its trees, the schema migration, the high-water mark beside
//! sled's files, the reopen after a write error, and closing the sessions a crash left open.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use super::{
    codec, corrupt, io, Cause, Inner, Shared, SledStore, StoreConfig, StoreError, StoredSession,
    HIGH_WATER_FILE, META_SCHEMA, SCHEMA_VERSION, STORE_DIR,
};
use crate::model::session::{Outcome, Sample, SessionRecord, SessionStart};

/// Opens (creating if needed) the treatment log in `state_dir/log`.
///
/// Fails with [`StoreError::Open`] naming the directory and the reason when the configuration
/// is invalid, the directory cannot be created or locked (permissions, another process holds
/// it), the disk is full, sled finds its files corrupt, or the schema is newer than this build.
pub fn open(config: &StoreConfig, state_dir: &Path) -> Result<SledStore, StoreError> {
    let path = state_dir.join(STORE_DIR);
    let open_err = |reason: String, source: Option<Cause>| StoreError::Open {
        path: path.display().to_string(),
        reason,
        source,
    };
    config.validate().map_err(|e| {
        open_err(
            format!("invalid [store] configuration: {e}"),
            Some(Box::new(e)),
        )
    })?;
    std::fs::create_dir_all(&path)
        .map_err(|e| open_err(format!("cannot create directory: {e}"), Some(Box::new(e))))?;
    let inner = open_inner(config, &path)?;
    let mark = read_high_water(&path);
    let last = last_session(&inner).map_err(|e| open_err(e.to_string(), Some(Box::new(e))))?;
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
    let open_err = |reason: String, source: Cause| StoreError::Open {
        path: path.display().to_string(),
        reason,
        source: Some(source),
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
            Err(e) => return Err(open_err(format!("sled: {e}"), Box::new(e))),
        }
    };
    let tree = |name: &str| {
        db.open_tree(name)
            .map_err(|e| open_err(format!("tree {name}: {e}"), Box::new(e)))
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
    migrate(&inner).map_err(|e| open_err(e.to_string(), Box::new(e)))?;
    Ok(inner)
}

/// The highest session id the database holds (0 when none).
fn last_session(inner: &Inner) -> Result<u64, StoreError> {
    Ok(inner
        .sessions
        .last()
        .map_err(io)?
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
pub(super) fn write_high_water(dir: &Path, id: u64) -> std::io::Result<()> {
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

/// Why the schema could not be brought up to date (the store is then not opened).
#[derive(Debug, thiserror::Error)]
enum MigrateError {
    /// sled failed reading or writing the version key.
    #[error("{0}")]
    Sled(#[from] sled::Error),
    /// The version key is damaged.
    #[error("schema_version key has {0} bytes, not 4")]
    KeyLength(usize),
    /// A newer build wrote the store.
    #[error("schema version {0} was written by a newer ColdSpray (this one reads up to {SCHEMA_VERSION})")]
    Newer(u32),
    /// No migration step is known from this version.
    #[error("no migration from schema version {0}")]
    NoStep(u32),
}

/// Brings an older layout up to [`SCHEMA_VERSION`]. Version 0 is a store without the key:
/// either new and empty, or written before versioning existed (same layout as 1).
fn migrate(inner: &Inner) -> Result<(), MigrateError> {
    let stored = match inner.meta.get(META_SCHEMA)? {
        None => 0,
        Some(v) => {
            let arr: [u8; 4] = v
                .as_ref()
                .try_into()
                .map_err(|_| MigrateError::KeyLength(v.len()))?;
            u32::from_be_bytes(arr)
        }
    };
    if stored > SCHEMA_VERSION {
        return Err(MigrateError::Newer(stored));
    }
    let mut version = stored;
    while version < SCHEMA_VERSION {
        match version {
            // 0 -> 1: nothing to convert, the version key is new.
            0 => {}
            // 1 -> 2: nothing to convert, old curve chunks stay readable as they are.
            1 => {}
            v => return Err(MigrateError::NoStep(v)),
        }
        version += 1;
        inner.meta.insert(META_SCHEMA, &version.to_be_bytes())?;
        inner.db.flush()?;
        tracing::info!(from = stored, to = version, "treatment log schema migrated");
    }
    Ok(())
}

impl SledStore {
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
