//! The real drivers, through `SensorBank`, against the register-level chip models.

use coldspray_hal::drivers::{PressureScale, SensorBank, SensorLayout, StdDelay};
use coldspray_hal::emulated::{ChipFault, ChipKind, EmulatedBus};
use coldspray_hal::{Sensor, SensorError, SensorPort};
use std::sync::{Arc, Mutex};

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol
}

#[test]
fn reference_bus_reads_every_sensor() {
    let bus = EmulatedBus::reference();
    let mut bank = bus.reference_bank();
    assert_eq!(bank.fitted(), Sensor::ALL.to_vec());
    assert!(close(bank.read(Sensor::Reservoir).unwrap(), 4.0, 0.008));
    assert!(close(bank.read(Sensor::Mist).unwrap(), 6.0, 0.008));
    assert!(close(bank.read(Sensor::Heatsink).unwrap(), 30.0, 0.0625));
    assert!(close(bank.read(Sensor::Skin).unwrap(), 33.0, 0.011));
    assert!(close(bank.read(Sensor::Pressure).unwrap(), 0.0, 0.01));

    bus.set_temperature(0x48, 2.5);
    bus.set_temperature(0x18, -12.3);
    bus.set_temperature(0x5A, 41.7);
    bus.set_pressure(0x4A, 3.2, &PressureScale::default());
    assert!(close(bank.read(Sensor::Reservoir).unwrap(), 2.5, 0.008));
    assert!(close(bank.read(Sensor::Heatsink).unwrap(), -12.3, 0.0625));
    assert!(close(bank.read(Sensor::Skin).unwrap(), 41.7, 0.011));
    // 125 µV/LSB at the ADC, ×1.5 divider, 2.5 bar/V: ±0.5 mbar quantisation.
    assert!(close(bank.read(Sensor::Pressure).unwrap(), 3.2, 0.001));
}

#[test]
fn identities_match_the_parts() {
    let bus = EmulatedBus::reference();
    let mut bank = bus.reference_bank();
    let parts: Vec<(String, u16)> = Sensor::ALL
        .into_iter()
        .map(|s| {
            let id = bank.identify(s).unwrap();
            assert_eq!(id.sensor, s);
            (id.part, id.id)
        })
        .collect();
    assert_eq!(
        parts,
        vec![
            ("TMP117".to_owned(), 0x0117),
            ("TMP117".to_owned(), 0x0117),
            ("MCP9808".to_owned(), 0x0400),
            ("MLX90614".to_owned(), 0xBE5A),
            ("ADS1115".to_owned(), 0x8583),
        ]
    );
    // A TMP117 where the MCP9808 should be is the wrong chip.
    bus.add(0x18, ChipKind::Tmp117);
    assert!(matches!(
        bank.identify(Sensor::Heatsink),
        Err(SensorError::WrongChip {
            expected: 0x0054,
            ..
        })
    ));
}

#[test]
fn a_feed_closure_supplies_every_conversion() {
    let bus = EmulatedBus::reference();
    let mut bank = bus.reference_bank();
    let truth = Arc::new(Mutex::new((5.0f64, 1.0f64)));
    let t = Arc::clone(&truth);
    bus.feed(0x49, Box::new(move || t.lock().unwrap().0));
    let t = Arc::clone(&truth);
    bus.feed_pressure(0x4A, PressureScale::default(), move || t.lock().unwrap().1);
    assert!(close(bank.read(Sensor::Mist).unwrap(), 5.0, 0.008));
    assert!(close(bank.read(Sensor::Pressure).unwrap(), 1.0, 0.001));
    *truth.lock().unwrap() = (-1.25, 7.5);
    assert!(close(bank.read(Sensor::Mist).unwrap(), -1.25, 0.008));
    assert!(close(bank.read(Sensor::Pressure).unwrap(), 7.5, 0.001));
    // set_temperature replaces the feed
    bus.set_temperature(0x49, 9.0);
    *truth.lock().unwrap() = (50.0, 0.0);
    assert!(close(bank.read(Sensor::Mist).unwrap(), 9.0, 0.008));
}

#[test]
fn injected_faults_become_typed_errors() {
    let bus = EmulatedBus::reference();
    let mut bank = bus.reference_bank();
    for s in Sensor::ALL {
        bus.set_fault(s.reference_address(), ChipFault::Nack, true);
        assert_eq!(bank.read(s), Err(SensorError::NoResponse), "{s}");
        assert_eq!(bank.identify(s), Err(SensorError::NoResponse), "{s}");
    }
    bus.clear_faults();
    for s in Sensor::ALL {
        bus.set_fault(s.reference_address(), ChipFault::OutOfRange, true);
        assert!(
            matches!(bank.read(s), Err(SensorError::OutOfRange(_))),
            "{s}: {:?}",
            bank.read(s)
        );
    }
    bus.clear_faults();
    bus.set_fault(0x5A, ChipFault::PecError, true);
    assert_eq!(bank.read(Sensor::Skin), Err(SensorError::Checksum));
    assert_eq!(bank.identify(Sensor::Skin), Err(SensorError::Checksum));
    bus.set_fault(0x5A, ChipFault::PecError, false);
    assert!(bank.read(Sensor::Skin).is_ok());
    // an unplugged chip
    bus.remove(0x48);
    assert_eq!(bank.read(Sensor::Reservoir), Err(SensorError::NoResponse));
}

#[test]
fn pressure_outside_the_transducer_span_is_out_of_range() {
    let bus = EmulatedBus::reference();
    let mut bank = bus.reference_bank();
    // Open wire: 0 V at the ADC.
    bus.set_voltage(0x4A, 0, 0.0);
    assert!(matches!(bank.read(Sensor::Pressure), Err(SensorError::OutOfRange(v)) if v == 0.0));
    // Transducer shorted to 5 V: 3.33 V at the ADC = 5.0 V before the divider.
    bus.set_voltage(0x4A, 0, 5.0 / 1.5);
    assert!(matches!(bank.read(Sensor::Pressure), Err(SensorError::OutOfRange(v)) if v > 4.9));
    // The other inputs are not the configured channel.
    bus.set_voltage(0x4A, 1, 2.0);
    assert!(matches!(
        bank.read(Sensor::Pressure),
        Err(SensorError::OutOfRange(_))
    ));
}

#[test]
fn unfitted_and_relocated_sensors() {
    let bus = EmulatedBus::new();
    bus.add(0x4B, ChipKind::Ads1115);
    bus.add(0x19, ChipKind::Mcp9808);
    bus.set_temperature(0x19, 45.0);
    let scale = PressureScale {
        channel: 2,
        divider_ratio: 1.0,
        ..PressureScale::default()
    };
    bus.set_pressure(0x4B, 4.0, &scale);
    let layout = SensorLayout {
        fitted: vec![(Sensor::Heatsink, 0x19), (Sensor::Pressure, 0x4B)],
        pressure: scale,
    };
    let mut bank = SensorBank::new(bus.clone(), StdDelay, layout);
    assert_eq!(bank.fitted(), vec![Sensor::Heatsink, Sensor::Pressure]);
    assert_eq!(bank.read(Sensor::Skin), Err(SensorError::NotFitted));
    assert_eq!(
        bank.identify(Sensor::Reservoir),
        Err(SensorError::NotFitted)
    );
    assert_eq!(bank.read(Sensor::Heatsink), Ok(45.0));
    assert!(close(bank.read(Sensor::Pressure).unwrap(), 4.0, 0.001));
}
