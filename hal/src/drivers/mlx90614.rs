//! Melexis MLX90614 infrared thermometer (SMBus).
//!
//! RAM word 0x07 holds the object temperature Tobj1 at 0.02 K/LSB, sent LSB first and
//! followed by a packet error code: CRC-8 (polynomial 0x07, init 0) over the write address,
//! the command, the read address and the two data bytes. Bit 15 set flags an error (the
//! chip could not measure). The chip has no part-ID register; identify reads EEPROM cell
//! 0x0E (command 0x2E), whose low byte is the chip's own SMBus address, and checks it
//! (with its PEC) against the address it answered on.

use super::{bus_error, checked_celsius, expect_id, Chip, SensorError};
use embedded_hal::i2c::I2c;

/// Part name reported in [`crate::ChipIdentity`].
pub const PART: &str = "MLX90614";
/// RAM command: object temperature 1.
pub const CMD_TOBJ1: u8 = 0x07;
/// EEPROM command: SMBus address cell (low byte = the chip's address).
pub const CMD_SMBUS_ADDR: u8 = 0x2E;
/// Kelvin per LSB.
pub const KELVIN_PER_LSB: f64 = 0.02;
/// Specified object range, °C.
pub const RANGE: std::ops::RangeInclusive<f64> = -70.0..=380.0;

/// How the reference unit's MLX90614xCC (35° field of view, 50 mm from the skin) sees the
/// spot, taken on the conservative side: the spot fills at most 0.9 of its signal (the field
/// of view is specified at half sensitivity, so ~10 % always comes from outside it: datasheet
/// rev. 13, "field of view"), and its filter is taken at the slowest usable setting, 0.3 s to
/// 95 % (datasheet, "IIR and FIR settings"). The driver does not write the filter EEPROM, so
/// the setting a chip ships with is not known to the daemon.
pub const REFERENCE_VIEW: crate::SkinSensorView = crate::SkinSensorView {
    spot_fill: 0.9,
    settle_s: 0.3,
};

/// SMBus packet error code: CRC-8, polynomial x^8 + x^2 + x + 1 (0x07), initial value 0.
pub fn crc8(bytes: &[u8]) -> u8 {
    let mut crc = 0u8;
    for &b in bytes {
        crc ^= b;
        for _ in 0..8 {
            crc = if crc & 0x80 != 0 {
                (crc << 1) ^ 0x07
            } else {
                crc << 1
            };
        }
    }
    crc
}

/// The PEC the chip at `addr` appends when answering `cmd` with `data` (LSB, MSB).
pub fn pec(addr: u8, cmd: u8, data: [u8; 2]) -> u8 {
    crc8(&[addr << 1, cmd, (addr << 1) | 1, data[0], data[1]])
}

/// Marker of the MLX90614 for [`Chip`].
#[derive(Debug)]
pub enum Kind {}

/// An MLX90614 at one address (factory default 0x5A) on a borrowed bus.
pub type Mlx90614<'a, I> = Chip<'a, I, Kind>;

impl<I: I2c> Mlx90614<'_, I> {
    /// Reads one word with PEC check.
    pub fn read_word(&mut self, cmd: u8) -> Result<u16, SensorError> {
        let mut buf = [0u8; 3];
        self.bus
            .write_read(self.addr, &[cmd], &mut buf)
            .map_err(bus_error)?;
        if pec(self.addr, cmd, [buf[0], buf[1]]) != buf[2] {
            return Err(SensorError::Checksum);
        }
        Ok(u16::from_le_bytes([buf[0], buf[1]]))
    }

    /// Reads the EEPROM address cell (PEC-checked) and checks its low byte is the address
    /// the chip answered on; returns the cell.
    pub fn identify(&mut self) -> Result<u16, SensorError> {
        let cell = self.read_word(CMD_SMBUS_ADDR)?;
        expect_id(cell, 0x00FF, u16::from(self.addr))
    }

    /// Reads the object temperature in °C.
    pub fn object_celsius(&mut self) -> Result<f64, SensorError> {
        let raw = self.read_word(CMD_TOBJ1)?;
        checked_celsius(decode(raw & 0x7FFF), raw & 0x8000 == 0, &RANGE)
    }
}

/// Register value to °C.
pub fn decode(raw: u16) -> f64 {
    f64::from(raw) * KELVIN_PER_LSB - 273.15
}

/// °C to register value (for emulation and tests), clamped to 15 bits.
pub fn encode(celsius: f64) -> u16 {
    ((celsius + 273.15) / KELVIN_PER_LSB)
        .round()
        .clamp(0.0, 32767.0) as u16
}
