//! The controller on the realistic twin (docs/TWIN.md), in simulated time: every factory
//! protocol × spot {10, 50, 100 cm²} × {fresh line, primed line} × skin-sensor settling
//! {20, 100, 300 ms}. The *true* skin surface never falls below the protocol's floor and each
//! session ends as its goal says, with no interlock tripped (the safety layer's own skin-floor
//! estimate must not trip on a healthy unit). `-- --nocapture` prints the figures, and the old-twin vs
//! new-twin table for docs/TWIN.md.

use coldspray_hal::sim::{Modality, SimConfig, TwinModel};
use coldsprayd::api::{Command, Event, StartOptions};
use coldsprayd::control::CoreConfig;
use coldsprayd::lockstep::Lockstep;
use coldsprayd::model::session::{Outcome, SessionRecord};
use coldsprayd::model::state::UnitState;
use coldsprayd::protocol::{Goal, Protocol};
use std::time::Duration;

fn modality(protocol: &str) -> Modality {
    match protocol {
        "nd_yag" => Modality::Deep,
        "hifu" | "rf_microneedling" => Modality::Subdermal,
        _ => Modality::Surface,
    }
}

/// The line purge before the patient, s (docs/TWIN.md, "Line and priming").
const PURGE_S: f64 = 16.0;

/// What one session showed.
struct Run {
    record: SessionRecord,
    to_target_s: Option<f64>,
    true_min: f64,
    sensor_min: f64,
    peak: f64,
    above_40_s: f64,
    mist_at_start: f64,
    /// Interlock alarms raised during or after the session (a healthy unit raises none).
    interlocks: Vec<String>,
}

fn ready(u: &mut Lockstep) {
    let took = u.run_until(Duration::from_secs(1200), |u| u.snapshot().ready);
    assert!(took.is_some(), "not ready: {:#?}", u.snapshot());
}

fn session(twin: SimConfig, protocol: &Protocol, primed: bool) -> Run {
    let mut u = Lockstep::new(CoreConfig::default(), twin);
    ready(&mut u);
    u.command(Command::UpsertProtocol(Box::new(protocol.clone())))
        .expect("protocol");
    u.sim.set_modality(modality(&protocol.name));
    if primed {
        // Purge the warm line to waste with the handpiece holstered, just before the patient:
        // 16 s (~3.5 line volumes) also cools the tube and nozzle; 8 s leaves the mist at 14 °C.
        u.sim.set_holstered(true);
        u.command(Command::EnterMaintenance).expect("maintenance");
        u.command(Command::Prime { seconds: PURGE_S })
            .expect("prime");
        u.run_for(Duration::from_secs_f64(PURGE_S + 1.0));
        u.command(Command::ExitMaintenance).expect("back");
        ready(&mut u);
        u.sim.set_holstered(false);
    } else {
        // A line that has stood for 10 minutes.
        u.run_for(Duration::from_secs(600));
    }
    u.sim.laser_pass(Duration::from_secs(2), 1.0);
    u.run_for(Duration::from_secs(2));
    let mist_at_start = u.truth().mist_c;
    u.command(Command::StartSession {
        protocol: protocol.name.clone(),
        options: StartOptions::default(),
    })
    .expect("start");
    let started = u.now();
    let (mut true_min, mut sensor_min, mut peak, mut above_40) =
        (f64::INFINITY, f64::INFINITY, f64::MIN, 0.0);
    let mut to_target = None;
    while u.snapshot().state == UnitState::Spraying && u.now() - started < Duration::from_secs(200)
    {
        u.tick();
        let t = u.truth();
        true_min = true_min.min(t.skin_surface_c);
        peak = peak.max(t.skin_peak_c);
        if t.skin_peak_c > 40.0 {
            above_40 += 0.01;
        }
        if let Some(s) = u.reading(coldspray_hal::Sensor::Skin) {
            sensor_min = sensor_min.min(s);
        }
        if to_target.is_none()
            && protocol
                .skin_target_c
                .is_some_and(|target| t.skin_surface_c <= target)
        {
            to_target = Some((u.now() - started).as_secs_f64());
        }
    }
    // The mist in flight and the lagging sensor: keep watching the true surface a while.
    for _ in 0..500 {
        u.tick();
        true_min = true_min.min(u.truth().skin_surface_c);
    }
    // Interlock alarms latch: whatever tripped is still listed.
    let interlocks = u
        .snapshot()
        .alarms
        .iter()
        .filter(|a| a.kind.is_interlock())
        .map(|a| a.kind.to_string())
        .collect();
    let record = u
        .events
        .iter()
        .rev()
        .find_map(|e| match e {
            Event::SessionEnded(r) => Some(r.clone()),
            _ => None,
        })
        .expect("session record");
    Run {
        record,
        to_target_s: to_target,
        true_min,
        sensor_min,
        peak,
        above_40_s: above_40,
        mist_at_start,
        interlocks,
    }
}

fn expected(goal: Goal) -> Outcome {
    match goal {
        Goal::Protect => Outcome::TargetReached,
        Goal::Prepare => Outcome::ReadyForDressing,
    }
}

fn realistic(spot_cm2: f64, settle_ms: f64) -> SimConfig {
    SimConfig {
        model: TwinModel::Realistic,
        initial_reservoir_c: 4.0,
        spot_cm2,
        ir_settle_ms: settle_ms,
        ..SimConfig::default()
    }
}

#[test]
fn every_protocol_spot_line_and_sensor_lag_keeps_the_true_surface_above_the_floor() {
    let mut failures = Vec::new();
    println!(
        "protocol          spot  line    lag  outcome              true min  sensor min  mist at start"
    );
    for protocol in Protocol::factory_defaults() {
        for spot in [10.0, 50.0, 100.0] {
            for primed in [false, true] {
                for lag in [20.0, 100.0, 300.0] {
                    let r = session(realistic(spot, lag), &protocol, primed);
                    let line = if primed { "primed" } else { "fresh" };
                    println!(
                        "{:16} {spot:5} {line:6} {lag:5}  {:20} {:8.2}  {:8.2}  {:8.1}",
                        protocol.name,
                        r.record.outcome.to_string(),
                        r.true_min,
                        r.sensor_min,
                        r.mist_at_start
                    );
                    if r.true_min <= protocol.skin_floor_c {
                        failures.push(format!(
                            "{} {spot} {line} {lag}: true surface {:.2}",
                            protocol.name, r.true_min
                        ));
                    }
                    if !r.interlocks.is_empty() {
                        failures.push(format!(
                            "{} {spot} {line} {lag}: false trip {:?}",
                            protocol.name, r.interlocks
                        ));
                    }
                    if r.record.outcome != expected(protocol.goal) {
                        failures.push(format!(
                            "{} {spot} {line} {lag}: {}",
                            protocol.name, r.record.outcome
                        ));
                    }
                }
            }
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn untargeted_sessions_on_the_coldest_mist_stop_short_of_the_floor() {
    // No target: only the floor guard stops the cooling (protect protocols; a prepare one
    // always has a target). A primed line (the coldest mist), every spot, the fastest and the
    // slowest sensor.
    let mut failures = Vec::new();
    println!("protocol (untargeted)  spot   lag  true min  sensor min");
    for mut protocol in Protocol::factory_defaults() {
        if protocol.goal == Goal::Prepare {
            continue; // a prepare protocol always has a target
        }
        protocol.skin_target_c = None;
        protocol.name = format!("{}_floor", protocol.name);
        for spot in [10.0, 50.0, 100.0] {
            for lag in [20.0, 300.0] {
                let r = session(realistic(spot, lag), &protocol, true);
                println!(
                    "{:22} {spot:5} {lag:5}  {:8.2}  {:8.2}",
                    protocol.name, r.true_min, r.sensor_min
                );
                if r.true_min <= protocol.skin_floor_c {
                    failures.push(format!("{} {spot} {lag}: {:.2}", protocol.name, r.true_min));
                }
                if !r.interlocks.is_empty() {
                    failures.push(format!(
                        "{} {spot} {lag}: false trip {:?}",
                        protocol.name, r.interlocks
                    ));
                }
                if r.record.outcome != Outcome::DurationElapsed {
                    failures.push(format!(
                        "{} {spot} {lag}: {}",
                        protocol.name, r.record.outcome
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn old_twin_and_new_twin_closed_loop_figures() {
    println!(
        "| protocol | twin | time to target s | true-surface min °C | sensor min °C | subsurface peak °C | above 40 °C s | mist at start °C |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for protocol in Protocol::factory_defaults() {
        for (label, twin) in [
            (
                "old",
                SimConfig {
                    initial_reservoir_c: 4.0,
                    ..SimConfig::default()
                },
            ),
            ("new", realistic(50.0, 100.0)),
        ] {
            let r = session(twin, &protocol, false);
            println!(
                "| {} | {label} | {} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} |",
                protocol.name,
                r.to_target_s.map_or("—".to_string(), |t| format!("{t:.1}")),
                r.true_min,
                r.sensor_min,
                r.peak,
                r.above_40_s,
                r.mist_at_start
            );
            assert!(r.interlocks.is_empty(), "{label}: {:?}", r.interlocks);
            assert!(
                r.true_min > protocol.skin_floor_c,
                "{label}: {}",
                r.true_min
            );
        }
    }
}

#[test]
fn a_healthy_tec_unit_cold_starts_without_chiller_ineffective() {
    let mut u = Lockstep::new(
        CoreConfig::default(),
        SimConfig {
            model: TwinModel::Realistic,
            ..SimConfig::default()
        },
    );
    let took = u.run_until(Duration::from_secs(3 * 3600), |u| u.snapshot().ready);
    // Then an hour of holding the setpoint.
    let mut coldest = f64::INFINITY;
    for _ in 0..360 {
        u.run_for(Duration::from_secs(10));
        coldest = coldest.min(u.truth().reservoir_c);
    }
    let alarms: Vec<String> = u
        .events
        .iter()
        .filter_map(|e| match e {
            Event::AlarmRaised(a) => Some(format!("{a:?}")),
            _ => None,
        })
        .collect();
    println!(
        "TEC cold start to ready: {:?} min; an hour later reservoir {:.2} °C (coldest {coldest:.2}), alarms {alarms:?}",
        took.map(|t| t.as_secs_f64() / 60.0),
        u.truth().reservoir_c
    );
    assert!(coldest <= 4.5, "never reached the band: {coldest}");
    assert!(u.snapshot().ready);
    assert!(took.is_some(), "{:#?}", u.snapshot());
    assert!(alarms.is_empty(), "{alarms:?}");
}
