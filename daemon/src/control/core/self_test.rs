//! The self-test: at start and on request the passive part (every fitted sensor identifies as
//! the expected part and reads plausibly); in maintenance the active part too (the pump
//! delivers flow, the chiller warms the heatsink).

use super::tasks::Task;
use super::Core;
use crate::api::{CommandError, Event};
use crate::limits::secs;
use crate::model::alarm::AlarmKind;
use crate::model::alarm_text::AlarmText;
use crate::model::state::UnitState;
use coldspray_hal::Sensor;
use std::time::Duration;

/// Pump run of the maintenance self-test's flow check.
const SELF_TEST_FLOW_S: f64 = 3.0;

/// Expected part per sensor, checked at self-test.
pub fn expected_part(sensor: Sensor) -> &'static str {
    match sensor {
        Sensor::Reservoir | Sensor::Mist => "TMP117",
        Sensor::Heatsink => "MCP9808",
        Sensor::Skin => "MLX90614",
        Sensor::Pressure => "ADS1115",
    }
}

/// Where a self-test is.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum SelfTestPhase {
    /// Waiting for every fitted sensor's identity and a plausible reading, until `deadline`.
    Identify { deadline: Duration },
    /// Pump and valve on until `until`; flow pulses must come.
    Flow {
        until: Duration,
        pulses_at_start: u64,
    },
    /// Chiller on until `until`; the heatsink must warm from `start_c`.
    HotSide { until: Duration, start_c: f64 },
}

/// A self-test in progress.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct SelfTest {
    /// Where it is.
    pub(super) phase: SelfTestPhase,
    /// Report lines so far.
    report: Vec<String>,
    /// Whether the active part (pump, chiller) runs after the passive one.
    active: bool,
}

impl SelfTest {
    /// A self-test waiting for identities until `deadline`.
    pub(super) fn new(deadline: Duration, active: bool) -> Self {
        Self {
            phase: SelfTestPhase::Identify { deadline },
            report: Vec::new(),
            active,
        }
    }
}

/// What one step of a self-test found.
enum Progress {
    /// Not done yet (the phase may have moved on).
    Running,
    /// Done, passed or failed.
    Done(bool),
}

impl Core {
    pub(super) fn start_self_test(&mut self, now: Duration) -> Result<(), CommandError> {
        let active = match self.state {
            UnitState::Maintenance => {
                self.require_idle_maintenance("self-test")?;
                true
            }
            UnitState::Ready | UnitState::Precooling => false,
            UnitState::Fault => {
                return Err(self.not_permitted(
                    "self-test (in fault, enter maintenance to run the active self-test)",
                ))
            }
            _ => return Err(self.not_permitted("self-test")),
        };
        self.self_test.identities = Default::default();
        self.self_test.identify_requested = true;
        self.task = Some(Task::SelfTest(SelfTest::new(
            now + secs(self.interlocks.config().self_test_timeout_s),
            active,
        )));
        Ok(())
    }

    /// Advances the self-test task. Passive part (identities and plausible readings) in any
    /// state; active part (pump → flow, chiller → heatsink warms) only in maintenance.
    pub(super) fn run_self_test(&mut self, now: Duration, heatsink: Option<f64>) {
        let mut test = match self.task.take() {
            Some(Task::SelfTest(test)) => test,
            other => {
                self.task = other;
                return;
            }
        };
        let progress = match test.phase {
            SelfTestPhase::Identify { deadline } => self.identify_phase(&mut test, deadline, now),
            SelfTestPhase::Flow {
                until,
                pulses_at_start,
            } => self.flow_phase(&mut test, until, pulses_at_start, now, heatsink),
            SelfTestPhase::HotSide { until, start_c } => {
                self.hot_side_phase(&mut test, until, start_c, now, heatsink)
            }
        };
        match progress {
            Progress::Running => self.task = Some(Task::SelfTest(test)),
            Progress::Done(passed) => self.finish_self_test(now, passed, test.report),
        }
    }

    /// Every fitted sensor identifies as its expected part and reads plausibly.
    fn identify_phase(&self, test: &mut SelfTest, deadline: Duration, now: Duration) -> Progress {
        let stale_after = secs(self.interlocks.config().stale_after_s);
        let mut all_ok = true;
        let mut lines = Vec::new();
        let mut failed = false;
        for s in self.sensors.fitted_sensors() {
            let fresh = self.sensors.fresh(s, now, stale_after);
            match &self.self_test.identities[s.index()] {
                Some(Ok(id)) if id.part == expected_part(s) && fresh.is_some() => {
                    lines.push(format!(
                        "{s}: {} ok, {:.2} {}",
                        id.part,
                        fresh.unwrap_or_default(),
                        s.unit()
                    ));
                }
                Some(Ok(id)) if id.part != expected_part(s) => {
                    failed = true;
                    lines.push(format!(
                        "{s}: found {} where {} expected",
                        id.part,
                        expected_part(s)
                    ));
                }
                Some(Err(e)) => {
                    failed = true;
                    lines.push(format!("{s}: {e}"));
                }
                _ => {
                    all_ok = false;
                    lines.push(format!("{s}: no plausible reading yet"));
                }
            }
        }
        if failed || (!all_ok && now >= deadline) {
            test.report.extend(lines);
            return Progress::Done(false);
        }
        if !all_ok {
            return Progress::Running;
        }
        test.report.extend(lines);
        if !test.active {
            return Progress::Done(true);
        }
        test.phase = SelfTestPhase::Flow {
            until: now + secs(SELF_TEST_FLOW_S),
            pulses_at_start: self.flow.total_pulses(),
        };
        Progress::Running
    }

    /// The pump delivered flow pulses; then the chiller check starts from the heatsink's
    /// reading.
    fn flow_phase(
        &self,
        test: &mut SelfTest,
        until: Duration,
        pulses_at_start: u64,
        now: Duration,
        heatsink: Option<f64>,
    ) -> Progress {
        if now < until {
            return Progress::Running;
        }
        let pulses = self.flow.total_pulses() - pulses_at_start;
        if pulses == 0 {
            test.report.push("pump: no flow pulses".into());
            return Progress::Done(false);
        }
        test.report.push(format!(
            "pump: {pulses} flow pulses in {SELF_TEST_FLOW_S} s"
        ));
        let Some(h) = heatsink else {
            test.report.push("chiller: no heatsink reading".into());
            return Progress::Done(false);
        };
        test.phase = SelfTestPhase::HotSide {
            until: now + secs(self.thermostat.config().hot_side_check_s),
            start_c: h,
        };
        Progress::Running
    }

    /// The chiller warmed the heatsink in time.
    fn hot_side_phase(
        &self,
        test: &mut SelfTest,
        until: Duration,
        start_c: f64,
        now: Duration,
        heatsink: Option<f64>,
    ) -> Progress {
        let rise = self.thermostat.config().hot_side_rise_c;
        match heatsink {
            Some(h) if h >= start_c + rise => {
                test.report
                    .push(format!("chiller: heatsink +{:.1} °C", h - start_c));
                Progress::Done(true)
            }
            _ if now >= until => {
                test.report.push("chiller: heatsink did not warm".into());
                Progress::Done(false)
            }
            _ => Progress::Running,
        }
    }

    fn finish_self_test(&mut self, now: Duration, passed: bool, report: Vec<String>) {
        self.task = None;
        self.self_test.last = Some((now, passed));
        self.self_test.last_report = report.clone();
        self.events.push(Event::SelfTestFinished {
            at: now,
            passed,
            report: report.clone(),
        });
        if passed {
            if self.state == UnitState::Starting {
                self.transition(
                    UnitState::Precooling,
                    now,
                    "self_test_passed",
                    "self-test passed",
                );
            }
            if self.state == UnitState::Maintenance {
                // The active self-test has just seen the pump deliver flow and the chiller pump
                // heat: it is the technician's proof that the faults it covers are fixed.
                let stamp = self.stamp(now);
                for kind in [AlarmKind::ChillerIneffective, AlarmKind::SelfTestFailed] {
                    self.alarms.acknowledge_kind(kind, stamp, &mut self.events);
                }
            }
        } else {
            let stamp = self.stamp(now);
            let text = AlarmText::SelfTestFailed {
                reason: report.last().cloned().unwrap_or_default(),
            };
            self.alarms.raise(text, stamp, &mut self.events);
            // The condition is the failed test itself: it clears on acknowledge.
            self.alarms
                .clear_condition(AlarmKind::SelfTestFailed, stamp, &mut self.events);
            if self.state != UnitState::Maintenance {
                self.enter_fault(now, AlarmKind::SelfTestFailed);
            }
            // In maintenance the technician stays there (every actuator is off: the task
            // ended) to fix the cause and run the self-test again; leaving maintenance with
            // the alarm listed goes to `fault`.
        }
    }
}
