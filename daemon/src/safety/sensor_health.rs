//! The safety layer's own view of the raw samples: which sensors are fresh, implausible or
//! stuck, and when the last flow pulse came. It is fed the same samples and pulses as the
//! controller's view (`control/readings.rs`) but shares no code or state with it, so a
//! fault in the controller's tracking cannot blind the interlocks (ARCHITECTURE.md, "Safety
//! segregation").

use crate::model::sensing::SensorSample;
use coldspray_hal::Sensor;
use std::time::Duration;

/// Health of one sensor as judged from its readings.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SensorTrack {
    /// Last valid (plausible) value.
    pub last_valid: Option<f64>,
    /// When the last valid value arrived.
    pub last_valid_at: Option<Duration>,
    /// When the value last changed (for stuck detection).
    pub last_change_at: Option<Duration>,
    /// Consecutive out-of-range readings.
    pub implausible_run: u32,
    /// The last error or implausible value, for alarm messages.
    pub last_problem: Option<String>,
}

/// The safety layer's view of every sensor: freshness, plausibility and whether a value is
/// frozen, judged from the samples alone.
#[derive(Debug, Clone, Default)]
pub struct SensorHealth {
    tracks: [SensorTrack; 5],
    fitted: [bool; 5],
    /// When tracking started (staleness of a sensor that never answered counts from here).
    since: Duration,
}

impl SensorHealth {
    /// Tracks `fitted` sensors from `now`.
    pub fn new(fitted: &[Sensor], now: Duration) -> Self {
        let mut f = [false; 5];
        for s in fitted {
            f[s.index()] = true;
        }
        Self {
            tracks: Default::default(),
            fitted: f,
            since: now,
        }
    }

    /// Whether a sensor is fitted on this unit.
    pub fn fitted(&self, sensor: Sensor) -> bool {
        self.fitted[sensor.index()]
    }

    /// The fitted sensors.
    pub fn fitted_sensors(&self) -> impl Iterator<Item = Sensor> + '_ {
        Sensor::ALL.into_iter().filter(|s| self.fitted(*s))
    }

    /// Takes one reading into account.
    pub fn update(&mut self, sample: &SensorSample) {
        let track = &mut self.tracks[sample.sensor.index()];
        match &sample.value {
            Ok(v) if v.is_finite() && sample.sensor.plausible_range().contains(v) => {
                if track.last_valid != Some(*v) {
                    track.last_change_at = Some(sample.at);
                }
                track.last_valid = Some(*v);
                track.last_valid_at = Some(sample.at);
                track.implausible_run = 0;
                track.last_problem = None;
            }
            Ok(v) => {
                track.implausible_run = track.implausible_run.saturating_add(1);
                track.last_problem = Some(format!("{v:.2} {}", sample.sensor.unit()));
            }
            Err(e) => {
                track.last_problem = Some(e.to_string());
            }
        }
    }

    /// The track of one sensor.
    pub fn track(&self, sensor: Sensor) -> &SensorTrack {
        &self.tracks[sensor.index()]
    }

    /// The last valid value if it is fresh (younger than `stale_after`).
    pub fn fresh(&self, sensor: Sensor, now: Duration, stale_after: Duration) -> Option<f64> {
        let t = self.track(sensor);
        match t.last_valid_at {
            Some(at) if now.saturating_sub(at) <= stale_after => t.last_valid,
            _ => None,
        }
    }

    /// How long the sensor has gone without a valid reading.
    pub fn age(&self, sensor: Sensor, now: Duration) -> Duration {
        now.saturating_sub(self.track(sensor).last_valid_at.unwrap_or(self.since))
    }

    /// How long the value has not changed at all (zero when it never read).
    pub fn unchanged_for(&self, sensor: Sensor, now: Duration) -> Duration {
        self.track(sensor)
            .last_change_at
            .map(|at| now.saturating_sub(at))
            .unwrap_or_default()
    }

    /// Restarts staleness timing for every sensor (after a latched fault cleared).
    pub fn restart(&mut self, now: Duration) {
        self.since = now;
    }
}

/// The flow pulses as the safety layer counts them (dry run, leak).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FlowWatch {
    last_pulse: Option<Duration>,
    total_pulses: u64,
}

impl FlowWatch {
    /// Records one pulse.
    pub fn pulse(&mut self, at: Duration) {
        self.last_pulse = Some(self.last_pulse.map_or(at, |p| p.max(at)));
        self.total_pulses += 1;
    }

    /// Time of the latest pulse.
    pub fn last_pulse(&self) -> Option<Duration> {
        self.last_pulse
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

    fn sample(sensor: Sensor, ms: u64, value: Result<f64, SensorError>) -> SensorSample {
        SensorSample {
            sensor,
            at: Duration::from_millis(ms),
            value,
        }
    }

    #[test]
    fn implausible_values_do_not_refresh_the_sensor() {
        let mut t = SensorHealth::new(&Sensor::ALL, Duration::ZERO);
        t.update(&sample(Sensor::Reservoir, 100, Ok(5.0)));
        t.update(&sample(Sensor::Reservoir, 200, Ok(150.0)));
        t.update(&sample(
            Sensor::Reservoir,
            300,
            Err(SensorError::NoResponse),
        ));
        let track = t.track(Sensor::Reservoir);
        assert_eq!(track.last_valid, Some(5.0));
        assert_eq!(track.implausible_run, 1);
        assert_eq!(
            t.age(Sensor::Reservoir, Duration::from_millis(2100)),
            Duration::from_secs(2)
        );
        assert_eq!(
            t.fresh(
                Sensor::Reservoir,
                Duration::from_millis(2200),
                Duration::from_secs(2)
            ),
            None
        );
    }

    #[test]
    fn unchanged_time_counts_from_the_last_change() {
        let mut t = SensorHealth::new(&Sensor::ALL, Duration::ZERO);
        t.update(&sample(Sensor::Mist, 0, Ok(5.0)));
        t.update(&sample(Sensor::Mist, 1000, Ok(5.0)));
        t.update(&sample(Sensor::Mist, 2000, Ok(5.1)));
        t.update(&sample(Sensor::Mist, 9000, Ok(5.1)));
        assert_eq!(
            t.unchanged_for(Sensor::Mist, Duration::from_secs(10)),
            Duration::from_secs(8)
        );
    }
}
