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
