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

    /// Seconds until the reservoir reaches the ready band while precooling (see
    /// [`ReadyEta::seconds_to`]); `None` when not precooling or not (yet) cooling.
    fn ready_in_s(&self, reservoir: Option<f64>) -> Option<f64> {
        if self.state != UnitState::Precooling {
            return None;
        }
        let threshold = self.thermostat.setpoint() + self.thermostat.config().ready_band_c;
        self.ready_eta.seconds_to(reservoir? - threshold)
    }
}

/// The reservoir's readings while precooling, one per [`ReadyEta::STEP`] over the last
/// [`ReadyEta::POINTS`], for the time-to-ready estimate.
#[derive(Debug, Clone, Default)]
pub(super) struct ReadyEta {
    /// (time, °C), oldest first.
    points: std::collections::VecDeque<(Duration, f64)>,
}

impl ReadyEta {
    /// Time between two kept readings.
    pub(super) const STEP: Duration = Duration::from_secs(10);
    /// Readings kept: four minutes, two halves of two minutes to see the cooling slow down.
    pub(super) const POINTS: usize = 25;

    /// Takes the reservoir reading of one precooling step.
    pub(super) fn observe(&mut self, now: Duration, reservoir: Option<f64>) {
        let Some(t) = reservoir else { return };
        let due = self
            .points
            .back()
            .is_none_or(|(at, _)| now.saturating_sub(*at) >= Self::STEP);
        if due {
            if self.points.len() == Self::POINTS {
                self.points.pop_front();
            }
            self.points.push_back((now, t));
        }
    }

    /// Cooling rate between two kept readings, °C/s (positive while cooling).
    fn rate(&self, from: usize, to: usize) -> Option<f64> {
        let ((t0, c0), (t1, c1)) = (self.points.get(from)?, self.points.get(to)?);
        let dt = t1.saturating_sub(*t0).as_secs_f64();
        (dt > 0.0).then(|| (c0 - c1) / dt)
    }

    /// Seconds to cool by `above` °C. Cooling slows as the water nears the chiller's limit
    /// (Newton's law: the rate decays exponentially); once four minutes of readings show the
    /// decay, it is carried on, before that the last rate is (which errs short). `None` before
    /// any cooling is seen, or when the decay would never get there.
    pub(super) fn seconds_to(&self, above: f64) -> Option<f64> {
        let n = self.points.len();
        let last = self.rate(n.checked_sub(2)?.min(n / 2), n - 1)?;
        if last <= 0.0 {
            return None;
        }
        if above <= 0.0 {
            return Some(0.0);
        }
        if n == Self::POINTS {
            let mid = n / 2;
            let (older, newer) = (self.rate(0, mid)?, self.rate(mid, n - 1)?);
            let span = self.points[mid].0.saturating_sub(self.points[0].0);
            if older > newer && newer > 0.0 {
                let k = (older / newer).ln() / span.as_secs_f64();
                let x = k * above / newer;
                return (x < 1.0).then(|| -(1.0 - x).ln() / k);
            }
        }
        Some(above / last)
    }
}
