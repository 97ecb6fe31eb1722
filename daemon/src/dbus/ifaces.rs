//! The D-Bus interfaces served at `/org/coldspray/ColdSpray1`, one per concern.
//!
//! Every method validates its arguments (see [`super::validate`]) before anything reaches
//! the controller, returns as soon as the controller accepted the command, and is counted in
//! the daemon's telemetry. Doc comments here become the comments of the introspection XML.

use super::convert::{self, CurvePoint, Dict};
use super::error::Error;
use super::validate as v;
use crate::api::{Command, Reply};
use crate::handle::ControlHandle;
use crate::session::SessionRecord;
use crate::store::{LogStore, SessionQuery, Stats};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use zbus::interface;
use zbus::object_server::SignalEmitter;
use zbus::zvariant::OwnedValue;

/// Records a call's outcome in telemetry and passes it through.
fn counted<T>(h: &ControlHandle, method: &str, r: Result<T, Error>) -> Result<T, Error> {
    h.telemetry.record_dbus_call(method, r.is_err());
    r
}

async fn send(h: &ControlHandle, c: Command) -> Result<Reply, Error> {
    h.command(c).await.map_err(Error::from)
}

/// Sends a settings command on behalf of the message's sender: the change is logged with
/// the caller's uid.
async fn send_as(
    h: &ControlHandle,
    conn: &zbus::Connection,
    hdr: &zbus::message::Header<'_>,
    c: Command,
) -> Result<Reply, Error> {
    let uid = super::access::caller_uid(conn, hdr).await;
    h.command_by(c, uid).await.map_err(Error::from)
}

/// `org.coldspray.ColdSpray1.Unit`: unit state and treatment control.
pub struct Unit {
    pub(crate) h: ControlHandle,
    pub(crate) access: super::access::Access,
}

#[interface(name = "org.coldspray.ColdSpray1.Unit")]
impl Unit {
    /// Start: start spraying now with a protocol. options (all optional): spray_s (d, 1..120 s),
    /// skin_target_c (d, 12..36 C), pump_percent (u, 20..100). Returns the new session id once
    /// its opening record is on disk. Errors: NotReady, InterlockActive, UnknownProtocol,
    /// OutOfRange, InvalidArgument, NotPermitted, SettingsUnconfirmed (alarm settings_lost: a
    /// technician must confirm the unit's settings first); NotRecorded when the session started
    /// and is cooling but its record could not be written (disk full): cooling is never withheld
    /// for that, the message names the session, and the log_write_failed alarm is already raised.
    #[zbus(out_args("session_id"))]
    async fn start(
        &self,
        #[zbus(header)] hdr: zbus::message::Header<'_>,
        #[zbus(connection)] conn: &zbus::Connection,
        protocol: String,
        options: HashMap<String, OwnedValue>,
    ) -> Result<u64, Error> {
        if let Err(e) = self.access.check(conn, &hdr, "Unit.Start").await {
            return counted(&self.h, "Unit.Start", Err(e));
        }
        let r = async {
            v::known_protocol(&protocol, &self.h.protocols())?;
            let options = v::start_options(&options)?;
            match send(&self.h, Command::StartSession { protocol, options }).await? {
                Reply::SessionStarted(id) => Ok(id),
                Reply::Accepted => Ok(0),
            }
        }
        .await;
        counted(&self.h, "Unit.Start", r)
    }

    /// Stop: stop the running session. Errors: NotPermitted (nothing running); NotRecorded
    /// when it stopped but its closing record could not be written.
    async fn stop(
        &self,
        #[zbus(header)] hdr: zbus::message::Header<'_>,
        #[zbus(connection)] conn: &zbus::Connection,
    ) -> Result<(), Error> {
        if let Err(e) = self.access.check(conn, &hdr, "Unit.Stop").await {
            return counted(&self.h, "Unit.Stop", Err(e));
        }
        let r = send(&self.h, Command::StopSession).await.map(drop);
        counted(&self.h, "Unit.Stop", r)
    }

    /// Arm: arm auto-start; the next end of laser emission starts a session with this
    /// protocol. Errors: UnknownProtocol, InvalidArgument, NotPermitted, SettingsUnconfirmed.
    async fn arm(
        &self,
        #[zbus(header)] hdr: zbus::message::Header<'_>,
        #[zbus(connection)] conn: &zbus::Connection,
        protocol: String,
    ) -> Result<(), Error> {
        if let Err(e) = self.access.check(conn, &hdr, "Unit.Arm").await {
            return counted(&self.h, "Unit.Arm", Err(e));
        }
        let r = async {
            v::known_protocol(&protocol, &self.h.protocols())?;
            send(&self.h, Command::Arm { protocol }).await.map(drop)
        }
        .await;
        counted(&self.h, "Unit.Arm", r)
    }

    /// Disarm: disarm auto-start.
    async fn disarm(
        &self,
        #[zbus(header)] hdr: zbus::message::Header<'_>,
        #[zbus(connection)] conn: &zbus::Connection,
    ) -> Result<(), Error> {
        if let Err(e) = self.access.check(conn, &hdr, "Unit.Disarm").await {
            return counted(&self.h, "Unit.Disarm", Err(e));
        }
        let r = send(&self.h, Command::Disarm).await.map(drop);
        counted(&self.h, "Unit.Disarm", r)
    }

    /// Acknowledge: acknowledge one alarm by key (as in ActiveAlarms, e.g. "estop",
    /// "sensor_stale:skin"), or every alarm with "". Errors: InvalidArgument, UnknownAlarm.
    async fn acknowledge(
        &self,
        #[zbus(header)] hdr: zbus::message::Header<'_>,
        #[zbus(connection)] conn: &zbus::Connection,
        key: String,
    ) -> Result<(), Error> {
        if let Err(e) = self.access.check(conn, &hdr, "Unit.Acknowledge").await {
            return counted(&self.h, "Unit.Acknowledge", Err(e));
        }
        let r = async {
            let key = v::alarm_key(&key)?;
            send(&self.h, Command::Acknowledge { key }).await.map(drop)
        }
        .await;
        counted(&self.h, "Unit.Acknowledge", r)
    }

    /// AudioPause: silence the buzzer for the audio-pause time (120 s); a new alarm still
    /// sounds.
    async fn audio_pause(
        &self,
        #[zbus(header)] hdr: zbus::message::Header<'_>,
        #[zbus(connection)] conn: &zbus::Connection,
    ) -> Result<(), Error> {
        if let Err(e) = self.access.check(conn, &hdr, "Unit.AudioPause").await {
            return counted(&self.h, "Unit.AudioPause", Err(e));
        }
        let r = send(&self.h, Command::AudioPause).await.map(drop);
        counted(&self.h, "Unit.AudioPause", r)
    }

    /// SetSetpoint: change the reservoir setpoint, degrees C, 2..15. It overrides the
    /// configuration's [thermostat] setpoint_c, also after a restart, as long as that
    /// configured value stays what it was when this was set; an administrator who edits it
    /// takes back control at the next start. The change is logged with the caller's uid.
    /// Errors: OutOfRange, NotSaved (in force now, but the settings file could not be
    /// written: lost at the next restart; alarm settings_not_saved).
    async fn set_setpoint(
        &self,
        #[zbus(header)] hdr: zbus::message::Header<'_>,
        #[zbus(connection)] conn: &zbus::Connection,
        celsius: f64,
    ) -> Result<(), Error> {
        if let Err(e) = self.access.check(conn, &hdr, "Unit.SetSetpoint").await {
            return counted(&self.h, "Unit.SetSetpoint", Err(e));
        }
        let r = async {
            let celsius = v::range("celsius", celsius, v::SETPOINT_C)?;
            send_as(&self.h, conn, &hdr, Command::SetSetpoint { celsius })
                .await
                .map(drop)
        }
        .await;
        counted(&self.h, "Unit.SetSetpoint", r)
    }

    /// State: starting, precooling, ready, spraying, fault, maintenance or stopping.
    #[zbus(property)]
    fn state(&self) -> String {
        self.h.snapshot().state.name().to_string()
    }

    /// Ready: true when a Start would spray at once.
    #[zbus(property)]
    fn ready(&self) -> bool {
        self.h.snapshot().ready
    }

    /// Temperatures: degrees C by sensor (reservoir, mist, heatsink, skin); a sensor without a
    /// valid reading (stale, faulty, not fitted) is absent.
    #[zbus(property)]
    fn temperatures(&self) -> HashMap<String, f64> {
        convert::temperatures(&self.h.snapshot())
    }

    /// Pressure: line pressure, bar (gauge); NaN when there is no valid reading.
    #[zbus(property)]
    fn pressure(&self) -> f64 {
        self.h
            .snapshot()
            .reading(coldspray_hal::Sensor::Pressure)
            .unwrap_or(f64::NAN)
    }

    /// FlowRate: flow through the meter, litres per minute.
    #[zbus(property)]
    fn flow_rate(&self) -> f64 {
        self.h.snapshot().flow_l_min
    }

    /// Setpoint: reservoir setpoint, degrees C (change with SetSetpoint).
    #[zbus(property)]
    fn setpoint(&self) -> f64 {
        self.h.snapshot().setpoint_c
    }

    /// ActiveAlarms: active or latched alarms as (key, priority high|medium|low, message,
    /// raised_unix_ms, condition_present, acknowledged).
    #[zbus(property)]
    fn active_alarms(&self) -> Vec<convert::AlarmTuple> {
        self.h
            .snapshot()
            .alarms
            .iter()
            .map(convert::alarm)
            .collect()
    }

    /// CurrentSession: the running session (empty when none): id t, protocol s, goal s, cause s,
    /// started_unix_ms x, late b, laser_to_spray_ms d, elapsed_s d, remaining_s d, in_band b,
    /// skin_target_c d, skin_floor_c d, peak_skin_c d, min_skin_c d (absent when unknown).
    #[zbus(property)]
    fn current_session(&self) -> Dict {
        convert::current_session(&self.h.snapshot())
    }

    /// Armed: protocol armed for auto-start, "" when disarmed.
    #[zbus(property)]
    fn armed(&self) -> String {
        self.h.snapshot().armed.clone().unwrap_or_default()
    }

    /// Outputs: output levels as driven, by output name.
    #[zbus(property)]
    fn outputs(&self) -> HashMap<String, bool> {
        convert::outputs(&self.h.snapshot())
    }

    /// LaserOn: the laser is emitting now.
    #[zbus(property)]
    fn laser_on(&self) -> bool {
        self.h.snapshot().laser_on
    }

    /// AudioPaused: the buzzer is paused now.
    #[zbus(property)]
    fn audio_paused(&self) -> bool {
        convert::audio_paused(&self.h.snapshot())
    }

    /// Version: daemon version.
    #[zbus(property(emits_changed_signal = "const"))]
    fn version(&self) -> String {
        self.h.info.version.clone()
    }

    /// Backend: hardware backend, "linux" or "sim".
    #[zbus(property(emits_changed_signal = "const"))]
    fn backend(&self) -> String {
        self.h.info.backend.clone()
    }

    /// Features: feature flags of this unit (sim, skin_sensor, log_store, metrics, ...).
    #[zbus(property(emits_changed_signal = "const"))]
    fn features(&self) -> Vec<String> {
        self.h.info.features.clone()
    }

    /// SessionStarted: a session started (id, protocol, cause command|trigger|auto_start,
    /// late).
    #[zbus(signal)]
    pub async fn session_started(
        emitter: &SignalEmitter<'_>,
        id: u64,
        protocol: &str,
        cause: &str,
        late: bool,
    ) -> zbus::Result<()>;

    /// NotRecorded: something happened but could not be written to the treatment log (what,
    /// session_id or 0, reason); sent just before that event's own signal (SessionStarted,
    /// SessionEnded, ...), so a session started by the laser is known to be unrecorded too.
    /// The log_write_failed alarm is raised with it.
    #[zbus(signal)]
    pub async fn not_recorded(
        emitter: &SignalEmitter<'_>,
        what: &str,
        session_id: u64,
        reason: &str,
    ) -> zbus::Result<()>;

    /// SessionEnded: a session ended (id, outcome, completed); details via Sessions.Get.
    #[zbus(signal)]
    pub async fn session_ended(
        emitter: &SignalEmitter<'_>,
        id: u64,
        outcome: &str,
        completed: bool,
    ) -> zbus::Result<()>;

    /// AlarmRaised: an alarm was raised (key, priority, message).
    #[zbus(signal)]
    pub async fn alarm_raised(
        emitter: &SignalEmitter<'_>,
        key: &str,
        priority: &str,
        message: &str,
    ) -> zbus::Result<()>;

    /// AlarmCleared: an alarm is gone (acknowledged if latching, and its cause cleared).
    #[zbus(signal)]
    pub async fn alarm_cleared(emitter: &SignalEmitter<'_>, key: &str) -> zbus::Result<()>;

    /// StateChanged: the unit changed state (from, to, reason).
    #[zbus(signal, name = "StateChanged")]
    pub async fn state_transition(
        emitter: &SignalEmitter<'_>,
        from: &str,
        to: &str,
        reason: &str,
    ) -> zbus::Result<()>;
}

/// `org.coldspray.ColdSpray1.Protocols`: spray protocols.
pub struct Protocols {
    pub(crate) h: ControlHandle,
    pub(crate) access: super::access::Access,
}

#[interface(name = "org.coldspray.ColdSpray1.Protocols")]
impl Protocols {
    /// List: every protocol as a dictionary: name s, title s, goal s (protect|prepare),
    /// spray_s d, pattern s (continuous|pulsed), on_ms u, off_ms u (pulsed only),
    /// pump_percent u, skin_target_c d (absent when none), skin_floor_c d, band_c d, hold_s d.
    async fn list(
        &self,
        #[zbus(header)] hdr: zbus::message::Header<'_>,
        #[zbus(connection)] conn: &zbus::Connection,
    ) -> Result<Vec<Dict>, Error> {
        if let Err(e) = self.access.check(conn, &hdr, "Protocols.List").await {
            return counted(&self.h, "Protocols.List", Err(e));
        }
        let r = Ok(self.h.protocols().iter().map(convert::protocol).collect());
        counted(&self.h, "Protocols.List", r)
    }

    /// Get: one protocol by name (dictionary as in List). Errors: UnknownProtocol,
    /// InvalidArgument.
    async fn get(
        &self,
        #[zbus(header)] hdr: zbus::message::Header<'_>,
        #[zbus(connection)] conn: &zbus::Connection,
        name: String,
    ) -> Result<Dict, Error> {
        if let Err(e) = self.access.check(conn, &hdr, "Protocols.Get").await {
            return counted(&self.h, "Protocols.Get", Err(e));
        }
        let r = (|| {
            v::protocol_name(&name)?;
            self.h
                .protocols()
                .iter()
                .find(|p| p.name == name)
                .map(convert::protocol)
                .ok_or_else(|| Error::UnknownProtocol(format!("unknown protocol `{name}`")))
        })();
        counted(&self.h, "Protocols.Get", r)
    }

    /// Create (admin): add a protocol. Required keys: name, title, goal, spray_s; defaults:
    /// pattern continuous, pump_percent 100, no skin target, skin_floor_c 10, band_c 1,
    /// hold_s 10. Errors: InvalidArgument (also when the name exists), OutOfRange.
    async fn create(
        &self,
        #[zbus(header)] hdr: zbus::message::Header<'_>,
        #[zbus(connection)] conn: &zbus::Connection,
        protocol: HashMap<String, OwnedValue>,
    ) -> Result<(), Error> {
        if let Err(e) = self.access.check(conn, &hdr, "Protocols.Create").await {
            return counted(&self.h, "Protocols.Create", Err(e));
        }
        let r = async {
            let p = v::protocol_create(&protocol)?;
            if self.h.protocols().iter().any(|x| x.name == p.name) {
                return Err(Error::InvalidArgument(format!(
                    "protocol `{}` exists (use Update)",
                    p.name
                )));
            }
            send(&self.h, Command::UpsertProtocol(Box::new(p)))
                .await
                .map(drop)
        }
        .await;
        counted(&self.h, "Protocols.Create", r)
    }

    /// Update (admin): change some fields of a protocol (keys as in List; name cannot change;
    /// skin_target_c "none" removes the target). Errors: UnknownProtocol, InvalidArgument,
    /// OutOfRange.
    async fn update(
        &self,
        #[zbus(header)] hdr: zbus::message::Header<'_>,
        #[zbus(connection)] conn: &zbus::Connection,
        name: String,
        changes: HashMap<String, OwnedValue>,
    ) -> Result<(), Error> {
        if let Err(e) = self.access.check(conn, &hdr, "Protocols.Update").await {
            return counted(&self.h, "Protocols.Update", Err(e));
        }
        let r = async {
            v::known_protocol(&name, &self.h.protocols())?;
            let all = self.h.protocols();
            let existing = all
                .iter()
                .find(|p| p.name == name)
                .ok_or_else(|| Error::UnknownProtocol(format!("unknown protocol `{name}`")))?;
            let p = v::protocol_update(existing, &changes)?;
            send(&self.h, Command::UpsertProtocol(Box::new(p)))
                .await
                .map(drop)
        }
        .await;
        counted(&self.h, "Protocols.Update", r)
    }

    /// Delete (admin): delete a protocol (factory protocols cannot be deleted).
    /// Errors: UnknownProtocol, NotPermitted.
    async fn delete(
        &self,
        #[zbus(header)] hdr: zbus::message::Header<'_>,
        #[zbus(connection)] conn: &zbus::Connection,
        name: String,
    ) -> Result<(), Error> {
        if let Err(e) = self.access.check(conn, &hdr, "Protocols.Delete").await {
            return counted(&self.h, "Protocols.Delete", Err(e));
        }
        let r = async {
            v::known_protocol(&name, &self.h.protocols())?;
            send(&self.h, Command::DeleteProtocol { name })
                .await
                .map(drop)
        }
        .await;
        counted(&self.h, "Protocols.Delete", r)
    }

    /// Names: protocol names, in display order.
    #[zbus(property)]
    fn names(&self) -> Vec<String> {
        self.h.protocols().iter().map(|p| p.name.clone()).collect()
    }
}

/// `org.coldspray.ColdSpray1.Sessions`: the treatment log.
pub struct Sessions {
    pub(crate) h: ControlHandle,
    pub(crate) access: super::access::Access,
}

impl Sessions {
    fn store(&self) -> Result<Arc<dyn LogStore>, Error> {
        self.h.store.clone().ok_or_else(|| {
            Error::StoreUnavailable("the treatment log is not available on this unit".into())
        })
    }

    async fn query(
        &self,
        filter: &HashMap<String, OwnedValue>,
    ) -> Result<Vec<SessionRecord>, Error> {
        let q: SessionQuery = v::session_query(filter)?;
        let store = self.store()?;
        tokio::task::spawn_blocking(move || store.sessions(&q))
            .await
            .map_err(|e| Error::StoreError(e.to_string()))?
            .map_err(Error::from)
    }
}

#[interface(name = "org.coldspray.ColdSpray1.Sessions")]
impl Sessions {
    /// List: closed sessions matching filter, newest first. filter keys (all optional):
    /// from_unix_ms x, to_unix_ms x, protocol s, outcome s, limit u (1..10000, default 10000).
    /// Each session: id t, protocol s, goal s, cause s, started_unix_ms x, ended_unix_ms x,
    /// duration_s d, outcome s, completed b, late b, laser_to_spray_ms d, skin_target_c d,
    /// skin_floor_c d, peak_skin_c d, min_skin_c d, time_to_target_ms t, above_40_ms t,
    /// spray_ms t, ended_by_alarm s (absent keys: unknown). Errors: InvalidArgument,
    /// StoreUnavailable.
    async fn list(
        &self,
        #[zbus(header)] hdr: zbus::message::Header<'_>,
        #[zbus(connection)] conn: &zbus::Connection,
        filter: HashMap<String, OwnedValue>,
    ) -> Result<Vec<Dict>, Error> {
        if let Err(e) = self.access.check(conn, &hdr, "Sessions.List").await {
            return counted(&self.h, "Sessions.List", Err(e));
        }
        let running = self.h.snapshot().session.as_ref().map(|s| s.start.id);
        let r = self.query(&filter).await.map(|v| {
            v.iter()
                .map(|rec| convert::session_live(rec, running))
                .collect()
        });
        counted(&self.h, "Sessions.List", r)
    }

    /// Get: one session with its 10 Hz curve of (t_ms, mist_c, skin_c, reservoir_c,
    /// pressure_bar, pump, valve); a missing reading is NaN. Errors: UnknownSession,
    /// StoreUnavailable.
    #[zbus(out_args("session", "curve"))]
    async fn get(
        &self,
        #[zbus(header)] hdr: zbus::message::Header<'_>,
        #[zbus(connection)] conn: &zbus::Connection,
        id: u64,
    ) -> Result<(Dict, Vec<CurvePoint>), Error> {
        if let Err(e) = self.access.check(conn, &hdr, "Sessions.Get").await {
            return counted(&self.h, "Sessions.Get", Err(e));
        }
        let r = async {
            let store = self.store()?;
            let detail = tokio::task::spawn_blocking(move || store.session(id))
                .await
                .map_err(|e| Error::StoreError(e.to_string()))??;
            let d = detail.ok_or_else(|| Error::UnknownSession(format!("no session {id}")))?;
            let running = self.h.snapshot().session.as_ref().map(|s| s.start.id);
            Ok((
                convert::session_live(&d.record, running),
                d.samples.iter().map(convert::sample).collect(),
            ))
        }
        .await;
        counted(&self.h, "Sessions.Get", r)
    }

    /// Export: the sessions matching filter (as in List) as text, format "csv" (one line per
    /// session, header first) or "json" (an array of session records).
    /// Errors: InvalidArgument, StoreUnavailable.
    async fn export(
        &self,
        #[zbus(header)] hdr: zbus::message::Header<'_>,
        #[zbus(connection)] conn: &zbus::Connection,
        filter: HashMap<String, OwnedValue>,
        format: String,
    ) -> Result<String, Error> {
        if let Err(e) = self.access.check(conn, &hdr, "Sessions.Export").await {
            return counted(&self.h, "Sessions.Export", Err(e));
        }
        let r = async {
            if format != "csv" && format != "json" {
                return Err(Error::InvalidArgument(format!(
                    "unknown format `{}` (csv or json)",
                    format.chars().take(32).collect::<String>()
                )));
            }
            let records = self.query(&filter).await?;
            if format == "json" {
                serde_json::to_string(&records).map_err(|e| Error::StoreError(e.to_string()))
            } else {
                crate::store::sessions_csv(
                    &records,
                    self.h.snapshot().session.as_ref().map(|s| s.start.id),
                )
                .map_err(Error::from)
            }
        }
        .await;
        counted(&self.h, "Sessions.Export", r)
    }

    /// Stats: figures over the sessions matching filter: count t, completed t, late t,
    /// by_outcome a{st}, mean_laser_to_spray_ms d, max_laser_to_spray_ms d, mean_spray_s d,
    /// max_peak_skin_c d (absent when no data). Errors: InvalidArgument, StoreUnavailable.
    async fn stats(
        &self,
        #[zbus(header)] hdr: zbus::message::Header<'_>,
        #[zbus(connection)] conn: &zbus::Connection,
        filter: HashMap<String, OwnedValue>,
    ) -> Result<Dict, Error> {
        if let Err(e) = self.access.check(conn, &hdr, "Sessions.Stats").await {
            return counted(&self.h, "Sessions.Stats", Err(e));
        }
        let r = self
            .query(&filter)
            .await
            .map(|v| super::stats_dict(&Stats::of(&v)));
        counted(&self.h, "Sessions.Stats", r)
    }
}

/// `org.coldspray.ColdSpray1.Maintenance`: technician functions and service counters.
pub struct Maintenance {
    pub(crate) h: ControlHandle,
    pub(crate) access: super::access::Access,
}

#[interface(name = "org.coldspray.ColdSpray1.Maintenance")]
impl Maintenance {
    /// Enter: enter maintenance mode (from ready, precooling or fault). Errors: NotPermitted.
    async fn enter(
        &self,
        #[zbus(header)] hdr: zbus::message::Header<'_>,
        #[zbus(connection)] conn: &zbus::Connection,
    ) -> Result<(), Error> {
        if let Err(e) = self.access.check(conn, &hdr, "Maintenance.Enter").await {
            return counted(&self.h, "Maintenance.Enter", Err(e));
        }
        let r = send(&self.h, Command::EnterMaintenance).await.map(drop);
        counted(&self.h, "Maintenance.Enter", r)
    }

    /// Exit: leave maintenance mode (back to precooling). Errors: NotPermitted.
    async fn exit(
        &self,
        #[zbus(header)] hdr: zbus::message::Header<'_>,
        #[zbus(connection)] conn: &zbus::Connection,
    ) -> Result<(), Error> {
        if let Err(e) = self.access.check(conn, &hdr, "Maintenance.Exit").await {
            return counted(&self.h, "Maintenance.Exit", Err(e));
        }
        let r = send(&self.h, Command::ExitMaintenance).await.map(drop);
        counted(&self.h, "Maintenance.Exit", r)
    }

    /// Prime: run pump and valve to fill the line, seconds 1..60. Errors: OutOfRange,
    /// NotPermitted (not in maintenance), InterlockActive.
    async fn prime(
        &self,
        #[zbus(header)] hdr: zbus::message::Header<'_>,
        #[zbus(connection)] conn: &zbus::Connection,
        seconds: f64,
    ) -> Result<(), Error> {
        if let Err(e) = self.access.check(conn, &hdr, "Maintenance.Prime").await {
            return counted(&self.h, "Maintenance.Prime", Err(e));
        }
        let r = async {
            let seconds = v::range("seconds", seconds, v::PRIME_S)?;
            send(&self.h, Command::Prime { seconds }).await.map(drop)
        }
        .await;
        counted(&self.h, "Maintenance.Prime", r)
    }

    /// Drain: run the pump with the valve open to empty the reservoir, seconds 1..300.
    /// Errors: OutOfRange, NotPermitted, InterlockActive.
    async fn drain(
        &self,
        #[zbus(header)] hdr: zbus::message::Header<'_>,
        #[zbus(connection)] conn: &zbus::Connection,
        seconds: f64,
    ) -> Result<(), Error> {
        if let Err(e) = self.access.check(conn, &hdr, "Maintenance.Drain").await {
            return counted(&self.h, "Maintenance.Drain", Err(e));
        }
        let r = async {
            let seconds = v::range("seconds", seconds, v::DRAIN_S)?;
            send(&self.h, Command::Drain { seconds }).await.map(drop)
        }
        .await;
        counted(&self.h, "Maintenance.Drain", r)
    }

    /// TestOutput: switch one output on for 0.1..30 seconds (interlocks still apply). output:
    /// pump, spray_valve, chiller, chiller_fan, buzzer, lamp_ready, lamp_fault.
    /// Errors: InvalidArgument, OutOfRange, NotPermitted, InterlockActive.
    async fn test_output(
        &self,
        #[zbus(header)] hdr: zbus::message::Header<'_>,
        #[zbus(connection)] conn: &zbus::Connection,
        output: String,
        seconds: f64,
    ) -> Result<(), Error> {
        if let Err(e) = self
            .access
            .check(conn, &hdr, "Maintenance.TestOutput")
            .await
        {
            return counted(&self.h, "Maintenance.TestOutput", Err(e));
        }
        let r = async {
            let output = v::output(&output)?;
            let seconds = v::range("seconds", seconds, v::TEST_OUTPUT_S)?;
            send(&self.h, Command::TestOutput { output, seconds })
                .await
                .map(drop)
        }
        .await;
        counted(&self.h, "Maintenance.TestOutput", r)
    }

    /// SelfTest: run the self-test (from ready, precooling or maintenance); the result comes
    /// in SelfTestFinished and LastSelfTest. Errors: NotPermitted.
    async fn self_test(
        &self,
        #[zbus(header)] hdr: zbus::message::Header<'_>,
        #[zbus(connection)] conn: &zbus::Connection,
    ) -> Result<(), Error> {
        if let Err(e) = self.access.check(conn, &hdr, "Maintenance.SelfTest").await {
            return counted(&self.h, "Maintenance.SelfTest", Err(e));
        }
        let r = send(&self.h, Command::SelfTest).await.map(drop);
        counted(&self.h, "Maintenance.SelfTest", r)
    }

    /// SetCalibration: set a sensor's calibration offset (added to every raw reading), in the
    /// sensor's unit (degrees C, bar for pressure), -5..5. sensor: reservoir, mist, heatsink,
    /// skin, pressure. Saved in the unit's settings file and logged with the caller's uid.
    /// Errors: InvalidArgument, OutOfRange, NotSaved (in force now, but the settings file
    /// could not be written: lost at the next restart; alarm settings_not_saved).
    async fn set_calibration(
        &self,
        #[zbus(header)] hdr: zbus::message::Header<'_>,
        #[zbus(connection)] conn: &zbus::Connection,
        sensor: String,
        offset: f64,
    ) -> Result<(), Error> {
        if let Err(e) = self
            .access
            .check(conn, &hdr, "Maintenance.SetCalibration")
            .await
        {
            return counted(&self.h, "Maintenance.SetCalibration", Err(e));
        }
        let r = async {
            let sensor = v::sensor(&sensor)?;
            let offset = v::range("offset", offset, v::CALIBRATION)?;
            send_as(
                &self.h,
                conn,
                &hdr,
                Command::SetCalibration { sensor, offset },
            )
            .await
            .map(drop)
        }
        .await;
        counted(&self.h, "Maintenance.SetCalibration", r)
    }

    /// ConfirmSettings: after the alarm settings_lost (the unit's saved settings could not be
    /// read), confirm that the settings in force — Unit.Setpoint and the calibration offsets
    /// named in the alarm's message, corrected with SetSetpoint/SetCalibration first where
    /// needed — are right. Ends the alarm, allows treatment again and saves these settings.
    /// Logged with the caller's uid. Errors: NotSaved (confirmed, but the settings file could
    /// not be written).
    async fn confirm_settings(
        &self,
        #[zbus(header)] hdr: zbus::message::Header<'_>,
        #[zbus(connection)] conn: &zbus::Connection,
    ) -> Result<(), Error> {
        if let Err(e) = self
            .access
            .check(conn, &hdr, "Maintenance.ConfirmSettings")
            .await
        {
            return counted(&self.h, "Maintenance.ConfirmSettings", Err(e));
        }
        let r = send_as(&self.h, conn, &hdr, Command::ConfirmSettings)
            .await
            .map(drop);
        counted(&self.h, "Maintenance.ConfirmSettings", r)
    }

    /// RecordWaterChange: count a water change.
    async fn record_water_change(
        &self,
        #[zbus(header)] hdr: zbus::message::Header<'_>,
        #[zbus(connection)] conn: &zbus::Connection,
    ) -> Result<(), Error> {
        if let Err(e) = self
            .access
            .check(conn, &hdr, "Maintenance.RecordWaterChange")
            .await
        {
            return counted(&self.h, "Maintenance.RecordWaterChange", Err(e));
        }
        let r = send(&self.h, Command::RecordWaterChange).await.map(drop);
        counted(&self.h, "Maintenance.RecordWaterChange", r)
    }

    /// Calibration: the calibration offset in force per sensor (reservoir, mist, heatsink,
    /// skin, pressure), in the sensor's unit (degrees C, bar for pressure).
    #[zbus(property)]
    fn calibration(&self) -> HashMap<String, f64> {
        let s = self.h.snapshot();
        coldspray_hal::Sensor::ALL
            .iter()
            .map(|x| (x.name().to_string(), s.calibration[x.index()]))
            .collect()
    }

    /// Active: the unit is in maintenance mode.
    #[zbus(property)]
    fn active(&self) -> bool {
        self.h.snapshot().state == crate::state::UnitState::Maintenance
    }

    /// Activity: "" or prime, drain, self_test, test_output:OUTPUT.
    #[zbus(property)]
    fn activity(&self) -> String {
        convert::activity(&self.h.snapshot())
    }

    /// PumpHours: pump running time, hours.
    #[zbus(property)]
    fn pump_hours(&self) -> f64 {
        self.h.snapshot().counters.pump_seconds / 3600.0
    }

    /// ChillerHours: chiller running time, hours.
    #[zbus(property)]
    fn chiller_hours(&self) -> f64 {
        self.h.snapshot().counters.chiller_seconds / 3600.0
    }

    /// SessionCount: sessions started.
    #[zbus(property)]
    fn session_count(&self) -> u64 {
        self.h.snapshot().counters.sessions
    }

    /// LateSessionCount: sessions that started late after the laser.
    #[zbus(property)]
    fn late_session_count(&self) -> u64 {
        self.h.snapshot().counters.late_sessions
    }

    /// WaterChanges: water changes recorded.
    #[zbus(property)]
    fn water_changes(&self) -> u64 {
        self.h.snapshot().counters.water_changes
    }

    /// ChillerDuty: chiller duty over the last 10 minutes, 0..1.
    #[zbus(property)]
    fn chiller_duty(&self) -> f64 {
        self.h.snapshot().chiller_duty
    }

    /// LastSelfTest: never, passed or failed.
    #[zbus(property)]
    fn last_self_test(&self) -> String {
        convert::last_self_test(&self.h.snapshot()).to_string()
    }

    /// SelfTestFinished: a self-test finished (passed, one line per check).
    #[zbus(signal)]
    pub async fn self_test_finished(
        emitter: &SignalEmitter<'_>,
        passed: bool,
        report: Vec<String>,
    ) -> zbus::Result<()>;
}

/// `org.coldspray.ColdSpray1.Simulator`: drives the simulated unit (served only on the sim).
pub struct Simulator {
    pub(crate) h: ControlHandle,
    pub(crate) access: super::access::Access,
    pub(crate) sim: coldspray_hal::sim::SimUnit,
}

/// Fault kinds accepted by InjectFault and ClearFault.
pub const FAULT_KINDS: [&str; 12] = [
    "sensor_silent",
    "sensor_stuck",
    "sensor_out_of_range",
    "sensor_wrong_chip",
    "chiller_dead",
    "pump_dead",
    "nozzle_blocked",
    "leak",
    "water_low",
    "estop",
    "fan_dead",
    "outputs_lost",
];

/// Parses a fault kind and its sensor ("" for faults without one).
pub fn parse_fault(kind: &str, sensor: &str) -> Result<coldspray_hal::sim::Fault, Error> {
    use coldspray_hal::sim::Fault;
    let needs_sensor = kind.starts_with("sensor_");
    let s = if needs_sensor {
        Some(v::sensor(sensor)?)
    } else if sensor.is_empty() {
        None
    } else {
        return Err(Error::InvalidArgument(format!(
            "fault `{kind}` takes no sensor (pass \"\")"
        )));
    };
    Ok(match (kind, s) {
        ("sensor_silent", Some(s)) => Fault::SensorSilent(s),
        ("sensor_stuck", Some(s)) => Fault::SensorStuck(s),
        ("sensor_out_of_range", Some(s)) => Fault::SensorOutOfRange(s),
        ("sensor_wrong_chip", Some(s)) => Fault::SensorWrongChip(s),
        ("chiller_dead", None) => Fault::ChillerDead,
        ("pump_dead", None) => Fault::PumpDead,
        ("nozzle_blocked", None) => Fault::NozzleBlocked,
        ("leak", None) => Fault::Leak,
        ("water_low", None) => Fault::WaterLow,
        ("estop", None) => Fault::Estop,
        ("fan_dead", None) => Fault::FanDead,
        ("outputs_lost", None) => Fault::OutputsLost,
        _ => {
            return Err(Error::InvalidArgument(format!(
                "unknown fault `{}` (one of {})",
                kind.chars().take(64).collect::<String>(),
                FAULT_KINDS.join(", ")
            )))
        }
    })
}

#[interface(name = "org.coldspray.ColdSpray1.Simulator")]
impl Simulator {
    /// LaserPass: a laser pass now: emission for 0.1..60 seconds, relative fluence 0..5
    /// (1.0 = a typical fractional CO2 pass). Errors: OutOfRange.
    async fn laser_pass(
        &self,
        #[zbus(header)] hdr: zbus::message::Header<'_>,
        #[zbus(connection)] conn: &zbus::Connection,
        seconds: f64,
        fluence: f64,
    ) -> Result<(), Error> {
        if let Err(e) = self.access.check(conn, &hdr, "Simulator.LaserPass").await {
            return counted(&self.h, "Simulator.LaserPass", Err(e));
        }
        let r = (|| {
            let s = v::range("seconds", seconds, v::LASER_S)?;
            let f = v::range("fluence", fluence, v::FLUENCE)?;
            self.sim.laser_pass(Duration::from_secs_f64(s), f);
            Ok(())
        })();
        counted(&self.h, "Simulator.LaserPass", r)
    }

    /// InjectFault: inject a fault. kind: sensor_silent, sensor_stuck, sensor_out_of_range,
    /// sensor_wrong_chip (these need sensor), chiller_dead, pump_dead, nozzle_blocked, leak,
    /// water_low, estop, fan_dead, outputs_lost (sensor ""). Errors: InvalidArgument.
    async fn inject_fault(
        &self,
        #[zbus(header)] hdr: zbus::message::Header<'_>,
        #[zbus(connection)] conn: &zbus::Connection,
        kind: String,
        sensor: String,
    ) -> Result<(), Error> {
        if let Err(e) = self.access.check(conn, &hdr, "Simulator.InjectFault").await {
            return counted(&self.h, "Simulator.InjectFault", Err(e));
        }
        let r = parse_fault(&kind, &sensor).map(|f| self.sim.inject(f));
        counted(&self.h, "Simulator.InjectFault", r)
    }

    /// ClearFault: clear one injected fault (arguments as InjectFault).
    async fn clear_fault(
        &self,
        #[zbus(header)] hdr: zbus::message::Header<'_>,
        #[zbus(connection)] conn: &zbus::Connection,
        kind: String,
        sensor: String,
    ) -> Result<(), Error> {
        if let Err(e) = self.access.check(conn, &hdr, "Simulator.ClearFault").await {
            return counted(&self.h, "Simulator.ClearFault", Err(e));
        }
        let r = parse_fault(&kind, &sensor).map(|f| self.sim.clear(f));
        counted(&self.h, "Simulator.ClearFault", r)
    }

    /// ClearAllFaults: clear every injected fault.
    async fn clear_all_faults(
        &self,
        #[zbus(header)] hdr: zbus::message::Header<'_>,
        #[zbus(connection)] conn: &zbus::Connection,
    ) -> Result<(), Error> {
        if let Err(e) = self
            .access
            .check(conn, &hdr, "Simulator.ClearAllFaults")
            .await
        {
            return counted(&self.h, "Simulator.ClearAllFaults", Err(e));
        }
        self.sim.clear_all();
        counted(&self.h, "Simulator.ClearAllFaults", Ok(()))
    }

    /// SetEstop: press (true) or release (false) the E-stop.
    async fn set_estop(
        &self,
        #[zbus(header)] hdr: zbus::message::Header<'_>,
        #[zbus(connection)] conn: &zbus::Connection,
        pressed: bool,
    ) -> Result<(), Error> {
        if let Err(e) = self.access.check(conn, &hdr, "Simulator.SetEstop").await {
            return counted(&self.h, "Simulator.SetEstop", Err(e));
        }
        self.sim.set_estop(pressed);
        counted(&self.h, "Simulator.SetEstop", Ok(()))
    }

    /// SetTrigger: press (true) or release (false) the foot pedal.
    async fn set_trigger(
        &self,
        #[zbus(header)] hdr: zbus::message::Header<'_>,
        #[zbus(connection)] conn: &zbus::Connection,
        pressed: bool,
    ) -> Result<(), Error> {
        if let Err(e) = self.access.check(conn, &hdr, "Simulator.SetTrigger").await {
            return counted(&self.h, "Simulator.SetTrigger", Err(e));
        }
        self.sim.set_trigger(pressed);
        counted(&self.h, "Simulator.SetTrigger", Ok(()))
    }

    /// SetAmbient: room temperature, degrees C, -10..45. Errors: OutOfRange.
    async fn set_ambient(
        &self,
        #[zbus(header)] hdr: zbus::message::Header<'_>,
        #[zbus(connection)] conn: &zbus::Connection,
        celsius: f64,
    ) -> Result<(), Error> {
        if let Err(e) = self.access.check(conn, &hdr, "Simulator.SetAmbient").await {
            return counted(&self.h, "Simulator.SetAmbient", Err(e));
        }
        let r = v::range("celsius", celsius, v::AMBIENT_C).map(|c| self.sim.set_ambient(c));
        counted(&self.h, "Simulator.SetAmbient", r)
    }

    /// Refill: fill the reservoir with litres (0.1..5) of water at celsius (0.5..40).
    /// Errors: OutOfRange.
    async fn refill(
        &self,
        #[zbus(header)] hdr: zbus::message::Header<'_>,
        #[zbus(connection)] conn: &zbus::Connection,
        litres: f64,
        celsius: f64,
    ) -> Result<(), Error> {
        if let Err(e) = self.access.check(conn, &hdr, "Simulator.Refill").await {
            return counted(&self.h, "Simulator.Refill", Err(e));
        }
        let r = (|| {
            let l = v::range("litres", litres, v::REFILL_L)?;
            let c = v::range("celsius", celsius, v::REFILL_C)?;
            self.sim.refill(l, c);
            Ok(())
        })();
        counted(&self.h, "Simulator.Refill", r)
    }
}
