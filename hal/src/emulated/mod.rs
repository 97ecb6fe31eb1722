//! Register-level models of the reference board's sensor chips on one emulated I2C bus.
//!
//! [`EmulatedBus`] implements [`embedded_hal::i2c::I2c`], so the real drivers in
//! [`crate::drivers`] run against it unchanged. Each chip answers at its address with the
//! registers the datasheet gives (IDs, temperature/conversion registers, PEC on the
//! MLX90614). Values are set by tests ([`EmulatedBus::set_temperature`],
//! [`EmulatedBus::set_pressure`]) or fed on every conversion from a closure
//! ([`EmulatedBus::feed`]), e.g. from a simulated unit's truth. Faults are injectable per
//! address: NACK, PEC error, out-of-range.
//!
//! Clones share the same chips, so a test can keep one handle and give another to a
//! [`crate::drivers::SensorBank`].

use crate::drivers::SensorBank;
use crate::drivers::{ads1115, mcp9808, mlx90614, tmp117, PressureScale, SensorLayout, StdDelay};
use embedded_hal::i2c::{ErrorKind, ErrorType, I2c, NoAcknowledgeSource, Operation};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

/// The chip families the bus can emulate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChipKind {
    /// TI TMP117 temperature sensor.
    Tmp117,
    /// Microchip MCP9808 temperature sensor.
    Mcp9808,
    /// Melexis MLX90614 IR thermometer (SMBus with PEC).
    Mlx90614,
    /// TI ADS1115 ADC.
    Ads1115,
}

/// A fault a chip can be told to show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChipFault {
    /// The chip does not acknowledge its address (unplugged, dead).
    Nack,
    /// The MLX90614 sends a wrong PEC byte.
    PecError,
    /// The chip reports a value it cannot measure: TMP117 its reset value 0x8000, MCP9808
    /// 200 °C, MLX90614 the error flag, ADS1115 a saturated conversion.
    OutOfRange,
}

/// The error an emulated transfer fails with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("emulated I2C error: {0:?}")]
pub struct EmulatedError(pub ErrorKind);

impl embedded_hal::i2c::Error for EmulatedError {
    fn kind(&self) -> ErrorKind {
        self.0
    }
}

/// A value source called on every conversion (°C for temperature chips, volts at the ADC
/// input for the ADS1115).
pub type Feed = Box<dyn FnMut() -> f64 + Send>;

struct Chip {
    kind: ChipKind,
    addr: u8,
    pointer: u8,
    /// °C, or volts per ADS1115 input.
    value: [f64; 4],
    feed: Option<Feed>,
    config: u16,
    conversion: u16,
    nack: bool,
    pec_error: bool,
    out_of_range: bool,
}

impl Chip {
    fn new(kind: ChipKind, addr: u8) -> Self {
        let config = match kind {
            ChipKind::Tmp117 => 0x0220,
            ChipKind::Ads1115 => 0x8583,
            _ => 0,
        };
        Self {
            kind,
            addr,
            pointer: 0,
            value: [20.0, 0.0, 0.0, 0.0],
            feed: None,
            config,
            conversion: 0,
            nack: false,
            pec_error: false,
            out_of_range: false,
        }
    }

    fn sample(&mut self, channel: usize) -> f64 {
        if let Some(feed) = self.feed.as_mut() {
            self.value[channel] = feed();
        }
        self.value[channel]
    }

    /// The 16-bit register at the pointer, for the MSB-first chips.
    fn register(&mut self) -> u16 {
        match (self.kind, self.pointer) {
            (ChipKind::Tmp117, tmp117::REG_TEMP) => {
                if self.out_of_range {
                    tmp117::TEMP_RESET
                } else {
                    let c = self.sample(0);
                    tmp117::encode(c)
                }
            }
            (ChipKind::Tmp117, 0x01) => self.config,
            (ChipKind::Tmp117, tmp117::REG_DEVICE_ID) => tmp117::DEVICE_ID,
            (ChipKind::Mcp9808, mcp9808::REG_AMBIENT) => {
                let c = if self.out_of_range {
                    200.0
                } else {
                    self.sample(0)
                };
                mcp9808::encode(c)
            }
            (ChipKind::Mcp9808, 0x01) => self.config,
            (ChipKind::Mcp9808, mcp9808::REG_MANUFACTURER) => mcp9808::MANUFACTURER_ID,
            (ChipKind::Mcp9808, mcp9808::REG_DEVICE) => mcp9808::DEVICE_ID,
            (ChipKind::Ads1115, ads1115::REG_CONVERSION) => self.conversion,
            // A single conversion is instantaneous here: OS reads back as "done".
            (ChipKind::Ads1115, ads1115::REG_CONFIG) => self.config | ads1115::OS,
            _ => 0,
        }
    }

    fn write(&mut self, bytes: &[u8]) {
        let Some((&pointer, data)) = bytes.split_first() else {
            return;
        };
        self.pointer = pointer;
        if data.len() < 2 {
            return;
        }
        let word = u16::from_be_bytes([data[0], data[1]]);
        match (self.kind, pointer) {
            (ChipKind::Tmp117, 0x01) | (ChipKind::Mcp9808, 0x01) => self.config = word,
            (ChipKind::Ads1115, ads1115::REG_CONFIG) => {
                self.config = word & !ads1115::OS;
                if word & ads1115::OS != 0 {
                    let mux = (word >> 12) & 0b111;
                    // Single-ended inputs only (MUX 1xx); differential pairs read 0 V here.
                    let volts = if mux & 0b100 != 0 {
                        self.sample(usize::from(mux & 0b11) & 3)
                    } else {
                        0.0
                    };
                    self.conversion = if self.out_of_range {
                        i16::MAX as u16
                    } else {
                        ads1115::encode(volts)
                    };
                }
            }
            _ => {}
        }
    }

    fn read(&mut self, buf: &mut [u8]) {
        let bytes: Vec<u8> = if self.kind == ChipKind::Mlx90614 {
            let word = match self.pointer {
                mlx90614::CMD_TOBJ1 => {
                    let c = self.sample(0);
                    let raw = mlx90614::encode(c);
                    if self.out_of_range {
                        raw | 0x8000
                    } else {
                        raw
                    }
                }
                // Ambient (Ta): a plausible die temperature.
                0x06 => mlx90614::encode(25.0),
                mlx90614::CMD_SMBUS_ADDR => 0xBE00 | u16::from(self.addr),
                _ => 0,
            };
            let data = word.to_le_bytes();
            let mut pec = mlx90614::pec(self.addr, self.pointer, data);
            if self.pec_error {
                pec ^= 0x5A;
            }
            vec![data[0], data[1], pec]
        } else {
            self.register().to_be_bytes().to_vec()
        };
        for (i, b) in buf.iter_mut().enumerate() {
            *b = bytes.get(i).copied().unwrap_or(0xFF);
        }
    }
}

/// An I2C bus with emulated chips on it. Cheap to clone; clones share the chips.
#[derive(Clone, Default)]
pub struct EmulatedBus {
    chips: Arc<Mutex<BTreeMap<u8, Chip>>>,
}

impl std::fmt::Debug for EmulatedBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let chips = self.lock();
        f.debug_map()
            .entries(chips.iter().map(|(a, c)| (format!("{a:#04x}"), c.kind)))
            .finish()
    }
}

impl EmulatedBus {
    /// An empty bus: every address NACKs.
    pub fn new() -> Self {
        Self::default()
    }

    /// The reference board (docs/REQUIREMENTS.md §3): TMP117 at 0x48 (reservoir, 4 °C) and 0x49 (mist,
    /// 6 °C), MCP9808 at 0x18 (heatsink, 30 °C), MLX90614 at 0x5A (skin, 33 °C), ADS1115 at
    /// 0x4A (line pressure 0 bar through the default [`PressureScale`]).
    pub fn reference() -> Self {
        let bus = Self::new();
        bus.add(0x48, ChipKind::Tmp117);
        bus.add(0x49, ChipKind::Tmp117);
        bus.add(0x18, ChipKind::Mcp9808);
        bus.add(0x5A, ChipKind::Mlx90614);
        bus.add(0x4A, ChipKind::Ads1115);
        bus.set_temperature(0x48, 4.0);
        bus.set_temperature(0x49, 6.0);
        bus.set_temperature(0x18, 30.0);
        bus.set_temperature(0x5A, 33.0);
        bus.set_pressure(0x4A, 0.0, &PressureScale::default());
        bus
    }

    /// A [`SensorBank`] over a clone of this bus with the reference layout.
    pub fn reference_bank(&self) -> SensorBank<EmulatedBus, StdDelay> {
        SensorBank::new(self.clone(), StdDelay, SensorLayout::default())
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<u8, Chip>> {
        self.chips.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn with_chip(&self, addr: u8, f: impl FnOnce(&mut Chip)) {
        if let Some(chip) = self.lock().get_mut(&addr) {
            f(chip);
        }
    }

    /// Puts a chip of `kind` at `addr` (replacing any chip there).
    pub fn add(&self, addr: u8, kind: ChipKind) {
        self.lock().insert(addr, Chip::new(kind, addr));
    }

    /// Removes the chip at `addr` (it then NACKs like an unplugged one).
    pub fn remove(&self, addr: u8) {
        self.lock().remove(&addr);
    }

    /// Sets the temperature a temperature chip at `addr` measures, °C. Stops any feed.
    pub fn set_temperature(&self, addr: u8, celsius: f64) {
        self.with_chip(addr, |c| {
            c.feed = None;
            c.value[0] = celsius;
        });
    }

    /// Sets the voltage on input `channel` (0–3) of the ADS1115 at `addr`. Stops any feed.
    pub fn set_voltage(&self, addr: u8, channel: u8, volts: f64) {
        self.with_chip(addr, |c| {
            c.feed = None;
            c.value[usize::from(channel & 3)] = volts;
        });
    }

    /// Sets the line pressure the ADS1115 at `addr` sees through transducer and divider
    /// `scale`, bar. Stops any feed.
    pub fn set_pressure(&self, addr: u8, bar: f64, scale: &PressureScale) {
        self.set_voltage(addr, scale.channel, scale.volts(bar) / scale.divider_ratio);
    }

    /// Feeds the chip at `addr` from `feed` on every conversion: °C for the temperature
    /// chips, volts at the converted input for the ADS1115.
    pub fn feed(&self, addr: u8, feed: Feed) {
        self.with_chip(addr, |c| c.feed = Some(feed));
    }

    /// Feeds the ADS1115 at `addr` with a pressure in bar through `scale`.
    pub fn feed_pressure(
        &self,
        addr: u8,
        scale: PressureScale,
        mut bar: impl FnMut() -> f64 + Send + 'static,
    ) {
        self.feed(
            addr,
            Box::new(move || scale.volts(bar()) / scale.divider_ratio),
        );
    }

    /// Turns a fault of the chip at `addr` on or off.
    pub fn set_fault(&self, addr: u8, fault: ChipFault, on: bool) {
        self.with_chip(addr, |c| match fault {
            ChipFault::Nack => c.nack = on,
            ChipFault::PecError => c.pec_error = on,
            ChipFault::OutOfRange => c.out_of_range = on,
        });
    }

    /// Clears every fault of every chip.
    pub fn clear_faults(&self) {
        for chip in self.lock().values_mut() {
            chip.nack = false;
            chip.pec_error = false;
            chip.out_of_range = false;
        }
    }
}

impl ErrorType for EmulatedBus {
    type Error = EmulatedError;
}

impl I2c for EmulatedBus {
    fn transaction(
        &mut self,
        address: u8,
        operations: &mut [Operation<'_>],
    ) -> Result<(), Self::Error> {
        let mut chips = self.lock();
        let chip = match chips.get_mut(&address) {
            Some(chip) if !chip.nack => chip,
            _ => {
                return Err(EmulatedError(ErrorKind::NoAcknowledge(
                    NoAcknowledgeSource::Address,
                )))
            }
        };
        for op in operations {
            match op {
                Operation::Write(bytes) => chip.write(bytes),
                Operation::Read(buf) => chip.read(buf),
            }
        }
        Ok(())
    }
}
