//! The realistic twin: the chiller against its datasheet curve, the whole twin's energy
//! balance over a session, and the outcomes the realistic physics must show (a ~40 min cold
//! start, a warm first spray from a standing line, a skin sensor that lags the surface).
//! `cargo test -p coldspray-hal --test twin_realistic -- --nocapture` prints the tables.

use coldspray_hal::sim::chiller::{ChillerKind, REFERENCE_TEC, TEC1_12706};
use coldspray_hal::sim::{SimConfig, SimUnit};
use coldspray_hal::{Board, Output};
use std::time::Duration;

fn set(board: &mut Board, output: Output, on: bool) {
    board.outputs.set(output, on).expect("sim output");
}

#[test]
fn tec_module_matches_its_datasheet_curve() {
    // TEC1-12706 datasheet (Th = 50 °C): Qmax 57–59 W at I = 6.4 A, ΔT = 0; ΔTmax 68 K at
    // Imax with no load; at a fixed current Qc falls linearly with ΔT.
    let m = TEC1_12706;
    let th = 50.0;
    println!("TEC1-12706 at Th = 50 °C: Qc W by current A (rows) and ΔT K (columns)");
    println!("  I A     0     20     40     60");
    for amps in [2.0, 4.0, 6.4] {
        let row: Vec<String> = [0.0, 20.0, 40.0, 60.0]
            .iter()
            .map(|dt| format!("{:6.1}", m.at_current(amps, th - dt, th).qc_w))
            .collect();
        println!("  {amps:3.1}  {}", row.join(" "));
    }
    let qmax = m.at_current(6.4, th, th).qc_w;
    assert!((55.0..=61.0).contains(&qmax), "Qmax {qmax}");
    let at_dtmax = m.at_current(6.4, th - 68.0, th).qc_w;
    assert!(at_dtmax.abs() < 1.0, "Qc at ΔTmax {at_dtmax}");
    // Linear in ΔT at fixed current (the datasheet's straight lines): the mid-point lies on
    // the chord within 1 W (the Seebeck term's Tc dependence makes it exactly linear).
    let (a, b, mid) = (
        m.at_current(4.0, th, th).qc_w,
        m.at_current(4.0, th - 40.0, th).qc_w,
        m.at_current(4.0, th - 20.0, th).qc_w,
    );
    assert!((mid - 0.5 * (a + b)).abs() < 1.0, "{a} {mid} {b}");
    // COP of the unit's assembly at the real working point (water 5.5 °C, heatsink ~40 °C).
    let p = REFERENCE_TEC.pump(5.5, 40.0);
    let cop = p.qc_w / p.p_w;
    println!(
        "assembly at water 5.5 °C, heatsink 40 °C: Qc {:.1} W, P {:.1} W, COP {cop:.2}",
        p.qc_w, p.p_w
    );
    assert!(cop > 0.2 && cop <= 0.45, "COP {cop}");
    // The ideal legacy chiller is ~3× better at the same point.
    let ideal = ChillerKind::Ideal.pump(5.5, 40.0);
    assert!(ideal.qc_w / ideal.p_w > 2.0 * cop);
}

#[test]
fn tec_cold_start_takes_about_forty_minutes() {
    let sim = SimUnit::new(SimConfig::realistic());
    let mut board = sim.board();
    set(&mut board, Output::Chiller, true);
    set(&mut board, Output::ChillerFan, true);
    let mut t = 0;
    while sim.truth().reservoir_c > 5.5 && t < 7200 {
        sim.advance(Duration::from_secs(10));
        t += 10;
    }
    let truth = sim.truth();
    println!(
        "TEC cold start 22 → 5.5 °C: {:.1} min, heatsink {:.1} °C",
        t as f64 / 60.0,
        truth.heatsink_c
    );
    assert!((30 * 60..=50 * 60).contains(&t), "{t} s");
    assert!(truth.heatsink_c < 50.0, "{}", truth.heatsink_c);
}

#[test]
fn whole_twin_energy_balance_over_a_session_within_one_percent() {
    let sim = SimUnit::new(SimConfig {
        initial_reservoir_c: 6.0,
        ..SimConfig::realistic()
    });
    let mut board = sim.board();
    set(&mut board, Output::Chiller, true);
    set(&mut board, Output::ChillerFan, true);
    let start = sim.energy();
    // A session: laser pass, spray 60 s, rest 60 s with the film evaporating; twice.
    for _ in 0..2 {
        sim.laser_pass(Duration::from_secs(2), 1.0);
        sim.advance(Duration::from_secs(2));
        set(&mut board, Output::Pump, true);
        set(&mut board, Output::SprayValve, true);
        sim.advance(Duration::from_secs(60));
        set(&mut board, Output::SprayValve, false);
        set(&mut board, Output::Pump, false);
        sim.advance(Duration::from_secs(60));
    }
    let end = sim.energy();
    let d = |f: fn(&coldspray_hal::sim::EnergyLedger) -> f64| f(&end) - f(&start);
    let stored = d(|e| e.stored_j);
    let net = end.net_in_j() - start.net_in_j();
    let terms = [
        ("chiller work", d(|e| e.chiller_work_j)),
        ("from room", d(|e| e.from_room_j)),
        ("laser", d(|e| e.laser_j)),
        ("body (core, perfusion)", d(|e| e.body_j)),
        ("water out (enthalpy)", -d(|e| e.water_out_j)),
        ("skin → mist (run-off)", -d(|e| e.skin_to_mist_j)),
        ("evaporation", -d(|e| e.evaporation_j)),
    ];
    let gross: f64 = terms.iter().map(|(_, v)| v.abs()).sum();
    println!("energy over the session, J");
    for (name, v) in terms {
        println!("  {name:24} {v:12.1}");
    }
    println!("  {:24} {net:12.1}", "net in");
    println!("  {:24} {stored:12.1}", "Δ stored");
    let error = (stored - net).abs() / gross;
    println!("  imbalance {:.5} % of the gross exchange", 100.0 * error);
    assert!(error < 0.01, "{error}");
}

#[test]
fn a_standing_line_sprays_warm_first_and_the_sensor_lags_the_surface() {
    let sim = SimUnit::new(SimConfig {
        initial_reservoir_c: 5.0,
        ir_settle_ms: 300.0,
        ..SimConfig::realistic()
    });
    let mut board = sim.board();
    sim.advance(Duration::from_secs(300));
    sim.laser_pass(Duration::from_secs(2), 1.0);
    sim.advance(Duration::from_secs(2));
    set(&mut board, Output::Pump, true);
    set(&mut board, Output::SprayValve, true);
    let first = sim.truth();
    let mut lag_seen = false;
    for _ in 0..100 {
        sim.advance(Duration::from_millis(20));
        let t = sim.truth();
        if t.skin_seen_c > t.skin_surface_c + 1.0 {
            lag_seen = true;
        }
    }
    sim.advance(Duration::from_secs(20));
    let later = sim.truth();
    println!(
        "mist at spray start {:.1} °C, after 22 s {:.1} °C",
        first.mist_c, later.mist_c
    );
    assert!(first.mist_c > 18.0, "{}", first.mist_c);
    assert!(later.mist_c < 9.0, "{}", later.mist_c);
    assert!(lag_seen, "the sensor never lagged the falling surface");
    // The surface sits well below the subsurface peak after a spray.
    assert!(later.skin_peak_c > later.skin_surface_c + 5.0, "{later:?}");
}
