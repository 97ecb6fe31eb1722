//! The sensor thread: polls every fitted sensor on its own period and sends the readings to
//! the control loop. Sensor reads may block on a bus; a hung bus delays this thread only, and
//! the control loop sees the sensor go stale.

use crate::control::SensorSample;
use coldspray_hal::{ChipIdentity, Clock, Sensor, SensorError, SensorPort};
use std::sync::atomic::{AtomicBool, Ordering};
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
}

/// Starts the thread. `period` is in the board clock's time; `wall_scale` converts it to wall
/// time (the simulated unit can run faster than real time).
pub fn spawn(
    mut port: Box<dyn SensorPort>,
    clock: Arc<dyn Clock>,
    period: Duration,
    wall_scale: f64,
    out: UnboundedSender<SensorMessage>,
    identify: mpsc::Receiver<()>,
    stop: Arc<AtomicBool>,
) -> std::io::Result<JoinHandle<()>> {
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
                std::thread::sleep(wall_period);
            }
        })
}
