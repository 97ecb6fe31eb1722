//! Physics outcomes of the simulated unit, driven through its public API and its board.

use coldspray_hal::signal::FLOW_PULSES_PER_LITRE;
use coldspray_hal::sim::{Fault, SimConfig, SimUnit, Truth};
use coldspray_hal::{Board, Clock, Input, InputEdge, Output, Sensor, SensorError};
use proptest::prelude::*;
use std::sync::{Arc, Mutex};
use std::time::Duration;

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

/// A twin, its board, and every edge its inputs delivered.
struct Rig {
    sim: SimUnit,
    board: Board,
    edges: Arc<Mutex<Vec<InputEdge>>>,
}

impl Rig {
    fn new(config: SimConfig) -> Self {
        let sim = SimUnit::new(config);
        let mut board = sim.board();
        let edges = Arc::new(Mutex::new(Vec::new()));
        let sink_edges = edges.clone();
        board
            .inputs
            .subscribe(Arc::new(move |e| sink_edges.lock().unwrap().push(e)))
            .unwrap();
        Self { sim, board, edges }
    }

    fn set(&mut self, output: Output, on: bool) {
        self.board.outputs.set(output, on).unwrap();
    }

    fn spray(&mut self, on: bool) {
        self.set(Output::Pump, on);
        self.set(Output::SprayValve, on);
    }

    fn run(&self, s: f64) {
        self.sim.advance(secs(s));
    }

    fn truth(&self) -> Truth {
        self.sim.truth()
    }

    fn read(&mut self, sensor: Sensor) -> Result<f64, SensorError> {
        self.board.sensors.read(sensor)
    }

    fn take_edges(&self) -> Vec<InputEdge> {
        std::mem::take(&mut *self.edges.lock().unwrap())
    }

    /// Flow pulses delivered while running `s` seconds.
    fn pulses_over(&self, s: f64) -> usize {
        self.take_edges();
        self.run(s);
        self.take_edges()
            .iter()
            .filter(|e| e.input == Input::FlowPulse)
            .count()
    }
}

fn cold_rig() -> Rig {
    Rig::new(SimConfig {
        initial_reservoir_c: 4.0,
        ..SimConfig::default()
    })
}

#[test]
fn cold_start_reaches_setpoint_in_a_plausible_time() {
    let mut rig = Rig::new(SimConfig::default());
    rig.set(Output::Chiller, true);
    rig.set(Output::ChillerFan, true);
    let mut t = 0;
    let mut hottest_sink: f64 = 0.0;
    while rig.truth().reservoir_c > 4.5 && t < 3600 {
        rig.run(1.0);
        t += 1;
        hottest_sink = hottest_sink.max(rig.truth().heatsink_c);
    }
    println!(
        "cold start 22 -> 4.5 °C: {t} s ({:.1} min), hottest heatsink {hottest_sink:.1} °C",
        t as f64 / 60.0
    );
    assert!(rig.truth().reservoir_c <= 4.5);
    assert!((600..=1800).contains(&t), "cold start took {t} s");
    assert!(
        hottest_sink < 60.0,
        "heatsink reached {hottest_sink} °C with the fan on"
    );
    assert!(
        hottest_sink > 35.0,
        "the chiller's heat must show on the heatsink"
    );
    let reading = rig.read(Sensor::Reservoir).unwrap();
    assert!((reading - rig.truth().reservoir_c).abs() < 0.1, "{reading}");
}

#[test]
fn water_cannot_freeze_below_zero() {
    let mut rig = cold_rig();
    rig.set(Output::Chiller, true);
    rig.set(Output::ChillerFan, true);
    rig.run(3600.0);
    let t = rig.truth();
    assert_eq!(
        t.reservoir_c, 0.0,
        "an hour of chilling without cut-out ends at 0 °C"
    );
}

#[test]
fn dead_or_idle_fan_lets_the_heatsink_overheat() {
    for (label, fan_output, fault) in [("FanDead", true, true), ("fan off", false, false)] {
        let mut rig = Rig::new(SimConfig::default());
        rig.set(Output::Chiller, true);
        rig.set(Output::ChillerFan, fan_output);
        if fault {
            rig.sim.inject(Fault::FanDead);
        }
        let mut t = 0;
        while rig.truth().heatsink_c <= 70.0 && t < 600 {
            rig.run(1.0);
            t += 1;
        }
        println!("{label}: heatsink past 70 °C after {t} s");
        assert!(rig.truth().heatsink_c > 70.0, "{label}: {:?}", rig.truth());
        let reading = rig.read(Sensor::Heatsink).unwrap();
        assert!(reading > 69.0, "{label}: MCP9808 read {reading}");
    }
}

#[test]
fn dead_chiller_neither_cools_the_water_nor_warms_the_heatsink() {
    let mut healthy = Rig::new(SimConfig::default());
    let mut dead = Rig::new(SimConfig::default());
    dead.sim.inject(Fault::ChillerDead);
    for rig in [&mut healthy, &mut dead] {
        rig.set(Output::Chiller, true);
        rig.set(Output::ChillerFan, true);
    }
    // The self-test's "chiller on -> heatsink warms" over one minute.
    healthy.run(60.0);
    dead.run(60.0);
    let (h, d) = (healthy.truth(), dead.truth());
    assert!(h.heatsink_c > 30.0, "healthy heatsink {}", h.heatsink_c);
    assert!(
        d.heatsink_c < 22.5,
        "dead chiller heatsink {}",
        d.heatsink_c
    );
    dead.run(540.0);
    let d = dead.truth();
    assert!(
        d.reservoir_c > 21.9,
        "dead chiller cooled to {}",
        d.reservoir_c
    );
    assert!(
        d.heatsink_c < 22.5,
        "dead chiller heatsink {}",
        d.heatsink_c
    );
    dead.sim.clear(Fault::ChillerDead);
    dead.run(600.0);
    assert!(
        dead.truth().reservoir_c < 20.0,
        "cleared fault must cool again"
    );
}

#[test]
fn spraying_gives_flow_pulses_at_the_expected_rate_and_pressure_in_range() {
    for (duty, nominal_l_min, p_range) in [(100u8, 0.2, 2.2..=2.6), (1, 0.1, 1.35..=1.65)] {
        let mut rig = cold_rig();
        rig.board.outputs.set_pump_duty(duty).unwrap();
        rig.spray(true);
        rig.run(1.0);
        let water_before = rig.truth().water_litres;
        let pulses = rig.pulses_over(10.0) as f64;
        let expected = nominal_l_min / 60.0 * 10.0 * FLOW_PULSES_PER_LITRE;
        println!("duty {duty} %: {pulses} pulses in 10 s (nominal {expected:.0})");
        assert!(
            (pulses - expected).abs() <= 0.1 * expected,
            "duty {duty}: {pulses} pulses, expected {expected}"
        );
        let p = rig.read(Sensor::Pressure).unwrap();
        assert!(p_range.contains(&p), "duty {duty}: pressure {p}");
        let used = water_before - rig.truth().water_litres;
        assert!(
            (used - pulses / FLOW_PULSES_PER_LITRE).abs() < 0.002,
            "water used {used} L vs {pulses} pulses"
        );
        // Stopping: pressure vents, pulses stop, the transducer reads zero +/- noise.
        rig.spray(false);
        rig.run(2.0);
        assert_eq!(rig.pulses_over(5.0), 0);
        let readings: Vec<f64> = (0..20)
            .map(|_| rig.read(Sensor::Pressure).unwrap())
            .collect();
        assert!(readings.iter().all(|p| p.abs() < 0.02), "{readings:?}");
        assert!(readings.windows(2).any(|w| w[0] != w[1]), "{readings:?}");
    }
}

#[test]
fn closed_valve_dead_heads_through_the_bypass() {
    let mut rig = cold_rig();
    rig.set(Output::Pump, true);
    rig.run(1.0);
    assert_eq!(rig.pulses_over(5.0), 0);
    let t = rig.truth();
    assert_eq!(t.flow_l_min, 0.0);
    let p = rig.read(Sensor::Pressure).unwrap();
    assert!((3.3..=3.7).contains(&p), "dead-head pressure {p}");
    assert!((t.water_litres - 1.5).abs() < 1e-12);
}

#[test]
fn blocked_nozzle_dead_heads_with_the_valve_open() {
    let mut rig = cold_rig();
    rig.sim.inject(Fault::NozzleBlocked);
    rig.spray(true);
    rig.run(1.0);
    assert_eq!(rig.pulses_over(5.0), 0);
    let p = rig.read(Sensor::Pressure).unwrap();
    assert!((3.3..=3.7).contains(&p), "blocked pressure {p}");
    rig.sim.clear(Fault::NozzleBlocked);
    rig.run(1.0);
    assert!(rig.pulses_over(1.0) > 15);
}

#[test]
fn leak_drops_pressure_while_flow_continues() {
    let mut rig = cold_rig();
    rig.sim.inject(Fault::Leak);
    rig.spray(true);
    rig.run(1.0);
    let pulses = rig.pulses_over(10.0) as f64;
    assert!(pulses > 0.9 * 196.0, "{pulses}");
    let p = rig.read(Sensor::Pressure).unwrap();
    assert!(p < 0.4 && p > 0.05, "leak pressure {p}");
    let t = rig.truth();
    assert!(t.flow_l_min > 0.175);
    // Nothing reaches the nozzle: the line warms towards the room as if standing.
    assert!(t.mist_c > 20.0, "{}", t.mist_c);
}

#[test]
fn dead_pump_gives_no_pressure_and_no_flow() {
    let mut rig = cold_rig();
    rig.sim.inject(Fault::PumpDead);
    rig.spray(true);
    rig.run(1.0);
    assert_eq!(rig.pulses_over(5.0), 0);
    let p = rig.read(Sensor::Pressure).unwrap();
    assert!(p.abs() < 0.02, "dead pump pressure {p}");
}

#[test]
fn water_low_fault_trips_the_float_and_runs_the_pump_dry() {
    let mut rig = cold_rig();
    assert!(!rig.board.inputs.level(Input::WaterLow).unwrap());
    rig.sim.inject(Fault::WaterLow);
    let edges = rig.take_edges();
    assert_eq!(edges.len(), 1);
    assert_eq!((edges[0].input, edges[0].level), (Input::WaterLow, true));
    assert!(rig.board.inputs.level(Input::WaterLow).unwrap());
    rig.spray(true);
    rig.run(1.0);
    assert_eq!(rig.pulses_over(5.0), 0);
    let p = rig.read(Sensor::Pressure).unwrap();
    assert!(p < 0.2, "dry pump pressure {p}");
    rig.sim.clear(Fault::WaterLow);
    let edges = rig.take_edges();
    assert_eq!((edges[0].input, edges[0].level), (Input::WaterLow, false));
}

#[test]
fn spraying_empties_the_tank_until_the_float_trips_and_the_pump_runs_dry() {
    let mut rig = cold_rig();
    rig.spray(true);
    let mut float_at = None;
    for _ in 0..600 {
        rig.run(1.0);
        if let Some(e) = rig
            .take_edges()
            .into_iter()
            .find(|e| e.input == Input::WaterLow)
        {
            float_at = Some(e.at);
            break;
        }
    }
    let float_at = float_at.expect("float switch never tripped");
    println!(
        "1.5 L lasted {:.1} s of spraying to the float",
        float_at.as_secs_f64()
    );
    assert!(rig.truth().water_litres < 0.25);
    // 1.25 L at 0.2 L/min is ~375 s.
    assert!(
        (340.0..=410.0).contains(&float_at.as_secs_f64()),
        "{float_at:?}"
    );
    // 0.17 L from the float to the pick-up at 0.2 L/min: ~51 s.
    rig.run(90.0);
    assert_eq!(
        rig.pulses_over(5.0),
        0,
        "pump must run dry below the pick-up"
    );
    assert!(rig.truth().water_litres > 0.0);
    rig.sim.refill(1.5, 4.0);
    assert!(!rig.board.inputs.level(Input::WaterLow).unwrap());
    rig.run(1.0);
    assert!(rig.pulses_over(1.0) > 15);
}

#[test]
fn laser_heats_the_skin_and_cold_mist_brings_it_down() {
    let mut rig = cold_rig();
    let rest = rig.truth().skin_surface_c;
    assert!((32.0..=33.0).contains(&rest), "resting skin {rest}");
    let t0 = rig.sim.clock().now();
    rig.sim.laser_pass(secs(2.0), 1.0);
    rig.run(2.0);
    let hot = rig.truth();
    println!(
        "after a 2 s pass: surface {:.1} °C, peak {:.1} °C",
        hot.skin_surface_c, hot.skin_peak_c
    );
    assert!(
        hot.skin_surface_c > 45.0 && hot.skin_peak_c < 60.0,
        "{hot:?}"
    );
    assert!(!hot.laser_on);
    let laser: Vec<InputEdge> = rig
        .take_edges()
        .into_iter()
        .filter(|e| e.input == Input::LaserEmission)
        .collect();
    assert_eq!(laser.len(), 2);
    assert_eq!((laser[0].level, laser[0].at), (true, t0));
    assert_eq!((laser[1].level, laser[1].at), (false, t0 + secs(2.0)));

    // Prime the line so the mist is cold, as the controller keeps it.
    rig.spray(true);
    let mut below_26 = None;
    for i in 1..=300 {
        rig.run(0.1);
        if rig.truth().skin_surface_c < 26.0 {
            below_26 = Some(i as f64 * 0.1);
            break;
        }
    }
    let below_26 = below_26.expect("mist never brought the skin below 26 °C in 30 s");
    println!("4 °C mist: surface below 26 °C after {below_26:.1} s");
    let skin = rig.read(Sensor::Skin).unwrap();
    assert!(skin < 26.5, "MLX90614 read {skin}");
    rig.run(60.0);
    assert!(rig.truth().skin_surface_c < 10.0, "{:?}", rig.truth());
}

#[test]
fn skin_never_falls_below_zero() {
    let mut rig = Rig::new(SimConfig {
        initial_reservoir_c: 0.0,
        water_litres: 3.0,
        ..SimConfig::default()
    });
    rig.set(Output::Chiller, true);
    rig.set(Output::ChillerFan, true);
    rig.spray(true);
    let mut coldest = f64::MAX;
    for _ in 0..600 {
        rig.run(1.0);
        coldest = coldest.min(rig.truth().skin_min_c);
    }
    println!("coldest skin after 200 s of 0 °C mist: {coldest:.2} °C");
    assert!((0.0..5.0).contains(&coldest), "{coldest}");
}

#[test]
fn mist_temperature_lags_the_reservoir_while_flowing_and_drifts_to_room_when_not() {
    let mut rig = cold_rig();
    assert!((rig.truth().mist_c - 22.0).abs() < 1e-9);
    rig.spray(true);
    rig.run(2.5);
    let one_tau = rig.truth().mist_c;
    // 63 % of the way from 22 towards ~4.5 °C after one time constant.
    assert!((9.0..=12.0).contains(&one_tau), "{one_tau}");
    rig.run(15.0);
    let flowing = rig.truth();
    let pickup = flowing.mist_c - flowing.reservoir_c;
    assert!((0.3..=0.8).contains(&pickup), "line pickup {pickup}");
    let reading = rig.read(Sensor::Mist).unwrap();
    assert!((reading - flowing.mist_c).abs() < 0.06);
    rig.spray(false);
    rig.run(90.0);
    let drifted = rig.truth().mist_c;
    let expect = 22.0 - (22.0 - flowing.mist_c) * (-1.0_f64).exp();
    assert!((drifted - expect).abs() < 0.5, "{drifted} vs {expect}");
}

#[test]
fn sensor_faults_give_the_right_errors_and_values() {
    let mut rig = Rig::new(SimConfig::default());
    for sensor in Sensor::ALL {
        rig.sim.inject(Fault::SensorSilent(sensor));
        assert_eq!(rig.read(sensor), Err(SensorError::NoResponse));
        assert_eq!(
            rig.board.sensors.identify(sensor),
            Err(SensorError::NoResponse)
        );
        rig.sim.clear(Fault::SensorSilent(sensor));

        rig.sim.inject(Fault::SensorOutOfRange(sensor));
        let v = rig.read(sensor).unwrap();
        assert!(!sensor.plausible_range().contains(&v), "{sensor}: {v}");
        rig.sim.clear(Fault::SensorOutOfRange(sensor));
        let v = rig.read(sensor).unwrap();
        assert!(sensor.plausible_range().contains(&v), "{sensor}: {v}");
    }

    // Stuck: the exact value at injection, even as the truth moves.
    rig.sim.inject(Fault::SensorStuck(Sensor::Heatsink));
    let held = rig.read(Sensor::Heatsink).unwrap();
    rig.set(Output::Chiller, true);
    rig.run(120.0);
    assert!(rig.truth().heatsink_c > 35.0);
    for _ in 0..50 {
        assert_eq!(
            rig.read(Sensor::Heatsink).unwrap().to_bits(),
            held.to_bits()
        );
    }
    rig.sim.clear_all();
    assert!(rig.read(Sensor::Heatsink).unwrap() > 35.0);

    // A healthy sensor is never bit-identical for long (the stuck detector's premise).
    let mut same = 0;
    let mut last = rig.read(Sensor::Reservoir).unwrap();
    for _ in 0..100 {
        rig.run(0.1);
        let r = rig.read(Sensor::Reservoir).unwrap();
        if r == last {
            same += 1;
        }
        last = r;
    }
    assert!(same < 60, "{same} of 100 readings unchanged");
}

#[test]
fn skin_sensor_only_when_fitted() {
    let mut with = Rig::new(SimConfig::default());
    let mut without = Rig::new(SimConfig {
        skin_sensor: false,
        ..SimConfig::default()
    });
    assert!(with.board.sensors.fitted().contains(&Sensor::Skin));
    assert_eq!(with.board.sensors.fitted().len(), 5);
    assert_eq!(
        without.board.sensors.fitted(),
        vec![
            Sensor::Reservoir,
            Sensor::Mist,
            Sensor::Heatsink,
            Sensor::Pressure
        ]
    );
    assert!(with.read(Sensor::Skin).is_ok());
    assert_eq!(without.read(Sensor::Skin), Err(SensorError::NotFitted));
    assert_eq!(
        without.board.sensors.identify(Sensor::Skin),
        Err(SensorError::NotFitted)
    );
}

#[test]
fn chips_identify_themselves() {
    let mut rig = Rig::new(SimConfig::default());
    let expected = [
        (Sensor::Reservoir, "TMP117", 0x0117),
        (Sensor::Mist, "TMP117", 0x0117),
        (Sensor::Heatsink, "MCP9808", 0x0400),
        (Sensor::Skin, "MLX90614", 0),
        (Sensor::Pressure, "ADS1115", 0),
    ];
    for (sensor, part, id) in expected {
        let chip = rig.board.sensors.identify(sensor).unwrap();
        assert_eq!(
            (chip.sensor, chip.part.as_str(), chip.id),
            (sensor, part, id)
        );
    }
}

#[test]
fn readings_sit_on_each_chips_resolution() {
    let mut rig = Rig::new(SimConfig::default());
    for (sensor, lsb, offset) in [
        (Sensor::Reservoir, 0.0078125, 0.0),
        (Sensor::Heatsink, 0.0625, 0.0),
        (Sensor::Skin, 0.02, -273.15),
        (Sensor::Pressure, 0.0003125, -1.25),
    ] {
        for _ in 0..20 {
            let v = rig.read(sensor).unwrap();
            let counts = (v - offset) / lsb;
            assert!((counts - counts.round()).abs() < 1e-6, "{sensor}: {v}");
        }
    }
}

fn check_batch(rig: &Rig, from: Duration, to: Duration, all: &mut Vec<InputEdge>) {
    for e in rig.take_edges() {
        assert!(
            e.at >= from && e.at <= to,
            "{e:?} outside {from:?}..={to:?}"
        );
        all.push(e);
    }
}

#[test]
fn edges_arrive_in_time_order_with_increasing_seqno_inside_the_advanced_interval() {
    let mut rig = cold_rig();
    let clock = rig.sim.clock();
    rig.spray(true);
    let mut all = Vec::new();
    for step in 0..40 {
        let from = clock.now();
        match step {
            3 => rig.sim.set_trigger(true),
            5 => rig.sim.laser_pass(secs(0.333), 1.0),
            9 => rig.sim.set_estop(true),
            11 => rig.sim.set_estop(false),
            20 => rig.sim.set_trigger(false),
            25 => rig.sim.inject(Fault::WaterLow),
            30 => rig.sim.clear(Fault::WaterLow),
            _ => {}
        }
        // Irregular advances, including ones shorter than a pulse period.
        rig.sim
            .advance(Duration::from_micros(1_000 + 97_531 * (step % 7)));
        let to = clock.now();
        check_batch(&rig, from, to, &mut all);
    }
    assert!(
        all.windows(2).all(|w| w[0].at <= w[1].at),
        "edges out of time order"
    );
    for input in Input::ALL {
        let seq: Vec<u64> = all
            .iter()
            .filter(|e| e.input == input)
            .map(|e| e.seqno)
            .collect();
        let want: Vec<u64> = (1..=seq.len() as u64).collect();
        assert_eq!(seq, want, "{input}: seqno not consecutive from 1");
    }
    let count = |i: Input| all.iter().filter(|e| e.input == i).count();
    assert_eq!(count(Input::Trigger), 2);
    assert_eq!(count(Input::Estop), 2);
    assert_eq!(count(Input::LaserEmission), 2);
    assert_eq!(count(Input::WaterLow), 2);
    assert!(count(Input::FlowPulse) > 100);
    assert!(all
        .iter()
        .filter(|e| e.input == Input::FlowPulse)
        .all(|e| e.level));
    // Level-type inputs alternate.
    for input in [
        Input::Trigger,
        Input::Estop,
        Input::LaserEmission,
        Input::WaterLow,
    ] {
        let levels: Vec<bool> = all
            .iter()
            .filter(|e| e.input == input)
            .map(|e| e.level)
            .collect();
        assert_eq!(levels, vec![true, false], "{input}");
    }
}

#[test]
fn clock_moves_exactly_by_dt_and_is_the_boards_clock() {
    let rig = Rig::new(SimConfig::default());
    let clock = rig.sim.clock();
    rig.sim.advance(Duration::from_nanos(1_234_567_891));
    rig.sim.advance(Duration::from_nanos(3));
    assert_eq!(clock.now(), Duration::from_nanos(1_234_567_894));
    assert_eq!(rig.board.clock.now(), clock.now());
    assert_eq!(rig.truth().now, clock.now());
    assert_eq!(rig.board.backend, "sim");
}

#[test]
fn outputs_and_inputs_round_trip_through_the_board_and_clones() {
    let mut rig = Rig::new(SimConfig::default());
    let other = rig.sim.clone();
    rig.set(Output::Buzzer, true);
    rig.set(Output::Chiller, true);
    assert!(rig.board.outputs.commanded(Output::Buzzer));
    let t = other.truth();
    assert!(t.outputs[Output::Buzzer.index()] && t.outputs[Output::Chiller.index()]);
    assert!(!t.outputs[Output::Pump.index()]);
    rig.board.outputs.all_safe().unwrap();
    assert_eq!(other.truth().outputs, [false; 7]);
    assert!(rig.board.outputs.set_pump_duty(0).is_err());
    assert!(rig.board.outputs.set_pump_duty(101).is_err());
    assert!(rig.board.outputs.set_pump_duty(55).is_ok());

    other.set_trigger(true);
    other.set_estop(true);
    assert!(rig.board.inputs.level(Input::Trigger).unwrap());
    assert!(rig.board.inputs.level(Input::Estop).unwrap());
    other.laser_pass(secs(1.0), 0.5);
    assert!(rig.board.inputs.level(Input::LaserEmission).unwrap());
    other.advance(secs(1.0));
    assert!(!rig.board.inputs.level(Input::LaserEmission).unwrap());
    other.clear_all();
    assert!(!rig.board.inputs.level(Input::Estop).unwrap());
}

#[test]
fn ambient_change_moves_an_idle_unit() {
    let rig = Rig::new(SimConfig::default());
    rig.sim.set_ambient(30.0);
    rig.run(1800.0);
    let t = rig.truth();
    assert!(
        t.reservoir_c > 24.0 && t.reservoir_c < 30.0,
        "{}",
        t.reservoir_c
    );
    // The idle TEC couples the heatsink to the still cooler water.
    assert!(
        t.heatsink_c > t.reservoir_c && t.heatsink_c < 30.0,
        "{}",
        t.heatsink_c
    );
    assert!(t.skin_surface_c > 33.0, "{}", t.skin_surface_c);
}

/// Runs a fixed scenario and returns every reading and edge.
fn scenario(seed: u64) -> (Vec<Result<f64, SensorError>>, Vec<InputEdge>) {
    let mut rig = Rig::new(SimConfig {
        seed,
        ..SimConfig::default()
    });
    rig.set(Output::Chiller, true);
    rig.set(Output::ChillerFan, true);
    rig.spray(true);
    rig.sim.laser_pass(secs(1.0), 0.8);
    let mut readings = Vec::new();
    for _ in 0..30 {
        rig.run(0.25);
        for sensor in Sensor::ALL {
            readings.push(rig.read(sensor));
        }
    }
    (readings, rig.take_edges())
}

#[test]
fn same_seed_same_readings() {
    let (a, ea) = scenario(42);
    let (b, eb) = scenario(42);
    let (c, _) = scenario(43);
    assert_eq!(a, b);
    assert_eq!(ea, eb);
    assert_ne!(a, c);
}

#[derive(Debug, Clone)]
enum Op {
    Set(usize, bool),
    Duty(u8),
    Inject(usize),
    Clear(usize),
    Laser(u16, f64),
    Advance(u32),
}

const FAULTS: [Fault; 8] = [
    Fault::ChillerDead,
    Fault::PumpDead,
    Fault::NozzleBlocked,
    Fault::Leak,
    Fault::WaterLow,
    Fault::Estop,
    Fault::FanDead,
    Fault::SensorStuck(Sensor::Mist),
];

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0usize..7, any::<bool>()).prop_map(|(o, on)| Op::Set(o, on)),
        (1u8..=100).prop_map(Op::Duty),
        (0usize..FAULTS.len()).prop_map(Op::Inject),
        (0usize..FAULTS.len()).prop_map(Op::Clear),
        (0u16..5000, 0.0f64..3.0).prop_map(|(ms, f)| Op::Laser(ms, f)),
        (1u32..60_000).prop_map(Op::Advance),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    /// Whatever the controller does, the physics stays physical: temperatures finite and
    /// bounded by their sources, pressure within pump limits, water only ever leaves,
    /// edges in order.
    #[test]
    fn physics_stays_bounded_under_any_output_sequence(
        ops in proptest::collection::vec(op(), 1..40),
        ambient in 10.0f64..35.0,
        reservoir in 0.0f64..35.0,
        water in 0.0f64..3.0,
    ) {
        let mut rig = Rig::new(SimConfig {
            ambient_c: ambient,
            initial_reservoir_c: reservoir,
            water_litres: water,
            ..SimConfig::default()
        });
        // Nothing in the unit is a heat source for the water except the room and the
        // heatsink (through unpowered TEC modules), so the water never gets hotter than both.
        let mut hot_bound = ambient.max(reservoir);
        let mut water_left = water;
        for op in ops {
            match op {
                Op::Set(o, on) => rig.set(Output::ALL[o], on),
                Op::Duty(d) => rig.board.outputs.set_pump_duty(d).unwrap(),
                Op::Inject(f) => rig.sim.inject(FAULTS[f]),
                Op::Clear(f) => rig.sim.clear(FAULTS[f]),
                Op::Laser(ms, f) => rig.sim.laser_pass(Duration::from_millis(u64::from(ms)), f),
                Op::Advance(ms) => rig.sim.advance(Duration::from_millis(u64::from(ms))),
            }
            let t = rig.truth();
            hot_bound = hot_bound.max(t.heatsink_c);
            for v in [t.reservoir_c, t.mist_c, t.heatsink_c, t.skin_surface_c, t.skin_peak_c,
                      t.skin_min_c, t.pressure_bar, t.flow_l_min, t.water_litres] {
                prop_assert!(v.is_finite(), "{t:?}");
            }
            prop_assert!(t.reservoir_c >= 0.0 && t.reservoir_c <= hot_bound + 1e-6, "{t:?}");
            prop_assert!(t.mist_c >= 0.0 && t.mist_c <= hot_bound + 1e-6, "{t:?}");
            prop_assert!(t.heatsink_c >= 0.0 && t.heatsink_c < ambient + 100.0, "{t:?}");
            prop_assert!(t.skin_min_c >= 0.0 && t.skin_min_c <= t.skin_surface_c + 1e-9, "{t:?}");
            // No upper physical bound short of ablation for a 3x pass squeezed into 1 ms;
            // this only guards against blow-up.
            prop_assert!(t.skin_peak_c < 300.0, "{t:?}");
            prop_assert!(t.pressure_bar >= 0.0 && t.pressure_bar <= 3.5 + 1e-9, "{t:?}");
            prop_assert!(t.flow_l_min >= 0.0 && t.flow_l_min <= 0.2 + 1e-9, "{t:?}");
            prop_assert!(t.water_litres >= 0.0 && t.water_litres <= water_left + 1e-12, "{t:?}");
            water_left = t.water_litres;
        }
        let edges = rig.take_edges();
        prop_assert!(edges.windows(2).all(|w| w[0].at <= w[1].at));
        for input in Input::ALL {
            let seq: Vec<u64> = edges.iter().filter(|e| e.input == input).map(|e| e.seqno).collect();
            prop_assert!(seq.iter().copied().eq(1..=seq.len() as u64), "{input}: {seq:?}");
        }
    }
}

#[test]
fn edges_stay_in_order_when_clones_are_driven_from_several_threads() {
    let mut rig = cold_rig();
    rig.spray(true);
    let driver = rig.sim.clone();
    let pedal = rig.sim.clone();
    let advancing = std::thread::spawn(move || {
        for _ in 0..2000 {
            driver.advance(Duration::from_millis(7));
        }
    });
    let pressing = std::thread::spawn(move || {
        for i in 0..400 {
            pedal.set_trigger(i % 2 == 0);
            if i % 50 == 0 {
                pedal.laser_pass(Duration::from_millis(30), 0.1);
            }
            std::thread::yield_now();
        }
    });
    advancing.join().unwrap();
    pressing.join().unwrap();
    let edges = rig.take_edges();
    assert!(
        edges.windows(2).all(|w| w[0].at <= w[1].at),
        "out of time order"
    );
    for input in Input::ALL {
        let seq: Vec<u64> = edges
            .iter()
            .filter(|e| e.input == input)
            .map(|e| e.seqno)
            .collect();
        assert!(
            seq.iter().copied().eq(1..=seq.len() as u64),
            "{input}: {seq:?}"
        );
    }
    let triggers = edges.iter().filter(|e| e.input == Input::Trigger).count();
    assert_eq!(triggers, 400);
    assert!(edges.iter().filter(|e| e.input == Input::FlowPulse).count() > 250);
}
