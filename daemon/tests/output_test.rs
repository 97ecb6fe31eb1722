//! `Maintenance.TestOutput` really drives the output it names, indicators included: the lamp
//! and the buzzer are set by the state and the alarms each step, and the test must win over
//! them while it runs (and lose again when it ends).

use coldspray_hal::sim::SimConfig;
use coldspray_hal::Output;
use coldsprayd::api::Command;
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
