//! What to do for each alarm, read from `docs/ALARMS.md` (the one table of alarms, compiled
//! into the kiosk), so the kiosk never carries a second, diverging copy of it; and each
//! alarm's message in the kiosk's language, built from its code and parameters.

use coldsprayd::dbus::convert::Dict;
use coldsprayd::model::alarm::AlarmKind;
use coldsprayd::model::alarm_text::{AlarmParams, AlarmText, ParamValue};

/// The language the kiosk speaks. A translation is a variant here and its sentence for each
/// [`AlarmText`] in [`Language::say`]; the values come typed, so it formats them itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Language {
    /// The daemon's English sentences (`docs/ALARMS.md`, message table).
    #[default]
    English,
}

impl Language {
    /// The sentence for one alarm text.
    pub fn say(self, text: &AlarmText) -> String {
        match self {
            Language::English => text.english(),
        }
    }
}

/// An alarm's parameters as `Unit.AlarmDetails` serves them (`params` a{sv}), typed again:
/// `d` numbers, `t` counts and ids, `s` names and reasons; other types are left out.
pub fn params_of(dict: &Dict) -> AlarmParams {
    dict.iter()
        .filter_map(|(name, v)| {
            let value = if let Ok(x) = f64::try_from(v) {
                ParamValue::Number(x)
            } else if let Ok(n) = u64::try_from(v) {
                ParamValue::Integer(n)
            } else {
                ParamValue::Text(String::try_from(v.try_clone().ok()?).ok()?)
            };
            Some((name.clone(), value))
        })
        .collect()
}

/// The message of alarm `key` in `language`, from its parameters; `None` for an alarm this
/// kiosk does not know or parameters that do not fit it (a newer daemon): the screen then
/// shows the daemon's English message.
pub fn message(language: Language, key: &str, params: &Dict) -> Option<String> {
    let kind = AlarmKind::from_key(key)?;
    let text = AlarmText::from_params(kind, &params_of(params))?;
    Some(language.say(&text))
}

/// The alarm table of `docs/ALARMS.md`.
const ALARMS_MD: &str = include_str!("../../docs/ALARMS.md");

/// One row of the table.
#[derive(Debug, Clone, PartialEq)]
pub struct AlarmRow {
    /// The key as the table writes it; a `:<sensor>` suffix stands for any sensor.
    pub key: String,
    /// "priority, latching, faults the unit".
    pub class: String,
    /// "way back to ready": what the people at the unit do.
    pub what_to_do: String,
}

/// Every row of the alarm table, in the table's order.
pub fn rows() -> Vec<AlarmRow> {
    ALARMS_MD
        .lines()
        .filter(|l| l.starts_with("| `"))
        .filter_map(|l| {
            let cells: Vec<&str> = l.trim_matches('|').split(" | ").map(str::trim).collect();
            let [key, class, _raised, _clears, way_back] = cells.as_slice() else {
                return None;
            };
            Some(AlarmRow {
                key: key.trim_matches('`').to_string(),
                class: plain(class),
                what_to_do: plain(way_back),
            })
        })
        .collect()
}

/// Markdown emphasis and code marks taken out: the screen shows plain text.
fn plain(cell: &str) -> String {
    cell.replace("**", "").replace('`', "")
}

/// What to do for an alarm key (`sensor_stale:skin` finds the `sensor_stale:<sensor>` row);
/// `None` for a key the table does not know (a newer daemon).
pub fn what_to_do(key: &str) -> Option<String> {
    let base = key.split(':').next().unwrap_or(key);
    rows()
        .into_iter()
        .find(|r| r.key == key || r.key.split(':').next() == Some(base))
        .map(|r| r.what_to_do)
}

#[cfg(test)]
mod tests {
    use super::*;
    use coldsprayd::dbus::convert::alarm_params;

    #[test]
    fn every_alarm_kind_of_the_daemon_has_its_text() {
        let kinds = AlarmKind::every(&coldspray_hal::Sensor::ALL);
        assert!(kinds.len() > 20, "{} kinds", kinds.len());
        for kind in kinds {
            let text = what_to_do(&kind.key());
            assert!(
                text.as_deref().is_some_and(|t| t.len() > 5),
                "no text for {}",
                kind.key()
            );
        }
    }

    #[test]
    fn a_sensor_alarm_finds_its_generic_row_and_markup_is_gone() {
        let t = what_to_do("sensor_stale:skin").unwrap_or_default();
        assert!(t.contains("reconnect/replace the sensor"), "{t}");
        assert!(rows().iter().all(|r| !r.what_to_do.contains('`')));
        assert_eq!(what_to_do("no_such_alarm"), None);
    }

    #[test]
    fn the_message_is_built_from_the_parameters_the_daemon_serves() {
        let text = AlarmText::OverPressure {
            pressure_bar: 4.237,
        };
        let served = alarm_params(&text.params());
        assert_eq!(
            message(Language::English, "over_pressure", &served).as_deref(),
            Some("line pressure 4.24 bar")
        );
        let stale = AlarmText::SensorStale {
            sensor: coldspray_hal::Sensor::Skin,
            for_s: 3.0,
            problem: Some("timeout".into()),
        };
        let served = alarm_params(&stale.params());
        assert_eq!(
            message(Language::English, "sensor_stale:skin", &served),
            Some(stale.english())
        );
        // Parameters that do not fit (a newer daemon): no sentence, the daemon's is shown.
        assert_eq!(
            message(Language::English, "over_pressure", &Dict::new()),
            None
        );
        assert_eq!(message(Language::English, "no_such_alarm", &served), None);
    }
}
