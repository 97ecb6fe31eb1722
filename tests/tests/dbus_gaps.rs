//! The gaps an outside kiosk client found in the API (#17), each closed and shown here on a
//! real private bus, through the typed proxies a kiosk uses: why the unit is not ready and
//! when it will be, the session's expected end, the water level, the pedal's protocol, the
//! audio pause left, the self-test report after its signal, the live curve, and `metrics`
//! among the features while /metrics serves.

use coldspray_e2e::fake_core::Served;
use coldsprayd::api::Event;
use coldsprayd::control::running_session::EndBasis;
use coldsprayd::dbus;
use coldsprayd::dbus::proxy::{uncached, MaintenanceProxy, SessionsProxy, UnitProxy};
use coldsprayd::model::session::{Sample, SessionStart, StartCause};
use coldsprayd::protocol::Goal;
use std::collections::HashMap;
use std::time::Duration;

async fn rig() -> Served {
    coldspray_e2e::fake_core::served_privately().await
}

/// Polls `f` until it is true (the service reads the snapshot the fake core publishes).
async fn eventually<F, Fut>(what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !f().await {
        assert!(tokio::time::Instant::now() < deadline, "{what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn not_ready_reasons_ready_estimate_water_pedal_and_audio_pause_are_properties() {
    let _ticket = coldspray_e2e::gate::shared();
    let r = rig().await;
    let unit: UnitProxy = uncached(&r.client).await.unwrap();
    assert!(
        unit.not_ready().await.unwrap().is_empty(),
        "ready: no reason"
    );
    assert!(unit.ready_in().await.unwrap().is_nan());
    assert!(!unit.water_low().await.unwrap());
    assert_eq!(unit.pedal_protocol().await.unwrap(), "co2_fractional");
    assert_eq!(unit.audio_pause_left().await.unwrap(), 0.0);

    let props = zbus::fdo::PropertiesProxy::builder(&r.client)
        .destination(dbus::NAME)
        .unwrap()
        .path(dbus::PATH)
        .unwrap()
        .build()
        .await
        .unwrap();
    let mut changes = props.receive_properties_changed().await.unwrap();
    r.core.update(|s| {
        s.state = coldsprayd::model::state::UnitState::Precooling;
        s.ready = false;
        s.not_ready = vec!["precooling".into(), "interlock:water_low".into()];
        s.ready_in_s = Some(95.0);
        s.water_low = true;
        s.pedal_protocol = "pico".into();
        s.audio_paused_until = Some(s.at + Duration::from_secs(100));
    });
    eventually("the new values are served", || async {
        unit.water_low().await.unwrap()
    })
    .await;
    assert_eq!(
        unit.not_ready().await.unwrap(),
        vec!["precooling".to_string(), "interlock:water_low".to_string()]
    );
    assert_eq!(unit.ready_in().await.unwrap(), 95.0);
    assert_eq!(unit.pedal_protocol().await.unwrap(), "pico");
    let left = unit.audio_pause_left().await.unwrap();
    assert!(left > 99.0 && left <= 100.0, "{left}");
    // What changed together is announced together, in one signal.
    let names = tokio::time::timeout(Duration::from_secs(10), async {
        use futures_util::StreamExt;
        while let Some(sig) = changes.next().await {
            let args = sig.args().unwrap();
            if args.changed_properties.contains_key("WaterLow") {
                let mut names: Vec<String> = args
                    .changed_properties
                    .keys()
                    .map(|k| k.to_string())
                    .collect();
                names.sort();
                return names;
            }
        }
        Vec::new()
    })
    .await
    .expect("PropertiesChanged for WaterLow");
    for name in ["NotReady", "PedalProtocol", "ReadyIn", "WaterLow"] {
        assert!(names.contains(&name.to_string()), "{names:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_session_says_when_it_is_expected_to_end_and_on_what_basis() {
    let _ticket = coldspray_e2e::gate::shared();
    let r = rig().await;
    let unit: UnitProxy = uncached(&r.client).await.unwrap();
    unit.start("co2_fractional", HashMap::new()).await.unwrap();
    r.core.update(|s| {
        let p = s.session.as_mut().expect("the fake core started a session");
        p.remaining_s = 110.0;
        p.end_in_s = 7.5;
        p.end_basis = EndBasis::Hold;
    });
    eventually("the expected end is served", || async {
        let d = unit.current_session().await.unwrap();
        d.get("end_basis")
            .and_then(|v| String::try_from(v.try_clone().unwrap()).ok())
            .as_deref()
            == Some("hold")
    })
    .await;
    let d = unit.current_session().await.unwrap();
    assert_eq!(f64::try_from(&d["end_in_s"]).unwrap(), 7.5);
    assert_eq!(f64::try_from(&d["remaining_s"]).unwrap(), 110.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_self_test_report_stays_readable_after_its_signal() {
    let _ticket = coldspray_e2e::gate::shared();
    let r = rig().await;
    let maint: MaintenanceProxy = uncached(&r.client).await.unwrap();
    assert!(maint.last_self_test_report().await.unwrap().is_empty());
    let report = vec![
        "skin: MLX90614 ok".to_string(),
        "pump: 1.2 L/min".to_string(),
    ];
    r.core.update(|s| {
        s.last_self_test = Some((s.at, true));
        s.last_self_test_report = report.clone();
    });
    eventually("the report is served", || async {
        maint.last_self_test_report().await.unwrap() == report
    })
    .await;
    assert_eq!(maint.last_self_test().await.unwrap(), "passed");
}

fn sample(session_id: u64, t_ms: u32, skin: f64) -> Event {
    Event::Sample(Sample {
        session_id,
        t_ms,
        mist_c: Some(2.0),
        skin_c: Some(skin),
        reservoir_c: Some(4.0),
        pressure_bar: Some(1.1),
        pump: true,
        valve: true,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_running_sessions_curve_is_served_as_it_forms() {
    let _ticket = coldspray_e2e::gate::shared();
    let r = rig().await;
    let sessions: SessionsProxy = uncached(&r.client).await.unwrap();
    assert_eq!(
        sessions.live_curve(0).await.unwrap(),
        (0, false, 0, Vec::new())
    );
    r.core.emit(Event::SessionStarted(SessionStart {
        id: 41,
        protocol: "pico".into(),
        goal: Goal::Protect,
        cause: StartCause::Command,
        started_at: Duration::ZERO,
        started_unix_ms: 0,
        laser_to_spray_ms: None,
        late: false,
        skin_target_c: Some(26.0),
        skin_floor_c: 10.0,
    }));
    for (i, skin) in [40.0, 37.0, 33.0].into_iter().enumerate() {
        r.core.emit(sample(41, 100 * i as u32, skin));
    }
    eventually("three samples", || async {
        sessions.live_curve(0).await.unwrap().2 == 3
    })
    .await;
    let (id, running, next, curve) = sessions.live_curve(1).await.unwrap();
    assert_eq!((id, running, next), (41, true, 3));
    let skins: Vec<f64> = curve.iter().map(|p| p.2).collect();
    assert_eq!(skins, vec![37.0, 33.0]);
    r.core.emit(sample(41, 300, 30.0));
    eventually("the fourth sample", || async {
        sessions.live_curve(3).await.unwrap().3.len() == 1
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn features_list_metrics_while_metrics_are_served() {
    let _ticket = coldspray_e2e::gate::shared();
    let r = rig().await;
    let unit: UnitProxy = uncached(&r.client).await.unwrap();
    assert!(!unit.features().await.unwrap().contains(&"metrics".into()));
    let config = coldsprayd::metrics::MetricsConfig {
        enabled: true,
        listen: "127.0.0.1:0".parse().unwrap(),
    };
    let _metrics = coldsprayd::metrics::start(r.core.handle.clone(), &config)
        .await
        .expect("metrics serve");
    let features = unit.features().await.unwrap();
    assert!(features.contains(&"metrics".into()), "{features:?}");
    assert!(features.contains(&"skin_sensor".into()), "{features:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alarms_come_with_a_stable_code_their_sensor_and_the_english_apart() {
    use coldsprayd::model::alarm::{Alarm, AlarmKind};
    let _ticket = coldspray_e2e::gate::shared();
    let r = rig().await;
    let unit: UnitProxy = uncached(&r.client).await.unwrap();
    assert!(unit.alarm_details().await.unwrap().is_empty());
    let kind = AlarmKind::SensorStale(coldspray_hal::Sensor::Skin);
    r.core.update(|s| {
        s.alarms = vec![Alarm {
            kind,
            priority: kind.priority(),
            message: "skin: no valid reading for 1.2 s (no data)".into(),
            params: Default::default(),
            raised_at: s.at,
            raised_unix_ms: 1_700_000_000_000,
            condition_present: true,
            acknowledged: false,
        }]
    });
    eventually("the alarm is served", || async {
        !unit.alarm_details().await.unwrap().is_empty()
    })
    .await;
    let d = &unit.alarm_details().await.unwrap()[0];
    let text = |k: &str| String::try_from(d[k].try_clone().unwrap()).unwrap();
    assert_eq!(text("code"), "sensor_stale");
    assert_eq!(text("key"), "sensor_stale:skin");
    assert_eq!(text("sensor"), "skin");
    assert_eq!(text("title"), kind.describe());
    assert!(text("message").contains("1.2 s"));
    assert_eq!(text("priority"), kind.priority().name());
    assert_eq!(
        i64::try_from(&d["raised_unix_ms"]).unwrap(),
        1_700_000_000_000
    );
    assert_eq!(unit.active_alarms().await.unwrap()[0].0, text("key"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alarms_carry_their_values_as_parameters_that_match_the_english() {
    use coldsprayd::model::alarm_text::AlarmText;
    use coldsprayd::safety::alarms::{AlarmManager, Stamp};
    use zbus::zvariant::OwnedValue;
    let _ticket = coldspray_e2e::gate::shared();
    let r = rig().await;
    let unit: UnitProxy = uncached(&r.client).await.unwrap();
    // Raised through the daemon's alarm manager, as the interlocks raise them.
    let mut alarms = AlarmManager::new();
    let mut events = Vec::new();
    let stamp = Stamp {
        at: Duration::from_secs(5),
        unix_ms: 1_700_000_000_000,
    };
    alarms.raise(
        AlarmText::HeatsinkOverTemp {
            heatsink_c: 74.25,
            limit_c: 70.0,
        },
        stamp,
        &mut events,
    );
    alarms.raise(
        AlarmText::LateStart {
            session_id: 42,
            delay_s: 12.5,
        },
        stamp,
        &mut events,
    );
    let raised = alarms.alarms().to_vec();
    r.core.update(|s| s.alarms = raised.clone());
    eventually("the alarms are served", || async {
        unit.alarm_details().await.unwrap().len() == 2
    })
    .await;
    let details = unit.alarm_details().await.unwrap();
    let by_code = |code: &str| {
        details
            .iter()
            .find(|d| String::try_from(d["code"].try_clone().unwrap()).unwrap() == code)
            .unwrap_or_else(|| panic!("{code} served: {details:?}"))
            .clone()
    };
    let params = |d: &HashMap<String, OwnedValue>| {
        HashMap::<String, OwnedValue>::try_from(d["params"].try_clone().unwrap()).unwrap()
    };
    let message = |d: &HashMap<String, OwnedValue>| {
        String::try_from(d["message"].try_clone().unwrap()).unwrap()
    };

    let hot = by_code("heatsink_over_temp");
    let p = params(&hot);
    let heatsink = f64::try_from(&p["heatsink_c"]).unwrap();
    let limit = f64::try_from(&p["limit_c"]).unwrap();
    assert_eq!((heatsink, limit), (74.25, 70.0));
    assert_eq!(p.len(), 2, "{p:?}");
    let m = message(&hot);
    assert!(m.contains(&format!("{heatsink:.1} °C")), "{m}");
    assert!(m.contains(&format!("{limit:.1} °C")), "{m}");

    let late = by_code("late_start");
    let p = params(&late);
    let id = u64::try_from(&p["session_id"]).unwrap();
    let delay = f64::try_from(&p["delay_s"]).unwrap();
    assert_eq!((id, delay), (42, 12.5));
    let m = message(&late);
    assert!(m.contains(&format!("session {id} ")), "{m}");
    assert!(m.contains(&format!("{delay:.1} s")), "{m}");
}

/// A raw call, answered with its D-Bus error name (`""` when it succeeded).
async fn error_of<B>(c: &zbus::Connection, iface: &str, member: &str, body: &B) -> String
where
    B: serde::Serialize + zbus::zvariant::DynamicType,
{
    match c
        .call_method(Some(dbus::NAME), dbus::PATH, Some(iface), member, body)
        .await
    {
        Ok(_) => String::new(),
        Err(zbus::Error::MethodError(name, _, _)) => name.as_str().to_string(),
        Err(e) => format!("not a D-Bus error: {e}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_signature_and_a_read_only_set_get_the_standard_errors() {
    let _ticket = coldspray_e2e::gate::shared();
    let r = rig().await;
    let c = &r.client;
    let unit = "org.coldspray.ColdSpray1.Unit";
    let maint = "org.coldspray.ColdSpray1.Maintenance";
    for (iface, member, err) in [
        (
            unit,
            "SetSetpoint",
            error_of(c, unit, "SetSetpoint", &("five",)).await,
        ),
        (unit, "Stop", error_of(c, unit, "Stop", &(1u32,)).await),
        (maint, "Prime", error_of(c, maint, "Prime", &(5u32,)).await),
    ] {
        assert_eq!(
            err, "org.freedesktop.DBus.Error.InvalidArgs",
            "{iface}.{member}"
        );
    }
    let set = |prop: &'static str| {
        let v = zbus::zvariant::Value::from("maintenance");
        async move {
            error_of(
                c,
                "org.freedesktop.DBus.Properties",
                "Set",
                &(unit, prop, v),
            )
            .await
        }
    };
    assert_eq!(
        set("State").await,
        "org.freedesktop.DBus.Error.PropertyReadOnly"
    );
    assert_eq!(
        set("NoSuchThing").await,
        "org.freedesktop.DBus.Error.UnknownProperty"
    );
    // Right signatures still go through.
    assert_eq!(error_of(c, unit, "SetSetpoint", &(5.0f64,)).await, "");
    assert_eq!(error_of(c, unit, "Disarm", &()).await, "");
}
