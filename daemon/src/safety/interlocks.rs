//! Interlock evaluation: every interlock cause (docs/REQUIREMENTS.md §4.8), judged from
//! raw inputs, the safety layer's own view of the sensors ([`SensorHealth`], [`FlowWatch`]) and
//! the outputs actually driven — never from the controller's intentions or its sensor tracking.

use super::config::SafetyConfig;
use super::sensor_health::{FlowWatch, SensorHealth};
use super::skin_estimate::SpotEstimate;
use crate::limits::secs;
use crate::model::alarm::AlarmKind;
use crate::model::alarm_text::AlarmText;
use crate::model::sensing::SensorSample;
use coldspray_hal::Sensor;
use std::time::Duration;

/// What the interlocks look at in one step.
#[derive(Debug, Clone, Copy)]
pub struct InterlockInputs {
    /// Now.
    pub now: Duration,
    /// E-stop input (logical: pressed).
    pub estop: bool,
    /// Float switch (logical: water low).
    pub water_low: bool,
    /// The pump has been driven on continuously since.
    pub pump_on_since: Option<Duration>,
    /// The valve has been driven open continuously since.
    pub valve_open_since: Option<Duration>,
    /// A patient session is running (max spray time and skin floor apply).
    pub in_session: bool,
    /// Skin floor of the running session, °C.
    pub skin_floor_c: f64,
}

/// A leak is judged only while pulses keep coming: the last one at most this old. A dying
/// pump's last pulses (the line empties in ~0.1 s) must not read as a leak.
const LEAK_FLOW_RECENT: Duration = Duration::from_millis(150);

/// Low pressure with flow must last this long to be a leak (longer than a dying pump's
/// pressure and pulses overlap).
const LEAK_PERSIST: Duration = Duration::from_millis(400);

/// Interlock state that spans steps: the safety layer's view of the sensors and the flow
/// pulses, and the dry-run and pressure timers.
#[derive(Debug, Clone)]
pub struct Interlocks {
    cfg: SafetyConfig,
    sensors: SensorHealth,
    flow: FlowWatch,
    /// The skin-floor interlock's own estimate of the treated spot.
    spot: SpotEstimate,
    /// Valve-open, pump-on time without a flow pulse.
    dry_for: Duration,
    over_pressure_since: Option<Duration>,
    leak_since: Option<Duration>,
    last_now: Option<Duration>,
    pulses_seen: u64,
}

impl Interlocks {
    /// Interlocks with these limits, watching the `fitted` sensors from `now`.
    pub fn new(cfg: SafetyConfig, fitted: &[Sensor], now: Duration) -> Self {
        Self {
            spot: SpotEstimate::new(cfg.skin_sensor()),
            cfg,
            sensors: SensorHealth::new(fitted, now),
            flow: FlowWatch::default(),
            dry_for: Duration::ZERO,
            over_pressure_since: None,
            leak_since: None,
            last_now: None,
            pulses_seen: 0,
        }
    }

    /// The limits.
    pub fn config(&self) -> &SafetyConfig {
        &self.cfg
    }

    /// One sensor sample (calibrated, as the controller gets it) for the safety layer's view.
    pub fn on_sample(&mut self, sample: &SensorSample) {
        self.sensors.update(sample);
        if sample.sensor == Sensor::Skin {
            // Only a reading the safety layer took as valid moves the spot estimate.
            let track = self.sensors.track(Sensor::Skin);
            if let (Some(v), Some(at)) = (track.last_valid, track.last_valid_at) {
                if at == sample.at {
                    self.spot.observe(at, v);
                }
            }
        }
    }

    /// One flow-meter pulse.
    pub fn on_flow_pulse(&mut self, at: Duration) {
        self.flow.pulse(at);
    }

    /// Restarts staleness timing for every sensor (after a latched fault cleared).
    pub fn restart_staleness(&mut self, now: Duration) {
        self.sensors.restart(now);
    }

    /// Every interlock alarm kind this unit can raise, for clearing conditions that went away.
    pub fn kinds(&self) -> Vec<AlarmKind> {
        let fitted: Vec<_> = self.sensors.fitted_sensors().collect();
        AlarmKind::every(&fitted)
            .into_iter()
            .filter(|k| k.is_interlock())
            .collect()
    }

    /// Every interlock condition present now, with its values for the operator message.
    pub fn evaluate(&mut self, x: &InterlockInputs) -> Vec<AlarmText> {
        let mut found = Vec::new();
        let dt = self
            .last_now
            .map(|t| x.now.saturating_sub(t))
            .unwrap_or_default();
        self.last_now = Some(x.now);
        let cfg = &self.cfg;
        let stale_after = secs(cfg.stale_after_s);

        if x.estop {
            found.push(AlarmText::Estop);
        }
        if x.water_low {
            found.push(AlarmText::WaterLow);
        }

        let sensors = &self.sensors;
        for sensor in sensors.fitted_sensors() {
            let track = sensors.track(sensor);
            let age = sensors.age(sensor, x.now);
            if track.implausible_run >= cfg.implausible_count.max(1) {
                found.push(AlarmText::SensorImplausible {
                    sensor,
                    reading: track.last_problem.clone(),
                });
            } else if age > stale_after {
                found.push(AlarmText::SensorStale {
                    sensor,
                    for_s: age.as_secs_f64(),
                    problem: track.last_problem.clone(),
                });
            } else if cfg.stuck_after_s > 0.0
                && sensors.unchanged_for(sensor, x.now) >= secs(cfg.stuck_after_s)
            {
                found.push(AlarmText::SensorStuck {
                    sensor,
                    value: track.last_valid.unwrap_or(f64::NAN),
                    for_s: sensors.unchanged_for(sensor, x.now).as_secs_f64(),
                });
            }
        }

        if let Some(h) = sensors.fresh(Sensor::Heatsink, x.now, stale_after) {
            if h > cfg.heatsink_max_c {
                found.push(AlarmText::HeatsinkOverTemp {
                    heatsink_c: h,
                    limit_c: cfg.heatsink_max_c,
                });
            }
        }

        // Dry run: pump driven, valve open, no flow pulse, accumulated over open time.
        let pulses = self.flow.total_pulses();
        let new_pulse = pulses != self.pulses_seen;
        self.pulses_seen = pulses;
        let pumping_open = x.pump_on_since.is_some() && x.valve_open_since.is_some();
        if !pumping_open || new_pulse {
            self.dry_for = Duration::ZERO;
        } else {
            self.dry_for += dt;
        }
        if self.dry_for >= secs(cfg.dry_run_s) {
            found.push(AlarmText::DryRun {
                no_flow_s: self.dry_for.as_secs_f64(),
            });
        }

        let pressure = self.sensors.fresh(Sensor::Pressure, x.now, stale_after);
        if let Some(p) = pressure {
            let over = p > cfg.absolute_max_pressure_bar
                || (x.valve_open_since.is_some() && p > cfg.over_pressure_bar);
            if over {
                let since = *self.over_pressure_since.get_or_insert(x.now);
                if x.now.saturating_sub(since) >= secs(cfg.over_pressure_s)
                    || p > cfg.absolute_max_pressure_bar
                {
                    found.push(AlarmText::OverPressure { pressure_bar: p });
                }
            } else {
                self.over_pressure_since = None;
            }
            // Leak: pumping into an open valve, water flowing, but no pressure.
            let open_long_enough =
                x.valve_open_since
                    .zip(x.pump_on_since)
                    .is_some_and(|(v, pmp)| {
                        x.now.saturating_sub(v.max(pmp)) >= secs(cfg.under_pressure_s)
                    });
            let flowing = self
                .flow
                .last_pulse()
                .is_some_and(|t| x.now.saturating_sub(t) <= LEAK_FLOW_RECENT);
            if open_long_enough && flowing && p < cfg.under_pressure_bar {
                let since = *self.leak_since.get_or_insert(x.now);
                if x.now.saturating_sub(since) >= LEAK_PERSIST {
                    found.push(AlarmText::UnderPressure { pressure_bar: p });
                }
            } else {
                self.leak_since = None;
            }
        }

        if x.in_session {
            if let Some(since) = x.pump_on_since {
                let spraying = x.now.saturating_sub(since);
                // Strictly longer than the cap: a protocol may use all of it.
                if spraying > secs(cfg.max_spray_s) {
                    found.push(AlarmText::MaxSprayTime {
                        spray_s: spraying.as_secs_f64(),
                    });
                }
            }
            // The spot as the safety layer estimates it from the reading: the sensor reads
            // warm near the floor (field of view, filter lag; skin_estimate.rs). The reading
            // itself below the floor trips too (on an ideal sensor the two are one). The alarm
            // reports the estimate it judged and the reading it came from.
            let reading = self.sensors.fresh(Sensor::Skin, x.now, stale_after);
            if let Some(reading) = reading {
                let skin = self.spot.spot(reading);
                if reading < x.skin_floor_c || skin < x.skin_floor_c - cfg.skin_floor_tolerance_c {
                    found.push(AlarmText::SkinBelowFloor {
                        skin_c: skin,
                        floor_c: x.skin_floor_c,
                        reading_c: Some(reading),
                    });
                }
            }
        }
        found
    }

    /// Resets the timers (after the outputs were forced safe).
    pub fn reset_timers(&mut self) {
        self.dry_for = Duration::ZERO;
        self.over_pressure_since = None;
        self.leak_since = None;
    }
}
