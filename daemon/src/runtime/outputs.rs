//! The output writer: the one path from a [`StepOutput`] to the output port, for the runtime's
//! control loop and for the lockstep harness. Writes go in the safe order (everything turning
//! off first, valve before pump), and a failed write drives every output safe and raises
//! `output_fault` (docs/REQUIREMENTS.md R4.14).

use crate::control::{Core, StepOutput};
#[cfg(test)]
use coldspray_hal::signal::OutputLevels;
use coldspray_hal::{HalError, Output};
use std::time::Duration;

/// How often every output line is rewritten even when nothing changed, so that a lost GPIO
/// chip is found within this time while the unit holds its outputs (spraying, chilling).
pub const REWRITE_EVERY: Duration = Duration::from_secs(1);

/// Drives a step's outputs and keeps track of whether the outputs can be written; the one
/// path from a [`StepOutput`] to the port, for the runtime and for
/// [`crate::lockstep::Lockstep`].
///
/// A failed write leaves a line at an unknown level: every output is driven safe at once,
/// `output_fault` is raised (the unit goes to `fault`), and each following step rewrites every
/// line until a whole write succeeds, which ends the alarm's condition. Every line is also
/// rewritten each [`REWRITE_EVERY`], which is how a failure is found while nothing changes.
#[derive(Debug, Default)]
pub struct OutputHealth {
    failing: bool,
    /// When every line was last written successfully.
    rewritten_at: Option<Duration>,
}

impl OutputHealth {
    /// Writes what changed from `last` to `out`, or every line while writes
    /// fail and each [`REWRITE_EVERY`]; `safe_going_done` as in [`apply_outputs_marked`],
    /// when anything is written. Tells `core` when writes start or stop failing.
    pub fn drive(
        &mut self,
        port: &mut dyn coldspray_hal::OutputPort,
        core: &mut Core,
        last: &StepOutput,
        out: &StepOutput,
        now: Duration,
        safe_going_done: impl FnOnce(),
    ) {
        let rewrite = self.failing
            || self
                .rewritten_at
                .is_none_or(|t| now.saturating_sub(t) >= REWRITE_EVERY);
        let from = if rewrite {
            every_line_differs(out)
        } else {
            *last
        };
        if from.outputs == out.outputs && from.pump_duty == out.pump_duty {
            return;
        }
        match apply_outputs_marked(port, &from, out, safe_going_done) {
            Err(e) => {
                if let Err(safe) = port.all_safe() {
                    tracing::error!("driving every output safe after a failed write: {safe}");
                }
                let why = format!("cannot set {e}");
                if !self.failing {
                    tracing::error!("output write failed: {why}; every output driven safe");
                }
                self.failing = true;
                core.set_output_fault(Some(&why), now);
            }
            Ok(()) => {
                if rewrite {
                    self.rewritten_at = Some(now);
                }
                if self.failing {
                    tracing::warn!("output writes work again");
                    self.failing = false;
                    core.set_output_fault(None, now);
                }
            }
        }
    }
}

/// A state that differs from `out` on every line and in the pump duty: compared against it,
/// every line is written.
fn every_line_differs(out: &StepOutput) -> StepOutput {
    let mut unknown = *out;
    for o in Output::ALL {
        unknown.outputs[o] = !out.outputs[o];
    }
    unknown.pump_duty = out.pump_duty.wrapping_add(1);
    unknown
}

/// The order outputs are driven in: turning off in this order (valve before pump, so the
/// valve is never open on a stopped pump), turning on in the reverse order.
pub const SAFE_ORDER: [Output; 7] = [
    Output::SprayValve,
    Output::Pump,
    Output::Chiller,
    Output::ChillerFan,
    Output::Buzzer,
    Output::LampReady,
    Output::LampFault,
];

/// Drives the outputs that changed from `last` to `out`, pump duty first so the pump starts at
/// the right strength, calling `safe_going_done` once every output that turns off is off and
/// before any turns on (the moment an E-stop's reaction is complete). Every turn-off is tried;
/// nothing is turned on after a write failed. The first write error is returned. The outputs turning off
/// go in ONE [`coldspray_hal::OutputPort::set_safe`] call, valve first: on Linux that is one
/// `ioctl` per GPIO chip instead of one per output.
pub fn apply_outputs_marked(
    port: &mut dyn coldspray_hal::OutputPort,
    last: &StepOutput,
    out: &StepOutput,
    safe_going_done: impl FnOnce(),
) -> Result<(), HalError> {
    let mut first: Result<(), HalError> = Ok(());
    let mut note = |r: Result<(), HalError>| {
        if let (Err(e), true) = (r, first.is_ok()) {
            first = Err(e);
        }
    };
    if out.pump_duty != last.pump_duty {
        note(port.set_pump_duty(out.pump_duty));
    }
    // Safe-going changes first: off before on, valve before pump when closing.
    // Every output turning off in one call: one hardware write per GPIO chip on Linux.
    let mut offs = [Output::Pump; Output::ALL.len()];
    let mut n = 0;
    for o in SAFE_ORDER {
        let (was, now) = (last.outputs[o], out.outputs[o]);
        if was && !now {
            offs[n] = o;
            n += 1;
        }
    }
    if n > 0 {
        note(port.set_safe(&offs[..n]));
    }
    safe_going_done();
    // Nothing turns on once a write has failed (a pump that did not start must not be
    // followed by an opening valve); the caller then drives everything safe.
    for o in SAFE_ORDER.iter().rev() {
        let (was, now) = (last.outputs[*o], out.outputs[*o]);
        if !was && now {
            let on = port.set(*o, true);
            let failed = on.is_err();
            note(on);
            if failed {
                break;
            }
        }
    }
    first
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::CoreConfig;
    use crate::protocol::Protocol;
    use coldspray_hal::OutputPort;
    use std::sync::{Arc, Mutex};

    #[derive(Debug, Clone, PartialEq)]
    enum Call {
        Set(Output, bool),
        SetSafe(Vec<Output>),
        Duty(u8),
        SafeGoingDone,
    }

    type Log = Arc<Mutex<Vec<Call>>>;

    fn record(log: &Log, call: Call) {
        log.lock().unwrap().push(call);
    }

    /// A port with the default `set_safe` (like the sim), failing every write to `fails`.
    struct OneByOne(Log, Option<Output>);

    impl OutputPort for OneByOne {
        fn set(&mut self, output: Output, on: bool) -> Result<(), HalError> {
            record(&self.0, Call::Set(output, on));
            if self.1 == Some(output) {
                return Err(HalError::Io {
                    signal: output.name().to_owned(),
                    detail: "write failed".to_owned(),
                });
            }
            Ok(())
        }
        fn set_pump_duty(&mut self, percent: u8) -> Result<(), HalError> {
            record(&self.0, Call::Duty(percent));
            Ok(())
        }
        fn commanded(&self, _: Output) -> bool {
            false
        }
    }

    /// A port that writes several outputs at once (overrides `set_safe`), like the Linux one;
    /// every other write as [`OneByOne`] without failures.
    struct Grouped(OneByOne);

    impl Grouped {
        fn new(log: &Log) -> Self {
            Grouped(OneByOne(log.clone(), None))
        }
    }

    impl OutputPort for Grouped {
        fn set(&mut self, output: Output, on: bool) -> Result<(), HalError> {
            self.0.set(output, on)
        }
        fn set_safe(&mut self, outputs: &[Output]) -> Result<(), HalError> {
            record(&self.0 .0, Call::SetSafe(outputs.to_vec()));
            Ok(())
        }
        fn set_pump_duty(&mut self, percent: u8) -> Result<(), HalError> {
            self.0.set_pump_duty(percent)
        }
        fn commanded(&self, output: Output) -> bool {
            self.0.commanded(output)
        }
    }

    fn step(on: &[Output], pump_duty: u8) -> StepOutput {
        let mut outputs = OutputLevels::all_off();
        for o in on {
            outputs[*o] = true;
        }
        StepOutput {
            outputs,
            pump_duty,
            identify: false,
        }
    }

    /// The outputs on while spraying with the ready lamp lit.
    const SPRAYING: [Output; 5] = [
        Output::Pump,
        Output::SprayValve,
        Output::Chiller,
        Output::ChillerFan,
        Output::LampReady,
    ];

    /// The outputs an E-stop from spraying turns off, in the safe order (valve first).
    const ESTOP_OFF: [Output; 5] = [
        Output::SprayValve,
        Output::Pump,
        Output::Chiller,
        Output::ChillerFan,
        Output::LampReady,
    ];

    /// What an E-stop from spraying writes after the outputs going off: the mark, then the
    /// fault lamp and the buzzer on.
    const ESTOP_THEN: [Call; 3] = [
        Call::SafeGoingDone,
        Call::Set(Output::LampFault, true),
        Call::Set(Output::Buzzer, true),
    ];

    /// Spraying with the ready lamp lit, then an E-stop: actuators and lamp off, fault lamp
    /// and buzzer on.
    fn estop_from_spraying() -> (StepOutput, StepOutput) {
        let stopped = step(&[Output::LampFault, Output::Buzzer], 60);
        (step(&SPRAYING, 60), stopped)
    }

    /// The calls a port recorded.
    fn calls(log: &Log) -> Vec<Call> {
        log.lock().unwrap().clone()
    }

    fn apply(
        port: &mut dyn OutputPort,
        log: &Log,
        last: &StepOutput,
        out: &StepOutput,
    ) -> Result<(), HalError> {
        let marker = log.clone();
        apply_outputs_marked(port, last, out, move || {
            record(&marker, Call::SafeGoingDone)
        })
    }

    #[test]
    fn every_output_turning_off_goes_in_one_call_before_the_mark_and_the_ons() {
        let log = Log::default();
        let mut port = Grouped::new(&log);
        let (spraying, stopped) = estop_from_spraying();
        apply(&mut port, &log, &spraying, &stopped).unwrap();
        let mut expected = vec![Call::SetSafe(ESTOP_OFF.to_vec())];
        expected.extend(ESTOP_THEN);
        assert_eq!(calls(&log), expected);
    }

    #[test]
    fn nothing_turning_off_makes_no_safe_call_but_still_marks_before_the_ons() {
        let log = Log::default();
        let mut port = Grouped::new(&log);
        let ready = step(
            &[Output::Chiller, Output::ChillerFan, Output::LampReady],
            100,
        );
        let spraying = step(&SPRAYING, 70);
        apply(&mut port, &log, &ready, &spraying).unwrap();
        assert_eq!(
            calls(&log),
            vec![
                Call::Duty(70),
                Call::SafeGoingDone,
                Call::Set(Output::Pump, true),
                Call::Set(Output::SprayValve, true),
            ]
        );
    }

    #[test]
    fn a_port_with_the_default_set_safe_turns_off_one_by_one_valve_first_and_tries_all() {
        let log = Log::default();
        // The pump's write fails: the chiller, fan and lamp must still go off.
        let mut port = OneByOne(log.clone(), Some(Output::Pump));
        let (spraying, stopped) = estop_from_spraying();
        let written = apply(&mut port, &log, &spraying, &stopped);
        assert!(
            matches!(&written, Err(HalError::Io { signal, .. }) if signal == "pump"),
            "the pump's failure is reported: {written:?}"
        );
        let mut expected: Vec<Call> = ESTOP_OFF.map(|o| Call::Set(o, false)).to_vec();
        expected.extend(ESTOP_THEN);
        assert_eq!(calls(&log), expected);
    }

    #[test]
    fn a_failed_turn_on_stops_the_turn_ons_and_the_health_drives_everything_safe() {
        // The pump's line cannot be set: the valve after it must not open, every output ends
        // commanded off, and the core hears of it (output_fault, unit in fault).
        let log = Log::default();
        let mut port = OneByOne(log.clone(), Some(Output::Pump));
        let mut core = Core::new(
            CoreConfig::default(),
            Protocol::factory_defaults(),
            &[],
            Default::default(),
            1,
            Duration::ZERO,
        );
        let ready = step(&[Output::LampReady], 100);
        let spraying = step(&[Output::LampReady, Output::Pump, Output::SprayValve], 100);
        let mut health = OutputHealth::default();
        let now = Duration::from_millis(10);
        health.drive(&mut port, &mut core, &ready, &spraying, now, || ());
        let calls = calls(&log);
        assert!(
            !calls.contains(&Call::Set(Output::SprayValve, true)),
            "the valve opened after the pump failed: {calls:?}"
        );
        let fail_at = calls
            .iter()
            .position(|c| *c == Call::Set(Output::Pump, true))
            .expect("the pump was tried");
        for o in Output::ALL {
            assert!(
                calls[fail_at..].contains(&Call::Set(o, false)),
                "{o} not driven safe after the failure: {calls:?}"
            );
        }
        let snap = core.snapshot(now);
        assert!(
            snap.has_alarm(crate::model::alarm::AlarmKind::OutputFault),
            "{snap:#?}"
        );
        assert_eq!(snap.state, crate::model::state::UnitState::Fault);
    }
}
