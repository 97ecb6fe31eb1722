//! Every alarm has a way back to ready without a restart: a re-check, a self-test or a
//! technician's action. These are the ways back that once were missing: `chiller_ineffective`
//! could only be cleared by restarting the daemon, the maintenance self-test could not run the
//! pump while that alarm was listed, a failed self-test pushed the technician out of
//! maintenance, and an acknowledged `late_start` stayed listed.

mod common;

use coldspray_hal::sim::{Fault, SimConfig};
use coldsprayd::api::{Command, StartOptions};
use coldsprayd::control::CoreConfig;
use coldsprayd::lockstep::Lockstep;
use coldsprayd::model::alarm::AlarmKind;
use coldsprayd::model::state::UnitState;
use coldsprayd::Event;
use common::*;
use std::time::Duration;

/// A unit precooling a warm reservoir with a dead chiller, run until `chiller_ineffective`.
fn chiller_ineffective_unit() -> Lockstep {
    let mut u = unit_with(CoreConfig::default(), SimConfig::default());
    u.sim.inject(Fault::ChillerDead);
    let took = u.run_until(Duration::from_secs(900), |u| {
        u.snapshot().has_alarm(AlarmKind::ChillerIneffective)
    });
    assert!(
        took.is_some(),
        "no chiller_ineffective: {:#?}",
        u.snapshot()
    );
    u.run_for(Duration::from_millis(100));
    assert_eq!(u.snapshot().state, UnitState::Fault);
    assert!(actuators_off(&u));
    u
}

fn back_to_ready(u: &mut Lockstep, limit: Duration) {
    let took = u.run_until(limit, |u| {
        let s = u.snapshot();
        s.ready && s.alarms.is_empty()
    });
    assert!(took.is_some(), "not back to ready: {:#?}", u.snapshot());
}

/// The result of the first self-test that finished after event number `from`.
fn self_test_after(u: &Lockstep, from: usize) -> Option<(bool, Vec<String>)> {
    u.events[from..].iter().find_map(|e| match e {
        Event::SelfTestFinished { passed, report, .. } => Some((*passed, report.clone())),
        _ => None,
    })
}

#[test]
fn chiller_ineffective_clears_on_acknowledge_once_the_chiller_works() {
    let mut u = chiller_ineffective_unit();
    u.sim.clear_all();
    u.command(Command::Acknowledge { key: None }).unwrap();
    u.run_for(Duration::from_millis(100));
    assert_ne!(
        u.snapshot().state,
        UnitState::Fault,
        "acknowledged with the cause gone: {:#?}",
        u.snapshot()
    );
    assert!(!u.snapshot().has_alarm(AlarmKind::ChillerIneffective));
    // The thermostat tries again (after its minimum off time) and the chiller now works.
    back_to_ready(&mut u, Duration::from_secs(3600));
}

#[test]
fn acknowledging_a_still_dead_chiller_raises_the_alarm_again() {
    let mut u = chiller_ineffective_unit();
    u.command(Command::Acknowledge { key: None }).unwrap();
    u.run_for(Duration::from_millis(100));
    assert!(!u.snapshot().has_alarm(AlarmKind::ChillerIneffective));
    // The effectiveness check is re-armed: minimum off time, then the hot-side check.
    let again = u.run_until(Duration::from_secs(900), |u| {
        u.snapshot().has_alarm(AlarmKind::ChillerIneffective)
    });
    assert!(
        again.is_some(),
        "a dead chiller went unnoticed: {:#?}",
        u.snapshot()
    );
    u.run_for(Duration::from_millis(100));
    assert_eq!(u.snapshot().state, UnitState::Fault);
    assert!(actuators_off(&u));
}

#[test]
fn a_maintenance_self_test_on_a_healthy_unit_clears_chiller_ineffective() {
    let mut u = chiller_ineffective_unit();
    u.sim.clear_all();
    u.command(Command::EnterMaintenance).unwrap();
    let from = u.events.len();
    u.command(Command::SelfTest).unwrap();
    let done = u.run_until(Duration::from_secs(120), |u| {
        self_test_after(u, from).is_some()
    });
    assert!(
        done.is_some(),
        "self-test never finished: {:#?}",
        u.snapshot()
    );
    let (passed, report) = self_test_after(&u, from).unwrap_or_default();
    assert!(passed, "self-test failed on a healthy unit: {report:?}");
    assert!(
        !u.snapshot().has_alarm(AlarmKind::ChillerIneffective),
        "{:#?}",
        u.snapshot().alarms
    );
    let exit = u.command(Command::ExitMaintenance);
    assert!(exit.is_ok(), "maintenance exit refused: {exit:?}");
    back_to_ready(&mut u, Duration::from_secs(3600));
}

#[test]
fn a_failed_maintenance_self_test_leaves_the_technician_in_maintenance() {
    let mut u = ready_unit();
    u.sim.inject(Fault::ChillerDead);
    u.command(Command::EnterMaintenance).unwrap();
    let from = u.events.len();
    u.command(Command::SelfTest).unwrap();
    let done = u.run_until(Duration::from_secs(120), |u| {
        self_test_after(u, from).is_some()
    });
    assert!(done.is_some());
    let (passed, report) = self_test_after(&u, from).unwrap_or_default();
    assert!(!passed, "{report:?}");
    u.run_for(Duration::from_millis(100));
    let s = u.snapshot();
    assert_eq!(s.state, UnitState::Maintenance, "{s:#?}");
    assert!(s.has_alarm(AlarmKind::SelfTestFailed));
    assert!(actuators_off(&u));
    // The technician fixes the chiller and runs the self-test again: it passes and clears it.
    u.sim.clear(Fault::ChillerDead);
    let from = u.events.len();
    u.command(Command::SelfTest).unwrap();
    u.run_until(Duration::from_secs(120), |u| {
        self_test_after(u, from).is_some_and(|(p, _)| p)
    })
    .expect("the second self-test passed");
    assert!(!u.snapshot().has_alarm(AlarmKind::SelfTestFailed));
    u.command(Command::ExitMaintenance).unwrap();
    back_to_ready(&mut u, Duration::from_secs(600));
}

#[test]
fn leaving_maintenance_with_a_fault_listed_waits_in_fault_for_the_acknowledgement() {
    let mut u = ready_unit();
    u.sim.inject(Fault::ChillerDead);
    u.command(Command::EnterMaintenance).unwrap();
    let from = u.events.len();
    u.command(Command::SelfTest).unwrap();
    u.run_until(Duration::from_secs(120), |u| {
        self_test_after(u, from).is_some()
    })
    .expect("self-test finished");
    u.sim.clear(Fault::ChillerDead);
    let exit = u.command(Command::ExitMaintenance);
    assert!(exit.is_ok(), "maintenance exit refused: {exit:?}");
    u.run_for(Duration::from_secs(1));
    assert_eq!(u.snapshot().state, UnitState::Fault);
    assert!(actuators_off(&u));
    u.command(Command::Acknowledge { key: None }).unwrap();
    back_to_ready(&mut u, Duration::from_secs(600));
}

#[test]
fn an_acknowledged_late_start_is_removed() {
    let mut u = ready_unit();
    u.sim.laser_pass(Duration::from_millis(500), 1.0);
    u.run_for(Duration::from_secs(12));
    u.command(Command::StartSession {
        protocol: "co2_fractional".into(),
        options: StartOptions::default(),
    })
    .unwrap();
    assert!(u.snapshot().has_alarm(AlarmKind::LateStart));
    u.command(Command::Acknowledge {
        key: Some("late_start".into()),
    })
    .unwrap();
    u.tick();
    assert!(
        !u.snapshot().has_alarm(AlarmKind::LateStart),
        "acknowledged advisory still listed: {:#?}",
        u.snapshot().alarms
    );
    // The session itself carries on and the record keeps the fact.
    assert_eq!(u.snapshot().state, UnitState::Spraying);
}
