//! `org.coldspray.ColdSpray1.Unit`: the unit's state and treatment control (start, stop,
//! arm, acknowledge, setpoint), its properties and its signals. Doc comments here become the
//! comments of the introspection XML (`packaging/dbus/org.coldspray.ColdSpray1.Unit.xml`).

use super::access::Access;
use super::convert::{self, Dict};
use super::guard::{guarded_interface, Guard};
use super::validate as v;
use crate::api::{Command, Reply};
use crate::handle::ControlHandle;
use std::collections::HashMap;
use zbus::object_server::SignalEmitter;
use zbus::zvariant::OwnedValue;

/// `org.coldspray.ColdSpray1.Unit`: unit state and treatment control.
pub struct Unit {
    h: ControlHandle,
    guard: Guard,
}

impl Unit {
    /// Serves the daemon behind `h`, callers checked by `access`.
    pub fn new(h: ControlHandle, access: Access) -> Unit {
        Unit {
            guard: Guard::new(h.clone(), access, "Unit"),
            h,
        }
    }
}

guarded_interface! {
    #[interface(name = "org.coldspray.ColdSpray1.Unit")]
    impl Unit {
        methods {
            /// Start: start spraying now with a protocol. options (all optional): spray_s (d,
            /// 1..120 s), skin_target_c (d, 12..36 C), pump_percent (u, 20..100). Returns the new
            /// session id once its opening record is on disk. Errors: NotReady, InterlockActive,
            /// UnknownProtocol, OutOfRange, InvalidArgument, NotPermitted, SettingsUnconfirmed
            /// (alarm settings_lost: a technician must confirm the unit's settings first);
            /// NotRecorded when the session started and is cooling but its record could not be
            /// written (disk full): cooling is never withheld for that, the message names the
            /// session, and the log_write_failed alarm is already raised.
            #[zbus(out_args("session_id"))]
            async fn start(
                &self,
                hdr,
                conn,
                protocol: String,
                options: HashMap<String, OwnedValue>,
            ) -> [u64] {
                v::known_protocol(&protocol, &self.h.protocols())?;
                let options = v::start_options(&options)?;
                match self
                    .guard
                    .request(Command::StartSession { protocol, options })
                    .await?
                {
                    Reply::SessionStarted(id) => Ok(id),
                    Reply::Accepted => Ok(0),
                }
            }

            /// Stop: stop the running session. Errors: NotPermitted (nothing running); NotRecorded
            /// when it stopped but its closing record could not be written.
            async fn stop(&self, hdr, conn) -> [()] {
                self.guard.send(Command::StopSession).await
            }

            /// Arm: arm auto-start; the next end of laser emission starts a session with this
            /// protocol. Errors: UnknownProtocol, InvalidArgument, NotPermitted,
            /// SettingsUnconfirmed.
            async fn arm(&self, hdr, conn, protocol: String) -> [()] {
                v::known_protocol(&protocol, &self.h.protocols())?;
                self.guard.send(Command::Arm { protocol }).await
            }

            /// Disarm: disarm auto-start.
            async fn disarm(&self, hdr, conn) -> [()] {
                self.guard.send(Command::Disarm).await
            }

            /// Acknowledge: acknowledge one alarm by key (as in ActiveAlarms, e.g. "estop",
            /// "sensor_stale:skin"), or every alarm with "". Errors: InvalidArgument, UnknownAlarm.
            async fn acknowledge(&self, hdr, conn, key: String) -> [()] {
                let key = v::alarm_key(&key)?;
                self.guard.send(Command::Acknowledge { key }).await
            }

            /// AudioPause: silence the buzzer for the audio-pause time (120 s); a new alarm still
            /// sounds.
            async fn audio_pause(&self, hdr, conn) -> [()] {
                self.guard.send(Command::AudioPause).await
            }

            /// SetSetpoint: change the reservoir setpoint, degrees C, 2..15. It overrides the
            /// configuration's [thermostat] setpoint_c, also after a restart, as long as that
            /// configured value stays what it was when this was set; an administrator who edits it
            /// takes back control at the next start. The change is logged with the caller's uid.
            /// Errors: OutOfRange, NotSaved (in force now, but the settings file could not be
            /// written: lost at the next restart; alarm settings_not_saved).
            async fn set_setpoint(&self, hdr, conn, celsius: f64) -> [()] {
                let celsius = v::range("celsius", celsius, v::SETPOINT_C)?;
                self.guard
                    .send_as(conn, &hdr, Command::SetSetpoint { celsius })
                    .await
            }
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

        /// AlarmDetails: the alarms of ActiveAlarms, same order, each as a dictionary for a
        /// kiosk that translates: code s (the alarm kind, stable), key s (code, plus :SENSOR
        /// for a sensor alarm; what Acknowledge takes), sensor s (sensor alarms only), priority
        /// s, title s (the kind's fixed English sentence: translate it by code and sensor),
        /// message s (English, built from params), params a{sv} (the values in the message
        /// by name; docs/ALARMS.md lists them per code), raised_unix_ms x, condition_present
        /// b, acknowledged b.
        #[zbus(property)]
        fn alarm_details(&self) -> Vec<Dict> {
            self.h
                .snapshot()
                .alarms
                .iter()
                .map(convert::alarm_details)
                .collect()
        }

        /// CurrentSession: the running session (empty when none): id t, protocol s, goal s, cause s,
        /// started_unix_ms x, late b, laser_to_spray_ms d, elapsed_s d, remaining_s d (to the
        /// spray cap, the latest it can end), end_in_s d (when it is expected to end), end_basis s
        /// (what end_in_s rests on: cap = the spray cap; hold = the skin is at the target and the
        /// hold time counts down; estimate = the skin's fall rate to the target plus the hold),
        /// in_band b, skin_target_c d, skin_floor_c d, peak_skin_c d, min_skin_c d (absent when
        /// unknown).
        /// Treatment data: read only by the operator and admin groups (and root).
        #[zbus(property)]
        async fn current_session(
            &self,
            #[zbus(connection)] conn: &zbus::Connection,
            #[zbus(header)] hdr: Option<zbus::message::Header<'_>>,
        ) -> zbus::fdo::Result<Dict> {
            self.guard.may_read(conn, hdr.as_ref(), "CurrentSession").await?;
            Ok(convert::current_session(&self.h.snapshot()))
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

        /// AudioPauseLeft: seconds of audio pause left, 0 when not paused (announced when the
        /// pause starts and ends; count it down locally).
        #[zbus(property)]
        fn audio_pause_left(&self) -> f64 {
            convert::audio_pause_left_s(&self.h.snapshot())
        }

        /// NotReady: why a Start would not spray at once, as stable codes (empty when Ready):
        /// the state when it is not ready (starting, precooling, spraying, fault, maintenance,
        /// stopping), settings_unconfirmed, estop and water_low for the inputs, and
        /// interlock:KEY for each interlock alarm (KEY as in ActiveAlarms).
        #[zbus(property)]
        fn not_ready(&self) -> Vec<String> {
            self.h.snapshot().not_ready.clone()
        }

        /// ReadyIn: estimated seconds until ready while precooling: the reservoir's cooling over
        /// the last four minutes carried on, its slowing down included (in the first four
        /// minutes the last rate, which errs short); NaN when unknown (not cooling yet) or not
        /// precooling.
        #[zbus(property)]
        fn ready_in(&self) -> f64 {
            self.h.snapshot().ready_in_s.unwrap_or(f64::NAN)
        }

        /// WaterLow: the reservoir's float switch reports low water (the water_low interlock).
        #[zbus(property)]
        fn water_low(&self) -> bool {
            self.h.snapshot().water_low
        }

        /// PedalProtocol: the protocol a press of the foot pedal starts: the armed one, else the
        /// unit's default protocol.
        #[zbus(property)]
        fn pedal_protocol(&self) -> String {
            self.h.snapshot().pedal_protocol.clone()
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

        /// Features: feature flags of this unit: backend:NAME, sim, skin_sensor, log_store, and
        /// metrics while /metrics is served (the daemon starts it before it takes its bus name).
        #[zbus(property(emits_changed_signal = "const"))]
        fn features(&self) -> Vec<String> {
            let mut f = self.h.info.features.clone();
            if self
                .h
                .telemetry
                .metrics_serving
                .load(std::sync::atomic::Ordering::Relaxed)
            {
                f.push("metrics".into());
            }
            f
        }

        /// SessionStarted: a session started (id, protocol, cause command|trigger|auto_start,
        /// late).
        #[zbus(signal)]
        pub async fn session_started(
            emitter: &SignalEmitter<'_>, id: u64, protocol: &str, cause: &str, late: bool,
        ) -> zbus::Result<()>;

        /// NotRecorded: something happened but could not be written to the treatment log (what,
        /// session_id or 0, reason); sent just before that event's own signal (SessionStarted,
        /// SessionEnded, ...), so a session started by the laser is known to be unrecorded too.
        /// The log_write_failed alarm is raised with it.
        #[zbus(signal)]
        pub async fn not_recorded(
            emitter: &SignalEmitter<'_>, what: &str, session_id: u64, reason: &str,
        ) -> zbus::Result<()>;

        /// SessionEnded: a session ended (id, outcome, completed); details via Sessions.Get.
        #[zbus(signal)]
        pub async fn session_ended(
            emitter: &SignalEmitter<'_>, id: u64, outcome: &str, completed: bool,
        ) -> zbus::Result<()>;

        /// AlarmRaised: an alarm was raised (key, priority, message).
        #[zbus(signal)]
        pub async fn alarm_raised(
            emitter: &SignalEmitter<'_>, key: &str, priority: &str, message: &str,
        ) -> zbus::Result<()>;

        /// AlarmCleared: an alarm is gone (acknowledged if latching, and its cause cleared).
        #[zbus(signal)]
        pub async fn alarm_cleared(emitter: &SignalEmitter<'_>, key: &str) -> zbus::Result<()>;

        /// StateChanged: the unit changed state (from, to, reason for people, code: the
        /// reason as a stable code: session_started, session_ended, maintenance,
        /// maintenance_ended, maintenance_ended_with_faults, self_test_passed, fault_cleared,
        /// reservoir_at_setpoint, reservoir_warmed, shutdown, alarm:KEY).
        #[zbus(signal, name = "StateChanged")]
        pub async fn state_transition(
            emitter: &SignalEmitter<'_>, from: &str, to: &str, reason: &str, code: &str,
        ) -> zbus::Result<()>;
    }
}
