//! Argument validation for every D-Bus method: ranges, non-finite numbers, text lengths,
//! option keys, output and sensor names. Nothing reaches the controller unchecked.

use super::error::Error;
use crate::api::StartOptions;
use crate::limits::widen;
use crate::model::alarm::AlarmKind;
use crate::protocol::{limits, validate_name, Goal, Pattern, Protocol};
use coldspray_hal::{Output, Sensor};
use std::collections::HashMap;
use std::ops::RangeInclusive;
use zbus::zvariant::{OwnedValue, Value};

pub use crate::limits::{CALIBRATION, DRAIN_S, PRIME_S, SETPOINT_C, TEST_OUTPUT_S};
/// Simulator: laser pass length, s.
pub const LASER_S: RangeInclusive<f64> = 0.1..=60.0;
/// Simulator: relative fluence (1.0 = a typical fractional CO2 pass).
pub const FLUENCE: RangeInclusive<f64> = 0.0..=5.0;
/// Simulator: room temperature, °C.
pub const AMBIENT_C: RangeInclusive<f64> = -10.0..=45.0;
/// Simulator: refill volume, litres.
pub const REFILL_L: RangeInclusive<f64> = 0.1..=5.0;
/// Simulator: refill water temperature, °C.
pub const REFILL_C: RangeInclusive<f64> = 0.5..=40.0;
/// Longest string accepted in any argument that has no tighter limit.
pub const MAX_TEXT: usize = 256;
/// Most keys accepted in one a{sv} argument.
pub const MAX_KEYS: usize = 32;

/// Checks a finite number against a range ([`crate::limits::check`], as a D-Bus error).
pub fn range(name: &str, value: f64, r: RangeInclusive<f64>) -> Result<f64, Error> {
    crate::limits::check(name, value, r).map_err(|e| Error::OutOfRange(e.to_string()))
}

fn text_len(name: &str, value: &str, max: usize) -> Result<(), Error> {
    if value.len() > max {
        return Err(Error::InvalidArgument(format!(
            "{name}: {} bytes is longer than the {max} allowed",
            value.len()
        )));
    }
    Ok(())
}

/// Checks a protocol name's form (not whether it exists).
pub fn protocol_name(name: &str) -> Result<(), Error> {
    text_len("protocol", name, MAX_TEXT)?;
    validate_name(name).map_err(|e| Error::InvalidArgument(format!("protocol {e}")))
}

/// Checks a protocol name and that the protocol exists.
pub fn known_protocol(name: &str, protocols: &[Protocol]) -> Result<(), Error> {
    protocol_name(name)?;
    if protocols.iter().any(|p| p.name == name) {
        Ok(())
    } else {
        Err(Error::UnknownProtocol(format!("unknown protocol `{name}`")))
    }
}

/// Parses the name of one of `all` (`what`: "output", "sensor"), as `name_of` names them.
fn one_of<T: Copy>(
    what: &str,
    name: &str,
    all: &[T],
    name_of: impl Fn(T) -> &'static str,
) -> Result<T, Error> {
    text_len(what, name, MAX_TEXT)?;
    all.iter()
        .copied()
        .find(|x| name_of(*x) == name)
        .ok_or_else(|| {
            let names: Vec<_> = all.iter().map(|x| name_of(*x)).collect();
            Error::InvalidArgument(format!(
                "unknown {what} `{name}` (one of {})",
                names.join(", ")
            ))
        })
}

/// Parses an output name.
pub fn output(name: &str) -> Result<Output, Error> {
    one_of("output", name, &Output::ALL, Output::name)
}

/// Parses a sensor name.
pub fn sensor(name: &str) -> Result<Sensor, Error> {
    one_of("sensor", name, &Sensor::ALL, Sensor::name)
}

/// Parses an alarm key for Acknowledge: `""` means every alarm.
pub fn alarm_key(key: &str) -> Result<Option<String>, Error> {
    text_len("key", key, 64)?;
    if key.is_empty() {
        return Ok(None);
    }
    match AlarmKind::from_key(key) {
        Some(_) => Ok(Some(key.to_string())),
        None => Err(Error::InvalidArgument(format!(
            "`{key}` is not an alarm key"
        ))),
    }
}

/// Reads a number of any D-Bus numeric type as f64.
fn number(name: &str, v: &Value<'_>) -> Result<f64, Error> {
    Ok(match v {
        Value::F64(x) => *x,
        Value::U8(x) => f64::from(*x),
        Value::I16(x) => f64::from(*x),
        Value::U16(x) => f64::from(*x),
        Value::I32(x) => f64::from(*x),
        Value::U32(x) => f64::from(*x),
        Value::I64(x) => *x as f64,
        Value::U64(x) => *x as f64,
        Value::Value(inner) => return number(name, inner),
        other => {
            return Err(Error::InvalidArgument(format!(
                "{name} must be a number, got type `{}`",
                other.value_signature()
            )))
        }
    })
}

fn integer(name: &str, v: &Value<'_>) -> Result<i64, Error> {
    let x = number(name, v)?;
    if x.fract() != 0.0 || !x.is_finite() {
        return Err(Error::InvalidArgument(format!(
            "{name} must be a whole number"
        )));
    }
    Ok(x as i64)
}

fn string(name: &str, v: &Value<'_>, max: usize) -> Result<String, Error> {
    match v {
        Value::Str(s) => {
            text_len(name, s.as_str(), max)?;
            Ok(s.to_string())
        }
        Value::Value(inner) => string(name, inner, max),
        other => Err(Error::InvalidArgument(format!(
            "{name} must be a string, got type `{}`",
            other.value_signature()
        ))),
    }
}

fn keys_known(what: &str, dict: &HashMap<String, OwnedValue>, known: &[&str]) -> Result<(), Error> {
    if dict.len() > MAX_KEYS {
        return Err(Error::InvalidArgument(format!("{what}: too many keys")));
    }
    for k in dict.keys() {
        if !known.contains(&k.as_str()) {
            return Err(Error::InvalidArgument(format!(
                "{what}: unknown key `{}` (known: {})",
                k.chars().take(64).collect::<String>(),
                known.join(", ")
            )));
        }
    }
    Ok(())
}

/// Keys accepted in Start's options.
pub const START_OPTION_KEYS: [&str; 3] = ["spray_s", "skin_target_c", "pump_percent"];

/// Parses Start's options.
pub fn start_options(dict: &HashMap<String, OwnedValue>) -> Result<StartOptions, Error> {
    keys_known("options", dict, &START_OPTION_KEYS)?;
    let mut o = StartOptions::default();
    if let Some(v) = dict.get("spray_s") {
        o.spray_s = Some(range("spray_s", number("spray_s", v)?, limits::SPRAY_S)?);
    }
    if let Some(v) = dict.get("skin_target_c") {
        let t = number("skin_target_c", v)?;
        o.skin_target_c = Some(range("skin_target_c", t, limits::SKIN_TARGET_C)?);
    }
    if let Some(v) = dict.get("pump_percent") {
        let p = integer("pump_percent", v)?;
        range("pump_percent", p as f64, widen(&limits::PUMP_PERCENT))?;
        o.pump_percent = u8::try_from(p).ok();
    }
    Ok(o)
}

/// Keys accepted in a session filter.
pub const FILTER_KEYS: [&str; 5] = ["from_unix_ms", "to_unix_ms", "protocol", "outcome", "limit"];

/// Largest `limit` in a session filter (and the default when absent).
pub const MAX_LIMIT: usize = 10_000;

/// Parses a session filter.
pub fn session_query(
    dict: &HashMap<String, OwnedValue>,
) -> Result<crate::store::SessionQuery, Error> {
    keys_known("filter", dict, &FILTER_KEYS)?;
    let mut q = crate::store::SessionQuery {
        limit: Some(MAX_LIMIT),
        ..Default::default()
    };
    if let Some(v) = dict.get("from_unix_ms") {
        q.from_unix_ms = Some(integer("from_unix_ms", v)?);
    }
    if let Some(v) = dict.get("to_unix_ms") {
        q.to_unix_ms = Some(integer("to_unix_ms", v)?);
    }
    if let Some(v) = dict.get("protocol") {
        let p = string("protocol", v, MAX_TEXT)?;
        protocol_name(&p)?;
        q.protocol = Some(p);
    }
    if let Some(v) = dict.get("outcome") {
        let o = string("outcome", v, MAX_TEXT)?;
        q.outcome = Some(
            crate::model::session::Outcome::from_name(&o).ok_or_else(|| {
                let names: Vec<_> = crate::model::session::Outcome::ALL
                    .iter()
                    .map(|o| o.name())
                    .collect();
                Error::InvalidArgument(format!(
                    "unknown outcome `{o}` (one of {})",
                    names.join(", ")
                ))
            })?,
        );
    }
    if let Some(v) = dict.get("limit") {
        let l = integer("limit", v)?;
        range("limit", l as f64, 1.0..=MAX_LIMIT as f64)?;
        q.limit = usize::try_from(l).ok();
    }
    Ok(q)
}

/// Keys of a protocol dictionary (Create, Update, Get).
pub const PROTOCOL_KEYS: [&str; 12] = [
    "name",
    "title",
    "goal",
    "spray_s",
    "pattern",
    "on_ms",
    "off_ms",
    "pump_percent",
    "skin_target_c",
    "skin_floor_c",
    "band_c",
    "hold_s",
];

/// Default values of a protocol created without them.
pub fn protocol_template(name: String, title: String, goal: Goal, spray_s: f64) -> Protocol {
    Protocol {
        name,
        title,
        goal,
        spray_s,
        pattern: Pattern::Continuous,
        pump_percent: 100,
        skin_target_c: None,
        skin_floor_c: 10.0,
        band_c: 1.0,
        hold_s: 10.0,
    }
}

fn goal(v: &Value<'_>) -> Result<Goal, Error> {
    match string("goal", v, MAX_TEXT)?.as_str() {
        "protect" => Ok(Goal::Protect),
        "prepare" => Ok(Goal::Prepare),
        other => Err(Error::InvalidArgument(format!(
            "unknown goal `{other}` (protect or prepare)"
        ))),
    }
}

fn ms(name: &str, v: &Value<'_>) -> Result<u32, Error> {
    let x = integer(name, v)?;
    range(name, x as f64, widen(&limits::PULSE_MS))?;
    u32::try_from(x).map_err(|_| Error::InvalidArgument(format!("{name} out of range")))
}

/// Builds a protocol for Create from a full dictionary (`name`, `title`, `goal`, `spray_s`
/// required; the rest default as documented) and validates it.
pub fn protocol_create(dict: &HashMap<String, OwnedValue>) -> Result<Protocol, Error> {
    keys_known("protocol", dict, &PROTOCOL_KEYS)?;
    let need = |k: &str| {
        dict.get(k)
            .ok_or_else(|| Error::InvalidArgument(format!("protocol: missing key `{k}`")))
    };
    let name = string("name", need("name")?, MAX_TEXT)?;
    protocol_name(&name)?;
    let title = string("title", need("title")?, MAX_TEXT)?;
    let g = goal(need("goal")?)?;
    let spray = number("spray_s", need("spray_s")?)?;
    let mut p = protocol_template(name, title, g, spray);
    apply_fields(&mut p, dict)?;
    check_protocol(&p)?;
    Ok(p)
}

/// Applies an Update's fields to an existing protocol and validates the result.
pub fn protocol_update(
    existing: &Protocol,
    dict: &HashMap<String, OwnedValue>,
) -> Result<Protocol, Error> {
    keys_known("protocol", dict, &PROTOCOL_KEYS)?;
    let mut p = existing.clone();
    if let Some(v) = dict.get("name") {
        let n = string("name", v, MAX_TEXT)?;
        if n != existing.name {
            return Err(Error::InvalidArgument(
                "name: a protocol cannot be renamed (create a new one)".into(),
            ));
        }
    }
    if let Some(v) = dict.get("title") {
        p.title = string("title", v, MAX_TEXT)?;
    }
    if let Some(v) = dict.get("goal") {
        p.goal = goal(v)?;
    }
    if let Some(v) = dict.get("spray_s") {
        p.spray_s = number("spray_s", v)?;
    }
    apply_fields(&mut p, dict)?;
    check_protocol(&p)?;
    Ok(p)
}

fn apply_fields(p: &mut Protocol, dict: &HashMap<String, OwnedValue>) -> Result<(), Error> {
    let on = dict.get("on_ms").map(|v| ms("on_ms", v)).transpose()?;
    let off = dict.get("off_ms").map(|v| ms("off_ms", v)).transpose()?;
    let pattern = match dict.get("pattern") {
        Some(v) => string("pattern", v, MAX_TEXT)?,
        None => match p.pattern {
            Pattern::Continuous => "continuous".into(),
            Pattern::Pulsed { .. } => "pulsed".into(),
        },
    };
    p.pattern = match (pattern.as_str(), p.pattern) {
        ("continuous", _) => {
            if on.is_some() || off.is_some() {
                return Err(Error::InvalidArgument(
                    "on_ms/off_ms apply only to pattern `pulsed`".into(),
                ));
            }
            Pattern::Continuous
        }
        ("pulsed", Pattern::Pulsed { on_ms, off_ms }) => Pattern::Pulsed {
            on_ms: on.unwrap_or(on_ms),
            off_ms: off.unwrap_or(off_ms),
        },
        ("pulsed", Pattern::Continuous) => match (on, off) {
            (Some(on_ms), Some(off_ms)) => Pattern::Pulsed { on_ms, off_ms },
            _ => {
                return Err(Error::InvalidArgument(
                    "pattern `pulsed` needs on_ms and off_ms".into(),
                ))
            }
        },
        (other, _) => {
            return Err(Error::InvalidArgument(format!(
                "unknown pattern `{}` (continuous or pulsed)",
                other.chars().take(64).collect::<String>()
            )))
        }
    };
    if let Some(v) = dict.get("pump_percent") {
        let x = integer("pump_percent", v)?;
        let r = limits::PUMP_PERCENT;
        range(
            "pump_percent",
            x as f64,
            f64::from(*r.start())..=f64::from(*r.end()),
        )?;
        p.pump_percent = u8::try_from(x).unwrap_or(100);
    }
    if let Some(v) = dict.get("skin_target_c") {
        p.skin_target_c = match &**v {
            Value::Str(s) if s.as_str() == "none" => None,
            other => Some(number("skin_target_c", other)?),
        };
    }
    if let Some(v) = dict.get("skin_floor_c") {
        p.skin_floor_c = number("skin_floor_c", v)?;
    }
    if let Some(v) = dict.get("band_c") {
        p.band_c = number("band_c", v)?;
    }
    if let Some(v) = dict.get("hold_s") {
        p.hold_s = number("hold_s", v)?;
    }
    Ok(())
}

/// Runs the protocol's own validation, mapping its errors to D-Bus errors.
pub fn check_protocol(p: &Protocol) -> Result<(), Error> {
    use crate::protocol::ProtocolError;
    p.validate().map_err(|e| match e {
        ProtocolError::OutOfRange { .. } => Error::OutOfRange(e.to_string()),
        _ => Error::InvalidArgument(e.to_string()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dict(items: Vec<(&str, Value<'static>)>) -> HashMap<String, OwnedValue> {
        items
            .into_iter()
            .map(|(k, v)| (k.to_string(), OwnedValue::try_from(v).unwrap()))
            .collect()
    }

    #[test]
    fn ranges_reject_nan_inf_and_outside() {
        assert!(range("x", 4.0, SETPOINT_C).is_ok());
        for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 1.99, 15.01] {
            assert!(
                matches!(range("x", bad, SETPOINT_C), Err(Error::OutOfRange(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn start_options_check_keys_types_and_ranges() {
        let o = start_options(&dict(vec![
            ("spray_s", Value::F64(30.0)),
            ("pump_percent", Value::U32(50)),
        ]))
        .unwrap();
        assert_eq!(o.spray_s, Some(30.0));
        assert_eq!(o.pump_percent, Some(50));
        assert!(matches!(
            start_options(&dict(vec![("bogus", Value::F64(1.0))])),
            Err(Error::InvalidArgument(_))
        ));
        assert!(matches!(
            start_options(&dict(vec![("spray_s", Value::F64(f64::NAN))])),
            Err(Error::OutOfRange(_))
        ));
        assert!(matches!(
            start_options(&dict(vec![("spray_s", Value::from("x"))])),
            Err(Error::InvalidArgument(_))
        ));
        assert!(matches!(
            start_options(&dict(vec![("pump_percent", Value::F64(50.5))])),
            Err(Error::InvalidArgument(_))
        ));
        assert!(matches!(
            start_options(&dict(vec![("pump_percent", Value::U32(5))])),
            Err(Error::OutOfRange(_))
        ));
    }

    #[test]
    fn protocol_create_and_update() {
        let p = protocol_create(&dict(vec![
            ("name", Value::from("test_a")),
            ("title", Value::from("Test A")),
            ("goal", Value::from("protect")),
            ("spray_s", Value::F64(30.0)),
            ("pattern", Value::from("pulsed")),
            ("on_ms", Value::U32(100)),
            ("off_ms", Value::U32(100)),
        ]))
        .unwrap();
        assert_eq!(
            p.pattern,
            Pattern::Pulsed {
                on_ms: 100,
                off_ms: 100
            }
        );
        let q = protocol_update(&p, &dict(vec![("on_ms", Value::U32(300))])).unwrap();
        assert_eq!(
            q.pattern,
            Pattern::Pulsed {
                on_ms: 300,
                off_ms: 100
            }
        );
        assert!(protocol_update(&p, &dict(vec![("name", Value::from("other"))])).is_err());
        assert!(matches!(
            protocol_update(&p, &dict(vec![("spray_s", Value::F64(500.0))])),
            Err(Error::OutOfRange(_))
        ));
        assert!(protocol_create(&dict(vec![("name", Value::from("x"))])).is_err());
    }

    #[test]
    fn names_and_keys() {
        assert!(output("pump").is_ok());
        assert!(output("laser").is_err());
        assert!(sensor("skin").is_ok());
        assert!(sensor("").is_err());
        assert_eq!(alarm_key("").unwrap(), None);
        assert!(alarm_key("sensor_stale:skin").unwrap().is_some());
        assert!(alarm_key("nope").is_err());
        assert!(alarm_key(&"x".repeat(1000)).is_err());
        assert!(protocol_name(&"a".repeat(33)).is_err());
        assert!(protocol_name("").is_err());
    }
}
