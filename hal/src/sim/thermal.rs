//! Reservoir, chiller, hot-side heatsink with its fan, and the line to the nozzle (mist
//! temperature).
//!
//! Lumped-capacitance model integrated with explicit Euler steps of at most 10 ms; every time
//! constant here is seconds or more, so the steps are far inside the stability limit. Each step
//! reports the heat that crossed the model's boundary ([`ThermalFlows`]) so the whole twin's
//! energy balance can be checked.
//!
//! The plant's lumped figures:
//!
//! | figure | value | source |
//! |---|---|---|
//! | tank + cold block heat capacity | 400 J/K | ≈0.3 kg aluminium cold block at 900 J/kg·K + the polypropylene tank walls |
//! | reservoir heat gain from the room | 2 W/K | docs/REQUIREMENTS.md §5.3: 1.5–3 W/K; a 1.5 L tank with 10 mm foam |
//! | unpowered TEC bridge, hot ↔ cold side | 0.8 W/K | TEC1-12706: K ≈ 0.57 W/K a module ([`super::chiller::TecModule::conductance`]) |
//! | heatsink heat capacity | 400 J/K | ≈0.45 kg aluminium at 900 J/kg·K |
//! | heatsink → room, still air (fan off or dead) | 1 K/W | docs/REQUIREMENTS.md §5.3: ~1 K/W |

use super::chiller::ChillerKind;
use super::line::Line;

const TANK_HEAT_CAPACITY: f64 = 400.0;
const RESERVOIR_UA: f64 = 2.0;
const TEC_PASSIVE_G: f64 = 0.8;
const HEATSINK_HEAT_CAPACITY: f64 = 400.0;
const HEATSINK_R_STILL: f64 = 1.0;

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

/// Specific heat of water, J/(kg·K).
pub(crate) const WATER_CP: f64 = 4186.0;

/// Heat that crossed the thermal model's boundary during one step, J.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct ThermalFlows {
    /// Electrical work of the chiller (ends up in the heatsink).
    pub chiller_work: f64,
    /// From the room into the reservoir, the heatsink and the line.
    pub from_room: f64,
    /// Enthalpy of the water that left through the nozzle (relative to 0 °C).
    pub water_out: f64,
}

/// The lumped thermal state.
#[derive(Debug, Clone)]
pub(crate) struct Thermal {
    /// Reservoir water, °C.
    pub reservoir_c: f64,
    /// Hot-side heatsink, °C.
    pub heatsink_c: f64,
    /// The line to the nozzle.
    pub line: Line,
    /// Heat the chiller took from the water in the last step, W (for diagnostics).
    pub last_qc_w: f64,
    /// Electrical power of the chiller in the last step, W.
    pub last_p_w: f64,
    chiller: ChillerKind,
}

impl Thermal {
    /// Power-on state: everything at `reservoir_c` / room temperature.
    pub(crate) fn new(reservoir_c: f64, ambient_c: f64, chiller: ChillerKind, line: Line) -> Self {
        Self {
            reservoir_c: reservoir_c.max(0.0),
            heatsink_c: ambient_c,
            line,
            last_qc_w: 0.0,
            last_p_w: 0.0,
            chiller,
        }
    }

    /// Water temperature at the nozzle, °C.
    pub(crate) fn mist_c(&self) -> f64 {
        self.line.nozzle_c()
    }

    /// Heat content relative to 0 °C of the reservoir (with `water_litres`), heatsink and
    /// line, J.
    pub(crate) fn heat_j(&self, water_litres: f64) -> f64 {
        (water_litres.max(0.0) * WATER_CP + TANK_HEAT_CAPACITY) * self.reservoir_c
            + HEATSINK_HEAT_CAPACITY * self.heatsink_c
            + self.line.heat_j()
    }

    /// Advances the state by `dt` seconds with `water_litres` in the tank, after `removed`
    /// litres left it this step (through the nozzle or a leak).
    pub(crate) fn step(
        &mut self,
        dt: f64,
        water_litres: f64,
        removed: f64,
        d: &ThermalDrive,
    ) -> ThermalFlows {
        let ta = d.ambient_c;
        let powered = d.chiller_on && d.chiller_works;
        let point = if powered {
            Some(self.chiller.pump(self.reservoir_c, self.heatsink_c))
        } else {
            None
        };
        let (qc, pelec) = point.map_or((0.0, 0.0), |p| (p.qc_w, p.p_w));
        // Unpowered modules are a plain thermal bridge between the sides.
        let passive = if powered {
            0.0
        } else {
            TEC_PASSIVE_G * (self.heatsink_c - self.reservoir_c)
        };
        let r_hs = if d.fan_turning {
            self.chiller.heatsink_r_fan()
        } else {
            HEATSINK_R_STILL
        };

        let c_res = water_litres.max(0.0) * WATER_CP + TANK_HEAT_CAPACITY;
        let room_res = RESERVOIR_UA * (ta - self.reservoir_c);
        let room_hs = (ta - self.heatsink_c) / r_hs;
        let q_res = room_res - qc + passive;
        let q_hs = qc + pelec - passive + room_hs;

        let res_before = self.reservoir_c;
        self.reservoir_c += dt * q_res / c_res;
        // Water cannot be colder than 0 °C: below it, freezing releases latent heat (334 kJ/kg,
        // far more than the chiller can remove in a session) and holds it at 0 °C. The latent
        // heat is booked as if it came from the room, so the ledger still balances.
        let mut latent = 0.0;
        if self.reservoir_c < 0.0 {
            latent = -self.reservoir_c * c_res;
            self.reservoir_c = 0.0;
        }
        self.heatsink_c += dt * q_hs / HEATSINK_HEAT_CAPACITY;
        self.last_qc_w = qc;
        self.last_p_w = pelec;

        let line = self.line.step(dt, d.nozzle_flow_l_min, res_before, ta);
        ThermalFlows {
            chiller_work: dt * pelec,
            from_room: dt * (room_res + room_hs) + latent + line.from_room,
            // What left the tank, less what of it went into the line, plus what left the
            // nozzle (a leak's water leaves at tank temperature).
            water_out: removed * WATER_CP * res_before - line.water_in + line.water_out,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idle_unit_stays_at_room_temperature() {
        let mut t = Thermal::new(22.0, 22.0, ChillerKind::Ideal, Line::legacy(22.0));
        let d = ThermalDrive {
            chiller_on: false,
            chiller_works: true,
            fan_turning: false,
            nozzle_flow_l_min: 0.0,
            ambient_c: 22.0,
        };
        for _ in 0..100_000 {
            t.step(0.01, 1.5, 0.0, &d);
        }
        assert!((t.reservoir_c - 22.0).abs() < 1e-9);
        assert!((t.heatsink_c - 22.0).abs() < 1e-9);
    }
}
