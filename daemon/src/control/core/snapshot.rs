//! The unit as readers see it: the snapshot the runtime publishes after every step.

use super::tasks::{Task, Timed};
use super::Core;
use crate::api::{MaintenanceActivity, SessionProgress, Snapshot};
use crate::limits::secs;
use crate::model::alarm::AlarmKind;
use crate::model::state::UnitState;
use coldspray_hal::Sensor;
use std::time::Duration;

impl Core {
    /// The unit as readers see it.
    pub fn snapshot(&self, now: Duration) -> Snapshot {
        let stale_after = secs(self.interlocks.config().stale_after_s);
        let mut readings = [None; 5];
        for s in Sensor::ALL {
            readings[s.index()] = self.sensors.fresh(s, now, stale_after);
        }
        let ready = self.state == UnitState::Ready
            && !self.settings_unconfirmed
            && !self.alarms.interlock_present()
            && !self.levels.safety_input_asserted();
        Snapshot {
            at: now,
            state: self.state,
            state_since: self.state_since,
            ready,
            readings,
            flow_l_min: self.flow.litres_per_minute(),
            outputs: self.driven.levels.to_array(),
            setpoint_c: self.thermostat.setpoint(),
            calibration: self.calibration,
            alarms: self.alarms.alarms().to_vec(),
            audio_paused_until: self.alarms.audio_paused_until(now),
            armed: self.armed.clone(),
            session: self.session.as_ref().map(|s| {
                let (end_in_s, end_basis) = s.expected_end(now);
                SessionProgress {
                    start: s.start.clone(),
                    elapsed_s: s.elapsed(now).as_secs_f64(),
                    remaining_s: s.remaining_s(now),
                    end_in_s,
                    end_basis,
                    in_band: s.in_band_since.is_some(),
                    peak_skin_c: s.peak_skin_c,
                    min_skin_c: s.min_skin_c,
                }
            }),
            maintenance: self.task.as_ref().and_then(|t| match t {
                Task::Timed { task, .. } => Some(match task {
                    Timed::Prime => MaintenanceActivity::Prime,
                    Timed::Drain => MaintenanceActivity::Drain,
                    Timed::TestOutput(output) => MaintenanceActivity::TestOutput(*output),
                }),
                Task::SelfTest(_) if self.state != UnitState::Starting => {
                    Some(MaintenanceActivity::SelfTest)
                }
                Task::SelfTest(_) => None,
            }),
            laser_on: self.levels.laser_on,
            counters: self.counters.clone(),
            chiller_duty: self.driven.chiller_duty,
            last_self_test: self.self_test.last,
            last_self_test_report: self.self_test.last_report.clone(),
            water_low: self.levels.water_low,
            pedal_protocol: self
                .armed
                .clone()
                .unwrap_or_else(|| self.default_protocol.clone()),
            not_ready: self.not_ready(),
            ready_in_s: self.ready_in_s(readings[Sensor::Reservoir.index()]),
        }
    }

    /// Why a Start would not spray at once, as stable codes (empty when ready): the state
    /// when it is not `ready` (`starting`, `precooling`, ...), `settings_unconfirmed`,
    /// `estop` / `water_low` for the inputs, `interlock:<alarm key>` for each interlock.
    fn not_ready(&self) -> Vec<String> {
        let mut why = Vec::new();
        if self.state != UnitState::Ready {
            why.push(self.state.name().to_string());
        }
        if self.settings_unconfirmed {
            why.push("settings_unconfirmed".to_string());
        }
        if self.levels.estop {
            why.push(AlarmKind::Estop.key());
        }
        if self.levels.water_low {
            why.push(AlarmKind::WaterLow.key());
        }
        for kind in self.alarms.active_interlocks() {
            why.push(format!("interlock:{}", kind.key()));
        }
        why
    }

    /// Seconds until the reservoir reaches the ready band while precooling, at the rate it
    /// has cooled over the last [`ReadyEta::WINDOW`]; `None` when not precooling or not
    /// (yet) cooling.
    fn ready_in_s(&self, reservoir: Option<f64>) -> Option<f64> {
        if self.state != UnitState::Precooling {
            return None;
        }
        let threshold = self.thermostat.setpoint() + self.thermostat.config().ready_band_c;
        let rate = self.ready_eta.rate?;
        Some(((reservoir? - threshold) / rate).max(0.0))
    }
}

/// The reservoir's cooling rate while precooling, measured over [`ReadyEta::WINDOW`].
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct ReadyEta {
    /// The reading the current window started with.
    anchor: Option<(Duration, f64)>,
    /// °C per second of cooling (positive) over the last full window.
    rate: Option<f64>,
}

impl ReadyEta {
    /// Length of one measuring window.
    pub(super) const WINDOW: Duration = Duration::from_secs(10);

    /// Takes the reservoir reading of one precooling step.
    pub(super) fn observe(&mut self, now: Duration, reservoir: Option<f64>) {
        let Some(t) = reservoir else { return };
        match self.anchor {
            Some((at, was)) if now.saturating_sub(at) >= Self::WINDOW => {
                let rate = (was - t) / now.saturating_sub(at).as_secs_f64();
                self.rate = (rate > 0.0).then_some(rate);
                self.anchor = Some((now, t));
            }
            Some(_) => {}
            None => self.anchor = Some((now, t)),
        }
    }
}
