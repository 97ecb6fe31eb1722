//! The provided methods of [`OutputPort`]: `set_safe` and `all_safe` on a port that only
//! implements `set` (the sim and any backend without a grouped write).

use coldspray_hal::{HalError, Output, OutputPort};

/// Records every `set`; writes to the outputs in `fails` fail.
struct Port {
    calls: Vec<(Output, bool)>,
    fails: Vec<Output>,
}

impl OutputPort for Port {
    fn set(&mut self, output: Output, on: bool) -> Result<(), HalError> {
        self.calls.push((output, on));
        if self.fails.contains(&output) {
            return Err(HalError::Io {
                signal: output.name().to_owned(),
                detail: "write failed".to_owned(),
            });
        }
        Ok(())
    }
    fn set_pump_duty(&mut self, _: u8) -> Result<(), HalError> {
        Ok(())
    }
    fn commanded(&self, _: Output) -> bool {
        false
    }
}

fn port(fails: &[Output]) -> Port {
    Port {
        calls: Vec::new(),
        fails: fails.to_vec(),
    }
}

#[test]
fn set_safe_turns_off_in_the_given_order_tries_all_and_returns_the_first_error() {
    let mut p = port(&[Output::Pump, Output::ChillerFan]);
    let list = [
        Output::SprayValve,
        Output::Pump,
        Output::Chiller,
        Output::ChillerFan,
    ];
    let err = p.set_safe(&list).unwrap_err();
    assert_eq!(err.to_string(), "pump: write failed");
    assert_eq!(p.calls, list.map(|o| (o, false)).to_vec());
}

#[test]
fn set_safe_of_nothing_writes_nothing() {
    let mut p = port(&[]);
    p.set_safe(&[]).unwrap();
    assert!(p.calls.is_empty());
}

#[test]
fn all_safe_is_set_safe_of_every_output_in_order() {
    let mut p = port(&[Output::Chiller]);
    let err = p.all_safe().unwrap_err();
    assert_eq!(err.to_string(), "chiller: write failed");
    assert_eq!(p.calls, Output::ALL.map(|o| (o, false)).to_vec());
}
