//! The sensor thread: polls every fitted sensor on its own period and sends the readings to
//! the control loop. Sensor reads may block on a bus; a hung bus delays this thread only, and
//! the control loop sees the sensor go stale.

use crate::model::sensing::SensorSample;
use coldspray_hal::{ChipIdentity, Clock, Sensor, SensorError, SensorPort};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::Duration;
use tokio::sync::mpsc::UnboundedSender;

/// What the sensor thread sends.
#[derive(Debug)]
pub enum SensorMessage {
    /// A reading.
    Sample(SensorSample),
    /// A chip identity (self-test).
    Identity(Sensor, Result<ChipIdentity, SensorError>),
    /// Every fitted sensor of this polling round has been read. The samples go out as they
    /// are read (a slow or hung read never holds the others back); a quiet control loop steps
    /// once on this rather than on each sample.
    RoundDone,
}

/// Everything the sensor thread works with.
pub struct SensorThread {
    /// The sensors.
    pub port: Box<dyn SensorPort>,
    /// The board clock readings are stamped with.
    pub clock: Arc<dyn Clock>,
    /// Polling period, in board-clock time.
    pub period: Duration,
    /// Board seconds per wall second at most (the simulated unit can run faster than real
    /// time, and the demo slows it down at times: readings follow the board clock).
    pub wall_scale: f64,
    /// Where readings go.
    pub out: UnboundedSender<SensorMessage>,
    /// Identify requests (self-test).
    pub identify: mpsc::Receiver<()>,
    /// Set to end the thread.
    pub stop: Arc<AtomicBool>,
    /// Board time of the last complete polling round (paces the simulated unit).
    pub progress: Arc<AtomicU64>,
}

/// Starts the thread.
pub fn spawn(t: SensorThread) -> std::io::Result<JoinHandle<()>> {
    let SensorThread {
        mut port,
        clock,
        period,
        wall_scale,
        out,
        identify,
        stop,
        progress,
    } = t;
    std::thread::Builder::new()
        .name("coldspray-sensors".into())
        .spawn(move || {
            let fitted = port.fitted();
            let wall_period = period.mul_f64(1.0 / wall_scale.max(1e-3));
            while !stop.load(Ordering::Relaxed) {
                if identify.try_recv().is_ok() {
                    for s in &fitted {
                        if out
                            .send(SensorMessage::Identity(*s, port.identify(*s)))
                            .is_err()
                        {
                            return;
                        }
                    }
                }
                let round_at = clock.now();
                for s in &fitted {
                    let value = port.read(*s);
                    let sample = SensorSample {
                        sensor: *s,
                        at: clock.now(),
                        value,
                    };
                    if out.send(SensorMessage::Sample(sample)).is_err() {
                        return;
                    }
                }
                if out.send(SensorMessage::RoundDone).is_err() {
                    return;
                }
                progress.store(super::nanos(clock.now()), Ordering::Relaxed);
                // One period of board time: on the hardware one sleep; on a simulated unit
                // slowed below its configured speed (the demo), as many sleeps as it takes.
                let next = round_at + period;
                loop {
                    std::thread::sleep(wall_period);
                    if clock.now() >= next || stop.load(Ordering::Relaxed) {
                        break;
                    }
                }
            }
        })
}
