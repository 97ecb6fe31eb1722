//! Microchip MCP9808 ±0.5 °C digital temperature sensor.
//!
//! Registers are 16 bits, MSB first. Ambient temperature (0x05): bits 15:13 are alert flags,
//! bit 12 the sign, bits 11:0 the magnitude in 1/16 °C (13-bit two's complement).
//! Manufacturer ID (0x06) is 0x0054; device ID/revision (0x07) is 0x04 in the high byte.

use super::{checked_celsius, expect_id, Chip, SensorError};
use embedded_hal::i2c::I2c;

/// Part name reported in [`crate::ChipIdentity`].
pub const PART: &str = "MCP9808";
/// Ambient temperature register.
pub const REG_AMBIENT: u8 = 0x05;
/// Manufacturer ID register.
pub const REG_MANUFACTURER: u8 = 0x06;
/// Device ID / revision register.
pub const REG_DEVICE: u8 = 0x07;
/// Manufacturer ID (Microchip).
pub const MANUFACTURER_ID: u16 = 0x0054;
/// Device ID register value (ID 0x04, revision 0x00); only the high byte is checked.
pub const DEVICE_ID: u16 = 0x0400;
/// Degrees Celsius per LSB of the ambient register (its default resolution).
pub const CELSIUS_PER_LSB: f64 = 0.0625;
/// Specified operating range, °C.
pub const RANGE: std::ops::RangeInclusive<f64> = -40.0..=125.0;

/// Marker of the MCP9808 for [`Chip`].
#[derive(Debug)]
pub enum Kind {}

/// An MCP9808 at one address (0x18–0x1F) on a borrowed bus.
pub type Mcp9808<'a, I> = Chip<'a, I, Kind>;

impl<I: I2c> Mcp9808<'_, I> {
    /// Checks manufacturer and device ID; returns the device ID register.
    pub fn identify(&mut self) -> Result<u16, SensorError> {
        let manufacturer = self.read_be16(REG_MANUFACTURER)?;
        expect_id(manufacturer, 0xFFFF, MANUFACTURER_ID)?;
        let device = self.read_be16(REG_DEVICE)?;
        expect_id(device, 0xFF00, DEVICE_ID)
    }

    /// Reads the ambient temperature in °C.
    pub fn celsius(&mut self) -> Result<f64, SensorError> {
        let raw = self.read_be16(REG_AMBIENT)?;
        checked_celsius(decode(raw), true, &RANGE)
    }
}

/// The ambient register's temperature, ignoring the alert flags.
pub fn decode(raw: u16) -> f64 {
    let magnitude = f64::from(raw & 0x0FFF) * CELSIUS_PER_LSB;
    if raw & 0x1000 != 0 {
        magnitude - 256.0
    } else {
        magnitude
    }
}

/// The ambient register value for `celsius` (flags clear), clamped to what 13 bits hold.
pub fn encode(celsius: f64) -> u16 {
    let sixteenths = (celsius / CELSIUS_PER_LSB).round().clamp(-4096.0, 4095.0) as i32;
    (sixteenths as u16) & 0x1FFF
}
