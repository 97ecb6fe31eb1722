//! A chain's monitoring, for real on loopback (issue 14): three simulated units, each scraped
//! by its own clinic Prometheus (job not called "coldspray", an external `clinic` label), all
//! writing by remote_write into one central Prometheus that runs the shipped rules. Queries on
//! the central server see the three units with their site and room; the water-low alert of the
//! unit started without water fires there. Bounded: about two minutes.

use coldspray_e2e::metrics_support::{free_port, start_sim_daemon, wait_for, PrometheusServer};
use coldspray_e2e::{repo_root, TempDir};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

struct Unit {
    clinic: &'static str,
    serial: &'static str,
    site: &'static str,
    room: &'static str,
    water_litres: f64,
}

const UNITS: [Unit; 3] = [
    Unit {
        clinic: "north",
        serial: "CS-0001",
        site: "North",
        room: "1",
        water_litres: 1.5,
    },
    Unit {
        clinic: "north",
        serial: "CS-0002",
        site: "North",
        room: "2",
        water_litres: 0.0,
    },
    Unit {
        clinic: "south",
        serial: "CS-0003",
        site: "South",
        room: "A",
        water_litres: 1.5,
    },
];

fn rules_path(file: &str) -> String {
    repo_root()
        .join("packaging/prometheus")
        .join(file)
        .display()
        .to_string()
}

#[test]
fn three_clinics_remote_write_into_a_central_prometheus() {
    let _ticket = coldspray_e2e::gate::alone();
    let began = Instant::now();
    let tmp = TempDir::new("coldspray-fleet").unwrap();
    let central_dir = tmp.path().join("central");
    std::fs::create_dir_all(&central_dir).unwrap();
    let central_config = format!(
        "global:\n  evaluation_interval: 1s\nrule_files:\n  - {}\n  - {}\n  - {}\n",
        rules_path("coldspray-alerts.yml"),
        rules_path("coldspray-clinic-hours.yml"),
        rules_path("coldspray-recording.yml"),
    );
    let central = PrometheusServer::start_with(
        &central_dir,
        &central_config,
        &["--web.enable-remote-write-receiver"],
    )
    .unwrap_or_else(|e| panic!("central: {e:#}"));

    let mut daemons = Vec::new();
    let mut clinics = Vec::new();
    for (i, unit) in UNITS.iter().enumerate() {
        let dir = tmp.path().join(format!("unit{i}"));
        std::fs::create_dir_all(&dir).unwrap();
        let target: SocketAddr = format!("127.0.0.1:{}", free_port().unwrap())
            .parse()
            .unwrap();
        let unit_keys = format!(
            "serial = \"{}\"\nsite = \"{}\"\nroom = \"{}\"\n",
            unit.serial, unit.site, unit.room
        );
        let sim = format!("[sim]\nwater_litres = {:.1}\n", unit.water_litres);
        let (child, _log) = start_sim_daemon(&dir, target, &unit_keys, &sim, &[])
            .unwrap_or_else(|e| panic!("unit {i}: {e:#}"));
        daemons.push(child);
        let config = format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n  external_labels:\n    \
             clinic: {clinic}\nscrape_configs:\n  - job_name: clinic-units\n    \
             scrape_timeout: 1s\n    static_configs:\n      - targets: ['{target}']\n\
             remote_write:\n  - url: http://{central}/api/v1/write\n    queue_config:\n      \
             batch_send_deadline: 1s\n      min_backoff: 100ms\n",
            clinic = unit.clinic,
            central = central.addr,
        );
        let clinic = PrometheusServer::start_with(&dir, &config, &[])
            .unwrap_or_else(|e| panic!("clinic Prometheus {i}: {e:#}"));
        clinics.push(clinic);
    }

    // The central server sees all three units, named by their identity and clinic.
    let infos = wait_for(Duration::from_secs(60), || {
        let r = central.query("coldspray_unit_info")?;
        Ok((r.len() == UNITS.len()).then_some(r))
    })
    .expect("the central Prometheus never saw three units");
    println!("central: coldspray_unit_info");
    for (labels, value) in &infos {
        println!(
            "  {} {} site={} room={} instance={} job={} -> {value}",
            labels["clinic"],
            labels["serial"],
            labels["site"],
            labels["room"],
            labels["instance"],
            labels["job"]
        );
    }
    for unit in &UNITS {
        assert!(
            infos.iter().any(|(l, _)| l["serial"] == unit.serial
                && l["site"] == unit.site
                && l["room"] == unit.room
                && l["clinic"] == unit.clinic
                && l["job"] == "clinic-units"),
            "{} not seen with its labels: {infos:?}",
            unit.serial
        );
    }
    // The shipped rules run there too: coldspray:target knows every unit, whatever its job.
    let by_clinic = wait_for(Duration::from_secs(30), || {
        let r = central.query("count by (clinic) (up == 1 and coldspray:target)")?;
        let units: f64 = r.iter().map(|(_, v)| v).sum();
        Ok((units == UNITS.len() as f64).then_some(r))
    })
    .expect("coldspray:target never covered the three units");
    println!("central: units up per clinic: {by_clinic:?}");
    assert_eq!(by_clinic.len(), 2, "{by_clinic:?}");

    // The unit started without water: its water-low alert fires on the central server, with
    // the clinic that sent it; no unit is reported down.
    let firing = wait_for(Duration::from_secs(150), || {
        let r = central.query("ALERTS{alertstate=\"firing\"}")?;
        Ok(r.iter()
            .any(|(l, _)| l["alertname"] == "ColdSprayWaterLow")
            .then_some(r))
    })
    .expect("ColdSprayWaterLow never fired on the central Prometheus");
    println!(
        "central: firing alerts after {:.0} s",
        began.elapsed().as_secs_f64()
    );
    for (labels, _) in &firing {
        println!("  {labels}");
    }
    let water: Vec<_> = firing
        .iter()
        .filter(|(l, _)| l["alertname"] == "ColdSprayWaterLow")
        .collect();
    assert_eq!(water.len(), 1, "{water:?}");
    assert_eq!(water[0].0["clinic"], "north");
    let serial_of = central
        .query(&format!(
            "coldspray_unit_info{{instance=\"{}\", clinic=\"north\"}}",
            water[0].0["instance"].as_str().unwrap_or_default()
        ))
        .unwrap();
    assert_eq!(serial_of.len(), 1, "{serial_of:?}");
    assert_eq!(serial_of[0].0["serial"], "CS-0002");
    assert!(
        !firing
            .iter()
            .any(|(l, _)| l["alertname"] == "ColdSprayUnitDown"),
        "{firing:?}"
    );
    for d in &mut daemons {
        d.check_running().unwrap();
    }
    println!("fleet test took {:.0} s", began.elapsed().as_secs_f64());
}
