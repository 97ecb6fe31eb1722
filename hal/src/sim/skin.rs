//! A patch of skin: 1-D explicit finite-volume heat conduction over the top 3 mm, heated by
//! the laser and cooled by air or by the mist.
//!
//! 30 cells of 0.1 mm; cell 0 is the epidermis, the rest dermis. Below the grid a lumped
//! subcutaneous layer connects to the body core at 37 °C. The surface exchanges heat with the
//! room (natural convection + radiation) and, while the nozzle sprays, with the mist.
//!
//! Explicit scheme: stable while every cell's dt ≤ C / ΣG (for the interior that is the
//! classic dx²/(2α) ≈ 56 ms); [`Skin::step`] sub-steps at 90 % of that limit.

/// Number of cells.
const CELLS: usize = 30;

/// Cell thickness, m (0.1 mm; 3 mm in all).
const DX: f64 = 1.0e-4;

/// Epidermis conductivity, W/(m·K) (PMC5459687: 0.21).
const K_EPIDERMIS: f64 = 0.21;

/// Dermis conductivity, W/(m·K) (PMC5459687: 0.29–0.37).
const K_DERMIS: f64 = 0.33;

/// Volumetric heat capacity of skin, J/(m³·K) (ρ ≈ 1100 kg/m³ × c ≈ 3400 J/kg·K).
const RHO_C: f64 = 3.7e6;

/// Body core temperature, °C.
pub(crate) const CORE_C: f64 = 37.0;

/// Resistance of the subcutaneous tissue between the grid's bottom and the core, m²·K/W
/// (≈7 mm of fat at 0.2 W/m·K). With it the resting surface sits at ~32.4 °C in a 22 °C
/// room, as measured on forearm/face skin; holding 37 °C right at 3 mm depth would put the
/// surface at ~35.8 °C.
const R_SUBCUTIS: f64 = 0.035;

/// Surface film coefficient to room air, W/(m²·K) (natural convection + linearised
/// radiation of a resting patient's face or forearm).
const H_AIR: f64 = 10.0;

/// Mist film coefficient at the nominal 0.2 L/min, W/(m²·K) (low-flux spray cooling,
/// docs/REQUIREMENTS.md §5.3: 1500–3000); it scales with √flow, so 0.1 L/min gives ~1400 and
/// 0.4 L/min ~2800. Note that any film
/// coefficient above a few hundred pulls the *surface* of a laser-heated patch below 26 °C
/// within seconds (skin's thermal effusivity is only ~1100 W·s^½/m²·K): with this value a
/// 52 °C surface falls below 26 °C in ~1 s and below 10 °C in ~7 s of 4 °C mist.
const H_MIST_NOMINAL: f64 = 2000.0;

/// Nozzle flow at which [`H_MIST_NOMINAL`] applies, L/min.
const MIST_NOMINAL_L_MIN: f64 = 0.2;

/// Upper bound of the mist film coefficient, W/(m²·K).
const H_MIST_MAX: f64 = 3000.0;

/// Optical absorption depth of the laser energy (area-averaged fractional columns), m:
/// 92 % lands in the top 0.5 mm.
const LASER_DEPTH: f64 = 0.2e-3;

/// Energy per area deposited by a pass of fluence 1.0, J/m² (4 J/cm² area-averaged);
/// calibrated so a 2 s pass lifts the resting 32.4 °C surface to ~52 °C (0.5 s: ~62 °C,
/// 5 s: ~46 °C, as more of the heat diffuses down during a longer pass).
pub(crate) const LASER_J_PER_M2: f64 = 40_000.0;

/// What acts on the skin during one step.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SkinDrive {
    /// Room temperature, °C.
    pub ambient_c: f64,
    /// Flow out of the nozzle, L/min (0 when not spraying).
    pub mist_l_min: f64,
    /// Mist temperature, °C.
    pub mist_c: f64,
    /// Laser power absorbed per area, W/m² (0 when the laser is off).
    pub laser_w_m2: f64,
}

/// Temperatures of the patch.
#[derive(Debug, Clone)]
pub(crate) struct Skin {
    t: [f64; CELLS],
    k: [f64; CELLS],
    /// Conductance between cell i and i+1, W/(m²·K).
    g: [f64; CELLS - 1],
    /// Conductance from the last cell to the core, W/(m²·K).
    g_core: f64,
    /// Fraction of the laser energy absorbed in each cell.
    absorb: [f64; CELLS],
    /// Surface temperature after the last step, °C.
    surface_c: f64,
}

/// Mist film coefficient for a nozzle flow, W/(m²·K).
pub(crate) fn h_mist(flow_l_min: f64) -> f64 {
    if flow_l_min <= 0.0 {
        0.0
    } else {
        (H_MIST_NOMINAL * (flow_l_min / MIST_NOMINAL_L_MIN).sqrt()).min(H_MIST_MAX)
    }
}

impl Skin {
    /// A patch at rest in a room at `ambient_c` (the steady conduction profile).
    pub(crate) fn new(ambient_c: f64) -> Self {
        let mut k = [K_DERMIS; CELLS];
        k[0] = K_EPIDERMIS;
        let mut g = [0.0; CELLS - 1];
        for (i, gi) in g.iter_mut().enumerate() {
            *gi = 1.0 / (0.5 * DX / k[i] + 0.5 * DX / k[i + 1]);
        }
        let g_core = 1.0 / (0.5 * DX / k[CELLS - 1] + R_SUBCUTIS);
        let mut absorb = [0.0; CELLS];
        for (i, a) in absorb.iter_mut().enumerate() {
            let top = i as f64 * DX;
            *a = (-top / LASER_DEPTH).exp() - (-(top + DX) / LASER_DEPTH).exp();
        }
        let mut skin = Self {
            t: [CORE_C; CELLS],
            k,
            g,
            g_core,
            absorb,
            surface_c: CORE_C,
        };
        skin.settle(ambient_c);
        skin
    }

    /// Sets the steady resting profile for a room at `ambient_c` (series resistances).
    fn settle(&mut self, ambient_c: f64) {
        let g_surf = 1.0 / (0.5 * DX / self.k[0] + 1.0 / H_AIR);
        let r_total =
            1.0 / g_surf + self.g.iter().map(|g| 1.0 / g).sum::<f64>() + 1.0 / self.g_core;
        let q = (CORE_C - ambient_c) / r_total; // W/m², core → room
        self.surface_c = ambient_c + q / H_AIR;
        self.t[0] = ambient_c + q / g_surf;
        for i in 1..CELLS {
            self.t[i] = self.t[i - 1] + q / self.g[i - 1];
        }
    }

    /// Surface temperature, °C.
    pub(crate) fn surface_c(&self) -> f64 {
        self.surface_c
    }

    /// Hottest point of the patch (surface included), °C.
    pub(crate) fn peak_c(&self) -> f64 {
        self.t.iter().copied().fold(self.surface_c, f64::max)
    }

    /// Coldest point of the patch (surface included), °C.
    pub(crate) fn min_c(&self) -> f64 {
        self.t.iter().copied().fold(self.surface_c, f64::min)
    }

    /// The largest stable explicit step for a surface film coefficient `h`, s.
    fn stable_dt(&self, h: f64) -> f64 {
        let c = RHO_C * DX;
        let g_surf = 1.0 / (0.5 * DX / self.k[0] + 1.0 / h);
        let mut worst = g_surf + self.g[0];
        for i in 1..CELLS - 1 {
            worst = worst.max(self.g[i - 1] + self.g[i]);
        }
        worst = worst.max(self.g[CELLS - 2] + self.g_core);
        c / worst
    }

    /// Advances by `dt` seconds under `d`.
    pub(crate) fn step(&mut self, dt: f64, d: &SkinDrive) {
        let hm = h_mist(d.mist_l_min);
        let h = H_AIR + hm;
        // Both films act in parallel on the surface: one film towards their weighted mean.
        let t_env = (H_AIR * d.ambient_c + hm * d.mist_c) / h;
        let g_surf = 1.0 / (0.5 * DX / self.k[0] + 1.0 / h);
        let limit = 0.9 * self.stable_dt(h);
        let n = (dt / limit).ceil().max(1.0);
        let sub = dt / n;
        let coef = sub / (RHO_C * DX);
        let mut flux = [0.0; CELLS + 1]; // flux[i]: W/m² flowing down into cell i
        for _ in 0..n as usize {
            flux[0] = g_surf * (t_env - self.t[0]);
            for (i, pair) in self.t.windows(2).enumerate() {
                flux[i + 1] = self.g[i] * (pair[0] - pair[1]);
            }
            flux[CELLS] = self.g_core * (self.t[CELLS - 1] - CORE_C);
            for i in 0..CELLS {
                self.t[i] += coef * (flux[i] - flux[i + 1] + d.laser_w_m2 * self.absorb[i]);
            }
        }
        let q_out = g_surf * (self.t[0] - t_env);
        self.surface_c = self.t[0] - q_out * 0.5 * DX / self.k[0];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resting_surface_is_about_32_to_33_c_and_stays_there() {
        let mut s = Skin::new(22.0);
        let start = s.surface_c();
        assert!((32.0..=33.0).contains(&start), "{start}");
        let rest = SkinDrive {
            ambient_c: 22.0,
            mist_l_min: 0.0,
            mist_c: 22.0,
            laser_w_m2: 0.0,
        };
        for _ in 0..6000 {
            s.step(0.01, &rest);
        }
        assert!(
            (s.surface_c() - start).abs() < 0.01,
            "{} vs {start}",
            s.surface_c()
        );
    }

    #[test]
    fn explicit_step_is_within_the_stability_limit() {
        let s = Skin::new(22.0);
        let alpha = K_DERMIS / RHO_C;
        let classic = DX * DX / (2.0 * alpha);
        assert!(s.stable_dt(H_AIR) <= classic * 1.0001);
    }

    #[test]
    fn long_steps_are_sub_stepped_and_stay_bounded() {
        // One 1 s step is 20x the explicit limit; without sub-stepping it would oscillate.
        let mut s = Skin::new(22.0);
        let spray = SkinDrive {
            ambient_c: 22.0,
            mist_l_min: 0.2,
            mist_c: 4.0,
            laser_w_m2: 0.0,
        };
        let mut last = s.surface_c();
        for _ in 0..60 {
            s.step(1.0, &spray);
            assert!(s.min_c() >= 4.0 - 1e-9, "{}", s.min_c());
            assert!(s.peak_c() <= CORE_C + 1e-9, "{}", s.peak_c());
            assert!(
                s.surface_c() <= last + 1e-9,
                "surface rose under steady mist"
            );
            last = s.surface_c();
        }
        assert!(last < 10.0, "{last}");
    }

    #[test]
    fn absorption_profile_puts_most_energy_in_the_top_half_millimetre() {
        let s = Skin::new(22.0);
        let top: f64 = s.absorb[..5].iter().sum();
        let all: f64 = s.absorb.iter().sum();
        assert!(top > 0.9 && top < 0.95, "{top}");
        assert!((all - 1.0).abs() < 1e-6, "{all}");
    }
}
