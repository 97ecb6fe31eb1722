//! Commands the outside kiosk client found answered wrongly, on the real core in simulated
//! time: `Maintenance.TestOutput` really drives the output it names, indicators included (the
//! lamp and the buzzer are set by the state and the alarms each step, and the test must win
//! over them while it runs); deleting a factory protocol is `NotPermitted`, as documented.

use coldspray_hal::sim::SimConfig;
use coldspray_hal::Output;
use coldsprayd::api::{Command, CommandError};
use coldsprayd::control::CoreConfig;
use coldsprayd::lockstep::Lockstep;
use coldsprayd::model::state::UnitState;
use std::time::Duration;

#[test]
fn every_output_test_turns_its_output_on_for_its_time() {
    let mut u = Lockstep::new(CoreConfig::default(), SimConfig::default());
    u.run_until(Duration::from_secs(10), |u| {
        u.snapshot().state == UnitState::Precooling
    })
    .expect("self-test passes");
    u.command(Command::EnterMaintenance).unwrap();
    for output in Output::ALL {
        u.command(Command::TestOutput {
            output,
            seconds: 1.0,
        })
        .unwrap_or_else(|e| panic!("{output:?}: {e}"));
        u.run_for(Duration::from_millis(300));
        assert!(u.output(output), "{output:?} is not on during its test");
        u.run_for(Duration::from_millis(1000));
        // The heatsink fan runs on after the chiller by design (the thermostat's run-on).
        if output != Output::ChillerFan {
            assert!(!u.output(output), "{output:?} still on after its test");
        }
    }
}

#[test]
fn a_factory_protocol_cannot_be_deleted_and_says_not_permitted() {
    let mut u = Lockstep::new(CoreConfig::default(), SimConfig::default());
    let e = u
        .command(Command::DeleteProtocol {
            name: "pico".into(),
        })
        .expect_err("factory protocol deleted");
    assert!(matches!(e, CommandError::NotPermitted { .. }), "{e:?}");
    assert!(e.to_string().contains("factory"), "{e}");
    // Still there: arming it works.
    u.command(Command::Arm {
        protocol: "pico".into(),
    })
    .expect("pico still armable");
}

#[test]
fn the_snapshot_says_why_not_ready_and_when_ready_and_keeps_the_self_test_report() {
    let mut u = Lockstep::new(CoreConfig::default(), SimConfig::default());
    assert_eq!(u.snapshot().not_ready, vec!["starting".to_string()]);
    assert_eq!(u.snapshot().pedal_protocol, "co2_fractional");
    u.run_until(Duration::from_secs(10), |u| {
        u.snapshot().state == UnitState::Precooling
    })
    .expect("self-test passes");
    let report = u.snapshot().last_self_test_report;
    assert!(!report.is_empty(), "the start's self-test report is kept");
    assert_eq!(u.snapshot().not_ready, vec!["precooling".to_string()]);
    u.run_for(Duration::from_secs(60));
    let estimate = u.snapshot().ready_in_s.expect("an estimate while cooling");
    let took = u
        .run_until(Duration::from_secs(3600), |u| u.snapshot().ready)
        .expect("reaches ready")
        .as_secs_f64();
    let s = u.snapshot();
    assert!(s.not_ready.is_empty() && s.ready_in_s.is_none(), "{s:?}");
    println!("time to ready a minute into precooling: estimated {estimate:.0} s, took {took:.0} s");
    // The estimate carries the current cooling rate on, so it errs short as the chiller slows
    // near the setpoint; it must still be the right order of magnitude.
    assert!(
        estimate > took / 4.0 && estimate < took * 2.0,
        "estimated {estimate:.0} s, took {took:.0} s"
    );
    u.command(Command::Arm {
        protocol: "pico".into(),
    })
    .unwrap();
    assert_eq!(u.snapshot().pedal_protocol, "pico");
    // Every state change so far carries a stable code beside its text.
    let codes: Vec<(UnitState, String)> = u
        .events
        .iter()
        .filter_map(|e| match e {
            coldsprayd::api::Event::StateChanged { to, code, .. } => Some((*to, code.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(
        codes,
        vec![
            (UnitState::Precooling, "self_test_passed".to_string()),
            (UnitState::Ready, "reservoir_at_setpoint".to_string()),
        ]
    );
}
