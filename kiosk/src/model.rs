//! The kiosk's own model of the unit: what one poll of the daemon returned, turned into the
//! values the screens show. Pure functions from the D-Bus data to the model, so every rule
//! here is tested without a window or a bus.

use crate::alarm_text::{self, Language};
use coldsprayd::dbus::convert::{AlarmTuple, CurvePoint, Dict};
use coldsprayd::dbus::proxy::{
    LiveSession, MaintenanceProperties, ProtocolInfo, SessionInfo, UnitProperties,
};

/// One poll of the daemon: the properties of Unit and Maintenance, the protocols and the new
/// samples of the live curve.
#[derive(Debug, Clone, Default)]
pub struct Poll {
    /// `Unit` properties.
    pub unit: UnitProperties,
    /// `Maintenance` properties.
    pub maintenance: MaintenanceProperties,
    /// Every protocol.
    pub protocols: Vec<ProtocolInfo>,
    /// `Sessions.LiveCurve` from the index asked for.
    pub curve: Option<CurveSlice>,
}

/// New samples of the running (or last) session's curve.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CurveSlice {
    /// Session id (0: no session yet).
    pub session_id: u64,
    /// It is still running.
    pub running: bool,
    /// The index to ask from next time.
    pub next: u32,
    /// The index these samples start at.
    pub from: u32,
    /// The samples.
    pub samples: Vec<CurveSample>,
}

/// The curve the session screen draws, grown slice by slice.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LiveCurve {
    /// Session id (0: none yet).
    pub session_id: u64,
    /// Still running.
    pub running: bool,
    /// The index to ask from next time.
    pub next: u32,
    /// Samples, oldest first.
    pub samples: Vec<CurveSample>,
}

impl LiveCurve {
    /// Adds a slice: appended when it continues this curve, else the curve starts over (a
    /// new session; a slice of a new session that does not start at 0 is dropped and asked
    /// again from 0).
    pub fn add(&mut self, slice: CurveSlice) {
        if slice.session_id == self.session_id && slice.from == self.next {
            self.samples.extend(slice.samples);
        } else if slice.from == 0 {
            self.samples = slice.samples;
        } else {
            *self = LiveCurve {
                session_id: slice.session_id,
                ..LiveCurve::default()
            };
            return;
        }
        self.session_id = slice.session_id;
        self.running = slice.running;
        self.next = slice.next;
    }
}

/// IEC 60601-1-8 alarm priority.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Priority {
    /// Immediate response (red, flashing on the unit).
    High,
    /// Prompt response (yellow).
    Medium,
    /// Awareness (cyan).
    Low,
}

impl Priority {
    /// From the daemon's priority name; an unknown name is treated as high (never hidden).
    pub fn from_name(name: &str) -> Priority {
        match name {
            "medium" => Priority::Medium,
            "low" => Priority::Low,
            _ => Priority::High,
        }
    }

    /// The label shown.
    pub fn label(self) -> &'static str {
        match self {
            Priority::High => "HIGH",
            Priority::Medium => "MEDIUM",
            Priority::Low => "LOW",
        }
    }
}

/// One alarm as the alarm screen shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Alarm {
    /// Stable key.
    pub key: String,
    /// Priority.
    pub priority: Priority,
    /// The message in the kiosk's language (built from the alarm's parameters).
    pub message: String,
    /// When it was raised, ms since the Unix epoch.
    pub raised_unix_ms: i64,
    /// Its condition is still present.
    pub present: bool,
    /// It was acknowledged.
    pub acknowledged: bool,
    /// What to do (docs/ALARMS.md).
    pub what_to_do: String,
}

impl Alarm {
    fn new(
        key: &str,
        priority: &str,
        message: String,
        raised_unix_ms: i64,
        present: bool,
        acknowledged: bool,
    ) -> Alarm {
        Alarm {
            key: key.to_string(),
            priority: Priority::from_name(priority),
            message,
            raised_unix_ms,
            present,
            acknowledged,
            what_to_do: alarm_text::what_to_do(key)
                .unwrap_or_else(|| "See the service manual (alarm unknown to this kiosk).".into()),
        }
    }
}

/// The unit's alarms in IEC 60601-1-8 order, their messages in `language` built from each
/// alarm's code and parameters (`AlarmDetails`); an alarm whose parameters this kiosk cannot
/// read, or a daemon without `AlarmDetails`, shows the daemon's English message.
pub fn alarms_of(unit: &UnitProperties, language: Language) -> Vec<Alarm> {
    match &unit.alarm_details {
        Some(details) => sorted(details.iter().filter_map(|d| detail(d, language)).collect()),
        None => alarms(unit.active_alarms.as_deref().unwrap_or(&[])),
    }
}

/// One `AlarmDetails` entry; `None` without a key (not an alarm this kiosk can act on).
fn detail(d: &Dict, language: Language) -> Option<Alarm> {
    let text = |k: &str| {
        d.get(k)
            .and_then(|v| v.try_clone().ok())
            .and_then(|v| String::try_from(v).ok())
    };
    let flag = |k: &str| d.get(k).and_then(|v| bool::try_from(v).ok());
    let key = text("key")?;
    let params = d
        .get("params")
        .and_then(|v| v.try_clone().ok())
        .and_then(|v| Dict::try_from(v).ok())
        .unwrap_or_default();
    let message = alarm_text::message(language, &key, &params)
        .or_else(|| text("message"))
        .unwrap_or_default();
    Some(Alarm::new(
        &key,
        &text("priority").unwrap_or_default(),
        message,
        d.get("raised_unix_ms")
            .and_then(|v| i64::try_from(v).ok())
            .unwrap_or_default(),
        // Unknown reads as the side that keeps the alarm in view.
        flag("condition_present").unwrap_or(true),
        flag("acknowledged").unwrap_or(false),
    ))
}

/// Alarms in IEC 60601-1-8 order: priority first, then unacknowledged before acknowledged,
/// then newest first.
pub fn alarms(raw: &[AlarmTuple]) -> Vec<Alarm> {
    sorted(
        raw.iter()
            .map(|(key, prio, message, raised, present, acked)| {
                Alarm::new(key, prio, message.clone(), *raised, *present, *acked)
            })
            .collect(),
    )
}

fn sorted(mut v: Vec<Alarm>) -> Vec<Alarm> {
    v.sort_by(|a, b| {
        (a.priority, a.acknowledged, -a.raised_unix_ms).cmp(&(
            b.priority,
            b.acknowledged,
            -b.raised_unix_ms,
        ))
    });
    v
}

/// The running session as the session screen shows it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Running {
    /// Session id.
    pub id: u64,
    /// Protocol name.
    pub protocol: String,
    /// Seconds since it started.
    pub elapsed_s: f64,
    /// Seconds left until the protocol's spray cap (the latest it can end).
    pub remaining_s: Option<f64>,
    /// Seconds until it is expected to end.
    pub end_in_s: Option<f64>,
    /// What `end_in_s` rests on: `cap`, `hold` or `estimate`.
    pub end_basis: Option<String>,
    /// Skin target, °C.
    pub target_c: Option<f64>,
    /// Skin floor, °C.
    pub floor_c: Option<f64>,
    /// Started late after the laser.
    pub late: bool,
    /// Skin in the target band.
    pub in_band: bool,
}

/// The running session, if any.
pub fn running(s: &Option<LiveSession>) -> Option<Running> {
    let s = s.as_ref()?;
    Some(Running {
        id: s.id?,
        protocol: s.protocol.clone().unwrap_or_default(),
        elapsed_s: s.elapsed_s.unwrap_or(0.0),
        remaining_s: s.remaining_s,
        end_in_s: s.end_in_s,
        end_basis: s.end_basis.clone(),
        target_c: s.skin_target_c,
        floor_c: s.skin_floor_c,
        late: s.late.unwrap_or(false),
        in_band: s.in_band.unwrap_or(false),
    })
}

/// Why a Start would not spray now, in words for the person at the unit, from the daemon's
/// stable `NotReady` codes (empty when ready).
pub fn not_ready_reasons(u: &UnitProperties) -> Vec<String> {
    let codes = u.not_ready.as_deref().unwrap_or(&[]);
    codes.iter().map(|c| reason_text(c, u)).collect()
}

/// One `NotReady` code in words.
pub fn reason_text(code: &str, u: &UnitProperties) -> String {
    match code {
        "precooling" => match (reservoir(u), u.setpoint) {
            (Some(r), Some(sp)) => format!("Cooling water: {r:.1} °C, needs {sp:.1} °C"),
            _ => "Cooling water: no reservoir reading".to_string(),
        },
        "fault" => "Unit in fault: see Alarms".to_string(),
        "maintenance" => "In maintenance (technician)".to_string(),
        "spraying" => "A session is running".to_string(),
        "starting" => "Starting up: self-test".to_string(),
        "stopping" => "Stopping".to_string(),
        "settings_unconfirmed" => "Settings lost: a technician must confirm them".to_string(),
        "estop" => "E-stop pressed: release it".to_string(),
        "water_low" => "Water low: refill the reservoir".to_string(),
        other => match other.strip_prefix("interlock:") {
            Some(key) => format!("Interlock: {key}"),
            None => format!("Not ready: {other}"),
        },
    }
}

/// Seconds until ready as the daemon estimates it (`None`: unknown).
pub fn ready_in(u: &UnitProperties) -> Option<f64> {
    u.ready_in.filter(|s| s.is_finite() && *s >= 0.0)
}

/// The expected end of the running session in words: what it rests on.
pub fn end_basis(basis: Option<&str>) -> &'static str {
    match basis {
        Some("hold") => "Ends (target held)",
        Some("estimate") => "Ends (estimate)",
        _ => "Ends (spray time)",
    }
}

/// The reservoir temperature, °C.
pub fn reservoir(u: &UnitProperties) -> Option<f64> {
    sensor(u, "reservoir")
}

/// A temperature by sensor name, °C.
pub fn sensor(u: &UnitProperties, name: &str) -> Option<f64> {
    u.temperatures
        .as_ref()?
        .get(name)
        .copied()
        .filter(|v| v.is_finite())
}

/// A point of a curve: seconds since the start, skin and mist °C (NaN: no reading).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CurveSample {
    /// Seconds since the session started.
    pub t_s: f64,
    /// Skin, °C.
    pub skin_c: f64,
    /// Mist, °C.
    pub mist_c: f64,
}

/// A stored curve as the kiosk draws it.
pub fn curve(points: &[CurvePoint]) -> Vec<CurveSample> {
    points
        .iter()
        .map(|p| CurveSample {
            t_s: f64::from(p.0) / 1000.0,
            mist_c: p.1,
            skin_c: p.2,
        })
        .collect()
}

/// Quality indicators of a session as they form (live) or as recorded (history).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Quality {
    /// Seconds until the skin first reached the target band.
    pub time_to_target_s: Option<f64>,
    /// Coldest skin reading, °C.
    pub min_skin_c: Option<f64>,
    /// Warmest skin reading, °C.
    pub peak_skin_c: Option<f64>,
    /// Started late after the laser.
    pub late: bool,
    /// The skin went below the floor.
    pub below_floor: bool,
}

/// Indicators from a curve so far, against the protocol's target (band half-width `band`)
/// and floor.
pub fn quality(
    samples: &[CurveSample],
    target: Option<f64>,
    band: f64,
    floor: f64,
    late: bool,
) -> Quality {
    let skins = samples.iter().filter(|s| s.skin_c.is_finite());
    let mut q = Quality {
        late,
        ..Quality::default()
    };
    for s in skins {
        q.min_skin_c = Some(q.min_skin_c.map_or(s.skin_c, |m: f64| m.min(s.skin_c)));
        q.peak_skin_c = Some(q.peak_skin_c.map_or(s.skin_c, |m: f64| m.max(s.skin_c)));
        if q.time_to_target_s.is_none() && target.is_some_and(|t| s.skin_c <= t + band) {
            q.time_to_target_s = Some(s.t_s);
        }
        if s.skin_c < floor {
            q.below_floor = true;
        }
    }
    q
}

/// The recorded indicators of a finished session.
pub fn recorded_quality(s: &SessionInfo) -> Quality {
    Quality {
        time_to_target_s: s.time_to_target_ms.map(|ms| ms as f64 / 1000.0),
        min_skin_c: s.min_skin_c,
        peak_skin_c: s.peak_skin_c,
        late: s.late,
        below_floor: s.min_skin_c.is_some_and(|m| m < s.skin_floor_c),
    }
}

/// Sessions grouped by UTC day (`YYYY-MM-DD`), newest day first, in the order given inside a
/// day.
pub fn by_day(sessions: &[SessionInfo]) -> Vec<(String, Vec<SessionInfo>)> {
    let mut days: Vec<(String, Vec<SessionInfo>)> = Vec::new();
    for s in sessions {
        let day = day_of(s.started_unix_ms);
        match days.iter_mut().find(|(d, _)| *d == day) {
            Some((_, v)) => v.push(s.clone()),
            None => days.push((day, vec![s.clone()])),
        }
    }
    days.sort_by(|a, b| b.0.cmp(&a.0));
    days
}

/// `YYYY-MM-DD` of a Unix time in ms (UTC).
pub fn day_of(unix_ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(unix_ms)
        .map(|t| t.format("%Y-%m-%d").to_string())
        .unwrap_or_else(|| "unknown day".into())
}

/// `HH:MM:SS` of a Unix time in ms (UTC).
pub fn time_of(unix_ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(unix_ms)
        .map(|t| t.format("%H:%M:%S").to_string())
        .unwrap_or_else(|| "--:--:--".into())
}

/// Seconds as `m:ss`.
pub fn mmss(s: f64) -> String {
    let s = s.max(0.0).round() as u64;
    format!("{}:{:02}", s / 60, s % 60)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn alarm_details_are_shown_with_the_message_built_from_their_parameters() {
        use coldsprayd::model::alarm::{Alarm as DaemonAlarm, AlarmKind};
        use coldsprayd::model::alarm_text::AlarmText;
        let text = AlarmText::SkinBelowFloor {
            skin_c: 4.26,
            floor_c: 5.0,
            reading_c: None,
        };
        let raised = |message: &str| DaemonAlarm {
            kind: AlarmKind::SkinBelowFloor,
            priority: AlarmKind::SkinBelowFloor.priority(),
            message: message.into(),
            params: text.params(),
            raised_at: std::time::Duration::ZERO,
            raised_unix_ms: 7,
            condition_present: true,
            acknowledged: false,
        };
        // The daemon's English text stands apart: the kiosk's sentence comes from the values.
        let unit = UnitProperties {
            alarm_details: Some(vec![coldsprayd::dbus::convert::alarm_details(&raised(
                "not what the kiosk shows",
            ))]),
            ..UnitProperties::default()
        };
        let shown = alarms_of(&unit, Language::English);
        assert_eq!(shown.len(), 1);
        assert_eq!(shown[0].key, "skin_below_floor");
        assert_eq!(shown[0].priority, Priority::High);
        assert_eq!(shown[0].message, "skin 4.3 °C < floor 5.0 °C");
        assert_eq!(shown[0].raised_unix_ms, 7);
        assert!(shown[0].present && !shown[0].acknowledged);
        // Without parameters it can read (an older record), the daemon's message is shown.
        let mut bare = raised("skin 4.3 °C < floor 5.0 °C (daemon)");
        bare.params.clear();
        let unit = UnitProperties {
            alarm_details: Some(vec![coldsprayd::dbus::convert::alarm_details(&bare)]),
            ..UnitProperties::default()
        };
        assert_eq!(
            alarms_of(&unit, Language::English)[0].message,
            "skin 4.3 °C < floor 5.0 °C (daemon)"
        );
    }

    fn tuple(key: &str, prio: &str, raised: i64, acked: bool) -> AlarmTuple {
        (
            key.into(),
            prio.into(),
            format!("{key} msg"),
            raised,
            true,
            acked,
        )
    }

    #[test]
    fn alarms_are_ordered_by_priority_then_unacknowledged_then_newest() {
        let v = alarms(&[
            tuple("late_start", "low", 5, false),
            tuple("water_low", "medium", 1, false),
            tuple("estop", "high", 2, true),
            tuple("dry_run", "high", 3, false),
            tuple("skin_below_floor", "high", 4, false),
        ]);
        let keys: Vec<&str> = v.iter().map(|a| a.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "skin_below_floor",
                "dry_run",
                "estop",
                "water_low",
                "late_start"
            ]
        );
        assert!(v[0].what_to_do.contains("check the patient"));
    }

    #[test]
    fn not_ready_codes_read_as_words() {
        let u = UnitProperties {
            state: Some("precooling".into()),
            ready: Some(false),
            setpoint: Some(8.0),
            temperatures: Some(HashMap::from([("reservoir".to_string(), 14.25)])),
            not_ready: Some(vec![
                "precooling".into(),
                "water_low".into(),
                "interlock:dry_run".into(),
            ]),
            ready_in: Some(f64::NAN),
            ..UnitProperties::default()
        };
        assert_eq!(
            not_ready_reasons(&u),
            [
                "Cooling water: 14.2 °C, needs 8.0 °C",
                "Water low: refill the reservoir",
                "Interlock: dry_run"
            ]
        );
        assert_eq!(ready_in(&u), None);
        assert_eq!(
            ready_in(&UnitProperties {
                ready_in: Some(42.0),
                ..u
            }),
            Some(42.0)
        );
    }

    #[test]
    fn the_live_curve_grows_by_slices_and_starts_over_for_a_new_session() {
        let s = |t_s| CurveSample {
            t_s,
            skin_c: 30.0,
            mist_c: 5.0,
        };
        let slice = |id, from, next, n: usize| CurveSlice {
            session_id: id,
            running: true,
            next,
            from,
            samples: (0..n).map(|i| s(i as f64)).collect(),
        };
        let mut c = LiveCurve::default();
        c.add(slice(1, 0, 3, 3));
        c.add(slice(1, 3, 5, 2));
        assert_eq!((c.session_id, c.next, c.samples.len()), (1, 5, 5));
        // A slice of session 2 from index 5: not its start, asked again from 0.
        c.add(slice(2, 5, 9, 4));
        assert_eq!((c.session_id, c.next, c.samples.len()), (2, 0, 0));
        c.add(slice(2, 0, 9, 9));
        assert_eq!((c.session_id, c.next, c.samples.len()), (2, 9, 9));
    }

    #[test]
    fn quality_forms_from_the_curve() {
        let s = |t_s, skin_c| CurveSample {
            t_s,
            skin_c,
            mist_c: 2.0,
        };
        let q = quality(
            &[s(0.0, 38.0), s(1.0, f64::NAN), s(2.0, 30.5), s(3.0, 4.0)],
            Some(30.0),
            1.0,
            5.0,
            false,
        );
        assert_eq!(q.time_to_target_s, Some(2.0));
        assert_eq!(q.peak_skin_c, Some(38.0));
        assert_eq!(q.min_skin_c, Some(4.0));
        assert!(q.below_floor);
    }

    #[test]
    fn sessions_group_by_day_newest_first() {
        let s = |id, ms| SessionInfo {
            id,
            protocol: "pico".into(),
            goal: "protect".into(),
            cause: "command".into(),
            started_unix_ms: ms,
            ended_unix_ms: None,
            duration_s: None,
            outcome: "completed".into(),
            completed: true,
            late: false,
            laser_to_spray_ms: None,
            skin_target_c: None,
            skin_floor_c: 5.0,
            peak_skin_c: None,
            min_skin_c: None,
            time_to_target_ms: None,
            above_40_ms: None,
            spray_ms: 0,
            ended_by_alarm: None,
        };
        let day = 86_400_000;
        let g = by_day(&[s(3, 2 * day + 5), s(2, 2 * day), s(1, day)]);
        assert_eq!(g.len(), 2);
        assert_eq!(g[0].0, "1970-01-03");
        assert_eq!(g[0].1.len(), 2);
        assert_eq!(mmss(125.4), "2:05");
    }
}
