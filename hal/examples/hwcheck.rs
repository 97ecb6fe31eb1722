//! Exercises the Linux backend on a real kernel (a board, or gpio-sim + i2c-stub in a VM).
//!
//! ```text
//! hwcheck CONFIG.toml force-safe            # ExecStopPost= path: every output to its safe value
//! hwcheck CONFIG.toml probe                 # identify every fitted sensor, then read it
//! hwcheck CONFIG.toml levels                # open the board, print every input level
//! hwcheck CONFIG.toml set OUTPUT 0|1 [SECS] # open the board, drive one output, hold it
//! hwcheck CONFIG.toml watch SECS            # print input edges (CLOCK_MONOTONIC ns) for SECS
//! ```
//! CONFIG.toml holds a `[hardware]` section (other sections are ignored).

use coldspray_hal::linux::{self, HardwareConfig};
use coldspray_hal::{Input, Output};
use std::sync::Arc;
use std::time::Duration;

#[derive(serde::Deserialize)]
struct File {
    #[serde(default)]
    hardware: HardwareConfig,
}

fn main() -> std::process::ExitCode {
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hwcheck: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage =
        "usage: hwcheck CONFIG.toml force-safe|probe|levels|set OUTPUT 0|1 [SECS]|watch SECS";
    let (path, cmd) = match (args.first(), args.get(1)) {
        (Some(p), Some(c)) => (p, c.as_str()),
        _ => return Err(usage.into()),
    };
    let text = std::fs::read_to_string(path)?;
    let table: toml::Table = toml::from_str(&text)?;
    let hardware = table
        .get("hardware")
        .cloned()
        .unwrap_or_else(|| toml::Value::Table(toml::Table::new()));
    let file: File =
        toml::Value::Table(toml::Table::from_iter([("hardware".to_owned(), hardware)]))
            .try_into()?;
    let config = file.hardware;
    match cmd {
        "force-safe" => {
            linux::force_safe(&config)?;
            println!("force-safe: ok");
        }
        "probe" => {
            let mut failed = false;
            for (sensor, result) in linux::probe_sensors(&config) {
                match result {
                    Ok(id) => println!("probe {sensor}: {} id={:#06x}", id.part, id.id),
                    Err(e) => {
                        failed = true;
                        println!("probe {sensor}: ERROR {e}");
                    }
                }
            }
            let mut board = linux::open(&config)?;
            for sensor in board.sensors.fitted() {
                match board.sensors.read(sensor) {
                    Ok(v) => println!("read {sensor}: {v:.4} {}", sensor.unit()),
                    Err(e) => println!("read {sensor}: ERROR {e}"),
                }
            }
            if failed {
                return Err("some sensors failed to identify".into());
            }
        }
        "levels" => {
            let mut board = linux::open(&config)?;
            for input in Input::ALL {
                println!("level {input}: {}", u8::from(board.inputs.level(input)?));
            }
        }
        "set" => {
            let output = args
                .get(2)
                .and_then(|n| Output::from_name(n))
                .ok_or(usage)?;
            let on = args.get(3).map(String::as_str) == Some("1");
            let hold: f64 = args.get(4).map(|s| s.parse()).transpose()?.unwrap_or(0.0);
            let mut board = linux::open(&config)?;
            board.outputs.set(output, on)?;
            println!("set {output}: {}", u8::from(on));
            std::thread::sleep(Duration::from_secs_f64(hold));
        }
        "watch" => {
            let secs: f64 = args.get(2).ok_or(usage)?.parse()?;
            let mut board = linux::open(&config)?;
            let clock = Arc::clone(&board.clock);
            board.inputs.subscribe(Arc::new(move |edge| {
                println!(
                    "edge {} level={} at_ns={} seqno={} lag_ns={}",
                    edge.input,
                    u8::from(edge.level),
                    edge.at.as_nanos(),
                    edge.seqno,
                    clock.now().saturating_sub(edge.at).as_nanos()
                );
            }))?;
            println!("watching for {secs} s");
            std::thread::sleep(Duration::from_secs_f64(secs));
        }
        _ => return Err(usage.into()),
    }
    Ok(())
}
