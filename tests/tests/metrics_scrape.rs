//! The metrics endpoint over real HTTP, with the control loop played by the test through
//! `HandleEnds`, linted by the real `promtool check metrics`.

use coldspray_e2e::metrics_fixtures::{alarm, busy_snapshot, ended, handle, session_start};
use coldspray_e2e::metrics_support::{
    http_get, prometheus_tool, sample_names, tool_result, HttpResponse,
};
use coldspray_hal::Sensor;
use coldsprayd::api::Event;
use coldsprayd::handle::ControlHandle;
use coldsprayd::metrics::{self, MetricsConfig, MetricsServer};
use coldsprayd::model::alarm::AlarmKind;
use coldsprayd::model::session::{Outcome, StartCause};
use coldsprayd::UnitState;
use std::collections::BTreeMap;
use std::io::Write;
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

/// Parses an exposition into `name{labels}` → value (labels as written by the encoder).
fn samples(body: &str) -> BTreeMap<String, f64> {
    body.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            Some((series.to_string(), value.parse().ok()?))
        })
        .collect()
}

fn value(map: &BTreeMap<String, f64>, series: &str) -> f64 {
    *map.get(series).unwrap_or_else(|| {
        panic!(
            "no series {series} in {:#?}",
            map.keys().collect::<Vec<_>>()
        )
    })
}

fn scrape(addr: SocketAddr) -> HttpResponse {
    let r = http_get(addr, "/metrics", &[]).expect("scrape /metrics");
    assert_eq!(r.status, 200, "{}", r.body);
    r
}

fn start(rt: &tokio::runtime::Runtime, handle: &ControlHandle) -> MetricsServer {
    let config = MetricsConfig {
        enabled: true,
        listen: "127.0.0.1:0".parse().unwrap(),
    };
    rt.block_on(metrics::start(handle.clone(), &config))
        .expect("start metrics server")
}

/// Runs `promtool check metrics` on an exposition; returns (success, everything it printed).
fn promtool_check(body: &str) -> (bool, String) {
    let promtool = prometheus_tool("promtool").unwrap_or_else(|e| panic!("{e:#}"));
    let mut child = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run promtool");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(body.as_bytes())
        .unwrap();
    tool_result(&child.wait_with_output().unwrap())
}

#[test]
fn scrape_over_http_reflects_snapshot_and_events_and_passes_promtool() {
    let _ticket = coldspray_e2e::gate::shared();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (handle, ends) = handle();
    let server = start(&rt, &handle);
    let addr = server.local_addr();
    assert_eq!(addr.ip().to_string(), "127.0.0.1");

    // Play the control loop: a snapshot, some steps, D-Bus calls and a few events.
    ends.snapshot.send(Arc::new(busy_snapshot())).unwrap();
    handle
        .telemetry
        .record_step(Duration::from_micros(7), false);
    handle
        .telemetry
        .record_step(Duration::from_micros(300), false);
    handle
        .telemetry
        .record_step(Duration::from_millis(20), true);
    handle.telemetry.record_dbus_call("Start", false);
    handle.telemetry.record_dbus_call("Start", true);
    let s1 = session_start(1, StartCause::AutoStart, Some(12.0), false, 100);
    let s2 = session_start(2, StartCause::Trigger, Some(12_500.0), true, 200);
    let events = [
        Event::SessionStarted(s1.clone()),
        Event::SessionEnded(ended(s1, 30, Outcome::TargetReached, Some(14.5))),
        Event::SessionStarted(s2.clone()),
        Event::AlarmRaised(alarm(AlarmKind::SensorStale(Sensor::Skin), 210)),
        Event::SessionEnded(ended(s2, 15, Outcome::Interlock, None)),
        Event::AlarmRaised(alarm(AlarmKind::DryRun, 300)),
    ];
    for e in events {
        ends.events.send(e).unwrap();
    }

    // The event task runs concurrently: scrape until it has seen the last event.
    let body = coldspray_e2e::metrics_support::wait_for(Duration::from_secs(10), || {
        let r = scrape(addr);
        let m = samples(&r.body);
        Ok(
            (m.get("coldspray_interlock_trips_total{cause=\"dry_run\",sensor=\"\"}") == Some(&1.0))
                .then_some(r),
        )
    })
    .expect("event metrics never updated");
    assert_eq!(
        body.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let m = samples(&body.body);

    // Scrape-time values from the snapshot.
    assert_eq!(
        value(
            &m,
            "coldspray_build_info{backend=\"sim\",version=\"0.1.0-test\"}"
        ),
        1.0
    );
    assert_eq!(
        value(&m, "coldspray_temperature_celsius{sensor=\"reservoir\"}"),
        4.2
    );
    assert_eq!(
        value(&m, "coldspray_temperature_celsius{sensor=\"skin\"}"),
        28.5
    );
    assert!(!m.contains_key("coldspray_temperature_celsius{sensor=\"pressure\"}"));
    assert_eq!(value(&m, "coldspray_line_pressure_pascals"), 180_000.0);
    assert!((value(&m, "coldspray_flow_cubic_meters_per_second") - 0.00001).abs() < 1e-12);
    assert_eq!(value(&m, "coldspray_state{state=\"spraying\"}"), 1.0);
    let states_on: f64 = UnitState::ALL
        .iter()
        .map(|s| value(&m, &format!("coldspray_state{{state=\"{}\"}}", s.name())))
        .sum();
    assert_eq!(states_on, 1.0, "exactly one state series is 1");
    assert_eq!(value(&m, "coldspray_ready"), 0.0);
    assert_eq!(value(&m, "coldspray_output_on{output=\"pump\"}"), 1.0);
    assert_eq!(value(&m, "coldspray_output_on{output=\"buzzer\"}"), 0.0);
    assert_eq!(value(&m, "coldspray_state_duration_seconds"), 10.0);
    assert_eq!(
        value(
            &m,
            "coldspray_alarms_active{kind=\"service_due\",priority=\"low\",sensor=\"\"}"
        ),
        1.0
    );
    assert_eq!(
        value(
            &m,
            "coldspray_alarms_active{kind=\"estop\",priority=\"high\",sensor=\"\"}"
        ),
        0.0
    );
    assert_eq!(value(&m, "coldspray_session_active"), 1.0);
    assert_eq!(value(&m, "coldspray_session_skin_min_so_far_celsius"), 21.0);
    assert_eq!(value(&m, "coldspray_chiller_duty_ratio"), 0.4);
    assert_eq!(value(&m, "coldspray_pump_running_seconds_total"), 7200.5);
    assert_eq!(
        value(&m, "coldspray_chiller_running_seconds_total"),
        36000.0
    );
    assert_eq!(value(&m, "coldspray_log_store_size_bytes"), 123_456.0);
    assert_eq!(value(&m, "coldspray_log_store_available"), 1.0);
    assert_eq!(value(&m, "coldspray_self_test_passed"), 1.0);

    // Telemetry.
    assert_eq!(
        value(&m, "coldspray_control_step_duration_seconds_count"),
        3.0
    );
    assert_eq!(
        value(
            &m,
            "coldspray_control_step_duration_seconds_bucket{le=\"0.00001\"}"
        ),
        1.0
    );
    assert_eq!(
        value(
            &m,
            "coldspray_control_step_duration_seconds_bucket{le=\"0.01\"}"
        ),
        2.0
    );
    assert_eq!(
        value(
            &m,
            "coldspray_control_step_duration_seconds_bucket{le=\"+Inf\"}"
        ),
        3.0
    );
    assert_eq!(value(&m, "coldspray_control_step_overruns_total"), 1.0);
    assert_eq!(
        value(&m, "coldspray_dbus_calls_total{method=\"Start\"}"),
        2.0
    );
    assert_eq!(
        value(&m, "coldspray_dbus_call_errors_total{method=\"Start\"}"),
        1.0
    );

    // Event-fed counters and histograms.
    assert_eq!(
        value(&m, "coldspray_sessions_started_total{cause=\"auto_start\"}"),
        1.0
    );
    assert_eq!(
        value(&m, "coldspray_sessions_started_total{cause=\"trigger\"}"),
        1.0
    );
    assert_eq!(
        value(&m, "coldspray_sessions_started_total{cause=\"command\"}"),
        0.0
    );
    assert_eq!(value(&m, "coldspray_sessions_completed_total"), 1.0);
    assert_eq!(value(&m, "coldspray_sessions_aborted_total"), 1.0);
    assert_eq!(value(&m, "coldspray_sessions_late_total"), 1.0);
    assert_eq!(
        value(
            &m,
            "coldspray_sessions_ended_total{outcome=\"target_reached\"}"
        ),
        1.0
    );
    assert_eq!(
        value(&m, "coldspray_sessions_ended_total{outcome=\"interlock\"}"),
        1.0
    );
    assert_eq!(
        value(
            &m,
            "coldspray_laser_to_spray_delay_seconds_bucket{le=\"0.01\"}"
        ),
        0.0
    );
    assert_eq!(
        value(
            &m,
            "coldspray_laser_to_spray_delay_seconds_bucket{le=\"0.02\"}"
        ),
        1.0
    );
    assert_eq!(
        value(
            &m,
            "coldspray_laser_to_spray_delay_seconds_bucket{le=\"10\"}"
        ),
        1.0
    );
    assert_eq!(
        value(
            &m,
            "coldspray_laser_to_spray_delay_seconds_bucket{le=\"12.5\"}"
        ),
        2.0
    );
    assert_eq!(value(&m, "coldspray_session_duration_seconds_count"), 2.0);
    assert_eq!(value(&m, "coldspray_session_duration_seconds_sum"), 45.0);
    assert_eq!(value(&m, "coldspray_session_skin_min_celsius_count"), 1.0);
    assert_eq!(value(&m, "coldspray_last_session_skin_min_celsius"), 14.5);
    assert_eq!(
        value(
            &m,
            "coldspray_interlock_trips_total{cause=\"sensor_stale\",sensor=\"skin\"}"
        ),
        1.0
    );
    assert_eq!(
        value(
            &m,
            "coldspray_interlock_trips_total{cause=\"sensor_stale\",sensor=\"mist\"}"
        ),
        0.0
    );
    assert_eq!(
        value(
            &m,
            "coldspray_alarms_raised_total{kind=\"dry_run\",priority=\"high\",sensor=\"\"}"
        ),
        1.0
    );
    assert!(
        !sample_names(&body.body)
            .iter()
            .any(|n| n.contains("session_id")),
        "no session ids"
    );
    #[cfg(target_os = "linux")]
    assert!(m.contains_key("process_resident_memory_bytes"));

    // A new snapshot shows at the next scrape: values are read at scrape time.
    let mut next = busy_snapshot();
    next.state = UnitState::Ready;
    next.ready = true;
    next.readings[Sensor::Reservoir.index()] = Some(3.9);
    next.readings[Sensor::Skin.index()] = None;
    ends.snapshot.send(Arc::new(next)).unwrap();
    let m2 = samples(&scrape(addr).body);
    assert_eq!(value(&m2, "coldspray_state{state=\"ready\"}"), 1.0);
    assert_eq!(value(&m2, "coldspray_state{state=\"spraying\"}"), 0.0);
    assert_eq!(value(&m2, "coldspray_ready"), 1.0);
    assert_eq!(
        value(&m2, "coldspray_temperature_celsius{sensor=\"reservoir\"}"),
        3.9
    );
    assert!(!m2.contains_key("coldspray_temperature_celsius{sensor=\"skin\"}"));
    assert_eq!(value(&m2, "coldspray_sensor_valid{sensor=\"skin\"}"), 0.0);

    // The real promtool lints both expositions without a word.
    for exposition in [&body.body, &scrape(addr).body] {
        let (ok, printed) = promtool_check(exposition);
        assert!(
            ok && printed.trim().is_empty(),
            "promtool check metrics:\n{printed}"
        );
    }

    rt.block_on(server.shutdown());
    assert!(
        http_get(addr, "/metrics", &[]).is_err(),
        "server still answering after shutdown"
    );
}

#[test]
fn promtool_flags_a_bad_exposition() {
    let _ticket = coldspray_e2e::gate::shared();
    // Proves the lint above can fail: a counter without `_total` and a missing HELP.
    let (ok, printed) = promtool_check("# TYPE coldspray_bad counter\ncoldspray_bad 1\n");
    assert!(
        !ok || !printed.trim().is_empty(),
        "promtool accepted a bad exposition"
    );
}

#[test]
fn landing_page_errors_and_openmetrics_accept() {
    let _ticket = coldspray_e2e::gate::shared();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (handle, _ends) = handle();
    let server = start(&rt, &handle);
    let addr = server.local_addr();

    let root = http_get(addr, "/", &[]).unwrap();
    assert_eq!(root.status, 200);
    assert!(root
        .header("content-type")
        .unwrap()
        .starts_with("text/html"));
    assert!(root.body.contains("href=\"metrics\""));

    assert_eq!(http_get(addr, "/nope", &[]).unwrap().status, 404);

    // The crate writes only the classic format; a scraper preferring OpenMetrics gets it.
    let om = http_get(
        addr,
        "/metrics",
        &[(
            "Accept",
            "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5",
        )],
    )
    .unwrap();
    assert_eq!(om.status, 200);
    assert_eq!(om.header("content-type"), Some(metrics::CONTENT_TYPE));
    assert!(om.body.contains("coldspray_state{state=\"starting\"} 1"));

    // A fresh unit: power-on snapshot, no readings.
    let m = samples(&om.body);
    assert_eq!(
        value(&m, "coldspray_sensor_valid{sensor=\"reservoir\"}"),
        0.0
    );
    assert!(!m.contains_key("coldspray_temperature_celsius{sensor=\"reservoir\"}"));
    rt.block_on(server.shutdown());
}

#[test]
fn binding_a_taken_port_fails_before_returning() {
    let _ticket = coldspray_e2e::gate::shared();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (handle, _ends) = handle();
    let first = start(&rt, &handle);
    let config = MetricsConfig {
        enabled: true,
        listen: first.local_addr(),
    };
    let err = rt
        .block_on(metrics::start(handle.clone(), &config))
        .err()
        .expect("second bind on the same port must fail");
    assert!(matches!(err, metrics::MetricsError::Bind { .. }), "{err}");
    let disabled = MetricsConfig {
        enabled: false,
        ..config
    };
    assert!(matches!(
        rt.block_on(metrics::start(handle, &disabled)),
        Err(metrics::MetricsError::Disabled)
    ));
    rt.block_on(first.shutdown());
}

#[test]
fn hung_scrapers_neither_block_the_publisher_nor_other_scrapes() {
    let _ticket = coldspray_e2e::gate::shared();
    use std::io::Write as _;
    use std::net::TcpStream;
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (handle, ends) = handle();
    let server = start(&rt, &handle);
    let addr = server.local_addr();

    // 16 clients that never finish their request headers, 8 that send a request and never
    // read the answer.
    let mut hung = Vec::new();
    for i in 0..24 {
        let mut s = TcpStream::connect(addr).unwrap();
        if i < 16 {
            s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
                .unwrap();
        } else {
            s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
                .unwrap();
        }
        hung.push(s);
    }

    // The "control loop" publishes many snapshots and a burst of events past the broadcast
    // capacity while those clients hang; each send returns without waiting for any reader.
    let mut last = busy_snapshot();
    for i in 0..5_000u64 {
        last.at = std::time::Duration::from_millis(500_000 + i * 10);
        last.readings[Sensor::Reservoir.index()] = Some(4.0 + (i % 100) as f64 / 100.0);
        ends.snapshot.send(Arc::new(last.clone())).unwrap();
        let s = session_start(i, StartCause::Command, None, false, i);
        ends.events.send(Event::SessionStarted(s)).unwrap();
    }

    // A well-behaved scraper still gets an answer showing the last snapshot.
    let m = samples(&scrape(addr).body);
    assert_eq!(
        value(&m, "coldspray_temperature_celsius{sensor=\"reservoir\"}"),
        last.readings[Sensor::Reservoir.index()].unwrap()
    );
    // Events: every one either counted or reported as missed, none waited for.
    let counted =
        coldspray_e2e::metrics_support::wait_for(std::time::Duration::from_secs(10), || {
            let m = samples(&scrape(addr).body);
            let n = value(&m, "coldspray_sessions_started_total{cause=\"command\"}")
                + value(&m, "coldspray_events_lagged_total");
            Ok((n == 5_000.0).then_some(n))
        })
        .expect("counted + lagged events never reached 5000");
    assert_eq!(counted, 5_000.0);
    drop(hung);
    rt.block_on(server.shutdown());
}

/// Every D-Bus method's call and error counters exist at 0 before its first call (issue 14,
/// defect 1): a real daemon on a private bus, scraped before anyone called a method.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_dbus_method_is_counted_at_zero_before_its_first_call() {
    let _ticket = coldspray_e2e::gate::shared();
    use coldspray_e2e::rel::{scrape, Client, SimDaemon};
    let bus = coldspray_e2e::PrivateBus::start(&coldspray_e2e::current_user()).expect("bus");
    let dir = coldspray_e2e::TempDir::new("dbus-calls-zero").unwrap();
    let port = coldspray_e2e::metrics_support::free_port().unwrap();
    let _d =
        SimDaemon::spawn_with_metrics(&bus, dir.path(), 5.0, "", "", Some(port)).expect("daemon");
    let c = Client::connect(&bus).await.unwrap();
    c.wait_up(Duration::from_secs(60)).await.unwrap();
    let body = scrape(port).unwrap();
    let m = samples(&body);
    for method in coldsprayd::dbus::methods::ALWAYS
        .iter()
        .chain(&coldsprayd::dbus::methods::SIMULATOR)
    {
        for family in [
            "coldspray_dbus_calls_total",
            "coldspray_dbus_call_errors_total",
        ] {
            let series = format!("{family}{{method=\"{method}\"}}");
            assert_eq!(m.get(&series), Some(&0.0), "{series} in:\n{body}");
        }
    }
}
