//! Every alarm kind has a way back to ready without a restart, and it is documented.
//!
//! `every_alarm_has_a_way_back_to_ready` raises each kind of [`AlarmKind::every`] on the
//! simulated unit in simulated time, takes the documented way back (the cause fixed, then an
//! acknowledgement, a self-test, a technician's action, or nothing when the alarm clears by
//! itself) and requires the unit ready with no alarm listed. The match is exhaustive: a new
//! kind does not compile until it has a way back here.
//!
//! The control-loop stall (CPU starvation) tests are here too: safe at once, `fault` with
//! `control_stalled`, and back to ready by itself after the hold-off, never flapping.

mod common;

use coldspray_hal::sim::{Fault, SimConfig};
use coldspray_hal::{Output, Sensor};
use coldsprayd::api::{Command, StartOptions};
use coldsprayd::control::core::{STALL_HOLD_OFF, STALL_LIMIT};
use coldsprayd::control::CoreConfig;
use coldsprayd::lockstep::{Lockstep, STEP};
use coldsprayd::model::alarm::AlarmKind;
use coldsprayd::model::session::Outcome;
use coldsprayd::model::state::UnitState;
use coldsprayd::Event;
use common::*;
use std::time::Duration;

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// Runs until `kind` is listed, failing past `limit`.
fn raised(u: &mut Lockstep, kind: AlarmKind, limit: Duration) {
    let took = u.run_until(limit, |u| u.snapshot().has_alarm(kind));
    assert!(took.is_some(), "{kind} never raised: {:#?}", u.snapshot());
}

fn ack(u: &mut Lockstep) {
    u.command(Command::Acknowledge { key: None }).unwrap();
}

fn back_to_ready(u: &mut Lockstep, kind: AlarmKind, limit: Duration) {
    let took = u.run_until(limit, |u| {
        let s = u.snapshot();
        s.ready && s.alarms.is_empty()
    });
    assert!(
        took.is_some(),
        "{kind}: no way back to ready: {:#?}",
        u.snapshot()
    );
}

fn start_protocol(u: &mut Lockstep, name: &str) {
    let r = u.command(Command::StartSession {
        protocol: name.into(),
        options: StartOptions::default(),
    });
    assert!(r.is_ok(), "start refused: {r:?}");
}

/// A protocol without a skin target: only time, the operator or an interlock ends it.
fn untargeted(u: &mut Lockstep, name: &str, spray_s: f64) {
    let mut p = coldsprayd::protocol::Protocol::factory_defaults().remove(2);
    p.name = name.into();
    p.skin_target_c = None;
    p.spray_s = spray_s;
    u.command(Command::UpsertProtocol(Box::new(p))).unwrap();
}

/// The self-test that finished after event number `from`: passed?
fn self_test_after(u: &Lockstep, from: usize) -> Option<bool> {
    u.events[from..].iter().find_map(|e| match e {
        Event::SelfTestFinished { passed, .. } => Some(*passed),
        _ => None,
    })
}

/// A fault injected into the twin from ready, then cleared and acknowledged.
fn from_ready(kind: AlarmKind, fault: Fault, limit: Duration) -> Lockstep {
    let mut u = ready_unit();
    u.sim.inject(fault);
    raised(&mut u, kind, limit);
    u.sim.clear(fault);
    u.run_for(secs(1));
    ack(&mut u);
    u
}

/// A fault that only shows with the pump running: injected, then a session started.
fn while_spraying(kind: AlarmKind, fault: Fault, protocol: &str) -> Lockstep {
    let mut u = ready_unit();
    u.sim.inject(fault);
    start_protocol(&mut u, protocol);
    raised(&mut u, kind, secs(5));
    u.sim.clear(fault);
    u.run_for(secs(1));
    ack(&mut u);
    u
}

/// Raises `kind` and takes its way back; returns the unit, which the caller runs to ready.
/// The limit is how long the way back may take in simulated time.
fn raise_and_take_the_way_back(kind: AlarmKind) -> (Lockstep, Duration) {
    match kind {
        AlarmKind::Estop => (from_ready(kind, Fault::Estop, secs(1)), secs(60)),
        AlarmKind::WaterLow => (from_ready(kind, Fault::WaterLow, secs(1)), secs(60)),
        AlarmKind::DryRun => (
            while_spraying(kind, Fault::PumpDead, "co2_fractional"),
            secs(60),
        ),
        AlarmKind::OverPressure => (
            while_spraying(kind, Fault::NozzleBlocked, "nd_yag"),
            secs(60),
        ),
        AlarmKind::UnderPressure => (while_spraying(kind, Fault::Leak, "nd_yag"), secs(60)),
        AlarmKind::SensorStale(s) => (from_ready(kind, Fault::SensorSilent(s), secs(3)), secs(60)),
        AlarmKind::SensorImplausible(s) => (
            from_ready(kind, Fault::SensorOutOfRange(s), secs(1)),
            secs(60),
        ),
        AlarmKind::SensorStuck(s) => (from_ready(kind, Fault::SensorStuck(s), secs(40)), secs(60)),
        AlarmKind::HeatsinkOverTemp => {
            // Keep the chiller working in ready, then lose its fan.
            let mut config = CoreConfig::default();
            config.thermostat.ready_band_c = 4.0;
            config.thermostat.unready_band_c = 6.0;
            let twin = SimConfig {
                initial_reservoir_c: 7.0,
                ..SimConfig::default()
            };
            let mut u = ready_unit_with(config, twin);
            u.sim.inject(Fault::FanDead);
            raised(&mut u, kind, secs(1800));
            u.sim.clear(Fault::FanDead);
            let cool = u.run_until(secs(1800), |u| u.truth().heatsink_c < 60.0);
            assert!(cool.is_some());
            ack(&mut u);
            (u, secs(1800))
        }
        AlarmKind::MaxSprayTime => {
            let mut config = CoreConfig::default();
            config.safety.max_spray_s = 30.0;
            let mut u = ready_unit_with(config, cold_twin());
            untargeted(&mut u, "long", 60.0);
            start_protocol(&mut u, "long");
            raised(&mut u, kind, secs(31));
            u.run_for(secs(1));
            ack(&mut u);
            (u, secs(60))
        }
        AlarmKind::SkinBelowFloor => {
            // The closed loop holds the skin above the floor; a wrong calibration makes the
            // reading fall below it; the technician puts the calibration right.
            let mut u = ready_unit();
            untargeted(&mut u, "untargeted", 120.0);
            start_protocol(&mut u, "untargeted");
            let cooled = u.run_until(secs(110), |u| skin(u).is_some_and(|s| s < 12.5));
            assert!(cooled.is_some(), "{:#?}", u.truth());
            u.command(Command::SetCalibration {
                sensor: Sensor::Skin,
                offset: -5.0,
            })
            .unwrap();
            raised(&mut u, kind, secs(1));
            u.command(Command::SetCalibration {
                sensor: Sensor::Skin,
                offset: 0.0,
            })
            .unwrap();
            u.run_for(secs(1));
            ack(&mut u);
            (u, secs(120))
        }
        AlarmKind::ChillerIneffective => {
            // Acknowledging re-arms the effectiveness check; the chiller works again.
            let mut u = unit_with(CoreConfig::default(), SimConfig::default());
            u.sim.inject(Fault::ChillerDead);
            raised(&mut u, kind, secs(900));
            u.sim.clear(Fault::ChillerDead);
            ack(&mut u);
            (u, secs(3600))
        }
        AlarmKind::FreezeCutout => {
            // Clears by itself once the reservoir has warmed past the release temperature.
            let mut u = unit_with(
                CoreConfig::default(),
                SimConfig {
                    initial_reservoir_c: 0.5,
                    ..SimConfig::default()
                },
            );
            raised(&mut u, kind, secs(60));
            assert!(!u.output(Output::Chiller));
            (u, secs(3600))
        }
        AlarmKind::SelfTestFailed => {
            // The technician's self-test fails (chiller dead), the chiller is repaired and a
            // second self-test passes, which clears the alarm.
            let mut u = ready_unit();
            u.sim.inject(Fault::ChillerDead);
            u.command(Command::EnterMaintenance).unwrap();
            let from = u.events.len();
            u.command(Command::SelfTest).unwrap();
            raised(&mut u, kind, secs(120));
            assert_eq!(self_test_after(&u, from), Some(false));
            u.sim.clear(Fault::ChillerDead);
            let from = u.events.len();
            u.command(Command::SelfTest).unwrap();
            let done = u.run_until(secs(120), |u| self_test_after(u, from).is_some());
            assert!(done.is_some());
            assert_eq!(self_test_after(&u, from), Some(true));
            u.command(Command::ExitMaintenance).unwrap();
            (u, secs(600))
        }
        AlarmKind::OutputFault => (from_ready(kind, Fault::OutputsLost, secs(2)), secs(60)),
        AlarmKind::StoreUnavailable => {
            // The runtime sets and ends its condition (the store failing and working again);
            // it never stops treatment, so clearing the condition is the whole way back.
            let mut u = ready_unit();
            let now = u.now();
            u.core
                .set_runtime_alarm(kind, true, "state directory read-only", now);
            u.run_for(secs(1));
            assert!(u.snapshot().has_alarm(kind) && u.snapshot().ready);
            let now = u.now();
            u.core.set_runtime_alarm(kind, false, "", now);
            (u, secs(1))
        }
        AlarmKind::LogDamaged => {
            let mut u = ready_unit();
            let now = u.now();
            u.core
                .raise_runtime_event_alarm(kind, "sessions 3, 4 lost", now);
            u.run_for(secs(1));
            assert!(u.snapshot().has_alarm(kind));
            ack(&mut u);
            (u, secs(1))
        }
        AlarmKind::SettingsLost => {
            // The settings could not be read at start: treatment waits for a technician, who
            // checks the values in force and confirms them (an acknowledge is not enough).
            let mut u = ready_unit();
            let now = u.now();
            u.core
                .require_settings_confirmation("settings file damaged (test)", now);
            u.run_for(secs(1));
            assert!(u.snapshot().has_alarm(kind) && !u.snapshot().ready);
            ack(&mut u);
            u.run_for(secs(1));
            assert!(
                u.snapshot().has_alarm(kind),
                "an acknowledge is no confirmation"
            );
            u.command(Command::ConfirmSettings).unwrap();
            (u, secs(5))
        }
        AlarmKind::SettingsNotSaved | AlarmKind::LogWriteFailed => {
            // The runtime sets the condition while saves (or log writes) fail and ends it with
            // the next good one; latched, so an acknowledge follows. Treatment never stops.
            let mut u = ready_unit();
            let now = u.now();
            u.core
                .set_runtime_alarm(kind, true, "disk full (test)", now);
            u.run_for(secs(1));
            assert!(u.snapshot().has_alarm(kind) && u.snapshot().ready);
            let now = u.now();
            u.core.set_runtime_alarm(kind, false, "", now);
            u.run_for(secs(1));
            ack(&mut u);
            (u, secs(1))
        }
        AlarmKind::ControlStalled => {
            // Nothing to do: it clears after the loop has been on time for the hold-off.
            let mut u = spraying_unit("co2_fractional");
            u.stall(STALL_LIMIT + Duration::from_millis(500));
            u.tick();
            assert!(u.snapshot().has_alarm(kind));
            (u, STALL_HOLD_OFF + secs(60))
        }
        AlarmKind::LateStart => {
            let mut u = ready_unit();
            u.sim.laser_pass(Duration::from_millis(500), 1.0);
            u.run_for(secs(12));
            start_protocol(&mut u, "co2_fractional");
            raised(&mut u, kind, STEP);
            ack(&mut u);
            (u, secs(120))
        }
        AlarmKind::ServiceDue => {
            // Set and ended by the runtime from the service counters (a technician's service
            // resets them); never stops treatment.
            let mut u = ready_unit();
            let now = u.now();
            u.core
                .set_runtime_alarm(kind, true, "pump service due", now);
            u.run_for(secs(1));
            assert!(u.snapshot().has_alarm(kind) && u.snapshot().ready);
            let now = u.now();
            u.core.set_runtime_alarm(kind, false, "", now);
            (u, secs(1))
        }
    }
}

#[test]
fn every_alarm_has_a_way_back_to_ready() {
    for kind in AlarmKind::every(&Sensor::ALL) {
        let (mut u, limit) = raise_and_take_the_way_back(kind);
        back_to_ready(&mut u, kind, limit);
        println!("{kind}: back to ready");
    }
}

#[test]
fn every_alarm_kind_is_in_the_alarm_table() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/ALARMS.md");
    let doc = std::fs::read_to_string(path).expect("docs/ALARMS.md");
    for kind in AlarmKind::every(&Sensor::ALL) {
        let row = format!("| `{}", kind.code());
        assert!(doc.contains(&row), "docs/ALARMS.md has no row for {kind}");
    }
}

fn actuator_lines_off(u: &Lockstep) -> bool {
    Output::ALL
        .into_iter()
        .filter(|o| o.is_actuator())
        .all(|o| !u.truth().outputs[o.index()])
}

#[test]
fn a_stalled_loop_goes_safe_and_comes_back_by_itself_after_the_hold_off() {
    let mut u = spraying_unit("co2_fractional");
    assert!(u.truth().outputs[Output::Pump.index()]);
    u.stall(Duration::from_millis(1500));
    // The watchdog drove every line off while the loop was silent.
    assert!(actuator_lines_off(&u), "{:#?}", u.truth());
    u.tick();
    let s = u.snapshot();
    assert_eq!(s.state, UnitState::Fault, "{s:#?}");
    assert!(s.has_alarm(AlarmKind::ControlStalled));
    assert!(actuators_off(&u));
    let ended = u.events.iter().rev().find_map(|e| match e {
        Event::SessionEnded(r) => Some(r.clone()),
        _ => None,
    });
    let r = ended.expect("the session was closed");
    assert_eq!(r.outcome, Outcome::Interlock);
    assert_eq!(r.ended_by_alarm.as_deref(), Some("control_stalled"));
    // Still held just before the hold-off ends.
    u.run_for(STALL_HOLD_OFF - Duration::from_millis(500));
    assert!(u.snapshot().has_alarm(AlarmKind::ControlStalled));
    assert_eq!(u.snapshot().state, UnitState::Fault);
    // A late step (not a stall) during the hold-off starts it again.
    u.stall(Duration::from_millis(300));
    u.tick();
    u.run_for(STALL_HOLD_OFF - Duration::from_millis(500));
    assert!(
        u.snapshot().has_alarm(AlarmKind::ControlStalled),
        "the hold-off restarts after a late step"
    );
    let cleared = u.run_until(secs(1), |u| {
        !u.snapshot().has_alarm(AlarmKind::ControlStalled)
    });
    assert!(cleared.is_some(), "{:#?}", u.snapshot());
    // Nobody acknowledges: the unit returns to ready by itself.
    back_to_ready(&mut u, AlarmKind::ControlStalled, secs(120));
}

#[test]
fn repeated_stalls_hold_the_unit_safe_without_flapping() {
    let mut u = ready_unit();
    let from = u.events.len();
    // A stall every 5 s for a minute: shorter than the hold-off each time.
    for _ in 0..12 {
        u.stall(Duration::from_millis(1200));
        u.run_for(secs(5));
        assert_eq!(u.snapshot().state, UnitState::Fault);
        assert!(actuators_off(&u));
    }
    let changes: Vec<_> = u.events[from..]
        .iter()
        .filter_map(|e| match e {
            Event::StateChanged { from, to, .. } => Some((*from, *to)),
            _ => None,
        })
        .collect();
    assert_eq!(
        changes,
        vec![(UnitState::Ready, UnitState::Fault)],
        "one way into fault and no way out while the stalls go on"
    );
    back_to_ready(&mut u, AlarmKind::ControlStalled, STALL_HOLD_OFF + secs(60));
}

#[test]
fn a_gap_below_the_stall_limit_is_not_a_stall() {
    let mut u = spraying_unit("co2_fractional");
    u.stall(STALL_LIMIT - Duration::from_millis(200));
    u.tick();
    let s = u.snapshot();
    assert!(!s.has_alarm(AlarmKind::ControlStalled), "{:#?}", s.alarms);
    assert_eq!(s.state, UnitState::Spraying);
}
