//! The Prometheus alert rules and the Grafana dashboard: checked and unit-tested by the real
//! `promtool`, and every metric they name must be one the daemon exports.

use coldspray_e2e::metrics_fixtures::{busy_snapshot, handle};
use coldspray_e2e::metrics_support::{prometheus_tool, sample_names};
use coldspray_e2e::repo_root;
use coldsprayd::metrics;
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

fn packaging(path: &str) -> PathBuf {
    repo_root().join("packaging").join(path)
}

fn promtool(args: &[&str]) -> (bool, String) {
    let bin = prometheus_tool("promtool").unwrap_or_else(|e| panic!("{e:#}"));
    let out = Command::new(bin)
        .args(args)
        .current_dir(packaging("prometheus"))
        .output()
        .expect("run promtool");
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), printed)
}

#[test]
fn alert_rules_pass_promtool_check_and_unit_tests() {
    let _ticket = coldspray_e2e::gate::shared();
    let (ok, printed) = promtool(&[
        "check",
        "rules",
        "coldspray-alerts.yml",
        "coldspray-clinic-hours.yml",
    ]);
    assert!(ok, "promtool check rules:\n{printed}");
    assert!(printed.contains("SUCCESS: 7 rules found"), "{printed}");
    let (ok, printed) = promtool(&["test", "rules", "tests/coldspray-alerts.test.yml"]);
    assert!(
        ok && printed.contains("SUCCESS"),
        "promtool test rules:\n{printed}"
    );
}

/// Every sample name a busy unit exports (all optional series present).
fn exported_names() -> BTreeSet<String> {
    let (handle, ends) = handle();
    ends.snapshot.send(Arc::new(busy_snapshot())).unwrap();
    handle
        .telemetry
        .record_step(Duration::from_micros(20), false);
    handle.telemetry.record_dbus_call("StartSession", false);
    let text = metrics::render(&handle).expect("render");
    sample_names(&text)
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

#[test]
fn dashboard_parses_and_names_only_exported_metrics() {
    let _ticket = coldspray_e2e::gate::shared();
    let path = packaging("grafana/dashboards/coldspray-unit.json");
    let text = std::fs::read_to_string(&path).expect("read dashboard");
    let dash: serde_json::Value = serde_json::from_str(&text).expect("dashboard is JSON");
    assert_eq!(dash["uid"], "coldspray-unit");
    let vars = dash["templating"]["list"].as_array().expect("templating");
    assert!(vars
        .iter()
        .any(|v| v["type"] == "datasource" && v["query"] == "prometheus"));
    assert!(vars.iter().any(|v| v["name"] == "instance"));
    // Every panel takes the data source from the variable.
    for p in dash["panels"].as_array().unwrap() {
        if p["type"] != "row" {
            assert_eq!(p["datasource"]["uid"], "${datasource}", "{}", p["title"]);
        }
    }

    let exported = exported_names();
    let mut exprs = Vec::new();
    collect_exprs(&dash, &mut exprs);
    assert!(exprs.len() >= 20, "only {} expressions found", exprs.len());
    let mut used = BTreeSet::new();
    for expr in &exprs {
        let names = coldspray_metric_names(expr);
        // `up` is Prometheus's own per-target series; anything else must be ours.
        assert!(
            !names.is_empty() || expr.starts_with("up{"),
            "expression names no ColdSpray metric: {expr}"
        );
        for n in names {
            assert!(
                exported.contains(&n),
                "dashboard uses {n}, which the daemon does not export ({expr})"
            );
            used.insert(n);
        }
    }
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
fn alert_rules_name_only_exported_metrics() {
    let _ticket = coldspray_e2e::gate::shared();
    let exported = exported_names();
    for file in [
        "prometheus/coldspray-alerts.yml",
        "prometheus/coldspray-clinic-hours.yml",
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
