//! Retention: curves by age and, above `max_size_mb`, oldest first; records and events by
//! `record_retention_days`; in the background on the runtime's blocking pool.

use std::sync::{Arc, Mutex};

use sled::Transactional;

use super::{codec, io, SledStore, StoreError, DAY_MS};

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

impl SledStore {
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

    /// Starts background retention on the calling tokio runtime (the daemon's main runtime):
    /// a pass at once, then every `retention_check_s`, with wall-clock time from `clock` (ms
    /// since the Unix epoch; injectable for tests). Each pass runs on the runtime's blocking
    /// pool, on a thread that exists only while passes run (ARCHITECTURE.md, "Threads"), in
    /// small per-session steps, so the control loop's `record()` calls never wait for it.
    /// Dropping the handle stops it; [`RetentionHandle::stop`] also waits for a pass under way.
    pub fn spawn_retention(
        &self,
        clock: Arc<dyn Fn() -> i64 + Send + Sync>,
    ) -> Result<RetentionHandle, StoreError> {
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|e| io(format!("retention runs on the daemon's tokio runtime: {e}")))?;
        let store = self.clone();
        let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(());
        let state = Arc::new(Mutex::new(RetentionState::default()));
        let task_state = Arc::clone(&state);
        let period = std::time::Duration::from_secs_f64(self.inner.config.retention_check_s);
        let task = runtime.spawn(async move {
            loop {
                let (pass_store, pass_clock) = (store.clone(), Arc::clone(&clock));
                let result =
                    tokio::task::spawn_blocking(move || pass_store.enforce_retention(pass_clock()))
                        .await;
                {
                    let mut st = task_state.lock().unwrap_or_else(|p| p.into_inner());
                    st.runs += 1;
                    match result {
                        Ok(Ok(r)) => st.last = Some(r),
                        Ok(Err(e)) => {
                            tracing::warn!("treatment log retention pass failed: {e}");
                            st.failures += 1;
                        }
                        Err(e) => {
                            tracing::error!("treatment log retention pass did not finish: {e}");
                            st.failures += 1;
                        }
                    }
                }
                tokio::select! {
                    _ = tokio::time::sleep(period) => {}
                    // A stop, or the handle dropped.
                    _ = stop_rx.changed() => return,
                }
            }
        });
        Ok(RetentionHandle {
            stop: Some(stop_tx),
            task: Some(task),
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

/// The running retention task; dropping it stops the task (a pass under way finishes on its
/// blocking thread).
#[derive(Debug)]
pub struct RetentionHandle {
    stop: Option<tokio::sync::watch::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
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

    /// Stops the task and waits for it (and for a pass under way).
    pub async fn stop(mut self) {
        drop(self.stop.take());
        if let Some(task) = self.task.take() {
            if let Err(e) = task.await {
                tracing::warn!("treatment log retention task ended abnormally: {e}");
            }
        }
    }
}

impl Drop for RetentionHandle {
    fn drop(&mut self) {
        // Without a wait: the task sees the closed channel at its next sleep.
        drop(self.stop.take());
    }
}
