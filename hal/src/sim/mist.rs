//! Heat transfer between the mist and the skin, with an energy balance on the water, and the
//! water film that evaporates after the spray stops.
//!
//! Legacy: a fixed film coefficient 2000·√(flow/0.2 L/min) W/(m²·K), capped at 3000, with no
//! limit from the water's heat capacity.
//!
//! Spray: the spray covers a footprint of area A_f = max(spot, π·(d·tan(θ/2))²) at nozzle
//! distance d with cone angle θ; the volumetric flux Q'' = Q/A_f sets the film coefficient by
//! the single-phase spray-cooling correlation's exponent, h ∝ Q''^0.61 (Rybicki & Mudawar,
//! Int. J. Heat Mass Transfer 49 (2006) 5–16: Nu₃₂ = 4.70·Re₃₂^0.61·Pr^0.32), anchored at
//! 2000 W/(m²·K) for 0.2 L/min over 50 cm² (docs/REQUIREMENTS.md §5.3: 1500–3000). The water
//! that lands on the spot (ṁ_s = ṁ·A_s/A_f) warms as it takes heat: treated as a heat
//! exchanger of NTU = h·A_s/(ṁ_s·c), the skin sees h_eff = (ṁ_s·c/A_s)·(1 − e^(−NTU)) towards
//! the incoming water temperature, and the run-off leaves warmer by q·A_s/(ṁ_s·c).

/// Film coefficient at the reference flux, W/(m²·K).
const H_REF: f64 = 2000.0;

/// Reference volumetric flux, m/s (0.2 L/min over 50 cm²).
const FLUX_REF: f64 = 0.2e-3 / 60.0 / 50.0e-4;

/// Exponent of the flux (Rybicki & Mudawar 2006).
const FLUX_EXPONENT: f64 = 0.61;

/// Full cone angle of the misting nozzle, degrees (hollow/full-cone misting nozzles: 60–90°).
const CONE_DEG: f64 = 60.0;

/// Legacy film coefficient at 0.2 L/min, W/(m²·K).
const LEGACY_H_NOMINAL: f64 = 2000.0;

/// Legacy cap, W/(m²·K).
const LEGACY_H_MAX: f64 = 3000.0;

/// Water film left on the skin when a spray stops, kg/m² (20 µm; the rest runs off).
const FILM_MAX_KG_M2: f64 = 0.02;

/// Latent heat of evaporation of water near skin temperature, J/kg (2.43 MJ/kg at 30 °C).
const LATENT_J_KG: f64 = 2.43e6;

/// Mass-transfer coefficient of a resting patient's skin to still room air, m/s: from natural
/// convection h_c ≈ 4 W/(m²·K) by the Lewis relation h_m = h_c/(ρ·c_p·Le^(2/3)) with ρ·c_p =
/// 1206 J/(m³·K), Le = 0.9 (Incropera ch. 6.7).
const H_MASS_M_S: f64 = 4.0 / (1206.0 * 0.932);

/// Room relative humidity for the evaporation, fraction.
const ROOM_RH: f64 = 0.5;

/// Where and how the nozzle sprays.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct SprayGeometry {
    /// Treated spot, m².
    pub spot_m2: f64,
    /// Nozzle to skin, m.
    pub distance_m: f64,
}

impl SprayGeometry {
    /// Area the spray covers, m².
    pub(crate) fn footprint_m2(&self) -> f64 {
        let r = self.distance_m * (0.5 * CONE_DEG.to_radians()).tan();
        (std::f64::consts::PI * r * r).max(self.spot_m2)
    }

    /// Film coefficient of a spray of `flow_l_min` (before the water's own limit), W/(m²·K).
    pub(crate) fn h_spray(&self, flow_l_min: f64) -> f64 {
        if flow_l_min <= 0.0 {
            return 0.0;
        }
        let flux = flow_l_min * 1e-3 / 60.0 / self.footprint_m2();
        H_REF * (flux / FLUX_REF).powf(FLUX_EXPONENT)
    }

    /// The effective coefficient the skin sees, with the water's warming included, W/(m²·K).
    pub(crate) fn h_effective(&self, flow_l_min: f64) -> f64 {
        let h = self.h_spray(flow_l_min);
        if h <= 0.0 {
            return 0.0;
        }
        // Capacity rate of the water landing on the spot, per spot area, W/(m²·K).
        let c_rate = flow_l_min / 60.0 * super::thermal::WATER_CP / self.footprint_m2();
        c_rate * (1.0 - (-h / c_rate).exp())
    }
}

/// Legacy film coefficient for a nozzle flow, W/(m²·K).
pub(crate) fn h_legacy(flow_l_min: f64) -> f64 {
    if flow_l_min <= 0.0 {
        0.0
    } else {
        (LEGACY_H_NOMINAL * (flow_l_min / 0.2).sqrt()).min(LEGACY_H_MAX)
    }
}

/// Saturated water-vapour density at `c`, kg/m³ (Magnus formula, Alduchov & Eskridge 1996,
/// over the ideal-gas law).
fn vapour_density(c: f64) -> f64 {
    let p = 611.2 * (17.62 * c / (243.12 + c)).exp();
    p / (461.5 * (c + 273.15))
}

/// The water film on the spot.
#[derive(Debug, Clone, Default)]
pub(crate) struct Film {
    /// Water on the skin, kg/m².
    pub kg_m2: f64,
}

impl Film {
    /// The spray wets the spot.
    pub(crate) fn wet(&mut self) {
        self.kg_m2 = FILM_MAX_KG_M2;
    }

    /// Evaporative heat drawn from a surface at `surface_c` in a room at `ambient_c`,
    /// W/m², and the film's loss over `dt` s.
    pub(crate) fn evaporate(&mut self, dt: f64, surface_c: f64, ambient_c: f64) -> f64 {
        if self.kg_m2 <= 0.0 {
            return 0.0;
        }
        let drive = vapour_density(surface_c) - ROOM_RH * vapour_density(ambient_c);
        let rate = (H_MASS_M_S * drive).max(0.0).min(self.kg_m2 / dt); // kg/(m²·s)
        self.kg_m2 -= rate * dt;
        rate * LATENT_J_KG
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_water_limits_the_heat_a_large_spot_can_lose() {
        let big = SprayGeometry {
            spot_m2: 100e-4,
            distance_m: 0.05,
        };
        let small = SprayGeometry {
            spot_m2: 10e-4,
            distance_m: 0.05,
        };
        assert!(
            (SprayGeometry {
                spot_m2: 50e-4,
                ..big
            }
            .h_spray(0.2)
                - 2000.0)
                .abs()
                < 1.0
        );
        assert!(big.h_effective(0.2) < big.h_spray(0.2));
        assert!(small.h_effective(0.2) > big.h_effective(0.2));
        // 100 cm²: the water carries ~14 W/K over 0.01 m², so h_eff < 1400.
        assert!(big.h_effective(0.2) < 1400.0, "{}", big.h_effective(0.2));
    }

    #[test]
    fn a_wet_film_evaporates_faster_on_warm_skin_and_runs_out() {
        let mut warm = Film::default();
        warm.wet();
        let mut cold = warm.clone();
        let qw = warm.evaporate(1.0, 32.0, 22.0);
        let qc = cold.evaporate(1.0, 12.0, 22.0);
        assert!(qw > 100.0 && qw < 400.0, "{qw}");
        assert!(qc < qw / 3.0, "{qc}");
        for _ in 0..2000 {
            warm.evaporate(1.0, 32.0, 22.0);
        }
        assert_eq!(warm.evaporate(1.0, 32.0, 22.0), 0.0);
    }
}
