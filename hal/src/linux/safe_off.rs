//! Safe-off: drive every output line to its safe (inactive) value, with no daemon state.
//!
//! This is what the unit's `ExecStopPost=` helper runs after any exit of the daemon (clean
//! stop, crash, SIGKILL, watchdog abort). It must reach every line it can, whatever else is
//! wrong: a [`SafeOffPlan`] says where to look for each output, and may mark an output for
//! the reference fallback (its configuration could not be read); [`force_safe_plan`] then
//! tries every output, on every GPIO chip it can read, and reports each one it could not
//! drive instead of stopping at the first.

use super::config::{HardwareConfig, LineConfig, PumpPwmConfig, ResolvedLine};
use super::gpio::{self, ChipLines, LineLocation};
use super::pwm::{PumpPwm, SYSFS_PWM};
use super::LinuxError;
use crate::signal::Output;
use std::path::Path;

/// Labels of the Raspberry Pi header GPIO chips the rev A reference wiring is on (Pi 5,
/// Pi 4). The reference offsets are used only on one of these.
pub const REFERENCE_CHIP_LABELS: [&str; 2] = ["pinctrl-rp1", "pinctrl-bcm2711"];

/// The rev A reference wiring of an output: its line offset (= BCM GPIO number) on the
/// Raspberry Pi header chip (see `packaging/hardware/rpi-rev-a.toml`).
pub fn reference_offset(output: Output) -> u32 {
    match output {
        Output::Pump => 17,
        Output::SprayValve => 27,
        Output::Chiller => 22,
        Output::ChillerFan => 23,
        Output::Buzzer => 24,
        Output::LampReady => 25,
        Output::LampFault => 5,
    }
}

/// Where safe-off looks for one output's line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputPlan {
    /// The output.
    pub output: Output,
    /// The line as configured (what could be read of it; defaults for the rest).
    pub line: ResolvedLine,
    /// Also try the reference wiring if `line` is not found: a line named after the signal
    /// on any chip, then the rev A offset on the Raspberry Pi header chip. Set when part of
    /// the configuration for this output could not be read.
    pub reference_fallback: bool,
}

/// Everything safe-off needs: one [`OutputPlan`] per output, the consumer label, the pump
/// PWM channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SafeOffPlan {
    /// One entry per output, in [`Output::ALL`] order.
    pub outputs: Vec<OutputPlan>,
    /// Consumer label of the (momentary) line requests.
    pub consumer: String,
    /// The pump PWM channel: `Ok(None)` when there is none, `Err(why)` when its
    /// configuration could not be read (then it cannot be zeroed, which is reported).
    pub pump_pwm: Result<Option<PumpPwmConfig>, String>,
}

impl SafeOffPlan {
    /// The plan of a valid `[hardware]` section: every line as configured, no fallback.
    pub fn from_config(config: &HardwareConfig) -> Self {
        SafeOffPlan {
            outputs: Output::ALL
                .into_iter()
                .map(|output| OutputPlan {
                    output,
                    line: config
                        .lines
                        .output(output)
                        .resolved(output.name(), &config.chip),
                    reference_fallback: false,
                })
                .collect(),
            consumer: config.consumer.clone(),
            pump_pwm: Ok(config.pump_pwm.clone()),
        }
    }

    /// The plan when nothing of `[hardware]` could be read: the reference wiring for every
    /// output, and the pump PWM unknown (`why`).
    pub fn reference(why: &str) -> Self {
        let mut plan = SafeOffPlan::from_config(&HardwareConfig::default());
        for o in &mut plan.outputs {
            o.line = LineConfig::default().resolved(o.output.name(), "");
            o.reference_fallback = true;
        }
        plan.pump_pwm = Err(why.to_owned());
        plan
    }
}

/// What happened to one output.
#[derive(Debug, Clone, PartialEq)]
pub struct OutputOutcome {
    /// The output.
    pub output: Output,
    /// Driven off at this line (and how it was found), or why not.
    pub result: Result<(LineLocation, &'static str), LinuxError>,
}

/// What [`force_safe_plan`] did.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SafeOffReport {
    /// One entry per output of the plan.
    pub outputs: Vec<OutputOutcome>,
    /// GPIO chips that could not be read (their lines could not be searched).
    pub unreadable_chips: Vec<LinuxError>,
    /// The pump PWM: `None` when there is none, else whether it was zeroed and disabled.
    pub pump_pwm: Option<Result<(), LinuxError>>,
    /// The number of GPIO chips found (0: none at all).
    pub chips_found: usize,
}

impl SafeOffReport {
    /// One line per thing that could not be done: each output not driven off (naming it),
    /// each unreadable chip, a PWM not zeroed. Empty when everything was driven off.
    pub fn failures(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .outputs
            .iter()
            .filter_map(|o| match &o.result {
                Ok(_) => None,
                Err(e) => Some(format!("{} NOT driven off: {e}", o.output)),
            })
            .collect();
        out.extend(
            self.unreadable_chips
                .iter()
                .map(|e| format!("GPIO chip not searched: {e}")),
        );
        if let Some(Err(e)) = &self.pump_pwm {
            out.push(format!("pump PWM NOT zeroed: {e}"));
        }
        out
    }

    /// One line per output driven off: which line, found how.
    pub fn successes(&self) -> Vec<String> {
        self.outputs
            .iter()
            .filter_map(|o| match &o.result {
                Ok((at, how)) => Some(format!(
                    "{} driven off at {}:{} ({how})",
                    o.output,
                    at.chip.display(),
                    at.offset
                )),
                Err(_) => None,
            })
            .collect()
    }

    /// The first error, if any (for callers that want one).
    pub fn first_error(&self) -> Option<LinuxError> {
        self.outputs
            .iter()
            .find_map(|o| o.result.as_ref().err().cloned())
            .or_else(|| self.unreadable_chips.first().cloned())
            .or_else(|| self.pump_pwm.clone().and_then(Result::err))
    }
}

/// Finds an output's line by the plan: as configured first, then (if the plan allows it)
/// by the reference wiring. Returns the location and how it was found.
pub fn locate_planned(
    plan: &OutputPlan,
    chips: &[ChipLines],
) -> Result<(LineLocation, &'static str), LinuxError> {
    let configured = gpio::locate(&plan.line, chips);
    let first_error = match configured {
        Ok(at) => return Ok((at, "as configured")),
        Err(e) => e,
    };
    // Two lines carry the configured name: never guess, whatever the plan allows.
    if !plan.reference_fallback || matches!(first_error, LinuxError::AmbiguousLine { .. }) {
        return Err(first_error);
    }
    let by_name = LineConfig::default().resolved(plan.output.name(), "");
    if by_name != plan.line {
        match gpio::locate(&by_name, chips) {
            Ok(at) => return Ok((at, "reference line name")),
            // Two lines of that name: never guess.
            Err(e @ LinuxError::AmbiguousLine { .. }) => return Err(e),
            Err(_) => {}
        }
    }
    let header: Vec<&ChipLines> = chips
        .iter()
        .filter(|c| REFERENCE_CHIP_LABELS.contains(&c.label.as_str()))
        .collect();
    let offset = reference_offset(plan.output);
    match header.as_slice() {
        [chip] if (offset as usize) < chip.lines.len() => Ok((
            LineLocation {
                chip: chip.path.clone(),
                offset,
            },
            "rev A reference offset",
        )),
        _ => Err(LinuxError::LineNotFound {
            signal: plan.output.name().to_owned(),
            detail: format!(
                "{first_error}; no line named `{}` and no single Raspberry Pi header chip ({}) for the rev A offset {offset}",
                plan.output.name(),
                REFERENCE_CHIP_LABELS.join(" / ")
            ),
        }),
    }
}

/// Drives every output of the plan to its safe value and releases it, on every chip that
/// can be read; zeroes and disables the pump PWM. Never stops at the first failure.
pub fn force_safe_plan(plan: &SafeOffPlan) -> SafeOffReport {
    let mut report = SafeOffReport::default();
    let chips: Vec<ChipLines> = match gpio::scan_each_chip() {
        Ok(each) => each
            .into_iter()
            .filter_map(|c| c.map_err(|e| report.unreadable_chips.push(e)).ok())
            .collect(),
        Err(e) => {
            report.outputs = plan
                .outputs
                .iter()
                .map(|o| OutputOutcome {
                    output: o.output,
                    result: Err(e.clone()),
                })
                .collect();
            Vec::new()
        }
    };
    report.chips_found = chips.len() + report.unreadable_chips.len();
    if report.outputs.is_empty() {
        for o in &plan.outputs {
            let result = locate_planned(o, &chips).and_then(|(at, how)| {
                // Requested at the safe level, then released at once when dropped. Found by
                // the reference wiring, the line keeps the polarity the plan could read (the
                // reference polarity, active high, where it could not).
                gpio::request_output(&o.line, &at, &plan.consumer).map(|_| (at, how))
            });
            report.outputs.push(OutputOutcome {
                output: o.output,
                result,
            });
        }
    }
    report.pump_pwm = match &plan.pump_pwm {
        Ok(None) => None,
        Ok(Some(p)) => Some(PumpPwm::force_off(Path::new(SYSFS_PWM), p)),
        Err(why) => Some(Err(LinuxError::Config(format!(
            "[hardware.pump_pwm] unreadable ({why})"
        )))),
    };
    report
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn chip(n: u32, label: &str, lines: Vec<String>) -> ChipLines {
        ChipLines {
            path: PathBuf::from(format!("/dev/gpiochip{n}")),
            name: format!("gpiochip{n}"),
            label: label.to_owned(),
            lines,
        }
    }

    /// A stock Raspberry Pi 5: header lines named GPIO0..GPIO27, nothing named `pump`.
    fn stock_pi5() -> Vec<ChipLines> {
        vec![
            chip(0, "gpio-brcmstb@107d508500", vec![String::new(); 4]),
            chip(
                4,
                "pinctrl-rp1",
                (0..54).map(|i| format!("GPIO{i}")).collect(),
            ),
        ]
    }

    #[test]
    fn the_reference_offsets_are_the_shipped_rev_a_wiring() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../packaging/hardware/rpi-rev-a.toml"
        );
        let text = std::fs::read_to_string(path).unwrap();
        let table: toml::Table = toml::from_str(&text).unwrap();
        let hw: HardwareConfig = table["hardware"].clone().try_into().unwrap();
        assert!(REFERENCE_CHIP_LABELS.contains(&hw.chip.as_str()));
        for output in Output::ALL {
            let line = hw.lines.output(output).resolved(output.name(), &hw.chip);
            assert_eq!(line.offset, Some(reference_offset(output)), "{output}");
            assert!(!line.active_low, "{output}: rev A outputs are active high");
        }
    }

    #[test]
    fn a_valid_plan_uses_the_configured_line_only() {
        let plan = SafeOffPlan::from_config(&HardwareConfig::default());
        // Default lines are looked up by name; a stock Pi names none `pump`: no guessing.
        let e = locate_planned(&plan.outputs[0], &stock_pi5()).unwrap_err();
        assert!(matches!(e, LinuxError::LineNotFound { .. }), "{e:?}");
    }

    #[test]
    fn the_reference_plan_finds_rev_a_offsets_on_a_stock_pi() {
        let plan = SafeOffPlan::reference("file unreadable");
        let chips = stock_pi5();
        for o in &plan.outputs {
            let (at, how) = locate_planned(o, &chips).unwrap();
            assert_eq!(at.chip, PathBuf::from("/dev/gpiochip4"));
            assert_eq!(at.offset, reference_offset(o.output));
            assert_eq!(how, "rev A reference offset");
        }
        assert!(plan.pump_pwm.is_err());
    }

    #[test]
    fn the_reference_plan_prefers_named_lines_and_never_guesses() {
        let plan = SafeOffPlan::reference("x");
        let mut named: Vec<String> = (0..54).map(|i| format!("GPIO{i}")).collect();
        named[3] = "pump".into();
        let chips = vec![chip(0, "gpio-sim", named.clone())];
        let (at, how) = locate_planned(&plan.outputs[0], &chips).unwrap();
        assert_eq!((at.offset, how), (3, "as configured"));
        // The valve is neither named nor on a Pi header chip: not driven, and said why.
        let e = locate_planned(&plan.outputs[1], &chips).unwrap_err();
        assert!(e.to_string().contains("rev A offset 27"), "{e}");
        // Two chips carry `pump`: refuse.
        let two = vec![chip(0, "a", named.clone()), chip(1, "b", named)];
        assert!(matches!(
            locate_planned(&plan.outputs[0], &two),
            Err(LinuxError::AmbiguousLine { .. })
        ));
    }

    #[test]
    fn a_broken_entry_falls_back_after_its_configured_lookup() {
        // Configured on a chip that is not there (e.g. a mistyped label), fallback allowed.
        let mut plan = SafeOffPlan::reference("x");
        plan.outputs[0].line.chip = "pinctrl-typo".into();
        let (at, how) = locate_planned(&plan.outputs[0], &stock_pi5()).unwrap();
        assert_eq!((at.offset, how), (17, "rev A reference offset"));
    }

    #[test]
    fn the_report_names_every_output_it_could_not_drive() {
        let report = SafeOffReport {
            outputs: Output::ALL
                .into_iter()
                .map(|output| OutputOutcome {
                    output,
                    result: Err(LinuxError::NoGpioChips),
                })
                .collect(),
            pump_pwm: Some(Err(LinuxError::Config("unreadable".into()))),
            ..SafeOffReport::default()
        };
        let failures = report.failures();
        assert_eq!(failures.len(), Output::ALL.len() + 1);
        for output in Output::ALL {
            assert!(
                failures
                    .iter()
                    .any(|f| f.starts_with(&format!("{output} NOT driven off"))),
                "{output}: {failures:?}"
            );
        }
        assert_eq!(report.first_error(), Some(LinuxError::NoGpioChips));
    }
}
