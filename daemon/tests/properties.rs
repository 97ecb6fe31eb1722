//! Property tests over random input and fault sequences on the simulated unit:
//! * no actuator is ever on in `fault`, in `starting`, or while the E-stop is pressed;
//! * the valve is never open with the pump off for longer than one control step.

mod common;

use coldspray_hal::sim::Fault;
use coldspray_hal::{Output, Sensor};
use coldsprayd::api::{Command, StartOptions};
use coldsprayd::control::CoreConfig;
use coldsprayd::lockstep::Lockstep;
use coldsprayd::model::state::UnitState;
use proptest::prelude::*;
use std::time::Duration;

#[derive(Debug, Clone)]
enum Action {
    Run(u16),
    Inject(Fault),
    Clear(Fault),
    ClearAll,
    Estop(bool),
    Trigger(bool),
    Laser(u16),
    Start(usize),
    Stop,
    Ack,
    Arm(usize),
}

fn fault() -> impl Strategy<Value = Fault> {
    let sensor = prop::sample::select(Sensor::ALL.to_vec());
    prop_oneof![
        sensor.clone().prop_map(Fault::SensorSilent),
        sensor.clone().prop_map(Fault::SensorStuck),
        sensor.prop_map(Fault::SensorOutOfRange),
        Just(Fault::ChillerDead),
        Just(Fault::PumpDead),
        Just(Fault::NozzleBlocked),
        Just(Fault::Leak),
        Just(Fault::WaterLow),
        Just(Fault::FanDead),
    ]
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        4 => (1u16..400).prop_map(Action::Run),
        1 => fault().prop_map(Action::Inject),
        1 => fault().prop_map(Action::Clear),
        1 => Just(Action::ClearAll),
        1 => any::<bool>().prop_map(Action::Estop),
        1 => any::<bool>().prop_map(Action::Trigger),
        1 => (1u16..4000).prop_map(Action::Laser),
        2 => (0usize..5).prop_map(Action::Start),
        1 => Just(Action::Stop),
        2 => Just(Action::Ack),
        1 => (0usize..5).prop_map(Action::Arm),
    ]
}

struct Checker {
    valve_without_pump: u32,
}

impl Checker {
    fn check(&mut self, u: &Lockstep) -> Result<(), TestCaseError> {
        let snap = u.snapshot();
        let truth = u.truth();
        let estop = u.sim.truth().outputs.len() == 7 && estop_pressed(u);
        let blocked = matches!(snap.state, UnitState::Fault | UnitState::Starting) || estop;
        if blocked {
            for o in Output::ALL.into_iter().filter(|o| o.is_actuator()) {
                prop_assert!(
                    !truth.outputs[o.index()],
                    "{o} on in {} (estop {estop}) at {:?}",
                    snap.state,
                    u.now()
                );
            }
        }
        if truth.outputs[Output::SprayValve.index()] && !truth.outputs[Output::Pump.index()] {
            self.valve_without_pump += 1;
        } else {
            self.valve_without_pump = 0;
        }
        prop_assert!(
            self.valve_without_pump <= 1,
            "valve open without the pump for 2 steps"
        );
        Ok(())
    }
}

fn estop_pressed(u: &Lockstep) -> bool {
    u.snapshot()
        .has_alarm(coldsprayd::model::alarm::AlarmKind::Estop)
        && u.snapshot()
            .alarms
            .iter()
            .any(|a| a.kind == coldsprayd::model::alarm::AlarmKind::Estop && a.condition_present)
}

const PROTOCOLS: [&str; 5] = [
    "pico",
    "nd_yag",
    "co2_fractional",
    "hifu",
    "rf_microneedling",
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, max_shrink_iters: 200, ..ProptestConfig::default() })]

    #[test]
    fn outputs_are_safe_whatever_happens(actions in prop::collection::vec(action(), 1..60)) {
        let mut u = common::ready_unit_with(CoreConfig::default(), common::cold_twin());
        let mut c = Checker { valve_without_pump: 0 };
        let mut estop = false;
        for a in actions {
            match a {
                Action::Run(ticks) => {
                    for _ in 0..ticks {
                        u.tick();
                        c.check(&u)?;
                        if estop {
                            for o in Output::ALL.into_iter().filter(|o| o.is_actuator()) {
                                prop_assert!(!u.truth().outputs[o.index()], "{o} on with E-stop pressed");
                            }
                        }
                    }
                }
                Action::Inject(f) => u.sim.inject(f),
                Action::Clear(f) => u.sim.clear(f),
                Action::ClearAll => { u.sim.clear_all(); estop = false; }
                Action::Estop(p) => { u.sim.set_estop(p); estop = p; }
                Action::Trigger(p) => u.sim.set_trigger(p),
                Action::Laser(ms) => u.sim.laser_pass(Duration::from_millis(u64::from(ms)), 1.0),
                Action::Start(i) => {
                    let _ = u.command(Command::StartSession { protocol: PROTOCOLS[i].into(), options: StartOptions::default() });
                }
                Action::Stop => { let _ = u.command(Command::StopSession); }
                Action::Ack => { let _ = u.command(Command::Acknowledge { key: None }); }
                Action::Arm(i) => { let _ = u.command(Command::Arm { protocol: PROTOCOLS[i].into() }); }
            }
            // A command runs a step too: check it.
            c.check(&u)?;
            if estop {
                // Edges are handled within one control step of the press.
                u.tick();
                for o in Output::ALL.into_iter().filter(|o| o.is_actuator()) {
                    prop_assert!(!u.truth().outputs[o.index()], "{o} on with E-stop pressed");
                }
            }
        }
    }
}
