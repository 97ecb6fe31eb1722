//! `vm_halcheck`: runs inside the real-kernel VM (tests/vm/) in place of the daemon and checks
//! that the VM's `[hardware]` configuration and its gpio-sim / i2c-stub presets are what the
//! Linux backend (`coldspray_hal::linux`) expects: every sensor identifies and reads the value
//! /init wrote, every input reads its logical level with the configured polarity and reports
//! edges, every output drives its named line.
//!
//! Usage: `vm_halcheck CONFIG.toml SENSOR=VALUE...` (the values /init preset, e.g.
//! `reservoir=3.5`). Prints `VMPROBE CHECK …` lines and `VMPROBE RESULT: N passed, M failed`,
//! the markers tests/vm/run.sh judges. Not used by the daemon; a harness self-check.

use anyhow::{anyhow, bail, Context, Result};
use coldspray_hal::linux::{self, HardwareConfig};
use coldspray_hal::{Input, InputEdge, Output, Sensor};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const CONFIGFS: &str = "/sys/kernel/config/gpio-sim";

/// The sysfs directory (`…/sim_gpioN`) of every named gpio-sim line.
fn sim_lines() -> Result<BTreeMap<String, PathBuf>> {
    let mut out = BTreeMap::new();
    for chip in std::fs::read_dir(CONFIGFS)?.flatten() {
        let dev = std::fs::read_to_string(chip.path().join("dev_name"))?;
        let bank = chip.path().join("bank0");
        let gpiochip = std::fs::read_to_string(bank.join("chip_name"))?;
        for line in std::fs::read_dir(&bank)?.flatten() {
            let f = line.file_name().to_string_lossy().into_owned();
            let Some(off) = f.strip_prefix("line") else {
                continue;
            };
            let name = std::fs::read_to_string(line.path().join("name"))?;
            out.insert(
                name.trim().to_owned(),
                Path::new("/sys/devices/platform")
                    .join(dev.trim())
                    .join(gpiochip.trim())
                    .join(format!("sim_gpio{off}")),
            );
        }
    }
    Ok(out)
}

struct Report {
    passed: u32,
    failed: u32,
}

impl Report {
    fn check(&mut self, name: &str, ok: bool, detail: impl std::fmt::Display) {
        if ok {
            self.passed += 1;
        } else {
            self.failed += 1;
        }
        println!(
            "VMPROBE CHECK {name} {} {detail}",
            if ok { "PASS" } else { "FAIL" }
        );
    }
}

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let path = args
        .next()
        .context("usage: vm_halcheck CONFIG SENSOR=VALUE...")?;
    let mut expect = BTreeMap::new();
    for a in args {
        let (k, v) = a
            .split_once('=')
            .ok_or_else(|| anyhow!("bad expectation {a}"))?;
        let sensor = Sensor::from_name(k).ok_or_else(|| anyhow!("unknown sensor {k}"))?;
        expect.insert(sensor, v.parse::<f64>()?);
    }
    let text = std::fs::read_to_string(&path).with_context(|| path.clone())?;
    let table: toml::Table = toml::from_str(&text)?;
    let hw = table
        .get("hardware")
        .cloned()
        .ok_or_else(|| anyhow!("{path}: no [hardware]"))?;
    let config: HardwareConfig = hw.try_into()?;
    let sim = sim_lines()?;
    let mut r = Report {
        passed: 0,
        failed: 0,
    };
    let mut board = linux::open(&config).map_err(|e| anyhow!("linux::open: {e}"))?;
    r.check(
        "hal_open",
        true,
        "outputs requested safe, inputs with edge detection",
    );

    // Sensors: identity and the value /init preset (byte order, scaling, PEC).
    for (sensor, id) in linux::probe_sensors(&config) {
        match id {
            Ok(id) => r.check(
                &format!("identify_{sensor}"),
                true,
                format!("{} id={:#06x}", id.part, id.id),
            ),
            Err(e) => r.check(&format!("identify_{sensor}"), false, e),
        }
    }
    for (sensor, want) in &expect {
        match board.sensors.read(*sensor) {
            Ok(v) => r.check(
                &format!("read_{sensor}"),
                (v - want).abs() < 0.05,
                format!("{v:.3} {} (preset {want})", sensor.unit()),
            ),
            Err(e) => r.check(&format!("read_{sensor}"), false, e),
        }
    }

    // Inputs at rest: nothing asserted (E-stop released, pedal up, no emission, water ok).
    let rest: Vec<String> = Input::ALL
        .iter()
        .map(|i| format!("{i}={:?}", board.inputs.level(*i).ok()))
        .collect();
    let all_false = Input::ALL
        .iter()
        .all(|i| matches!(board.inputs.level(*i), Ok(false)));
    r.check("inputs_at_rest", all_false, rest.join(" "));

    // Edges with the probe's pull conventions: (line, pull-up?) that ASSERTS the input.
    let edges: Arc<Mutex<Vec<InputEdge>>> = Arc::default();
    let sink = edges.clone();
    board
        .inputs
        .subscribe(Arc::new(move |e| {
            if let Ok(mut v) = sink.lock() {
                v.push(e);
            }
        }))
        .map_err(|e| anyhow!("subscribe: {e}"))?;
    let assert_pull = [
        (Input::Estop, false),
        (Input::Trigger, false),
        (Input::LaserEmission, true),
        (Input::WaterLow, true),
        (Input::FlowPulse, true),
    ];
    for (input, up) in assert_pull {
        let dir = sim
            .get(input.name())
            .ok_or_else(|| anyhow!("no line {input}"))?;
        let pull =
            |up: bool| std::fs::write(dir.join("pull"), if up { "pull-up" } else { "pull-down" });
        pull(up)?;
        std::thread::sleep(Duration::from_millis(120)); // past the longest debounce (50 ms)
        let level = board.inputs.level(input).ok();
        pull(!up)?;
        std::thread::sleep(Duration::from_millis(120));
        let back = board.inputs.level(input).ok();
        let seen: Vec<bool> = edges
            .lock()
            .map_err(|_| anyhow!("poisoned"))?
            .iter()
            .filter(|e| e.input == input)
            .map(|e| e.level)
            .collect();
        // flow_pulse reports rising edges only (one per pulse); the others both edges.
        let edges_ok = if input == Input::FlowPulse {
            seen == [true]
        } else {
            seen.ends_with(&[true, false])
        };
        r.check(
            &format!("input_{input}"),
            level == Some(true) && back == Some(false) && edges_ok,
            format!("asserted={level:?} released={back:?} edges={seen:?}"),
        );
    }

    // Edges on two lines at once (as in the daemon runs: flow pulses while the pedal and the
    // E-stop move): none may be lost by gpio-sim / irq_sim / the cdev debouncer.
    let flow_dir = sim
        .get("flow_pulse")
        .ok_or_else(|| anyhow!("no line flow_pulse"))?
        .clone();
    let trig_dir = sim
        .get("trigger")
        .ok_or_else(|| anyhow!("no line trigger"))?
        .clone();
    let before = edges.lock().map_err(|_| anyhow!("poisoned"))?.len();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop2 = stop.clone();
    let flow = std::thread::spawn(move || {
        let mut up = false;
        let mut n = 0u32;
        while !stop2.load(std::sync::atomic::Ordering::Relaxed) {
            up = !up;
            let _ = std::fs::write(
                flow_dir.join("pull"),
                if up { "pull-up" } else { "pull-down" },
            );
            n += u32::from(up);
            std::thread::sleep(Duration::from_millis(25));
        }
        if up {
            let _ = std::fs::write(flow_dir.join("pull"), "pull-down");
        }
        n
    });
    let presses = 40;
    let hold_ms: u64 = std::env::var("COLDSPRAY_VM_HOLD_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(60);
    for _ in 0..presses {
        std::fs::write(trig_dir.join("pull"), "pull-down")?; // pressed (active low)
        std::thread::sleep(Duration::from_millis(hold_ms));
        std::fs::write(trig_dir.join("pull"), "pull-up")?;
        std::thread::sleep(Duration::from_millis(hold_ms));
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let pulses = flow.join().map_err(|_| anyhow!("flow thread panicked"))?;
    std::thread::sleep(Duration::from_millis(200));
    let got: Vec<InputEdge> = edges.lock().map_err(|_| anyhow!("poisoned"))?[before..].to_vec();
    let trig = got.iter().filter(|e| e.input == Input::Trigger).count();
    let flows = got.iter().filter(|e| e.input == Input::FlowPulse).count();
    r.check(
        "edges_concurrent",
        trig == 2 * presses && flows as u32 == pulses,
        format!(
            "trigger edges {trig}/{} flow rising edges {flows}/{pulses}",
            2 * presses
        ),
    );

    // Who holds the lines (debugfs): all twelve by the configured consumer, outputs low.
    let dbg = std::fs::read_to_string("/sys/kernel/debug/gpio").unwrap_or_default();
    let held = |name: &str, what: &str| {
        dbg.lines().any(|l| {
            l.contains(&format!("({name} "))
                && l.contains(&format!("|{}", config.consumer))
                && l.contains(what)
        })
    };
    let ok = Output::ALL.iter().all(|o| held(o.name(), ") out lo"))
        && Input::ALL.iter().all(|i| held(i.name(), ") in "));
    r.check(
        "lines_held",
        ok,
        if ok {
            "outputs out lo, inputs in, consumer from config".to_owned()
        } else {
            dbg.replace('\n', " / ")
        },
    );

    // Outputs: each drives its own named line, and only that one.
    for output in Output::ALL {
        let dir = sim
            .get(output.name())
            .ok_or_else(|| anyhow!("no line {output}"))?;
        let read = || -> Result<String> {
            Ok(std::fs::read_to_string(dir.join("value"))?
                .trim()
                .to_owned())
        };
        let before = read()?;
        board
            .outputs
            .set(output, true)
            .map_err(|e| anyhow!("{e}"))?;
        let t = Instant::now();
        let on = read()?;
        let dt = t.elapsed();
        board
            .outputs
            .set(output, false)
            .map_err(|e| anyhow!("{e}"))?;
        let off = read()?;
        r.check(
            &format!("output_{output}"),
            before == "0" && on == "1" && off == "0",
            format!(
                "before={before} on={on} off={off} ({:.3} ms)",
                dt.as_secs_f64() * 1e3
            ),
        );
    }
    println!("VMPROBE RESULT: {} passed, {} failed", r.passed, r.failed);
    if r.failed > 0 {
        bail!("{} check(s) failed", r.failed);
    }
    Ok(())
}
