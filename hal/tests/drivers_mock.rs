//! Each driver against an embedded-hal-mock transaction script: the exact bytes on the bus,
//! decoding, and NACK / PEC / out-of-range / wrong-chip as typed errors.

use coldspray_hal::drivers::{ads1115, mcp9808, mlx90614, tmp117};
use coldspray_hal::drivers::{Ads1115, Mcp9808, Mlx90614, Tmp117};
use coldspray_hal::SensorError;
use embedded_hal::delay::DelayNs;
use embedded_hal::i2c::{ErrorKind, NoAcknowledgeSource};
use embedded_hal_mock::eh1::i2c::{Mock, Transaction as T};

const NACK: ErrorKind = ErrorKind::NoAcknowledge(NoAcknowledgeSource::Address);

/// Records how long a driver asked to wait.
#[derive(Default)]
struct CountingDelay {
    total_ns: u64,
}

impl DelayNs for CountingDelay {
    fn delay_ns(&mut self, ns: u32) {
        self.total_ns += u64::from(ns);
    }
}

fn run<R>(script: &[T], f: impl FnOnce(&mut Mock) -> R) -> R {
    let mut bus = Mock::new(script);
    let r = f(&mut bus);
    bus.done();
    r
}

#[test]
fn tmp117_reads_temperature_and_id() {
    // 25 °C = 3200 LSB = 0x0C80; -10 °C = -1280 = 0xFB00.
    let script = [
        T::write_read(0x48, vec![0x0F], vec![0x01, 0x17]),
        T::write_read(0x48, vec![0x00], vec![0x0C, 0x80]),
        T::write_read(0x48, vec![0x00], vec![0xFB, 0x00]),
    ];
    run(&script, |bus| {
        let mut chip = Tmp117::new(bus, 0x48);
        assert_eq!(chip.identify(), Ok(0x0117));
        assert_eq!(chip.celsius(), Ok(25.0));
        assert_eq!(chip.celsius(), Ok(-10.0));
    });
}

#[test]
fn tmp117_errors_are_typed() {
    let script = [
        T::write_read(0x48, vec![0x0F], vec![0x04, 0x00]).with_error(NACK),
        T::write_read(0x48, vec![0x0F], vec![0x04, 0x00]),
        T::write_read(0x48, vec![0x00], vec![0x80, 0x00]),
        T::write_read(0x48, vec![0x00], vec![0x7F, 0xFF]),
        T::write_read(0x48, vec![0x00], vec![0x00, 0x00]).with_error(ErrorKind::Bus),
    ];
    run(&script, |bus| {
        let mut chip = Tmp117::new(bus, 0x48);
        assert_eq!(chip.identify(), Err(SensorError::NoResponse));
        assert_eq!(
            chip.identify(),
            Err(SensorError::WrongChip {
                expected: 0x0117,
                found: 0x0400
            })
        );
        // Power-on value: no conversion yet.
        assert_eq!(chip.celsius(), Err(SensorError::OutOfRange(-256.0)));
        // 255.99 °C: beyond the part's range.
        assert!(matches!(chip.celsius(), Err(SensorError::OutOfRange(c)) if c > 255.0));
        assert!(matches!(chip.celsius(), Err(SensorError::Bus(_))));
    });
}

#[test]
fn mcp9808_reads_ids_and_13_bit_signed_temperature() {
    let script = [
        T::write_read(0x18, vec![0x06], vec![0x00, 0x54]),
        T::write_read(0x18, vec![0x07], vec![0x04, 0x01]),
        // 25.25 °C with alert flags set in bits 15:13 (ignored): 0xE000 | 0x0194.
        T::write_read(0x18, vec![0x05], vec![0xE1, 0x94]),
        // -0.5 °C: sign bit, 0x1FF8.
        T::write_read(0x18, vec![0x05], vec![0x1F, 0xF8]),
    ];
    run(&script, |bus| {
        let mut chip = Mcp9808::new(bus, 0x18);
        assert_eq!(chip.identify(), Ok(0x0401));
        assert_eq!(chip.celsius(), Ok(25.25));
        assert_eq!(chip.celsius(), Ok(-0.5));
    });
}

#[test]
fn mcp9808_errors_are_typed() {
    let script = [
        T::write_read(0x18, vec![0x06], vec![0x00, 0x55]),
        T::write_read(0x18, vec![0x06], vec![0x00, 0x54]),
        T::write_read(0x18, vec![0x07], vec![0x02, 0x00]),
        T::write_read(0x18, vec![0x05], vec![0, 0]).with_error(NACK),
        // 200 °C = 0x0C80: readable, but beyond the part's range.
        T::write_read(0x18, vec![0x05], vec![0x0C, 0x80]),
    ];
    run(&script, |bus| {
        let mut chip = Mcp9808::new(bus, 0x18);
        assert_eq!(
            chip.identify(),
            Err(SensorError::WrongChip {
                expected: 0x0054,
                found: 0x0055
            })
        );
        assert_eq!(
            chip.identify(),
            Err(SensorError::WrongChip {
                expected: 0x0400,
                found: 0x0200
            })
        );
        assert_eq!(chip.celsius(), Err(SensorError::NoResponse));
        assert_eq!(chip.celsius(), Err(SensorError::OutOfRange(200.0)));
    });
}

#[test]
fn mlx90614_pec_matches_the_datasheet_example() {
    // Melexis application example: SA 0x5A reading RAM 0x07 returns 0x3AD2 (LSB 0xD2,
    // MSB 0x3A) with PEC 0x30.
    assert_eq!(mlx90614::pec(0x5A, 0x07, [0xD2, 0x3A]), 0x30);
    // CRC-8/SMBUS check value of "123456789".
    assert_eq!(mlx90614::crc8(b"123456789"), 0xF4);
}

#[test]
fn mlx90614_reads_object_temperature_with_pec() {
    let raw = mlx90614::encode(36.5);
    let [lo, hi] = raw.to_le_bytes();
    let pec = mlx90614::pec(0x5A, 0x07, [lo, hi]);
    let cell = [0x5A, 0xBE];
    let cell_pec = mlx90614::pec(0x5A, 0x2E, cell);
    let script = [
        T::write_read(0x5A, vec![0x2E], vec![cell[0], cell[1], cell_pec]),
        T::write_read(0x5A, vec![0x07], vec![lo, hi, pec]),
    ];
    run(&script, |bus| {
        let mut chip = Mlx90614::new(bus, 0x5A);
        assert_eq!(chip.identify(), Ok(0xBE5A));
        let c = chip.object_celsius().unwrap();
        assert!((c - 36.5).abs() < 0.011, "{c}");
    });
}

#[test]
fn mlx90614_errors_are_typed() {
    let [lo, hi] = mlx90614::encode(30.0).to_le_bytes();
    let good = mlx90614::pec(0x5A, 0x07, [lo, hi]);
    let [elo, ehi] = (mlx90614::encode(30.0) | 0x8000).to_le_bytes();
    let epec = mlx90614::pec(0x5A, 0x07, [elo, ehi]);
    let other = [0x5B, 0xBE];
    let other_pec = mlx90614::pec(0x5A, 0x2E, other);
    let script = [
        T::write_read(0x5A, vec![0x07], vec![lo, hi, good ^ 0x01]),
        T::write_read(0x5A, vec![0x07], vec![elo, ehi, epec]),
        T::write_read(0x5A, vec![0x07], vec![0, 0, 0]).with_error(NACK),
        T::write_read(0x5A, vec![0x2E], vec![other[0], other[1], other_pec]),
    ];
    run(&script, |bus| {
        let mut chip = Mlx90614::new(bus, 0x5A);
        assert_eq!(chip.object_celsius(), Err(SensorError::Checksum));
        assert!(
            matches!(chip.object_celsius(), Err(SensorError::OutOfRange(c)) if (c - 30.0).abs() < 0.02)
        );
        assert_eq!(chip.object_celsius(), Err(SensorError::NoResponse));
        assert_eq!(
            chip.identify(),
            Err(SensorError::WrongChip {
                expected: 0x5A,
                found: 0xBE5B
            })
        );
    });
}

#[test]
fn ads1115_single_shot_conversion() {
    let cfg = ads1115::single_shot_config(0);
    // OS | MUX AIN0/GND | PGA 4.096 | single | 128 SPS | comparator off
    assert_eq!(cfg, 0xC383);
    let [chi, clo] = cfg.to_be_bytes();
    let script = [
        T::write_read(0x4A, vec![0x01], vec![0x85, 0x83]),
        T::write(0x4A, vec![0x01, chi, clo]),
        // first check: still converting (OS = 0), second: done
        T::write_read(0x4A, vec![0x01], vec![0x43, 0x83]),
        T::write_read(0x4A, vec![0x01], vec![0xC3, 0x83]),
        // 2.0 V = 16000 LSB = 0x3E80
        T::write_read(0x4A, vec![0x00], vec![0x3E, 0x80]),
    ];
    let mut delay = CountingDelay::default();
    run(&script, |bus| {
        let mut chip = Ads1115::new(bus, 0x4A);
        assert_eq!(chip.identify(), Ok(0x8583));
        assert_eq!(chip.single_shot_volts(0, &mut delay), Ok(2.0));
    });
    assert_eq!(
        delay.total_ns, 9_000_000,
        "8 ms conversion wait + one 1 ms poll"
    );
}

#[test]
fn ads1115_errors_are_typed_and_waiting_is_bounded() {
    let cfg = ads1115::single_shot_config(1).to_be_bytes();
    let mut script = vec![T::write(0x4A, vec![0x01, cfg[0], cfg[1]])];
    // never finishes: 1 + MAX_POLLS checks, then give up
    for _ in 0..=ads1115::MAX_POLLS {
        script.push(T::write_read(0x4A, vec![0x01], vec![0x53, 0x83]));
    }
    // saturated conversion
    script.push(T::write(0x4A, vec![0x01, cfg[0], cfg[1]]));
    script.push(T::write_read(0x4A, vec![0x01], vec![0xD3, 0x83]));
    script.push(T::write_read(0x4A, vec![0x00], vec![0x7F, 0xFF]));
    // NACK on the config write
    script.push(T::write(0x4A, vec![0x01, cfg[0], cfg[1]]).with_error(NACK));
    // a register that is not an idle single-shot config
    script.push(T::write_read(0x4A, vec![0x01], vec![0x00, 0x00]));
    let mut delay = CountingDelay::default();
    run(&script, |bus| {
        let mut chip = Ads1115::new(bus, 0x4A);
        assert_eq!(
            chip.single_shot_volts(1, &mut delay),
            Err(SensorError::NoResponse)
        );
        assert!(matches!(
            chip.single_shot_volts(1, &mut delay),
            Err(SensorError::OutOfRange(v)) if v > 4.09
        ));
        assert_eq!(
            chip.single_shot_volts(1, &mut delay),
            Err(SensorError::NoResponse)
        );
        assert!(matches!(
            chip.identify(),
            Err(SensorError::WrongChip { .. })
        ));
    });
    // first call: 8 ms + 5 × 1 ms; second: 8 ms; third: nothing (failed before waiting)
    assert_eq!(delay.total_ns, 21_000_000);
}

#[test]
fn encoders_round_trip_through_decoders() {
    for c in [-40.0, -0.5, 0.0, 4.0, 25.0625, 124.9375] {
        assert_eq!(mcp9808::decode(mcp9808::encode(c)), c);
    }
    for c in [-55.0, -0.0078125, 4.0, 37.5] {
        let raw = tmp117::encode(c);
        assert_eq!(f64::from(raw as i16) * tmp117::CELSIUS_PER_LSB, c);
    }
    for c in [-20.0, 33.0, 60.0] {
        assert!((mlx90614::decode(mlx90614::encode(c)) - c).abs() <= 0.0101);
    }
    for v in [0.0, 0.333, 3.0, -0.1] {
        let raw = ads1115::encode(v) as i16;
        assert!((f64::from(raw) * ads1115::VOLTS_PER_LSB - v).abs() <= ads1115::VOLTS_PER_LSB);
    }
}
