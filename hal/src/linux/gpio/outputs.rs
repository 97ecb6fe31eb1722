//! [`LinuxOutputs`]: the outputs as one line request per GPIO chip, plus the pump PWM.

use super::io;
use super::lookup::{locate_configured, ChipLines, LineLocation};
use super::request::request_outputs;
use crate::linux::config::{HardwareConfig, ResolvedLine};
use crate::linux::pwm::PumpPwm;
use crate::linux::LinuxError;
use crate::port::{HalError, OutputPort};
use crate::signal::Output;
use gpiocdev::line::{Value, Values};
use gpiocdev::Request;
use std::path::PathBuf;

/// The outputs: one line request per GPIO chip holding output lines (on the reference board,
/// one for all seven), plus the optional pump PWM. Outputs on one chip turn off together in
/// one `ioctl` ([`OutputPort::set_safe`]).
#[derive(Debug)]
pub struct LinuxOutputs {
    requests: Vec<Request>,
    /// `(request index, offset)` per output, in [`Output::ALL`] order.
    index: [(usize, u32); Output::ALL.len()],
    commanded: [bool; Output::ALL.len()],
    pwm: Option<PumpPwm>,
    duty: u8,
}

impl LinuxOutputs {
    /// Requests every output at its safe value, one request per chip. Two outputs configured
    /// onto the same line are an error.
    pub fn open(
        config: &HardwareConfig,
        chips: &[ChipLines],
        pwm: Option<PumpPwm>,
    ) -> Result<Self, LinuxError> {
        let mut located: Vec<(Output, ResolvedLine, LineLocation)> =
            Vec::with_capacity(Output::ALL.len());
        for output in Output::ALL {
            let (line, at) =
                locate_configured(config, output.name(), config.lines.output(output), chips)?;
            if let Some((other, _, _)) = located.iter().find(|(_, _, a)| *a == at) {
                return Err(LinuxError::Gpio {
                    signal: output.name().to_owned(),
                    detail: format!(
                        "line {}:{} is already `{other}`'s: two outputs cannot share a line",
                        at.chip.display(),
                        at.offset
                    ),
                });
            }
            located.push((output, line, at));
        }
        // Chips in the order their first output appears in `Output::ALL`.
        let mut chip_paths: Vec<PathBuf> = Vec::new();
        for (_, _, at) in &located {
            if !chip_paths.contains(&at.chip) {
                chip_paths.push(at.chip.clone());
            }
        }
        let mut requests = Vec::with_capacity(chip_paths.len());
        let mut index = [(0usize, 0u32); Output::ALL.len()];
        for (ri, chip) in chip_paths.iter().enumerate() {
            let lines: Vec<(ResolvedLine, LineLocation)> = located
                .iter()
                .filter(|(_, _, at)| &at.chip == chip)
                .map(|(output, line, at)| {
                    index[output.index()] = (ri, at.offset);
                    (line.clone(), at.clone())
                })
                .collect();
            requests.push(request_outputs(&lines, &config.consumer)?);
        }
        Ok(Self {
            requests,
            index,
            commanded: [false; Output::ALL.len()],
            pwm,
            duty: 100,
        })
    }

    fn request(&self, output: Output) -> Result<(&Request, u32), HalError> {
        let (ri, offset) = self.index[output.index()];
        let request = self
            .requests
            .get(ri)
            .ok_or_else(|| io(output, "not requested"))?;
        Ok((request, offset))
    }
}

impl OutputPort for LinuxOutputs {
    fn set(&mut self, output: Output, on: bool) -> Result<(), HalError> {
        let value = if on { Value::Active } else { Value::Inactive };
        if output == Output::Pump && on {
            if let Some(pwm) = self.pwm.as_mut() {
                pwm.set_percent(self.duty).map_err(|e| io(output, e))?;
            }
        }
        let (request, offset) = self.request(output)?;
        request
            .set_value(offset, value)
            .map_err(|e| io(output, e))?;
        self.commanded[output.index()] = on;
        if output == Output::Pump && !on {
            if let Some(pwm) = self.pwm.as_mut() {
                pwm.set_percent(0).map_err(|e| io(output, e))?;
            }
        }
        Ok(())
    }

    /// One `ioctl` per chip: the listed outputs of a chip go off together. Chips are written
    /// in the order their first output appears in `outputs`; the pump's PWM duty goes to 0
    /// once its line is off.
    fn set_safe(&mut self, outputs: &[Output]) -> Result<(), HalError> {
        // The E-stop's path: nothing allocates here but gpiocdev's `Values` (its API), and
        // the error text when a write fails.
        let index = self.index;
        let mut first = Ok(());
        let mut chip_done = [false; Output::ALL.len()]; // by request index (≤ one per output)
        for (i, output) in outputs.iter().enumerate() {
            let ri = index[output.index()].0;
            if chip_done[ri] {
                continue;
            }
            chip_done[ri] = true;
            // This chip's listed outputs (the earlier ones belong to chips already written).
            let members = || {
                outputs[i..]
                    .iter()
                    .copied()
                    .filter(move |o| index[o.index()].0 == ri)
            };
            let mut values = Values::default();
            for o in members() {
                values.set(index[o.index()].1, Value::Inactive);
            }
            let names = || members().map(Output::name).collect::<Vec<_>>().join(", ");
            let written = match self.requests.get(ri) {
                Some(request) => request.set_values(&values).map_err(|e| io(names(), e)),
                None => Err(io(names(), "not requested")),
            };
            let result = written.and_then(|()| {
                for o in members() {
                    self.commanded[o.index()] = false;
                }
                match self.pwm.as_mut() {
                    Some(pwm) if members().any(|o| o == Output::Pump) => {
                        pwm.set_percent(0).map_err(|e| io(Output::Pump, e))
                    }
                    _ => Ok(()),
                }
            });
            if let Err(e) = result {
                if first.is_ok() {
                    first = Err(e);
                }
            }
        }
        first
    }

    /// With `[hardware.pump_pwm]` the duty goes to the PWM channel (at once if the pump
    /// runs). Without it (rev A) the pump line is a plain switch: any duty is full drive,
    /// and this only remembers the value.
    fn set_pump_duty(&mut self, percent: u8) -> Result<(), HalError> {
        self.duty = percent.clamp(1, 100);
        if self.commanded[Output::Pump.index()] {
            if let Some(pwm) = self.pwm.as_mut() {
                pwm.set_percent(self.duty)
                    .map_err(|e| io(Output::Pump, e))?;
            }
        }
        Ok(())
    }

    fn commanded(&self, output: Output) -> bool {
        self.commanded[output.index()]
    }
}
