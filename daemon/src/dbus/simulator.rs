//! `org.coldspray.ColdSpray1.Simulator`: drives the simulated unit (laser passes, injected
//! faults, E-stop, pedal, room and water); served only when the daemon runs on the sim. Doc
//! comments here become the comments of the introspection XML.

use super::access::Access;
use super::error::Error;
use super::guard::{guarded_interface, Guard};
use super::validate as v;
use crate::handle::ControlHandle;
use coldspray_hal::sim::{Fault, SimUnit};
use std::time::Duration;

/// `org.coldspray.ColdSpray1.Simulator`: drives the simulated unit (served only on the sim).
pub struct Simulator {
    guard: Guard,
    sim: SimUnit,
}

impl Simulator {
    /// Serves the simulated unit `sim` for the daemon behind `h`, callers checked by `access`.
    pub fn new(h: ControlHandle, access: Access, sim: SimUnit) -> Simulator {
        Simulator {
            guard: Guard::new(h, access, "Simulator"),
            sim,
        }
    }
}

/// Fault kinds accepted by InjectFault and ClearFault.
pub const FAULT_KINDS: [&str; 12] = [
    "sensor_silent",
    "sensor_stuck",
    "sensor_out_of_range",
    "sensor_wrong_chip",
    "chiller_dead",
    "pump_dead",
    "nozzle_blocked",
    "leak",
    "water_low",
    "estop",
    "fan_dead",
    "outputs_lost",
];

/// Parses a fault kind and its sensor ("" for faults without one).
pub fn parse_fault(kind: &str, sensor: &str) -> Result<Fault, Error> {
    let needs_sensor = kind.starts_with("sensor_");
    let s = if needs_sensor {
        Some(v::sensor(sensor)?)
    } else if sensor.is_empty() {
        None
    } else {
        return Err(Error::InvalidArgument(format!(
            "fault `{kind}` takes no sensor (pass \"\")"
        )));
    };
    Ok(match (kind, s) {
        ("sensor_silent", Some(s)) => Fault::SensorSilent(s),
        ("sensor_stuck", Some(s)) => Fault::SensorStuck(s),
        ("sensor_out_of_range", Some(s)) => Fault::SensorOutOfRange(s),
        ("sensor_wrong_chip", Some(s)) => Fault::SensorWrongChip(s),
        ("chiller_dead", None) => Fault::ChillerDead,
        ("pump_dead", None) => Fault::PumpDead,
        ("nozzle_blocked", None) => Fault::NozzleBlocked,
        ("leak", None) => Fault::Leak,
        ("water_low", None) => Fault::WaterLow,
        ("estop", None) => Fault::Estop,
        ("fan_dead", None) => Fault::FanDead,
        ("outputs_lost", None) => Fault::OutputsLost,
        _ => {
            return Err(Error::InvalidArgument(format!(
                "unknown fault `{}` (one of {})",
                kind.chars().take(64).collect::<String>(),
                FAULT_KINDS.join(", ")
            )))
        }
    })
}

guarded_interface! {
    #[interface(name = "org.coldspray.ColdSpray1.Simulator")]
    impl Simulator {
        methods {
            /// LaserPass: a laser pass now: emission for 0.1..60 seconds, relative fluence 0..5
            /// (1.0 = a typical fractional CO2 pass). Errors: OutOfRange.
            async fn laser_pass(&self, hdr, conn, seconds: f64, fluence: f64) -> [()] {
                let s = v::range("seconds", seconds, v::LASER_S)?;
                let f = v::range("fluence", fluence, v::FLUENCE)?;
                self.sim.laser_pass(Duration::from_secs_f64(s), f);
                Ok(())
            }

            /// InjectFault: inject a fault. kind: sensor_silent, sensor_stuck, sensor_out_of_range,
            /// sensor_wrong_chip (these need sensor), chiller_dead, pump_dead, nozzle_blocked,
            /// leak, water_low, estop, fan_dead, outputs_lost (sensor ""). Errors: InvalidArgument.
            async fn inject_fault(&self, hdr, conn, kind: String, sensor: String) -> [()] {
                parse_fault(&kind, &sensor).map(|f| self.sim.inject(f))
            }

            /// ClearFault: clear one injected fault (arguments as InjectFault).
            async fn clear_fault(&self, hdr, conn, kind: String, sensor: String) -> [()] {
                parse_fault(&kind, &sensor).map(|f| self.sim.clear(f))
            }

            /// ClearAllFaults: clear every injected fault.
            async fn clear_all_faults(&self, hdr, conn) -> [()] {
                self.sim.clear_all();
                Ok(())
            }

            /// SetEstop: press (true) or release (false) the E-stop.
            async fn set_estop(&self, hdr, conn, pressed: bool) -> [()] {
                self.sim.set_estop(pressed);
                Ok(())
            }

            /// SetTrigger: press (true) or release (false) the foot pedal.
            async fn set_trigger(&self, hdr, conn, pressed: bool) -> [()] {
                self.sim.set_trigger(pressed);
                Ok(())
            }

            /// SetAmbient: room temperature, degrees C, -10..45. Errors: OutOfRange.
            async fn set_ambient(&self, hdr, conn, celsius: f64) -> [()] {
                v::range("celsius", celsius, v::AMBIENT_C).map(|c| self.sim.set_ambient(c))
            }

            /// Refill: fill the reservoir with litres (0.1..5) of water at celsius (0.5..40).
            /// Errors: OutOfRange.
            async fn refill(&self, hdr, conn, litres: f64, celsius: f64) -> [()] {
                let l = v::range("litres", litres, v::REFILL_L)?;
                let c = v::range("celsius", celsius, v::REFILL_C)?;
                self.sim.refill(l, c);
                Ok(())
            }
        }

    }
}
