//! Demo mode: a scripted clinic sequence on the simulated unit — cold start, ready, a laser
//! pass, auto-start, closed-loop stop, a blocked nozzle, acknowledge, ready again — driven
//! through the same [`ControlHandle`] the D-Bus API uses.
//!
//! Paced for a person watching: the precool and the recoveries run fast-forward (the
//! configured `--speed`), the story — laser pass, spray and falling skin curve, fault and
//! acknowledgement — at [`STORY_SPEED`]. Every wait is measured in simulated time through
//! [`Pace`], so a machine too slow for the requested speed slows the demo down instead of
//! making it give up.

use crate::api::{Command, Event, Snapshot, StartOptions};
use crate::handle::ControlHandle;
use crate::model::state::UnitState;
use crate::runtime::SimSpeed;
use coldspray_hal::sim::Fault;
use coldspray_hal::Clock;
use std::time::Duration;

/// Simulation speed of the parts of the story a person follows: real time.
pub const STORY_SPEED: f64 = 1.0;

/// How often a wait looks at the simulated clock (wall time; only the polling period).
const POLL: Duration = Duration::from_millis(20);

/// Why the demo stopped early.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// The daemon is not running on the simulated unit.
    #[error("the demo needs the simulated unit")]
    NotSimulated,
    /// A step did not happen within its budget of simulated time.
    #[error("timed out waiting for {0}")]
    Timeout(&'static str),
    /// A command was refused.
    #[error("{0}")]
    Refused(#[from] crate::api::CommandError),
    /// The daemon stopped.
    #[error("the daemon stopped")]
    Stopped,
}

/// The demo's simulated time and its one knob, the simulation speed.
pub trait Pace: Send + Sync {
    /// Simulated time now.
    fn now(&self) -> Duration;
    /// Runs the simulation at `speed` (simulated seconds per wall second) from now on.
    fn set_speed(&self, speed: f64);
}

/// The pace of the running daemon: the twin's clock and the runtime's [`SimSpeed`].
pub struct SimPace {
    /// The simulated unit's clock.
    pub clock: coldspray_hal::ManualClock,
    /// The simulated unit's speed.
    pub speed: SimSpeed,
}

impl Pace for SimPace {
    fn now(&self) -> Duration {
        self.clock.now()
    }
    fn set_speed(&self, speed: f64) {
        let set = self.speed.set(speed);
        tracing::info!(target: "coldspray::demo", "simulation speed {set}x");
    }
}

/// How fast each part of the demo runs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Speeds {
    /// Precool and recoveries: the configured speed.
    pub fast: f64,
    /// Laser pass, spray, fault and acknowledgement.
    pub story: f64,
}

impl Speeds {
    /// Fast-forward at `configured`, the story at [`STORY_SPEED`] (or slower, if configured so).
    pub fn for_configured(configured: f64) -> Speeds {
        Speeds {
            fast: configured,
            story: STORY_SPEED.min(configured),
        }
    }
}

/// Waits until `pred` holds, at most `budget` of simulated time.
async fn wait_for(
    handle: &ControlHandle,
    pace: &dyn Pace,
    what: &'static str,
    budget: Duration,
    pred: impl Fn(&Snapshot) -> bool,
) -> Result<Snapshot, DemoError> {
    let deadline = pace.now() + budget;
    let mut rx = handle.watch();
    loop {
        let snap = rx.borrow_and_update().clone();
        if pred(&snap) {
            return Ok((*snap).clone());
        }
        if pace.now() >= deadline {
            return Err(DemoError::Timeout(what));
        }
        tokio::select! {
            changed = rx.changed() => changed.map_err(|_| DemoError::Stopped)?,
            _ = tokio::time::sleep(POLL) => {}
        }
    }
}

/// Waits for the end of the running session, at most `budget` of simulated time.
async fn session_end(
    events: &mut tokio::sync::broadcast::Receiver<Event>,
    pace: &dyn Pace,
    budget: Duration,
) -> Result<crate::model::session::SessionRecord, DemoError> {
    use tokio::sync::broadcast::error::TryRecvError;
    let deadline = pace.now() + budget;
    loop {
        match events.try_recv() {
            Ok(Event::SessionEnded(r)) => return Ok(r),
            Ok(_) | Err(TryRecvError::Lagged(_)) => continue,
            Err(TryRecvError::Closed) => return Err(DemoError::Stopped),
            Err(TryRecvError::Empty) => {}
        }
        if pace.now() >= deadline {
            return Err(DemoError::Timeout("the session to end"));
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Lets `d` of simulated time pass.
async fn sim_sleep(pace: &dyn Pace, d: Duration) {
    let until = pace.now() + d;
    while pace.now() < until {
        tokio::time::sleep(POLL).await;
    }
}

fn say(step: &str) {
    tracing::info!(target: "coldspray::demo", "{step}");
}

/// Plays the sequence once, at `speeds`, then leaves the unit running at the story speed.
pub async fn run(handle: ControlHandle, pace: &dyn Pace, speeds: Speeds) -> Result<(), DemoError> {
    let sim = handle.sim.clone().ok_or(DemoError::NotSimulated)?;
    let secs = Duration::from_secs;
    let mut events = handle.events();

    pace.set_speed(speeds.fast);
    say("cold start: self-test, then the chiller pulls the reservoir down (fast-forward)");
    let ready = wait_for(&handle, pace, "ready", secs(3600), |s| s.ready).await?;
    say(&format!(
        "ready after {:.0} s of simulated time (reservoir {:.1} °C)",
        ready.at.as_secs_f64(),
        ready
            .reading(coldspray_hal::Sensor::Reservoir)
            .unwrap_or(f64::NAN)
    ));

    pace.set_speed(speeds.story);
    say("operator arms auto-start with CO2 fractional; the laser fires a 3 s pass");
    handle
        .command(Command::Arm {
            protocol: "co2_fractional".into(),
        })
        .await?;
    sim.laser_pass(secs(3), 1.0);
    let spraying = wait_for(&handle, pace, "auto-start", secs(30), |s| {
        s.state == UnitState::Spraying
    })
    .await?;
    if let Some(p) = &spraying.session {
        say(&format!(
            "auto-start: spraying {} ms after the laser stopped; watch the skin curve fall",
            p.start
                .laser_to_spray_ms
                .map_or("?".into(), |d| format!("{d:.1}"))
        ));
    }
    let record = session_end(&mut events, pace, secs(180)).await?;
    say(&format!(
        "session {} ended: {} after {:.1} s; skin peak {} min {}, time to target {}",
        record.start.id,
        record.outcome,
        record.duration().as_secs_f64(),
        record
            .peak_skin_c
            .map_or("n/a".into(), |v| format!("{v:.1} °C")),
        record
            .min_skin_c
            .map_or("n/a".into(), |v| format!("{v:.1} °C")),
        record
            .time_to_target_ms
            .map_or("n/a".into(), |v| format!("{:.1} s", v as f64 / 1000.0)),
    ));
    handle.command(Command::Disarm).await?;
    sim_sleep(pace, secs(3)).await;

    pace.set_speed(speeds.fast);
    wait_for(&handle, pace, "ready", secs(600), |s| s.ready).await?;
    pace.set_speed(speeds.story);
    say("a second session, and the nozzle blocks");
    handle
        .command(Command::StartSession {
            protocol: "nd_yag".into(),
            options: StartOptions::default(),
        })
        .await?;
    sim_sleep(pace, secs(3)).await;
    sim.inject(Fault::NozzleBlocked);
    let fault = wait_for(&handle, pace, "the over-pressure fault", secs(10), |s| {
        s.state == UnitState::Fault
    })
    .await?;
    let keys: Vec<String> = fault.alarms.iter().map(|a| a.kind.key()).collect();
    say(&format!("FAULT: outputs safe, alarms {keys:?}"));
    sim_sleep(pace, secs(4)).await;

    say("technician clears the nozzle; the operator acknowledges");
    sim.clear(Fault::NozzleBlocked);
    sim_sleep(pace, secs(2)).await;
    handle.command(Command::Acknowledge { key: None }).await?;
    sim_sleep(pace, secs(3)).await;
    pace.set_speed(speeds.fast);
    let back = wait_for(&handle, pace, "ready again", secs(600), |s| s.ready).await?;
    pace.set_speed(speeds.story);
    say(&format!(
        "ready again at {:.0} s; sessions so far: {}. Demo finished; the unit keeps running \
         in real time.",
        back.at.as_secs_f64(),
        back.counters.sessions
    ));
    Ok(())
}
