//! `org.coldspray.ColdSpray1.Sessions`: the treatment log (list, one session with its curve,
//! export, statistics). Store reads run on the blocking pool. Doc comments here become the
//! comments of the introspection XML.

use super::access::Access;
use super::convert::{self, CurvePoint, Dict};
use super::error::Error;
use super::guard::{guarded_interface, Guard};
use super::live::LiveCurve;
use super::validate as v;
use super::wire::SessionInfo;
use crate::handle::ControlHandle;
use crate::model::session::SessionRecord;
use crate::store::{LogStore, SessionQuery, Stats};
use std::collections::HashMap;
use std::sync::Arc;
use zbus::zvariant::OwnedValue;

/// `org.coldspray.ColdSpray1.Sessions`: the treatment log.
pub struct Sessions {
    h: ControlHandle,
    guard: Guard,
    live: Arc<LiveCurve>,
}

impl Sessions {
    /// Serves the daemon behind `h`, callers checked by `access`; `live` is the running
    /// session's curve, fed by [`super::live::follow`].
    pub fn new(h: ControlHandle, access: Access, live: Arc<LiveCurve>) -> Sessions {
        Sessions {
            guard: Guard::new(h.clone(), access, "Sessions"),
            h,
            live,
        }
    }
}

impl Sessions {
    fn store(&self) -> Result<Arc<dyn LogStore>, Error> {
        self.h.store.clone().ok_or_else(|| {
            Error::StoreUnavailable("the treatment log is not available on this unit".into())
        })
    }

    /// The id of the session running now, if any.
    fn running_id(&self) -> Option<u64> {
        self.h.snapshot().session.as_ref().map(|s| s.start.id)
    }

    async fn query(
        &self,
        filter: &HashMap<String, OwnedValue>,
    ) -> Result<Vec<SessionRecord>, Error> {
        let q: SessionQuery = v::session_query(filter)?;
        let store = self.store()?;
        tokio::task::spawn_blocking(move || store.sessions(&q))
            .await
            .map_err(|e| Error::StoreError(e.to_string()))?
            .map_err(Error::from)
    }
}

guarded_interface! {
    #[interface(name = "org.coldspray.ColdSpray1.Sessions")]
    impl Sessions {
        methods {
            /// List: closed sessions matching filter, newest first. filter keys (all optional):
            /// from_unix_ms x, to_unix_ms x, protocol s, outcome s, limit u (1..10000, default
            /// 10000). Each session: id t, protocol s, goal s, cause s, started_unix_ms x,
            /// ended_unix_ms x, duration_s d, outcome s, completed b, late b, laser_to_spray_ms d,
            /// skin_target_c d, skin_floor_c d, peak_skin_c d, min_skin_c d, time_to_target_ms t,
            /// above_40_ms t, spray_ms t, ended_by_alarm s (absent keys: unknown). Errors:
            /// InvalidArgument, StoreUnavailable.
            async fn list(
                &self,
                hdr,
                conn,
                filter: HashMap<String, OwnedValue>,
            ) -> [Vec<SessionInfo>] {
                let running = self.running_id();
                let records = self.query(&filter).await?;
                Ok(records
                    .iter()
                    .map(|rec| SessionInfo::live(rec, running))
                    .collect())
            }

            /// Get: one session with its 10 Hz curve of (t_ms, mist_c, skin_c, reservoir_c,
            /// pressure_bar, pump, valve); a missing reading is NaN. Errors: UnknownSession,
            /// StoreUnavailable.
            #[zbus(out_args("session", "curve"))]
            async fn get(&self, hdr, conn, id: u64) -> [(SessionInfo, Vec<CurvePoint>)] {
                let store = self.store()?;
                let detail = tokio::task::spawn_blocking(move || store.session(id))
                    .await
                    .map_err(|e| Error::StoreError(e.to_string()))??;
                let d = detail.ok_or_else(|| Error::UnknownSession(format!("no session {id}")))?;
                Ok((
                    SessionInfo::live(&d.record, self.running_id()),
                    d.samples.iter().map(convert::sample).collect(),
                ))
            }

            /// Export: the sessions matching filter (as in List, newest first) as text, format
            /// "csv" (a header line, then one line per session; the columns are List's keys plus
            /// started_utc and open, empty cells are absent values) or "json" (an array of objects
            /// with exactly List's keys and values; absent keys are unknown). Errors:
            /// InvalidArgument, StoreUnavailable.
            async fn export(
                &self,
                hdr,
                conn,
                filter: HashMap<String, OwnedValue>,
                format: String,
            ) -> [String] {
                if format != "csv" && format != "json" {
                    return Err(Error::InvalidArgument(format!(
                        "unknown format `{}` (csv or json)",
                        format.chars().take(32).collect::<String>()
                    )));
                }
                let running = self.running_id();
                let records = self.query(&filter).await?;
                if format == "json" {
                    let rows = records
                        .iter()
                        .map(|r| {
                            let d = SessionInfo::live(r, running).into_dict();
                            d.map(|d| convert::dict_json(&d))
                        })
                        .collect::<Result<Vec<_>, _>>()
                        .map_err(|e| Error::StoreError(e.to_string()))?;
                    serde_json::to_string(&rows).map_err(|e| Error::StoreError(e.to_string()))
                } else {
                    crate::store::sessions_csv(&records, running).map_err(Error::from)
                }
            }

            /// LiveCurve: the curve of the running session as it forms (or of the last session,
            /// until the next starts): session_id (0 before the first), running, next (the index to
            /// pass as since next time), and the samples from index since on, as in Get. Poll it
            /// about once a second while a session runs; a gap in t_ms means samples were missed.
            #[zbus(out_args("session_id", "running", "next", "curve"))]
            async fn live_curve(
                &self,
                hdr,
                conn,
                since: u32,
            ) -> [(u64, bool, u32, Vec<CurvePoint>)] {
                let (id, running, next, samples) = self.live.since(since);
                Ok((
                    id,
                    running,
                    next,
                    samples.iter().map(convert::sample).collect(),
                ))
            }

            /// Stats: figures over the sessions matching filter: count t, completed t, late t,
            /// by_outcome a{st}, mean_laser_to_spray_ms d, max_laser_to_spray_ms d, mean_spray_s d,
            /// max_peak_skin_c d (absent when no data). Errors: InvalidArgument, StoreUnavailable.
            async fn stats(&self, hdr, conn, filter: HashMap<String, OwnedValue>) -> [Dict] {
                Ok(super::stats_dict(&Stats::of(&self.query(&filter).await?)))
            }
        }

    }
}
