//! The parts of the Linux backend that run without GPIO hardware: line lookup, edge
//! conversion, the SMBus adapter's refusals and errors, the sysfs PWM writer, error texts.
//! The line requests themselves are exercised against gpio-sim in the VM harness.

use coldspray_hal::linux::config::{HardwareConfig, LineConfig, PumpPwmConfig};
use coldspray_hal::linux::gpio::{edges, locate, to_edge, ChipLines, LineLocation};
use coldspray_hal::linux::i2c::{errno_kind, SmbusI2c};
use coldspray_hal::linux::pwm::PumpPwm;
use coldspray_hal::linux::LinuxError;
use coldspray_hal::{HalError, Input};
use embedded_hal::i2c::{ErrorKind, I2c, NoAcknowledgeSource, Operation};
use gpiocdev::line::{EdgeDetection, EdgeEvent, EdgeKind};
use std::path::PathBuf;
use std::time::Duration;

fn chip(n: u32, label: &str, names: &[&str]) -> ChipLines {
    ChipLines {
        path: PathBuf::from(format!("/dev/gpiochip{n}")),
        name: format!("gpiochip{n}"),
        label: label.to_owned(),
        lines: names.iter().map(|s| s.to_string()).collect(),
    }
}

/// A Pi 5 as the kernel shows it: the header chip (stock names GPIO0..GPIO27) and others.
fn pi5(named: bool) -> Vec<ChipLines> {
    let header: Vec<String> = (0..54)
        .map(|i| match (named, i) {
            (true, 17) => "pump".to_owned(),
            (true, 6) => "estop".to_owned(),
            (_, i) if i < 28 => format!("GPIO{i}"),
            _ => String::new(),
        })
        .collect();
    let header: Vec<&str> = header.iter().map(String::as_str).collect();
    vec![
        chip(
            0,
            "gpio-brcmstb@107d508500",
            &["RP1_SDA", "RP1_SCL", "", ""],
        ),
        chip(4, "pinctrl-rp1", &header),
        chip(10, "gpio-brcmstb@107d517c00", &["", "", ""]),
    ]
}

fn line(signal: &'static str, cfg: &str, chip: &str) -> coldspray_hal::linux::config::ResolvedLine {
    let lc: LineConfig = toml::from_str(cfg).unwrap();
    lc.resolved(signal, chip)
}

fn at(n: u32, offset: u32) -> LineLocation {
    LineLocation {
        chip: PathBuf::from(format!("/dev/gpiochip{n}")),
        offset,
    }
}

#[test]
fn named_lines_are_found_on_any_chip() {
    let chips = pi5(true);
    assert_eq!(locate(&line("pump", "", ""), &chips).unwrap(), at(4, 17));
    // the name wins over a (different) offset
    assert_eq!(
        locate(&line("estop", "offset = 9", "pinctrl-rp1"), &chips).unwrap(),
        at(4, 6)
    );
    // a custom line name
    assert_eq!(
        locate(&line("chiller", "line = \"GPIO22\"", ""), &chips).unwrap(),
        at(4, 22)
    );
}

#[test]
fn offset_fallback_needs_one_chip_and_a_valid_offset() {
    let chips = pi5(false);
    for spec in ["pinctrl-rp1", "gpiochip4", "/dev/gpiochip4"] {
        assert_eq!(
            locate(&line("pump", "offset = 17", spec), &chips).unwrap(),
            at(4, 17),
            "{spec}"
        );
    }
    let err = locate(&line("pump", "offset = 60", "pinctrl-rp1"), &chips).unwrap_err();
    assert!(matches!(err, LinuxError::LineNotFound { .. }));
    assert!(err.to_string().contains("beyond the 54 lines"), "{err}");
    // no name, no offset
    let err = locate(&line("pump", "", "pinctrl-rp1"), &chips).unwrap_err();
    assert!(err.to_string().contains("no line named `pump`"), "{err}");
    assert!(err.to_string().contains("pinctrl-rp1"), "{err}");
}

#[test]
fn wrong_chip_and_ambiguous_names_are_errors() {
    let chips = pi5(true);
    let err = locate(&line("pump", "", "pinctrl-bcm2711"), &chips).unwrap_err();
    match &err {
        LinuxError::ChipNotFound { chip, present, .. } => {
            assert_eq!(chip, "pinctrl-bcm2711");
            assert!(
                present.contains("/dev/gpiochip4 [pinctrl-rp1]"),
                "{present}"
            );
        }
        other => panic!("{other:?}"),
    }
    let mut dup = pi5(true);
    dup.push(chip(11, "gpio-sim", &["pump"]));
    let err = locate(&line("pump", "", ""), &dup).unwrap_err();
    assert!(matches!(err, LinuxError::AmbiguousLine { .. }), "{err:?}");
    assert!(err.to_string().contains("/dev/gpiochip11:0"), "{err}");
    // restricting the chip resolves it
    assert_eq!(
        locate(&line("pump", "", "gpio-sim"), &dup).unwrap(),
        at(11, 0)
    );
}

#[test]
fn edge_events_become_logical_input_edges() {
    let lines = [(Input::Estop, 6), (Input::FlowPulse, 26)];
    let ev = EdgeEvent {
        timestamp_ns: 12_345_678_901,
        kind: EdgeKind::Rising,
        offset: 6,
        seqno: 7,
        line_seqno: 3,
    };
    let edge = to_edge(&lines, &ev).unwrap();
    assert_eq!(edge.input, Input::Estop);
    assert!(edge.level);
    assert_eq!(edge.at, Duration::new(12, 345_678_901));
    assert_eq!(edge.seqno, 3, "per-line sequence number");
    let ev = EdgeEvent {
        kind: EdgeKind::Falling,
        offset: 26,
        ..ev
    };
    assert!(!to_edge(&lines, &ev).unwrap().level);
    let ev = EdgeEvent { offset: 5, ..ev };
    assert!(to_edge(&lines, &ev).is_none());
    assert_eq!(edges(Input::FlowPulse), EdgeDetection::RisingEdge);
    assert_eq!(edges(Input::Trigger), EdgeDetection::BothEdges);
}

#[test]
fn smbus_adapter_refuses_shapes_without_an_smbus_equivalent() {
    let mut bus = SmbusI2c::new("/dev/null-no-such-i2c");
    let mut buf = [0u8; 2];
    let e = bus.read(0x48, &mut buf).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Other);
    assert!(e.detail.contains("R2"), "{}", e.detail);
    let e = bus.write(0x48, &[1, 2, 3, 4]).unwrap_err();
    assert!(e.detail.contains("no SMBus equivalent"), "{}", e.detail);
    let mut big = [0u8; 33];
    let e = bus.write_read(0x48, &[0], &mut big).unwrap_err();
    assert!(e.detail.contains("write 1 + read 33"), "{}", e.detail);
    let e = bus
        .transaction(
            0x48,
            &mut [Operation::Write(&[0, 1]), Operation::Write(&[2])],
        )
        .unwrap_err();
    assert!(e.detail.contains("W2+W1"), "{}", e.detail);
    // a supported shape reaches the device and fails there, naming bus and address
    let e = bus.write_read(0x48, &[0], &mut buf).unwrap_err();
    assert!(
        e.detail.contains("/dev/null-no-such-i2c addr 0x48"),
        "{}",
        e.detail
    );
    assert!(e.detail.contains("no such bus"), "{}", e.detail);
}

#[test]
fn smbus_errno_classification() {
    let nack = ErrorKind::NoAcknowledge(NoAcknowledgeSource::Address);
    assert_eq!(errno_kind(libc::ENXIO), nack);
    assert_eq!(errno_kind(libc::EREMOTEIO), nack);
    assert_eq!(
        errno_kind(libc::ENODEV),
        nack,
        "i2c-stub: no chip at the address"
    );
    assert_eq!(errno_kind(libc::EAGAIN), ErrorKind::ArbitrationLoss);
    assert_eq!(errno_kind(libc::EOPNOTSUPP), ErrorKind::Other);
}

fn fake_sysfs(name: &str, exported: bool) -> PathBuf {
    let root = std::env::temp_dir().join(format!("coldspray-pwm-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(root.join("pwmchip0")).unwrap();
    if exported {
        std::fs::create_dir_all(root.join("pwmchip0/pwm2")).unwrap();
    }
    root
}

fn read(root: &std::path::Path, file: &str) -> String {
    std::fs::read_to_string(root.join("pwmchip0/pwm2").join(file)).unwrap()
}

#[test]
fn pump_pwm_writes_period_duty_and_enable() {
    let root = fake_sysfs("open", true);
    let cfg = PumpPwmConfig {
        chip: 0,
        channel: 2,
        period_ns: 50_000,
    };
    let mut pwm = PumpPwm::open(&root, &cfg).unwrap();
    assert_eq!(read(&root, "period"), "50000");
    assert_eq!(read(&root, "duty_cycle"), "0");
    assert_eq!(read(&root, "enable"), "1");
    pwm.set_percent(40).unwrap();
    assert_eq!(read(&root, "duty_cycle"), "20000");
    pwm.set_percent(250).unwrap();
    assert_eq!(read(&root, "duty_cycle"), "50000");
    PumpPwm::force_off(&root, &cfg).unwrap();
    assert_eq!(read(&root, "duty_cycle"), "0");
    assert_eq!(read(&root, "enable"), "0");
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn pump_pwm_exports_and_reports_a_missing_chip() {
    let root = fake_sysfs("export", false);
    let cfg = PumpPwmConfig {
        chip: 0,
        channel: 2,
        period_ns: 50_000,
    };
    // No kernel behind the fake sysfs: the export is written, the channel never appears.
    let err = PumpPwm::open(&root, &cfg).unwrap_err();
    assert!(matches!(err, LinuxError::Pwm { .. }), "{err:?}");
    assert_eq!(
        std::fs::read_to_string(root.join("pwmchip0/export")).unwrap(),
        "2"
    );
    // Never exported: nothing to turn off.
    PumpPwm::force_off(&root, &cfg).unwrap();
    let missing = PumpPwmConfig { chip: 3, ..cfg };
    let err = PumpPwm::open(&root, &missing).unwrap_err();
    assert!(err.to_string().contains("pwmchip3"), "{err}");
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn errors_say_which_device_and_group() {
    let e = LinuxError::PermissionDenied {
        device: "/dev/gpiochip4".to_owned(),
        group: "gpio",
    };
    assert_eq!(
        e.to_string(),
        "permission denied on /dev/gpiochip4: run as a member of group `gpio` (or as root)"
    );
    let hal: HalError = e.into();
    assert!(matches!(hal, HalError::PermissionDenied { ref hint, .. } if hint.contains("gpio")));
    let e = LinuxError::SensorMissing {
        sensor: coldspray_hal::Sensor::Skin,
        part: "MLX90614",
        address: 0x5A,
        bus: "/dev/i2c-1".to_owned(),
    };
    assert_eq!(
        e.to_string(),
        "no MLX90614 (skin) answers at 0x5a on /dev/i2c-1: check wiring and address, or set [hardware.sensors.skin] fitted = false"
    );
}

#[test]
fn open_without_gpio_chips_says_so() {
    let any_chip = std::fs::read_dir("/dev")
        .map(|d| {
            d.flatten()
                .any(|e| e.file_name().to_string_lossy().starts_with("gpiochip"))
        })
        .unwrap_or(false);
    if any_chip {
        eprintln!("this machine has GPIO chips; the no-chip path is not testable here");
        return;
    }
    let cfg = HardwareConfig::default();
    assert_eq!(
        coldspray_hal::linux::open(&cfg).unwrap_err(),
        LinuxError::NoGpioChips
    );
    assert_eq!(
        coldspray_hal::linux::force_safe(&cfg).unwrap_err(),
        LinuxError::NoGpioChips
    );
}

/// Every output line named on one "chip" whose device is not a GPIO chip (`/dev/null`): the
/// grouped request fails without a kernel GPIO driver, as a busy or missing line would.
fn null_chip() -> Vec<ChipLines> {
    vec![ChipLines {
        path: PathBuf::from("/dev/null"),
        name: "gpiochip0".to_owned(),
        label: "not-a-gpio-chip".to_owned(),
        lines: [
            "spray_valve",
            "chiller",
            "chiller_fan",
            "pump",
            "buzzer",
            "lamp_ready",
            "lamp_fault",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect(),
    }]
}

#[test]
fn a_failed_output_request_names_the_line_device_and_offset() {
    let cfg = HardwareConfig::default();
    let err = coldspray_hal::linux::LinuxOutputs::open(&cfg, &null_chip(), None).unwrap_err();
    // The lines were retried one by one: the error is the first line's own request (pump,
    // the first output, at offset 3), not the group's.
    match &err {
        LinuxError::Gpio { signal, detail } => {
            assert_eq!(signal, "pump");
            assert!(
                detail.starts_with("request of /dev/null:3 failed: "),
                "{detail}"
            );
            assert!(detail.contains("not a GPIO"), "{detail}");
        }
        other => panic!("unexpected error {other:?}"),
    }
}

#[test]
fn two_outputs_configured_onto_one_line_are_refused() {
    let cfg: HardwareConfig = toml::from_str(
        r#"
        [lines.lamp_fault]
        line = "lamp_ready"
        "#,
    )
    .unwrap();
    let err = coldspray_hal::linux::LinuxOutputs::open(&cfg, &null_chip(), None).unwrap_err();
    assert_eq!(
        err,
        LinuxError::Gpio {
            signal: "lamp_fault".to_owned(),
            detail: "line /dev/null:5 is already `lamp_ready`'s: two outputs cannot share a line"
                .to_owned(),
        }
    );
}
