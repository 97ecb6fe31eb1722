//! A real Prometheus server (Debian's, unpacked by tests/tools/fetch-prometheus.sh) scrapes
//! ColdSpray's metrics endpoint every second; the test reads the values back through
//! Prometheus's HTTP query API.

use coldspray_e2e::metrics_fixtures::{busy_snapshot, ended, handle, session_start};
use coldspray_e2e::metrics_support::{
    free_port, http_get, prometheus_tool, start_sim_daemon, wait_for, PrometheusServer,
};
use coldspray_e2e::TempDir;
use coldsprayd::api::Event;
use coldsprayd::metrics::{self, MetricsConfig};
use coldsprayd::model::session::{Outcome, StartCause};
use coldsprayd::UnitState;
use std::net::SocketAddr;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

/// The in-process exporter, fed by the test, as Prometheus stores it.
#[test]
fn prometheus_stores_what_the_exporter_serves() {
    let _ticket = coldspray_e2e::gate::shared();
    let tmp = TempDir::new("coldspray-prom-inproc").unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (handle, ends) = handle();
    let config = MetricsConfig {
        enabled: true,
        listen: "127.0.0.1:0".parse().unwrap(),
    };
    let server = rt
        .block_on(metrics::start(handle.clone(), &config))
        .unwrap();
    let target = server.local_addr();
    let mut snap = busy_snapshot();
    snap.state = UnitState::Ready;
    ends.snapshot.send(Arc::new(snap)).unwrap();
    let start = session_start(1, StartCause::AutoStart, Some(8.0), false, 10);
    ends.events
        .send(Event::SessionStarted(start.clone()))
        .unwrap();
    ends.events
        .send(Event::SessionEnded(ended(
            start,
            30,
            Outcome::DurationElapsed,
            Some(18.0),
        )))
        .unwrap();

    let prom = PrometheusServer::start(tmp.path(), &[target]).unwrap_or_else(|e| panic!("{e:#}"));
    let inst = format!("instance=\"{target}\"");
    let completed = wait_for(Duration::from_secs(30), || {
        prom.query_one(&format!("coldspray_sessions_completed_total{{{inst}}}"))
    })
    .expect("Prometheus never stored the session counter");
    assert_eq!(completed, 1.0);
    assert_eq!(
        prom.query_one(&format!(
            "coldspray_temperature_celsius{{{inst},sensor=\"reservoir\"}}"
        ))
        .unwrap(),
        Some(4.2)
    );
    let on = prom
        .query(&format!("coldspray_state{{{inst}}} == 1"))
        .unwrap();
    assert_eq!(on.len(), 1, "{on:?}");
    assert_eq!(on[0].0["state"], "ready");
    assert_eq!(
        prom.query_one(&format!("up{{{inst},job=\"coldspray\"}}"))
            .unwrap(),
        Some(1.0)
    );
    // Prometheus judged the exposition valid: no scrape errors on the target.
    let targets = http_get(prom.addr, "/api/v1/targets", &[]).unwrap();
    assert!(
        targets.body.contains("\"health\":\"up\""),
        "{}",
        targets.body
    );
    drop(prom);
    rt.block_on(server.shutdown());
}

/// The daemon binary on the simulated unit in demo mode (the lead's `coldsprayd --demo`
/// plays a clinic sequence with one completed session), scraped by Prometheus.
#[test]
fn prometheus_scrapes_the_demo_daemon() {
    let _ticket = coldspray_e2e::gate::shared();
    let tmp = TempDir::new("coldspray-prom-demo").unwrap();
    let port = free_port().unwrap();
    let target: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let (mut child, log) =
        start_sim_daemon(tmp.path(), target, "", "[sim]\nspeed = 20.0\n", &["--demo"])
            .unwrap_or_else(|e| panic!("{e:#}"));
    let daemon_log = || std::fs::read_to_string(&log).unwrap_or_default();

    let prom_dir = tmp.path().join("prometheus");
    std::fs::create_dir_all(&prom_dir).unwrap();
    let prom = PrometheusServer::start(&prom_dir, &[target]).unwrap_or_else(|e| panic!("{e:#}"));
    let inst = format!("instance=\"{target}\"");

    // The demo's auto-started session completes within a few simulated minutes (20x speed);
    // it then plays a second, command-started session.
    let completed = wait_for(Duration::from_secs(180), || {
        child.check_running()?;
        Ok(prom
            .query_one(&format!("coldspray_sessions_completed_total{{{inst}}}"))?
            .filter(|v| *v >= 1.0))
    })
    .unwrap_or_else(|e| {
        panic!(
            "no completed session seen by Prometheus: {e:#}\n{}",
            daemon_log()
        )
    });
    assert!(completed >= 1.0, "{completed}");
    let started = prom
        .query_one(&format!("sum(coldspray_sessions_started_total{{{inst}}})"))
        .unwrap()
        .expect("sessions started");
    assert!(
        started >= completed,
        "{started} started, {completed} completed"
    );
    let auto = prom
        .query_one(&format!(
            "coldspray_sessions_started_total{{{inst},cause=\"auto_start\"}}"
        ))
        .unwrap();
    assert_eq!(auto, Some(1.0), "the completed session was auto-started");
    let delays = prom
        .query_one(&format!(
            "coldspray_laser_to_spray_delay_seconds_count{{{inst}}}"
        ))
        .unwrap();
    assert_eq!(delays, Some(1.0), "one laser-to-spray delay recorded");

    // The reservoir temperature is a live sim value: plausible for chilled water, and what
    // the daemon itself serves (within what a few simulated seconds can change).
    let stored = prom
        .query_one(&format!(
            "coldspray_temperature_celsius{{{inst},sensor=\"reservoir\"}}"
        ))
        .unwrap()
        .expect("reservoir temperature stored");
    assert!((0.0..=30.0).contains(&stored), "reservoir {stored} °C");
    let direct = http_get(target, "/metrics", &[]).unwrap().body;
    let live: f64 = direct
        .lines()
        .find_map(|l| l.strip_prefix("coldspray_temperature_celsius{sensor=\"reservoir\"} "))
        .and_then(|v| v.parse().ok())
        .expect("reservoir in a direct scrape");
    assert!(
        (live - stored).abs() < 2.0,
        "stored {stored} vs live {live}"
    );

    // The real daemon's exposition passes the real promtool lint without a word.
    let lint = Command::new(prometheus_tool("promtool").unwrap())
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write as _;
            c.stdin.take().unwrap().write_all(direct.as_bytes())?;
            c.wait_with_output()
        })
        .unwrap();
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&lint.stdout),
        String::from_utf8_lossy(&lint.stderr)
    );
    assert!(
        lint.status.success() && printed.trim().is_empty(),
        "promtool check metrics on the daemon:\n{printed}"
    );

    // Exactly one state is on, and it is a known state.
    let on = prom
        .query(&format!("coldspray_state{{{inst}}} == 1"))
        .unwrap();
    assert_eq!(on.len(), 1, "{on:?}");
    let state = on[0].0["state"].as_str().unwrap_or_default().to_string();
    assert!(UnitState::from_name(&state).is_some(), "{state}");
    // The demo ends with the unit ready (ready spells during the sequence can be shorter than
    // a scrape interval at 20x speed, so wait for the lasting one).
    let ready_seen = wait_for(Duration::from_secs(120), || {
        child.check_running()?;
        Ok(prom
            .query_one(&format!("coldspray_state{{{inst},state=\"ready\"}}"))?
            .filter(|v| *v == 1.0))
    })
    .unwrap_or_else(|e| {
        panic!(
            "Prometheus never saw the unit ready: {e:#}\n{}",
            daemon_log()
        )
    });
    assert_eq!(ready_seen, 1.0);
    assert_eq!(
        prom.query_one(&format!("coldspray_ready{{{inst}}}"))
            .unwrap(),
        Some(1.0)
    );
    assert_eq!(prom.query_one(&format!("up{{{inst}}}")).unwrap(), Some(1.0));
}
