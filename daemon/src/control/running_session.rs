//! A running session: the valve pattern, the closed loop on skin temperature, and the
//! quality indicators it will be remembered by.

use crate::model::sensing::spot_from_reading;
use crate::model::session::{Outcome, SessionRecord, SessionStart};
use crate::protocol::{Goal, Pattern, Protocol};
use std::time::Duration;

/// Skin temperature above which heat keeps doing damage after the laser, °C.
pub const DAMAGE_THRESHOLD_C: f64 = 40.0;

/// How far ahead the floor guard extrapolates the skin's fall: one sensor period plus the time
/// mist already in flight keeps cooling after the valve closes.
const FLOOR_LOOKAHEAD_S: f64 = 0.5;

/// Once paused at the floor, the mist resumes only this much above the pause threshold, °C.
const FLOOR_RESUME_C: f64 = 1.0;

/// Time constant of the mean skin temperature a *prepare* session holds in its band, s. A
/// strong mist moves the surface of a small spot by several kelvin within one pulse (skin's
/// effusivity is low; docs/TWIN.md), far more than a band; the tissue under it, and the
/// dressing, care about the mean. The floor guard never uses it.
const PREPARE_MEAN_TAU_S: f64 = 2.0;

/// How the floor guard judges the skin.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FloorGuard {
    /// Pause this far above the floor, °C.
    pub margin_c: f64,
    /// Share of the sensor's signal from the treated spot (1.0: the reading is the spot).
    pub sensor_fill: f64,
}

impl FloorGuard {
    /// The estimated spot temperature for a reading (see [`spot_from_reading`]).
    pub fn spot_estimate(&self, reading_c: f64) -> f64 {
        spot_from_reading(reading_c, self.sensor_fill)
    }
}

/// What the session wants this step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionDrive {
    /// Pump on.
    pub pump: bool,
    /// Valve open.
    pub valve: bool,
    /// The session ends now, with this outcome.
    pub end: Option<Outcome>,
}

/// What a running session's expected end rests on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EndBasis {
    /// The spray cap (`spray_s`): no skin target, or the target will not be reached before.
    #[default]
    Cap,
    /// The skin is at the target (in the band) and the hold time is counting down: exact
    /// unless the skin leaves it.
    Hold,
    /// An estimate: the skin's current fall rate to the target, plus the hold time.
    Estimate,
}

impl EndBasis {
    /// The name on the API (`cap`, `hold`, `estimate`).
    pub fn name(self) -> &'static str {
        match self {
            EndBasis::Cap => "cap",
            EndBasis::Hold => "hold",
            EndBasis::Estimate => "estimate",
        }
    }
}

/// The running session.
#[derive(Debug, Clone)]
pub struct ActiveSession {
    /// Opening record.
    pub start: SessionStart,
    /// The protocol with the session's overrides applied.
    pub protocol: Protocol,
    /// Hottest skin seen.
    pub peak_skin_c: Option<f64>,
    /// Coldest skin seen.
    pub min_skin_c: Option<f64>,
    /// Spray start → target.
    pub time_to_target: Option<Duration>,
    /// Valve-open time.
    pub spray_time: Duration,
    /// Prepare: in the band since. Protect: at or below the target since.
    pub in_band_since: Option<Duration>,
    floor: FloorGuard,
    last_update: Duration,
    /// Previous distinct skin reading, for the fall rate.
    prev_skin: Option<(Duration, f64)>,
    /// Skin fall rate, °C/s (negative while cooling).
    skin_rate: f64,
    /// The floor guard is holding the valve shut.
    floor_hold: bool,
    /// Mean skin reading (time constant [`PREPARE_MEAN_TAU_S`]), °C.
    mean_skin: Option<f64>,
}

impl ActiveSession {
    /// Starts tracking a session.
    pub fn new(start: SessionStart, protocol: Protocol, floor: FloorGuard) -> Self {
        let last_update = start.started_at;
        Self {
            start,
            protocol,
            peak_skin_c: None,
            min_skin_c: None,
            time_to_target: None,
            spray_time: Duration::ZERO,
            in_band_since: None,
            floor,
            last_update,
            prev_skin: None,
            skin_rate: 0.0,
            floor_hold: false,
            mean_skin: None,
        }
    }

    /// Time since the session started.
    pub fn elapsed(&self, now: Duration) -> Duration {
        now.saturating_sub(self.start.started_at)
    }

    /// Seconds of spraying left at most.
    pub fn remaining_s(&self, now: Duration) -> f64 {
        (self.protocol.spray_s - self.elapsed(now).as_secs_f64()).max(0.0)
    }

    /// When the session is expected to end, in seconds from `now`, and on what that rests
    /// (see [`EndBasis`]). Never later than the spray cap.
    pub fn expected_end(&self, now: Duration) -> (f64, EndBasis) {
        let cap = self.remaining_s(now);
        let Some(target) = self.protocol.skin_target_c else {
            return (cap, EndBasis::Cap);
        };
        let hold = self.protocol.hold_s;
        if let Some(since) = self.in_band_since {
            let left = (hold - now.saturating_sub(since).as_secs_f64()).max(0.0);
            return if left < cap {
                (left, EndBasis::Hold)
            } else {
                (cap, EndBasis::Cap)
            };
        }
        // Not at the target yet: extrapolate the skin's fall, then add the hold.
        let skin = self.prev_skin.map(|(_, c)| c);
        let reach = skin.and_then(|c| {
            let above = match self.protocol.goal {
                Goal::Protect => c - target,
                Goal::Prepare => c - (target + self.protocol.band_c),
            };
            (self.skin_rate < 0.0 && above > 0.0).then(|| above / -self.skin_rate)
        });
        match reach {
            Some(t) if t + hold < cap => (t + hold, EndBasis::Estimate),
            _ => (cap, EndBasis::Cap),
        }
    }

    fn pattern_open(&self, elapsed: Duration) -> bool {
        match self.protocol.pattern {
            Pattern::Continuous => true,
            Pattern::Pulsed { on_ms, off_ms } => {
                let period = u128::from(on_ms) + u128::from(off_ms);
                period == 0 || elapsed.as_millis() % period < u128::from(on_ms)
            }
        }
    }

    /// One step. `skin_c` is the fresh skin reading, if the unit has one; `valve_was_open`
    /// is what the gate actually drove last step.
    pub fn update(
        &mut self,
        now: Duration,
        skin_c: Option<f64>,
        valve_was_open: bool,
    ) -> SessionDrive {
        let dt = now.saturating_sub(self.last_update);
        self.last_update = now;
        if valve_was_open {
            self.spray_time += dt;
        }
        let elapsed = self.elapsed(now);
        if let Some(s) = skin_c {
            match self.prev_skin {
                Some((t, prev)) if s != prev => {
                    let dt_s = now.saturating_sub(t).as_secs_f64();
                    if dt_s > 0.0 {
                        self.skin_rate = (s - prev) / dt_s;
                    }
                    self.prev_skin = Some((now, s));
                }
                None => self.prev_skin = Some((now, s)),
                _ => {}
            }
            let a = 1.0 - (-dt.as_secs_f64() / PREPARE_MEAN_TAU_S).exp();
            self.mean_skin = Some(self.mean_skin.map_or(s, |m| m + a * (s - m)));
            self.peak_skin_c = Some(self.peak_skin_c.map_or(s, |p| p.max(s)));
            self.min_skin_c = Some(self.min_skin_c.map_or(s, |m| m.min(s)));
        }
        let mut valve = self.pattern_open(elapsed);
        let mut end = None;

        if let (Some(skin), Some(target)) = (skin_c, self.protocol.skin_target_c) {
            if skin <= target && self.time_to_target.is_none() {
                self.time_to_target = Some(elapsed);
            }
            match self.protocol.goal {
                Goal::Protect => {
                    // Cool hard to the target, then keep it there for hold_s so heat rising
                    // from the dermis cannot re-warm the surface the moment the mist stops.
                    if skin <= target {
                        let since = *self.in_band_since.get_or_insert(now);
                        if now.saturating_sub(since).as_secs_f64() >= self.protocol.hold_s {
                            end = Some(Outcome::TargetReached);
                        }
                    } else {
                        self.in_band_since = None;
                    }
                    if skin <= target - self.protocol.band_c {
                        valve = false;
                    }
                }
                Goal::Prepare => {
                    let band = self.protocol.band_c;
                    let skin = self.mean_skin.unwrap_or(skin);
                    if (skin - target).abs() <= band {
                        let since = *self.in_band_since.get_or_insert(now);
                        if now.saturating_sub(since).as_secs_f64() >= self.protocol.hold_s {
                            end = Some(Outcome::ReadyForDressing);
                        }
                    } else {
                        self.in_band_since = None;
                    }
                    // Hold the band: only cool while the mean is above the target.
                    if skin <= target {
                        valve = false;
                    }
                }
            }
        }
        // Never drive the skin to the floor: pause the mist short of it, target or not, looking
        // ahead along the current fall (mist cools fast), and resume only with some room. The
        // spot is judged by its estimate: the sensor's field of view takes in warmer skin.
        if let Some(reading) = skin_c {
            let skin = self.floor.spot_estimate(reading);
            let pause_at = self.protocol.skin_floor_c + self.floor.margin_c;
            // The spot behind the reading the current fall leads to.
            let predicted = self
                .floor
                .spot_estimate(reading + self.skin_rate.min(0.0) * FLOOR_LOOKAHEAD_S);
            if predicted <= pause_at {
                self.floor_hold = true;
            } else if skin > pause_at + FLOOR_RESUME_C {
                self.floor_hold = false;
            }
            if self.floor_hold {
                valve = false;
            }
        }
        if end.is_none() && elapsed.as_secs_f64() >= self.protocol.spray_s {
            end = Some(Outcome::DurationElapsed);
        }
        if end.is_some() {
            valve = false;
        }
        SessionDrive {
            pump: end.is_none(),
            valve,
            end,
        }
    }

    /// The closing record.
    pub fn finish(
        &self,
        now: Duration,
        unix_ms: i64,
        outcome: Outcome,
        above_40: Option<Duration>,
        ended_by_alarm: Option<String>,
    ) -> SessionRecord {
        SessionRecord {
            start: self.start.clone(),
            ended_at: now,
            ended_unix_ms: unix_ms,
            outcome,
            peak_skin_c: self.peak_skin_c,
            min_skin_c: self.min_skin_c,
            time_to_target_ms: self.time_to_target.map(millis),
            above_40_ms: above_40.map(millis),
            spray_ms: millis(self.spray_time),
            ended_by_alarm,
        }
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::session::StartCause;

    fn session(name: &str) -> ActiveSession {
        let protocol = Protocol::factory_defaults()
            .into_iter()
            .find(|p| p.name == name)
            .unwrap();
        let start = SessionStart {
            id: 1,
            protocol: protocol.name.clone(),
            goal: protocol.goal,
            cause: StartCause::Command,
            started_at: Duration::from_secs(10),
            started_unix_ms: 0,
            laser_to_spray_ms: None,
            late: false,
            skin_target_c: protocol.skin_target_c,
            skin_floor_c: protocol.skin_floor_c,
        };
        ActiveSession::new(
            start,
            protocol,
            FloorGuard {
                margin_c: 1.5,
                sensor_fill: 1.0,
            },
        )
    }

    fn at(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    #[test]
    fn protect_stops_at_the_target_and_records_the_time() {
        let mut s = session("co2_fractional");
        let d = s.update(at(10.0), Some(48.0), false);
        assert!(d.pump && d.valve && d.end.is_none());
        let d = s.update(at(25.0), Some(25.9), true);
        assert!(d.end.is_none() && d.valve, "at the target: hold it there");
        let d = s.update(at(30.0), Some(24.5), true);
        assert!(
            !d.valve && d.pump,
            "a band below the target the mist pauses"
        );
        let d = s.update(at(35.0), Some(25.5), false);
        assert_eq!(d.end, Some(Outcome::TargetReached));
        assert!(!d.pump && !d.valve);
        let r = s.finish(at(35.0), 0, Outcome::TargetReached, None, None);
        assert_eq!(r.time_to_target_ms, Some(15_000));
        assert_eq!(r.spray_ms, 20_000);
        assert_eq!(r.peak_skin_c, Some(48.0));
    }

    #[test]
    fn the_expected_end_is_the_hold_or_the_fall_not_only_the_cap() {
        let mut s = session("co2_fractional"); // target 26, hold 5 s, cap 120 s
        s.update(at(10.0), Some(48.0), false);
        assert_eq!(
            s.expected_end(at(10.0)),
            (120.0, EndBasis::Cap),
            "no fall yet"
        );
        s.update(at(11.0), Some(46.0), true);
        let (left, basis) = s.expected_end(at(11.0));
        assert_eq!(basis, EndBasis::Estimate);
        // 20 °C above the target at 2 °C/s, then the hold.
        assert!((left - (10.0 + s.protocol.hold_s)).abs() < 1e-9, "{left}");
        s.update(at(20.0), Some(25.5), true);
        let (left, basis) = s.expected_end(at(22.0));
        assert_eq!(basis, EndBasis::Hold);
        assert!((left - (s.protocol.hold_s - 2.0)).abs() < 1e-9, "{left}");
        s.protocol.skin_target_c = None;
        assert_eq!(s.expected_end(at(22.0)).1, EndBasis::Cap);
    }

    #[test]
    fn pulsed_pattern_opens_and_closes_the_valve() {
        let mut s = session("hifu"); // 500 ms on / 500 ms off
        assert!(s.update(at(10.2), Some(35.0), false).valve);
        assert!(!s.update(at(10.7), Some(35.0), true).valve);
        assert!(s.update(at(11.1), Some(35.0), false).valve);
    }

    #[test]
    fn prepare_holds_the_band_then_reports_ready_for_dressing() {
        let mut s = session("hifu"); // target 28 ± 2, hold 20 s
        assert!(s.update(at(10.0), Some(34.0), false).pump);
        let d = s.update(at(20.0), Some(29.5), true);
        assert!(d.end.is_none());
        let d = s.update(at(30.0), Some(27.5), true);
        assert!(!d.valve, "at or below the target the mist pauses");
        assert!(d.pump, "the pump keeps running so the mist resumes at once");
        assert_eq!(
            s.update(at(40.0), Some(28.5), false).end,
            Some(Outcome::ReadyForDressing)
        );
    }

    #[test]
    fn mist_pauses_short_of_the_floor_and_time_runs_out() {
        let mut s = session("co2_fractional");
        s.protocol.skin_target_c = None; // no target: time-limited
        let d = s.update(at(20.0), Some(11.0), true);
        assert!(!d.valve && d.pump);
        assert_eq!(
            s.update(at(130.0), Some(20.0), false).end,
            Some(Outcome::DurationElapsed)
        );
    }
}
