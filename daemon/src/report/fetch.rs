//! Reads one session and the unit's identity from the daemon over D-Bus.

use super::{ReportError, SessionReport};
use crate::dbus::proxy::{uncached, SessionsProxy, UnitProxy};

/// The D-Bus error the daemon answers for a session id the treatment log does not hold.
const UNKNOWN_SESSION: &str = "org.coldspray.ColdSpray1.Error.UnknownSession";

/// Session `id` with its curve; `identity` (serial, site, room, when the caller knows them)
/// goes into the report's unit line with the daemon's version and backend.
pub async fn fetch(
    conn: &zbus::Connection,
    id: u64,
    identity: Option<&str>,
) -> Result<SessionReport, ReportError> {
    let sessions: SessionsProxy = uncached(conn).await?;
    let (session, curve) = sessions.get(id).await.map_err(|e| match &e {
        zbus::Error::MethodError(name, _, _) if name.as_str() == UNKNOWN_SESSION => {
            ReportError::UnknownSession(id)
        }
        _ => ReportError::Bus(e),
    })?;
    let unit: UnitProxy = uncached(conn).await?;
    let backend = unit.backend().await?;
    let daemon = format!(
        "coldsprayd {} on the {} unit",
        unit.version().await?,
        if backend == "sim" {
            "simulated"
        } else {
            backend.as_str()
        }
    );
    let unit = match identity {
        Some(who) if !who.is_empty() => format!("{who} · {daemon}"),
        _ => format!("serial unknown · {daemon}"),
    };
    Ok(SessionReport {
        session,
        curve,
        unit,
    })
}
