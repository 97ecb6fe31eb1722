//! Unit settings that could not be read keep every way of starting a session shut — the
//! command, the foot pedal and auto-start on the laser's end — until a technician confirms
//! them; on the simulated unit in injected time.

mod common;

use coldspray_hal::Output;
use coldsprayd::api::{Command, CommandError};
use coldsprayd::model::alarm::AlarmKind;
use common::*;
use std::time::Duration;

fn press_pedal(u: &mut coldsprayd::lockstep::Lockstep) {
    u.sim.set_trigger(true);
    u.run_for(Duration::from_millis(200));
    u.sim.set_trigger(false);
    u.run_for(Duration::from_millis(200));
}

#[test]
fn unconfirmed_settings_refuse_command_pedal_and_auto_start_until_confirmed() {
    let mut u = ready_unit();
    u.command(Command::Arm {
        protocol: "co2_fractional".into(),
    })
    .unwrap();
    let now = u.now();
    u.core
        .require_settings_confirmation("settings file damaged (test)", now);
    u.run_for(Duration::from_millis(100));
    let snap = u.snapshot();
    assert!(!snap.ready, "not ready to treat");
    assert!(snap.has_alarm(AlarmKind::SettingsLost));
    assert_eq!(snap.armed, None, "auto-start disarmed");

    assert_eq!(
        u.command(Command::StartSession {
            protocol: "co2_fractional".into(),
            options: Default::default(),
        }),
        Err(CommandError::SettingsUnconfirmed)
    );
    assert_eq!(
        u.command(Command::Arm {
            protocol: "co2_fractional".into()
        }),
        Err(CommandError::SettingsUnconfirmed)
    );
    press_pedal(&mut u);
    u.sim.laser_pass(Duration::from_secs(1), 1.0);
    let sprayed = u.run_until(Duration::from_secs(5), |u| {
        u.output(Output::SprayValve) || u.output(Output::Pump)
    });
    assert_eq!(sprayed, None, "nothing sprays: {:#?}", u.snapshot());
    assert!(u.snapshot().session.is_none());

    // An operator's acknowledge is not a confirmation.
    u.command(Command::Acknowledge { key: None }).unwrap();
    u.run_for(Duration::from_millis(100));
    assert!(u.snapshot().has_alarm(AlarmKind::SettingsLost));

    u.command(Command::ConfirmSettings).unwrap();
    u.run_for(Duration::from_millis(100));
    let snap = u.snapshot();
    assert!(
        !snap.has_alarm(AlarmKind::SettingsLost),
        "{:?}",
        snap.alarms
    );
    assert!(snap.ready, "{snap:#?}");
    press_pedal(&mut u);
    assert!(u.snapshot().session.is_some(), "the pedal works again");
}
