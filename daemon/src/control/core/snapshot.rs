//! The unit as readers see it: the snapshot the runtime publishes after every step.

use super::tasks::{Task, Timed};
use super::Core;
use crate::api::{MaintenanceActivity, SessionProgress, Snapshot};
use crate::limits::secs;
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
            session: self.session.as_ref().map(|s| SessionProgress {
                start: s.start.clone(),
                elapsed_s: s.elapsed(now).as_secs_f64(),
                remaining_s: s.remaining_s(now),
                in_band: s.in_band_since.is_some(),
                peak_skin_c: s.peak_skin_c,
                min_skin_c: s.min_skin_c,
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
        }
    }
}
