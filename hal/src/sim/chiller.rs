//! The chiller: how much heat a powered chiller pumps out of the water and how much
//! electrical power it turns into heat on the hot side.
//!
//! Two models:
//! * [`ChillerKind::Ideal`], the first twin's lumped TEC: Qc = Qmax·(1 − ΔT/ΔTmax) at a fixed
//!   90 W. It is ~3× too efficient for a thermoelectric unit (COP ≈ 1.2 at a 46 K face
//!   difference); kept so figures tuned to it (a ~24 min cold start) stay reproducible.
//! * [`ChillerKind::Tec`]: thermoelectric modules from their datasheet figures, with the
//!   standard module equations
//!   Qc = N·(S·I·Tc − ½·I²·R − K·ΔT), P = N·(S·I·ΔT + I²·R), I = (V − S·ΔT)/R,
//!   and S, R, K derived from Imax, Vmax, ΔTmax at the hot-side temperature Th (Luo,
//!   "A simple method to estimate the physical characteristics of a thermoelectric cooler from
//!   vendor datasheets", Electronics Cooling, Sept. 2008):
//!   S = Vmax/Th, R = (Vmax/Imax)·(Th − ΔTmax)/Th, K = Imax·Vmax·(Th − ΔTmax)/(2·Th·ΔTmax).

use serde::{Deserialize, Serialize};

/// Which chiller the twin has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ChillerKind {
    /// The first twin's lumped, too-efficient TEC (legacy figures).
    #[default]
    Ideal,
    /// Four TEC1-12706 modules at 9 V on a 0.1 K/W fan-cooled heatsink.
    Tec,
}

/// One thermoelectric module's datasheet figures.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TecModule {
    /// Current at which ΔT is largest, A.
    pub i_max: f64,
    /// Voltage at `i_max` and ΔTmax, V.
    pub v_max: f64,
    /// Largest temperature difference (no heat pumped), K.
    pub dt_max: f64,
    /// Hot-side temperature the figures are given at, K.
    pub th_k: f64,
}

/// TEC1-12706 (Hebei I.T. datasheet, Th = 50 °C): Imax 6.4 A, Vmax 15.4 V, ΔTmax 68 K,
/// Qmax 57–59 W.
pub const TEC1_12706: TecModule = TecModule {
    i_max: 6.4,
    v_max: 15.4,
    dt_max: 68.0,
    th_k: 323.15,
};

/// The thermoelectric chiller assembly.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TecAssembly {
    /// The module.
    pub module: TecModule,
    /// Number of modules, each at `volts`.
    pub modules: f64,
    /// Voltage across each module while the relay is closed, V.
    pub volts: f64,
    /// Water → cold face resistance (cold block, its water-side film), K/W.
    pub r_cold: f64,
    /// Hot face → heatsink resistance (thermal paste, spreader), K/W.
    pub r_hot: f64,
}

/// The [`ChillerKind::Tec`] assembly: four TEC1-12706 in parallel on a 9 V rail (a buck
/// from the 12 V supply: at 12 V the Joule heat makes the hot side run away on this heatsink,
/// at 9 V each module runs near its best-COP current of ~2.5–3.5 A).
pub const REFERENCE_TEC: TecAssembly = TecAssembly {
    module: TEC1_12706,
    modules: 4.0,
    volts: 9.0,
    r_cold: 0.02,
    r_hot: 0.02,
};

/// What the module equations give at one operating point.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TecPoint {
    /// Heat pumped from the cold side, W (negative: the modules leak heat back).
    pub qc_w: f64,
    /// Electrical power, W.
    pub p_w: f64,
    /// Current per module, A.
    pub amps: f64,
}

impl TecModule {
    /// Seebeck coefficient, V/K.
    pub fn seebeck(&self) -> f64 {
        self.v_max / self.th_k
    }
    /// Electrical resistance, Ω.
    pub fn resistance(&self) -> f64 {
        self.v_max / self.i_max * (self.th_k - self.dt_max) / self.th_k
    }
    /// Thermal conductance, W/K.
    pub fn conductance(&self) -> f64 {
        self.i_max * self.v_max * (self.th_k - self.dt_max) / (2.0 * self.th_k * self.dt_max)
    }

    /// One module at current `amps` between faces at `cold_c` and `hot_c`.
    pub fn at_current(&self, amps: f64, cold_c: f64, hot_c: f64) -> TecPoint {
        let (s, r, k) = (self.seebeck(), self.resistance(), self.conductance());
        let dt = hot_c - cold_c;
        let tc = cold_c + 273.15;
        TecPoint {
            qc_w: s * amps * tc - 0.5 * amps * amps * r - k * dt,
            p_w: s * amps * dt + amps * amps * r,
            amps,
        }
    }

    /// One module at voltage `volts` (current set by the back-EMF S·ΔT).
    pub fn at_voltage(&self, volts: f64, cold_c: f64, hot_c: f64) -> TecPoint {
        let amps = ((volts - self.seebeck() * (hot_c - cold_c)) / self.resistance()).max(0.0);
        self.at_current(amps, cold_c, hot_c)
    }
}

impl TecAssembly {
    /// The assembly between water at `water_c` and a heatsink at `sink_c`: the face
    /// temperatures are solved by fixed-point iteration through the two resistances.
    pub fn pump(&self, water_c: f64, sink_c: f64) -> TecPoint {
        let mut point = TecPoint {
            qc_w: 0.0,
            p_w: 0.0,
            amps: 0.0,
        };
        for _ in 0..8 {
            let cold = water_c - self.r_cold * point.qc_w;
            let hot = sink_c + self.r_hot * (point.qc_w + point.p_w);
            let one = self.module.at_voltage(self.volts, cold, hot);
            point = TecPoint {
                qc_w: self.modules * one.qc_w,
                p_w: self.modules * one.p_w,
                amps: one.amps,
            };
        }
        point
    }
}

/// Lumped constants of [`ChillerKind::Ideal`].
mod ideal {
    /// Cooling capacity at zero temperature difference, W.
    pub const QMAX: f64 = 280.0;
    /// Temperature difference at which it moves no heat, K (TEC1-12706: 66–68 K).
    pub const DTMAX: f64 = 68.0;
    /// Electrical power while on, W (12 V × 7.5 A).
    pub const PELEC: f64 = 90.0;
    /// Water → cold face resistance, K/W.
    pub const COLD_BLOCK_R: f64 = 0.03;
}

impl ChillerKind {
    /// Heat pumped out of water at `water_c` by a powered chiller whose heatsink is at
    /// `sink_c`, and the electrical power it draws, W.
    pub fn pump(&self, water_c: f64, sink_c: f64) -> TecPoint {
        match self {
            Self::Ideal => {
                // Qc = Qmax·(1 − (Th − Tc)/ΔTmax), Tc = Tw − R·Qc, solved in closed form.
                let raw = ideal::QMAX * (1.0 - (sink_c - water_c) / ideal::DTMAX);
                let qc = raw / (1.0 + ideal::QMAX * ideal::COLD_BLOCK_R / ideal::DTMAX);
                TecPoint {
                    qc_w: qc.max(0.0),
                    p_w: ideal::PELEC,
                    amps: 7.5,
                }
            }
            Self::Tec => REFERENCE_TEC.pump(water_c, sink_c),
        }
    }

    /// Heatsink-to-room resistance with the fan turning, K/W (the legacy twin: 0.15,
    /// docs/REQUIREMENTS.md §5.3; the TEC assembly needs a larger 0.1 K/W fan-cooled sink,
    /// e.g. a 120 mm CPU-cooler class heatsink).
    pub fn heatsink_r_fan(&self) -> f64 {
        match self {
            Self::Ideal => 0.15,
            Self::Tec => 0.1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ideal_capacity_falls_with_hot_side_temperature() {
        let cold = ChillerKind::Ideal.pump(20.0, 25.0).qc_w;
        let warm = ChillerKind::Ideal.pump(20.0, 50.0).qc_w;
        assert!(cold > warm && warm > 0.0, "{cold} {warm}");
        assert_eq!(ChillerKind::Ideal.pump(0.0, 90.0).qc_w, 0.0);
    }
}
