//! Demo mode: a scripted clinic sequence on the simulated unit — cold start, ready, a laser
//! pass, auto-start, closed-loop stop, a blocked nozzle, acknowledge, ready again — driven
//! through the same [`ControlHandle`] the D-Bus API uses.

use crate::api::{Command, Event, Snapshot, StartOptions};
use crate::handle::ControlHandle;
use crate::model::state::UnitState;
use coldspray_hal::sim::Fault;
use std::time::Duration;

/// Why the demo stopped early.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// The daemon is not running on the simulated unit.
    #[error("the demo needs the simulated unit")]
    NotSimulated,
    /// A step did not happen in time.
    #[error("timed out waiting for {0}")]
    Timeout(&'static str),
    /// A command was refused.
    #[error("{0}")]
    Refused(#[from] crate::api::CommandError),
    /// The daemon stopped.
    #[error("the daemon stopped")]
    Stopped,
}

async fn wait_for(
    handle: &ControlHandle,
    what: &'static str,
    timeout: Duration,
    pred: impl Fn(&Snapshot) -> bool,
) -> Result<Snapshot, DemoError> {
    let mut rx = handle.watch();
    let fut = async {
        loop {
            let snap = rx.borrow_and_update().clone();
            if pred(&snap) {
                return Ok((*snap).clone());
            }
            if rx.changed().await.is_err() {
                return Err(DemoError::Stopped);
            }
        }
    };
    tokio::time::timeout(timeout, fut)
        .await
        .map_err(|_| DemoError::Timeout(what))?
}

fn say(step: &str) {
    tracing::info!(target: "coldspray::demo", "{step}");
}

/// Plays the sequence once. `speed` is the simulation speed (wall timeouts scale with it).
pub async fn run(handle: ControlHandle, speed: f64) -> Result<(), DemoError> {
    let sim = handle.sim.clone().ok_or(DemoError::NotSimulated)?;
    // Simulated seconds as wall time, and as a timeout with slack for a loaded machine.
    let sim_time = |sim_s: f64| Duration::from_secs_f64(sim_s / speed.max(0.1));
    let wall = |sim_s: f64| sim_time(sim_s) + Duration::from_secs(5);
    let mut events = handle.events();

    say("cold start: self-test, then the chiller pulls the reservoir down");
    let ready = wait_for(&handle, "ready", wall(3600.0), |s| s.ready).await?;
    say(&format!(
        "ready after {:.0} s of simulated time (reservoir {:.1} °C)",
        ready.at.as_secs_f64(),
        ready
            .reading(coldspray_hal::Sensor::Reservoir)
            .unwrap_or(f64::NAN)
    ));

    say("operator arms auto-start with CO2 fractional; the laser fires a 3 s pass");
    handle
        .command(Command::Arm {
            protocol: "co2_fractional".into(),
        })
        .await?;
    sim.laser_pass(Duration::from_secs(3), 1.0);
    let spraying = wait_for(&handle, "auto-start", wall(30.0), |s| {
        s.state == UnitState::Spraying
    })
    .await?;
    if let Some(p) = &spraying.session {
        say(&format!(
            "auto-start: spraying {} ms after the laser stopped",
            p.start
                .laser_to_spray_ms
                .map_or("?".into(), |d| format!("{d:.1}"))
        ));
    }
    let record = loop {
        match tokio::time::timeout(wall(180.0), events.recv()).await {
            Ok(Ok(Event::SessionEnded(r))) => break r,
            Ok(Ok(_)) | Ok(Err(tokio::sync::broadcast::error::RecvError::Lagged(_))) => {}
            Ok(Err(_)) => return Err(DemoError::Stopped),
            Err(_) => return Err(DemoError::Timeout("the session to end")),
        }
    };
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

    wait_for(&handle, "ready", wall(600.0), |s| s.ready).await?;
    say("a second session, and the nozzle blocks");
    handle
        .command(Command::StartSession {
            protocol: "nd_yag".into(),
            options: StartOptions::default(),
        })
        .await?;
    tokio::time::sleep(sim_time(2.0)).await;
    sim.inject(Fault::NozzleBlocked);
    let fault = wait_for(&handle, "the over-pressure fault", wall(10.0), |s| {
        s.state == UnitState::Fault
    })
    .await?;
    let keys: Vec<String> = fault.alarms.iter().map(|a| a.kind.key()).collect();
    say(&format!("FAULT: outputs safe, alarms {keys:?}"));

    say("technician clears the nozzle; the operator acknowledges");
    sim.clear(Fault::NozzleBlocked);
    tokio::time::sleep(sim_time(1.0)).await;
    handle.command(Command::Acknowledge { key: None }).await?;
    let back = wait_for(&handle, "ready again", wall(600.0), |s| s.ready).await?;
    say(&format!(
        "ready again at {:.0} s; sessions so far: {}. Demo finished; the unit keeps running.",
        back.at.as_secs_f64(),
        back.counters.sessions
    ));
    Ok(())
}
