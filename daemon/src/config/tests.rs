//! The configuration's tests.

use super::*;

/// Asserts `text` is refused with the error at `line`, naming `key`.
fn refused_at(text: &str, line: usize, key: &str) {
    let e = Config::parse(text, "c.toml").unwrap_err();
    assert!(
        matches!(&e, ConfigError::Invalid { line: l, key: k, .. } if *l == line && k == key),
        "{e:?}"
    );
}

#[test]
fn empty_file_gives_documented_defaults() {
    let c = Config::parse("", "x.toml").unwrap();
    assert_eq!(c.thermostat.setpoint_c, 4.0);
    assert_eq!(c.safety.max_spray_s, 120.0);
    assert_eq!(c.unit.backend, Backend::Linux);
    assert_eq!(c.state_dir(), PathBuf::from(DEFAULT_STATE_DIR));
}

#[test]
fn unknown_key_names_file_line_and_key() {
    let text = "[unit]\nbackend = \"sim\"\n\n[thermostat]\nsetpiont_c = 5.0\n";
    let e = Config::parse(text, "/etc/coldspray/coldspray.toml").unwrap_err();
    let ConfigError::Invalid {
        line, key, reason, ..
    } = &e
    else {
        panic!("{e:?}");
    };
    assert_eq!(*line, 5);
    assert_eq!(key, "thermostat.setpiont_c");
    assert!(reason.contains("unknown field"), "{reason}");
    assert!(
        e.to_string()
            .starts_with("/etc/coldspray/coldspray.toml:5:"),
        "{e}"
    );
}

#[test]
fn out_of_range_value_names_its_line() {
    let text = "[unit]\nbackend = \"sim\"\n[thermostat]\nhysteresis_c = 1.0\nsetpoint_c = 30\n";
    let e = Config::parse(text, "c.toml").unwrap_err();
    assert_eq!(
        e,
        ConfigError::Invalid {
            file: "c.toml".into(),
            line: 5,
            column: 1,
            key: "thermostat.setpoint_c".into(),
            reason: "30 is outside 2..=15".into(),
        }
    );
}

#[test]
fn wrong_type_and_syntax_errors_are_located() {
    refused_at("[sim]\nspeed = \"fast\"\n", 2, "sim.speed");
    let e = Config::parse("[sim\nspeed = 1\n", "c.toml").unwrap_err();
    assert!(matches!(e, ConfigError::Invalid { line: 1, .. }), "{e:?}");
    refused_at("[unit]\nbackend = \"gpio\"\n", 2, "unit.backend");
}

#[test]
fn the_shipped_reference_wiring_parses() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../packaging/hardware/rpi-rev-a.toml"
    );
    let c = Config::load(Path::new(path)).unwrap();
    assert_eq!(c.hardware.i2c_bus, PathBuf::from("/dev/i2c-1"));
    refused_at("[hardware]\nchip = 5\n", 2, "hardware.chip");
}

#[test]
fn the_shipped_default_config_is_the_defaults() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../packaging/coldspray.toml");
    let shipped = Config::load(Path::new(path)).unwrap();
    assert_eq!(shipped, Config::default());
    // Every commented default in the shipped file parses and equals the built-in default.
    let text = std::fs::read_to_string(path).unwrap();
    let uncommented: String = text
        .lines()
        .map(|l| {
            l.strip_prefix("# ")
                .filter(|r| r.contains(" = "))
                .unwrap_or(l)
        })
        .map(|l| l.split("  #").next().unwrap_or(l).to_string() + "\n")
        .collect();
    let mut explicit = Config::parse(&uncommented, "uncommented").unwrap();
    assert_eq!(explicit.state_dir(), Config::default().state_dir());
    explicit.unit.state_dir = None;
    assert_eq!(explicit, Config::default());
}

fn invalid_key(e: &ConfigError) -> (usize, &str, &str) {
    match e {
        ConfigError::Invalid {
            line, key, reason, ..
        } => (*line, key.as_str(), reason.as_str()),
        other => panic!("not an Invalid error: {other:?}"),
    }
}

#[test]
fn a_malformed_dbus_address_is_refused_at_check_time() {
    let text = "[unit]\nbackend = \"sim\"\n[dbus]\naddress = \"unix:pth=/run/x\"\n";
    let e = Config::parse(text, "c.toml").unwrap_err();
    let (line, key, reason) = invalid_key(&e);
    assert_eq!((line, key), (4, "dbus.address"), "{e}");
    assert!(reason.contains("not a D-Bus address"), "{reason}");
    for bad in ["/run/bus", "", "tcp:host=x,port=notaport"] {
        let text = format!("[dbus]\naddress = \"{bad}\"\n");
        assert!(Config::parse(&text, "c.toml").is_err(), "{bad:?} accepted");
    }
    let ok = "[dbus]\naddress = \"unix:path=/run/coldspray-bus\"\n";
    assert!(Config::parse(ok, "c.toml").is_ok());
}

#[test]
fn an_empty_or_relative_state_dir_is_refused() {
    for (value, says) in [("", "is empty"), ("var/lib/coldspray", "is relative")] {
        let text = format!("[unit]\nbackend = \"sim\"\nstate_dir = \"{value}\"\n");
        let e = Config::parse(&text, "c.toml").unwrap_err();
        let (line, key, reason) = invalid_key(&e);
        assert_eq!((line, key), (3, "unit.state_dir"), "{e}");
        assert!(reason.contains(says), "{reason}");
    }
    let ok = "[unit]\nstate_dir = \"/srv/coldspray\"\n";
    assert!(Config::parse(ok, "c.toml").is_ok());
}

#[test]
fn a_default_protocol_that_is_no_factory_protocol_is_a_located_warning() {
    let text = "[unit]\ndefault_protocol = \"my_hifu\"\narm_at_start = true\n";
    let (_, warnings) = Config::parse_checked(text, "c.toml").unwrap();
    let w = warnings
        .iter()
        .find(|w| w.key == "unit.default_protocol")
        .expect("a warning");
    assert_eq!(w.line, 2);
    assert!(w.message.contains("not a factory protocol"), "{w}");
    assert!(w.message.contains("arm_at_start"), "{w}");
    assert!(w.message.contains("not checkable here"), "{w}");
    // The shipped default is a factory protocol: no warning.
    let (_, warnings) = Config::parse_checked("", "c.toml").unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
}

#[test]
fn metrics_on_every_interface_is_a_warning_not_an_error() {
    for listen in ["0.0.0.0:12653", "[::]:12653"] {
        let text = format!("[metrics]\nlisten = \"{listen}\"\n");
        let (_, warnings) = Config::parse_checked(&text, "c.toml").unwrap();
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert_eq!(
            (warnings[0].line, warnings[0].key.as_str()),
            (2, "metrics.listen")
        );
        assert!(warnings[0].to_string().contains("every network interface"));
    }
    let text = "[metrics]\nenabled = false\nlisten = \"0.0.0.0:12653\"\n";
    assert!(Config::parse_checked(text, "c.toml").unwrap().1.is_empty());
    let text = "[metrics]\nlisten = \"192.168.1.20:12653\"\n";
    assert!(Config::parse_checked(text, "c.toml").unwrap().1.is_empty());
}

#[test]
fn only_a_bounded_regular_file_is_read() {
    let dir = tempfile::tempdir().unwrap();
    // A directory, a character device, a FIFO (no writer: a blocking open would hang).
    let fifo = dir.path().join("fifo.toml");
    // coreutils' `mkfifo`: the crate forbids `unsafe`, and std has no mkfifo.
    let made = std::process::Command::new("mkfifo")
        .args(["-m", "600"])
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success(), "mkfifo {}: {made}", fifo.display());
    for (path, says) in [
        (dir.path().to_path_buf(), "a directory"),
        (PathBuf::from("/dev/zero"), "a character device"),
        (fifo, "a FIFO"),
    ] {
        let e = Config::load(&path).unwrap_err();
        assert!(
            matches!(&e, ConfigError::Refused { reason, .. } if reason.contains(says)),
            "{}: {e}",
            path.display()
        );
        assert!(e
            .to_string()
            .starts_with(&format!("{}: refused", path.display())));
    }
    let big = dir.path().join("big.toml");
    std::fs::write(&big, "#".repeat(MAX_CONFIG_BYTES as usize + 1)).unwrap();
    let e = Config::load(&big).unwrap_err();
    assert!(matches!(e, ConfigError::Refused { .. }), "{e}");
    let ok = dir.path().join("ok.toml");
    std::fs::write(&ok, "#".repeat(MAX_CONFIG_BYTES as usize - 1)).unwrap();
    assert_eq!(Config::load(&ok).unwrap(), Config::default());
}

#[test]
fn missing_file_is_a_read_error() {
    let e = Config::load(Path::new("/nonexistent/coldspray.toml")).unwrap_err();
    assert!(matches!(e, ConfigError::Read { .. }));
    assert!(e
        .to_string()
        .starts_with("/nonexistent/coldspray.toml: cannot read"));
}

#[test]
fn sim_section_selects_the_realistic_twin_and_checks_its_ranges() {
    let c = Config::parse(
        "[sim]\nmodel = \"realistic\"\nchiller = \"tec\"\nspot_cm2 = 10\nir_settle_ms = 300\nmodality = \"subdermal\"\n",
        "c.toml",
    )
    .unwrap();
    let twin = c.sim.clone();
    assert_eq!(twin.model, coldspray_hal::sim::TwinModel::Realistic);
    assert_eq!(twin.chiller, Some(coldspray_hal::sim::ChillerKind::Tec));
    assert_eq!(twin.modality, coldspray_hal::sim::Modality::Subdermal);
    assert_eq!((twin.spot_cm2, twin.ir_settle_ms), (10.0, 300.0));
    assert_eq!(
        Config::parse("", "c.toml").unwrap().sim.model,
        coldspray_hal::sim::TwinModel::Legacy
    );
    let e = Config::parse("[sim]\nspot_cm2 = 0.1\n", "c.toml").unwrap_err();
    assert!(
        matches!(&e, ConfigError::Invalid { key, .. } if key == "sim.spot_cm2"),
        "{e:?}"
    );
}

#[test]
fn an_unknown_sim_key_is_refused() {
    let e = Config::parse("[sim]\nspeed = 2\nspot_cm3 = 10\n", "c.toml").unwrap_err();
    assert!(format!("{e:?}").contains("spot_cm3"), "{e:?}");
    let c = Config::parse("[sim]\nspeed = 2\nambient_c = 25\n", "c.toml").unwrap();
    assert_eq!((c.sim.speed, c.sim.clone().ambient_c), (2.0, 25.0));
}

#[test]
fn the_skin_floor_interlock_takes_the_sensor_the_unit_has_unless_set() {
    use coldspray_hal::drivers::mlx90614::REFERENCE_VIEW;
    use coldspray_hal::SkinSensorView;
    let seen = |text: &str| {
        Config::parse(text, "c.toml")
            .unwrap()
            .core()
            .safety
            .skin_sensor()
    };
    // A board: the reference MLX90614, taken conservatively.
    assert_eq!(seen(""), REFERENCE_VIEW);
    // The simulated unit: the legacy twin's ideal sensor, or the realistic twin's own.
    let sim = "[unit]\nbackend = \"sim\"\n";
    assert_eq!(seen(sim), SkinSensorView::IDEAL);
    let realistic = seen(&format!(
        "{sim}[sim]\nmodel = \"realistic\"\nir_settle_ms = 300\n"
    ));
    assert_eq!(realistic.spot_fill, 0.9);
    assert!((realistic.settle_s - 0.3).abs() < 1e-9, "{realistic:?}");
    // A figure set in the file wins over the unit's; the one left unset is still the unit's.
    assert_eq!(
        seen(&format!("{sim}[safety]\nskin_sensor_fill = 0.8\n")),
        SkinSensorView {
            spot_fill: 0.8,
            settle_s: 0.0
        }
    );
    assert_eq!(
        seen("[safety]\nskin_sensor_settle_s = 0.1\n"),
        SkinSensorView {
            spot_fill: REFERENCE_VIEW.spot_fill,
            settle_s: 0.1
        }
    );
    // A figure set is range-checked.
    refused_at(
        "[safety]\nskin_sensor_settle_s = 3.0\n",
        2,
        "safety.skin_sensor_settle_s",
    );
}
