//! The line from the pump to the nozzle: what temperature the mist leaves at.
//!
//! Two models:
//! * legacy: the mist temperature lags the reservoir (τ 2.5 s) while water flows and drifts to
//!   room temperature (τ 90 s) while it stands; no water mass, no energy bookkeeping.
//! * plug flow: the line's water and walls as [`SEGMENTS`] lumps, water pushed through them
//!   by the flow (upwind), each lump exchanging heat with the room. The standing line warms to
//!   room temperature (τ ≈ 90 s, docs/REQUIREMENTS.md §5.3: 60–120 s), so the first ~4 s of a
//!   spray are the warm plug (15 mL at 0.2 L/min) and then the cold reservoir water arrives.
//!
//! The line's figures:
//!
//! | figure | value | source |
//! |---|---|---|
//! | water in the line | 15 mL | 1.2 m of 4 mm bore PU tube: π·2²·1200 mm³ |
//! | walls and nozzle | 56 J/K | 1.2 m of 4/6 mm PU tube ≈ 23 g at 1.8 J/g·K + a 40 g brass nozzle at 0.38 J/g·K |
//! | standing line → room time constant | 90 s | docs/REQUIREMENTS.md §5.3: 60–120 s |
//! | legacy: mist lag while flowing | 2.5 s | docs/REQUIREMENTS.md §5.3: 2–3 s |
//! | legacy: pick-up from the room while flowing | 0.39 W/K | ~0.5 °C at 0.2 L/min and 18 K |
//!
//! Priming, on the reference hardware (docs/REQUIREMENTS.md §3): the pump's bypass
//! recirculates only inside the pump, so nothing but a spray moves the line's water. A real
//! unit purges the warm plug to waste — a short spray with the handpiece in its holster, over
//! the holster's drip cup ([`super::SimUnit::set_holstered`]) — at most ~30 s before the
//! patient; later than ~90 s the line is warm again.

use super::thermal::WATER_CP;

const LINE_LITRES: f64 = 0.015;
const WALL_J_K: f64 = 56.0;
const STANDING_TAU_S: f64 = 90.0;
const LEGACY_TAU_FLOWING: f64 = 2.5;
const LEGACY_LINE_UA: f64 = 0.39;

/// Heat that crossed the line's boundary in a step, J (enthalpies relative to 0 °C).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct LineFlows {
    /// Enthalpy of the water that entered from the pump.
    pub water_in: f64,
    /// Enthalpy of the water that left at the nozzle.
    pub water_out: f64,
    /// Heat from the room.
    pub from_room: f64,
}

/// Lumps of the plug-flow line.
pub(crate) const SEGMENTS: usize = 6;

/// The line's state.
#[derive(Debug, Clone)]
pub(crate) enum Line {
    /// The first twin's first-order lag.
    Legacy {
        /// Mist temperature, °C.
        mist_c: f64,
    },
    /// Plug flow through lumps of water and wall.
    Plug {
        /// Lump temperatures, pump end first, °C.
        t: [f64; SEGMENTS],
    },
}

impl Line {
    /// The legacy lag at `c`.
    pub(crate) fn legacy(c: f64) -> Self {
        Self::Legacy { mist_c: c }
    }

    /// A plug-flow line at `c` throughout.
    pub(crate) fn plug(c: f64) -> Self {
        Self::Plug { t: [c; SEGMENTS] }
    }

    /// Water temperature at the nozzle, °C.
    pub(crate) fn nozzle_c(&self) -> f64 {
        match self {
            Self::Legacy { mist_c } => *mist_c,
            Self::Plug { t } => t[SEGMENTS - 1],
        }
    }

    /// Heat content relative to 0 °C, J (the legacy lag holds none).
    pub(crate) fn heat_j(&self) -> f64 {
        match self {
            Self::Legacy { .. } => 0.0,
            Self::Plug { t } => t.iter().sum::<f64>() * lump_j_k(),
        }
    }

    /// Advances by `dt` s with `flow_l_min` through the nozzle, water entering at `inlet_c`,
    /// the room at `ambient_c`.
    pub(crate) fn step(
        &mut self,
        dt: f64,
        flow_l_min: f64,
        inlet_c: f64,
        ambient_c: f64,
    ) -> LineFlows {
        let water_w_k = flow_l_min.max(0.0) / 60.0 * WATER_CP; // 1 L of water ≈ 1 kg
        match self {
            Self::Legacy { mist_c } => {
                let (target, tau) = if flow_l_min > 0.01 {
                    // NTU method: the water can approach room temperature but never pass it.
                    let effectiveness = 1.0 - (-LEGACY_LINE_UA / water_w_k).exp();
                    (
                        inlet_c + effectiveness * (ambient_c - inlet_c),
                        LEGACY_TAU_FLOWING,
                    )
                } else {
                    (ambient_c, STANDING_TAU_S)
                };
                *mist_c += (target - *mist_c) * (1.0 - (-dt / tau).exp());
                let through = water_w_k * dt * inlet_c;
                LineFlows {
                    water_in: through,
                    water_out: through,
                    from_room: 0.0,
                }
            }
            Self::Plug { t } => {
                let c = lump_j_k();
                let ua = c / STANDING_TAU_S;
                let mut out = LineFlows {
                    water_in: water_w_k * dt * inlet_c,
                    water_out: water_w_k * dt * t[SEGMENTS - 1],
                    from_room: 0.0,
                };
                let mut upstream = inlet_c;
                for ti in t.iter_mut() {
                    let room = ua * (ambient_c - *ti);
                    out.from_room += dt * room;
                    let next = *ti + dt * (water_w_k * (upstream - *ti) + room) / c;
                    upstream = *ti;
                    *ti = next;
                }
                out
            }
        }
    }
}

/// Heat capacity of one lump (water + wall), J/K.
fn lump_j_k() -> f64 {
    (LINE_LITRES * WATER_CP + WALL_J_K) / SEGMENTS as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_standing_line_warms_to_room_and_a_spray_brings_the_cold_water() {
        let mut line = Line::plug(4.0);
        for _ in 0..45_000 {
            line.step(0.01, 0.0, 4.0, 22.0);
        }
        assert!(line.nozzle_c() > 21.0, "{}", line.nozzle_c());
        let mut at_2s = 0.0;
        for i in 0..1500 {
            line.step(0.01, 0.2, 4.0, 22.0);
            if i == 199 {
                at_2s = line.nozzle_c();
            }
        }
        assert!(at_2s > 12.0, "the warm plug comes first: {at_2s}");
        let end = line.nozzle_c();
        assert!((4.5..7.0).contains(&end), "{at_2s} {end}");
    }
}
