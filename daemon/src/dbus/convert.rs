//! Conversions between the daemon's types and D-Bus dictionaries.

use crate::api::{MaintenanceActivity, Snapshot};
use crate::model::alarm::Alarm;
use crate::model::alarm_text::{AlarmParams, ParamValue};
use crate::model::session::{Sample, SessionRecord};
use crate::protocol::{Pattern, Protocol};
use coldspray_hal::{Output, Sensor};
use std::collections::HashMap;
use zbus::zvariant::{OwnedValue, Value};

/// A D-Bus `a{sv}` dictionary.
pub type Dict = HashMap<String, OwnedValue>;

/// Inserts a value into a dictionary (values without file descriptors always convert).
pub fn put<'a, V: Into<Value<'a>>>(d: &mut Dict, key: &str, v: V) {
    if let Ok(ov) = OwnedValue::try_from(v.into()) {
        d.insert(key.to_string(), ov);
    }
}

/// A protocol as a dictionary (keys of [`super::validate::PROTOCOL_KEYS`]).
pub fn protocol(p: &Protocol) -> Dict {
    let mut d = Dict::new();
    put(&mut d, "name", p.name.clone());
    put(&mut d, "title", p.title.clone());
    put(&mut d, "goal", p.goal.name());
    put(&mut d, "spray_s", p.spray_s);
    match p.pattern {
        Pattern::Continuous => put(&mut d, "pattern", "continuous"),
        Pattern::Pulsed { on_ms, off_ms } => {
            put(&mut d, "pattern", "pulsed");
            put(&mut d, "on_ms", on_ms);
            put(&mut d, "off_ms", off_ms);
        }
    }
    put(&mut d, "pump_percent", u32::from(p.pump_percent));
    if let Some(t) = p.skin_target_c {
        put(&mut d, "skin_target_c", t);
    }
    put(&mut d, "skin_floor_c", p.skin_floor_c);
    put(&mut d, "band_c", p.band_c);
    put(&mut d, "hold_s", p.hold_s);
    d
}

/// A session as a dictionary, marking the one still running (`running_id`): the log holds
/// an open session as if aborted (that is what it would be after a crash), so its outcome
/// reads `running`, `completed` false, and it has no end time yet.
pub fn session_live(r: &SessionRecord, running_id: Option<u64>) -> Dict {
    let mut d = session(r);
    if running_id == Some(r.start.id) {
        put(&mut d, "outcome", "running");
        put(&mut d, "completed", false);
        d.remove("ended_unix_ms");
        d.remove("duration_s");
    }
    d
}

/// A dictionary of this API as a JSON object with the same keys (numbers, booleans and
/// strings; a NaN or infinite number, which JSON cannot hold, is `null`).
pub fn dict_json(d: &Dict) -> serde_json::Value {
    use serde_json::Value as J;
    let json = |v: &Value<'_>| match v {
        Value::U64(x) => J::from(*x),
        Value::I64(x) => J::from(*x),
        Value::U32(x) => J::from(*x),
        Value::F64(x) => J::from(*x),
        Value::Bool(x) => J::from(*x),
        Value::Str(x) => J::from(x.as_str()),
        other => J::from(other.to_string()),
    };
    J::Object(d.iter().map(|(k, v)| (k.clone(), json(v))).collect())
}

/// A closed session as a dictionary. Absent indicators are absent keys.
pub fn session(r: &SessionRecord) -> Dict {
    let s = &r.start;
    let mut d = Dict::new();
    put(&mut d, "id", s.id);
    put(&mut d, "protocol", s.protocol.clone());
    put(&mut d, "goal", s.goal.name());
    put(&mut d, "cause", s.cause.name());
    put(&mut d, "started_unix_ms", s.started_unix_ms);
    put(&mut d, "ended_unix_ms", r.ended_unix_ms);
    put(&mut d, "duration_s", r.duration().as_secs_f64());
    put(&mut d, "outcome", r.outcome.name());
    put(&mut d, "completed", r.outcome.is_completed());
    put(&mut d, "late", s.late);
    if let Some(x) = s.laser_to_spray_ms {
        put(&mut d, "laser_to_spray_ms", x);
    }
    if let Some(x) = s.skin_target_c {
        put(&mut d, "skin_target_c", x);
    }
    put(&mut d, "skin_floor_c", s.skin_floor_c);
    if let Some(x) = r.peak_skin_c {
        put(&mut d, "peak_skin_c", x);
    }
    if let Some(x) = r.min_skin_c {
        put(&mut d, "min_skin_c", x);
    }
    if let Some(x) = r.time_to_target_ms {
        put(&mut d, "time_to_target_ms", x);
    }
    if let Some(x) = r.above_40_ms {
        put(&mut d, "above_40_ms", x);
    }
    put(&mut d, "spray_ms", r.spray_ms);
    if let Some(x) = &r.ended_by_alarm {
        put(&mut d, "ended_by_alarm", x.clone());
    }
    d
}

/// One curve point: (t_ms, mist_c, skin_c, reservoir_c, pressure_bar, pump, valve); a missing
/// reading is NaN.
pub type CurvePoint = (u32, f64, f64, f64, f64, bool, bool);

/// A curve point as a D-Bus struct.
pub fn sample(s: &Sample) -> CurvePoint {
    let n = |x: Option<f64>| x.unwrap_or(f64::NAN);
    (
        s.t_ms,
        n(s.mist_c),
        n(s.skin_c),
        n(s.reservoir_c),
        n(s.pressure_bar),
        s.pump,
        s.valve,
    )
}

/// One alarm: (key, priority, message, raised_unix_ms, condition_present, acknowledged).
pub type AlarmTuple = (String, String, String, i64, bool, bool);

/// An alarm as a D-Bus struct.
pub fn alarm(a: &Alarm) -> AlarmTuple {
    (
        a.kind.key(),
        a.priority.name().to_string(),
        a.message.clone(),
        a.raised_unix_ms,
        a.condition_present,
        a.acknowledged,
    )
}

/// An alarm as a dictionary for a kiosk that translates: code s (the kind, stable), key s
/// (code and sensor: what Acknowledge takes), sensor s (only for sensor alarms), priority s,
/// title s (the kind's fixed English sentence: translate it by code), message s (English,
/// with the values seen), params a{sv} (the values in the message by name, docs/ALARMS.md),
/// raised_unix_ms x, condition_present b, acknowledged b.
pub fn alarm_details(a: &Alarm) -> Dict {
    let mut d = Dict::new();
    put(&mut d, "code", a.kind.code());
    put(&mut d, "key", a.kind.key());
    if let Some(s) = a.kind.sensor() {
        put(&mut d, "sensor", s.name());
    }
    put(&mut d, "priority", a.priority.name());
    put(&mut d, "title", a.kind.describe());
    put(&mut d, "message", a.message.clone());
    put(&mut d, "params", alarm_params(&a.params));
    put(&mut d, "raised_unix_ms", a.raised_unix_ms);
    put(&mut d, "condition_present", a.condition_present);
    put(&mut d, "acknowledged", a.acknowledged);
    d
}

/// An alarm's parameters as a dictionary: numbers d, counts and ids t, names and reasons s.
pub fn alarm_params(params: &AlarmParams) -> Dict {
    let mut d = Dict::new();
    for (name, value) in params {
        match value {
            ParamValue::Number(x) => put(&mut d, name, *x),
            ParamValue::Integer(n) => put(&mut d, name, *n),
            ParamValue::Text(t) => put(&mut d, name, t.clone()),
        }
    }
    d
}

/// Temperatures with a valid reading, by sensor name.
pub fn temperatures(s: &Snapshot) -> HashMap<String, f64> {
    Sensor::ALL
        .into_iter()
        .filter(|x| x.is_temperature())
        .filter_map(|x| s.reading(x).map(|v| (x.name().to_string(), v)))
        .collect()
}

/// Output levels by output name.
pub fn outputs(s: &Snapshot) -> HashMap<String, bool> {
    Output::ALL
        .into_iter()
        .map(|o| (o.name().to_string(), s.output(o)))
        .collect()
}

/// The running session as a dictionary (empty when none).
pub fn current_session(s: &Snapshot) -> Dict {
    let mut d = Dict::new();
    if let Some(p) = &s.session {
        put(&mut d, "id", p.start.id);
        put(&mut d, "protocol", p.start.protocol.clone());
        put(&mut d, "goal", p.start.goal.name());
        put(&mut d, "cause", p.start.cause.name());
        put(&mut d, "started_unix_ms", p.start.started_unix_ms);
        put(&mut d, "late", p.start.late);
        if let Some(x) = p.start.laser_to_spray_ms {
            put(&mut d, "laser_to_spray_ms", x);
        }
        put(&mut d, "elapsed_s", p.elapsed_s);
        put(&mut d, "remaining_s", p.remaining_s);
        put(&mut d, "end_in_s", p.end_in_s);
        put(&mut d, "end_basis", p.end_basis.name());
        put(&mut d, "in_band", p.in_band);
        if let Some(x) = p.start.skin_target_c {
            put(&mut d, "skin_target_c", x);
        }
        put(&mut d, "skin_floor_c", p.start.skin_floor_c);
        if let Some(x) = p.peak_skin_c {
            put(&mut d, "peak_skin_c", x);
        }
        if let Some(x) = p.min_skin_c {
            put(&mut d, "min_skin_c", x);
        }
    }
    d
}

/// The maintenance activity's name (`""` when none).
pub fn activity(s: &Snapshot) -> String {
    match &s.maintenance {
        None => String::new(),
        Some(MaintenanceActivity::Prime) => "prime".into(),
        Some(MaintenanceActivity::Drain) => "drain".into(),
        Some(MaintenanceActivity::SelfTest) => "self_test".into(),
        Some(MaintenanceActivity::TestOutput(o)) => format!("test_output:{}", o.name()),
    }
}

/// `never`, `passed` or `failed`.
pub fn last_self_test(s: &Snapshot) -> &'static str {
    match s.last_self_test {
        None => "never",
        Some((_, true)) => "passed",
        Some((_, false)) => "failed",
    }
}

/// Whether the audio is paused now.
pub fn audio_paused(s: &Snapshot) -> bool {
    s.audio_paused_until.is_some_and(|until| until > s.at)
}

/// Seconds of audio pause left (0 when not paused).
pub fn audio_pause_left_s(s: &Snapshot) -> f64 {
    s.audio_paused_until
        .map_or(0.0, |until| until.saturating_sub(s.at).as_secs_f64())
}
