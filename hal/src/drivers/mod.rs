//! Drivers for the sensor chips of the reference board, generic over
//! [`embedded_hal::i2c::I2c`], and [`SensorBank`], a [`SensorPort`] over one bus.
//!
//! Each driver speaks only the transfer shapes the Linux SMBus adapter
//! ([`crate::linux::SmbusI2c`]) can express: a one-byte register write followed by a two-
//! or three-byte read, and a three-byte register write. Every read is bounded: no driver
//! retries without limit, so a dead chip costs at most one bus timeout per call.
//!
//! Calibration offsets are *not* applied here; the daemon applies them.

pub mod ads1115;
pub mod mcp9808;
pub mod mlx90614;
pub mod tmp117;

use crate::port::SensorPort;
use crate::reading::{ChipIdentity, SensorError};
use crate::signal::Sensor;
use embedded_hal::delay::DelayNs;
use embedded_hal::i2c::{ErrorKind, I2c};
use serde::Deserialize;
use std::marker::PhantomData;

pub use ads1115::Ads1115;
pub use mcp9808::Mcp9808;
pub use mlx90614::Mlx90614;
pub use tmp117::Tmp117;

/// Maps a bus error to a [`SensorError`]: a NACK is [`SensorError::NoResponse`], anything
/// else a [`SensorError::Bus`] with the error's text.
pub fn bus_error<E: embedded_hal::i2c::Error>(e: E) -> SensorError {
    match e.kind() {
        ErrorKind::NoAcknowledge(_) => SensorError::NoResponse,
        _ => SensorError::Bus(format!("{e:?}")),
    }
}

/// Checks an identification register: its bits under `mask` must read `expected`. Returns
/// the whole register (for [`ChipIdentity`]), or [`SensorError::WrongChip`].
pub(crate) fn expect_id(found: u16, mask: u16, expected: u16) -> Result<u16, SensorError> {
    if found & mask == expected {
        Ok(found)
    } else {
        Err(SensorError::WrongChip { expected, found })
    }
}

/// A temperature the chip flagged as valid (`valid`) and inside its specified `range`, or
/// [`SensorError::OutOfRange`].
pub(crate) fn checked_celsius(
    celsius: f64,
    valid: bool,
    range: &std::ops::RangeInclusive<f64>,
) -> Result<f64, SensorError> {
    if valid && range.contains(&celsius) {
        Ok(celsius)
    } else {
        Err(SensorError::OutOfRange(celsius))
    }
}

/// A sensor chip of kind `K` (a driver's marker type, e.g. [`tmp117::Kind`]) at one address
/// on a borrowed bus. Each driver is the `impl` block for its kind and names the whole type
/// (e.g. [`Tmp117`]).
#[derive(Debug)]
pub struct Chip<'a, I, K> {
    bus: &'a mut I,
    addr: u8,
    kind: PhantomData<K>,
}

impl<'a, I: I2c, K> Chip<'a, I, K> {
    /// The chip at `addr` on `bus`.
    pub fn new(bus: &'a mut I, addr: u8) -> Self {
        Self {
            bus,
            addr,
            kind: PhantomData,
        }
    }

    /// Reads a big-endian 16-bit register with a one-byte pointer write (TMP117, MCP9808,
    /// ADS1115 all send MSB first).
    fn read_be16(&mut self, reg: u8) -> Result<u16, SensorError> {
        let mut buf = [0u8; 2];
        self.bus
            .write_read(self.addr, &[reg], &mut buf)
            .map_err(bus_error)?;
        Ok(u16::from_be_bytes(buf))
    }

    /// Writes a big-endian 16-bit register.
    fn write_be16(&mut self, reg: u8, value: u16) -> Result<(), SensorError> {
        let [hi, lo] = value.to_be_bytes();
        self.bus.write(self.addr, &[reg, hi, lo]).map_err(bus_error)
    }
}

/// How the line-pressure transducer's voltage becomes bar (`[hardware.pressure]`).
///
/// The transducer gives `min_volts` at 0 bar and `max_volts` at `full_scale_bar`, linear in
/// between. The ADS1115 runs at PGA ±4.096 V and, on a 3.3 V board, must not see more than
/// VDD + 0.3 V, so the reference board feeds it through a divider (10 kΩ over 20 kΩ: the
/// ADC sees 2/3 of the transducer voltage, `divider_ratio = 1.5`). A reading that is
/// saturated or more than `margin_volts` outside the transducer's span (open wire, shorted
/// or failed transducer) is [`SensorError::OutOfRange`].
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PressureScale {
    /// ADS1115 input the transducer is on (0–3, single-ended against GND). Default 0.
    pub channel: u8,
    /// Transducer output at 0 bar, volts. Default 0.5.
    pub min_volts: f64,
    /// Transducer output at `full_scale_bar`, volts. Default 4.5.
    pub max_volts: f64,
    /// Pressure at `max_volts`, bar (gauge). Default 10.0.
    pub full_scale_bar: f64,
    /// Transducer volts per ADC volt (the divider in front of the ADC). Default 1.5.
    pub divider_ratio: f64,
    /// How far outside `min_volts..=max_volts` a reading may go before it is out of range,
    /// volts. Default 0.25.
    pub margin_volts: f64,
}

impl Default for PressureScale {
    fn default() -> Self {
        Self {
            channel: 0,
            min_volts: 0.5,
            max_volts: 4.5,
            full_scale_bar: 10.0,
            divider_ratio: 1.5,
            margin_volts: 0.25,
        }
    }
}

impl PressureScale {
    /// Checks the scaling is usable.
    pub fn validate(&self) -> Result<(), String> {
        if self.channel > 3 {
            return Err("[hardware.pressure] channel must be 0-3".to_owned());
        }
        let span_ok = self.max_volts > self.min_volts && self.full_scale_bar > 0.0;
        if !span_ok {
            return Err(
                "[hardware.pressure] needs max_volts > min_volts and full_scale_bar > 0".to_owned(),
            );
        }
        let divider_ok = self.divider_ratio >= 1.0 && self.margin_volts >= 0.0;
        if !divider_ok {
            return Err(
                "[hardware.pressure] needs divider_ratio >= 1 and margin_volts >= 0".to_owned(),
            );
        }
        Ok(())
    }

    /// Transducer voltage to bar, or out of range.
    pub fn bar(&self, transducer_volts: f64) -> Result<f64, SensorError> {
        let lo = self.min_volts - self.margin_volts;
        let hi = self.max_volts + self.margin_volts;
        if !(lo..=hi).contains(&transducer_volts) {
            return Err(SensorError::OutOfRange(transducer_volts));
        }
        Ok(
            (transducer_volts - self.min_volts) / (self.max_volts - self.min_volts)
                * self.full_scale_bar,
        )
    }

    /// Bar to transducer voltage (the inverse of [`PressureScale::bar`], for emulation).
    pub fn volts(&self, bar: f64) -> f64 {
        self.min_volts + bar / self.full_scale_bar * (self.max_volts - self.min_volts)
    }
}

/// A [`DelayNs`] that sleeps the calling thread.
#[derive(Debug, Clone, Copy, Default)]
pub struct StdDelay;

impl DelayNs for StdDelay {
    fn delay_ns(&mut self, ns: u32) {
        std::thread::sleep(std::time::Duration::from_nanos(u64::from(ns)));
    }
}

/// Where each fitted sensor answers on the bus.
#[derive(Debug, Clone, PartialEq)]
pub struct SensorLayout {
    /// `(sensor, 7-bit address)` of each fitted sensor.
    pub fitted: Vec<(Sensor, u8)>,
    /// Transducer scaling for [`Sensor::Pressure`].
    pub pressure: PressureScale,
}

impl Default for SensorLayout {
    /// The reference board: every sensor fitted at its reference address.
    fn default() -> Self {
        Self {
            fitted: Sensor::ALL
                .into_iter()
                .map(|s| (s, s.reference_address()))
                .collect(),
            pressure: PressureScale::default(),
        }
    }
}

/// A [`SensorPort`] reading the reference board's chips over one I2C bus.
#[derive(Debug)]
pub struct SensorBank<I, D> {
    bus: I,
    delay: D,
    layout: SensorLayout,
}

impl<I: I2c, D: DelayNs> SensorBank<I, D> {
    /// A bank over `bus`, sleeping with `delay` while the ADC converts.
    pub fn new(bus: I, delay: D, layout: SensorLayout) -> Self {
        Self { bus, delay, layout }
    }

    /// The bus, e.g. to inject faults into an emulated one.
    pub fn bus_mut(&mut self) -> &mut I {
        &mut self.bus
    }

    fn address(&self, sensor: Sensor) -> Result<u8, SensorError> {
        self.layout
            .fitted
            .iter()
            .find(|(s, _)| *s == sensor)
            .map(|(_, a)| *a)
            .ok_or(SensorError::NotFitted)
    }
}

impl<I: I2c + Send, D: DelayNs + Send> SensorPort for SensorBank<I, D> {
    fn fitted(&self) -> Vec<Sensor> {
        self.layout.fitted.iter().map(|(s, _)| *s).collect()
    }

    fn read(&mut self, sensor: Sensor) -> Result<f64, SensorError> {
        let addr = self.address(sensor)?;
        match sensor {
            Sensor::Reservoir | Sensor::Mist => Tmp117::new(&mut self.bus, addr).celsius(),
            Sensor::Heatsink => Mcp9808::new(&mut self.bus, addr).celsius(),
            Sensor::Skin => Mlx90614::new(&mut self.bus, addr).object_celsius(),
            Sensor::Pressure => {
                let scale = self.layout.pressure;
                let adc_volts = Ads1115::new(&mut self.bus, addr)
                    .single_shot_volts(scale.channel, &mut self.delay)?;
                scale.bar(adc_volts * scale.divider_ratio)
            }
        }
    }

    fn identify(&mut self, sensor: Sensor) -> Result<ChipIdentity, SensorError> {
        let addr = self.address(sensor)?;
        let (part, id) = match sensor {
            Sensor::Reservoir | Sensor::Mist => {
                (tmp117::PART, Tmp117::new(&mut self.bus, addr).identify()?)
            }
            Sensor::Heatsink => (mcp9808::PART, Mcp9808::new(&mut self.bus, addr).identify()?),
            Sensor::Skin => (
                mlx90614::PART,
                Mlx90614::new(&mut self.bus, addr).identify()?,
            ),
            Sensor::Pressure => (ads1115::PART, Ads1115::new(&mut self.bus, addr).identify()?),
        };
        Ok(ChipIdentity {
            sensor,
            part: part.to_owned(),
            id,
        })
    }
}
