//! The [`crate::port`] traits implemented on the twin.

use super::Shared;
use crate::port::{EdgeSink, HalError, InputPort, OutputPort, SensorPort};
use crate::reading::{ChipIdentity, SensorError};
use crate::signal::{Input, Output, Sensor};
use std::sync::Arc;

/// The twin's outputs.
pub(crate) struct SimOutputs(pub(crate) Arc<Shared>);

impl OutputPort for SimOutputs {
    fn set(&mut self, output: Output, on: bool) -> Result<(), HalError> {
        self.0
            .lock()
            .set_output(output, on)
            .map_err(|detail| HalError::Io {
                signal: output.name().to_string(),
                detail: detail.to_string(),
            })
    }

    fn set_pump_duty(&mut self, percent: u8) -> Result<(), HalError> {
        if !(1..=100).contains(&percent) {
            return Err(HalError::Io {
                signal: Output::Pump.name().to_string(),
                detail: format!("pump duty {percent} % outside 1-100 %"),
            });
        }
        self.0.lock().set_duty(percent);
        Ok(())
    }

    fn commanded(&self, output: Output) -> bool {
        self.0.lock().output(output)
    }
}

/// The twin's inputs.
pub(crate) struct SimInputs(pub(crate) Arc<Shared>);

impl InputPort for SimInputs {
    fn level(&mut self, input: Input) -> Result<bool, HalError> {
        Ok(self.0.lock().level(input))
    }

    fn subscribe(&mut self, sink: EdgeSink) -> Result<(), HalError> {
        self.0.lock().sink = Some(sink);
        Ok(())
    }
}

/// The twin's sensors.
pub(crate) struct SimSensors(pub(crate) Arc<Shared>);

impl SensorPort for SimSensors {
    fn fitted(&self) -> Vec<Sensor> {
        self.0.lock().fitted()
    }

    fn read(&mut self, sensor: Sensor) -> Result<f64, SensorError> {
        self.0.lock().read(sensor)
    }

    fn identify(&mut self, sensor: Sensor) -> Result<ChipIdentity, SensorError> {
        self.0.lock().identify(sensor)
    }
}
