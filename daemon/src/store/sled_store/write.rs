//! Recording: events, curve chunks (batched) and session records (flushed), and the last
//! buffered samples written when the store closes.

use std::sync::atomic::Ordering;

use sled::Transactional;

use super::open::write_high_water;
use super::{
    chunk_key, codec, io, session_time_key, wall_now_ms, Shared, SledStore, StoreError,
    StoredSession,
};
use crate::api::Event;
use crate::model::session::Sample;

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

impl SledStore {
    pub(super) fn write_chunk(&self, id: u64, samples: &[Sample]) -> Result<(), StoreError> {
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

    pub(super) fn put_session(
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

    /// Records one event (see [`crate::store::LogStore::record`]).
    pub(super) fn record_event(&self, event: &Event) -> Result<(), StoreError> {
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
