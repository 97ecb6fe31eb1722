//! The skin model against analytic solutions, on the realistic twin's own grid (0.05 mm
//! cells; the steady cases also on 0.1 mm) and step (10 ms): numerical error ≤ 0.1 K from 0.5 s on. `cargo test -p coldspray-hal --test
//! skin_validation -- --nocapture` prints the error tables.

use coldspray_hal::sim::skin::{Skin, SkinDrive, SkinParams};

/// Skin dermis (the twin's values): k W/(m·K), ρc J/(m³·K).
const K: f64 = 0.33;
const RHO_C: f64 = 3.7e6;
const DX: f64 = 1.0e-4;

/// exp(a)·erfc(b), computed without overflow: erfc(b) = t·exp(−b² + P(t)) (Numerical Recipes
/// 2nd ed. §6.2 `erfcc`, Chebyshev fit, fractional error < 1.2·10⁻⁷ everywhere).
fn exp_erfc(a: f64, b: f64) -> f64 {
    let z = b.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let p = -1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98
                                + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let positive = t * (a - z * z + p).exp();
    if b >= 0.0 {
        positive
    } else {
        2.0 * a.exp() - positive
    }
}

fn erfc(x: f64) -> f64 {
    exp_erfc(0.0, x)
}

/// Semi-infinite solid at `ti`, its surface exposed at t = 0 to a fluid at `tf` through a
/// film `h` (Carslaw & Jaeger, *Conduction of Heat in Solids*, 2nd ed., §2.7 eq. (1);
/// Incropera et al., *Fundamentals of Heat and Mass Transfer*, 6th ed., eq. 5.60):
/// (T − ti)/(tf − ti) = erfc(x/(2√(αt))) − exp(hx/k + h²αt/k²)·erfc(x/(2√(αt)) + h√(αt)/k).
fn semi_infinite(x: f64, t: f64, h: f64, ti: f64, tf: f64) -> f64 {
    let alpha = K / RHO_C;
    let s = (alpha * t).sqrt();
    let eta = x / (2.0 * s);
    let ratio = erfc(eta) - exp_erfc(h * x / K + h * h * alpha * t / (K * K), eta + h * s / K);
    ti + (tf - ti) * ratio
}

fn drive(h: f64, fluid_c: f64) -> SkinDrive {
    SkinDrive {
        ambient_c: fluid_c,
        h_mist: h,
        mist_c: fluid_c,
        laser_w_m2: 0.0,
        surface_sink_w_m2: 0.0,
    }
}

#[test]
fn semi_infinite_body_with_a_convective_surface() {
    // The realistic twin's grid (0.05 mm cells), 80 of them (4 mm): by 10 s heat has reached
    // ~4·√(αt) = 1.2 mm, so the bottom is undisturbed and the slab behaves as a half-space.
    let dx = SkinParams::realistic().dx_m;
    let (ti, tf) = (34.0, 4.0);
    let mut worst: f64 = 0.0;
    for h in [500.0, 2000.0, 5000.0] {
        let mut skin = Skin::new(SkinParams::uniform(80, dx, K, RHO_C, ti), ti);
        skin.set_profile(&[ti; 80], ti);
        let d = drive(h, tf);
        println!("h = {h} W/m²K: |numeric − analytic| K, at depth (mm)");
        println!("  t s    0.0    0.05   0.25   0.55   1.05");
        for step in 1..=1000 {
            skin.step(0.01, &d);
            let t = step as f64 * 0.01;
            if t < 0.5 - 1e-9 {
                continue;
            }
            let errors: Vec<f64> = [0.0, 0.05e-3, 0.25e-3, 0.55e-3, 1.05e-3]
                .iter()
                .map(|&x| (skin.temperature_at(x) - semi_infinite(x, t, h, ti, tf)).abs())
                .collect();
            worst = errors.iter().copied().fold(worst, f64::max);
            if step % 100 == 0 || step == 50 {
                let row: Vec<String> = errors.iter().map(|e| format!("{e:.4}")).collect();
                println!("  {t:4.1}  {}", row.join("  "));
            }
        }
    }
    println!("worst error from 0.5 s on: {worst:.4} K");
    assert!(worst <= 0.1, "worst error {worst} K");
}

/// Steady state of a slab with perfusion: epidermis (thickness e, k_e, no perfusion) over a
/// perfused dermis (thickness L, k_d, m = √(ω_bρ_bc_b/k_d)) whose bottom is held at the
/// arterial temperature Ta; the surface meets a fluid at T∞ through h. With θ = T − Ta the
/// dermis obeys θ'' = m²θ (Pennes 1948), so θ = C·sinh(m(L − y)); the epidermis is linear;
/// matching the flux at the interface and the film at the surface gives
/// C = h·θ∞ / (h·sinh mL + h·k_d·m·cosh(mL)·e/k_e + k_d·m·cosh mL).
/// For mL ≫ 1 and e = 0 this is the exponential profile θ = θs·e^(−my).
#[derive(Clone, Copy)]
struct Slab {
    /// Epidermis thickness m, conductivity W/(m·K).
    e: f64,
    ke: f64,
    /// Dermis thickness m, conductivity W/(m·K), m = √(ω_bρ_bc_b/k_d) 1/m.
    l: f64,
    kd: f64,
    m: f64,
    /// Surface film W/(m²·K), arterial and fluid temperatures °C.
    h: f64,
    ta: f64,
    tf: f64,
}

fn perfused_slab(depth: f64, slab: &Slab) -> f64 {
    let Slab {
        e,
        ke,
        l,
        kd,
        m,
        h,
        ta,
        tf,
    } = *slab;
    let theta_f = tf - ta;
    let (sh, ch) = ((m * l).sinh(), (m * l).cosh());
    let c = h * theta_f / (h * sh + h * kd * m * ch * e / ke + kd * m * ch);
    let q_up = -kd * c * m * ch; // flux towards the surface, W/m²
    if depth >= e {
        ta + c * (m * (l - (depth - e))).sinh()
    } else {
        ta + c * sh - q_up * (e - depth) / ke
    }
}

fn perfused_params(cells: usize, epidermis: usize, perfusion: f64) -> SkinParams {
    SkinParams {
        epidermis_cells: epidermis,
        k_epidermis: 0.21,
        perfusion_w_m3k: perfusion,
        arterial_c: 37.0,
        ..SkinParams::uniform(cells, DX, K, RHO_C, 37.0)
    }
}

fn compare_steady(label: &str, params: SkinParams, h: f64, tf: f64, march: bool) -> f64 {
    let n = params.cells;
    let e = params.epidermis_cells as f64 * DX;
    let l = n as f64 * DX - e;
    let m = (params.perfusion_w_m3k / K).sqrt();
    let mut skin = Skin::new(params, tf);
    let d = drive(h, tf);
    if march {
        // From a uniform 37 °C body, run the explicit solver to steady state (10,000 s).
        skin.set_profile(&vec![37.0; n], 37.0);
        for _ in 0..200_000 {
            skin.step(0.05, &d);
        }
    } else {
        skin.settle_under(&d);
    }
    println!("{label}: depth mm, numeric, analytic, error K");
    let mut worst: f64 = 0.0;
    for x_mm in [0.0, 0.05, 0.15, 0.55, 1.05, 2.05, 4.05, 8.05] {
        let x = x_mm * 1e-3;
        if x > n as f64 * DX {
            continue;
        }
        let (num, exact) = (
            skin.temperature_at(x),
            perfused_slab(
                x,
                &Slab {
                    e,
                    ke: 0.21,
                    l,
                    kd: K,
                    m,
                    h,
                    ta: 37.0,
                    tf,
                },
            ),
        );
        worst = worst.max((num - exact).abs());
        println!(
            "  {x_mm:5.2}  {num:8.4}  {exact:8.4}  {:.5}",
            (num - exact).abs()
        );
    }
    worst
}

/// Pennes perfusion of resting dermis, W/(m³·K) (the twin's value).
const PERFUSION: f64 = 1.25e-3 * 1060.0 * 3770.0;

/// Worst error of each (label, cells, epidermis cells, film h, fluid °C, marched) case.
fn worst_of(cases: &[(&str, usize, usize, f64, f64, bool)]) -> Vec<f64> {
    cases
        .iter()
        .map(|&(label, cells, epidermis, h, tf, march)| {
            compare_steady(
                label,
                perfused_params(cells, epidermis, PERFUSION),
                h,
                tf,
                march,
            )
        })
        .collect()
}

#[test]
fn steady_state_with_perfusion_is_the_exponential_profile() {
    // A deep (10 mm) uniform perfused slab under 4 °C mist, h = 1500: mL = 3.9, so the profile
    // is within 0.1 % of θs·e^(−mx); one solved directly, one marched in time (10,000 s).
    let worst = worst_of(&[
        ("perfused, direct", 100, 0, 1500.0, 4.0, false),
        ("perfused, marched", 100, 0, 1500.0, 4.0, true),
    ]);
    assert!(worst.iter().all(|w| *w <= 0.1), "{worst:?}");
}

#[test]
fn steady_state_of_a_layered_perfused_patch() {
    // The realistic layering on a 0.1 mm grid: 0.1 mm epidermis (no perfusion, k 0.21) over
    // 2.9 mm perfused dermis, bottom at 37 °C, room air h = 10 and mist h = 1500 at 4 °C.
    let worst = worst_of(&[
        ("layered, air", 30, 1, 10.0, 22.0, true),
        ("layered, mist", 30, 1, 1500.0, 4.0, true),
    ]);
    assert!(worst.iter().all(|w| *w <= 0.1), "{worst:?}");
}
