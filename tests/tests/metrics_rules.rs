//! The Prometheus alert rules and the Grafana dashboard: checked and unit-tested by the real
//! `promtool`, and every metric they name must be one the daemon exports.

use coldspray_e2e::metrics_fixtures::{busy_snapshot, ended, handle, session_start};
use coldspray_e2e::metrics_support::{run_tool, sample_names};
use coldspray_e2e::repo_root;
use coldsprayd::api::Event;
use coldsprayd::metrics;
use coldsprayd::model::session::{Outcome, StartCause};
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

fn packaging(path: &str) -> PathBuf {
    repo_root().join("packaging").join(path)
}

fn promtool(args: &[&str]) -> (bool, String) {
    run_tool("promtool", args, &packaging("prometheus"))
}

#[test]
fn alert_rules_pass_promtool_check_and_unit_tests() {
    let _ticket = coldspray_e2e::gate::shared();
    let (ok, printed) = promtool(&[
        "check",
        "rules",
        "coldspray-alerts.yml",
        "coldspray-clinic-hours.yml",
        "coldspray-recording.yml",
    ]);
    assert!(ok, "promtool check rules:\n{printed}");
    assert!(printed.contains("SUCCESS: 9 rules found"), "{printed}");
    assert!(printed.contains("SUCCESS: 4 rules found"), "{printed}");
    assert!(!printed.contains("WARNING"), "{printed}");
    let (ok, printed) = promtool(&["test", "rules", "tests/coldspray-alerts.test.yml"]);
    assert!(
        ok && printed.contains("SUCCESS"),
        "promtool test rules:\n{printed}"
    );
}

/// Every sample name a busy unit exports (all optional series present, including those that
/// appear after the first ended session).
fn exported_names() -> BTreeSet<String> {
    let (handle, ends) = handle();
    ends.snapshot.send(Arc::new(busy_snapshot())).unwrap();
    handle
        .telemetry
        .record_step(Duration::from_micros(20), false);
    handle.telemetry.record_dbus_call("StartSession", false);
    let exporter = metrics::Exporter::new(handle).expect("exporter");
    let start = session_start(1, StartCause::Command, None, false, 10);
    exporter.observe(&Event::SessionEnded(ended(
        start,
        30,
        Outcome::TargetReached,
        Some(15.0),
    )));
    let text = exporter.render().expect("render");
    sample_names(&text)
}

/// Runs `amtool` from the unpacked Alertmanager package in `packaging/prometheus`.
fn amtool(args: &[&str]) -> (bool, String) {
    run_tool("amtool", args, &packaging("prometheus"))
}

#[test]
fn alertmanager_example_passes_amtool_and_routes_by_severity() {
    let _ticket = coldspray_e2e::gate::shared();
    let config = "alertmanager.example.yml";
    let (ok, printed) = amtool(&["check-config", config]);
    assert!(
        ok && printed.contains("SUCCESS"),
        "amtool check-config:\n{printed}"
    );
    assert!(printed.contains("1 inhibit rules"), "{printed}");
    for (severity, receiver) in [
        ("critical", "on-call-pager"),
        ("warning", "clinic-it-email"),
        ("info", "clinic-it-tickets"),
    ] {
        let label = format!("severity={severity}");
        let (ok, printed) = amtool(&[
            "config",
            "routes",
            "test",
            &format!("--config.file={config}"),
            "--verify.receivers",
            receiver,
            &label,
        ]);
        assert!(ok, "{severity} should reach {receiver}:\n{printed}");
    }
}

/// Headings of README.md's Troubleshooting section, as GitHub anchors.
fn troubleshooting_anchors() -> BTreeSet<String> {
    let readme = std::fs::read_to_string(repo_root().join("README.md")).expect("README.md");
    let section = readme
        .split("\n## Troubleshooting")
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .expect("README.md has a Troubleshooting section");
    section
        .lines()
        .filter_map(|l| l.strip_prefix("### "))
        .map(|h| {
            h.chars()
                .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-')
                .collect::<String>()
                .to_lowercase()
                .replace(' ', "-")
        })
        .collect()
}

#[test]
fn every_alert_links_a_troubleshooting_section_that_exists() {
    let _ticket = coldspray_e2e::gate::shared();
    let cargo = std::fs::read_to_string(repo_root().join("Cargo.toml")).unwrap();
    let repository = cargo
        .lines()
        .find_map(|l| l.strip_prefix("repository = \""))
        .and_then(|r| r.strip_suffix('"'))
        .expect("repository in Cargo.toml");
    let base = format!("{repository}/blob/main/README.md#");
    let anchors = troubleshooting_anchors();
    let text = std::fs::read_to_string(packaging("prometheus/coldspray-alerts.yml")).unwrap();
    let alerts: Vec<&str> = text
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- alert: "))
        .collect();
    let urls: Vec<&str> = text
        .lines()
        .filter_map(|l| l.trim().strip_prefix("runbook_url: "))
        .map(|u| u.trim_matches('"'))
        .collect();
    assert_eq!(alerts.len(), urls.len(), "one runbook_url per alert");
    for (alert, url) in alerts.iter().zip(&urls) {
        let anchor = url
            .strip_prefix(&base)
            .unwrap_or_else(|| panic!("{alert}: {url} is not under {base}"));
        assert_eq!(anchor, alert.to_lowercase(), "{alert} links {url}");
        assert!(
            anchors.contains(anchor),
            "{alert}: README.md Troubleshooting has no section #{anchor} ({anchors:?})"
        );
    }
}

/// Identifiers in a PromQL expression that name ColdSpray metrics.
fn coldspray_metric_names(expr: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut current = String::new();
    let mut in_string = false;
    for c in expr.chars().chain(std::iter::once(' ')) {
        if c == '"' {
            in_string = !in_string;
            current.clear();
            continue;
        }
        if in_string {
            continue;
        }
        if c.is_ascii_alphanumeric() || c == '_' || c == ':' {
            current.push(c);
        } else {
            if current.starts_with("coldspray_") {
                names.push(current.clone());
            }
            current.clear();
        }
    }
    names
}

fn collect_exprs(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                match (k.as_str(), v) {
                    ("expr" | "definition", serde_json::Value::String(s)) => out.push(s.clone()),
                    ("query", serde_json::Value::Object(q)) => {
                        if let Some(serde_json::Value::String(s)) = q.get("query") {
                            out.push(s.clone());
                        }
                    }
                    _ => collect_exprs(v, out),
                }
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|i| collect_exprs(i, out)),
        _ => {}
    }
}

#[test]
fn the_extractor_sees_metric_names_and_skips_label_values() {
    let _ticket = coldspray_e2e::gate::shared();
    assert_eq!(
        coldspray_metric_names(
            "sum by (le) (rate(coldspray_x_bucket{instance=~\"coldspray_y\"}[5m])) / coldspray:rule"
        ),
        vec!["coldspray_x_bucket".to_string()]
    );
}

/// Parses a dashboard and checks what every ColdSpray dashboard must hold: its fixed uid, the
/// data source variable every panel uses, and expressions that name only exported metrics
/// (or recorded `coldspray:` series). Returns the dashboard and the metric names it uses.
fn check_dashboard(file: &str, uid: &str) -> (serde_json::Value, BTreeSet<String>) {
    let path = packaging(&format!("grafana/dashboards/{file}"));
    let text = std::fs::read_to_string(&path).expect("read dashboard");
    let dash: serde_json::Value = serde_json::from_str(&text).expect("dashboard is JSON");
    assert_eq!(dash["uid"], uid);
    let vars = dash["templating"]["list"].as_array().expect("templating");
    assert!(vars
        .iter()
        .any(|v| v["type"] == "datasource" && v["query"] == "prometheus"));
    // Every panel takes the data source from the variable.
    for p in dash["panels"].as_array().unwrap() {
        if p["type"] != "row" {
            assert_eq!(p["datasource"]["uid"], "${datasource}", "{}", p["title"]);
        }
    }

    let exported = exported_names();
    let recorded = recorded_names();
    let mut exprs = Vec::new();
    collect_exprs(&dash, &mut exprs);
    let mut used = BTreeSet::new();
    for expr in &exprs {
        let names = coldspray_metric_names(expr);
        // `up` is Prometheus's own per-target series; anything else must be ours.
        assert!(
            !names.is_empty() || expr.starts_with("up{"),
            "{file}: expression names no ColdSpray metric: {expr}"
        );
        for n in names {
            assert!(
                exported.contains(&n),
                "{file} uses {n}, which the daemon does not export ({expr})"
            );
            used.insert(n);
        }
        for r in expr
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
            .filter(|w| w.starts_with("coldspray:"))
        {
            assert!(
                recorded.contains(r),
                "{file} uses {r}, which no rule records"
            );
        }
    }
    (dash, used)
}

/// Series the rule files record (`record: coldspray:...`).
fn recorded_names() -> BTreeSet<String> {
    [
        "prometheus/coldspray-recording.yml",
        "prometheus/coldspray-alerts.yml",
    ]
    .iter()
    .flat_map(|f| {
        let text = std::fs::read_to_string(packaging(f)).unwrap();
        text.lines()
            .filter_map(|l| l.trim().strip_prefix("- record: "))
            .map(str::to_string)
            .collect::<Vec<_>>()
    })
    .collect()
}

#[test]
fn dashboard_parses_and_names_only_exported_metrics() {
    let _ticket = coldspray_e2e::gate::shared();
    let (dash, used) = check_dashboard("coldspray-unit.json", "coldspray-unit");
    let vars = dash["templating"]["list"].as_array().unwrap();
    assert!(vars.iter().any(|v| v["name"] == "instance"));
    let mut exprs = Vec::new();
    collect_exprs(&dash, &mut exprs);
    assert!(exprs.len() >= 20, "only {} expressions found", exprs.len());
    // The dashboard covers what issue 5 asks for.
    for needed in [
        "coldspray_temperature_celsius",
        "coldspray_state",
        "coldspray_sessions_started_total",
        "coldspray_laser_to_spray_delay_seconds_bucket",
        "coldspray_alarms_active",
    ] {
        assert!(used.contains(needed), "dashboard does not show {needed}");
    }
}

#[test]
fn fleet_dashboard_covers_every_unit_and_drills_down() {
    let _ticket = coldspray_e2e::gate::shared();
    let (dash, used) = check_dashboard("coldspray-fleet.json", "coldspray-fleet");
    let vars = dash["templating"]["list"].as_array().unwrap();
    assert!(vars.iter().any(|v| v["name"] == "site"));
    // What issue 14 asks of the fleet page: state, ready, active alarms, sessions today,
    // late starts, chiller health, every unit named by its identity.
    for needed in [
        "coldspray_state",
        "coldspray_ready",
        "coldspray_alarms_active",
        "coldspray_sessions_started_total",
        "coldspray_sessions_late_total",
        "coldspray_chiller_duty_ratio",
        "coldspray_unit_info",
    ] {
        assert!(
            used.contains(needed),
            "fleet dashboard does not show {needed}"
        );
    }
    // Unit panels link to the unit dashboard for the clicked instance; no job name.
    let text = dash.to_string();
    assert!(
        text.contains("/d/coldspray-unit/coldspray-unit?"),
        "no drill-down link"
    );
    assert!(text.contains("var-instance=${__field.labels.instance}"));
    assert!(!text.contains("job=\\\"coldspray"), "hard-codes the job");
}

#[test]
fn alert_rules_name_only_exported_metrics() {
    let _ticket = coldspray_e2e::gate::shared();
    let exported = exported_names();
    for file in [
        "prometheus/coldspray-alerts.yml",
        "prometheus/coldspray-clinic-hours.yml",
        "prometheus/coldspray-recording.yml",
    ] {
        let text = std::fs::read_to_string(packaging(file)).unwrap();
        let exprs: Vec<&str> = text
            .lines()
            .filter(|l| !l.trim_start().starts_with('#'))
            .collect();
        for n in coldspray_metric_names(&exprs.join("\n")) {
            assert!(
                exported.contains(&n),
                "{file} uses {n}, which the daemon does not export"
            );
        }
    }
}
