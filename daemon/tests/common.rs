//! Shared set-up for the simulated-unit tests: a unit that is ready, or spraying, in
//! simulated time.
#![allow(dead_code)]

use coldspray_hal::sim::SimConfig;
use coldspray_hal::{Output, Sensor};
use coldsprayd::api::{Command, StartOptions};
use coldsprayd::control::CoreConfig;
use coldsprayd::lockstep::Lockstep;
use coldsprayd::model::state::UnitState;
use std::time::Duration;

/// The sim starting with a reservoir already at the setpoint, so tests reach `ready` quickly.
pub fn cold_twin() -> SimConfig {
    SimConfig {
        initial_reservoir_c: 4.0,
        ..SimConfig::default()
    }
}

pub fn unit_with(config: CoreConfig, twin: SimConfig) -> Lockstep {
    Lockstep::new(config, twin)
}

/// A unit in `ready`.
pub fn ready_unit_with(config: CoreConfig, twin: SimConfig) -> Lockstep {
    let mut u = unit_with(config, twin);
    let took = u.run_until(Duration::from_secs(600), |u| u.snapshot().ready);
    assert!(took.is_some(), "not ready: {:#?}", u.snapshot());
    u
}

pub fn ready_unit() -> Lockstep {
    ready_unit_with(CoreConfig::default(), cold_twin())
}

/// Starts a session by command and runs until the valve is open.
pub fn start(u: &mut Lockstep, protocol: &str) {
    let r = u.command(Command::StartSession {
        protocol: protocol.into(),
        options: StartOptions::default(),
    });
    assert!(r.is_ok(), "start refused: {r:?}");
    assert_eq!(u.snapshot().state, UnitState::Spraying);
    assert!(u.output(Output::Pump) && u.output(Output::SprayValve));
}

pub fn spraying_unit(protocol: &str) -> Lockstep {
    let mut u = ready_unit();
    start(&mut u, protocol);
    u.run_for(Duration::from_millis(500));
    u
}

pub fn actuators_off(u: &Lockstep) -> bool {
    Output::ALL
        .into_iter()
        .filter(|o| o.is_actuator())
        .all(|o| !u.output(o))
}

pub fn skin(u: &Lockstep) -> Option<f64> {
    u.reading(Sensor::Skin)
}
