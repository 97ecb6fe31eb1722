//! When the control loop steps without an event.
//!
//! Edges (but flow pulses) and commands always step the loop at once. Between them:
//!
//! * **busy** (a session, a maintenance task, the laser on, an alarm whose buzzer and lamp
//!   patterns need their 10 ms resolution, any state but `ready`/`precooling`): a tick every
//!   `step_ms`, as before; readings wait for it.
//! * **quiet** ([`is_quiet`]): nothing can change but through a sensor reading, an edge, a
//!   command or time passing on a scale of seconds (stale-sensor limits, thermostat minimum
//!   on/off times, the chiller checks, the dry-run limit). The loop steps once a polling round
//!   of the sensors is in (the samples reach the core as they are read; the step waits for
//!   the round's last, a few ms on the board, since its ADC conversion takes 8 ms) and at the
//!   latest [`QUIET_STEP`] after its previous step, which is also how often the safety
//!   inputs' levels are re-read, and bounds the wait when a read stalls. That is about 10
//!   steps a second instead of 100 (and not one per sample: on the board the samples of a
//!   round arrive apart).
//!
//! Every step beats the watchdog's heartbeat, so a quiet loop (a beat at least every
//! [`QUIET_STEP`]) is far inside the watchdog's stall limit (1 s) and the core's late-step
//! limit ([`crate::control::core::LATE_STEP`], 250 ms); a loop stuck in a step stays silent
//! and is caught as before.

use crate::api::Snapshot;
use crate::model::state::UnitState;
use std::time::{Duration, Instant};

/// Longest time between two steps of a quiet loop, wall time (never more than the loop's
/// level re-read period, and far under the late-step and watchdog limits).
pub(super) const QUIET_STEP: Duration = Duration::from_millis(100);

/// Whether the unit is quiet: ready or precooling, with no session, no maintenance task, the
/// laser off and no alarm (whose buzzer and lamp patterns switch every 150–250 ms).
pub(super) fn is_quiet(s: &Snapshot) -> bool {
    matches!(s.state, UnitState::Ready | UnitState::Precooling)
        && s.session.is_none()
        && s.maintenance.is_none()
        && !s.laser_on
        && s.alarms.is_empty()
}

/// The loop's timer: when the next step without an event is due.
#[derive(Debug)]
pub(super) struct Cadence {
    busy: Duration,
    quiet_step: Duration,
    quiet: bool,
    next: Instant,
    /// When the tick that woke the loop was due (for the late-step count).
    fired: Option<Instant>,
}

impl Cadence {
    /// A busy cadence: `busy` between ticks, at most `quiet_step` between steps when quiet.
    pub(super) fn new(busy: Duration, quiet_step: Duration) -> Self {
        Self {
            busy,
            quiet_step,
            quiet: false,
            next: Instant::now() + busy,
            fired: None,
        }
    }

    /// Whether the last step found the unit quiet.
    pub(super) fn quiet(&self) -> bool {
        self.quiet
    }

    /// When the next step is due if nothing happens before.
    pub(super) fn next(&self) -> tokio::time::Instant {
        tokio::time::Instant::from_std(self.next)
    }

    /// The timer fired: a busy loop's next tick is one period later (ticks missed under load
    /// are skipped, not caught up).
    pub(super) fn ticked(&mut self) {
        self.fired_at(Instant::now());
    }

    fn fired_at(&mut self, now: Instant) {
        self.fired = Some(self.next);
        self.next += self.busy;
        if self.next <= now {
            self.next = now + self.busy;
        }
    }

    /// When the step starting at `started` was due: its tick, or now for an event.
    pub(super) fn due(&mut self, started: Instant) -> Instant {
        self.fired.take().unwrap_or(started)
    }

    /// Whether sensor messages just taken step the loop now. Quiet: once a polling round is
    /// in (`round_done`; the quiet tick bounds the wait when a read stalls). Busy: readings
    /// wait for the tick, unless a flood has kept the tick from running for a period
    /// (`since_last_step`).
    pub(super) fn steps_on_readings(&self, round_done: bool, since_last_step: Duration) -> bool {
        if self.quiet {
            round_done
        } else {
            since_last_step >= self.busy
        }
    }

    /// A step started at `at` found the unit `quiet` (or not).
    pub(super) fn stepped(&mut self, at: Instant, quiet: bool) {
        if quiet {
            self.next = at + self.quiet_step;
        } else if self.quiet {
            // Busy again: tick from now on.
            self.next = at + self.busy;
        }
        self.quiet = quiet;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::SessionProgress;
    use crate::model::alarm::AlarmKind;

    const BUSY: Duration = Duration::from_millis(10);

    fn ready() -> Snapshot {
        let mut s = Snapshot::power_on(4.0);
        s.state = UnitState::Ready;
        s.ready = true;
        s
    }

    #[test]
    fn quiet_only_when_nothing_runs_and_nothing_sounds() {
        assert!(is_quiet(&ready()));
        let mut precooling = ready();
        precooling.state = UnitState::Precooling;
        assert!(is_quiet(&precooling));
        for state in [
            UnitState::Starting,
            UnitState::Spraying,
            UnitState::Fault,
            UnitState::Maintenance,
            UnitState::Stopping,
        ] {
            let mut s = ready();
            s.state = state;
            assert!(!is_quiet(&s), "{state} counted as quiet");
        }
        let mut laser = ready();
        laser.laser_on = true;
        assert!(!is_quiet(&laser));
        let mut task = ready();
        task.maintenance = Some(crate::api::MaintenanceActivity::Prime);
        assert!(!is_quiet(&task));
        let mut alarm = ready();
        alarm.alarms.push(crate::model::alarm::Alarm {
            kind: AlarmKind::WaterLow,
            priority: AlarmKind::WaterLow.priority(),
            message: String::new(),
            params: Default::default(),
            raised_at: Duration::ZERO,
            raised_unix_ms: 0,
            condition_present: false,
            acknowledged: true,
        });
        assert!(!is_quiet(&alarm));
        let mut session = ready();
        session.session = Some(SessionProgress {
            start: crate::store::export::test_record(1, "pico", None).start,
            elapsed_s: 0.0,
            remaining_s: 1.0,
            end_in_s: 1.0,
            end_basis: Default::default(),
            in_band: false,
            peak_skin_c: None,
            min_skin_c: None,
        });
        assert!(!is_quiet(&session));
    }

    #[test]
    fn quiet_steps_once_a_round_is_in_and_busy_waits_for_its_tick() {
        let t0 = Instant::now();
        let mut c = Cadence::new(BUSY, QUIET_STEP);
        c.stepped(t0, true);
        // Quiet: a sample in mid-round waits (however long since the last step: the quiet
        // tick bounds it); the round's end steps at once.
        assert!(!c.steps_on_readings(false, Duration::ZERO));
        assert!(!c.steps_on_readings(false, QUIET_STEP));
        assert!(c.steps_on_readings(true, Duration::ZERO));
        // Busy: readings, round or not, wait for the tick unless a period has gone by.
        c.stepped(t0, false);
        assert!(!c.steps_on_readings(true, BUSY / 2));
        assert!(!c.steps_on_readings(false, BUSY / 2));
        assert!(c.steps_on_readings(false, BUSY));
    }

    #[test]
    fn busy_ticks_every_period_and_quiet_waits_for_the_longest_gap() {
        let t0 = Instant::now();
        let mut c = Cadence::new(BUSY, QUIET_STEP);
        c.next = t0 + BUSY;
        // Busy: a tick a period later, and a step on an event does not move it.
        c.fired_at(t0 + BUSY);
        assert_eq!(c.next, t0 + 2 * BUSY);
        assert_eq!(c.due(t0 + BUSY), t0 + BUSY);
        c.stepped(t0 + BUSY, false);
        c.stepped(t0 + BUSY + Duration::from_millis(3), false);
        assert_eq!(c.next, t0 + 2 * BUSY);
        assert_eq!(
            c.due(t0 + Duration::from_millis(13)),
            t0 + Duration::from_millis(13)
        );
        // Missed ticks are skipped.
        c.fired_at(t0 + Duration::from_millis(55));
        assert_eq!(c.next, t0 + Duration::from_millis(65));
        // Quiet: the next step at the latest QUIET_STEP after the last one, whatever woke it.
        c.stepped(t0 + Duration::from_millis(60), true);
        assert!(c.quiet());
        assert_eq!(c.next, t0 + Duration::from_millis(60) + QUIET_STEP);
        c.stepped(t0 + Duration::from_millis(120), true);
        assert_eq!(c.next, t0 + Duration::from_millis(120) + QUIET_STEP);
        // Busy again (a command started a session): ticking from that step on.
        c.stepped(t0 + Duration::from_millis(130), false);
        assert!(!c.quiet());
        assert_eq!(c.next, t0 + Duration::from_millis(140));
    }
}
