//! The clinic scenario on the simulated unit, in simulated time: cold start to ready, a laser
//! pass, auto-start within one control step of the laser edge, closed-loop stop at the skin
//! target, and the skin never below the floor.

mod common;

use coldspray_hal::sim::SimConfig;
use coldspray_hal::{Output, Sensor};
use coldsprayd::api::{Command, Event};
use coldsprayd::control::CoreConfig;
use coldsprayd::lockstep::{Lockstep, STEP};
use coldsprayd::model::session::{Outcome, StartCause};
use coldsprayd::model::state::UnitState;
use std::time::Duration;

#[test]
fn cold_start_laser_pass_auto_start_and_closed_loop_stop() {
    let mut u = Lockstep::new(CoreConfig::default(), SimConfig::default());
    assert_eq!(u.snapshot().state, UnitState::Starting);
    assert_eq!(u.outputs(), [false; 7], "everything off at power-on");

    // Cold start: self-test, precooling, ready.
    let to_precool = u
        .run_until(Duration::from_secs(10), |u| {
            u.snapshot().state == UnitState::Precooling
        })
        .expect("self-test passes");
    let to_ready = u
        .run_until(Duration::from_secs(3600), |u| u.snapshot().ready)
        .expect("reaches ready");
    let total = to_precool + to_ready;
    println!(
        "cold start: self-test {:.2} s, ready after {:.1} simulated minutes (reservoir {:.2} °C)",
        to_precool.as_secs_f64(),
        total.as_secs_f64() / 60.0,
        u.reading(Sensor::Reservoir).unwrap_or(f64::NAN)
    );
    assert!(
        total > Duration::from_secs(5 * 60) && total < Duration::from_secs(45 * 60),
        "a 1.5 L reservoir from 22 °C takes minutes, not {total:?}"
    );

    // Armed, then a laser pass; the falling edge starts spraying within one control step.
    u.command(Command::Arm {
        protocol: "co2_fractional".into(),
    })
    .unwrap();
    u.sim.laser_pass(Duration::from_secs(3), 1.0);
    u.run_until(Duration::from_secs(5), |u| u.truth().laser_on)
        .expect("laser on");
    let mut laser_end = None;
    let mut valve_open = None;
    while valve_open.is_none() && u.now() < Duration::from_secs(3 * 3600) {
        let was_on = u.truth().laser_on;
        u.tick();
        if was_on && !u.truth().laser_on {
            laser_end = Some(u.now());
        }
        if laser_end.is_some() && u.output(Output::SprayValve) {
            valve_open = Some(u.now());
        }
    }
    let (end, open) = (
        laser_end.expect("laser ended"),
        valve_open.expect("spraying"),
    );
    assert!(open - end <= STEP, "auto-start took {:?}", open - end);
    let snap = u.snapshot();
    let session = snap.session.clone().expect("session running");
    assert_eq!(session.start.cause, StartCause::AutoStart);
    let delay = session.start.laser_to_spray_ms.expect("delay recorded");
    assert!(
        delay <= STEP.as_secs_f64() * 1000.0,
        "recorded delay {delay} ms"
    );
    assert!(!session.start.late);
    println!("auto-start: valve open {delay:.1} ms after the laser edge");

    // Closed loop: spraying stops at the target; the skin never goes below the floor.
    let mut min_skin = f64::INFINITY;
    let stopped = u
        .run_until(Duration::from_secs(130), |u| {
            u.snapshot().state != UnitState::Spraying
        })
        .expect("session ends");
    for _ in 0..3000 {
        u.tick();
        min_skin = min_skin.min(u.truth().skin_min_c.min(u.truth().skin_surface_c));
    }
    let record = u
        .events
        .iter()
        .find_map(|e| match e {
            Event::SessionEnded(r) => Some(r.clone()),
            _ => None,
        })
        .expect("session record");
    println!(
        "session: {} after {:.1} s, skin peak {:?} min {:?}, time to target {:?} ms, above 40 °C {:?} ms",
        record.outcome,
        stopped.as_secs_f64(),
        record.peak_skin_c,
        record.min_skin_c,
        record.time_to_target_ms,
        record.above_40_ms
    );
    assert_eq!(record.outcome, Outcome::TargetReached);
    assert!(
        record.peak_skin_c.unwrap_or(0.0) > 40.0,
        "the laser heated the skin"
    );
    assert!(record.min_skin_c.unwrap_or(0.0) <= 26.0 + 0.5);
    assert!(record.above_40_ms.is_some());
    assert!(
        min_skin > record.start.skin_floor_c,
        "skin fell to {min_skin} °C"
    );
    assert!(!u.output(Output::Pump) && !u.output(Output::SprayValve));
    assert_eq!(u.snapshot().state, UnitState::Ready);
}

#[test]
fn a_start_after_the_late_threshold_is_recorded_as_late() {
    let mut u = common::ready_unit();
    u.sim.laser_pass(Duration::from_secs(2), 1.0);
    u.run_for(Duration::from_secs(2) + Duration::from_secs(12));
    common::start(&mut u, "nd_yag");
    let start = u.snapshot().session.expect("running").start;
    assert!(start.late, "{start:?}");
    assert!(start.laser_to_spray_ms.unwrap() > 10_000.0);
    assert!(u
        .snapshot()
        .has_alarm(coldsprayd::model::alarm::AlarmKind::LateStart));
    assert_eq!(u.snapshot().counters.late_sessions, 1);
}

#[test]
fn an_untargeted_session_holds_above_the_floor_until_its_time_runs_out() {
    let mut u = common::ready_unit();
    let mut p = coldsprayd::protocol::Protocol::factory_defaults().remove(2);
    p.name = "untargeted".into();
    p.skin_target_c = None;
    p.spray_s = 120.0;
    u.command(Command::UpsertProtocol(Box::new(p))).unwrap();
    common::start(&mut u, "untargeted");
    let mut min_surface = f64::INFINITY;
    while u.snapshot().state == UnitState::Spraying {
        u.tick();
        min_surface = min_surface.min(u.truth().skin_surface_c);
    }
    println!("untargeted 120 s session: coldest surface {min_surface:.2} °C (floor 10 °C)");
    assert!(min_surface > 10.0);
    let last = u.events.iter().rev().find_map(|e| match e {
        Event::SessionEnded(r) => Some(r.clone()),
        _ => None,
    });
    let last = last.expect("session record");
    assert_eq!(last.outcome, Outcome::DurationElapsed, "{last:?}");
}

#[test]
fn pedal_starts_and_stops_a_session() {
    let mut u = common::ready_unit();
    u.sim.set_trigger(true);
    u.tick();
    assert!(
        u.output(Output::SprayValve),
        "pedal starts the default protocol"
    );
    u.sim.set_trigger(false);
    u.run_for(Duration::from_secs(1));
    u.sim.set_trigger(true);
    u.tick();
    assert!(!u.output(Output::SprayValve) && !u.output(Output::Pump));
    let outcome = u.events.iter().rev().find_map(|e| match e {
        Event::SessionEnded(r) => Some(r.outcome),
        _ => None,
    });
    assert_eq!(outcome, Some(Outcome::Stopped));
}

/// Hands the core a laser-emission falling edge (end of emission) stamped now, as the edge
/// thread would, without its rising edge.
fn laser_end_edge(u: &mut Lockstep, seqno: u64) {
    let at = u.now();
    u.core.on_edge(coldspray_hal::InputEdge {
        input: coldspray_hal::Input::LaserEmission,
        level: false,
        at,
        seqno,
    });
}

#[test]
fn a_falling_laser_edge_alone_still_starts_cooling() {
    // The rising edge was lost (a simulated interrupt path can drop one): the end of emission
    // must still start the armed session.
    let mut u = common::ready_unit();
    u.command(Command::Arm {
        protocol: "nd_yag".into(),
    })
    .unwrap();
    laser_end_edge(&mut u, 7);
    u.tick();
    assert!(u.output(Output::SprayValve), "{:#?}", u.snapshot());
    let s = u.snapshot().session.expect("session").start;
    assert_eq!(s.cause, StartCause::AutoStart);
    assert!(s
        .laser_to_spray_ms
        .is_some_and(|d| d <= STEP.as_secs_f64() * 1000.0));
}

#[test]
fn a_lost_pedal_release_does_not_swallow_the_next_press() {
    // The VM showed a pedal edge can be lost: press (start), release lost, press again. The
    // second press must still stop the session; a debounced press edge is a press.
    let mut u = common::ready_unit();
    let edge = |level: bool, at, seqno| coldspray_hal::InputEdge {
        input: coldspray_hal::Input::Trigger,
        level,
        at,
        seqno,
    };
    let at = u.now();
    u.core.on_edge(edge(true, at, 1));
    u.tick();
    assert!(u.output(Output::SprayValve), "the first press starts");
    u.run_for(Duration::from_millis(500));
    let at = u.now();
    u.core.on_edge(edge(true, at, 3)); // seqno 2, the release, never arrived
    u.tick();
    assert!(
        !u.output(Output::SprayValve) && !u.output(Output::Pump),
        "the second press stops: {:#?}",
        u.snapshot()
    );
    let outcome = u.events.iter().rev().find_map(|e| match e {
        Event::SessionEnded(r) => Some(r.outcome),
        _ => None,
    });
    assert_eq!(outcome, Some(Outcome::Stopped));
}

#[test]
fn a_laser_end_during_a_fault_does_not_spray_when_the_fault_is_acknowledged() {
    // Found in the VM: a laser cue that arrived while water was low was kept, and acknowledging
    // the alarm 1.2 s later started spraying at once. Acknowledging an alarm must never start
    // an actuator; a cue that arrives while the unit is in fault is dropped.
    use coldspray_hal::sim::Fault;
    let mut u = common::ready_unit();
    u.command(Command::Arm {
        protocol: "co2_fractional".into(),
    })
    .unwrap();
    u.sim.inject(Fault::WaterLow);
    let faulted = u.run_until(Duration::from_secs(1), |u| {
        u.snapshot().state == UnitState::Fault
    });
    assert!(faulted.is_some(), "{:#?}", u.snapshot());
    laser_end_edge(&mut u, 11);
    u.run_for(Duration::from_millis(500));
    u.sim.clear(Fault::WaterLow);
    u.run_for(Duration::from_millis(500));
    u.command(Command::Acknowledge { key: None }).unwrap();
    let ready = u.run_until(Duration::from_secs(30), |u| {
        u.snapshot().state == UnitState::Ready
    });
    assert!(ready.is_some(), "{:#?}", u.snapshot());
    u.run_for(Duration::from_secs(2));
    assert!(
        !u.output(Output::SprayValve) && !u.output(Output::Pump),
        "sprayed after the acknowledgement: {:#?}",
        u.snapshot()
    );
    assert!(u.snapshot().session.is_none());
    // Still armed: the next laser end starts cooling as usual.
    laser_end_edge(&mut u, 13);
    u.tick();
    assert!(u.output(Output::SprayValve), "{:#?}", u.snapshot());
}

/// A wall-clock step (NTP correcting a Pi without a real-time clock, an RTC reset) moves
/// neither a safety timer nor a quality indicator: they all run on the monotonic clock. The
/// record keeps the wall times the clock gave, so the jump shows in it.
#[test]
fn a_wall_clock_jump_moves_no_timer_and_no_indicator() {
    const THREE_YEARS_MS: i64 = 3 * 365 * 86_400_000;
    let session_with_jump = |jump_ms: i64| {
        let mut config = CoreConfig::default();
        config.safety.max_spray_s = 30.0;
        let mut u = common::ready_unit_with(config, common::cold_twin());
        let mut p = coldsprayd::protocol::Protocol::factory_defaults().remove(2);
        p.name = "untargeted".into();
        p.skin_target_c = None;
        p.spray_s = 20.0;
        u.command(Command::UpsertProtocol(Box::new(p))).unwrap();
        common::start(&mut u, "untargeted");
        u.run_for(Duration::from_secs(5));
        u.jump_wall_clock(jump_ms);
        u.run_for(Duration::from_secs(20));
        assert!(
            u.snapshot().alarms.is_empty(),
            "jump {jump_ms} ms raised {:?}",
            u.snapshot().alarms
        );
        assert_eq!(u.snapshot().state, UnitState::Ready);
        u.events
            .iter()
            .rev()
            .find_map(|e| match e {
                Event::SessionEnded(r) => Some(r.clone()),
                _ => None,
            })
            .expect("the session ended")
    };
    let steady = session_with_jump(0);
    assert_eq!(steady.outcome, Outcome::DurationElapsed);
    assert!((steady.duration().as_secs_f64() - 20.0).abs() <= 0.05);
    for jump_ms in [-3_600_000, THREE_YEARS_MS] {
        let jumped = session_with_jump(jump_ms);
        assert_eq!(jumped.outcome, steady.outcome, "jump {jump_ms} ms");
        assert_eq!(jumped.duration(), steady.duration(), "jump {jump_ms} ms");
        assert_eq!(jumped.spray_ms, steady.spray_ms, "jump {jump_ms} ms");
        assert_eq!(jumped.above_40_ms, steady.above_40_ms, "jump {jump_ms} ms");
        assert_eq!(jumped.min_skin_c, steady.min_skin_c, "jump {jump_ms} ms");
        let wall = jumped.ended_unix_ms - jumped.start.started_unix_ms;
        let steady_wall = steady.ended_unix_ms - steady.start.started_unix_ms;
        assert_eq!(
            wall - steady_wall,
            jump_ms,
            "the record keeps the wall clock's times"
        );
    }
}
