//! Treatment sessions: starting one (by command, pedal or auto-start after the laser),
//! stopping it, arming auto-start, and the curve samples recorded while it runs.

use super::super::running_session::{ActiveSession, FloorGuard};
use super::{Core, SAMPLE_PERIOD};
use crate::api::{CommandError, Event, StartOptions};
use crate::limits::{self as range, secs};
use crate::model::alarm::AlarmKind;
use crate::model::alarm_text::AlarmText;
use crate::model::session::{Outcome, Sample, SessionStart, StartCause};
use crate::model::state::UnitState;
use crate::protocol::{limits, Protocol};
use coldspray_hal::{Output, Sensor};
use std::time::Duration;

impl Core {
    pub(super) fn find_protocol(&self, name: &str) -> Result<Protocol, CommandError> {
        self.protocols
            .iter()
            .find(|p| p.name == name)
            .cloned()
            .ok_or_else(|| CommandError::UnknownProtocol(name.to_string()))
    }

    pub(super) fn can_spray(&self) -> Result<(), CommandError> {
        let interlocks = self.alarms.active_interlocks();
        if !interlocks.is_empty() || self.levels.safety_input_asserted() {
            let mut kinds = interlocks;
            if kinds.is_empty() {
                kinds.push(if self.levels.estop {
                    AlarmKind::Estop
                } else {
                    AlarmKind::WaterLow
                });
            }
            return Err(CommandError::InterlockActive { kinds });
        }
        if self.settings_unconfirmed {
            return Err(CommandError::SettingsUnconfirmed);
        }
        if self.state != UnitState::Ready {
            return Err(CommandError::NotReady { state: self.state });
        }
        Ok(())
    }

    pub(super) fn start_session(
        &mut self,
        now: Duration,
        protocol: &str,
        options: &StartOptions,
        cause: StartCause,
    ) -> Result<u64, CommandError> {
        let mut p = self.find_protocol(protocol)?;
        if let Some(s) = options.spray_s {
            range::check("spray_s", s, limits::SPRAY_S)?;
            p.spray_s = s;
        }
        if let Some(t) = options.skin_target_c {
            range::check("skin_target_c", t, limits::SKIN_TARGET_C)?;
            p.skin_target_c = Some(t);
        }
        if let Some(d) = options.pump_percent {
            range::check(
                "pump_percent",
                f64::from(d),
                range::widen(&limits::PUMP_PERCENT),
            )?;
            p.pump_percent = d;
        }
        p.validate().map_err(|e| CommandError::InvalidArgument {
            name: "options".into(),
            reason: e.to_string(),
        })?;
        self.can_spray()?;

        let laser_end = self
            .laser
            .ended_at
            .filter(|end| now.saturating_sub(*end) <= secs(self.session_cfg.laser_association_s));
        let delay = laser_end.map(|end| now.saturating_sub(end));
        let late = delay.is_some_and(|d| d > secs(self.session_cfg.late_after_s));
        let id = self.next_session_id;
        self.next_session_id += 1;
        let start = SessionStart {
            id,
            protocol: p.name.clone(),
            goal: p.goal,
            cause,
            started_at: now,
            started_unix_ms: self.now_unix_ms,
            laser_to_spray_ms: delay.map(|d| d.as_secs_f64() * 1000.0),
            late,
            skin_target_c: p.skin_target_c,
            skin_floor_c: p.skin_floor_c,
        };
        self.counters.sessions += 1;
        if late {
            self.counters.late_sessions += 1;
        }
        self.events.push(Event::SessionStarted(start.clone()));
        if late {
            let text = AlarmText::LateStart {
                session_id: id,
                delay_s: delay.unwrap_or_default().as_secs_f64(),
            };
            // An advisory about this one start: an event, over at once, so the alarm stays
            // until acknowledged and acknowledging removes it.
            let stamp = self.stamp(now);
            self.alarms.raise(text, stamp, &mut self.events);
            self.alarms
                .clear_condition(AlarmKind::LateStart, stamp, &mut self.events);
        }
        self.session = Some(ActiveSession::new(
            start,
            p,
            FloorGuard {
                margin_c: self.session_cfg.floor_margin_c,
                sensor_fill: self.session_cfg.skin_sensor_fill,
            },
        ));
        self.laser.pending_autostart = None;
        self.last_sample = None;
        self.transition(
            UnitState::Spraying,
            now,
            "session_started",
            format!("session {id} started ({})", cause.name()),
        );
        Ok(id)
    }

    pub(super) fn end_session(&mut self, now: Duration, outcome: Outcome, alarm: Option<String>) {
        let Some(session) = self.session.take() else {
            return;
        };
        let above = self.laser.ended_at.map(|_| self.laser.above_40);
        let record = session.finish(now, self.now_unix_ms, outcome, above, alarm);
        self.events.push(Event::SessionEnded(record));
        self.laser.ended_at = None;
        if self.state == UnitState::Spraying {
            self.transition(
                UnitState::Ready,
                now,
                "session_ended",
                format!("session ended: {outcome}"),
            );
        }
    }

    pub(super) fn record_sample(&mut self, now: Duration) {
        let Some(session) = &self.session else {
            return;
        };
        if self
            .last_sample
            .is_some_and(|t| now.saturating_sub(t) < SAMPLE_PERIOD)
        {
            return;
        }
        self.last_sample = Some(now);
        let stale_after = secs(self.interlocks.config().stale_after_s);
        let read = |s| self.sensors.fresh(s, now, stale_after);
        let t_ms = u32::try_from(session.elapsed(now).as_millis()).unwrap_or(u32::MAX);
        self.events.push(Event::Sample(Sample {
            session_id: session.start.id,
            t_ms,
            mist_c: read(Sensor::Mist),
            skin_c: read(Sensor::Skin),
            reservoir_c: read(Sensor::Reservoir),
            pressure_bar: read(Sensor::Pressure),
            pump: self.driven.levels[Output::Pump],
            valve: self.driven.levels[Output::SprayValve],
        }));
    }

    pub(super) fn stop_session(&mut self, now: Duration) -> Result<(), CommandError> {
        if self.session.is_none() {
            return Err(self.not_permitted("stop (no session running)"));
        }
        self.end_session(now, Outcome::Stopped, None);
        Ok(())
    }

    pub(super) fn arm(&mut self, protocol: String) -> Result<(), CommandError> {
        self.find_protocol(&protocol)?;
        if self.settings_unconfirmed {
            return Err(CommandError::SettingsUnconfirmed);
        }
        self.armed = Some(protocol);
        Ok(())
    }

    pub(super) fn disarm(&mut self) {
        self.armed = None;
        self.laser.pending_autostart = None;
    }
}
