//! A patch of skin: the 1-D Pennes bioheat equation solved by explicit finite volumes,
//! heated by the laser, cooled by air or by the mist, warmed by blood.
//!
//! ρc ∂T/∂t = ∂/∂x(k ∂T/∂x) + ω_b·ρ_b·c_b·(T_a − T) + q_laser(x)
//! (Pennes 1948, J. Appl. Physiol. 1:93), x the depth below the surface.
//!
//! The grid is `cells` cells of `dx_m`; the first `epidermis_cells` are epidermis (avascular:
//! no perfusion), the rest dermis. Below the grid a lumped subcutaneous resistance connects to
//! the body core. The surface exchanges heat with the room (natural convection + radiation)
//! and, while the nozzle sprays, with the mist; both films act in parallel.
//!
//! The model is public and drivable on its own ([`Skin::new`], [`Skin::set_profile`],
//! [`Skin::step`], [`Skin::temperatures`], [`Skin::temperature_at`]) so it can be checked
//! against analytic solutions: `hal/tests/skin_validation.rs`.
//!
//! Explicit scheme: stable while every cell's dt ≤ C / (ΣG + perfusion); [`Skin::step`]
//! sub-steps at 90 % of that limit (for 0.1 mm dermis cells the classic dx²/(2α) ≈ 56 ms).

/// Body core temperature, °C.
pub const CORE_C: f64 = 37.0;

/// Epidermis conductivity, W/(m·K) (PMC5459687: 0.21).
const K_EPIDERMIS: f64 = 0.21;

/// Dermis conductivity, W/(m·K) (PMC5459687: 0.29–0.37).
const K_DERMIS: f64 = 0.33;

/// Volumetric heat capacity of skin, J/(m³·K) (ρ ≈ 1100 kg/m³ × c ≈ 3400 J/kg·K; IT'IS
/// Foundation tissue database, "skin").
const RHO_C: f64 = 3.7e6;

/// Pennes perfusion term of resting dermis ω_b·ρ_b·c_b, W/(m³·K): ω_b = 1.25·10⁻³ s⁻¹
/// (Duck, *Physical Properties of Tissue*, 1990, table 9.1: skin 0.5–2·10⁻³ s⁻¹) with blood
/// ρ_b = 1060 kg/m³, c_b = 3770 J/(kg·K) (IT'IS database). Cold constricts skin vessels; the
/// model keeps the resting value, which slightly over-warms a cooled patch (conservative for
/// the floor, optimistic for time-to-target).
const PERFUSION_DERMIS: f64 = 1.25e-3 * 1060.0 * 3770.0;

/// Resistance of the subcutaneous tissue between the grid's bottom and the core, m²·K/W
/// (≈7 mm of fat at 0.2 W/m·K). With it the resting surface sits at ~32.4 °C in a 22 °C
/// room, as measured on forearm/face skin.
const R_SUBCUTIS: f64 = 0.035;

/// Surface film coefficient to room air, W/(m²·K) (natural convection ≈ 4 + linearised
/// radiation ≈ 6 of a resting patient's face or forearm; Incropera, *Fundamentals of Heat and
/// Mass Transfer*, ch. 9 and 12).
const H_AIR: f64 = 10.0;

/// How the laser's energy is spread over depth.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Absorption {
    /// Beer–Lambert: a fraction exp(−x/depth) left at depth x (surface-weighted).
    Exponential {
        /// 1/e depth, m.
        depth_m: f64,
    },
    /// A Gaussian layer centred at `centre_m` (focused ultrasound, RF needles).
    Gaussian {
        /// Depth of the centre, m.
        centre_m: f64,
        /// Standard deviation, m.
        width_m: f64,
    },
}

/// The properties of a patch.
#[derive(Debug, Clone, PartialEq)]
pub struct SkinParams {
    /// Number of cells.
    pub cells: usize,
    /// Cell thickness, m.
    pub dx_m: f64,
    /// Cells of epidermis at the top (no perfusion, `k_epidermis`).
    pub epidermis_cells: usize,
    /// Epidermis conductivity, W/(m·K).
    pub k_epidermis: f64,
    /// Dermis conductivity, W/(m·K).
    pub k_dermis: f64,
    /// Volumetric heat capacity, J/(m³·K).
    pub rho_c: f64,
    /// Pennes perfusion term ω_b·ρ_b·c_b of the dermis, W/(m³·K) (0: none).
    pub perfusion_w_m3k: f64,
    /// Arterial blood temperature, °C.
    pub arterial_c: f64,
    /// Resistance from the grid's bottom face to the core, m²·K/W (0: core at the bottom face).
    pub r_subcutis: f64,
    /// Core temperature, °C.
    pub core_c: f64,
    /// Film coefficient to room air, W/(m²·K).
    pub h_air: f64,
}

impl SkinParams {
    /// The first twin's patch: 30 cells of 0.1 mm, no perfusion.
    pub fn legacy() -> Self {
        Self {
            cells: 30,
            dx_m: 1.0e-4,
            epidermis_cells: 1,
            k_epidermis: K_EPIDERMIS,
            k_dermis: K_DERMIS,
            rho_c: RHO_C,
            perfusion_w_m3k: 0.0,
            arterial_c: CORE_C,
            r_subcutis: R_SUBCUTIS,
            core_c: CORE_C,
            h_air: H_AIR,
        }
    }

    /// The realistic patch: 60 cells of 0.05 mm (the 0.1 mm grid is 0.15 K off the analytic
    /// solution 0.5 s into a 2000 W/(m²·K) spray; this one stays within 0.1 K), the top two
    /// epidermis, Pennes perfusion in the dermis.
    pub fn realistic() -> Self {
        Self {
            cells: 60,
            dx_m: 0.5e-4,
            epidermis_cells: 2,
            perfusion_w_m3k: PERFUSION_DERMIS,
            ..Self::legacy()
        }
    }

    /// A uniform slab (for validation): one material, no perfusion, the core (at `core_c`)
    /// right at the bottom face, no air film (drive the surface through [`SkinDrive`]).
    pub fn uniform(cells: usize, dx_m: f64, k: f64, rho_c: f64, core_c: f64) -> Self {
        Self {
            cells,
            dx_m,
            epidermis_cells: 0,
            k_epidermis: k,
            k_dermis: k,
            rho_c,
            perfusion_w_m3k: 0.0,
            arterial_c: core_c,
            r_subcutis: 0.0,
            core_c,
            h_air: 0.0,
        }
    }
}

/// What acts on the skin during one step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SkinDrive {
    /// Room temperature, °C.
    pub ambient_c: f64,
    /// Film coefficient of the mist (0 when not spraying), W/(m²·K).
    pub h_mist: f64,
    /// Temperature the mist film pulls towards, °C.
    pub mist_c: f64,
    /// Laser power absorbed per area, W/m² (0 when the laser is off).
    pub laser_w_m2: f64,
    /// Heat drawn from the surface by other means (evaporation of the water film), W/m².
    pub surface_sink_w_m2: f64,
}

/// Energy per area that crossed the patch's boundaries during a step, J/m² (positive into
/// the skin).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct SkinFluxes {
    /// From the room air film.
    pub air: f64,
    /// From the mist film (negative while the mist cools).
    pub mist: f64,
    /// From the surface sink (evaporation; negative).
    pub sink: f64,
    /// From the laser.
    pub laser: f64,
    /// From the core below the grid.
    pub core: f64,
    /// From blood perfusion.
    pub perfusion: f64,
}

impl SkinFluxes {
    /// Everything that entered, J/m².
    pub fn total(&self) -> f64 {
        self.air + self.mist + self.sink + self.laser + self.core + self.perfusion
    }
}

/// Temperatures of the patch.
#[derive(Debug, Clone)]
pub struct Skin {
    p: SkinParams,
    t: Vec<f64>,
    /// Conductance between cell i and i+1, W/(m²·K).
    g: Vec<f64>,
    /// Conductance from the last cell to the core, W/(m²·K).
    g_core: f64,
    /// Perfusion conductance of each cell, W/(m²·K).
    perf: Vec<f64>,
    /// Fraction of the laser energy absorbed in each cell.
    absorb: Vec<f64>,
    /// Surface temperature after the last step, °C.
    surface_c: f64,
    /// [`Skin::worst_below`], cached.
    worst_below: f64,
}

impl Skin {
    /// A patch at rest in a room at `ambient_c` (its steady profile), laser absorbed with
    /// a 0.2 mm exponential depth.
    pub fn new(params: SkinParams, ambient_c: f64) -> Self {
        let n = params.cells.max(2);
        let k: Vec<f64> = (0..n)
            .map(|i| {
                if i < params.epidermis_cells {
                    params.k_epidermis
                } else {
                    params.k_dermis
                }
            })
            .collect();
        let dx = params.dx_m;
        let g = (0..n - 1)
            .map(|i| 1.0 / (0.5 * dx / k[i] + 0.5 * dx / k[i + 1]))
            .collect();
        let g_core = 1.0 / (0.5 * dx / k[n - 1] + params.r_subcutis);
        let perf = (0..n)
            .map(|i| {
                if i < params.epidermis_cells {
                    0.0
                } else {
                    params.perfusion_w_m3k * dx
                }
            })
            .collect();
        let mut skin = Self {
            t: vec![params.core_c; n],
            g,
            g_core,
            perf,
            absorb: vec![0.0; n],
            surface_c: params.core_c,
            worst_below: 0.0,
            p: SkinParams { cells: n, ..params },
        };
        skin.worst_below = skin.worst_below();
        skin.set_absorption(Absorption::Exponential { depth_m: 0.2e-3 });
        skin.settle(ambient_c);
        skin
    }

    /// The parameters the patch was built with.
    pub fn params(&self) -> &SkinParams {
        &self.p
    }

    /// Sets how the laser's energy spreads over depth (normalised over the grid).
    pub fn set_absorption(&mut self, a: Absorption) {
        let dx = self.p.dx_m;
        for (i, f) in self.absorb.iter_mut().enumerate() {
            let (top, bottom) = (i as f64 * dx, (i + 1) as f64 * dx);
            *f = match a {
                Absorption::Exponential { depth_m } => {
                    (-top / depth_m).exp() - (-bottom / depth_m).exp()
                }
                Absorption::Gaussian { centre_m, width_m } => {
                    let mid = 0.5 * (top + bottom) - centre_m;
                    (-0.5 * (mid / width_m).powi(2)).exp()
                }
            };
        }
        let sum: f64 = self.absorb.iter().sum();
        if sum > 0.0 {
            self.absorb.iter_mut().for_each(|f| *f /= sum);
        }
    }

    /// Fraction of the laser energy absorbed in each cell (sums to 1).
    pub fn absorption(&self) -> &[f64] {
        &self.absorb
    }

    fn k(&self, i: usize) -> f64 {
        if i < self.p.epidermis_cells {
            self.p.k_epidermis
        } else {
            self.p.k_dermis
        }
    }

    /// Conductance from the first cell's centre to the environment through a film `h`.
    fn g_surface(&self, h: f64) -> f64 {
        if h <= 0.0 {
            0.0
        } else {
            1.0 / (0.5 * self.p.dx_m / self.k(0) + 1.0 / h)
        }
    }

    /// Sets the steady profile under a room at `ambient_c` and no mist or laser (a
    /// tridiagonal solve of the discrete equations: the Thomas algorithm).
    pub fn settle(&mut self, ambient_c: f64) {
        let rest = SkinDrive {
            ambient_c,
            h_mist: 0.0,
            mist_c: ambient_c,
            laser_w_m2: 0.0,
            surface_sink_w_m2: 0.0,
        };
        self.settle_under(&rest);
    }

    /// Sets the steady profile under a constant drive (laser included).
    pub fn settle_under(&mut self, d: &SkinDrive) {
        let n = self.t.len();
        let (h, t_env) = self.film(d);
        let gs = self.g_surface(h);
        let ta = self.p.arterial_c;
        // a[i]·T[i-1] + b[i]·T[i] + c[i]·T[i+1] = r[i]
        let mut c = vec![0.0; n];
        let mut r = vec![0.0; n];
        let mut b = vec![0.0; n];
        for i in 0..n {
            let up = if i == 0 { gs } else { self.g[i - 1] };
            let down = if i == n - 1 { self.g_core } else { self.g[i] };
            b[i] = up + down + self.perf[i];
            c[i] = if i == n - 1 { 0.0 } else { -self.g[i] };
            r[i] = self.perf[i] * ta + d.laser_w_m2 * self.absorb[i];
            if i == 0 {
                r[i] += gs * t_env - d.surface_sink_w_m2;
            }
            if i == n - 1 {
                r[i] += self.g_core * self.p.core_c;
            }
        }
        // Forward sweep (a[i] = -g[i-1]).
        for i in 1..n {
            let w = -self.g[i - 1] / b[i - 1];
            b[i] -= w * c[i - 1];
            r[i] -= w * r[i - 1];
        }
        self.t[n - 1] = r[n - 1] / b[n - 1];
        for i in (0..n - 1).rev() {
            self.t[i] = (r[i] - c[i] * self.t[i + 1]) / b[i];
        }
        self.surface_c = self.surface_from(h, t_env, d.surface_sink_w_m2);
    }

    /// Replaces the cell temperatures (cell centres, top first); the surface is re-derived
    /// as if under room air at `ambient_c`. Extra values are ignored, missing cells keep
    /// theirs.
    pub fn set_profile(&mut self, cells_c: &[f64], ambient_c: f64) {
        for (t, v) in self.t.iter_mut().zip(cells_c) {
            *t = *v;
        }
        self.surface_c = self.surface_from(self.p.h_air, ambient_c, 0.0);
    }

    /// Cell-centre temperatures, top first, °C.
    pub fn temperatures(&self) -> &[f64] {
        &self.t
    }

    /// Depth of cell `i`'s centre, m.
    pub fn cell_depth_m(&self, i: usize) -> f64 {
        (i as f64 + 0.5) * self.p.dx_m
    }

    /// Temperature at `depth_m` (0 = the surface), linear between the surface and the cell
    /// centres; below the last centre, that cell's temperature.
    pub fn temperature_at(&self, depth_m: f64) -> f64 {
        let half = 0.5 * self.p.dx_m;
        if depth_m <= 0.0 {
            return self.surface_c;
        }
        if depth_m < half {
            let f = depth_m / half;
            return self.surface_c + f * (self.t[0] - self.surface_c);
        }
        let x = depth_m / self.p.dx_m - 0.5;
        let i = x.floor() as usize;
        if i + 1 >= self.t.len() {
            return self.t[self.t.len() - 1];
        }
        let f = x - i as f64;
        self.t[i] + f * (self.t[i + 1] - self.t[i])
    }

    /// Surface temperature, °C.
    pub fn surface_c(&self) -> f64 {
        self.surface_c
    }

    /// Hottest point of the patch (surface included), °C.
    pub fn peak_c(&self) -> f64 {
        self.t.iter().copied().fold(self.surface_c, f64::max)
    }

    /// Depth of the hottest point, m (0: the surface).
    pub fn peak_depth_m(&self) -> f64 {
        let (i, t) =
            self.t
                .iter()
                .enumerate()
                .fold((0, f64::MIN), |m, (i, &t)| if t > m.1 { (i, t) } else { m });
        if self.surface_c >= t {
            0.0
        } else {
            self.cell_depth_m(i)
        }
    }

    /// Coldest point of the patch (surface included), °C.
    pub fn min_c(&self) -> f64 {
        self.t.iter().copied().fold(self.surface_c, f64::min)
    }

    /// Heat content per area relative to 0 °C, J/m².
    pub fn heat_j_m2(&self) -> f64 {
        self.t.iter().sum::<f64>() * self.p.rho_c * self.p.dx_m
    }

    /// The combined film and the temperature it pulls towards.
    fn film(&self, d: &SkinDrive) -> (f64, f64) {
        let hm = d.h_mist.max(0.0);
        let h = self.p.h_air + hm;
        let t_env = if h > 0.0 {
            (self.p.h_air * d.ambient_c + hm * d.mist_c) / h
        } else {
            d.ambient_c
        };
        (h, t_env)
    }

    /// The surface temperature: the balance at the surface node between the first cell's
    /// top half, the film `h` and the sink: k/(dx/2)·(T0 − Ts) = h·(Ts − Tenv) + sink.
    fn surface_from(&self, h: f64, t_env: f64, sink: f64) -> f64 {
        let g_half = self.k(0) / (0.5 * self.p.dx_m);
        let h = h.max(0.0);
        (g_half * self.t[0] + h * t_env - sink) / (g_half + h)
    }

    /// The largest stable explicit step for a film `h`, s.
    pub fn stable_dt(&self, h: f64) -> f64 {
        let top = self.g_surface(h) + self.g[0] + self.perf[0];
        self.p.rho_c * self.p.dx_m / top.max(self.worst_below)
    }

    /// The largest conductance sum of any cell below the first (it does not depend on the
    /// film), W/(m²·K).
    fn worst_below(&self) -> f64 {
        let n = self.t.len();
        (1..n)
            .map(|i| {
                let down = if i == n - 1 { self.g_core } else { self.g[i] };
                self.g[i - 1] + down + self.perf[i]
            })
            .fold(0.0, f64::max)
    }

    /// Advances by `dt` seconds under `d`; returns the energy that crossed each boundary.
    pub fn step(&mut self, dt: f64, d: &SkinDrive) -> SkinFluxes {
        let (h, t_env) = self.film(d);
        let hm = d.h_mist.max(0.0);
        let gs = self.g_surface(h);
        let limit = 0.9 * self.stable_dt(h);
        let steps = (dt / limit).ceil().max(1.0);
        let sub = dt / steps;
        let coef = sub / (self.p.rho_c * self.p.dx_m);
        let n = self.t.len();
        let ta = self.p.arterial_c;
        let mut out = SkinFluxes::default();
        for _ in 0..steps as usize {
            let q_surface = gs * (t_env - self.t[0]);
            let q_core = self.g_core * (self.p.core_c - self.t[n - 1]);
            let mut above = q_surface - d.surface_sink_w_m2;
            let mut perfused = 0.0;
            for i in 0..n {
                let below = if i == n - 1 {
                    -q_core
                } else {
                    self.g[i] * (self.t[i] - self.t[i + 1])
                };
                let q_perf = self.perf[i] * (ta - self.t[i]);
                perfused += q_perf;
                self.t[i] += coef * (above - below + q_perf + d.laser_w_m2 * self.absorb[i]);
                above = below;
            }
            // Each film's own flux is h_j·(T_j − T_s), with T_s where the combined film
            // puts it: q = h·(T_env − T_s).
            if h > 0.0 {
                let ts = t_env - q_surface / h;
                out.air += sub * self.p.h_air * (d.ambient_c - ts);
                out.mist += sub * hm * (d.mist_c - ts);
            }
            out.sink -= sub * d.surface_sink_w_m2;
            out.laser += sub * d.laser_w_m2;
            out.core += sub * q_core;
            out.perfusion += sub * perfused;
        }
        self.surface_c = self.surface_from(h, t_env, d.surface_sink_w_m2);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rest(ambient_c: f64) -> SkinDrive {
        SkinDrive {
            ambient_c,
            h_mist: 0.0,
            mist_c: ambient_c,
            laser_w_m2: 0.0,
            surface_sink_w_m2: 0.0,
        }
    }

    #[test]
    fn resting_surface_is_about_32_to_33_c_and_stays_there() {
        for params in [SkinParams::legacy(), SkinParams::realistic()] {
            let mut s = Skin::new(params, 22.0);
            let start = s.surface_c();
            assert!((32.0..=34.0).contains(&start), "{start}");
            for _ in 0..6000 {
                s.step(0.01, &rest(22.0));
            }
            assert!((s.surface_c() - start).abs() < 0.01, "{}", s.surface_c());
        }
    }

    #[test]
    fn explicit_step_is_within_the_stability_limit() {
        let s = Skin::new(SkinParams::legacy(), 22.0);
        let classic = 1.0e-8 / (2.0 * K_DERMIS / RHO_C);
        assert!(s.stable_dt(H_AIR) <= classic * 1.0001);
    }

    #[test]
    fn long_steps_are_sub_stepped_and_stay_bounded() {
        let mut s = Skin::new(SkinParams::legacy(), 22.0);
        let spray = SkinDrive {
            h_mist: 2000.0,
            mist_c: 4.0,
            ..rest(22.0)
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
    fn absorption_profiles_put_the_energy_where_they_say() {
        let mut s = Skin::new(SkinParams::legacy(), 22.0);
        let top: f64 = s.absorb[..5].iter().sum();
        assert!(top > 0.9 && top < 0.95, "{top}");
        s.set_absorption(Absorption::Gaussian {
            centre_m: 2.0e-3,
            width_m: 0.4e-3,
        });
        let all: f64 = s.absorb.iter().sum();
        assert!((all - 1.0).abs() < 1e-9, "{all}");
        assert!(s.absorb[..5].iter().sum::<f64>() < 1e-3);
    }

    #[test]
    fn energy_is_conserved_cell_by_cell() {
        let mut s = Skin::new(SkinParams::realistic(), 22.0);
        let before = s.heat_j_m2();
        let d = SkinDrive {
            h_mist: 1500.0,
            mist_c: 5.0,
            laser_w_m2: 20_000.0,
            surface_sink_w_m2: 100.0,
            ..rest(22.0)
        };
        let mut total = 0.0;
        for _ in 0..300 {
            total += s.step(0.01, &d).total();
        }
        let stored = s.heat_j_m2() - before;
        assert!(
            (stored - total).abs() < 1e-6 * total.abs().max(1.0),
            "{stored} vs {total}"
        );
    }
}
