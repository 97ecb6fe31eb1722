//! Grafana provisioning as the package installs it (issue 14): the dashboards provider points
//! where the package puts the dashboards, the data source has a working URL, and the unit
//! dashboard has its alert list and annotations.

use coldspray_e2e::repo_root;
use std::path::PathBuf;

fn packaging(path: &str) -> PathBuf {
    repo_root().join("packaging").join(path)
}

/// The value of the first `key: value` line in a YAML file (the files here are flat enough).
fn yaml_value(text: &str, key: &str) -> Option<String> {
    text.lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .find_map(|l| l.trim().strip_prefix(&format!("{key}:")))
        .map(|v| v.trim().trim_matches('"').to_string())
}

/// Where `daemon/Cargo.toml`'s Debian assets install a packaging file matching `source`.
fn installed_at(source: &str) -> String {
    let cargo = std::fs::read_to_string(repo_root().join("daemon/Cargo.toml")).unwrap();
    let line = cargo
        .lines()
        .find(|l| l.contains(&format!("\"../packaging/{source}")))
        .unwrap_or_else(|| panic!("no asset for {source}"));
    let fields: Vec<&str> = line.split('"').collect();
    format!("/{}", fields[3].trim_end_matches('/'))
}

#[test]
fn dashboard_provider_points_where_the_package_installs_dashboards() {
    let _ticket = coldspray_e2e::gate::shared();
    let text = std::fs::read_to_string(packaging("grafana/provisioning/dashboards/coldspray.yaml"))
        .unwrap();
    let path = yaml_value(&text, "path").expect("provider path");
    assert_eq!(path, installed_at("grafana/dashboards/"));
    assert_eq!(path, "/usr/share/coldspray/grafana/dashboards");
}

#[test]
fn data_source_url_is_a_working_default() {
    let _ticket = coldspray_e2e::gate::shared();
    let text = std::fs::read_to_string(packaging(
        "grafana/provisioning/datasources/prometheus.example.yaml",
    ))
    .unwrap();
    let url = yaml_value(&text, "url").expect("data source url");
    assert_eq!(
        url, "http://localhost:9090",
        "Debian's Prometheus on the same host"
    );
    assert_eq!(yaml_value(&text, "type").as_deref(), Some("prometheus"));
}

#[test]
fn unit_dashboard_has_alert_list_and_annotations() {
    let _ticket = coldspray_e2e::gate::shared();
    let text =
        std::fs::read_to_string(packaging("grafana/dashboards/coldspray-unit.json")).unwrap();
    let dash: serde_json::Value = serde_json::from_str(&text).unwrap();
    let panels = dash["panels"].as_array().unwrap();
    let list = panels
        .iter()
        .find(|p| p["type"] == "alertlist")
        .expect("an alert-list panel");
    assert_eq!(
        list["options"]["alertInstanceLabelFilter"],
        "{instance=~\"$instance\"}"
    );
    let annotations = dash["annotations"]["list"].as_array().unwrap();
    let names: Vec<&str> = annotations
        .iter()
        .filter(|a| a["expr"].is_string())
        .filter_map(|a| a["name"].as_str())
        .collect();
    assert_eq!(names, ["State changes", "Alarms raised"]);
    let ids: Vec<u64> = panels.iter().filter_map(|p| p["id"].as_u64()).collect();
    let unique: std::collections::BTreeSet<u64> = ids.iter().copied().collect();
    assert_eq!(ids.len(), unique.len(), "panel ids are unique");
}
