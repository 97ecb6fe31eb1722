//! The `meta` tree: counters, protocols and settings (each flushed on save), the write
//! probe, and the next session id.

use std::sync::atomic::Ordering;

use serde::Serialize;

use super::{
    codec, corrupt, io, wall_now_ms, Settings, SledStore, StoreError, META_COUNTERS, META_PROBE,
    META_PROTOCOLS, META_SETTINGS,
};
use crate::api::Counters;
use crate::protocol::Protocol;

impl SledStore {
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
}
