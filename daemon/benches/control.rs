//! Control-step cost and twin speed.
//!
//! `cargo bench -p coldsprayd --bench control` prints:
//! * the cost of one control step (`Core::step`) in ns, spraying with every sensor live;
//! * simulated seconds per wall second of the whole lockstep loop (twin + sensors + core);
//! * the same for the twin alone, for comparison.

use coldspray_hal::sim::{SimConfig, SimUnit};
use coldsprayd::api::{Command, StartOptions};
use coldsprayd::control::CoreConfig;
use coldsprayd::lockstep::{Lockstep, STEP};
use std::hint::black_box;
use std::time::{Duration, Instant};

fn ready() -> Lockstep {
    let mut u = Lockstep::new(
        CoreConfig::default(),
        SimConfig {
            initial_reservoir_c: 4.0,
            ..SimConfig::default()
        },
    );
    u.run_until(Duration::from_secs(600), |u| u.snapshot().ready)
        .expect("ready");
    u
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn main() {
    // 1. Core::step alone, while spraying a long pulsed session (the busiest path).
    let mut u = ready();
    let mut p = coldsprayd::protocol::Protocol::factory_defaults().remove(4);
    p.name = "bench".into();
    p.skin_target_c = Some(12.0);
    p.skin_floor_c = 5.0;
    p.spray_s = 120.0;
    u.command(Command::UpsertProtocol(Box::new(p)))
        .expect("protocol");
    u.command(Command::StartSession {
        protocol: "bench".into(),
        options: StartOptions::default(),
    })
    .expect("start");
    let mut core = u.core.clone();
    let t0 = u.now();
    let n = 200_000u32;
    let mut samples = Vec::with_capacity(1000);
    let start = Instant::now();
    for i in 0..n {
        let now = t0 + STEP * i;
        let s = Instant::now();
        black_box(core.step(now, 0));
        if i % 200 == 0 {
            samples.push(s.elapsed().as_nanos() as f64);
        }
        black_box(core.drain_events());
    }
    let per_step = start.elapsed().as_nanos() as f64 / f64::from(n);
    samples.sort_by(f64::total_cmp);
    println!(
        "control step (Core::step, spraying): mean {per_step:.0} ns/step, p50 {:.0} ns, p99 {:.0} ns, \
         budget {:.0} ns (10 ms period): {:.4} % of one core",
        percentile(&samples, 0.5),
        percentile(&samples, 0.99),
        STEP.as_nanos() as f64,
        per_step / STEP.as_nanos() as f64 * 100.0
    );

    // 2. Whole lockstep loop: twin + sensors + core + outputs, a clinic hour.
    let mut u = ready();
    let start = Instant::now();
    let sim_span = Duration::from_secs(600);
    for i in 0..6 {
        u.command(Command::StartSession {
            protocol: "co2_fractional".into(),
            options: StartOptions::default(),
        })
        .ok();
        u.sim.laser_pass(Duration::from_secs(2), 1.0);
        u.run_for(sim_span / 6);
        black_box(i);
    }
    let wall = start.elapsed().as_secs_f64();
    println!(
        "lockstep twin+core: {:.0} simulated s per wall s ({} s simulated in {wall:.2} s)",
        sim_span.as_secs_f64() / wall,
        sim_span.as_secs()
    );

    // 3. The twin alone in 10 ms ticks.
    let sim = SimUnit::new(SimConfig::default());
    let start = Instant::now();
    for _ in 0..60_000 {
        sim.advance(STEP);
    }
    let wall = start.elapsed().as_secs_f64();
    println!(
        "twin alone: {:.0} simulated s per wall s (10 ms ticks)",
        600.0 / wall
    );
}
