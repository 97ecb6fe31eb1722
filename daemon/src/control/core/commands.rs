//! Command dispatch: each command the front ends send, to the part of the core that handles
//! it. Output changes take effect at the next step, which the runtime runs at once.

use super::tasks::Timed;
use super::Core;
use crate::api::{Command, CommandError, Reply};
use crate::limits::secs;
use crate::model::session::StartCause;
use crate::model::state::UnitState;
use crate::protocol::Protocol;
use std::time::Duration;

impl Core {
    /// Applies a command on behalf of a D-Bus caller: as [`Core::command`], and every
    /// settings change it makes is logged with the caller's uid.
    pub fn command_by(
        &mut self,
        command: Command,
        caller: Option<u32>,
        now: Duration,
        unix_ms: i64,
    ) -> Result<Reply, CommandError> {
        self.caller = caller;
        let r = self.command(command, now, unix_ms);
        self.caller = None;
        r
    }

    /// Handles a command. Output changes take effect at the next step, which the runtime runs
    /// immediately after a command.
    pub fn command(
        &mut self,
        command: Command,
        now: Duration,
        unix_ms: i64,
    ) -> Result<Reply, CommandError> {
        self.now_unix_ms = unix_ms;
        if self.state == UnitState::Stopping {
            return Err(CommandError::ShuttingDown);
        }
        match command {
            Command::StartSession { protocol, options } => {
                return self
                    .start_session(now, &protocol, &options, StartCause::Command)
                    .map(Reply::SessionStarted)
            }
            Command::StopSession => self.stop_session(now),
            Command::Arm { protocol } => self.arm(protocol),
            Command::Disarm => {
                self.disarm();
                Ok(())
            }
            Command::Acknowledge { key } => {
                let stamp = self.stamp(now);
                self.alarms
                    .acknowledge(key.as_deref(), stamp, &mut self.events)
                    .map(|_| ())
            }
            Command::AudioPause => {
                let until = now + secs(self.interlocks.config().audio_pause_s);
                self.alarms.audio_pause(until);
                Ok(())
            }
            Command::SetSetpoint { celsius } => self.set_setpoint(celsius, now),
            Command::SetCalibration { sensor, offset } => self.set_calibration(sensor, offset, now),
            Command::ConfirmSettings => self.confirm_settings(now),
            Command::EnterMaintenance => self.enter_maintenance(now),
            Command::ExitMaintenance => self.exit_maintenance(now),
            Command::Prime { seconds } => self.start_timed_task(Timed::Prime, seconds, now),
            Command::Drain { seconds } => self.start_timed_task(Timed::Drain, seconds, now),
            Command::TestOutput { output, seconds } => {
                self.start_timed_task(Timed::TestOutput(output), seconds, now)
            }
            Command::SelfTest => self.start_self_test(now),
            Command::RecordWaterChange => {
                self.counters.water_changes += 1;
                self.config_changed(now, "water change".to_string());
                Ok(())
            }
            Command::UpsertProtocol(protocol) => self.upsert_protocol(*protocol, now),
            Command::DeleteProtocol { name } => self.delete_protocol(name, now),
        }
        .map(|()| Reply::Accepted)
    }

    fn upsert_protocol(&mut self, protocol: Protocol, now: Duration) -> Result<(), CommandError> {
        protocol
            .validate()
            .map_err(|e| CommandError::InvalidArgument {
                name: "protocol".into(),
                reason: e.to_string(),
            })?;
        let what = format!("protocol {} saved", protocol.name);
        match self.protocols.iter_mut().find(|p| p.name == protocol.name) {
            Some(existing) => *existing = protocol,
            None => self.protocols.push(protocol),
        }
        self.config_changed(now, what);
        self.dirty.protocols = true;
        Ok(())
    }

    fn delete_protocol(&mut self, name: String, now: Duration) -> Result<(), CommandError> {
        self.find_protocol(&name)?;
        if Protocol::factory_defaults().iter().any(|p| p.name == name) {
            return Err(self.not_permitted(&format!(
                "deleting factory protocol `{name}` (it can be edited, not deleted)"
            )));
        }
        if self
            .session
            .as_ref()
            .is_some_and(|s| s.protocol.name == name)
        {
            return Err(self.not_permitted("deleting the protocol in use"));
        }
        self.protocols.retain(|p| p.name != name);
        if self.armed.as_deref() == Some(name.as_str()) {
            self.armed = None;
        }
        self.config_changed(now, format!("protocol {name} deleted"));
        self.dirty.protocols = true;
        Ok(())
    }
}
