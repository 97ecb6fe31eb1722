//! How much faster than real time the simulated unit runs.
//!
//! `cargo bench -p coldspray-hal --bench twin` prints simulated seconds per wall-clock second
//! for a busy duty cycle (chiller, fan, pulsed spraying with flow pulses to a subscriber, a
//! laser pass every minute), once advanced in 1 s chunks and once in 10 ms ticks as a
//! real-time driver would; for the legacy and the realistic physics (docs/TWIN.md).

use coldspray_hal::sim::{SimConfig, SimUnit};
use coldspray_hal::{InputEdge, Output};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Runs `sim_seconds` of the duty cycle advancing by `chunk`; returns (wall time, edges).
fn run(config: SimConfig, sim_seconds: u64, chunk: Duration) -> (Duration, u64) {
    let sim = SimUnit::new(config);
    let mut board = sim.board();
    let edges = Arc::new(AtomicU64::new(0));
    let counter = edges.clone();
    let sink = Arc::new(move |_e: InputEdge| {
        counter.fetch_add(1, Ordering::Relaxed);
    });
    if board.inputs.subscribe(sink).is_err() {
        return (Duration::ZERO, 0);
    }
    let steps_per_s = (Duration::from_secs(1).as_nanos() / chunk.as_nanos()).max(1) as u64;
    let _ = board.outputs.set(Output::Chiller, true);
    let _ = board.outputs.set(Output::ChillerFan, true);
    let started = Instant::now();
    for s in 0..sim_seconds {
        if s % 60 == 0 {
            sim.laser_pass(Duration::from_secs(2), 1.0);
        }
        // Spray 10 s of every 60, refill when the tank runs low.
        let spraying = s % 60 >= 3 && s % 60 < 13;
        let _ = board.outputs.set(Output::Pump, spraying);
        let _ = board.outputs.set(Output::SprayValve, spraying);
        if sim.truth().water_litres < 0.5 {
            sim.refill(1.5, 4.0);
        }
        for _ in 0..steps_per_s {
            sim.advance(chunk);
        }
        for sensor in board.sensors.fitted() {
            let _ = board.sensors.read(sensor);
        }
    }
    (started.elapsed(), edges.load(Ordering::Relaxed))
}

fn main() {
    for (label, config, sim_seconds, chunk) in [
        (
            "legacy, 1 s chunks",
            SimConfig::default(),
            3600,
            Duration::from_secs(1),
        ),
        (
            "legacy, 10 ms ticks",
            SimConfig::default(),
            600,
            Duration::from_millis(10),
        ),
        (
            "realistic, 1 s chunks",
            SimConfig::realistic(),
            3600,
            Duration::from_secs(1),
        ),
        (
            "realistic, 10 ms ticks",
            SimConfig::realistic(),
            600,
            Duration::from_millis(10),
        ),
    ] {
        let (wall, edges) = run(config, sim_seconds, chunk);
        let ratio = sim_seconds as f64 / wall.as_secs_f64().max(1e-9);
        println!(
            "twin ({label}): {sim_seconds} simulated s in {:.3} wall s = {ratio:.0} simulated s per wall s ({edges} edges delivered)",
            wall.as_secs_f64()
        );
    }
}
