//! The output gate: the last word on every output, applied after the controller.
//!
//! Whatever the controller asks, the gate guarantees:
//! * while any interlock condition is present, a fault is latched, or the unit is starting,
//!   in fault or stopping: every actuator (pump, valve, chiller, fan) is off;
//! * the valve is never open without the pump;
//! * the fan runs whenever the chiller runs.

use crate::model::state::UnitState;
use coldspray_hal::signal::OutputLevels;
use coldspray_hal::Output;

/// Why the gate must hold every actuator off, if it must.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GateInputs {
    /// Current state.
    pub state: UnitState,
    /// Any interlock condition present now.
    pub interlock_present: bool,
    /// Any fault-class alarm latched.
    pub fault_latched: bool,
}

impl GateInputs {
    /// True when every actuator must be off.
    pub fn actuators_blocked(&self) -> bool {
        self.interlock_present
            || self.fault_latched
            || matches!(
                self.state,
                UnitState::Starting | UnitState::Fault | UnitState::Stopping
            )
    }
}

/// Applies the gate to the controller's desired levels.
pub fn apply(desired: OutputLevels, inputs: GateInputs) -> OutputLevels {
    let mut out = desired;
    if inputs.actuators_blocked() {
        for o in Output::ALL.into_iter().filter(|o| o.is_actuator()) {
            out[o] = false;
        }
    }
    if !out[Output::Pump] {
        out[Output::SprayValve] = false;
    }
    if out[Output::Chiller] {
        out[Output::ChillerFan] = true;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn blocked_means_every_actuator_off(desired in proptest::array::uniform7(any::<bool>()),
                                            state in 0usize..7, il in any::<bool>(), fl in any::<bool>()) {
            let inputs = GateInputs { state: UnitState::ALL[state], interlock_present: il, fault_latched: fl };
            let out = apply(desired.into(), inputs).to_array();
            if inputs.actuators_blocked() {
                for o in Output::ALL.into_iter().filter(|o| o.is_actuator()) {
                    prop_assert!(!out[o.index()]);
                }
            }
            prop_assert!(!out[Output::SprayValve.index()] || out[Output::Pump.index()]);
            prop_assert!(!out[Output::Chiller.index()] || out[Output::ChillerFan.index()]);
            // Indicators pass through untouched.
            for o in [Output::Buzzer, Output::LampReady, Output::LampFault] {
                prop_assert_eq!(out[o.index()], desired[o.index()]);
            }
        }
    }
}
