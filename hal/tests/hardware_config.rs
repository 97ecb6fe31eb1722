//! `[hardware]` parsing: defaults, the reference Pi file, rejection of unknown fields and
//! inconsistent settings.

use coldspray_hal::linux::config::LineBias;
use coldspray_hal::linux::HardwareConfig;
use coldspray_hal::{Input, Output, Sensor};
use serde::Deserialize;
use std::time::Duration;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    hardware: HardwareConfig,
}

fn parse(text: &str) -> Result<HardwareConfig, String> {
    toml::from_str::<File>(text)
        .map(|f| f.hardware)
        .map_err(|e| e.to_string())
}

#[test]
fn empty_section_is_the_reference_board() {
    let cfg = parse("[hardware]\n").unwrap();
    assert_eq!(cfg, HardwareConfig::default());
    cfg.validate().unwrap();
    assert_eq!(cfg.chip, "");
    assert_eq!(cfg.i2c_bus.to_str(), Some("/dev/i2c-1"));
    for o in Output::ALL {
        let l = cfg.lines.output(o).resolved(o.name(), &cfg.chip);
        assert_eq!(l.line, o.name());
        assert!(!l.active_low, "{o} outputs are active high by default");
        assert!(l.debounce.is_zero());
    }
    let estop = cfg.lines.input(Input::Estop).resolved("estop", "");
    assert!(estop.active_low);
    assert_eq!(estop.bias, Some(LineBias::PullDown));
    assert!(
        estop.debounce.is_zero(),
        "the E-stop must not wait for a debounce"
    );
    let trigger = cfg.lines.input(Input::Trigger).resolved("trigger", "");
    assert_eq!(trigger.debounce, Duration::from_millis(20));
    let flow = cfg.lines.input(Input::FlowPulse).resolved("flow_pulse", "");
    assert!(flow.debounce.is_zero());
    let fitted = cfg.sensors.fitted();
    assert_eq!(fitted.len(), 5);
    for (s, a) in fitted {
        assert_eq!(a, s.reference_address());
    }
    assert!(cfg.pump_pwm.is_none());
}

#[test]
fn partial_line_table_keeps_signal_defaults() {
    let cfg =
        parse("[hardware]\nchip = \"pinctrl-rp1\"\n[hardware.lines.estop]\noffset = 6\n").unwrap();
    let estop = cfg.lines.estop.resolved("estop", &cfg.chip);
    assert_eq!(estop.offset, Some(6));
    assert_eq!(estop.chip, "pinctrl-rp1");
    assert!(
        estop.active_low,
        "a partial estop table must not lose active-low"
    );
    assert_eq!(estop.line, "estop");
}

#[test]
fn reference_pi_file_parses_and_validates() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../packaging/hardware/rpi-rev-a.toml"
    ))
    .unwrap();
    let cfg = parse(&text).unwrap();
    cfg.validate().unwrap();
    assert_eq!(cfg.chip, "pinctrl-rp1");
    let pump = cfg.lines.output(Output::Pump).resolved("pump", &cfg.chip);
    assert_eq!((pump.line.as_str(), pump.offset), ("pump", Some(17)));
    let trigger = cfg
        .lines
        .input(Input::Trigger)
        .resolved("trigger", &cfg.chip);
    assert_eq!(trigger.bias, Some(LineBias::PullUp));
    assert_eq!(cfg.sensors.address(Sensor::Skin), 0x5A);
    assert_eq!(cfg.pressure.divider_ratio, 1.5);
    let mut offsets: Vec<u32> = Output::ALL
        .iter()
        .map(|o| cfg.lines.output(*o).offset.unwrap())
        .chain(
            Input::ALL
                .iter()
                .map(|i| cfg.lines.input(*i).offset.unwrap()),
        )
        .collect();
    offsets.sort();
    offsets.dedup();
    assert_eq!(offsets.len(), 12, "two signals share a header pin");
}

#[test]
fn unknown_fields_and_signals_are_rejected() {
    for text in [
        "[hardware]\nchips = \"x\"\n",
        "[hardware.lines.laser]\noffset = 3\n",
        "[hardware.lines.pump]\nactive_lo = true\n",
        "[hardware.sensors.ambient]\naddress = 0x40\n",
        "[hardware.pump_pwm]\nchip = 0\nchannel = 0\nduty = 5\n",
        "[hardware.pump_pwm]\nchip = 0\n",
        "[hardware.lines.trigger]\nbias = \"pull_sideways\"\n",
    ] {
        assert!(parse(text).is_err(), "accepted: {text}");
    }
}

#[test]
fn inconsistent_settings_fail_validation() {
    let bad = [
        "[hardware]\nchip = \"c\"\n[hardware.lines.pump]\ndebounce_ms = 5\n",
        "[hardware.lines.pump]\noffset = 5\n",
        "[hardware.sensors.mist]\naddress = 0x48\n",
        "[hardware.sensors.mist]\naddress = 0x7F\n",
        "[hardware.pressure]\nmin_volts = 4.5\nmax_volts = 0.5\n",
        "[hardware.pressure]\nchannel = 4\n",
        "[hardware.pump_pwm]\nchip = 0\nchannel = 0\nperiod_ns = 0\n",
    ];
    for text in bad {
        let cfg = parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        assert!(cfg.validate().is_err(), "validated: {text}");
    }
    // An unfitted sensor may share an address.
    let ok = parse("[hardware.sensors.mist]\naddress = 0x48\nfitted = false\n").unwrap();
    ok.validate().unwrap();
}
