//! Property-based fuzzing (proptest; cargo-fuzz needs a nightly toolchain, which CI cannot
//! fetch): the config parser, the D-Bus argument validation and the I2C sensor drivers, fed
//! random and mutated input. None may panic; every config error is located; every accepted
//! value is finite and in range; every driver answer is a typed error or a finite reading.
//!
//! Bounded form: proptest's default 256 cases per property; `PROPTEST_CASES=20000` for the
//! full form.

use coldspray_hal::drivers::{SensorBank, SensorLayout};
use coldspray_hal::port::SensorPort;
use coldspray_hal::signal::Sensor;
use coldsprayd::config::{Config, ConfigError};
use coldsprayd::dbus::validate;
use proptest::prelude::*;
use std::collections::HashMap;
use zbus::zvariant::{OwnedValue, Value};

fn shipped_config() -> String {
    std::fs::read_to_string(coldspray_e2e::repo_root().join("packaging/coldspray.toml"))
        .expect("shipped config")
}

fn check_config(text: &str) {
    match Config::parse(text, "fuzz.toml") {
        Ok(_) => {}
        Err(ConfigError::Invalid {
            file,
            line,
            key,
            reason,
            ..
        }) => {
            assert_eq!(file, "fuzz.toml");
            assert!(!reason.is_empty(), "an error without a reason");
            assert!(
                line > 0 || !key.is_empty(),
                "error neither at a line nor a key: {reason}\n---\n{text}"
            );
        }
        Err(e) => panic!("parse gave a non-parse error: {e}"),
    }
}

/// A random variant value: numbers including NaN and infinities, strings, bools, nested.
fn value() -> impl Strategy<Value = OwnedValue> {
    let f = prop_oneof![
        any::<f64>(),
        Just(f64::NAN),
        Just(f64::INFINITY),
        Just(f64::NEG_INFINITY),
        Just(-0.0),
        -1000.0..1000.0f64,
    ];
    prop_oneof![
        f.prop_map(OwnedValue::from),
        any::<i64>().prop_map(OwnedValue::from),
        any::<u32>().prop_map(OwnedValue::from),
        any::<bool>().prop_map(OwnedValue::from),
        any::<u8>().prop_map(OwnedValue::from),
        ".{0,80}".prop_map(|s| OwnedValue::try_from(Value::from(s)).unwrap()),
        prop::sample::select(vec![
            "protect",
            "prepare",
            "pulsed",
            "continuous",
            "aborted",
            "pico",
            ""
        ])
        .prop_map(|s| OwnedValue::try_from(Value::from(s.to_string())).unwrap()),
        prop::collection::vec(any::<u8>(), 0..4)
            .prop_map(|v| OwnedValue::try_from(Value::from(v)).unwrap()),
    ]
}

fn dict() -> impl Strategy<Value = HashMap<String, OwnedValue>> {
    let key = prop_oneof![
        prop::sample::select(vec![
            "spray_s",
            "skin_target_c",
            "pump_percent",
            "from_unix_ms",
            "to_unix_ms",
            "protocol",
            "outcome",
            "limit",
            "name",
            "title",
            "goal",
            "pattern",
            "on_ms",
            "off_ms",
            "skin_floor_c",
            "band_c",
            "hold_s",
        ])
        .prop_map(str::to_string),
        ".{0,20}",
    ];
    prop::collection::hash_map(key, value(), 0..8)
}

/// An I2C bus answering every read with random bytes (PEC included), sometimes failing.
struct NoiseBus {
    bytes: Vec<u8>,
    at: usize,
}

#[derive(Debug)]
struct NoiseError;

impl embedded_hal::i2c::Error for NoiseError {
    fn kind(&self) -> embedded_hal::i2c::ErrorKind {
        embedded_hal::i2c::ErrorKind::NoAcknowledge(embedded_hal::i2c::NoAcknowledgeSource::Address)
    }
}

impl embedded_hal::i2c::ErrorType for NoiseBus {
    type Error = NoiseError;
}

impl embedded_hal::i2c::I2c for NoiseBus {
    fn transaction(
        &mut self,
        _address: u8,
        operations: &mut [embedded_hal::i2c::Operation<'_>],
    ) -> Result<(), NoiseError> {
        for op in operations {
            if let embedded_hal::i2c::Operation::Read(buf) = op {
                for b in buf.iter_mut() {
                    let x = self
                        .bytes
                        .get(self.at % self.bytes.len().max(1))
                        .copied()
                        .unwrap_or(0);
                    self.at += 1;
                    // A byte of 0xEE now and then is a bus error instead.
                    if x == 0xEE && self.at.is_multiple_of(3) {
                        return Err(NoiseError);
                    }
                    *b = x;
                }
            }
        }
        Ok(())
    }
}

struct NoDelay;
impl embedded_hal::delay::DelayNs for NoDelay {
    fn delay_ns(&mut self, _ns: u32) {}
}

proptest! {
    #[test]
    fn config_parser_never_panics_on_random_text(text in "\\PC{0,400}") {
        let _ticket = coldspray_e2e::gate::shared();
        check_config(&text);
    }

    #[test]
    fn config_parser_never_panics_on_mutated_shipped_file(
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..4), 1..6)
    ) {
        let _ticket = coldspray_e2e::gate::shared();
        let mut bytes = shipped_config().into_bytes();
        for (i, b, op) in edits {
            if bytes.is_empty() { break; }
            let at = i.index(bytes.len());
            match op {
                0 => bytes[at] = b,
                1 => { bytes.remove(at); }
                2 => bytes.insert(at, b),
                _ => bytes[at] ^= 1 << (b % 8),
            }
        }
        let text = String::from_utf8_lossy(&bytes).to_string();
        check_config(&text);
    }

    #[test]
    fn config_values_out_of_range_are_refused_with_their_key(
        section in prop::sample::select(vec!["thermostat", "safety", "sim", "session", "unit"]),
        key in prop::sample::select(vec!["setpoint_c", "max_spray_s", "speed", "late_after_s", "step_ms", "hysteresis_c", "stale_after_s"]),
        v in prop_oneof![any::<f64>(), Just(f64::NAN), Just(f64::INFINITY), any::<i64>().prop_map(|x| x as f64)],
    ) {
        let _ticket = coldspray_e2e::gate::shared();
        let lit = if v.is_nan() { "nan".to_string() } else if v.is_infinite() { if v > 0.0 { "inf".into() } else { "-inf".into() } } else { format!("{v:?}") };
        check_config(&format!("[{section}]\n{key} = {lit}\n"));
    }

    #[test]
    fn dbus_dictionaries_are_validated_without_panics(d in dict()) {
        let _ticket = coldspray_e2e::gate::shared();
        if let Ok(o) = validate::start_options(&d) {
            if let Some(s) = o.spray_s { prop_assert!(s.is_finite() && (1.0..=120.0).contains(&s)); }
            if let Some(t) = o.skin_target_c { prop_assert!(t.is_finite()); }
        }
        let _ = validate::session_query(&d);
        if let Ok(p) = validate::protocol_create(&d) {
            prop_assert!(p.spray_s.is_finite() && p.skin_floor_c.is_finite());
            prop_assert!(validate::check_protocol(&p).is_ok());
        }
        let base = coldsprayd::protocol::Protocol::factory_defaults().remove(0);
        if let Ok(p) = validate::protocol_update(&base, &d) {
            prop_assert!(p.spray_s.is_finite() && p.band_c.is_finite() && p.hold_s.is_finite());
        }
    }

    #[test]
    fn dbus_strings_and_numbers_are_validated_without_panics(
        s in "\\PC{0,200}",
        x in prop_oneof![any::<f64>(), Just(f64::NAN), Just(f64::INFINITY), Just(f64::NEG_INFINITY)],
    ) {
        let _ticket = coldspray_e2e::gate::shared();
        let _ = validate::protocol_name(&s);
        let _ = validate::output(&s);
        let _ = validate::sensor(&s);
        let _ = validate::alarm_key(&s);
        let _ = validate::known_protocol(&s, &coldsprayd::protocol::Protocol::factory_defaults());
        if let Ok(v) = validate::range("x", x, 2.0..=15.0) {
            prop_assert!(v.is_finite() && (2.0..=15.0).contains(&v));
        }
    }

    #[test]
    fn sensor_drivers_give_typed_errors_on_noise(bytes in prop::collection::vec(any::<u8>(), 1..64)) {
        let _ticket = coldspray_e2e::gate::shared();
        let mut bank = SensorBank::new(NoiseBus { bytes, at: 0 }, NoDelay, SensorLayout::default());
        for s in Sensor::ALL {
            if let Ok(v) = bank.read(s) {
                prop_assert!(v.is_finite(), "{s:?} read {v}");
            }
            let _ = bank.identify(s);
        }
    }
}
