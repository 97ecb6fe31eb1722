//! The simulated unit: a physics twin of the reference hardware.
//!
//! `SimUnit::new(SimConfig)`, `board()`, `clock()`, `advance(dt)`, `inject/clear/clear_all`,
//! `laser_pass`, `set_estop`, `set_trigger`, `set_ambient`, `refill`, `truth()`.
//!
//! The twin integrates physics, it does not play a script:
//! * [`thermal`]: 1.5 L reservoir with room heat gain, a TEC chiller whose capacity falls as
//!   its hot side warms, the hot-side heatsink and fan, and the line to the nozzle;
//! * [`hydraulics`]: positive-displacement pump with bypass, flow meter, NC valve, nozzle
//!   with check valve, and the leak/blockage/dry-run faults;
//! * [`skin`]: the Pennes bioheat equation by 1-D finite volumes in the top 3 mm of skin,
//!   laser heating by modality, mist cooling (public: validated on its own);
//! * [`chiller`]: the ideal legacy chiller and thermoelectric modules from datasheet figures;
//! * `mist`, `line`, `ir`: spray heat transfer with an energy balance on the water and the
//!   evaporating film; the line's plug flow; what the MLX90614 sees (realistic twin);
//! * [`sensors`]: the chips, their seeded noise, resolution, identities and failure values.
//!
//! Nominal figures (22 °C room, defaults; asserted by `hal/tests/sim_physics.rs`):
//! cold start 22 → 4 °C with chiller and fan on in about 24 simulated minutes, heatsink
//! ≤ ~54 °C meanwhile (fan dead: past 70 °C within ~2 minutes); spraying at 100 % duty
//! 0.2 L/min at 2.4 bar (1 % duty: 0.1 L/min at 1.5 bar), so 1.5 L lasts ~7 min of spraying;
//! dead-head 3.5 bar; leak < 0.3 bar; resting skin surface 32.4 °C; a 2 s pass at fluence
//! 1.0 peaks the surface at ~52 °C; 4 °C mist at full flow pulls it below 26 °C in ~1 s and
//! below 10 °C in ~7 s.
//!
//! Concurrency: one twin behind a mutex shared by every clone and by the board's ports.
//! Input edges are collected under the lock and delivered after it is released, in time
//! order (a second, delivery-order lock keeps two callers' batches from interleaving). An
//! [`EdgeSink`](crate::port::EdgeSink) must therefore not call back into
//! [`SimUnit::advance`], [`SimUnit::inject`], [`SimUnit::laser_pass`] or the other
//! edge-producing methods; reading levels, sensors or [`SimUnit::truth`] from it is fine.

pub mod chiller;
mod hydraulics;
mod ir;
mod line;
mod mist;
mod ports;
mod sensors;
pub mod skin;
mod thermal;
mod twin;

pub use chiller::ChillerKind;

use crate::clock::{Clock, ManualClock};
use crate::port::Board;
use crate::reading::SkinSensorView;
use crate::signal::Sensor;
use serde::{Deserialize, Serialize};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use twin::{duration_to_ns, Twin};

/// Starting conditions and build options of the twin.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SimConfig {
    /// Simulated seconds per wall second for a real-time driver (the daemon's sim thread;
    /// `[sim] speed`, 0.1–1000). The twin itself moves only in [`SimUnit::advance`].
    pub speed: f64,
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
    /// Which physics: the first twin's (`legacy`, default: the figures the tests were tuned
    /// on) or the realistic one (docs/TWIN.md).
    pub model: TwinModel,
    /// The chiller; unset: the model's own (legacy: `ideal`, realistic: `tec`).
    pub chiller: Option<ChillerKind>,
    /// Realistic: treated spot, cm².
    pub spot_cm2: f64,
    /// Realistic: nozzle to skin, mm.
    pub nozzle_mm: f64,
    /// Realistic: 95 % settling time of the skin sensor's filter, ms.
    pub ir_settle_ms: f64,
    /// Realistic: skin sensor to skin, mm.
    pub ir_distance_mm: f64,
    /// Where the laser's energy lands.
    pub modality: Modality,
}

/// Which physics the twin runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum TwinModel {
    /// The first twin: ideal skin sensor, fixed mist coefficient, lumped efficient chiller,
    /// first-order line, no perfusion.
    #[default]
    Legacy,
    /// MLX90614-like sensor (lag, field of view, emissivity), spray heat transfer with an
    /// energy balance on the water, TEC chiller from datasheet figures, plug-flow line,
    /// Pennes perfusion, evaporation of the water film.
    Realistic,
}

/// Where a treatment's energy lands in the skin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Modality {
    /// Surface-weighted (picosecond, fractional CO2): 1/e depth 0.2 mm.
    #[default]
    Surface,
    /// Nd:YAG 1064 nm: 1/e depth 1.2 mm (optical penetration of dermis at 1064 nm, ~1–3 mm:
    /// Anderson & Parrish, J. Invest. Dermatol. 77 (1981) 13).
    Deep,
    /// Focused ultrasound and RF microneedling: a layer centred 2 mm deep, σ 0.5 mm (HIFU
    /// transducers focus at 1.5, 3.0 and 4.5 mm; RF needles reach 0.5–3.5 mm).
    Subdermal,
}

impl Modality {
    /// The absorption profile.
    pub fn absorption(self) -> skin::Absorption {
        match self {
            Self::Surface => skin::Absorption::Exponential { depth_m: 0.2e-3 },
            Self::Deep => skin::Absorption::Exponential { depth_m: 1.2e-3 },
            Self::Subdermal => skin::Absorption::Gaussian {
                centre_m: 2.0e-3,
                width_m: 0.5e-3,
            },
        }
    }
}

/// The twin's energy books, J (enthalpies relative to 0 °C). Over any interval,
/// Δstored = chiller work + from room + laser + body − water out − skin to mist − evaporation.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct EnergyLedger {
    /// Heat held now by the reservoir, tank, heatsink, line and the treated skin patch.
    pub stored_j: f64,
    /// Electrical work of the chiller.
    pub chiller_work_j: f64,
    /// Heat from the room (reservoir walls, heatsink, line, skin surface).
    pub from_room_j: f64,
    /// Laser energy absorbed by the patch.
    pub laser_j: f64,
    /// Heat from the body (core below the patch and blood perfusion).
    pub body_j: f64,
    /// Enthalpy of the water that left through the nozzle.
    pub water_out_j: f64,
    /// Heat the sprayed water took from the skin (leaves with the run-off).
    pub skin_to_mist_j: f64,
    /// Latent heat of the film that evaporated from the skin.
    pub evaporation_j: f64,
}

impl EnergyLedger {
    /// What crossed the boundary, net into the twin.
    pub fn net_in_j(&self) -> f64 {
        self.chiller_work_j + self.from_room_j + self.laser_j + self.body_j
            - self.water_out_j
            - self.skin_to_mist_j
            - self.evaporation_j
    }
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            speed: 1.0,
            ambient_c: 22.0,
            initial_reservoir_c: 22.0,
            water_litres: 1.5,
            skin_sensor: true,
            seed: 1,
            model: TwinModel::Legacy,
            chiller: None,
            spot_cm2: 50.0,
            nozzle_mm: 50.0,
            ir_settle_ms: 100.0,
            ir_distance_mm: 50.0,
            modality: Modality::Surface,
        }
    }
}

impl SimConfig {
    /// The realistic twin with its defaults.
    pub fn realistic() -> Self {
        Self {
            model: TwinModel::Realistic,
            ..Self::default()
        }
    }

    /// How this twin's skin sensor sees the spot: legacy, the ideal sensor
    /// ([`SkinSensorView::IDEAL`]); realistic, the MLX90614 model's field of view over
    /// `spot_cm2` from `ir_distance_mm` and its `ir_settle_ms` filter (docs/TWIN.md, "Skin
    /// sensor").
    pub fn skin_sensor_view(&self) -> SkinSensorView {
        match self.model {
            TwinModel::Legacy => SkinSensorView::IDEAL,
            TwinModel::Realistic => {
                let setup = ir::IrSetup::of(self);
                SkinSensorView {
                    spot_fill: setup.fill(),
                    settle_s: setup.settle_s,
                }
            }
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
    /// Another part answers at the sensor's address (a wrong chip fitted, a swapped board):
    /// it reads plausibly but identifies itself as something else.
    SensorWrongChip(Sensor),
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
    /// The outputs' GPIO chip is gone (driver unbound, expander dead): every output write
    /// fails and the lines keep the level they had.
    OutputsLost,
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
    /// What the skin sensor's chip computes before its noise (legacy: the surface), °C.
    pub skin_seen_c: f64,
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

/// What every clone and every port of one twin share.
pub(crate) struct Shared {
    twin: Mutex<Twin>,
    /// Held while a batch of edges is produced and delivered, so batches never interleave.
    delivery: Mutex<()>,
    clock: ManualClock,
}

fn lock_ignoring_poison<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic in another holder leaves plain numbers behind, never a broken invariant worth
    // refusing to simulate on; tests that panicked report themselves.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Shared {
    pub(crate) fn lock(&self) -> MutexGuard<'_, Twin> {
        lock_ignoring_poison(&self.twin)
    }

    fn now_ns(&self) -> u64 {
        duration_to_ns(self.clock.now())
    }

    /// Runs `f` on the twin at the current time, then delivers the edges it produced to the
    /// sink with the twin unlocked.
    fn with_edges<R>(&self, f: impl FnOnce(&mut Twin, u64) -> R) -> R {
        let _order = lock_ignoring_poison(&self.delivery);
        let (result, edges, sink) = {
            let mut twin = self.lock();
            let now = self.now_ns();
            let result = f(&mut twin, now);
            let edges = std::mem::take(&mut twin.pending);
            (result, edges, twin.sink.clone())
        };
        if let Some(sink) = sink {
            for edge in edges {
                sink(edge);
            }
        }
        result
    }
}

/// The simulated unit. Cheap to clone; clones share one twin.
#[derive(Clone)]
pub struct SimUnit {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for SimUnit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimUnit")
            .field("now", &self.shared.clock.now())
            .finish_non_exhaustive()
    }
}

impl SimUnit {
    /// Builds a twin in its power-on state.
    pub fn new(config: SimConfig) -> Self {
        Self {
            shared: Arc::new(Shared {
                twin: Mutex::new(Twin::new(&config)),
                delivery: Mutex::new(()),
                clock: ManualClock::new(),
            }),
        }
    }
    /// The board whose ports act on this twin; its clock is [`SimUnit::clock`].
    pub fn board(&self) -> Board {
        Board {
            backend: "sim",
            outputs: Box::new(ports::SimOutputs(self.shared.clone())),
            inputs: Box::new(ports::SimInputs(self.shared.clone())),
            sensors: Box::new(ports::SimSensors(self.shared.clone())),
            clock: Arc::new(self.shared.clock.clone()),
        }
    }
    /// The twin's clock; it moves only in [`SimUnit::advance`].
    pub fn clock(&self) -> ManualClock {
        self.shared.clock.clone()
    }
    /// Integrates the physics over `dt` (internally in steps of at most 10 ms), moving the clock
    /// and delivering any input edges (laser, flow pulses, faults) to the subscribed sink.
    pub fn advance(&self, dt: Duration) {
        let clock = &self.shared.clock;
        self.shared.with_edges(|twin, now| {
            twin.advance(now, duration_to_ns(dt));
            clock.advance(dt);
        });
    }
    /// Injects a fault.
    pub fn inject(&self, fault: Fault) {
        self.shared.with_edges(|twin, now| twin.inject(fault, now));
    }
    /// Clears one fault.
    pub fn clear(&self, fault: Fault) {
        self.shared.with_edges(|twin, now| twin.clear(fault, now));
    }
    /// Clears every fault.
    pub fn clear_all(&self) {
        self.shared.with_edges(|twin, now| twin.clear_all(now));
    }
    /// Starts a laser pass now: emission for `duration`, heating the skin patch with `fluence`
    /// (relative, 1.0 = a typical fractional CO2 pass).
    ///
    /// The energy (fluence 1.0 = 4 J/cm² area-averaged) is spread evenly over the pass and
    /// absorbed exponentially with depth (0.2 mm). A pass started while one is running replaces
    /// it (emission continues, no new rising edge).
    pub fn laser_pass(&self, duration: Duration, fluence: f64) {
        self.shared
            .with_edges(|twin, now| twin.laser_pass(duration, fluence, now));
    }
    /// Presses or releases the E-stop (same as injecting/clearing [`Fault::Estop`]).
    pub fn set_estop(&self, pressed: bool) {
        if pressed {
            self.inject(Fault::Estop);
        } else {
            self.clear(Fault::Estop);
        }
    }
    /// Presses or releases the trigger (foot pedal).
    pub fn set_trigger(&self, pressed: bool) {
        self.shared
            .with_edges(|twin, now| twin.set_trigger(pressed, now));
    }
    /// Changes the room temperature.
    pub fn set_ambient(&self, celsius: f64) {
        self.shared.lock().set_ambient(celsius);
    }
    /// Fills the reservoir with `litres` of water at `celsius` (a water change).
    ///
    /// The old water is drained first: afterwards the tank holds exactly `litres` at
    /// `celsius` (never below 0 °C).
    pub fn refill(&self, litres: f64, celsius: f64) {
        self.shared
            .with_edges(|twin, now| twin.refill(litres, celsius, now));
    }
    /// Puts the handpiece in its holster (a spray goes to the drip cup: a purge of the warm
    /// line to waste) or takes it out (a spray lands on the skin).
    pub fn set_holstered(&self, holstered: bool) {
        self.shared.lock().set_holstered(holstered);
    }
    /// Changes where the laser's energy lands (takes effect for the next pass).
    pub fn set_modality(&self, modality: Modality) {
        self.shared.lock().set_modality(modality);
    }
    /// The energy books (realistic twin: the legacy line keeps none).
    pub fn energy(&self) -> EnergyLedger {
        self.shared.lock().energy()
    }
    /// The skin patch's cell temperatures, top first, °C (cells of 0.1 mm).
    pub fn skin_profile(&self) -> Vec<f64> {
        self.shared.lock().skin_profile()
    }
    /// The true physical state.
    pub fn truth(&self) -> Truth {
        let twin = self.shared.lock();
        twin.truth(self.shared.clock.now())
    }
}
