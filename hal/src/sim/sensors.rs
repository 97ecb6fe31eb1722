//! Sensor chips of the twin: seeded noise, quantisation to each chip's resolution, chip
//! identities and the values a faulty sensor reports.

use crate::drivers::{ads1115, mcp9808, mlx90614, tmp117};
use crate::signal::Sensor;
use std::ops::RangeInclusive;

/// A tiny deterministic generator (xorshift64*), one per sensor, so a reading depends only on
/// the seed and how often *that* sensor was read, not on the order other sensors were read in.
#[derive(Debug, Clone)]
pub(crate) struct NoiseRng {
    state: u64,
}

impl NoiseRng {
    /// A generator for `sensor`, derived from the unit's seed with splitmix64 so neighbouring
    /// seeds and sensors give unrelated streams (xorshift must never start at zero).
    pub(crate) fn new(seed: u64, sensor: Sensor) -> Self {
        let mut z = seed
            .wrapping_add(0x9E37_79B9_7F4A_7C15)
            .wrapping_mul(sensor.index() as u64 + 1);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        Self {
            state: if z == 0 { 0x2545_F491_4F6C_DD1D } else { z },
        }
    }

    fn next_u64(&mut self) -> u64 {
        let mut x = self.state;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.state = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in [0, 1).
    fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Approximately standard normal (Irwin–Hall sum of 12 uniforms, bounded to ±6).
    pub(crate) fn gaussian(&mut self) -> f64 {
        (0..12).map(|_| self.uniform()).sum::<f64>() - 6.0
    }
}

/// The chip behind a sensor and how it turns a true value into a register reading.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Chip {
    /// Part name as reported by `identify()`.
    pub part: &'static str,
    /// Identity register value (0 where the part has none).
    pub id: u16,
    /// One LSB of the reading, in the sensor's unit.
    pub lsb: f64,
    /// Standard deviation of the reading noise, in the sensor's unit (always >= 1 LSB so a
    /// healthy sensor never returns an exactly unchanged value for long).
    pub noise_sigma: f64,
    /// What the chip can represent at all; readings saturate here.
    pub range: (f64, f64),
    /// Offset of the quantisation grid (MLX90614 counts in kelvin, ADS1115 in volts).
    pub grid_offset: f64,
    /// The physically impossible value the chip reports when `SensorOutOfRange` is injected.
    pub out_of_range: f64,
}

/// The reference chip for every sensor (docs/REQUIREMENTS.md §3): the datasheet facts the
/// drivers hold (part, ID, resolution, range), plus the noise and saturation only the twin
/// models.
pub(crate) fn chip(sensor: Sensor) -> Chip {
    match sensor {
        // TMP117: 16-bit, 7.8125 m°C LSB, ±0.1 °C accuracy, device-ID register 0x0F reads
        // 0x0117 (TI datasheet SNOSD82). Noise ~1.5 LSB rms.
        Sensor::Reservoir | Sensor::Mist => Chip {
            noise_sigma: 0.012,
            ..celsius_chip(
                tmp117::PART,
                tmp117::DEVICE_ID,
                tmp117::CELSIUS_PER_LSB,
                &tmp117::RANGE,
            )
        },
        // MCP9808: 0.0625 °C resolution at its default setting, ±0.25 °C typical accuracy,
        // device-ID register 0x07 reads 0x0400 (Microchip DS25095).
        Sensor::Heatsink => Chip {
            noise_sigma: 0.07,
            ..celsius_chip(
                mcp9808::PART,
                mcp9808::DEVICE_ID,
                mcp9808::CELSIUS_PER_LSB,
                &mcp9808::RANGE,
            )
        },
        // MLX90614: object temperature in 0.02 K steps (RAM 0x07), ~0.05 °C rms noise with
        // the default IIR; no identity register modelled (id 0).
        Sensor::Skin => Chip {
            part: mlx90614::PART,
            id: 0,
            lsb: mlx90614::KELVIN_PER_LSB,
            noise_sigma: 0.05,
            range: bounds(&mlx90614::RANGE),
            grid_offset: -273.15,
            out_of_range: 150.0,
        },
        // ADS1115 at ±4.096 V full scale: 125 µV per LSB; the 0.5–4.5 V transducer spans
        // 0–10 bar, so 2.5 bar/V -> 0.3125 mbar per LSB, and 0 bar sits at 0.5 V
        // (grid offset -1.25 bar). Transducer noise ~2 mbar rms (0.02 % FS).
        Sensor::Pressure => Chip {
            part: ads1115::PART,
            id: 0,
            lsb: 0.000_312_5,
            noise_sigma: 0.002,
            range: (-1.25, 9.0),
            grid_offset: -1.25,
            out_of_range: 12.0,
        },
    }
}

/// A digital thermometer with an identity register, counting in °C from 0 (noise: 1 LSB until
/// the caller sets its own), reporting 150 °C when it fails out of range.
fn celsius_chip(part: &'static str, id: u16, lsb: f64, range: &RangeInclusive<f64>) -> Chip {
    Chip {
        part,
        id,
        lsb,
        noise_sigma: lsb,
        range: bounds(range),
        grid_offset: 0.0,
        out_of_range: 150.0,
    }
}

/// A driver's specified range as `(low, high)`.
fn bounds(range: &RangeInclusive<f64>) -> (f64, f64) {
    (*range.start(), *range.end())
}

impl Chip {
    /// The reading a healthy chip gives for `truth`: noise added, quantised, saturated.
    pub(crate) fn reading(&self, truth: f64, rng: &mut NoiseRng) -> f64 {
        let noisy = truth + self.noise_sigma * rng.gaussian();
        let clamped = noisy.clamp(self.range.0, self.range.1);
        let counts = ((clamped - self.grid_offset) / self.lsb).round();
        counts * self.lsb + self.grid_offset
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readings_sit_on_the_chip_grid_and_vary() {
        for sensor in Sensor::ALL {
            let c = chip(sensor);
            let mut rng = NoiseRng::new(7, sensor);
            let truth = if sensor.is_temperature() { 21.3 } else { 2.1 };
            let rs: Vec<f64> = (0..200).map(|_| c.reading(truth, &mut rng)).collect();
            for r in &rs {
                let counts = (r - c.grid_offset) / c.lsb;
                assert!(
                    (counts - counts.round()).abs() < 1e-6,
                    "{sensor}: {r} off grid"
                );
                assert!(
                    (r - truth).abs() < 8.0 * c.noise_sigma + c.lsb,
                    "{sensor}: {r}"
                );
            }
            let distinct = rs.windows(2).filter(|w| w[0] != w[1]).count();
            assert!(
                distinct > 100,
                "{sensor}: only {distinct} changes in 200 readings"
            );
            let mean = rs.iter().sum::<f64>() / rs.len() as f64;
            assert!(
                (mean - truth).abs() < 3.0 * c.noise_sigma,
                "{sensor}: mean {mean}"
            );
        }
    }

    #[test]
    fn different_seeds_give_different_streams() {
        let mut a = NoiseRng::new(1, Sensor::Reservoir);
        let mut b = NoiseRng::new(2, Sensor::Reservoir);
        let mut c = NoiseRng::new(1, Sensor::Mist);
        let xa: Vec<u64> = (0..4).map(|_| a.next_u64()).collect();
        let xb: Vec<u64> = (0..4).map(|_| b.next_u64()).collect();
        let xc: Vec<u64> = (0..4).map(|_| c.next_u64()).collect();
        assert_ne!(xa, xb);
        assert_ne!(xa, xc);
    }
}
