//! What to do for each alarm, read from `docs/ALARMS.md` (the one table of alarms, compiled
//! into the kiosk), so the kiosk never carries a second, diverging copy of it.

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
    use coldsprayd::model::alarm::AlarmKind;

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
}
