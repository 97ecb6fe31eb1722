//! The controller's view of the sensors and the flow meter: the last plausible reading of each
//! sensor while it is fresh (for the thermostat, sessions, self-test and the snapshot), and the
//! flow rate. Judging sensor faults is the safety layer's job, on its own view
//! ([`crate::safety::sensor_health`]).

use crate::model::sensing::SensorSample;
use coldspray_hal::signal::FLOW_PULSES_PER_LITRE;
use coldspray_hal::Sensor;
use std::collections::VecDeque;
use std::time::Duration;

/// The last plausible reading of each fitted sensor, and when it came.
#[derive(Debug, Clone, Default)]
pub struct Readings {
    last: [Option<(f64, Duration)>; 5],
    fitted: [bool; 5],
}

impl Readings {
    /// Readings of the `fitted` sensors, none yet.
    pub fn new(fitted: &[Sensor]) -> Self {
        let mut readings = Self::default();
        for s in fitted {
            readings.fitted[s.index()] = true;
        }
        readings
    }

    /// The fitted sensors.
    pub fn fitted_sensors(&self) -> impl Iterator<Item = Sensor> + '_ {
        Sensor::ALL.into_iter().filter(|s| self.fitted[s.index()])
    }

    /// Takes one sample: a finite, plausible value becomes the sensor's reading; an error or
    /// an implausible value leaves the last reading to age.
    pub fn update(&mut self, sample: &SensorSample) {
        if let Ok(v) = sample.value {
            if v.is_finite() && sample.sensor.plausible_range().contains(&v) {
                self.last[sample.sensor.index()] = Some((v, sample.at));
            }
        }
    }

    /// The last plausible value if it is fresh (at most `stale_after` old).
    pub fn fresh(&self, sensor: Sensor, now: Duration, stale_after: Duration) -> Option<f64> {
        self.last[sensor.index()]
            .filter(|(_, at)| now.saturating_sub(*at) <= stale_after)
            .map(|(v, _)| v)
    }
}

/// Flow rate from flow-meter pulse timestamps, over a sliding window.
#[derive(Debug, Clone)]
pub struct FlowMeter {
    pulses: VecDeque<Duration>,
    window: Duration,
    total_pulses: u64,
}

impl Default for FlowMeter {
    fn default() -> Self {
        Self {
            pulses: VecDeque::new(),
            window: Duration::from_secs(1),
            total_pulses: 0,
        }
    }
}

impl FlowMeter {
    /// Records one pulse.
    pub fn pulse(&mut self, at: Duration) {
        self.pulses.push_back(at);
        self.total_pulses += 1;
    }

    /// Drops pulses older than the window.
    pub fn expire(&mut self, now: Duration) {
        while let Some(first) = self.pulses.front() {
            if now.saturating_sub(*first) > self.window {
                self.pulses.pop_front();
            } else {
                break;
            }
        }
    }

    /// Flow over the window, L/min.
    pub fn litres_per_minute(&self) -> f64 {
        let per_window = self.pulses.len() as f64 / FLOW_PULSES_PER_LITRE;
        per_window * 60.0 / self.window.as_secs_f64()
    }

    /// Pulses counted since start.
    pub fn total_pulses(&self) -> u64 {
        self.total_pulses
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use coldspray_hal::SensorError;

    #[test]
    fn only_plausible_values_refresh_a_reading() {
        let mut r = Readings::new(&Sensor::ALL);
        let at = |ms| Duration::from_millis(ms);
        for (ms, value) in [
            (100, Ok(5.0)),
            (200, Ok(150.0)),
            (300, Err(SensorError::NoResponse)),
        ] {
            r.update(&SensorSample {
                sensor: Sensor::Reservoir,
                at: at(ms),
                value,
            });
        }
        let stale_after = Duration::from_secs(2);
        assert_eq!(r.fresh(Sensor::Reservoir, at(2100), stale_after), Some(5.0));
        assert_eq!(r.fresh(Sensor::Reservoir, at(2200), stale_after), None);
    }

    #[test]
    fn flow_meter_converts_pulses_to_litres_per_minute() {
        let mut f = FlowMeter::default();
        // 0.6 L/min = 58.8 pulses per second.
        for i in 0..59u64 {
            f.pulse(Duration::from_millis(1000 + i * 17));
        }
        f.expire(Duration::from_millis(2000));
        let lpm = f.litres_per_minute();
        assert!((lpm - 0.602).abs() < 0.01, "{lpm}");
        f.expire(Duration::from_millis(5000));
        assert_eq!(f.litres_per_minute(), 0.0);
    }
}
