//! Turns the control loop's published state into `PropertiesChanged`, on change rather than
//! on a timer.
//!
//! The loop publishes a snapshot after every step (a tokio `watch`); this task wakes on each
//! one and compares it with what it last *announced*:
//!
//! * **discrete** properties (State, Ready, Setpoint, ActiveAlarms, Armed, Outputs, LaserOn,
//!   AudioPaused, a session starting or ending, Maintenance Active/Activity, counters,
//!   LastSelfTest, Calibration) go out at once, all that changed in one step together in one
//!   `PropertiesChanged` per interface (State and Ready in the same signal);
//! * **live** values (Temperatures, Pressure, FlowRate, the running session's figures, hours,
//!   ChillerDuty) go out when they moved by their epsilon, at most once per
//!   [`CHANGE_INTERVAL`], and along with any discrete change while that much time has passed.
//!
//! `Protocols.Names` is announced only when the list of names changed, not on every edit of a
//! protocol.

use super::{
    convert, Maintenance, Protocols, Unit, CHANGE_INTERVAL, TEMP_EPSILON_C, VALUE_EPSILON,
};
use crate::api::Snapshot;
use crate::handle::ControlHandle;
use crate::model::state::UnitState;
use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;
use tokio::time::Instant;
use zbus::object_server::{Interface, InterfaceRef};
use zbus::zvariant::Value;

/// Hours are announced in steps of 0.01 h (36 s).
const HOURS_STEP_S: f64 = 36.0;

/// What differs between the snapshot last announced and a new one, by D-Bus property name.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Changes {
    /// Unit properties to announce.
    pub unit: Vec<&'static str>,
    /// Maintenance properties to announce.
    pub maint: Vec<&'static str>,
    /// Some of them are live values.
    pub live_sent: bool,
    /// Live values moved but were held back: announce them once the interval has passed.
    pub held: bool,
}

/// Compares the announced snapshot `last` with `new`. `live` says whether live values may go
/// now. Returns the changes and the snapshot as announced: values held back or below their
/// epsilon keep `last`'s value, so slow drifts are announced once they add up.
pub(crate) fn diff(last: &Snapshot, new: &Snapshot, live: bool) -> (Changes, Snapshot) {
    let mut c = Changes::default();
    let mut announced = new.clone();
    // A live value that moved: announced now if live values may go, else held back.
    let live_value = |c: &mut Changes, moved: bool| -> bool {
        if moved && live {
            c.live_sent = true;
        } else if moved {
            c.held = true;
        }
        moved && live
    };
    let in_maintenance = |s: &Snapshot| s.state == UnitState::Maintenance;
    let (lc, nc) = (&last.counters, &new.counters);
    let unit_discrete = [
        (last.state != new.state, "State"),
        (last.ready != new.ready, "Ready"),
        (last.setpoint_c != new.setpoint_c, "Setpoint"),
        (last.alarms != new.alarms, "ActiveAlarms"),
        (last.alarms != new.alarms, "AlarmDetails"),
        (last.armed != new.armed, "Armed"),
        (last.outputs != new.outputs, "Outputs"),
        (last.laser_on != new.laser_on, "LaserOn"),
        (
            convert::audio_paused(last) != convert::audio_paused(new),
            "AudioPaused",
        ),
        (
            convert::audio_paused(last) != convert::audio_paused(new),
            "AudioPauseLeft",
        ),
        // What a home screen reads together: why not ready, when (by whole seconds), the
        // water level and the pedal's protocol.
        (last.not_ready != new.not_ready, "NotReady"),
        (ready_in_secs(last) != ready_in_secs(new), "ReadyIn"),
        (last.water_low != new.water_low, "WaterLow"),
        (last.pedal_protocol != new.pedal_protocol, "PedalProtocol"),
    ];
    let maint_discrete = [
        (in_maintenance(last) != in_maintenance(new), "Active"),
        (
            convert::activity(last) != convert::activity(new),
            "Activity",
        ),
        (lc.sessions != nc.sessions, "SessionCount"),
        (lc.late_sessions != nc.late_sessions, "LateSessionCount"),
        (lc.water_changes != nc.water_changes, "WaterChanges"),
        (last.last_self_test != new.last_self_test, "LastSelfTest"),
        (last.calibration != new.calibration, "Calibration"),
    ];
    let changed = |list: &[(bool, &'static str)]| -> Vec<&'static str> {
        list.iter().filter(|(c, _)| *c).map(|(_, n)| *n).collect()
    };
    c.unit = changed(&unit_discrete);
    c.maint = changed(&maint_discrete);
    if live_value(&mut c, temps_moved(last, new)) {
        c.unit.push("Temperatures");
    } else {
        for s in coldspray_hal::Sensor::ALL
            .into_iter()
            .filter(|s| s.is_temperature())
        {
            announced.readings[s.index()] = last.readings[s.index()];
        }
    }
    let p = coldspray_hal::Sensor::Pressure;
    if live_value(
        &mut c,
        moved(last.reading(p), new.reading(p), VALUE_EPSILON),
    ) {
        c.unit.push("Pressure");
    } else {
        announced.readings[p.index()] = last.readings[p.index()];
    }
    if live_value(
        &mut c,
        (last.flow_l_min - new.flow_l_min).abs() >= VALUE_EPSILON,
    ) {
        c.unit.push("FlowRate");
    } else {
        announced.flow_l_min = last.flow_l_min;
    }
    // A session starting or ending is discrete; its running figures are live.
    let session_id = |s: &Snapshot| s.session.as_ref().map(|p| p.start.id);
    let started_or_ended = session_id(last) != session_id(new);
    if started_or_ended
        || live_value(
            &mut c,
            convert::current_session(last) != convert::current_session(new),
        )
    {
        c.unit.push("CurrentSession");
    } else {
        announced.session = last.session.clone();
    }

    // Hours are announced in steps of HOURS_STEP_S.
    for (name, was, is, kept) in [
        (
            "PumpHours",
            lc.pump_seconds,
            nc.pump_seconds,
            &mut announced.counters.pump_seconds,
        ),
        (
            "ChillerHours",
            lc.chiller_seconds,
            nc.chiller_seconds,
            &mut announced.counters.chiller_seconds,
        ),
    ] {
        if live_value(&mut c, (was - is).abs() >= HOURS_STEP_S) {
            c.maint.push(name);
        } else {
            *kept = was;
        }
    }
    if live_value(&mut c, (last.chiller_duty - new.chiller_duty).abs() >= 0.01) {
        c.maint.push("ChillerDuty");
    } else {
        announced.chiller_duty = last.chiller_duty;
    }
    (c, announced)
}

/// `ReadyIn` as announced: by whole seconds, so a falling estimate is not a live value.
fn ready_in_secs(s: &Snapshot) -> Option<f64> {
    s.ready_in_s.map(f64::round)
}

pub(crate) fn moved(a: Option<f64>, b: Option<f64>, eps: f64) -> bool {
    match (a, b) {
        (Some(x), Some(y)) => (x - y).abs() >= eps,
        (None, None) => false,
        _ => true,
    }
}

fn temps_moved(a: &Snapshot, b: &Snapshot) -> bool {
    coldspray_hal::Sensor::ALL
        .into_iter()
        .filter(|s| s.is_temperature())
        .any(|s| moved(a.reading(s), b.reading(s), TEMP_EPSILON_C))
}

/// Sends one `PropertiesChanged` for `names` of the interface behind `iface`, with their
/// current values (read through the interface's own getters, so the signal carries what a
/// `Get` would answer).
async fn announce<I: Interface>(iface: &InterfaceRef<I>, names: &[&'static str]) {
    if names.is_empty() {
        return;
    }
    let emitter = iface.signal_emitter();
    let conn = emitter.connection();
    let server = conn.object_server();
    let mut changed: HashMap<&str, Value<'_>> = HashMap::new();
    {
        let guard = iface.get().await;
        for &name in names {
            match guard.get(name, server, conn, None, emitter).await {
                Some(Ok(v)) => {
                    changed.insert(name, Value::from(v));
                }
                Some(Err(e)) => tracing::warn!("D-Bus: property {name} not readable: {e}"),
                None => tracing::error!("D-Bus: {} has no property {name}", I::name()),
            }
        }
    }
    if let Err(e) =
        zbus::fdo::Properties::properties_changed(emitter, I::name(), changed, Cow::Borrowed(&[]))
            .await
    {
        tracing::debug!("D-Bus: PropertiesChanged not sent: {e}");
    }
}

/// Announces the Unit and Maintenance property changes of every published snapshot until
/// the snapshot channel closes (see the module documentation).
pub(super) async fn watch_snapshots(
    h: ControlHandle,
    unit: InterfaceRef<Unit>,
    maint: InterfaceRef<Maintenance>,
) {
    let mut rx = h.watch();
    let mut last = rx.borrow_and_update().clone();
    // Live values may go from this instant on; `held` says some are waiting for it.
    let mut live_from = Instant::now();
    let mut held = false;
    loop {
        tokio::select! {
            changed = rx.changed() => if changed.is_err() {
                return;
            },
            () = tokio::time::sleep_until(live_from), if held => {}
        }
        let new = rx.borrow_and_update().clone();
        let now = Instant::now();
        let (changes, announced) = diff(&last, &new, now >= live_from);
        announce(&unit, &changes.unit).await;
        announce(&maint, &changes.maint).await;
        if changes.live_sent {
            live_from = now + CHANGE_INTERVAL;
        }
        held = changes.held;
        last = Arc::new(announced);
    }
}

/// Announces `Protocols.Names` when the list of names changed (an edit of a protocol's
/// settings is not a change of Names).
pub(super) async fn watch_protocols(h: ControlHandle, protocols: InterfaceRef<Protocols>) {
    let mut rx = h.watch_protocols();
    let names = |list: &[crate::protocol::Protocol]| -> Vec<String> {
        list.iter().map(|p| p.name.clone()).collect()
    };
    let mut last = names(&rx.borrow_and_update());
    while rx.changed().await.is_ok() {
        let now = names(&rx.borrow_and_update());
        if now != last {
            announce(&protocols, &["Names"]).await;
            last = now;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap() -> Snapshot {
        let mut s = Snapshot::power_on(4.0);
        s.state = UnitState::Ready;
        s.ready = true;
        s.readings = [Some(4.0), Some(4.5), Some(30.0), Some(33.0), Some(0.0)];
        s
    }

    #[test]
    fn change_detection_thresholds() {
        assert!(!moved(Some(4.0), Some(4.04), TEMP_EPSILON_C));
        assert!(moved(Some(4.0), Some(4.06), TEMP_EPSILON_C));
        assert!(moved(None, Some(4.0), TEMP_EPSILON_C));
        assert!(!moved(None, None, TEMP_EPSILON_C));
    }

    #[test]
    fn state_and_ready_go_together_and_at_once() {
        let last = snap();
        let mut new = last.clone();
        new.state = UnitState::Maintenance;
        new.ready = !last.ready;
        let (c, _) = diff(&last, &new, false);
        assert_eq!(c.unit, vec!["State", "Ready"]);
        assert_eq!(c.maint, vec!["Active"]);
        assert!(!c.held && !c.live_sent);
    }

    #[test]
    fn home_screen_properties_go_together_and_ready_in_by_whole_seconds() {
        let mut last = snap();
        last.ready_in_s = Some(100.2);
        let mut new = last.clone();
        new.ready_in_s = Some(99.6);
        let (c, _) = diff(&last, &new, false);
        assert!(c.unit.is_empty(), "100.2 -> 99.6 rounds to 100: {c:?}");
        new.ready_in_s = Some(99.4);
        new.water_low = true;
        let (c, _) = diff(&last, &new, false);
        assert_eq!(c.unit, vec!["ReadyIn", "WaterLow"]);
    }

    #[test]
    fn live_values_wait_for_their_round_and_drift_adds_up() {
        let last = snap();
        let mut new = last.clone();
        new.readings[0] = last.readings[0].map(|t| t + 0.03);
        let (c, announced) = diff(&last, &new, true);
        assert!(c.unit.is_empty(), "below the epsilon: {c:?}");
        new.readings[0] = last.readings[0].map(|t| t + 0.06);
        let (c, _) = diff(&announced, &new, false);
        assert!(c.unit.is_empty() && c.held, "held back: {c:?}");
        let (c, announced) = diff(&announced, &new, true);
        assert_eq!(c.unit, vec!["Temperatures"]);
        assert!(c.live_sent && !c.held);
        assert_eq!(announced.readings[0], new.readings[0]);
    }
}
