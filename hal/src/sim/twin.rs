//! The twin's whole state and its integration step. Lives behind the [`super::SimUnit`]'s
//! mutex; everything here is plain single-threaded code.

use super::hydraulics::{HydraulicDrive, Hydraulics, FLOAT_LOW_LITRES, PICKUP_DRY_LITRES};
use super::ir::{IrScene, IrSensor, IrSetup};
use super::line::Line;
use super::mist::{h_legacy, Film, SprayGeometry};
use super::sensors::{chip, NoiseRng};
use super::skin::{Skin, SkinDrive, SkinParams};
use super::thermal::{Thermal, ThermalDrive};
use super::{EnergyLedger, Fault, Modality, SimConfig, Truth, TwinModel};
use crate::port::{EdgeSink, InputEdge};
use crate::reading::{ChipIdentity, SensorError};
use crate::signal::{Input, Output, Sensor, FLOW_PULSES_PER_LITRE};
use std::collections::HashSet;
use std::time::Duration;

/// Longest integration step, ns (10 ms).
pub(crate) const MAX_STEP_NS: u64 = 10_000_000;

/// Shortest laser pass, s (a zero-length pass still deposits its energy over 1 ms).
const MIN_LASER_S: f64 = 0.001;

/// Energy per area deposited by a pass of fluence 1.0, J/m² (4 J/cm² area-averaged);
/// calibrated so a 2 s pass lifts the resting 32.4 °C surface to ~52 °C (0.5 s: ~62 °C,
/// 5 s: ~46 °C, as more of the heat diffuses down during a longer pass).
const LASER_J_PER_M2: f64 = 40_000.0;

/// The parts only the realistic twin has.
struct Realism {
    spray: SprayGeometry,
    ir: IrSensor,
    /// Untreated skin around the spot: at rest under room air, so at its steady profile for
    /// the current room (re-settled when the room changes; its own transient, minutes long,
    /// is not integrated, which keeps the twin fast).
    around: Skin,
    film: Film,
}

/// The complete state of the simulated unit.
pub(crate) struct Twin {
    skin_fitted: bool,
    ambient_c: f64,
    water_l: f64,
    thermal: Thermal,
    hyd: Hydraulics,
    skin: Skin,
    outputs: [bool; 7],
    duty: u8,
    faults: HashSet<Fault>,
    trigger: bool,
    /// End of the current laser pass, ns on the clock.
    laser_until: Option<u64>,
    laser_w_m2: f64,
    /// Fractional position within the current flow-meter pulse period.
    flow_phase: f64,
    /// Whether the meter's magnet has ever passed (the hall output starts low).
    flow_started: bool,
    /// Last level reported per input (for the level inputs; flow pulses are counted).
    reported: [bool; 5],
    seqno: [u64; 5],
    pub(crate) sink: Option<EdgeSink>,
    pub(crate) pending: Vec<InputEdge>,
    rngs: [NoiseRng; 5],
    stuck: [Option<f64>; 5],
    realism: Option<Realism>,
    /// The handpiece is in its holster: a spray goes to the drip cup, not the skin.
    holstered: bool,
    ledger: EnergyLedger,
}

fn ns_to_duration(ns: u64) -> Duration {
    Duration::from_nanos(ns)
}

/// Converts a duration to whole nanoseconds, saturating.
pub(crate) fn duration_to_ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl Twin {
    pub(crate) fn new(cfg: &SimConfig) -> Self {
        let ambient = if cfg.ambient_c.is_finite() {
            cfg.ambient_c
        } else {
            22.0
        };
        let reservoir = if cfg.initial_reservoir_c.is_finite() {
            cfg.initial_reservoir_c
        } else {
            ambient
        };
        let water = if cfg.water_litres.is_finite() {
            cfg.water_litres.max(0.0)
        } else {
            0.0
        };
        let realistic = cfg.model == TwinModel::Realistic;
        let chiller = cfg.chiller.unwrap_or(if realistic {
            super::ChillerKind::Tec
        } else {
            super::ChillerKind::Ideal
        });
        let (params, line) = if realistic {
            (SkinParams::realistic(), Line::plug(ambient))
        } else {
            (SkinParams::legacy(), Line::legacy(ambient))
        };
        let mut skin = Skin::new(params.clone(), ambient);
        skin.set_absorption(cfg.modality.absorption());
        let realism = realistic.then(|| {
            let around = Skin::new(params, ambient);
            let ir = IrSetup::of(cfg);
            Realism {
                spray: SprayGeometry {
                    spot_m2: ir.spot_m2,
                    distance_m: cfg.nozzle_mm.clamp(5.0, 500.0) * 1e-3,
                },
                ir: IrSensor::new(ir, around.surface_c()),
                around,
                film: Film::default(),
            }
        });
        let mut twin = Self {
            skin_fitted: cfg.skin_sensor,
            ambient_c: ambient,
            water_l: water,
            thermal: Thermal::new(reservoir, ambient, chiller, line),
            hyd: Hydraulics::default(),
            skin,
            outputs: [false; 7],
            duty: 100,
            faults: HashSet::new(),
            trigger: false,
            laser_until: None,
            laser_w_m2: 0.0,
            flow_phase: 0.0,
            flow_started: false,
            reported: [false; 5],
            seqno: [0; 5],
            sink: None,
            pending: Vec::new(),
            rngs: Sensor::ALL.map(|s| NoiseRng::new(cfg.seed, s)),
            stuck: [None; 5],
            realism,
            holstered: false,
            ledger: EnergyLedger::default(),
        };
        for input in [
            Input::Estop,
            Input::Trigger,
            Input::LaserEmission,
            Input::WaterLow,
        ] {
            twin.reported[input.index()] = twin.level(input);
        }
        twin
    }

    /// The logical level of an input now.
    pub(crate) fn level(&self, input: Input) -> bool {
        match input {
            Input::Estop => self.faults.contains(&Fault::Estop),
            Input::Trigger => self.trigger,
            Input::LaserEmission => self.laser_until.is_some(),
            Input::WaterLow => {
                self.faults.contains(&Fault::WaterLow) || self.water_l < FLOAT_LOW_LITRES
            }
            // The hall output is high for the first half of each pulse period.
            Input::FlowPulse => self.flow_started && self.flow_phase < 0.5,
        }
    }

    fn push_edge(&mut self, input: Input, level: bool, at_ns: u64) {
        if self.sink.is_none() {
            // Nobody listens: like an unrequested GPIO line, no events and no sequence.
            return;
        }
        let i = input.index();
        self.seqno[i] += 1;
        self.pending.push(InputEdge {
            input,
            level,
            at: ns_to_duration(at_ns),
            seqno: self.seqno[i],
        });
    }

    /// Queues an edge for every level input whose level changed since it was last reported.
    fn report_level_changes(&mut self, at_ns: u64) {
        for input in [
            Input::Estop,
            Input::Trigger,
            Input::LaserEmission,
            Input::WaterLow,
        ] {
            let level = self.level(input);
            if level != self.reported[input.index()] {
                self.reported[input.index()] = level;
                self.push_edge(input, level, at_ns);
            }
        }
    }

    /// Drives one output; fails, leaving the line as it was, while `OutputsLost` is injected.
    pub(crate) fn set_output(&mut self, output: Output, on: bool) -> Result<(), &'static str> {
        if self.faults.contains(&Fault::OutputsLost) {
            return Err("GPIO chip gone (simulated OutputsLost)");
        }
        self.outputs[output.index()] = on;
        Ok(())
    }

    pub(crate) fn output(&self, output: Output) -> bool {
        self.outputs[output.index()]
    }

    pub(crate) fn set_duty(&mut self, percent: u8) {
        self.duty = percent;
    }

    pub(crate) fn inject(&mut self, fault: Fault, now_ns: u64) {
        if let Fault::SensorStuck(sensor) = fault {
            if !self.faults.contains(&fault) {
                // Freeze what the chip would have said at this moment.
                let held =
                    chip(sensor).reading(self.true_value(sensor), &mut self.rngs[sensor.index()]);
                self.stuck[sensor.index()] = Some(held);
            }
        }
        self.faults.insert(fault);
        self.report_level_changes(now_ns);
    }

    pub(crate) fn clear(&mut self, fault: Fault, now_ns: u64) {
        self.faults.remove(&fault);
        if let Fault::SensorStuck(sensor) = fault {
            self.stuck[sensor.index()] = None;
        }
        self.report_level_changes(now_ns);
    }

    pub(crate) fn clear_all(&mut self, now_ns: u64) {
        self.faults.clear();
        self.stuck = [None; 5];
        self.report_level_changes(now_ns);
    }

    pub(crate) fn set_trigger(&mut self, pressed: bool, now_ns: u64) {
        self.trigger = pressed;
        self.report_level_changes(now_ns);
    }

    pub(crate) fn set_ambient(&mut self, celsius: f64) {
        if celsius.is_finite() {
            self.ambient_c = celsius;
            if let Some(r) = self.realism.as_mut() {
                r.around.settle(celsius);
            }
        }
    }

    pub(crate) fn refill(&mut self, litres: f64, celsius: f64, now_ns: u64) {
        if litres.is_finite() {
            self.water_l = litres.max(0.0);
        }
        if celsius.is_finite() {
            self.thermal.reservoir_c = celsius.max(0.0);
        }
        self.report_level_changes(now_ns);
    }

    pub(crate) fn laser_pass(&mut self, duration: Duration, fluence: f64, now_ns: u64) {
        let seconds = duration.as_secs_f64().max(MIN_LASER_S);
        let fluence = if fluence.is_finite() {
            fluence.max(0.0)
        } else {
            0.0
        };
        self.laser_w_m2 = fluence * LASER_J_PER_M2 / seconds;
        self.laser_until = Some(now_ns.saturating_add((seconds * 1e9).round() as u64));
        self.report_level_changes(now_ns);
    }

    /// Integrates from `start_ns` over `dt_ns`, in steps of at most 10 ms that also end
    /// exactly where a laser pass ends.
    pub(crate) fn advance(&mut self, start_ns: u64, dt_ns: u64) {
        let end = start_ns.saturating_add(dt_ns);
        let mut t = start_ns;
        while t < end {
            let mut h = (end - t).min(MAX_STEP_NS);
            if let Some(until) = self.laser_until {
                if until > t {
                    h = h.min(until - t);
                }
            }
            self.step(t, h);
            t += h;
        }
    }

    fn step(&mut self, t_ns: u64, h_ns: u64) {
        let dt = h_ns as f64 * 1e-9;
        let end_ns = t_ns + h_ns;

        // Hydraulics and the flow meter.
        let hd = HydraulicDrive {
            pump_on: self.output(Output::Pump),
            duty: self.duty,
            valve_open: self.output(Output::SprayValve),
            pump_dead: self.faults.contains(&Fault::PumpDead),
            dry: self.faults.contains(&Fault::WaterLow) || self.water_l < PICKUP_DRY_LITRES,
            blocked: self.faults.contains(&Fault::NozzleBlocked),
            leak: self.faults.contains(&Fault::Leak),
        };
        let litres = self.hyd.step(dt, &hd).min(self.water_l);
        self.water_l -= litres;
        let p0 = self.flow_phase;
        let p1 = p0 + litres * FLOW_PULSES_PER_LITRE;
        let pulses = p1.floor() as u64;
        for k in 1..=pulses {
            let frac = (k as f64 - p0) / (p1 - p0);
            let at = t_ns + ((frac * h_ns as f64).round() as u64).clamp(1, h_ns);
            self.push_edge(Input::FlowPulse, true, at);
        }
        if pulses > 0 {
            self.flow_started = true;
        }
        self.flow_phase = p1 - p1.floor();

        // Reservoir, chiller, heatsink, line.
        let nozzle = self.hyd.now.nozzle_l_min;
        let td = ThermalDrive {
            chiller_on: self.output(Output::Chiller),
            chiller_works: !self.faults.contains(&Fault::ChillerDead),
            fan_turning: self.output(Output::ChillerFan) && !self.faults.contains(&Fault::FanDead),
            nozzle_flow_l_min: nozzle,
            ambient_c: self.ambient_c,
        };
        let flows = self.thermal.step(dt, self.water_l, litres, &td);
        self.ledger.chiller_work_j += flows.chiller_work;
        self.ledger.from_room_j += flows.from_room;
        self.ledger.water_out_j += flows.water_out;

        // Skin.
        let laser_on = self.laser_until.is_some_and(|u| t_ns < u);
        self.step_skin(dt, nozzle, laser_on);

        if self.laser_until.is_some_and(|u| u <= end_ns) {
            self.laser_until = None;
        }
        self.report_level_changes(end_ns);
    }

    /// The skin, the IR sensor's view of it and the energy the patch exchanged.
    fn step_skin(&mut self, dt: f64, nozzle_l_min: f64, laser_on: bool) {
        let spraying = nozzle_l_min > 0.0 && !self.holstered;
        let mist_c = self.thermal.mist_c();
        let mut d = SkinDrive {
            ambient_c: self.ambient_c,
            h_mist: 0.0,
            mist_c,
            laser_w_m2: if laser_on { self.laser_w_m2 } else { 0.0 },
            surface_sink_w_m2: 0.0,
        };
        let Some(r) = self.realism.as_mut() else {
            if spraying {
                d.h_mist = h_legacy(nozzle_l_min);
            }
            self.skin.step(dt, &d);
            return;
        };
        if spraying {
            d.h_mist = r.spray.h_effective(nozzle_l_min);
            r.film.wet();
        } else {
            d.surface_sink_w_m2 = r.film.evaporate(dt, self.skin.surface_c(), self.ambient_c);
        }
        let f = self.skin.step(dt, &d);
        let area = r.spray.spot_m2;
        let l = &mut self.ledger;
        l.from_room_j += area * f.air;
        l.laser_j += area * f.laser;
        l.body_j += area * (f.core + f.perfusion);
        l.skin_to_mist_j -= area * f.mist;
        l.evaporation_j -= area * f.sink;
        r.ir.step(
            dt,
            &IrScene {
                spot_c: self.skin.surface_c(),
                around_c: r.around.surface_c(),
                ambient_c: self.ambient_c,
                mist_c: spraying.then_some(mist_c),
                wet: r.film.kg_m2 > 0.0,
            },
        );
    }

    /// The whole twin's energy: what is stored now and what crossed its boundary so far.
    pub(crate) fn energy(&self) -> EnergyLedger {
        let area = self.realism.as_ref().map_or(0.0, |r| r.spray.spot_m2);
        EnergyLedger {
            stored_j: self.thermal.heat_j(self.water_l) + area * self.skin.heat_j_m2(),
            ..self.ledger
        }
    }

    /// The skin patch's cell temperatures, top first, °C.
    pub(crate) fn skin_profile(&self) -> Vec<f64> {
        self.skin.temperatures().to_vec()
    }

    /// Puts the handpiece in its holster (a spray goes to the drip cup) or takes it out.
    pub(crate) fn set_holstered(&mut self, holstered: bool) {
        self.holstered = holstered;
    }

    /// Changes where the laser's energy lands.
    pub(crate) fn set_modality(&mut self, m: Modality) {
        self.skin.set_absorption(m.absorption());
    }

    /// What the skin sensor's chip computes before its noise, °C.
    fn skin_seen_c(&self) -> f64 {
        self.realism
            .as_ref()
            .map_or(self.skin.surface_c(), |r| r.ir.object_c)
    }

    fn true_value(&self, sensor: Sensor) -> f64 {
        match sensor {
            Sensor::Reservoir => self.thermal.reservoir_c,
            Sensor::Mist => self.thermal.mist_c(),
            Sensor::Heatsink => self.thermal.heatsink_c,
            Sensor::Skin => self.skin_seen_c(),
            Sensor::Pressure => self.hyd.now.pressure_bar,
        }
    }

    pub(crate) fn fitted(&self) -> Vec<Sensor> {
        Sensor::ALL
            .into_iter()
            .filter(|s| *s != Sensor::Skin || self.skin_fitted)
            .collect()
    }

    fn check_answers(&self, sensor: Sensor) -> Result<(), SensorError> {
        if sensor == Sensor::Skin && !self.skin_fitted {
            return Err(SensorError::NotFitted);
        }
        if self.faults.contains(&Fault::SensorSilent(sensor)) {
            return Err(SensorError::NoResponse);
        }
        Ok(())
    }

    pub(crate) fn read(&mut self, sensor: Sensor) -> Result<f64, SensorError> {
        self.check_answers(sensor)?;
        if let Some(held) = self.stuck[sensor.index()] {
            return Ok(held);
        }
        let c = chip(sensor);
        if self.faults.contains(&Fault::SensorOutOfRange(sensor)) {
            return Ok(c.out_of_range);
        }
        Ok(c.reading(self.true_value(sensor), &mut self.rngs[sensor.index()]))
    }

    pub(crate) fn identify(&self, sensor: Sensor) -> Result<ChipIdentity, SensorError> {
        self.check_answers(sensor)?;
        let c = chip(sensor);
        if self.faults.contains(&Fault::SensorWrongChip(sensor)) {
            return Ok(ChipIdentity {
                sensor,
                part: "unknown part".to_string(),
                id: !c.id,
            });
        }
        Ok(ChipIdentity {
            sensor,
            part: c.part.to_string(),
            id: c.id,
        })
    }

    pub(crate) fn truth(&self, now: Duration) -> Truth {
        Truth {
            now,
            reservoir_c: self.thermal.reservoir_c,
            mist_c: self.thermal.mist_c(),
            heatsink_c: self.thermal.heatsink_c,
            skin_surface_c: self.skin.surface_c(),
            skin_seen_c: self.skin_seen_c(),
            skin_peak_c: self.skin.peak_c(),
            skin_min_c: self.skin.min_c(),
            pressure_bar: self.hyd.now.pressure_bar,
            flow_l_min: self.hyd.now.meter_l_min,
            water_litres: self.water_l,
            laser_on: self.laser_until.is_some(),
            outputs: self.outputs,
        }
    }
}
