//! Alarms and faults: the interlocks judged each step, the conditions the runtime reports
//! (treatment log, output writes, a stalled loop), and entering `fault`.

use super::{Core, LATE_STEP, STALL_HOLD_OFF, STALL_LIMIT};
use crate::model::alarm::AlarmKind;
use crate::model::alarm_text::AlarmText;
use crate::model::session::Outcome;
use crate::model::state::UnitState;
use crate::safety::interlocks::InterlockInputs;
use std::time::Duration;

impl Core {
    /// Raises an alarm whose condition the runtime detects (treatment log unavailable,
    /// service due); `present = false` clears its condition.
    pub fn set_runtime_alarm(
        &mut self,
        kind: AlarmKind,
        present: bool,
        message: &str,
        now: Duration,
    ) {
        let stamp = self.stamp(now);
        self.alarms.set(
            kind,
            present,
            || AlarmText::reason(kind, message),
            stamp,
            &mut self.events,
        );
    }

    /// Raises a one-off alarm found outside the core: an event, not a lasting condition, so
    /// its condition is over at once and a latching kind stays until acknowledged.
    pub fn raise_runtime_event_alarm(&mut self, kind: AlarmKind, message: &str, now: Duration) {
        let stamp = self.stamp(now);
        self.alarms
            .raise(AlarmText::reason(kind, message), stamp, &mut self.events);
        self.alarms.clear_condition(kind, stamp, &mut self.events);
    }

    /// How the last output write went: `Some(error)` raises `output_fault` and puts the unit
    /// in `fault` (actuators commanded off); `None` ends the condition, and the latched alarm
    /// then waits for acknowledgement like any interlock.
    pub fn set_output_fault(&mut self, failure: Option<&str>, now: Duration) {
        let stamp = self.stamp(now);
        self.alarms.set(
            AlarmKind::OutputFault,
            failure.is_some(),
            || AlarmText::reason(AlarmKind::OutputFault, failure.unwrap_or_default()),
            stamp,
            &mut self.events,
        );
        if failure.is_some() {
            self.enter_fault(now, AlarmKind::OutputFault);
        }
    }

    /// How long the control loop was away since its previous step (wall clock on the
    /// hardware, simulated time in the lockstep harness), and whether the watchdog drove the
    /// outputs safe meanwhile. A stall raises `control_stalled` and puts the unit in `fault`
    /// (any session ends as an interlock); the alarm clears by itself once the loop has stepped
    /// on time (no gap of [`LATE_STEP`]) for [`STALL_HOLD_OFF`], and the unit then returns to
    /// ready through precooling.
    pub fn on_loop_gap(&mut self, gap: Duration, watchdog_fired: bool, now: Duration) {
        if watchdog_fired || gap >= STALL_LIMIT {
            let stamp = self.stamp(now);
            let text = AlarmText::ControlStalled {
                silent_s: gap.as_secs_f64(),
            };
            self.alarms.raise(text, stamp, &mut self.events);
            self.enter_fault(now, AlarmKind::ControlStalled);
            self.on_time_since = Some(now);
        } else if gap >= LATE_STEP && self.on_time_since.is_some() {
            self.on_time_since = Some(now);
        }
    }

    /// Ends `control_stalled` once the loop has been on time for the hold-off.
    pub(super) fn check_stall_recovered(&mut self, now: Duration) {
        let Some(since) = self.on_time_since else {
            return;
        };
        if now.saturating_sub(since) >= STALL_HOLD_OFF {
            self.on_time_since = None;
            let stamp = self.stamp(now);
            self.alarms
                .clear_condition(AlarmKind::ControlStalled, stamp, &mut self.events);
        }
    }

    pub(super) fn evaluate_interlocks(&mut self, now: Duration) {
        let floor = self
            .session
            .as_ref()
            .map_or(10.0, |s| s.protocol.skin_floor_c);
        let found = self.interlocks.evaluate(&InterlockInputs {
            now,
            estop: self.levels.estop,
            water_low: self.levels.water_low,
            pump_on_since: self.driven.pump_on_since,
            valve_open_since: self.driven.valve_open_since,
            in_session: self.session.is_some(),
            skin_floor_c: floor,
        });
        let stamp = self.stamp(now);
        for kind in self.interlocks.kinds() {
            match found.iter().find(|t| t.kind() == kind) {
                Some(text) => self.alarms.raise(text.clone(), stamp, &mut self.events),
                None => self.alarms.clear_condition(kind, stamp, &mut self.events),
            }
        }
        if let Some(first) = found.first() {
            self.enter_fault(now, first.kind());
        }
    }

    pub(super) fn enter_fault(&mut self, now: Duration, cause: AlarmKind) {
        if matches!(self.state, UnitState::Fault | UnitState::Stopping) {
            return;
        }
        // Fault first, so the log reads spraying -> fault, then the session's closing record.
        let code = format!("alarm:{}", cause.key());
        self.transition(
            UnitState::Fault,
            now,
            code,
            format!("alarm {}", cause.key()),
        );
        self.end_session(now, Outcome::Interlock, Some(cause.key()));
        self.task = None;
        self.laser.pending_autostart = None;
        self.thermostat.force_off(now);
        self.interlocks.reset_timers();
    }
}
