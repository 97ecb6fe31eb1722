//! The Unit properties a kiosk's home screen reads together — why not ready, when, the water
//! level and the pedal's protocol — announced in one `PropertiesChanged` when any of them
//! changed (`ReadyIn` when it crosses a whole second).

use crate::api::Snapshot;
use std::collections::HashMap;
use zbus::object_server::{Interface, SignalEmitter};
use zbus::zvariant::Value;

/// The home-screen properties that differ between `last` and `new`, with their new values.
pub fn home_changes(last: &Snapshot, new: &Snapshot) -> HashMap<&'static str, Value<'static>> {
    let secs = |s: &Snapshot| s.ready_in_s.map(f64::round);
    let all = [
        (
            "NotReady",
            last.not_ready != new.not_ready,
            Value::from(new.not_ready.clone()),
        ),
        (
            "ReadyIn",
            secs(last) != secs(new),
            Value::from(new.ready_in_s.unwrap_or(f64::NAN)),
        ),
        (
            "WaterLow",
            last.water_low != new.water_low,
            Value::from(new.water_low),
        ),
        (
            "PedalProtocol",
            last.pedal_protocol != new.pedal_protocol,
            Value::from(new.pedal_protocol.clone()),
        ),
    ];
    all.into_iter()
        .filter(|(_, changed, _)| *changed)
        .map(|(name, _, v)| (name, v))
        .collect()
}

/// Sends the home-screen changes between `last` and `new`, if any, in one signal.
pub async fn home(ue: &SignalEmitter<'_>, last: &Snapshot, new: &Snapshot) -> zbus::Result<()> {
    let changed = home_changes(last, new);
    if changed.is_empty() {
        return Ok(());
    }
    zbus::fdo::Properties::properties_changed(
        ue,
        super::unit::Unit::name(),
        changed,
        std::borrow::Cow::Borrowed(&[]),
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_what_changed_and_ready_in_by_whole_seconds() {
        let mut last = Snapshot::power_on(4.0);
        last.ready_in_s = Some(100.2);
        let mut new = last.clone();
        assert!(home_changes(&last, &new).is_empty());
        new.ready_in_s = Some(99.6);
        assert!(
            home_changes(&last, &new).is_empty(),
            "100.2 -> 99.6 rounds to 100"
        );
        new.ready_in_s = Some(99.4);
        new.water_low = true;
        let mut names: Vec<_> = home_changes(&last, &new).into_keys().collect();
        names.sort();
        assert_eq!(names, vec!["ReadyIn", "WaterLow"]);
    }
}
