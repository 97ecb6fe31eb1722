//! Reservoir, thermo-electric chiller, hot-side heatsink with its fan, and the line to the
//! nozzle (mist temperature).
//!
//! Lumped-capacitance model integrated with explicit Euler steps of at most 10 ms; every time
//! constant here is tens of seconds or more (the shortest is the mist line, 2.5 s), so the
//! steps are far inside the stability limit.

/// Specific heat of water, J/(kg·K).
pub(crate) const WATER_CP: f64 = 4186.0;

/// Heat capacity of the empty tank and the chiller's cold block, J/K (≈0.3 kg aluminium cold
/// block at 900 J/kg·K plus the polypropylene tank walls).
const TANK_HEAT_CAPACITY: f64 = 400.0;

/// Heat gain of the insulated reservoir from the room, W/K (docs/REQUIREMENTS.md §5.3: 1.5–3 W/K; a 1.5 L tank
/// with 10 mm foam is about 2 W/K).
const RESERVOIR_UA: f64 = 2.0;

/// Cooling capacity of the lumped TEC assembly at zero temperature difference, W (several
/// TEC1-12706-class modules run at part current, where their COP is best). Chosen with
/// [`TEC_PELEC`] so the 10–30 min cold start of docs/REQUIREMENTS.md §5.3 (22 → 4 °C, 1.5 L) holds with a
/// 0.15 K/W heatsink: it takes ~24 min here.
const TEC_QMAX: f64 = 280.0;

/// TEC maximum temperature difference at which it moves no heat, K (TEC1-12706: 66–68 K).
const TEC_DTMAX: f64 = 68.0;

/// TEC electrical power while the relay is on, W (12 V × 7.5 A), all of it ending up in the
/// hot-side heatsink.
const TEC_PELEC: f64 = 90.0;

/// Thermal resistance of the cold block between the water and the TEC cold face, K/W.
const COLD_BLOCK_R: f64 = 0.03;

/// Passive conductance of the TEC modules between hot and cold side when unpowered, W/K.
const TEC_PASSIVE_G: f64 = 0.8;

/// Heat capacity of the hot-side heatsink, J/K (≈0.45 kg aluminium at 900 J/kg·K).
const HEATSINK_HEAT_CAPACITY: f64 = 400.0;

/// Heatsink-to-room thermal resistance with the fan turning, K/W (docs/REQUIREMENTS.md §5.3: ~0.15 K/W).
const HEATSINK_R_FAN: f64 = 0.15;

/// Heatsink-to-room thermal resistance in still air (fan off or dead), K/W (docs/REQUIREMENTS.md §5.3: ~1 K/W).
const HEATSINK_R_STILL: f64 = 1.0;

/// Time constant of the mist temperature while water flows, s: set by the nozzle body's and
/// the last centimetres of line's thermal mass (docs/REQUIREMENTS.md §5.3: 2–3 s).
const MIST_TAU_FLOWING: f64 = 2.5;

/// Time constant of the standing water in the line drifting to room temperature, s
/// (docs/REQUIREMENTS.md §5.3: 60–120 s).
const MIST_TAU_STANDING: f64 = 90.0;

/// Heat picked up by the line from the room while flowing, W/K. At 0.2 L/min (14 W/K of
/// water flow) and 18 K between room and water the mist arrives ~0.5 °C warmer than the
/// reservoir (an insulated line).
const LINE_UA: f64 = 0.39;

/// What drives the thermal model during one step.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ThermalDrive {
    /// The chiller relay is closed.
    pub chiller_on: bool,
    /// The chiller moves heat when powered (false under `ChillerDead`).
    pub chiller_works: bool,
    /// The fan is turning (commanded on and not `FanDead`).
    pub fan_turning: bool,
    /// Water leaving through the nozzle, L/min.
    pub nozzle_flow_l_min: f64,
    /// Room temperature, °C.
    pub ambient_c: f64,
}

/// The lumped thermal state.
#[derive(Debug, Clone)]
pub(crate) struct Thermal {
    /// Reservoir water, °C.
    pub reservoir_c: f64,
    /// Hot-side heatsink, °C.
    pub heatsink_c: f64,
    /// Water at the nozzle, °C.
    pub mist_c: f64,
    /// Heat the TEC took from the water in the last step, W (for diagnostics).
    pub last_qc_w: f64,
}

impl Thermal {
    /// Power-on state: everything at `reservoir_c` / room temperature.
    pub(crate) fn new(reservoir_c: f64, ambient_c: f64) -> Self {
        Self {
            reservoir_c: reservoir_c.max(0.0),
            heatsink_c: ambient_c,
            mist_c: ambient_c,
            last_qc_w: 0.0,
        }
    }

    /// Heat pumped out of the water by a powered TEC, W, with the cold-block drop solved in
    /// closed form: Qc = Qmax·(1 − (Th − Tc)/ΔTmax), Tc = Tw − R·Qc, clipped at 0.
    fn tec_qc(water_c: f64, hot_c: f64) -> f64 {
        let raw = TEC_QMAX * (1.0 - (hot_c - water_c) / TEC_DTMAX);
        let qc = raw / (1.0 + TEC_QMAX * COLD_BLOCK_R / TEC_DTMAX);
        qc.max(0.0)
    }

    /// Advances the state by `dt` seconds with `water_litres` in the tank.
    pub(crate) fn step(&mut self, dt: f64, water_litres: f64, d: &ThermalDrive) {
        let ta = d.ambient_c;
        let powered = d.chiller_on && d.chiller_works;
        let (qc, pelec) = if powered {
            (Self::tec_qc(self.reservoir_c, self.heatsink_c), TEC_PELEC)
        } else {
            (0.0, 0.0)
        };
        // Unpowered modules are a plain thermal bridge between the sides.
        let passive = if powered {
            0.0
        } else {
            TEC_PASSIVE_G * (self.heatsink_c - self.reservoir_c)
        };
        let r_hs = if d.fan_turning {
            HEATSINK_R_FAN
        } else {
            HEATSINK_R_STILL
        };

        let c_res = water_litres.max(0.0) * WATER_CP + TANK_HEAT_CAPACITY;
        let q_res = RESERVOIR_UA * (ta - self.reservoir_c) - qc + passive;
        let q_hs = qc + pelec - passive - (self.heatsink_c - ta) / r_hs;

        self.reservoir_c += dt * q_res / c_res;
        // Water cannot be colder than 0 °C: below it, freezing releases latent heat (334 kJ/kg,
        // far more than the chiller can remove in a session) and holds it at 0 °C.
        if self.reservoir_c < 0.0 {
            self.reservoir_c = 0.0;
        }
        self.heatsink_c += dt * q_hs / HEATSINK_HEAT_CAPACITY;
        self.last_qc_w = qc;

        // The line to the nozzle.
        let q = d.nozzle_flow_l_min;
        let (target, tau) = if q > 0.01 {
            // Heat-exchanger effectiveness of the line (NTU method): the water can approach
            // room temperature but never pass it, however slow the flow.
            let water_w_per_k = q / 60.0 * WATER_CP; // 1 L of water ≈ 1 kg
            let effectiveness = 1.0 - (-LINE_UA / water_w_per_k).exp();
            let pickup = effectiveness * (ta - self.reservoir_c);
            (self.reservoir_c + pickup, MIST_TAU_FLOWING)
        } else {
            (ta, MIST_TAU_STANDING)
        };
        self.mist_c += (target - self.mist_c) * (1.0 - (-dt / tau).exp());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tec_capacity_falls_with_hot_side_temperature() {
        let cold = Thermal::tec_qc(20.0, 25.0);
        let warm = Thermal::tec_qc(20.0, 50.0);
        assert!(cold > warm && warm > 0.0, "{cold} {warm}");
        assert_eq!(Thermal::tec_qc(0.0, 90.0), 0.0);
    }

    #[test]
    fn idle_unit_stays_at_room_temperature() {
        let mut t = Thermal::new(22.0, 22.0);
        let d = ThermalDrive {
            chiller_on: false,
            chiller_works: true,
            fan_turning: false,
            nozzle_flow_l_min: 0.0,
            ambient_c: 22.0,
        };
        for _ in 0..100_000 {
            t.step(0.01, 1.5, &d);
        }
        assert!((t.reservoir_c - 22.0).abs() < 1e-9);
        assert!((t.heatsink_c - 22.0).abs() < 1e-9);
    }
}
