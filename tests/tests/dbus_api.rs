//! The D-Bus service in-process against a real private dbus-daemon running the shipped
//! policy, with the test playing the control loop (`coldspray_e2e::fake_core`).

use coldspray_e2e::fake_core::FakeCore;
use coldspray_e2e::introspect::{self, NAME, PATH};
use coldspray_e2e::PrivateBus;
use coldsprayd::api::{Command, Event};
use coldsprayd::dbus::convert::CurvePoint;
use coldsprayd::dbus::{self, BusChoice, DbusConfig, DbusServer};
use coldsprayd::model::session::{Outcome, Sample, SessionRecord, SessionStart, StartCause};
use coldsprayd::store::{LogStore, SessionDetail, SessionQuery, StoreError};
use futures_util::StreamExt;
use serde::Serialize;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use zbus::zvariant::{DynamicType, OwnedValue, Value};

const UNIT: &str = "org.coldspray.ColdSpray1.Unit";
const PROTOCOLS: &str = "org.coldspray.ColdSpray1.Protocols";
const SESSIONS: &str = "org.coldspray.ColdSpray1.Sessions";
const MAINT: &str = "org.coldspray.ColdSpray1.Maintenance";
const WAIT: Duration = Duration::from_secs(10);

struct Rig {
    core: FakeCore,
    server: Option<DbusServer>,
    client: zbus::Connection,
    bus: PrivateBus,
}

async fn rig(store: Option<Arc<dyn LogStore>>) -> Rig {
    let bus = PrivateBus::start(&coldspray_e2e::current_user()).expect("private bus");
    let (core, server, client) = coldspray_e2e::fake_core::served(&bus, store).await;
    Rig {
        core,
        server: Some(server),
        client,
        bus,
    }
}

async fn call<B>(
    c: &zbus::Connection,
    iface: &str,
    method: &str,
    body: &B,
) -> Result<zbus::Message, (String, String)>
where
    B: Serialize + DynamicType,
{
    c.call_method(Some(NAME), PATH, Some(iface), method, body)
        .await
        .map_err(|e| match e {
            zbus::Error::MethodError(name, msg, _) => {
                (name.as_str().to_string(), msg.unwrap_or_default())
            }
            other => ("transport".to_string(), other.to_string()),
        })
}

async fn get(c: &zbus::Connection, iface: &str, prop: &str) -> OwnedValue {
    let m = call(c, "org.freedesktop.DBus.Properties", "Get", &(iface, prop))
        .await
        .unwrap_or_else(|e| panic!("Get {prop}: {e:?}"));
    m.body().deserialize::<OwnedValue>().expect("variant")
}

fn dict(items: Vec<(&str, Value<'static>)>) -> HashMap<String, OwnedValue> {
    items
        .into_iter()
        .map(|(k, v)| (k.to_string(), OwnedValue::try_from(v).expect("owned")))
        .collect()
}

fn empty() -> HashMap<String, OwnedValue> {
    HashMap::new()
}

async fn expect_err<B: Serialize + DynamicType>(
    c: &zbus::Connection,
    iface: &str,
    method: &str,
    body: &B,
    short: &str,
    failures: &mut Vec<String>,
) {
    let want = format!("org.coldspray.ColdSpray1.Error.{short}");
    match call(c, iface, method, body).await {
        Err((name, msg)) if name == want => assert!(!msg.is_empty(), "{method}: empty message"),
        other => failures.push(format!("{iface}.{method}: wanted {short}, got {other:?}")),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn properties_are_readable_and_changes_are_announced() {
    let _ticket = coldspray_e2e::gate::shared();
    let r = rig(None).await;
    let state: String = get(&r.client, UNIT, "State").await.try_into().unwrap();
    assert_eq!(state, "ready");
    let temps: HashMap<String, f64> = get(&r.client, UNIT, "Temperatures")
        .await
        .try_into()
        .unwrap();
    assert_eq!(temps.get("reservoir"), Some(&4.0));
    assert!(!temps.contains_key("pressure"));
    let version: String = get(&r.client, UNIT, "Version").await.try_into().unwrap();
    assert_eq!(version, "0.1.0-test");

    let props = coldspray_e2e::fake_core::properties(&r.client).await;
    let mut changes = props.receive_properties_changed().await.unwrap();
    r.core.update(|s| s.setpoint_c = 6.5);
    let found = tokio::time::timeout(WAIT, async {
        while let Some(sig) = changes.next().await {
            let args = sig.args().unwrap();
            if args.interface_name.as_str() == UNIT {
                if let Some(v) = args.changed_properties.get("Setpoint") {
                    return f64::try_from(v).unwrap();
                }
            }
        }
        f64::NAN
    })
    .await
    .expect("PropertiesChanged for Setpoint");
    assert_eq!(found, 6.5);
    // A temperature wobble below the threshold is not announced; a real change is.
    r.core.update(|s| s.readings[0] = Some(4.01));
    r.core.update(|s| s.readings[0] = Some(5.0));
    let t = tokio::time::timeout(WAIT, async {
        while let Some(sig) = changes.next().await {
            let args = sig.args().unwrap();
            if let Some(v) = args.changed_properties.get("Temperatures") {
                let m: HashMap<String, f64> = v.try_to_owned().unwrap().try_into().unwrap();
                return m["reservoir"];
            }
        }
        f64::NAN
    })
    .await
    .expect("PropertiesChanged for Temperatures");
    assert_eq!(t, 5.0);
    drop(r.bus);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_stop_reach_the_controller_and_signals_follow() {
    let _ticket = coldspray_e2e::gate::shared();
    let r = rig(None).await;
    let rule = zbus::MatchRule::builder()
        .msg_type(zbus::message::Type::Signal)
        .interface(UNIT)
        .unwrap()
        .build();
    let mut signals = zbus::MessageStream::for_match_rule(rule, &r.client, None)
        .await
        .unwrap();
    let reply = call(
        &r.client,
        UNIT,
        "Start",
        &("pico", dict(vec![("spray_s", Value::F64(30.0))])),
    )
    .await
    .expect("start accepted");
    let id: u64 = reply.body().deserialize().unwrap();
    assert_eq!(id, 1);
    match &r.core.commands()[0] {
        Command::StartSession { protocol, options } => {
            assert_eq!(protocol, "pico");
            assert_eq!(options.spray_s, Some(30.0));
        }
        other => panic!("unexpected {other:?}"),
    }
    let started = tokio::time::timeout(WAIT, async {
        while let Some(Ok(m)) = signals.next().await {
            if m.header().member().map(|x| x.as_str()) == Some("SessionStarted") {
                return m
                    .body()
                    .deserialize::<(u64, String, String, bool)>()
                    .unwrap();
            }
        }
        panic!("stream ended")
    })
    .await
    .expect("SessionStarted signal");
    assert_eq!(started, (1, "pico".into(), "command".into(), false));

    let e = call(&r.client, UNIT, "Start", &("pico", empty()))
        .await
        .unwrap_err();
    assert_eq!(e.0, "org.coldspray.ColdSpray1.Error.NotReady");
    assert!(e.1.contains("spraying"), "{}", e.1);
    call(&r.client, UNIT, "Stop", &()).await.expect("stop");
    let e = call(&r.client, UNIT, "Stop", &()).await.unwrap_err();
    assert_eq!(e.0, "org.coldspray.ColdSpray1.Error.NotPermitted");
    let ended = tokio::time::timeout(WAIT, async {
        while let Some(Ok(m)) = signals.next().await {
            if m.header().member().map(|x| x.as_str()) == Some("SessionEnded") {
                return m.body().deserialize::<(u64, String, bool)>().unwrap();
            }
        }
        panic!("stream ended")
    })
    .await
    .expect("SessionEnded signal");
    assert_eq!(ended, (1, "stopped".into(), false));

    // Alarms: raised signal forwarded, acknowledge of an absent alarm is UnknownAlarm.
    let alarm = coldsprayd::model::alarm::Alarm {
        kind: coldsprayd::model::alarm::AlarmKind::WaterLow,
        priority: coldsprayd::model::alarm::Priority::Medium,
        message: "Reservoir water low: refill".into(),
        params: Default::default(),
        raised_at: Duration::ZERO,
        raised_unix_ms: 1,
        condition_present: true,
        acknowledged: false,
    };
    r.core.update(|s| s.alarms.push(alarm.clone()));
    r.core.emit(Event::AlarmRaised(alarm));
    let raised = tokio::time::timeout(WAIT, async {
        while let Some(Ok(m)) = signals.next().await {
            if m.header().member().map(|x| x.as_str()) == Some("AlarmRaised") {
                return m.body().deserialize::<(String, String, String)>().unwrap();
            }
        }
        panic!("stream ended")
    })
    .await
    .expect("AlarmRaised signal");
    assert_eq!(raised.0, "water_low");
    let alarms: Vec<(String, String, String, i64, bool, bool)> =
        get(&r.client, UNIT, "ActiveAlarms")
            .await
            .try_into()
            .unwrap();
    assert_eq!(alarms[0].0, "water_low");
    let e = call(&r.client, UNIT, "Acknowledge", &("estop",))
        .await
        .unwrap_err();
    assert_eq!(e.0, "org.coldspray.ColdSpray1.Error.UnknownAlarm");
    call(&r.client, UNIT, "Acknowledge", &("water_low",))
        .await
        .expect("ack");
    call(&r.client, UNIT, "Arm", &("hifu",)).await.expect("arm");
    call(&r.client, UNIT, "SetSetpoint", &(8.0f64,))
        .await
        .expect("setpoint");
    call(&r.client, UNIT, "AudioPause", &())
        .await
        .expect("audio pause");
    tokio::time::sleep(Duration::from_millis(50)).await;
    let armed: String = get(&r.client, UNIT, "Armed").await.try_into().unwrap();
    assert_eq!(armed, "hifu");
    let sp: f64 = get(&r.client, UNIT, "Setpoint").await.try_into().unwrap();
    assert_eq!(sp, 8.0);
    let calls = r.core.handle.telemetry.dbus_calls();
    assert_eq!(calls["Unit.Start"], (2, 1));
    assert_eq!(calls["Unit.Stop"], (2, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_arguments_are_refused_before_the_controller() {
    let _ticket = coldspray_e2e::gate::shared();
    let r = rig(None).await;
    let c = &r.client;
    let mut f = Vec::new();
    let nan = f64::NAN;
    let inf = f64::INFINITY;
    let long = "x".repeat(1000);
    // Unit
    for (p, o, e) in [
        ("", empty(), "InvalidArgument"),
        (long.as_str(), empty(), "InvalidArgument"),
        ("Bad Name!", empty(), "InvalidArgument"),
        ("nope", empty(), "UnknownProtocol"),
        (
            "pico",
            dict(vec![("bogus", Value::F64(1.0))]),
            "InvalidArgument",
        ),
        (
            "pico",
            dict(vec![("spray_s", Value::F64(nan))]),
            "OutOfRange",
        ),
        (
            "pico",
            dict(vec![("spray_s", Value::F64(inf))]),
            "OutOfRange",
        ),
        (
            "pico",
            dict(vec![("spray_s", Value::F64(500.0))]),
            "OutOfRange",
        ),
        (
            "pico",
            dict(vec![("spray_s", Value::from("ten"))]),
            "InvalidArgument",
        ),
        (
            "pico",
            dict(vec![("skin_target_c", Value::F64(50.0))]),
            "OutOfRange",
        ),
        (
            "pico",
            dict(vec![("pump_percent", Value::U32(5))]),
            "OutOfRange",
        ),
        (
            "pico",
            dict(vec![("pump_percent", Value::F64(50.5))]),
            "InvalidArgument",
        ),
    ] {
        expect_err(c, UNIT, "Start", &(p, o), e, &mut f).await;
    }
    for (p, e) in [
        ("", "InvalidArgument"),
        ("Bad!", "InvalidArgument"),
        ("nope", "UnknownProtocol"),
    ] {
        expect_err(c, UNIT, "Arm", &(p,), e, &mut f).await;
    }
    expect_err(
        c,
        UNIT,
        "Acknowledge",
        &("nope",),
        "InvalidArgument",
        &mut f,
    )
    .await;
    expect_err(
        c,
        UNIT,
        "Acknowledge",
        &(long.as_str(),),
        "InvalidArgument",
        &mut f,
    )
    .await;
    for x in [nan, inf, -inf, 1.9, 15.1] {
        expect_err(c, UNIT, "SetSetpoint", &(x,), "OutOfRange", &mut f).await;
    }
    // Protocols
    expect_err(c, PROTOCOLS, "Get", &("",), "InvalidArgument", &mut f).await;
    expect_err(c, PROTOCOLS, "Get", &("nope",), "UnknownProtocol", &mut f).await;
    let base = |extra: Vec<(&'static str, Value<'static>)>| {
        let mut v = vec![
            ("name", Value::from("new_one")),
            ("title", Value::from("New one")),
            ("goal", Value::from("protect")),
            ("spray_s", Value::F64(30.0)),
        ];
        for (k, x) in extra {
            v.retain(|(kk, _)| *kk != k);
            v.push((k, x));
        }
        dict(v)
    };
    for (d, e) in [
        (empty(), "InvalidArgument"),
        (base(vec![("spray_s", Value::F64(nan))]), "OutOfRange"),
        (base(vec![("spray_s", Value::F64(0.0))]), "OutOfRange"),
        (base(vec![("bogus", Value::U32(1))]), "InvalidArgument"),
        (base(vec![("title", Value::from(""))]), "InvalidArgument"),
        (
            base(vec![("title", Value::from("t".repeat(1000)))]),
            "InvalidArgument",
        ),
        (base(vec![("goal", Value::from("heat"))]), "InvalidArgument"),
        (base(vec![("name", Value::from("pico"))]), "InvalidArgument"),
        (
            base(vec![("pattern", Value::from("pulsed"))]),
            "InvalidArgument",
        ),
        (base(vec![("skin_floor_c", Value::F64(inf))]), "OutOfRange"),
    ] {
        expect_err(c, PROTOCOLS, "Create", &(d,), e, &mut f).await;
    }
    for (n, d, e) in [
        ("nope", empty(), "UnknownProtocol"),
        (
            "pico",
            dict(vec![("spray_s", Value::F64(121.0))]),
            "OutOfRange",
        ),
        (
            "pico",
            dict(vec![("name", Value::from("other"))]),
            "InvalidArgument",
        ),
        (
            "pico",
            dict(vec![("bogus", Value::F64(1.0))]),
            "InvalidArgument",
        ),
        ("pico", dict(vec![("on_ms", Value::U32(1))]), "OutOfRange"),
    ] {
        expect_err(c, PROTOCOLS, "Update", &(n, d), e, &mut f).await;
    }
    expect_err(c, PROTOCOLS, "Delete", &("",), "InvalidArgument", &mut f).await;
    expect_err(
        c,
        PROTOCOLS,
        "Delete",
        &("nope",),
        "UnknownProtocol",
        &mut f,
    )
    .await;
    // Sessions: filters are checked before the store is asked.
    for (d, e) in [
        (dict(vec![("bogus", Value::U32(1))]), "InvalidArgument"),
        (dict(vec![("limit", Value::U32(0))]), "OutOfRange"),
        (
            dict(vec![("outcome", Value::from("exploded"))]),
            "InvalidArgument",
        ),
        (dict(vec![("protocol", Value::from(""))]), "InvalidArgument"),
        (
            dict(vec![("from_unix_ms", Value::from("yesterday"))]),
            "InvalidArgument",
        ),
    ] {
        expect_err(c, SESSIONS, "List", &(d.clone(),), e, &mut f).await;
        expect_err(c, SESSIONS, "Stats", &(d,), e, &mut f).await;
    }
    expect_err(
        c,
        SESSIONS,
        "Export",
        &(empty(), "xml"),
        "InvalidArgument",
        &mut f,
    )
    .await;
    expect_err(c, SESSIONS, "Get", &(1u64,), "StoreUnavailable", &mut f).await;
    expect_err(c, SESSIONS, "List", &(empty(),), "StoreUnavailable", &mut f).await;
    // Maintenance
    for x in [nan, inf, 0.5, 61.0] {
        expect_err(c, MAINT, "Prime", &(x,), "OutOfRange", &mut f).await;
    }
    for x in [nan, -inf, 0.0, 301.0] {
        expect_err(c, MAINT, "Drain", &(x,), "OutOfRange", &mut f).await;
    }
    for (o, s, e) in [
        ("laser", 1.0, "InvalidArgument"),
        ("", 1.0, "InvalidArgument"),
        (long.as_str(), 1.0, "InvalidArgument"),
        ("pump", 0.05, "OutOfRange"),
        ("pump", 31.0, "OutOfRange"),
        ("pump", nan, "OutOfRange"),
    ] {
        expect_err(c, MAINT, "TestOutput", &(o, s), e, &mut f).await;
    }
    for (s, x, e) in [
        ("flux", 0.0, "InvalidArgument"),
        ("skin", 5.5, "OutOfRange"),
        ("skin", -5.5, "OutOfRange"),
        ("skin", nan, "OutOfRange"),
    ] {
        expect_err(c, MAINT, "SetCalibration", &(s, x), e, &mut f).await;
    }
    // A wrong D-Bus signature never reaches the code at all.
    let e = call(c, UNIT, "SetSetpoint", &("warm",)).await.unwrap_err();
    assert!(
        !e.0.starts_with("org.coldspray.") && e.0 != "transport",
        "{e:?}"
    );

    assert!(f.is_empty(), "{} failures:\n{}", f.len(), f.join("\n"));
    assert!(
        r.core.commands().is_empty(),
        "reached the controller: {:?}",
        r.core.commands()
    );
    // Still serving.
    call(c, "org.freedesktop.DBus.Peer", "Ping", &())
        .await
        .expect("ping");
    let state: String = get(c, UNIT, "State").await.try_into().unwrap();
    assert_eq!(state, "ready");
    let calls = r.core.handle.telemetry.dbus_calls();
    assert!(calls["Unit.Start"].1 >= 12);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protocols_and_maintenance_round_trip() {
    let _ticket = coldspray_e2e::gate::shared();
    let r = rig(None).await;
    let c = &r.client;
    let new = dict(vec![
        ("name", Value::from("test_proto")),
        ("title", Value::from("Test")),
        ("goal", Value::from("prepare")),
        ("spray_s", Value::F64(40.0)),
        ("pattern", Value::from("pulsed")),
        ("on_ms", Value::U32(300)),
        ("off_ms", Value::U32(700)),
        ("skin_target_c", Value::F64(28.0)),
    ]);
    call(c, PROTOCOLS, "Create", &(new,)).await.expect("create");
    call(
        c,
        PROTOCOLS,
        "Update",
        &("test_proto", dict(vec![("spray_s", Value::F64(45.0))])),
    )
    .await
    .expect("update");
    let p: HashMap<String, OwnedValue> = call(c, PROTOCOLS, "Get", &("test_proto",))
        .await
        .expect("get")
        .body()
        .deserialize()
        .unwrap();
    assert_eq!(f64::try_from(&p["spray_s"]).unwrap(), 45.0);
    assert_eq!(u32::try_from(&p["off_ms"]).unwrap(), 700);
    let list: Vec<HashMap<String, OwnedValue>> = call(c, PROTOCOLS, "List", &())
        .await
        .unwrap()
        .body()
        .deserialize()
        .unwrap();
    assert_eq!(list.len(), 6);
    let e = call(c, PROTOCOLS, "Delete", &("pico",)).await.unwrap_err();
    assert_eq!(e.0, "org.coldspray.ColdSpray1.Error.NotPermitted");
    call(c, PROTOCOLS, "Delete", &("test_proto",))
        .await
        .expect("delete");
    let names: Vec<String> = get(c, PROTOCOLS, "Names").await.try_into().unwrap();
    assert!(!names.contains(&"test_proto".to_string()));

    let e = call(c, MAINT, "Prime", &(10.0f64,)).await.unwrap_err();
    assert_eq!(e.0, "org.coldspray.ColdSpray1.Error.NotPermitted");
    call(c, MAINT, "Enter", &()).await.expect("enter");
    call(c, MAINT, "Prime", &(10.0f64,)).await.expect("prime");
    call(c, MAINT, "TestOutput", &("chiller_fan", 2.5f64))
        .await
        .expect("test output");
    call(c, MAINT, "SetCalibration", &("reservoir", -0.3f64))
        .await
        .expect("calibration");
    call(c, MAINT, "RecordWaterChange", &())
        .await
        .expect("water change");
    call(c, MAINT, "SelfTest", &()).await.expect("self-test");
    tokio::time::sleep(Duration::from_millis(50)).await;
    let act: String = get(c, MAINT, "Activity").await.try_into().unwrap();
    assert_eq!(act, "test_output:chiller_fan");
    let wc: u64 = get(c, MAINT, "WaterChanges").await.try_into().unwrap();
    assert_eq!(wc, 1);
    let st: String = get(c, MAINT, "LastSelfTest").await.try_into().unwrap();
    assert_eq!(st, "passed");
    call(c, MAINT, "Exit", &()).await.expect("exit");
    let cmds = r.core.commands();
    assert!(cmds.contains(&Command::Prime { seconds: 10.0 }));
    assert!(cmds.contains(&Command::SetCalibration {
        sensor: coldspray_hal::Sensor::Reservoir,
        offset: -0.3
    }));
}

/// A log store kept in memory, for the Sessions interface (the sled store is tested by its
/// own helper; this one answers the trait exactly, filters included).
struct MemStore(Vec<SessionDetail>);

impl LogStore for MemStore {
    fn record(&self, _event: &Event) -> Result<(), StoreError> {
        Ok(())
    }
    fn sessions(&self, q: &SessionQuery) -> Result<Vec<SessionRecord>, StoreError> {
        let mut v: Vec<_> = self
            .0
            .iter()
            .map(|d| d.record.clone())
            .filter(|r| q.protocol.as_ref().is_none_or(|p| *p == r.start.protocol))
            .filter(|r| q.outcome.is_none_or(|o| o == r.outcome))
            .filter(|r| q.from_unix_ms.is_none_or(|t| r.start.started_unix_ms >= t))
            .filter(|r| q.to_unix_ms.is_none_or(|t| r.start.started_unix_ms < t))
            .collect();
        v.reverse();
        v.truncate(q.limit.unwrap_or(usize::MAX));
        Ok(v)
    }
    fn session(&self, id: u64) -> Result<Option<SessionDetail>, StoreError> {
        Ok(self.0.iter().find(|d| d.record.id() == id).cloned())
    }
}

fn record(id: u64, protocol: &str, outcome: Outcome, late: bool) -> SessionDetail {
    let start = SessionStart {
        id,
        protocol: protocol.into(),
        goal: coldsprayd::protocol::Goal::Protect,
        cause: StartCause::AutoStart,
        started_at: Duration::from_secs(id * 100),
        started_unix_ms: 1_700_000_000_000 + id as i64 * 100_000,
        laser_to_spray_ms: Some(if late { 12_000.0 } else { 40.0 }),
        late,
        skin_target_c: Some(30.0),
        skin_floor_c: 10.0,
    };
    SessionDetail {
        record: SessionRecord {
            start,
            ended_at: Duration::from_secs(id * 100 + 30),
            ended_unix_ms: 1_700_000_000_000 + id as i64 * 100_000 + 30_000,
            outcome,
            peak_skin_c: Some(41.0 + id as f64),
            min_skin_c: Some(29.0),
            time_to_target_ms: Some(8000),
            above_40_ms: Some(1500),
            spray_ms: 30_000,
            ended_by_alarm: None,
        },
        samples: (0..3)
            .map(|i| Sample {
                session_id: id,
                t_ms: i * 100,
                mist_c: Some(5.0),
                skin_c: if i == 1 { None } else { Some(35.0) },
                reservoir_c: Some(4.0),
                pressure_bar: Some(1.2),
                pump: true,
                valve: i != 2,
            })
            .collect(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_list_get_export_stats() {
    let _ticket = coldspray_e2e::gate::shared();
    let store = MemStore(vec![
        record(1, "pico", Outcome::TargetReached, false),
        record(2, "hifu", Outcome::Stopped, true),
        record(3, "pico", Outcome::DurationElapsed, false),
    ]);
    let r = rig(Some(Arc::new(store))).await;
    let c = &r.client;
    let list: Vec<HashMap<String, OwnedValue>> = call(
        c,
        SESSIONS,
        "List",
        &(dict(vec![("protocol", Value::from("pico"))]),),
    )
    .await
    .unwrap()
    .body()
    .deserialize()
    .unwrap();
    let ids: Vec<u64> = list
        .iter()
        .map(|d| u64::try_from(&d["id"]).unwrap())
        .collect();
    assert_eq!(ids, vec![3, 1]);
    let (rec, curve): (HashMap<String, OwnedValue>, Vec<CurvePoint>) =
        call(c, SESSIONS, "Get", &(2u64,))
            .await
            .unwrap()
            .body()
            .deserialize()
            .unwrap();
    assert_eq!(
        String::try_from(rec["outcome"].try_clone().unwrap()).unwrap(),
        "stopped"
    );
    assert!(bool::try_from(&rec["late"]).unwrap());
    assert_eq!(curve.len(), 3);
    assert!(curve[1].2.is_nan() && curve[0].2 == 35.0);
    let e = call(c, SESSIONS, "Get", &(99u64,)).await.unwrap_err();
    assert_eq!(e.0, "org.coldspray.ColdSpray1.Error.UnknownSession");
    let csv: String = call(c, SESSIONS, "Export", &(empty(), "csv"))
        .await
        .unwrap()
        .body()
        .deserialize()
        .unwrap();
    let lines: Vec<_> = csv.lines().collect();
    assert_eq!(lines.len(), 4);
    assert!(lines[0].starts_with("id,protocol,"));
    assert!(lines[1].starts_with("3,pico,protect,auto_start,"));
    let json: String = call(c, SESSIONS, "Export", &(empty(), "json"))
        .await
        .unwrap()
        .body()
        .deserialize()
        .unwrap();
    let parsed: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(parsed.as_array().unwrap().len(), 3);
    // One schema: each JSON object has exactly List's keys, with the same values.
    let all: Vec<HashMap<String, OwnedValue>> = call(c, SESSIONS, "List", &(empty(),))
        .await
        .unwrap()
        .body()
        .deserialize()
        .unwrap();
    for (listed, exported) in all.iter().zip(parsed.as_array().unwrap()) {
        let obj = exported.as_object().expect("an object per session");
        let mut keys: Vec<&String> = listed.keys().collect();
        keys.sort();
        assert_eq!(keys, obj.keys().collect::<Vec<_>>(), "{exported}");
        assert_eq!(obj["id"], u64::try_from(&listed["id"]).unwrap());
        assert_eq!(
            obj["duration_s"],
            f64::try_from(&listed["duration_s"]).unwrap()
        );
        assert_eq!(
            obj["completed"],
            bool::try_from(&listed["completed"]).unwrap()
        );
    }
    let stats: HashMap<String, OwnedValue> = call(c, SESSIONS, "Stats", &(empty(),))
        .await
        .unwrap()
        .body()
        .deserialize()
        .unwrap();
    assert_eq!(u64::try_from(&stats["count"]).unwrap(), 3);
    assert_eq!(u64::try_from(&stats["completed"]).unwrap(), 2);
    assert_eq!(u64::try_from(&stats["late"]).unwrap(), 1);
    assert_eq!(f64::try_from(&stats["max_peak_skin_c"]).unwrap(), 44.0);
    assert_eq!(
        f64::try_from(&stats["max_laser_to_spray_ms"]).unwrap(),
        12_000.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn introspection_matches_the_shipped_xml() {
    let _ticket = coldspray_e2e::gate::shared();
    let r = rig(None).await;
    let live = introspect::live_xml(&r.client).await.unwrap();
    if std::env::var_os("COLDSPRAY_WRITE_XML").is_some() {
        for (name, xml) in introspect::split(&live) {
            std::fs::write(introspect::shipped_path(&name), xml).unwrap();
        }
    }
    let live_members = introspect::members(&live).unwrap();
    let mut failures = Vec::new();
    for iface in introspect::ALWAYS {
        let shipped = std::fs::read_to_string(introspect::shipped_path(iface))
            .unwrap_or_else(|e| panic!("{iface}: {e}"));
        assert!(
            shipped.contains("<!--"),
            "{iface}: shipped XML has no documentation"
        );
        let shipped_members = introspect::members(&shipped).unwrap();
        let (l, s) = (&live_members[iface], &shipped_members[iface]);
        for m in l.difference(s) {
            failures.push(format!("{iface}: live only: {m}"));
        }
        for m in s.difference(l) {
            failures.push(format!("{iface}: shipped only: {m}"));
        }
    }
    assert!(
        !live_members.contains_key(introspect::SIMULATOR),
        "simulator served without a sim"
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_instance_cannot_take_the_name_and_none_serves_nothing() {
    let _ticket = coldspray_e2e::gate::shared();
    let mut r = rig(None).await;
    let config = DbusConfig {
        bus: BusChoice::Auto,
        address: Some(r.bus.address().to_string()),
    };
    let err = match dbus::start(r.core.handle.clone(), &config, false).await {
        Err(e) => e,
        Ok(_) => panic!("second owner accepted"),
    };
    assert!(matches!(err, dbus::DbusError::Serve { .. }), "{err}");
    let none = DbusConfig {
        bus: BusChoice::None,
        address: Some(r.bus.address().to_string()),
    };
    assert!(dbus::start(r.core.handle.clone(), &none, false)
        .await
        .unwrap()
        .is_none());
    // After shutdown the name is free again.
    r.server.take().unwrap().shutdown().await;
    let again = dbus::start(r.core.handle.clone(), &config, false)
        .await
        .unwrap();
    assert!(again.is_some());
}
