//! Typed client proxies of the five ColdSpray interfaces, for `coldsprayctl`, the end-to-end
//! tests and the benchmarks: one Rust method per D-Bus member, so a client never spells an
//! interface, a member or a signature by hand. The dictionaries of the API come back as the
//! structs [`ProtocolInfo`], [`SessionInfo`] and [`SessionStats`]; where a caller wants every
//! key as it came (JSON output), the `*_dict` twins return the raw [`Dict`].
//!
//! Properties are read from the service on every call when the proxy is built with
//! [`uncached`] (a command line and a benchmark want the value now, not a cached one).

use super::convert::{AlarmTuple, CurvePoint, Dict};
pub use super::wire::SessionInfo;
use std::collections::HashMap;
use zbus::zvariant::{DeserializeDict, Type};

/// A protocol as `Protocols.List` and `Protocols.Get` describe it.
#[derive(Debug, Clone, PartialEq, DeserializeDict, Type)]
#[zvariant(signature = "a{sv}", crate = "zbus::zvariant")]
pub struct ProtocolInfo {
    /// Name (the key of the protocol).
    pub name: String,
    /// Title shown to people.
    pub title: String,
    /// `protect` or `prepare`.
    pub goal: String,
    /// Spray time, s.
    pub spray_s: f64,
    /// `continuous` or `pulsed`.
    pub pattern: String,
    /// Valve open time of a pulse, ms (pulsed only).
    pub on_ms: Option<u32>,
    /// Valve closed time of a pulse, ms (pulsed only).
    pub off_ms: Option<u32>,
    /// Pump drive, %.
    pub pump_percent: u32,
    /// Skin target, °C (none: sprays its whole time).
    pub skin_target_c: Option<f64>,
    /// Skin floor, °C.
    pub skin_floor_c: f64,
    /// Band around the target, °C.
    pub band_c: f64,
    /// Time held in the band, s.
    pub hold_s: f64,
}

/// Figures over sessions as `Sessions.Stats` gives them.
#[derive(Debug, Clone, PartialEq, DeserializeDict, Type)]
#[zvariant(signature = "a{sv}", crate = "zbus::zvariant")]
pub struct SessionStats {
    /// Sessions counted.
    pub count: u64,
    /// Of those, completed.
    pub completed: u64,
    /// Of those, late.
    pub late: u64,
    /// Count by outcome name.
    pub by_outcome: HashMap<String, u64>,
    /// Mean laser-to-spray delay, ms.
    pub mean_laser_to_spray_ms: Option<f64>,
    /// Longest laser-to-spray delay, ms.
    pub max_laser_to_spray_ms: Option<f64>,
    /// Mean spray time, s.
    pub mean_spray_s: Option<f64>,
    /// Warmest skin reading of any session, °C.
    pub max_peak_skin_c: Option<f64>,
}

/// The running session as `Unit.CurrentSession` describes it (every key absent when none).
#[derive(Debug, Clone, Default, PartialEq, DeserializeDict, Type)]
#[zvariant(signature = "a{sv}", crate = "zbus::zvariant")]
pub struct LiveSession {
    /// Session id.
    pub id: Option<u64>,
    /// Protocol name.
    pub protocol: Option<String>,
    /// `protect` or `prepare`.
    pub goal: Option<String>,
    /// Seconds since it started.
    pub elapsed_s: Option<f64>,
    /// Seconds left to the spray cap (the latest it can end).
    pub remaining_s: Option<f64>,
    /// Seconds until it is expected to end.
    pub end_in_s: Option<f64>,
    /// What `end_in_s` rests on: `cap`, `hold` or `estimate`.
    pub end_basis: Option<String>,
    /// Skin target, °C.
    pub skin_target_c: Option<f64>,
    /// Skin floor, °C.
    pub skin_floor_c: Option<f64>,
    /// Whether it started late after the laser.
    pub late: Option<bool>,
    /// Whether the skin is in the target band.
    pub in_band: Option<bool>,
}

/// The properties of `Unit` as one `GetAll` returns them (absent: not served).
#[derive(Debug, Clone, Default, PartialEq, DeserializeDict, Type)]
#[zvariant(
    signature = "a{sv}",
    rename_all = "PascalCase",
    crate = "zbus::zvariant"
)]
pub struct UnitProperties {
    /// Unit state name.
    pub state: Option<String>,
    /// Whether a Start would spray at once.
    pub ready: Option<bool>,
    /// Valid temperatures by sensor, °C.
    pub temperatures: Option<HashMap<String, f64>>,
    /// Line pressure, bar (NaN: no valid reading).
    pub pressure: Option<f64>,
    /// Flow, L/min.
    pub flow_rate: Option<f64>,
    /// Reservoir setpoint, °C.
    pub setpoint: Option<f64>,
    /// Active or latched alarms.
    pub active_alarms: Option<Vec<AlarmTuple>>,
    /// The same alarms as dictionaries (code, key, sensor, title, message, ...).
    pub alarm_details: Option<Vec<Dict>>,
    /// The running session.
    pub current_session: Option<LiveSession>,
    /// Protocol armed for auto-start, "" when disarmed.
    pub armed: Option<String>,
    /// The laser is emitting.
    pub laser_on: Option<bool>,
    /// The buzzer is paused.
    pub audio_paused: Option<bool>,
    /// Seconds of audio pause left.
    pub audio_pause_left: Option<f64>,
    /// Why a Start would not spray at once (stable codes).
    pub not_ready: Option<Vec<String>>,
    /// Estimated seconds until ready (NaN: unknown).
    pub ready_in: Option<f64>,
    /// The float switch reports low water.
    pub water_low: Option<bool>,
    /// The protocol the foot pedal starts.
    pub pedal_protocol: Option<String>,
    /// Daemon version.
    pub version: Option<String>,
    /// Hardware backend.
    pub backend: Option<String>,
}

/// The properties of `Maintenance` as one `GetAll` returns them (absent: not served).
#[derive(Debug, Clone, Default, PartialEq, DeserializeDict, Type)]
#[zvariant(
    signature = "a{sv}",
    rename_all = "PascalCase",
    crate = "zbus::zvariant"
)]
pub struct MaintenanceProperties {
    /// The unit is in maintenance mode.
    pub active: Option<bool>,
    /// The maintenance activity, "" when none.
    pub activity: Option<String>,
    /// Pump running time, h.
    pub pump_hours: Option<f64>,
    /// Chiller running time, h.
    pub chiller_hours: Option<f64>,
    /// Sessions started.
    pub session_count: Option<u64>,
    /// Sessions that started late.
    pub late_session_count: Option<u64>,
    /// Water changes recorded.
    pub water_changes: Option<u64>,
    /// Chiller duty over the last 10 minutes, 0..1.
    pub chiller_duty: Option<f64>,
    /// `never`, `passed` or `failed`.
    pub last_self_test: Option<String>,
    /// The last self-test's report, one line per check.
    pub last_self_test_report: Option<Vec<String>>,
}

/// Builds a proxy that reads properties from the service on every call.
pub async fn uncached<'a, P>(conn: &zbus::Connection) -> zbus::Result<P>
where
    P: From<zbus::Proxy<'a>> + zbus::proxy::Defaults,
{
    zbus::proxy::Builder::<P>::new(conn)
        .cache_properties(zbus::proxy::CacheProperties::No)
        .build()
        .await
}

/// `org.coldspray.ColdSpray1.Unit`: unit state and treatment control.
#[zbus::proxy(
    interface = "org.coldspray.ColdSpray1.Unit",
    default_service = "org.coldspray.ColdSpray1",
    default_path = "/org/coldspray/ColdSpray1",
    gen_blocking = false
)]
pub trait Unit {
    /// Starts a session now; returns its id.
    fn start(&self, protocol: &str, options: Dict) -> zbus::Result<u64>;
    /// Stops the running session.
    fn stop(&self) -> zbus::Result<()>;
    /// Arms auto-start with a protocol.
    fn arm(&self, protocol: &str) -> zbus::Result<()>;
    /// Disarms auto-start.
    fn disarm(&self) -> zbus::Result<()>;
    /// Acknowledges one alarm by key, or all with "".
    fn acknowledge(&self, key: &str) -> zbus::Result<()>;
    /// Pauses the buzzer.
    fn audio_pause(&self) -> zbus::Result<()>;
    /// Changes the reservoir setpoint, °C.
    fn set_setpoint(&self, celsius: f64) -> zbus::Result<()>;

    /// Unit state name.
    #[zbus(property)]
    fn state(&self) -> zbus::Result<String>;
    /// Whether a Start would spray at once.
    #[zbus(property)]
    fn ready(&self) -> zbus::Result<bool>;
    /// Valid temperatures by sensor, °C.
    #[zbus(property)]
    fn temperatures(&self) -> zbus::Result<HashMap<String, f64>>;
    /// Line pressure, bar (NaN: no valid reading).
    #[zbus(property)]
    fn pressure(&self) -> zbus::Result<f64>;
    /// Flow, L/min.
    #[zbus(property)]
    fn flow_rate(&self) -> zbus::Result<f64>;
    /// Reservoir setpoint, °C.
    #[zbus(property)]
    fn setpoint(&self) -> zbus::Result<f64>;
    /// Active or latched alarms.
    #[zbus(property)]
    fn active_alarms(&self) -> zbus::Result<Vec<AlarmTuple>>;
    /// The same alarms with a stable code, the sensor and the English title apart.
    #[zbus(property)]
    fn alarm_details(&self) -> zbus::Result<Vec<Dict>>;
    /// The running session (empty when none).
    #[zbus(property)]
    fn current_session(&self) -> zbus::Result<Dict>;
    /// Protocol armed for auto-start, "" when disarmed.
    #[zbus(property)]
    fn armed(&self) -> zbus::Result<String>;
    /// Output levels by output name.
    #[zbus(property)]
    fn outputs(&self) -> zbus::Result<HashMap<String, bool>>;
    /// The laser is emitting.
    #[zbus(property)]
    fn laser_on(&self) -> zbus::Result<bool>;
    /// The buzzer is paused.
    #[zbus(property)]
    fn audio_paused(&self) -> zbus::Result<bool>;
    /// Seconds of audio pause left, 0 when not paused.
    #[zbus(property)]
    fn audio_pause_left(&self) -> zbus::Result<f64>;
    /// Why a Start would not spray at once, as stable codes (empty when ready).
    #[zbus(property)]
    fn not_ready(&self) -> zbus::Result<Vec<String>>;
    /// Estimated seconds until ready while precooling (NaN: unknown).
    #[zbus(property)]
    fn ready_in(&self) -> zbus::Result<f64>;
    /// The float switch reports low water.
    #[zbus(property)]
    fn water_low(&self) -> zbus::Result<bool>;
    /// The protocol a press of the foot pedal starts.
    #[zbus(property)]
    fn pedal_protocol(&self) -> zbus::Result<String>;
    /// Daemon version.
    #[zbus(property)]
    fn version(&self) -> zbus::Result<String>;
    /// Hardware backend.
    #[zbus(property)]
    fn backend(&self) -> zbus::Result<String>;
    /// Feature flags.
    #[zbus(property)]
    fn features(&self) -> zbus::Result<Vec<String>>;

    /// A session started (id, protocol, cause, late).
    #[zbus(signal)]
    fn session_started(&self, id: u64, protocol: &str, cause: &str, late: bool)
        -> zbus::Result<()>;
    /// Something could not be written to the treatment log.
    #[zbus(signal)]
    fn not_recorded(&self, what: &str, session_id: u64, reason: &str) -> zbus::Result<()>;
    /// A session ended (id, outcome, completed).
    #[zbus(signal)]
    fn session_ended(&self, id: u64, outcome: &str, completed: bool) -> zbus::Result<()>;
    /// An alarm was raised (key, priority, message).
    #[zbus(signal)]
    fn alarm_raised(&self, key: &str, priority: &str, message: &str) -> zbus::Result<()>;
    /// An alarm is gone.
    #[zbus(signal)]
    fn alarm_cleared(&self, key: &str) -> zbus::Result<()>;
    /// The unit changed state (from, to, reason, code: the reason as a stable code).
    #[zbus(signal, name = "StateChanged")]
    fn state_transition(&self, from: &str, to: &str, reason: &str, code: &str) -> zbus::Result<()>;
}

/// `org.coldspray.ColdSpray1.Protocols`: spray protocols.
#[zbus::proxy(
    interface = "org.coldspray.ColdSpray1.Protocols",
    default_service = "org.coldspray.ColdSpray1",
    default_path = "/org/coldspray/ColdSpray1",
    gen_blocking = false
)]
pub trait Protocols {
    /// Every protocol.
    fn list(&self) -> zbus::Result<Vec<ProtocolInfo>>;
    /// Every protocol, each with all its keys as sent.
    #[zbus(name = "List")]
    fn list_dicts(&self) -> zbus::Result<Vec<Dict>>;
    /// One protocol by name.
    fn get(&self, name: &str) -> zbus::Result<ProtocolInfo>;
    /// One protocol by name, with all its keys as sent.
    #[zbus(name = "Get")]
    fn get_dict(&self, name: &str) -> zbus::Result<Dict>;
    /// Adds a protocol (admin).
    fn create(&self, protocol: Dict) -> zbus::Result<()>;
    /// Changes fields of a protocol (admin).
    fn update(&self, name: &str, changes: Dict) -> zbus::Result<()>;
    /// Deletes a protocol (admin).
    fn delete(&self, name: &str) -> zbus::Result<()>;
    /// Protocol names, in display order.
    #[zbus(property)]
    fn names(&self) -> zbus::Result<Vec<String>>;
}

/// `org.coldspray.ColdSpray1.Sessions`: the treatment log.
#[zbus::proxy(
    interface = "org.coldspray.ColdSpray1.Sessions",
    default_service = "org.coldspray.ColdSpray1",
    default_path = "/org/coldspray/ColdSpray1",
    gen_blocking = false
)]
pub trait Sessions {
    /// Sessions matching the filter, newest first.
    fn list(&self, filter: Dict) -> zbus::Result<Vec<SessionInfo>>;
    /// Sessions matching the filter, each with all its keys as sent.
    #[zbus(name = "List")]
    fn list_dicts(&self, filter: Dict) -> zbus::Result<Vec<Dict>>;
    /// One session and its 10 Hz curve.
    fn get(&self, id: u64) -> zbus::Result<(SessionInfo, Vec<CurvePoint>)>;
    /// One session, with all its keys as sent, and its curve.
    #[zbus(name = "Get")]
    fn get_dict(&self, id: u64) -> zbus::Result<(Dict, Vec<CurvePoint>)>;
    /// Sessions matching the filter as `csv` or `json` text.
    fn export(&self, filter: Dict, format: &str) -> zbus::Result<String>;
    /// Figures over the sessions matching the filter.
    fn stats(&self, filter: Dict) -> zbus::Result<SessionStats>;
    /// The running (or last) session's curve from index `since`: (session_id, running,
    /// next index, samples).
    fn live_curve(&self, since: u32) -> zbus::Result<(u64, bool, u32, Vec<CurvePoint>)>;
    /// The figures, with all their keys as sent.
    #[zbus(name = "Stats")]
    fn stats_dict(&self, filter: Dict) -> zbus::Result<Dict>;
}

/// `org.coldspray.ColdSpray1.Maintenance`: technician functions and service counters.
#[zbus::proxy(
    interface = "org.coldspray.ColdSpray1.Maintenance",
    default_service = "org.coldspray.ColdSpray1",
    default_path = "/org/coldspray/ColdSpray1",
    gen_blocking = false
)]
pub trait Maintenance {
    /// Enters maintenance mode.
    fn enter(&self) -> zbus::Result<()>;
    /// Leaves maintenance mode.
    fn exit(&self) -> zbus::Result<()>;
    /// Primes the line for `seconds`.
    fn prime(&self, seconds: f64) -> zbus::Result<()>;
    /// Drains the reservoir for `seconds`.
    fn drain(&self, seconds: f64) -> zbus::Result<()>;
    /// Switches one output on for `seconds`.
    fn test_output(&self, output: &str, seconds: f64) -> zbus::Result<()>;
    /// Runs the self-test.
    fn self_test(&self) -> zbus::Result<()>;
    /// Sets a sensor's calibration offset.
    fn set_calibration(&self, sensor: &str, offset: f64) -> zbus::Result<()>;
    /// Confirms the settings in force after `settings_lost`.
    fn confirm_settings(&self) -> zbus::Result<()>;
    /// Counts a water change.
    fn record_water_change(&self) -> zbus::Result<()>;

    /// Calibration offsets by sensor.
    #[zbus(property)]
    fn calibration(&self) -> zbus::Result<HashMap<String, f64>>;
    /// The unit is in maintenance mode.
    #[zbus(property)]
    fn active(&self) -> zbus::Result<bool>;
    /// The maintenance activity, "" when none.
    #[zbus(property)]
    fn activity(&self) -> zbus::Result<String>;
    /// Pump running time, h.
    #[zbus(property)]
    fn pump_hours(&self) -> zbus::Result<f64>;
    /// Chiller running time, h.
    #[zbus(property)]
    fn chiller_hours(&self) -> zbus::Result<f64>;
    /// Sessions started.
    #[zbus(property)]
    fn session_count(&self) -> zbus::Result<u64>;
    /// Sessions that started late.
    #[zbus(property)]
    fn late_session_count(&self) -> zbus::Result<u64>;
    /// Water changes recorded.
    #[zbus(property)]
    fn water_changes(&self) -> zbus::Result<u64>;
    /// Chiller duty over the last 10 minutes, 0..1.
    #[zbus(property)]
    fn chiller_duty(&self) -> zbus::Result<f64>;
    /// `never`, `passed` or `failed`.
    #[zbus(property)]
    fn last_self_test(&self) -> zbus::Result<String>;
    /// The last self-test's report, one line per check.
    #[zbus(property)]
    fn last_self_test_report(&self) -> zbus::Result<Vec<String>>;

    /// A self-test finished (passed, one line per check).
    #[zbus(signal)]
    fn self_test_finished(&self, passed: bool, report: Vec<String>) -> zbus::Result<()>;
}

/// `org.coldspray.ColdSpray1.Simulator`: drives the simulated unit.
#[zbus::proxy(
    interface = "org.coldspray.ColdSpray1.Simulator",
    default_service = "org.coldspray.ColdSpray1",
    default_path = "/org/coldspray/ColdSpray1",
    gen_blocking = false
)]
pub trait Simulator {
    /// A laser pass of `seconds` at relative `fluence`.
    fn laser_pass(&self, seconds: f64, fluence: f64) -> zbus::Result<()>;
    /// Injects a fault ("" sensor for faults without one).
    fn inject_fault(&self, kind: &str, sensor: &str) -> zbus::Result<()>;
    /// Clears one injected fault.
    fn clear_fault(&self, kind: &str, sensor: &str) -> zbus::Result<()>;
    /// Clears every injected fault.
    fn clear_all_faults(&self) -> zbus::Result<()>;
    /// Presses or releases the E-stop.
    fn set_estop(&self, pressed: bool) -> zbus::Result<()>;
    /// Presses or releases the foot pedal.
    fn set_trigger(&self, pressed: bool) -> zbus::Result<()>;
    /// Room temperature, °C.
    fn set_ambient(&self, celsius: f64) -> zbus::Result<()>;
    /// Refills the reservoir with `litres` of water at `celsius`.
    fn refill(&self, litres: f64, celsius: f64) -> zbus::Result<()>;
}
