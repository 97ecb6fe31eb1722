//! `org.coldspray.ColdSpray1.Maintenance`: technician functions (maintenance mode, prime,
//! drain, output test, self-test, calibration, settings confirmation) and service counters.
//! Doc comments here become the comments of the introspection XML.

use super::access::Access;
use super::convert;
use super::guard::{guarded_interface, Guard};
use super::validate as v;
use crate::api::Command;
use crate::handle::ControlHandle;
use std::collections::HashMap;
use zbus::object_server::SignalEmitter;

/// `org.coldspray.ColdSpray1.Maintenance`: technician functions and service counters.
pub struct Maintenance {
    h: ControlHandle,
    guard: Guard,
}

impl Maintenance {
    /// Serves the daemon behind `h`, callers checked by `access`.
    pub fn new(h: ControlHandle, access: Access) -> Maintenance {
        Maintenance {
            guard: Guard::new(h.clone(), access, "Maintenance"),
            h,
        }
    }
}

guarded_interface! {
    #[interface(name = "org.coldspray.ColdSpray1.Maintenance")]
    impl Maintenance {
        methods {
            /// Enter: enter maintenance mode (from ready, precooling or fault). Errors:
            /// NotPermitted.
            async fn enter(&self, hdr, conn) -> [()] {
                self.guard.send(Command::EnterMaintenance).await
            }

            /// Exit: leave maintenance mode (back to precooling). Errors: NotPermitted.
            async fn exit(&self, hdr, conn) -> [()] {
                self.guard.send(Command::ExitMaintenance).await
            }

            /// Prime: run pump and valve to fill the line, seconds 1..60. Errors: OutOfRange,
            /// NotPermitted (not in maintenance), InterlockActive.
            async fn prime(&self, hdr, conn, seconds: f64) -> [()] {
                let seconds = v::range("seconds", seconds, v::PRIME_S)?;
                self.guard.send(Command::Prime { seconds }).await
            }

            /// Drain: run the pump with the valve open to empty the reservoir, seconds 1..300.
            /// Errors: OutOfRange, NotPermitted, InterlockActive.
            async fn drain(&self, hdr, conn, seconds: f64) -> [()] {
                let seconds = v::range("seconds", seconds, v::DRAIN_S)?;
                self.guard.send(Command::Drain { seconds }).await
            }

            /// TestOutput: switch one output on for 0.1..30 seconds (interlocks still apply).
            /// output: pump, spray_valve, chiller, chiller_fan, buzzer, lamp_ready, lamp_fault.
            /// Errors: InvalidArgument, OutOfRange, NotPermitted, InterlockActive.
            async fn test_output(&self, hdr, conn, output: String, seconds: f64) -> [()] {
                let output = v::output(&output)?;
                let seconds = v::range("seconds", seconds, v::TEST_OUTPUT_S)?;
                self.guard
                    .send(Command::TestOutput { output, seconds })
                    .await
            }

            /// SelfTest: run the self-test (from ready, precooling or maintenance); the result
            /// comes in SelfTestFinished and LastSelfTest. Errors: NotPermitted.
            async fn self_test(&self, hdr, conn) -> [()] {
                self.guard.send(Command::SelfTest).await
            }

            /// SetCalibration: set a sensor's calibration offset (added to every raw reading), in
            /// the sensor's unit (degrees C, bar for pressure), -5..5. sensor: reservoir, mist,
            /// heatsink, skin, pressure. Saved in the unit's settings file and logged with the
            /// caller's uid. Errors: InvalidArgument, OutOfRange, NotSaved (in force now, but the
            /// settings file could not be written: lost at the next restart; alarm
            /// settings_not_saved).
            async fn set_calibration(&self, hdr, conn, sensor: String, offset: f64) -> [()] {
                let sensor = v::sensor(&sensor)?;
                let offset = v::range("offset", offset, v::CALIBRATION)?;
                self.guard
                    .send_as(conn, &hdr, Command::SetCalibration { sensor, offset })
                    .await
            }

            /// ConfirmSettings: after the alarm settings_lost (the unit's saved settings could not
            /// be read), confirm that the settings in force — Unit.Setpoint and the calibration
            /// offsets named in the alarm's message, corrected with SetSetpoint/SetCalibration
            /// first where needed — are right. Ends the alarm, allows treatment again and saves
            /// these settings. Logged with the caller's uid. Errors: NotSaved (confirmed, but the
            /// settings file could not be written).
            async fn confirm_settings(&self, hdr, conn) -> [()] {
                self.guard.send_as(conn, &hdr, Command::ConfirmSettings).await
            }

            /// RecordWaterChange: count a water change.
            async fn record_water_change(&self, hdr, conn) -> [()] {
                self.guard.send(Command::RecordWaterChange).await
            }
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
            self.h.snapshot().state == crate::model::state::UnitState::Maintenance
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

        /// LastSelfTestReport: the last self-test's report, one line per check, as sent in
        /// SelfTestFinished (empty before the first).
        #[zbus(property)]
        fn last_self_test_report(&self) -> Vec<String> {
            self.h.snapshot().last_self_test_report.clone()
        }

        /// SelfTestFinished: a self-test finished (passed, one line per check).
        #[zbus(signal)]
        pub async fn self_test_finished(
            emitter: &SignalEmitter<'_>,
            passed: bool,
            report: Vec<String>,
        ) -> zbus::Result<()>;
    }
}
