//! The simulated unit: a physics twin of the reference hardware.
//!
//! API CONTRACT (implementation to be filled in by the sim work):
//! `SimUnit::new(SimConfig)`, `board()`, `clock()`, `advance(dt)`, `inject/clear/clear_all`,
//! `laser_pass`, `set_estop`, `set_trigger`, `set_ambient`, `refill`, `truth()`.

use crate::clock::ManualClock;
use crate::port::Board;
use crate::signal::Sensor;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Starting conditions and build options of the twin.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SimConfig {
    /// Room temperature, °C.
    pub ambient_c: f64,
    /// Reservoir temperature at power-on, °C (usually ambient).
    pub initial_reservoir_c: f64,
    /// Water in the reservoir at power-on, litres.
    pub water_litres: f64,
    /// Whether the skin IR sensor is fitted.
    pub skin_sensor: bool,
    /// Seed for sensor noise, so runs are reproducible.
    pub seed: u64,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            ambient_c: 22.0,
            initial_reservoir_c: 22.0,
            water_litres: 1.5,
            skin_sensor: true,
            seed: 1,
        }
    }
}

/// A fault that can be injected into the twin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "sensor")]
pub enum Fault {
    /// The sensor stops answering (NACK).
    SensorSilent(Sensor),
    /// The sensor keeps returning the value it had when the fault was injected.
    SensorStuck(Sensor),
    /// The sensor returns a physically impossible value.
    SensorOutOfRange(Sensor),
    /// The chiller draws power but moves no heat.
    ChillerDead,
    /// The pump does not turn when driven.
    PumpDead,
    /// The nozzle is blocked: no flow, pressure rises to dead-head.
    NozzleBlocked,
    /// A leak downstream of the pump: pressure drops, flow continues.
    Leak,
    /// The reservoir float reports low water (and the pump runs dry).
    WaterLow,
    /// The E-stop is pressed.
    Estop,
    /// The heatsink fan does not turn when driven.
    FanDead,
}

/// The true physical state of the twin, for tests and the live view (not sensor readings).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Truth {
    /// Time on the twin's clock.
    pub now: Duration,
    /// Reservoir water temperature, °C.
    pub reservoir_c: f64,
    /// Mist temperature at the nozzle, °C.
    pub mist_c: f64,
    /// Chiller hot-side heatsink, °C.
    pub heatsink_c: f64,
    /// Skin surface temperature, °C.
    pub skin_surface_c: f64,
    /// Hottest point in the skin model, °C.
    pub skin_peak_c: f64,
    /// Coldest point in the skin model, °C.
    pub skin_min_c: f64,
    /// Line pressure, bar.
    pub pressure_bar: f64,
    /// Flow through the meter, litres per minute.
    pub flow_l_min: f64,
    /// Water left in the reservoir, litres.
    pub water_litres: f64,
    /// Whether the laser is emitting.
    pub laser_on: bool,
    /// Output levels as the twin sees them, indexed by `Output::index()`.
    pub outputs: [bool; 7],
}

/// The simulated unit. Cheap to clone; clones share one twin.
#[derive(Clone)]
pub struct SimUnit {
    _clock: ManualClock,
}

impl SimUnit {
    /// Builds a twin in its power-on state.
    pub fn new(_config: SimConfig) -> Self {
        unimplemented!("sim twin")
    }
    /// The board whose ports act on this twin; its clock is [`SimUnit::clock`].
    pub fn board(&self) -> Board {
        unimplemented!("sim twin")
    }
    /// The twin's clock; it moves only in [`SimUnit::advance`].
    pub fn clock(&self) -> ManualClock {
        self._clock.clone()
    }
    /// Integrates the physics over `dt` (internally in steps of at most 10 ms), moving the clock
    /// and delivering any input edges (laser, flow pulses, faults) to the subscribed sink.
    pub fn advance(&self, _dt: Duration) {
        unimplemented!("sim twin")
    }
    /// Injects a fault.
    pub fn inject(&self, _fault: Fault) {}
    /// Clears one fault.
    pub fn clear(&self, _fault: Fault) {}
    /// Clears every fault.
    pub fn clear_all(&self) {}
    /// Starts a laser pass now: emission for `duration`, heating the skin patch with `fluence`
    /// (relative, 1.0 = a typical fractional CO2 pass).
    pub fn laser_pass(&self, _duration: Duration, _fluence: f64) {}
    /// Presses or releases the E-stop (same as injecting/clearing [`Fault::Estop`]).
    pub fn set_estop(&self, _pressed: bool) {}
    /// Presses or releases the trigger (foot pedal).
    pub fn set_trigger(&self, _pressed: bool) {}
    /// Changes the room temperature.
    pub fn set_ambient(&self, _celsius: f64) {}
    /// Fills the reservoir with `litres` of water at `celsius` (a water change).
    pub fn refill(&self, _litres: f64, _celsius: f64) {}
    /// The true physical state.
    pub fn truth(&self) -> Truth {
        unimplemented!("sim twin")
    }
}
