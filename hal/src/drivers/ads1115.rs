//! TI ADS1115 16-bit ADC, single-shot, PGA ±4.096 V.
//!
//! Config register (0x01): writing OS=1 starts a conversion; OS reads 1 again when it is
//! done. Conversion register (0x00): two's complement, 125 µV/LSB at ±4.096 V. The chip has
//! no ID register: identify reads the config register and checks its reserved layout (a
//! power-on ADS1115 reads 0x8583; any idle single-shot config has OS=1 and MODE=1).

use super::{Chip, SensorError};
use embedded_hal::delay::DelayNs;
use embedded_hal::i2c::I2c;

/// Part name reported in [`crate::ChipIdentity`].
pub const PART: &str = "ADS1115";
/// Conversion register.
pub const REG_CONVERSION: u8 = 0x00;
/// Config register.
pub const REG_CONFIG: u8 = 0x01;
/// Config: start a single conversion / conversion done.
pub const OS: u16 = 1 << 15;
/// Config: PGA ±4.096 V (bits 11:9 = 001).
pub const PGA_4_096: u16 = 0b001 << 9;
/// Config: single-shot mode.
pub const MODE_SINGLE: u16 = 1 << 8;
/// Config: 128 samples/s (bits 7:5 = 100): a conversion takes about 7.8 ms.
pub const DR_128: u16 = 0b100 << 5;
/// Config: comparator disabled (bits 1:0 = 11).
pub const COMP_DISABLE: u16 = 0b11;
/// Volts per LSB at ±4.096 V.
pub const VOLTS_PER_LSB: f64 = 4.096 / 32768.0;
/// Wait before the first done-check, µs (one conversion at 128 SPS plus margin).
pub const FIRST_WAIT_US: u32 = 8_000;
/// How many more times the done bit is checked, 1 ms apart, before giving up.
pub const MAX_POLLS: u32 = 5;

/// The config word that starts a single-shot conversion of `channel` (AINx against GND).
pub fn single_shot_config(channel: u8) -> u16 {
    let mux = (0b100 | u16::from(channel & 0b11)) << 12;
    OS | mux | PGA_4_096 | MODE_SINGLE | DR_128 | COMP_DISABLE
}

/// Marker of the ADS1115 for [`Chip`].
#[derive(Debug)]
pub enum Kind {}

/// An ADS1115 at one address (0x48–0x4B) on a borrowed bus.
pub type Ads1115<'a, I> = Chip<'a, I, Kind>;

impl<I: I2c> Ads1115<'_, I> {
    /// Reads the config register; a chip in single-shot idle has OS=1 and MODE=1 (as the
    /// power-on value 0x8583 does). Returns the config value.
    pub fn identify(&mut self) -> Result<u16, SensorError> {
        let config = self.read_be16(REG_CONFIG)?;
        if config & (OS | MODE_SINGLE) != OS | MODE_SINGLE {
            return Err(SensorError::WrongChip {
                expected: 0x8583,
                found: config,
            });
        }
        Ok(config)
    }

    /// Runs one single-shot conversion of `channel` and returns the input voltage. Waits at
    /// most [`FIRST_WAIT_US`] + [`MAX_POLLS`] ms; a conversion that never finishes is
    /// [`SensorError::NoResponse`], a saturated code [`SensorError::OutOfRange`].
    pub fn single_shot_volts<D: DelayNs>(
        &mut self,
        channel: u8,
        delay: &mut D,
    ) -> Result<f64, SensorError> {
        self.write_be16(REG_CONFIG, single_shot_config(channel))?;
        delay.delay_us(FIRST_WAIT_US);
        let mut done = false;
        for attempt in 0..=MAX_POLLS {
            if self.read_be16(REG_CONFIG)? & OS != 0 {
                done = true;
                break;
            }
            if attempt < MAX_POLLS {
                delay.delay_ms(1);
            }
        }
        if !done {
            return Err(SensorError::NoResponse);
        }
        let raw = self.read_be16(REG_CONVERSION)? as i16;
        let volts = f64::from(raw) * VOLTS_PER_LSB;
        if raw == i16::MAX || raw == i16::MIN {
            return Err(SensorError::OutOfRange(volts));
        }
        Ok(volts)
    }
}

/// The conversion register value for `volts` at ±4.096 V, saturating like the chip.
pub fn encode(volts: f64) -> u16 {
    ((volts / VOLTS_PER_LSB)
        .round()
        .clamp(f64::from(i16::MIN), f64::from(i16::MAX)) as i16) as u16
}
