//! The control step: safety first (interlocks), then the state machine, the chiller, the
//! desired outputs, and the safety gate's last word; and the shutdown step.

use super::super::running_session::DAMAGE_THRESHOLD_C;
use super::tasks::Task;
use super::{Core, StepOutput, IDLE_PUMP_DUTY};
use crate::api::StartOptions;
use crate::limits::secs;
use crate::model::alarm::AlarmKind;
use crate::model::alarm_text::AlarmText;
use crate::model::session::{Outcome, StartCause};
use crate::model::state::UnitState;
use crate::safety::gate::{self, GateInputs};
use coldspray_hal::signal::OutputLevels;
use coldspray_hal::{Output, Sensor};
use std::time::Duration;

impl Core {
    /// Ends everything for shutdown: the session closes as `shutdown`, outputs go off, and
    /// the state changes to `stopping` with `reason` (why the daemon stops).
    pub fn shutdown(&mut self, now: Duration, unix_ms: i64, reason: &str) -> StepOutput {
        self.now_unix_ms = unix_ms;
        self.end_session(now, Outcome::Shutdown, None);
        self.task = None;
        self.thermostat.force_off(now);
        self.transition(UnitState::Stopping, now, "shutdown", reason.to_string());
        self.driven.levels = OutputLevels::all_off();
        StepOutput {
            outputs: OutputLevels::all_off(),
            pump_duty: IDLE_PUMP_DUTY,
            identify: false,
        }
    }

    /// One control step at `now`.
    pub fn step(&mut self, now: Duration, unix_ms: i64) -> StepOutput {
        self.now_unix_ms = unix_ms;
        let dt = self
            .last_step
            .map(|t| now.saturating_sub(t))
            .unwrap_or_default();
        self.last_step = Some(now);
        if self.state == UnitState::Stopping {
            return StepOutput {
                outputs: OutputLevels::all_off(),
                pump_duty: IDLE_PUMP_DUTY,
                identify: false,
            };
        }
        self.flow.expire(now);
        let stale_after = secs(self.interlocks.config().stale_after_s);
        let skin = self.sensors.fresh(Sensor::Skin, now, stale_after);
        let reservoir = self.sensors.fresh(Sensor::Reservoir, now, stale_after);
        let heatsink = self.sensors.fresh(Sensor::Heatsink, now, stale_after);

        // Heat dose after the laser: time above 40 °C until the session that follows it ends.
        if self.laser.ended_at.is_some() && skin.is_some_and(|s| s > DAMAGE_THRESHOLD_C) {
            self.laser.above_40 += dt;
        }

        // 1. Safety first: interlocks from raw inputs and the outputs actually driven.
        self.check_stall_recovered(now);
        self.evaluate_interlocks(now);

        // 2. State logic.
        self.advance_state(now, reservoir);

        // 3. Chiller.
        let cooling = matches!(
            self.state,
            UnitState::Precooling | UnitState::Ready | UnitState::Spraying
        ) && !self.alarms.fault_latched();
        let th = self.thermostat.update(now, cooling, reservoir, heatsink);
        let stamp = self.stamp(now);
        self.alarms.set(
            AlarmKind::FreezeCutout,
            th.freeze_cutout,
            || AlarmText::FreezeCutout {
                cutout_c: self.thermostat.config().freeze_cutout_c,
            },
            stamp,
            &mut self.events,
        );
        if let Some(why) = th.ineffective {
            // The condition is the failed check itself: acknowledging clears it and lets the
            // thermostat try again, whose checks raise it again if the chiller is still dead.
            self.alarms.raise(
                AlarmText::reason(AlarmKind::ChillerIneffective, why),
                stamp,
                &mut self.events,
            );
            self.alarms
                .clear_condition(AlarmKind::ChillerIneffective, stamp, &mut self.events);
            self.enter_fault(now, AlarmKind::ChillerIneffective);
        }

        // 4. Desired outputs.
        let mut desired = OutputLevels::all_off();
        desired[Output::Chiller] = th.chiller;
        desired[Output::ChillerFan] = th.fan;
        let mut duty = IDLE_PUMP_DUTY;
        if let Some(session) = self.session.as_mut() {
            let drive = session.update(now, skin, self.driven.levels[Output::SprayValve]);
            desired[Output::Pump] = drive.pump;
            desired[Output::SprayValve] = drive.valve;
            duty = session.protocol.pump_percent;
            if let Some(outcome) = drive.end {
                self.end_session(now, outcome, None);
            }
        }
        desired[Output::LampReady] = matches!(self.state, UnitState::Ready | UnitState::Spraying);
        desired[Output::Buzzer] = self.alarms.buzzer(now);
        desired[Output::LampFault] = self.alarms.fault_lamp(now);
        // After the indicators: an output test of a lamp or the buzzer must win over them.
        self.drive_task(now, &mut desired, heatsink);

        // 5. The gate has the last word.
        let outputs = gate::apply(
            desired,
            GateInputs {
                state: self.state,
                interlock_present: self.alarms.interlock_present()
                    || self.levels.safety_input_asserted(),
                // In maintenance a technician may run the pump and the chiller (the active
                // self-test that checks them) while a fault latched earlier waits for its
                // acknowledgement; a fault whose condition is present still blocks them.
                fault_latched: if self.state == UnitState::Maintenance {
                    self.alarms.fault_present()
                } else {
                    self.alarms.fault_latched()
                },
            },
        );
        self.apply_outputs(now, dt, outputs);
        self.record_sample(now);

        let identify = std::mem::take(&mut self.self_test.identify_requested);
        StepOutput {
            outputs,
            pump_duty: duty,
            identify,
        }
    }

    pub(super) fn advance_state(&mut self, now: Duration, reservoir: Option<f64>) {
        match self.state {
            UnitState::Starting => self.run_self_test(now, None),
            UnitState::Fault => {
                // A laser end seen during a fault is dropped: acknowledging an alarm must
                // never start spraying (the patient is not waiting under the nozzle).
                self.laser.pending_autostart = None;
                if !self.alarms.fault_latched() {
                    self.interlocks.restart_staleness(now);
                    self.transition(
                        UnitState::Precooling,
                        now,
                        "fault_cleared",
                        "fault cleared and acknowledged",
                    );
                }
            }
            UnitState::Precooling => {
                if let Some(Task::SelfTest(_)) = self.task {
                    self.run_self_test(now, None);
                }
                self.ready_eta.observe(now, reservoir);
                if reservoir.is_some_and(|t| self.thermostat.cold_enough(t, false)) {
                    self.transition(
                        UnitState::Ready,
                        now,
                        "reservoir_at_setpoint",
                        "reservoir at setpoint",
                    );
                }
            }
            UnitState::Ready => {
                if let Some(Task::SelfTest(_)) = self.task {
                    self.run_self_test(now, None);
                }
                if !reservoir.is_some_and(|t| self.thermostat.cold_enough(t, true)) {
                    self.transition(
                        UnitState::Precooling,
                        now,
                        "reservoir_warmed",
                        "reservoir warmed",
                    );
                } else if let Some(laser_end) = self.laser.pending_autostart {
                    if let Some(name) = self.armed.clone() {
                        let _ = self.start_session(
                            now,
                            &name,
                            &StartOptions::default(),
                            StartCause::AutoStart,
                        );
                    }
                    if self.laser.pending_autostart == Some(laser_end) {
                        self.laser.pending_autostart = None;
                    }
                }
            }
            UnitState::Spraying | UnitState::Maintenance | UnitState::Stopping => {}
        }
        // An auto-start that waited too long for ready is dropped (the laser pass is over).
        if let (Some(end), Some(_)) = (self.laser.pending_autostart, self.laser.ended_at) {
            if now.saturating_sub(end) > secs(self.session_cfg.laser_association_s) {
                self.laser.pending_autostart = None;
            }
        }
    }

    pub(super) fn apply_outputs(&mut self, now: Duration, dt: Duration, outputs: OutputLevels) {
        let pump = outputs[Output::Pump];
        let valve = outputs[Output::SprayValve];
        let chiller = outputs[Output::Chiller];
        self.driven.pump_on_since = if pump {
            self.driven.pump_on_since.or(Some(now))
        } else {
            None
        };
        self.driven.valve_open_since = if valve {
            self.driven.valve_open_since.or(Some(now))
        } else {
            None
        };
        let was = self.driven.levels;
        if was[Output::Pump] {
            self.counters.pump_seconds += dt.as_secs_f64();
        }
        if was[Output::Chiller] {
            self.counters.chiller_seconds += dt.as_secs_f64();
        }
        // Exponential average over ~10 minutes.
        let alpha = (dt.as_secs_f64() / 600.0).min(1.0);
        let on = if chiller { 1.0 } else { 0.0 };
        self.driven.chiller_duty += alpha * (on - self.driven.chiller_duty);
        self.driven.levels = outputs;
    }
}
