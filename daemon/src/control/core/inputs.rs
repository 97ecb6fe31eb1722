//! What arrives from the board: sensor samples, chip identities, input levels and edges, and
//! the foot pedal.

use super::Core;
use crate::api::StartOptions;
use crate::model::sensing::SensorSample;
use crate::model::session::{Outcome, StartCause};
use crate::model::state::UnitState;
use coldspray_hal::{ChipIdentity, Input, InputEdge, Sensor, SensorError};
use std::time::Duration;

impl Core {
    /// One sensor reading arrives (raw; calibration is applied here).
    pub fn on_sensor(&mut self, mut sample: SensorSample) {
        if let Ok(v) = &mut sample.value {
            *v += self.calibration[sample.sensor.index()];
        }
        self.sensors.update(&sample);
        self.interlocks.on_sample(&sample);
    }

    /// A chip identity arrives (self-test).
    pub fn on_identity(&mut self, sensor: Sensor, result: Result<ChipIdentity, SensorError>) {
        self.self_test.identities[sensor.index()] = Some(result);
    }

    /// The current level of an input (polled at start, or after lost events).
    pub fn on_level(&mut self, input: Input, level: bool) {
        match input {
            Input::Estop => self.levels.estop = level,
            Input::WaterLow => self.levels.water_low = level,
            Input::LaserEmission => self.levels.laser_on = level,
            // The pedal acts on press edges only; its level carries no state.
            Input::Trigger | Input::FlowPulse => {}
        }
    }

    /// An input edge arrives. Reactions happen in the next [`Core::step`], which the runtime
    /// runs at once.
    pub fn on_edge(&mut self, edge: InputEdge) {
        match edge.input {
            Input::Estop => self.levels.estop = edge.level,
            Input::WaterLow => self.levels.water_low = edge.level,
            Input::FlowPulse => {
                if edge.level {
                    self.flow.pulse(edge.at);
                    self.interlocks.on_flow_pulse(edge.at);
                }
            }
            Input::LaserEmission => {
                self.levels.laser_on = edge.level;
                // A falling edge is the end of emission even if its rising edge was lost (a
                // simulated interrupt path can drop one): cooling must not depend on both.
                if !edge.level {
                    self.laser.ended_at = Some(edge.at);
                    self.laser.above_40 = Duration::ZERO;
                    if self.armed.is_some() && self.session.is_none() {
                        self.laser.pending_autostart = Some(edge.at);
                    }
                }
            }
            Input::Trigger => {
                // Every press edge is a press (the kernel debounces the line), even when the
                // release before it was lost: a lost edge must not swallow the next stop.
                if edge.level {
                    self.on_pedal(edge.at);
                }
            }
        }
    }

    pub(super) fn on_pedal(&mut self, at: Duration) {
        if self.session.is_some() {
            self.end_session(at, Outcome::Stopped, None);
        } else if self.state == UnitState::Ready {
            let name = self
                .armed
                .clone()
                .unwrap_or_else(|| self.default_protocol.clone());
            // A refused pedal press (interlock, unknown protocol) is visible in the snapshot.
            let _ = self.start_session(at, &name, &StartOptions::default(), StartCause::Trigger);
        }
    }
}
