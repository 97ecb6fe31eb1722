//! Reading: sessions by time, one session with its curve, the event log. Unreadable records
//! are reported and skipped.

use super::{codec, corrupt, io, Checked, LoggedEvent, SledStore, StoreError, StoredSession};
use crate::api::Event;
use crate::model::session::{Sample, SessionRecord};
use crate::store::{SessionDetail, SessionQuery};

impl SledStore {
    pub(super) fn load_session(&self, id: u64) -> Result<Option<StoredSession>, StoreError> {
        let key = id.to_be_bytes();
        match self.db()?.sessions.get(key).map_err(io)? {
            None => Ok(None),
            Some(v) => codec::open_json(&v)
                .map(Some)
                .map_err(|e| corrupt("sessions", &key, e)),
        }
    }

    /// The curve of a session: stored chunks plus what is still buffered.
    pub(super) fn load_samples(&self, id: u64) -> Result<Checked<Vec<Sample>>, StoreError> {
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
}
