//! JSON output (`--json`): any D-Bus value as JSON, dictionaries with their keys sorted, NaN
//! as null.

use coldsprayd::dbus::convert::{CurvePoint, Dict};
use serde_json::Value as J;
use std::collections::BTreeMap;
use zbus::zvariant::Value;

/// A number, or null when it is not finite.
fn number(x: f64) -> J {
    serde_json::Number::from_f64(x)
        .map(J::Number)
        .unwrap_or(J::Null)
}

/// Converts any D-Bus value into JSON (NaN becomes null).
pub fn to_json(v: &Value<'_>) -> J {
    match v {
        Value::U8(x) => J::from(*x),
        Value::Bool(x) => J::from(*x),
        Value::I16(x) => J::from(*x),
        Value::U16(x) => J::from(*x),
        Value::I32(x) => J::from(*x),
        Value::U32(x) => J::from(*x),
        Value::I64(x) => J::from(*x),
        Value::U64(x) => J::from(*x),
        Value::F64(x) => number(*x),
        Value::Str(s) => J::from(s.as_str()),
        Value::Signature(s) => J::from(s.to_string()),
        Value::ObjectPath(p) => J::from(p.as_str()),
        Value::Value(inner) => to_json(inner),
        Value::Array(a) => J::Array(a.iter().map(to_json).collect()),
        Value::Dict(d) => {
            let mut m = serde_json::Map::new();
            for (k, v) in d.iter() {
                let key = match to_json(k) {
                    J::String(s) => s,
                    other => other.to_string(),
                };
                m.insert(key, to_json(v));
            }
            J::Object(m)
        }
        Value::Structure(s) => J::Array(s.fields().iter().map(to_json).collect()),
        #[allow(unreachable_patterns)]
        _ => J::Null,
    }
}

/// A dictionary as a JSON object, keys sorted.
pub fn dict_json(d: &Dict) -> serde_json::Value {
    let sorted: BTreeMap<_, _> = d.iter().map(|(k, v)| (k.clone(), to_json(v))).collect();
    serde_json::to_value(sorted).unwrap_or_default()
}

/// Dictionaries as a JSON array.
pub fn dicts_json(list: &[Dict]) -> J {
    J::Array(list.iter().map(dict_json).collect())
}

/// A session curve as JSON objects, one per point.
pub fn curve_json(points: &[CurvePoint]) -> J {
    let pts = points
        .iter()
        .map(|p| {
            serde_json::json!({"t_ms": p.0, "mist_c": number(p.1), "skin_c": number(p.2),
                "reservoir_c": number(p.3), "pressure_bar": number(p.4), "pump": p.5, "valve": p.6})
        })
        .collect();
    J::Array(pts)
}
