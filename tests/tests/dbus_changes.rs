//! `PropertiesChanged` on change (issue #17, API gaps 1 and 8): properties that change in one
//! control step go in one signal (State and Ready together), and `Protocols.Names` is
//! announced only when the names changed. The D-Bus service runs in-process against a real
//! private dbus-daemon, with the test playing the control loop (`coldspray_e2e::fake_core`).
//! How fast the signal follows is measured by `cargo bench -p coldspray-e2e --bench
//! props_latency`, not asserted here.

use coldspray_e2e::fake_core::Served;
use coldspray_e2e::introspect::{NAME, PATH};
use coldsprayd::model::state::UnitState;
use futures_util::StreamExt;
use std::collections::HashMap;
use std::time::Duration;
use zbus::zvariant::{OwnedValue, Value};

const UNIT: &str = "org.coldspray.ColdSpray1.Unit";
const PROTOCOLS: &str = "org.coldspray.ColdSpray1.Protocols";
const WAIT: Duration = Duration::from_secs(10);

async fn rig() -> Served {
    coldspray_e2e::fake_core::served_privately().await
}

/// The PropertiesChanged signals of every interface, as (interface, changed properties).
async fn changes(
    c: &zbus::Connection,
) -> impl futures_util::Stream<Item = (String, HashMap<String, OwnedValue>)> {
    let props = coldspray_e2e::fake_core::properties(c).await;
    props
        .receive_properties_changed()
        .await
        .unwrap()
        .map(|sig| {
            let args = sig.args().unwrap();
            let changed = args
                .changed_properties
                .iter()
                .map(|(k, v)| (k.to_string(), v.try_to_owned().unwrap()))
                .collect();
            (args.interface_name.to_string(), changed)
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_and_ready_change_in_one_signal() {
    let _ticket = coldspray_e2e::gate::shared();
    let r = rig().await;
    let mut signals = Box::pin(changes(&r.client).await);
    r.core.update(|s| {
        s.state = UnitState::Maintenance;
        s.ready = false;
    });
    let changed = tokio::time::timeout(WAIT, async {
        while let Some((iface, changed)) = signals.next().await {
            if iface == UNIT && (changed.contains_key("State") || changed.contains_key("Ready")) {
                return changed;
            }
        }
        panic!("signal stream ended")
    })
    .await
    .expect("a PropertiesChanged for State or Ready");
    let state = changed.get("State").map(|v| String::try_from(v.clone()));
    let ready = changed.get("Ready").map(|v| bool::try_from(v.clone()));
    assert!(
        matches!(state, Some(Ok(ref s)) if s == "maintenance"),
        "State not in the signal that carried Ready: {changed:?}"
    );
    assert!(
        matches!(ready, Some(Ok(false))),
        "Ready not in the signal that carried State: {changed:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_are_announced_only_when_they_change() {
    let _ticket = coldspray_e2e::gate::shared();
    let r = rig().await;
    let mut signals = Box::pin(changes(&r.client).await);
    // An edit that keeps the names: no Names signal. Then a new protocol: one, with it.
    let spray: HashMap<String, OwnedValue> =
        HashMap::from([("spray_s".into(), OwnedValue::from(45.0f64))]);
    let edit = ("pico".to_string(), spray);
    let c = &r.client;
    c.call_method(Some(NAME), PATH, Some(PROTOCOLS), "Update", &edit)
        .await
        .expect("update pico");
    let new: HashMap<String, OwnedValue> = [
        ("name", Value::from("after_edit")),
        ("title", Value::from("After the edit")),
        ("goal", Value::from("prepare")),
        ("spray_s", Value::F64(40.0)),
        ("pattern", Value::from("continuous")),
        ("skin_target_c", Value::F64(28.0)),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), OwnedValue::try_from(v).unwrap()))
    .collect();
    c.call_method(Some(NAME), PATH, Some(PROTOCOLS), "Create", &(new,))
        .await
        .expect("create");
    let names = tokio::time::timeout(WAIT, async {
        while let Some((iface, changed)) = signals.next().await {
            if iface == PROTOCOLS {
                if let Some(v) = changed.get("Names") {
                    return Vec::<String>::try_from(v.clone()).unwrap();
                }
            }
        }
        panic!("signal stream ended")
    })
    .await
    .expect("a PropertiesChanged for Names");
    assert!(
        names.iter().any(|n| n == "after_edit"),
        "the first Names signal came for the edit that changed no name: {names:?}"
    );
}
