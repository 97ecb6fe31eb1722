//! TI TMP117 ±0.1 °C digital temperature sensor.
//!
//! Registers are 16 bits, MSB first. Temperature (0x00) is two's complement at
//! 7.8125 m°C/LSB; 0x8000 is the power-on value before the first conversion. Device ID
//! (0x0F) holds 0x117 in bits 11:0 and a die revision in bits 15:12.

use super::{checked_celsius, expect_id, Chip, SensorError};
use embedded_hal::i2c::I2c;

/// Part name reported in [`crate::ChipIdentity`].
pub const PART: &str = "TMP117";
/// Temperature result register.
pub const REG_TEMP: u8 = 0x00;
/// Device ID register.
pub const REG_DEVICE_ID: u8 = 0x0F;
/// Device ID (bits 11:0).
pub const DEVICE_ID: u16 = 0x0117;
/// The temperature register's value before any conversion finished.
pub const TEMP_RESET: u16 = 0x8000;
/// Degrees Celsius per LSB.
pub const CELSIUS_PER_LSB: f64 = 0.007_812_5;
/// Specified measurement range, °C.
pub const RANGE: std::ops::RangeInclusive<f64> = -55.0..=150.0;

/// Marker of the TMP117 for [`Chip`].
#[derive(Debug)]
pub enum Kind {}

/// A TMP117 at one address (0x48–0x4B) on a borrowed bus.
pub type Tmp117<'a, I> = Chip<'a, I, Kind>;

impl<I: I2c> Tmp117<'_, I> {
    /// Reads the device ID register and checks it is a TMP117; returns the raw register.
    pub fn identify(&mut self) -> Result<u16, SensorError> {
        let id = self.read_be16(REG_DEVICE_ID)?;
        expect_id(id, 0x0FFF, DEVICE_ID)
    }

    /// Reads the last converted temperature in °C (continuous conversion, the power-on mode).
    pub fn celsius(&mut self) -> Result<f64, SensorError> {
        let raw = self.read_be16(REG_TEMP)?;
        let celsius = f64::from(raw as i16) * CELSIUS_PER_LSB;
        checked_celsius(celsius, raw != TEMP_RESET, &RANGE)
    }
}

/// The register value for `celsius` (for emulation and tests), saturating at the i16 limits.
pub fn encode(celsius: f64) -> u16 {
    let lsb = (celsius / CELSIUS_PER_LSB).round();
    (lsb.clamp(f64::from(i16::MIN), f64::from(i16::MAX)) as i16) as u16
}
