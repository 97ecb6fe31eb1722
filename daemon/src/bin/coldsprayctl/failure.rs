//! Why a command failed and the exit code that says so: 1 refused by the daemon, 2 usage,
//! 3 cannot reach the daemon, 4 access denied, 5 anything else.

/// Exit code: refused by the daemon.
pub const EXIT_REFUSED: u8 = 1;
/// Exit code: usage error.
pub const EXIT_USAGE: u8 = 2;
/// Exit code: cannot reach the daemon.
pub const EXIT_UNREACHABLE: u8 = 3;
/// Exit code: access denied.
pub const EXIT_DENIED: u8 = 4;
/// Exit code: anything else.
pub const EXIT_OTHER: u8 = 5;

/// Why a command failed, with its exit code.
pub struct Failure {
    /// The process exit code.
    pub code: u8,
    /// What to tell the user.
    pub message: String,
}

/// Sorts a D-Bus error into an exit code and a message (`ShortName: message` for errors the
/// daemon or the bus answered).
pub fn classify(e: zbus::Error) -> Failure {
    match e {
        zbus::Error::MethodError(name, msg, _) => {
            let name = name.as_str().to_string();
            let short = name.rsplit('.').next().unwrap_or(&name).to_string();
            let msg = msg.unwrap_or_default();
            let code = if name.starts_with("org.coldspray.ColdSpray1.Error.") {
                if short == "PermissionDenied" {
                    EXIT_DENIED
                } else {
                    EXIT_REFUSED
                }
            } else {
                match short.as_str() {
                    "AccessDenied" | "AuthFailed" => EXIT_DENIED,
                    "ServiceUnknown" | "NameHasNoOwner" | "NoReply" | "Timeout"
                    | "Disconnected" | "NoServer" => EXIT_UNREACHABLE,
                    "UnknownMethod" | "UnknownInterface" | "UnknownObject" => EXIT_REFUSED,
                    _ => EXIT_OTHER,
                }
            };
            Failure {
                code,
                message: format!("{short}: {msg}"),
            }
        }
        zbus::Error::InputOutput(e) => Failure {
            code: EXIT_UNREACHABLE,
            message: format!("cannot reach the daemon: {e}"),
        },
        e @ (zbus::Error::Address(_) | zbus::Error::Handshake(_)) => Failure {
            code: EXIT_UNREACHABLE,
            message: format!("cannot reach the bus: {e}"),
        },
        zbus::Error::FDO(e) => {
            let s = e.to_string();
            let code = if s.contains("AccessDenied") {
                EXIT_DENIED
            } else {
                EXIT_UNREACHABLE
            };
            Failure { code, message: s }
        }
        other => Failure {
            code: EXIT_OTHER,
            message: other.to_string(),
        },
    }
}

/// Any other failure (an unexpected reply).
pub fn other<E: std::fmt::Display>(e: E) -> Failure {
    Failure {
        code: EXIT_OTHER,
        message: e.to_string(),
    }
}
