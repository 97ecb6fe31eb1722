//! The reservoir chiller thermostat: setpoint with hysteresis, minimum on/off times, the
//! anti-freeze cut-out, and two effectiveness checks that turn a dead chiller into a fault
//! instead of a unit that silently never gets cold.

use super::settings::ThermostatConfig;
use crate::limits::secs;
use std::time::Duration;

/// The reservoir is "regulating" (accumulated-error check) from when it first reaches the
/// band until it rises more than this above the setpoint (a refill, a long spray); otherwise
/// it is "approaching" (gain check), °C. Klipper's `verify_heater` hysteresis.
const REGULATION_ZONE_C: f64 = 3.0;

/// What the thermostat wants this step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ThermostatOutput {
    /// Chiller relay.
    pub chiller: bool,
    /// Heatsink fan.
    pub fan: bool,
    /// The anti-freeze cut-out is holding the chiller off.
    pub freeze_cutout: bool,
    /// A chiller-effectiveness fault found this step, with its detail.
    pub ineffective: Option<&'static str>,
}

/// The thermostat.
#[derive(Debug, Clone)]
pub struct Thermostat {
    cfg: ThermostatConfig,
    setpoint_c: f64,
    on: bool,
    /// When the relay last changed (`None` = never switched since start: no minimum applies).
    changed_at: Option<Duration>,
    fan_until: Option<Duration>,
    freeze_cutout: bool,
    /// Approach check: the temperature to reach and by when.
    goal: Option<(f64, Duration)>,
    /// Regulation check: accumulated error, °C·s.
    error_acc: f64,
    /// Hot-side check for the current on-cycle: heatsink at switch-on and the deadline.
    hot_side: Option<(f64, Duration)>,
    /// The reservoir has reached the band since it was last far above it: the accumulated
    /// error check applies; before that, the approach (gain per period) check does.
    regulating: bool,
    last_update: Option<Duration>,
}

impl Thermostat {
    /// A thermostat with the chiller off.
    pub fn new(cfg: ThermostatConfig) -> Self {
        Self {
            setpoint_c: cfg.setpoint_c,
            cfg,
            on: false,
            changed_at: None,
            fan_until: None,
            freeze_cutout: false,
            goal: None,
            error_acc: 0.0,
            hot_side: None,
            regulating: false,
            last_update: None,
        }
    }

    /// The current setpoint, °C.
    pub fn setpoint(&self) -> f64 {
        self.setpoint_c
    }

    /// Changes the setpoint (the caller validated the range).
    pub fn set_setpoint(&mut self, celsius: f64) {
        self.setpoint_c = celsius;
        self.goal = None;
        self.error_acc = 0.0;
    }

    /// The configuration.
    pub fn config(&self) -> &ThermostatConfig {
        &self.cfg
    }

    /// Whether the reservoir is cold enough to be ready; `was_ready` gives the hysteresis
    /// between becoming and staying ready.
    pub fn cold_enough(&self, reservoir_c: f64, was_ready: bool) -> bool {
        let band = if was_ready {
            self.cfg.unready_band_c
        } else {
            self.cfg.ready_band_c
        };
        reservoir_c <= self.setpoint_c + band
    }

    fn switch(&mut self, on: bool, now: Duration, heatsink_c: Option<f64>) {
        if self.on == on {
            return;
        }
        self.on = on;
        self.changed_at = Some(now);
        self.goal = None;
        if on {
            self.hot_side = heatsink_c.map(|h| (h, now + secs(self.cfg.hot_side_check_s)));
        } else {
            self.hot_side = None;
            self.fan_until = Some(now + secs(self.cfg.fan_run_on_s));
        }
    }

    /// Forces the chiller off at once (fault, maintenance, shutdown): safety beats the minimum
    /// on time. The minimum off time still applies before it may restart.
    pub fn force_off(&mut self, now: Duration) {
        self.switch(false, now, None);
        self.error_acc = 0.0;
    }

    /// One thermostat step. `enabled` is false when the unit must not cool (fault,
    /// maintenance, starting); readings are `None` when stale.
    pub fn update(
        &mut self,
        now: Duration,
        enabled: bool,
        reservoir_c: Option<f64>,
        heatsink_c: Option<f64>,
    ) -> ThermostatOutput {
        let dt = self
            .last_update
            .map(|t| now.saturating_sub(t).as_secs_f64())
            .unwrap_or(0.0);
        self.last_update = Some(now);
        let mut ineffective = None;

        match (enabled, reservoir_c) {
            (true, Some(t)) => {
                // Anti-freeze cut-out overrides the minimum on time.
                if t < self.cfg.freeze_cutout_c {
                    self.freeze_cutout = true;
                } else if t > self.cfg.freeze_release_c {
                    self.freeze_cutout = false;
                }
                let held = self
                    .changed_at
                    .map(|at| now.saturating_sub(at).as_secs_f64())
                    .unwrap_or(f64::INFINITY);
                let want_on = if self.freeze_cutout {
                    false
                } else if t >= self.setpoint_c + self.cfg.hysteresis_c / 2.0 {
                    true
                } else if t <= self.setpoint_c - self.cfg.hysteresis_c / 2.0 {
                    false
                } else {
                    self.on
                };
                if self.freeze_cutout {
                    self.switch(false, now, heatsink_c);
                } else if want_on && !self.on && held >= self.cfg.min_off_s {
                    self.switch(true, now, heatsink_c);
                } else if !want_on && self.on && held >= self.cfg.min_on_s {
                    self.switch(false, now, heatsink_c);
                }
                if self.on {
                    ineffective = self.check_effective(now, dt, t, heatsink_c);
                }
            }
            _ => self.force_off(now),
        }

        let fan = self.on || self.fan_until.is_some_and(|until| now < until);
        ThermostatOutput {
            chiller: self.on,
            fan,
            freeze_cutout: self.freeze_cutout,
            ineffective,
        }
    }

    fn check_effective(
        &mut self,
        now: Duration,
        dt: f64,
        reservoir_c: f64,
        heatsink_c: Option<f64>,
    ) -> Option<&'static str> {
        // Hot side: a working chiller pumps heat into its heatsink.
        if let (Some((start, deadline)), Some(h)) = (self.hot_side, heatsink_c) {
            if h >= start + self.cfg.hot_side_rise_c {
                self.hot_side = None;
            } else if now >= deadline {
                self.hot_side = None;
                return Some("heatsink did not warm with the chiller on");
            }
        }
        let band_top = self.setpoint_c + self.cfg.hysteresis_c / 2.0;
        // Klipper's split: approach until the band is first reached, then regulate. A TEC
        // closes the last degrees slowly (its capacity falls as the water cools while the
        // room's gain grows), so judging those degrees by accumulated error would fault a
        // healthy unit; the approach check judges them by progress instead.
        if reservoir_c <= band_top {
            self.regulating = true;
        } else if reservoir_c > self.setpoint_c + REGULATION_ZONE_C {
            self.regulating = false;
        }
        if !self.regulating {
            // Approaching: must gain check_gain_c every check_period_s.
            self.error_acc = 0.0;
            match self.goal {
                Some((goal_c, deadline)) => {
                    if reservoir_c <= goal_c {
                        self.goal = Some((
                            reservoir_c - self.cfg.check_gain_c,
                            now + secs(self.cfg.check_period_s),
                        ));
                    } else if now >= deadline {
                        self.goal = None;
                        return Some("reservoir not cooling while the chiller runs");
                    }
                }
                None => {
                    self.goal = Some((
                        reservoir_c - self.cfg.check_gain_c,
                        now + secs(self.cfg.check_period_s),
                    ));
                }
            }
        } else {
            // Regulating: error above the band accumulates; reaching the setpoint clears it.
            self.goal = None;
            if reservoir_c <= self.setpoint_c {
                self.error_acc = 0.0;
            } else {
                self.error_acc += (reservoir_c - band_top).max(0.0) * dt;
                if self.error_acc > self.cfg.check_max_error {
                    self.error_acc = 0.0;
                    return Some("reservoir held above the setpoint with the chiller on");
                }
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    fn quick() -> ThermostatConfig {
        ThermostatConfig {
            min_on_s: 10.0,
            min_off_s: 20.0,
            ..ThermostatConfig::default()
        }
    }

    #[test]
    fn switches_with_hysteresis_and_respects_minimum_times() {
        let mut t = Thermostat::new(quick());
        assert!(t.update(at(0.0), true, Some(10.0), Some(25.0)).chiller);
        // Below the band before min_on: stays on.
        assert!(t.update(at(5.0), true, Some(3.0), Some(30.0)).chiller);
        let out = t.update(at(10.0), true, Some(3.0), Some(30.0));
        assert!(!out.chiller && out.fan, "fan runs on after the chiller");
        // Warm again, but min_off not over.
        assert!(!t.update(at(15.0), true, Some(6.0), Some(30.0)).chiller);
        assert!(t.update(at(30.0), true, Some(6.0), Some(30.0)).chiller);
        // Inside the band: keeps its state.
        assert!(t.update(at(45.0), true, Some(4.2), Some(31.0)).chiller);
        // Fan stops after the run-on.
        t.update(at(60.0), true, Some(3.0), Some(31.0));
        assert!(!t.update(at(121.0), true, Some(4.0), Some(25.0)).fan);
    }

    #[test]
    fn freeze_cutout_overrides_minimum_on_time() {
        let mut t = Thermostat::new(quick());
        t.update(at(0.0), true, Some(10.0), Some(25.0));
        let out = t.update(at(1.0), true, Some(0.8), Some(26.0));
        assert!(!out.chiller && out.freeze_cutout);
        // Stays cut out until above the release temperature.
        let out = t.update(at(100.0), true, Some(1.5), Some(26.0));
        assert!(out.freeze_cutout);
        assert!(
            !t.update(at(101.0), true, Some(2.5), Some(26.0))
                .freeze_cutout
        );
    }

    #[test]
    fn disabled_forces_off_at_once() {
        let mut t = Thermostat::new(quick());
        assert!(t.update(at(0.0), true, Some(10.0), Some(25.0)).chiller);
        assert!(!t.update(at(0.5), false, Some(10.0), Some(25.0)).chiller);
        assert!(!t.update(at(1.0), true, None, Some(25.0)).chiller);
    }

    #[test]
    fn a_reservoir_that_does_not_cool_is_reported() {
        let mut t = Thermostat::new(quick());
        let mut found = None;
        for i in 0..400 {
            let out = t.update(
                at(f64::from(i)),
                true,
                Some(20.0),
                Some(25.0 + f64::from(i) * 0.1),
            );
            if out.ineffective.is_some() {
                found = Some(i);
                break;
            }
        }
        assert_eq!(found, Some(180));
    }

    #[test]
    fn a_cooling_reservoir_is_not_reported() {
        let mut t = Thermostat::new(quick());
        for i in 0..1200 {
            // 0.6 °C per minute, the sim chiller's pull-down rate order of magnitude.
            let temp = (20.0 - f64::from(i) * 0.01).max(3.6);
            let out = t.update(
                at(f64::from(i)),
                true,
                Some(temp),
                Some(25.0 + f64::from(i.min(60))),
            );
            assert_eq!(out.ineffective, None, "at {i} s");
        }
    }

    #[test]
    fn a_tec_closing_the_last_degrees_slowly_is_judged_by_progress() {
        // A TEC's pull-down from 7.5 °C into the band: ~0.15 °C a minute, slowing to
        // ~0.1 near the band (docs/TWIN.md). Accumulated error would pass 600 °C·s on the way.
        let mut t = Thermostat::new(quick());
        let mut temp: f64 = 7.5;
        let mut i = 0;
        while temp > 4.4 {
            let hot = 30.0 + f64::from(i.min(60)) * 0.1;
            let out = t.update(at(f64::from(i)), true, Some(temp), Some(hot));
            assert_eq!(out.ineffective, None, "at {i} s, {temp:.2} °C");
            temp -= 0.0017 + 0.0005 * (temp - 4.5);
            i += 1;
        }
        // In the band once: from now on, a reservoir held above it is reported.
        let mut found = None;
        for j in 0..2000 {
            let out = t.update(at(f64::from(i + j)), true, Some(6.0), Some(36.0));
            if out.ineffective.is_some() {
                found = Some(j);
                break;
            }
        }
        assert!(found.is_some_and(|j| (350..=500).contains(&j)), "{found:?}");
    }

    #[test]
    fn a_cold_hot_side_is_reported() {
        let mut t = Thermostat::new(quick());
        let mut found = None;
        for i in 0..100 {
            let out = t.update(at(f64::from(i)), true, Some(4.0 + 5.0), Some(25.0));
            if let Some(why) = out.ineffective {
                found = Some((i, why));
                break;
            }
        }
        assert_eq!(
            found,
            Some((60, "heatsink did not warm with the chiller on"))
        );
    }
}
