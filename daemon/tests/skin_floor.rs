//! The skin-floor interlock on the realistic twin (docs/TWIN.md), in simulated time: with the
//! controller's floor guard defeated (no margin, the raw reading taken as the spot), the safety
//! layer's own spot estimate (field of view and filter lag, `[safety] skin_sensor_fill`,
//! `skin_sensor_settle_s`) cuts the spray before the *true* surface goes more than
//! [`MARGIN_C`] below the floor. The same run judged on the raw reading (the interlock before
//! it had its own estimate) lets the surface fall well past that.

use coldspray_hal::sim::{SimConfig, TwinModel};
use coldspray_hal::{Output, Sensor};
use coldsprayd::api::{Command, StartOptions};
use coldsprayd::control::CoreConfig;
use coldsprayd::lockstep::Lockstep;
use coldsprayd::model::alarm::AlarmKind;
use coldsprayd::model::state::UnitState;
use coldsprayd::protocol::Protocol;
use std::time::Duration;

/// How far below the floor the true surface may go before the interlock has cut the spray, °C
/// (docs/SAFETY.md H5).
const MARGIN_C: f64 = 1.5;

/// What one run showed.
struct Run {
    tripped: bool,
    true_min: f64,
    sensor_min: f64,
    floor: f64,
}

/// An untargeted CO2 session on a freshly purged line (the coldest mist) onto a 10 cm² spot
/// seen through a 300 ms sensor filter, with the controller's floor guard defeated.
fn run(safety_fill: f64, safety_settle_s: f64, tolerance_c: f64) -> Run {
    let mut config = CoreConfig::default();
    config.session.floor_margin_c = 0.0;
    config.session.skin_sensor_fill = 1.0;
    config.safety.skin_sensor_fill = safety_fill;
    config.safety.skin_sensor_settle_s = safety_settle_s;
    config.safety.skin_floor_tolerance_c = tolerance_c;
    let twin = SimConfig {
        model: TwinModel::Realistic,
        initial_reservoir_c: 4.0,
        spot_cm2: 10.0,
        ir_settle_ms: 300.0,
        ..SimConfig::default()
    };
    let mut u = Lockstep::new(config, twin);
    let ready = |u: &mut Lockstep| {
        let took = u.run_until(Duration::from_secs(1200), |u| u.snapshot().ready);
        assert!(took.is_some(), "not ready: {:#?}", u.snapshot());
    };
    ready(&mut u);
    let mut p = Protocol::factory_defaults()
        .into_iter()
        .find(|p| p.name == "co2_fractional")
        .expect("factory co2_fractional");
    p.name = "untargeted".into();
    p.skin_target_c = None;
    let floor = p.skin_floor_c;
    u.command(Command::UpsertProtocol(Box::new(p)))
        .expect("protocol");
    u.sim.set_holstered(true);
    u.command(Command::EnterMaintenance).expect("maintenance");
    u.command(Command::Prime { seconds: 8.0 }).expect("prime");
    u.run_for(Duration::from_secs(9));
    u.command(Command::ExitMaintenance).expect("back");
    ready(&mut u);
    u.sim.set_holstered(false);
    u.command(Command::StartSession {
        protocol: "untargeted".into(),
        options: StartOptions::default(),
    })
    .expect("start");
    let started = u.now();
    let (mut true_min, mut sensor_min, mut tripped) = (f64::INFINITY, f64::INFINITY, false);
    while u.snapshot().state == UnitState::Spraying && u.now() - started < Duration::from_secs(200)
    {
        u.tick();
        true_min = true_min.min(u.truth().skin_surface_c);
        if let Some(s) = u.reading(Sensor::Skin) {
            sensor_min = sensor_min.min(s);
        }
    }
    if u.snapshot().has_alarm(AlarmKind::SkinBelowFloor) {
        tripped = true;
        assert_eq!(u.snapshot().state, UnitState::Fault, "{:#?}", u.snapshot());
        assert!(!u.output(Output::SprayValve) && !u.output(Output::Pump));
    }
    // The mist in flight and the lagging sensor: keep watching the true surface a while.
    for _ in 0..500 {
        u.tick();
        true_min = true_min.min(u.truth().skin_surface_c);
    }
    println!(
        "safety fill {safety_fill} settle {safety_settle_s} s tolerance {tolerance_c} K: tripped {tripped}, true min \
         {true_min:.2} °C, sensor min {sensor_min:.2} °C, floor {floor:.1} °C"
    );
    Run {
        tripped,
        true_min,
        sensor_min,
        floor,
    }
}

#[test]
fn the_interlock_judges_its_own_spot_estimate_and_cuts_the_spray_near_the_floor() {
    let defaults = coldsprayd::safety::SafetyConfig::default();
    let r = run(
        defaults.skin_sensor_fill,
        defaults.skin_sensor_settle_s,
        defaults.skin_floor_tolerance_c,
    );
    assert!(r.tripped, "skin_below_floor never tripped");
    assert!(
        r.true_min >= r.floor - MARGIN_C,
        "true surface {:.2} °C, more than {MARGIN_C} K below the floor {:.1} °C",
        r.true_min,
        r.floor
    );
    // The sensor itself never read below the floor: only the estimate did.
    assert!(r.sensor_min > r.floor, "sensor min {:.2}", r.sensor_min);

    // Judged on the raw reading (fill 1, no lag, trip at the floor), as before the estimate:
    // the surface goes past the margin. This is what the estimate is for.
    let raw = run(1.0, 0.0, 0.0);
    assert!(
        raw.true_min < raw.floor - MARGIN_C,
        "the raw reading protected too ({:.2} °C): the test does not show the estimate's \
         effect",
        raw.true_min
    );
}
