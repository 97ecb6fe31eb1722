//! Maintenance: entering and leaving it, and the timed tasks a technician runs there (prime,
//! drain, output test), with what each drives.

use super::self_test::{SelfTest, SelfTestPhase};
use super::Core;
use crate::api::CommandError;
use crate::limits::{self as range, secs};
use crate::model::state::UnitState;
use coldspray_hal::signal::OutputLevels;
use coldspray_hal::Output;
use std::time::Duration;

/// A timed maintenance task.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Timed {
    /// Pump and valve run to fill the line.
    Prime,
    /// Pump and valve run to empty the reservoir.
    Drain,
    /// One output on (the valve with the pump).
    TestOutput(Output),
}

/// What the core is doing besides treatment.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Task {
    /// A timed maintenance task, until the given time.
    Timed {
        /// Which task.
        task: Timed,
        /// When it ends.
        until: Duration,
    },
    /// The self-test (passive at start, active in maintenance).
    SelfTest(SelfTest),
}

impl Timed {
    /// The command's name in refusals, the allowed time and whether it runs an actuator.
    fn rules(self) -> (&'static str, std::ops::RangeInclusive<f64>, bool) {
        match self {
            Timed::Prime => ("prime", range::PRIME_S, true),
            Timed::Drain => ("drain", range::DRAIN_S, true),
            Timed::TestOutput(output) => {
                ("output test", range::TEST_OUTPUT_S, output.is_actuator())
            }
        }
    }

    /// The outputs the task drives while it runs.
    fn drive(self, desired: &mut OutputLevels) {
        match self {
            Timed::Prime | Timed::Drain => {
                desired[Output::Pump] = true;
                desired[Output::SprayValve] = true;
            }
            Timed::TestOutput(output) => {
                desired[output] = true;
                if output == Output::SprayValve {
                    // The valve is never open without the pump.
                    desired[Output::Pump] = true;
                }
            }
        }
    }
}

impl Core {
    pub(super) fn enter_maintenance(&mut self, now: Duration) -> Result<(), CommandError> {
        if !matches!(
            self.state,
            UnitState::Ready | UnitState::Precooling | UnitState::Fault
        ) {
            return Err(self.not_permitted("entering maintenance"));
        }
        self.armed = None;
        self.laser.pending_autostart = None;
        self.task = None;
        self.thermostat.force_off(now);
        self.transition(UnitState::Maintenance, now, "maintenance", "technician");
        Ok(())
    }

    pub(super) fn exit_maintenance(&mut self, now: Duration) -> Result<(), CommandError> {
        if self.state != UnitState::Maintenance {
            return Err(self.not_permitted(
                "leaving maintenance (the unit is not in maintenance; an alarm may have \
                 ended it: acknowledge the alarms once their cause is fixed)",
            ));
        }
        self.task = None;
        if self.alarms.fault_latched() {
            // The unit cannot treat with a fault listed: it waits in `fault` for the
            // acknowledgement, as after any fault.
            let keys: Vec<String> = self
                .alarms
                .alarms()
                .iter()
                .filter(|a| a.kind.faults_unit())
                .map(|a| a.kind.key())
                .collect();
            self.transition(
                UnitState::Fault,
                now,
                "maintenance_ended_with_faults",
                format!(
                    "maintenance finished with {} listed: acknowledge to return to ready",
                    keys.join(", ")
                ),
            );
        } else {
            self.transition(
                UnitState::Precooling,
                now,
                "maintenance_ended",
                "maintenance finished",
            );
        }
        Ok(())
    }

    /// Starts a timed maintenance task: in maintenance with no other task, the time in its
    /// range, and no interlock when it runs an actuator.
    pub(super) fn start_timed_task(
        &mut self,
        task: Timed,
        seconds: f64,
        now: Duration,
    ) -> Result<(), CommandError> {
        let (action, allowed, actuator) = task.rules();
        self.require_idle_maintenance(action)?;
        range::check("seconds", seconds, allowed)?;
        if actuator {
            self.can_run_actuators()?;
        }
        self.task = Some(Task::Timed {
            task,
            until: now + secs(seconds),
        });
        Ok(())
    }

    pub(super) fn require_idle_maintenance(&self, action: &str) -> Result<(), CommandError> {
        if self.state != UnitState::Maintenance {
            return Err(self.not_permitted(action));
        }
        if self.task.is_some() {
            return Err(CommandError::NotPermitted {
                action: format!("{action} (another maintenance task is running)"),
                state: self.state,
            });
        }
        Ok(())
    }

    fn can_run_actuators(&self) -> Result<(), CommandError> {
        let kinds = self.alarms.active_interlocks();
        if kinds.is_empty() && !self.levels.safety_input_asserted() {
            Ok(())
        } else {
            Err(CommandError::InterlockActive { kinds })
        }
    }

    /// Runs the task for this step: sets the outputs it drives, ends it when its time is up,
    /// and advances an active self-test in maintenance.
    pub(super) fn drive_task(
        &mut self,
        now: Duration,
        desired: &mut OutputLevels,
        heatsink: Option<f64>,
    ) {
        match self.task {
            Some(Task::Timed { until, .. }) if now >= until => self.task = None,
            Some(Task::Timed { task, .. }) => task.drive(desired),
            Some(Task::SelfTest(_)) if self.state == UnitState::Maintenance => {
                self.run_self_test(now, heatsink);
                if let Some(Task::SelfTest(test)) = &self.task {
                    match test.phase {
                        SelfTestPhase::Flow { .. } => {
                            desired[Output::Pump] = true;
                            desired[Output::SprayValve] = true;
                        }
                        SelfTestPhase::HotSide { .. } => {
                            desired[Output::Chiller] = true;
                            desired[Output::ChillerFan] = true;
                        }
                        SelfTestPhase::Identify { .. } => {}
                    }
                }
            }
            Some(Task::SelfTest(_)) | None => {}
        }
    }
}
