//! The session dictionary of the API, one type both ways: the service builds it from the
//! treatment log and replies with it (`Sessions.List`, `Sessions.Get`, the JSON of
//! `Sessions.Export`); the proxies, `coldsprayctl`, the report and the kiosk read it back.

use super::convert::Dict;
use crate::model::session::{with_quality_indicators, SessionRecord};
use zbus::zvariant::{DeserializeDict, SerializeDict, Type, Value};

with_quality_indicators! {
    /// A session as `Sessions.List` and `Sessions.Get` describe it; absent values are unknown
    /// (a running session has no end yet). The fields below are followed by the quality
    /// indicators of [`SessionRecord`], under the same names.
    #[derive(Debug, Clone, Default, PartialEq, SerializeDict, DeserializeDict, Type, Value)]
    #[zvariant(signature = "a{sv}", crate = "zbus::zvariant")]
    pub struct SessionInfo {
        /// Session id.
        pub id: u64,
        /// Protocol name.
        pub protocol: String,
        /// `protect` or `prepare`.
        pub goal: String,
        /// `command`, `trigger` or `auto_start`.
        pub cause: String,
        /// Start, ms since the Unix epoch.
        pub started_unix_ms: i64,
        /// End, ms since the Unix epoch (absent while running).
        pub ended_unix_ms: Option<i64>,
        /// Duration, s (absent while running).
        pub duration_s: Option<f64>,
        /// Outcome name, `running` while running.
        pub outcome: String,
        /// Whether it ran to its end.
        pub completed: bool,
        /// Whether it started late after the laser.
        pub late: bool,
        /// End of laser emission to spray, ms.
        pub laser_to_spray_ms: Option<f64>,
        /// Skin target, °C.
        pub skin_target_c: Option<f64>,
        /// Skin floor, °C.
        pub skin_floor_c: f64,
    }
}

impl From<&SessionRecord> for SessionInfo {
    /// A closed session. Absent indicators are absent keys.
    fn from(r: &SessionRecord) -> SessionInfo {
        let s = &r.start;
        SessionInfo {
            id: s.id,
            protocol: s.protocol.clone(),
            goal: s.goal.name().to_string(),
            cause: s.cause.name().to_string(),
            started_unix_ms: s.started_unix_ms,
            ended_unix_ms: Some(r.ended_unix_ms),
            duration_s: Some(r.duration().as_secs_f64()),
            outcome: r.outcome.name().to_string(),
            completed: r.outcome.is_completed(),
            late: s.late,
            laser_to_spray_ms: s.laser_to_spray_ms,
            skin_target_c: s.skin_target_c,
            skin_floor_c: s.skin_floor_c,
            peak_skin_c: r.peak_skin_c,
            min_skin_c: r.min_skin_c,
            time_to_target_ms: r.time_to_target_ms,
            above_40_ms: r.above_40_ms,
            spray_ms: r.spray_ms,
            ended_by_alarm: r.ended_by_alarm.clone(),
        }
    }
}

impl SessionInfo {
    /// A logged session, marking the one still running (`running_id`): the log holds an open
    /// session as if aborted (that is what it would be after a crash), so its outcome reads
    /// `running`, `completed` false, and it has no end time yet.
    pub fn live(r: &SessionRecord, running_id: Option<u64>) -> SessionInfo {
        let mut info = SessionInfo::from(r);
        if running_id == Some(r.start.id) {
            info.outcome = "running".to_string();
            info.completed = false;
            info.ended_unix_ms = None;
            info.duration_s = None;
        }
        info
    }

    /// The same keys and values as a dictionary (absent values are absent keys), e.g. for
    /// [`super::convert::dict_json`].
    pub fn into_dict(self) -> Result<Dict, zbus::zvariant::Error> {
        Dict::try_from(Value::from(self))
    }
}
