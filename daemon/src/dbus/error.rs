//! The typed D-Bus errors of the ColdSpray API (`org.coldspray.ColdSpray1.Error.*`).

use crate::api::CommandError;

/// Prefix of every error name the service returns.
pub const ERROR_PREFIX: &str = "org.coldspray.ColdSpray1.Error";

/// An error returned by a ColdSpray D-Bus method. The D-Bus error name is
/// `org.coldspray.ColdSpray1.Error.<Variant>`; the string is the human-readable message.
#[derive(Debug, zbus::DBusError)]
#[zbus(prefix = "org.coldspray.ColdSpray1.Error")]
pub enum Error {
    /// A transport error inside zbus (never sent on purpose).
    #[zbus(error)]
    ZBus(zbus::Error),
    /// The unit is not ready to spray (precooling, fault, starting...).
    NotReady(String),
    /// An interlock is active; the message names it (`estop`, `water_low`, ...).
    InterlockActive(String),
    /// No protocol by that name.
    UnknownProtocol(String),
    /// A number outside its allowed range, or not finite; the message gives the range.
    OutOfRange(String),
    /// Any other bad argument: unknown option key, wrong type, bad name, empty or oversized text.
    InvalidArgument(String),
    /// The request is not allowed in the unit's current state.
    NotPermitted(String),
    /// The caller may not do this.
    PermissionDenied(String),
    /// The treatment log is not available on this unit.
    StoreUnavailable(String),
    /// No active alarm with that key.
    UnknownAlarm(String),
    /// No session with that id.
    UnknownSession(String),
    /// The daemon is shutting down.
    ShuttingDown(String),
    /// The treatment log failed to answer.
    StoreError(String),
    /// The unit's saved settings could not be read: no treatment until a technician checks
    /// the settings in force and calls `Maintenance.ConfirmSettings`.
    SettingsUnconfirmed(String),
    /// The change is in force but could not be saved (settings file unwritable): it is lost
    /// at the next restart; the `settings_not_saved` alarm is raised.
    NotSaved(String),
    /// The command was carried out (a session started this way is cooling), but its record
    /// could not be written to the treatment log; the `log_write_failed` alarm is raised.
    NotRecorded(String),
}

impl Error {
    /// The short error name (the last component of the D-Bus error name).
    pub fn short_name(&self) -> &'static str {
        match self {
            Error::ZBus(_) => "ZBus",
            Error::NotReady(_) => "NotReady",
            Error::InterlockActive(_) => "InterlockActive",
            Error::UnknownProtocol(_) => "UnknownProtocol",
            Error::OutOfRange(_) => "OutOfRange",
            Error::InvalidArgument(_) => "InvalidArgument",
            Error::NotPermitted(_) => "NotPermitted",
            Error::PermissionDenied(_) => "PermissionDenied",
            Error::StoreUnavailable(_) => "StoreUnavailable",
            Error::UnknownAlarm(_) => "UnknownAlarm",
            Error::UnknownSession(_) => "UnknownSession",
            Error::ShuttingDown(_) => "ShuttingDown",
            Error::StoreError(_) => "StoreError",
            Error::SettingsUnconfirmed(_) => "SettingsUnconfirmed",
            Error::NotSaved(_) => "NotSaved",
            Error::NotRecorded(_) => "NotRecorded",
        }
    }
}

impl From<CommandError> for Error {
    fn from(e: CommandError) -> Self {
        let msg = e.to_string();
        match e {
            CommandError::NotReady { .. } => Error::NotReady(msg),
            CommandError::InterlockActive { kinds } => Error::InterlockActive(format!(
                "interlock active: {}",
                crate::api::alarm_keys(&kinds).join(", ")
            )),
            CommandError::UnknownProtocol(_) => Error::UnknownProtocol(msg),
            CommandError::OutOfRange { .. } => Error::OutOfRange(msg),
            CommandError::InvalidArgument { .. } => Error::InvalidArgument(msg),
            CommandError::NotPermitted { .. } => Error::NotPermitted(msg),
            CommandError::UnknownAlarm(_) => Error::UnknownAlarm(msg),
            CommandError::ShuttingDown => Error::ShuttingDown(msg),
            CommandError::SettingsUnconfirmed => Error::SettingsUnconfirmed(msg),
            CommandError::NotSaved(_) => Error::NotSaved(msg),
            CommandError::NotRecorded { .. } => Error::NotRecorded(msg),
        }
    }
}

impl From<crate::store::StoreError> for Error {
    fn from(e: crate::store::StoreError) -> Self {
        Error::StoreError(e.to_string())
    }
}

/// Every error short name the service can return on purpose (documentation, tests).
pub const ERROR_NAMES: [&str; 15] = [
    "NotReady",
    "InterlockActive",
    "UnknownProtocol",
    "OutOfRange",
    "InvalidArgument",
    "NotPermitted",
    "PermissionDenied",
    "StoreUnavailable",
    "UnknownAlarm",
    "UnknownSession",
    "ShuttingDown",
    "StoreError",
    "SettingsUnconfirmed",
    "NotSaved",
    "NotRecorded",
];
