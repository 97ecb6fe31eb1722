//! Keeps the single-fault table in `docs/SAFETY.md` complete and honest: every fault the
//! simulated unit can inject has a row, every alarm kind appears in a row, every row names a
//! proof (or says `**no test**`), and every proof it names exists.

use coldspray_hal::sim::Fault;
use coldspray_hal::Sensor;
use coldsprayd::dbus::simulator::{parse_fault, FAULT_KINDS};
use coldsprayd::model::alarm::AlarmKind;
use std::path::{Path, PathBuf};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the daemon crate sits in the workspace")
        .to_path_buf()
}

/// One row of the table, split into its cells (without the outer pipes).
struct Row {
    cells: Vec<String>,
}

impl Row {
    fn id(&self) -> &str {
        &self.cells[0]
    }
    fn injected_as(&self) -> &str {
        &self.cells[2]
    }
    fn alarm(&self) -> &str {
        &self.cells[5]
    }
    fn proof(&self) -> &str {
        &self.cells[8]
    }
}

const COLUMNS: usize = 9;

fn table() -> Vec<Row> {
    let path = repo_root().join("docs/SAFETY.md");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let section = text
        .split("## The table")
        .nth(1)
        .expect("docs/SAFETY.md has a `## The table` section");
    let section = section.split("\n## ").next().unwrap_or(section);
    let rows: Vec<Row> = section
        .lines()
        .filter(|l| l.starts_with('|'))
        .skip(2) // header and separator
        .map(|l| {
            let inner = l.trim().trim_start_matches('|').trim_end_matches('|');
            let cells: Vec<String> = inner.split(" | ").map(|c| c.trim().to_string()).collect();
            assert_eq!(
                cells.len(),
                COLUMNS,
                "a row of docs/SAFETY.md does not have {COLUMNS} cells: {l}"
            );
            Row { cells }
        })
        .collect();
    assert!(rows.len() >= 30, "only {} rows in the table", rows.len());
    rows
}

/// Every fault kind of the simulator, named the way `Simulator.InjectFault` takes it. The
/// match has no wildcard: a new `Fault` variant does not compile until it is named here.
fn fault_kind(fault: Fault) -> &'static str {
    match fault {
        Fault::SensorSilent(_) => "sensor_silent",
        Fault::SensorStuck(_) => "sensor_stuck",
        Fault::SensorOutOfRange(_) => "sensor_out_of_range",
        Fault::SensorWrongChip(_) => "sensor_wrong_chip",
        Fault::ChillerDead => "chiller_dead",
        Fault::PumpDead => "pump_dead",
        Fault::NozzleBlocked => "nozzle_blocked",
        Fault::Leak => "leak",
        Fault::WaterLow => "water_low",
        Fault::Estop => "estop",
        Fault::FanDead => "fan_dead",
        Fault::OutputsLost => "outputs_lost",
    }
}

#[test]
fn every_injectable_fault_has_a_row() {
    let rows = table();
    for kind in FAULT_KINDS {
        let sensor = if kind.starts_with("sensor_") {
            Sensor::Reservoir.name()
        } else {
            ""
        };
        let fault = parse_fault(kind, sensor).expect("every listed kind parses");
        assert_eq!(fault_kind(fault), kind, "FAULT_KINDS and Fault agree");
        let cell = format!("`{kind}`");
        assert!(
            rows.iter().any(|r| r.injected_as().contains(&cell)),
            "docs/SAFETY.md has no row injected as {cell}"
        );
    }
}

#[test]
fn every_alarm_kind_appears_in_a_row() {
    let rows = table();
    for kind in AlarmKind::every(&Sensor::ALL) {
        let code = format!("`{}", kind.code());
        assert!(
            rows.iter().any(|r| r.alarm().contains(&code)),
            "docs/SAFETY.md names no row with the alarm {}",
            kind.code()
        );
    }
}

#[test]
fn every_row_names_a_proof_that_exists() {
    let rows = table();
    let root = repo_root();
    let mut ids = std::collections::HashSet::new();
    for row in &rows {
        assert!(ids.insert(row.id().to_string()), "row {} twice", row.id());
        let proof = row.proof();
        if proof.starts_with("**no test**") {
            assert!(
                proof.len() > "**no test**: ".len() + 10,
                "row {} says no test without saying why",
                row.id()
            );
            continue;
        }
        let refs: Vec<&str> = proof
            .split('`')
            .skip(1)
            .step_by(2)
            .filter(|r| r.contains("::") || r.contains(": \""))
            .collect();
        assert!(!refs.is_empty(), "row {} names no test: {proof}", row.id());
        for r in refs {
            let (file, needle) = if let Some((file, name)) = r.split_once("::") {
                (file, format!("fn {name}("))
            } else {
                let (file, quoted) = r.split_once(": \"").expect("checked above");
                (file, quoted.trim_end_matches('"').to_string())
            };
            let path = root.join(file);
            let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
                panic!("row {}: cannot read {}: {e}", row.id(), path.display())
            });
            assert!(
                text.contains(&needle),
                "row {}: {} has no `{needle}`",
                row.id(),
                file
            );
        }
    }
}
