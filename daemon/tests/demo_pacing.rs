//! The demo's pacing, on the real runtime and simulated unit: which speed the demo asks for
//! at each step of the story, read in simulated time. The recording pace notes each request
//! and keeps the twin at full speed, so the test takes seconds and asserts nothing of wall
//! time.

use coldspray_hal::sim::SimUnit;
use coldspray_hal::Clock;
use coldsprayd::api::Event;
use coldsprayd::config::{Backend, Config};
use coldsprayd::demo::{self, DemoError, Pace, Speeds};
use coldsprayd::model::state::UnitState;
use coldsprayd::runtime::{self, Daemon, Parts};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const FAST: f64 = 50.0;
const STORY: f64 = 1.0;

/// Notes each speed the demo asks for, at its simulated time; the twin stays at full speed.
struct Recording {
    clock: coldspray_hal::ManualClock,
    asked: Mutex<Vec<(Duration, f64)>>,
}

impl Pace for Recording {
    fn now(&self) -> Duration {
        self.clock.now()
    }
    fn set_speed(&self, speed: f64) {
        self.asked.lock().unwrap().push((self.clock.now(), speed));
    }
}

/// Simulated time that leaps an hour at every look.
struct Leaping(Mutex<Duration>);

impl Pace for Leaping {
    fn now(&self) -> Duration {
        let mut t = self.0.lock().unwrap();
        *t += Duration::from_secs(3600);
        *t
    }
    fn set_speed(&self, _: f64) {}
}

fn start(dir: &std::path::Path, initial_reservoir_c: f64) -> (Daemon, SimUnit) {
    let mut config = Config::default();
    config.unit.backend = Backend::Sim;
    config.unit.state_dir = Some(dir.to_path_buf());
    config.sim.speed = 200.0;
    config.sim.initial_reservoir_c = initial_reservoir_c;
    let sim = SimUnit::new(config.sim.clone());
    let store = coldsprayd::store::open(&config.store, &config.state_dir()).expect("store opens");
    let parts = Parts {
        board: Some(sim.board()),
        sim: Some(sim.clone()),
        store: Some(Arc::new(store)),
        store_error: None,
    };
    (runtime::start(&config, parts).expect("runtime starts"), sim)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_story_plays_in_real_time_and_the_waiting_fast_forward() {
    let dir = tempfile::tempdir().unwrap();
    let (daemon, sim) = start(dir.path(), 5.0);
    let mut events = daemon.handle.events();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let collector = {
        let seen = seen.clone();
        tokio::spawn(async move {
            while let Ok(e) = events.recv().await {
                if let Event::StateChanged { at, from, to, .. } = e {
                    seen.lock().unwrap().push((at, from, to));
                }
            }
        })
    };
    let pace = Recording {
        clock: sim.clock(),
        asked: Mutex::new(Vec::new()),
    };
    let speeds = Speeds {
        fast: FAST,
        story: STORY,
    };
    if let Err(e) = demo::run(daemon.handle.clone(), &pace, speeds).await {
        panic!("the demo stopped: {e}; {:#?}", daemon.handle.snapshot());
    }
    daemon.stop().await.expect("stops");
    collector.abort();

    let asked = pace.asked.lock().unwrap().clone();
    let speed_at = |t: Duration| {
        asked
            .iter()
            .rev()
            .find(|(at, _)| *at <= t)
            .map(|(_, s)| *s)
            .unwrap_or(f64::NAN)
    };
    assert_eq!(
        asked.first().map(|a| a.1),
        Some(FAST),
        "the precool fast-forwards: {asked:?}"
    );
    assert_eq!(
        asked.last().map(|a| a.1),
        Some(STORY),
        "then real time: {asked:?}"
    );
    let seen = seen.lock().unwrap().clone();
    let story_moments: Vec<_> = seen
        .iter()
        .filter(|(_, from, to)| {
            *to == UnitState::Spraying || *to == UnitState::Fault || *from == UnitState::Fault
        })
        .collect();
    // Two sprays, the fault, and the way out of it after the acknowledgement.
    assert!(story_moments.len() >= 4, "{seen:?}");
    for (at, from, to) in story_moments {
        assert_eq!(
            speed_at(*at),
            STORY,
            "{from:?} -> {to:?} at {at:?} was not in real time: {asked:?}"
        );
    }
    let precool_end = seen
        .iter()
        .find(|(_, _, to)| *to == UnitState::Ready)
        .map(|(at, _, _)| *at)
        .expect("ready once");
    // Nothing slowed the precool down: every request before the unit was first ready is FAST.
    assert!(
        asked
            .iter()
            .filter(|(at, _)| *at < precool_end)
            .all(|(_, s)| *s == FAST),
        "{asked:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_waits_are_budgets_of_simulated_time() {
    let dir = tempfile::tempdir().unwrap();
    // A warm reservoir: ready is many simulated minutes away.
    let (daemon, _sim) = start(dir.path(), 25.0);
    let pace = Leaping(Mutex::new(Duration::ZERO));
    let speeds = Speeds::for_configured(200.0);
    let e = demo::run(daemon.handle.clone(), &pace, speeds)
        .await
        .expect_err("an hour of simulated time passes at each look");
    assert!(
        matches!(e, DemoError::Timeout("ready")),
        "{e}: the budget is simulated time, spent however little wall time passed"
    );
    daemon.stop().await.expect("stops");
}

#[test]
fn the_story_runs_in_real_time_and_never_faster_than_configured() {
    let s = Speeds::for_configured(50.0);
    assert_eq!((s.fast, s.story), (50.0, 1.0));
    let s = Speeds::for_configured(0.5);
    assert_eq!((s.fast, s.story), (0.5, 0.5));
}
