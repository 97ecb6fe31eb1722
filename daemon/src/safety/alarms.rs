//! Alarm lifecycle after IEC 60601-1-8: raise, latch, acknowledge, audio pause.
//!
//! * A latching alarm stays after its condition goes away, until acknowledged; a non-latching
//!   alarm disappears with its condition.
//! * An acknowledged alarm whose condition is still present stays listed (silently) until the
//!   condition goes.
//! * Audio pause silences the buzzer for a while, but any *new* alarm ends the pause at once.
//! * Every change is an [`Event`]; high-priority raises are durable (logged before published).

use crate::api::{CommandError, Event};
use crate::model::alarm::{Alarm, AlarmKind, Priority};
use crate::model::alarm_text::AlarmText;
use std::time::Duration;

/// The set of current alarms.
#[derive(Debug, Clone, Default)]
pub struct AlarmManager {
    alarms: Vec<Alarm>,
    audio_paused_until: Option<Duration>,
}

/// Wall and monotonic time of a change.
#[derive(Debug, Clone, Copy)]
pub struct Stamp {
    /// Monotonic.
    pub at: Duration,
    /// Wall clock, ms since the Unix epoch.
    pub unix_ms: i64,
}

impl AlarmManager {
    /// No alarms.
    pub fn new() -> Self {
        Self::default()
    }

    /// Current alarms, highest priority first, then oldest first.
    pub fn alarms(&self) -> &[Alarm] {
        &self.alarms
    }

    /// Whether an alarm of this kind is listed.
    pub fn has(&self, kind: AlarmKind) -> bool {
        self.alarms.iter().any(|a| a.kind == kind)
    }

    /// Raises the alarm `text` is about (or refreshes its message if already present).
    pub fn raise(&mut self, text: AlarmText, now: Stamp, events: &mut Vec<Event>) {
        let kind = text.kind();
        if let Some(a) = self.alarms.iter_mut().find(|a| a.kind == kind) {
            if !a.condition_present {
                // The condition came back: sound again.
                a.condition_present = true;
                a.acknowledged = false;
                a.message = text.english();
                a.params = text.params();
                a.raised_at = now.at;
                a.raised_unix_ms = now.unix_ms;
                self.audio_paused_until = None;
                events.push(Event::AlarmRaised(a.clone()));
            }
            return;
        }
        let alarm = Alarm {
            kind,
            priority: kind.priority(),
            message: text.english(),
            params: text.params(),
            raised_at: now.at,
            raised_unix_ms: now.unix_ms,
            condition_present: true,
            acknowledged: false,
        };
        events.push(Event::AlarmRaised(alarm.clone()));
        self.alarms.push(alarm);
        self.alarms.sort_by_key(|a| (a.priority, a.raised_at));
        // A new alarm is never silenced by an earlier audio pause.
        self.audio_paused_until = None;
    }

    /// The condition behind `kind` went away.
    pub fn clear_condition(&mut self, kind: AlarmKind, now: Stamp, events: &mut Vec<Event>) {
        let Some(idx) = self.alarms.iter().position(|a| a.kind == kind) else {
            return;
        };
        if self.alarms[idx].condition_present {
            self.alarms[idx].condition_present = false;
            events.push(Event::AlarmConditionCleared {
                kind,
                at: now.at,
                unix_ms: now.unix_ms,
            });
        }
        let a = &self.alarms[idx];
        if !kind.latching() || a.acknowledged {
            self.remove(idx, now, events);
        }
    }

    /// Sets the condition of `kind` present (with the text `text` builds, which must be
    /// about `kind`) or absent.
    pub fn set(
        &mut self,
        kind: AlarmKind,
        present: bool,
        text: impl FnOnce() -> AlarmText,
        now: Stamp,
        events: &mut Vec<Event>,
    ) {
        if present {
            let text = text();
            debug_assert_eq!(text.kind(), kind, "alarm text for another kind");
            self.raise(text, now, events);
        } else {
            self.clear_condition(kind, now, events);
        }
    }

    fn remove(&mut self, idx: usize, now: Stamp, events: &mut Vec<Event>) {
        let a = self.alarms.remove(idx);
        events.push(Event::AlarmRemoved {
            kind: a.kind,
            at: now.at,
            unix_ms: now.unix_ms,
        });
    }

    /// Acknowledges one alarm by key, or all. Alarms whose condition is gone disappear.
    pub fn acknowledge(
        &mut self,
        key: Option<&str>,
        now: Stamp,
        events: &mut Vec<Event>,
    ) -> Result<usize, CommandError> {
        let targets: Vec<AlarmKind> = match key {
            Some(k) => {
                let kind = AlarmKind::from_key(k)
                    .filter(|kind| self.has(*kind))
                    .ok_or_else(|| CommandError::UnknownAlarm(k.to_string()))?;
                vec![kind]
            }
            None => self
                .alarms
                .iter()
                .filter(|a| !a.acknowledged)
                .map(|a| a.kind)
                .collect(),
        };
        for kind in &targets {
            self.acknowledge_kind(*kind, now, events);
        }
        Ok(targets.len())
    }

    /// Acknowledges the alarm of `kind` if it is listed (it disappears if its condition is
    /// gone); returns whether it was listed.
    pub fn acknowledge_kind(
        &mut self,
        kind: AlarmKind,
        now: Stamp,
        events: &mut Vec<Event>,
    ) -> bool {
        let Some(idx) = self.alarms.iter().position(|a| a.kind == kind) else {
            return false;
        };
        if !self.alarms[idx].acknowledged {
            self.alarms[idx].acknowledged = true;
            events.push(Event::AlarmAcknowledged {
                kind,
                at: now.at,
                unix_ms: now.unix_ms,
            });
        }
        if !self.alarms[idx].condition_present {
            self.remove(idx, now, events);
        }
        true
    }

    /// Pauses the buzzer until `until` (new alarms end the pause).
    pub fn audio_pause(&mut self, until: Duration) {
        self.audio_paused_until = Some(until);
    }

    /// When the audio pause ends, if one is running at `now`.
    pub fn audio_paused_until(&self, now: Duration) -> Option<Duration> {
        self.audio_paused_until.filter(|until| now < *until)
    }

    /// Whether any alarm that faults the unit is still listed (latched or present).
    pub fn fault_latched(&self) -> bool {
        self.alarms.iter().any(|a| a.kind.faults_unit())
    }

    /// Whether any alarm that faults the unit has its condition present now.
    pub fn fault_present(&self) -> bool {
        self.alarms
            .iter()
            .any(|a| a.kind.faults_unit() && a.condition_present)
    }

    /// The interlock alarms whose condition is present now.
    pub fn active_interlocks(&self) -> Vec<AlarmKind> {
        self.alarms
            .iter()
            .filter(|a| a.kind.is_interlock() && a.condition_present)
            .map(|a| a.kind)
            .collect()
    }

    /// Whether any interlock's condition is present now.
    pub fn interlock_present(&self) -> bool {
        self.alarms
            .iter()
            .any(|a| a.kind.is_interlock() && a.condition_present)
    }

    /// The buzzer level at `now`: the pattern of the highest-priority unacknowledged alarm,
    /// unless audio is paused. High: 150 ms pulses every 300 ms; medium: 300 ms every 2 s;
    /// low: 200 ms every 15 s (fast / slow / single, as IEC 60601-1-8 orders them).
    pub fn buzzer(&self, now: Duration) -> bool {
        if self.audio_paused_until(now).is_some() {
            return false;
        }
        let Some(top) = self
            .alarms
            .iter()
            .filter(|a| !a.acknowledged)
            .map(|a| a.priority)
            .min()
        else {
            return false;
        };
        let ms = now.as_millis();
        match top {
            Priority::High => ms % 300 < 150,
            Priority::Medium => ms % 2000 < 300,
            Priority::Low => ms % 15_000 < 200,
        }
    }

    /// The fault lamp at `now`: flashing fast for high, slowly for medium, steady for low.
    pub fn fault_lamp(&self, now: Duration) -> bool {
        let Some(top) = self.alarms.iter().map(|a| a.priority).min() else {
            return false;
        };
        let ms = now.as_millis();
        match top {
            Priority::High => ms % 500 < 250,
            Priority::Medium => ms % 2000 < 1000,
            Priority::Low => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use coldspray_hal::Sensor;

    fn t(ms: u64) -> Stamp {
        Stamp {
            at: Duration::from_millis(ms),
            unix_ms: ms as i64,
        }
    }

    /// A manager with `kind` raised at 0, and the events so far.
    fn raised(kind: AlarmKind, message: &str) -> (AlarmManager, Vec<Event>) {
        let mut m = AlarmManager::new();
        let mut ev = Vec::new();
        m.raise(AlarmText::reason(kind, message), t(0), &mut ev);
        (m, ev)
    }

    /// The buzzer's state every 10 ms over `ms` (milliseconds since 0).
    fn buzzer_over(m: &AlarmManager, ms: std::ops::Range<u64>) -> Vec<bool> {
        ms.step_by(10)
            .map(|ms| m.buzzer(Duration::from_millis(ms)))
            .collect()
    }

    #[test]
    fn latching_alarm_needs_ack_and_cause_gone() {
        let (mut m, mut ev) = raised(AlarmKind::DryRun, "no flow");
        assert!(m.fault_latched());
        m.clear_condition(AlarmKind::DryRun, t(100), &mut ev);
        assert!(m.fault_latched(), "latched after the cause went");
        m.acknowledge(None, t(200), &mut ev).unwrap();
        assert!(!m.fault_latched());
        assert!(matches!(ev.last(), Some(Event::AlarmRemoved { .. })));
    }

    #[test]
    fn ack_while_cause_present_keeps_the_alarm_until_it_goes() {
        let (mut m, mut ev) = raised(AlarmKind::Estop, "pressed");
        m.acknowledge(Some("estop"), t(10), &mut ev).unwrap();
        assert!(m.fault_latched());
        assert!(
            !m.buzzer(Duration::from_millis(0)),
            "acknowledged alarms are silent"
        );
        m.clear_condition(AlarmKind::Estop, t(20), &mut ev);
        assert!(!m.fault_latched());
    }

    #[test]
    fn non_latching_alarm_goes_with_its_condition() {
        let (mut m, mut ev) = raised(AlarmKind::FreezeCutout, "cold");
        m.clear_condition(AlarmKind::FreezeCutout, t(5), &mut ev);
        assert!(m.alarms().is_empty());
    }

    #[test]
    fn audio_pause_never_silences_a_new_alarm() {
        let (mut m, mut ev) = raised(AlarmKind::WaterLow, "low");
        m.audio_pause(Duration::from_secs(120));
        assert!(!buzzer_over(&m, 0..2000).contains(&true));
        m.raise(
            AlarmText::reason(AlarmKind::SensorStale(Sensor::Mist), "stale"),
            t(3000),
            &mut ev,
        );
        assert_eq!(m.audio_paused_until(Duration::from_secs(4)), None);
        assert!(buzzer_over(&m, 3000..3300).contains(&true));
    }

    #[test]
    fn audio_pause_expires() {
        let (mut m, _) = raised(AlarmKind::DryRun, "x");
        m.audio_pause(Duration::from_secs(120));
        assert!(m.audio_paused_until(Duration::from_secs(119)).is_some());
        assert!(m.audio_paused_until(Duration::from_secs(120)).is_none());
        assert!(buzzer_over(&m, 120_000..120_300).contains(&true));
    }

    #[test]
    fn unknown_alarm_key_is_refused() {
        let mut m = AlarmManager::new();
        let mut ev = Vec::new();
        assert_eq!(
            m.acknowledge(Some("dry_run"), t(0), &mut ev),
            Err(CommandError::UnknownAlarm("dry_run".into()))
        );
        assert!(ev.is_empty());
    }

    #[test]
    fn high_priority_sorts_first_and_is_durable() {
        let (mut m, mut ev) = raised(AlarmKind::ServiceDue, "svc");
        m.raise(
            AlarmText::reason(AlarmKind::OverPressure, "p"),
            t(1),
            &mut ev,
        );
        assert_eq!(m.alarms()[0].kind, AlarmKind::OverPressure);
        assert!(ev[1].is_durable() && !ev[0].is_durable());
    }
}
