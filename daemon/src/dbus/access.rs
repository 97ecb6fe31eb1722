//! Defence in depth behind the bus policy: on the system bus (or a given bus address) each
//! method checks the caller's credentials against the same rules as the shipped policy file
//! and answers `PermissionDenied` when the policy was loosened or is missing. On the session
//! bus (a developer's laptop running the sim) every caller is the owner and nothing is checked.

use super::error::Error;
use std::os::unix::fs::MetadataExt;

/// Group that may control treatment.
pub const OPERATOR_GROUP: &str = "coldspray-operator";
/// Group that may also configure and maintain.
pub const ADMIN_GROUP: &str = "coldspray-admin";

/// Methods an operator may call (`Interface.Member`, `Unit.*` = every Unit method, and the
/// treatment-data property `Unit.CurrentSession`). Every other method needs an admin; a caller
/// in neither group may call nothing and read no treatment data (docs/REQUIREMENTS.md, access
/// to treatment data). Mirrors `packaging/dbus/org.coldspray.ColdSpray1.conf`.
pub const OPERATOR_METHODS: [&str; 8] = [
    "Unit.*",
    "Protocols.List",
    "Protocols.Get",
    "Sessions.List",
    "Sessions.Get",
    "Sessions.Stats",
    "Sessions.LiveCurve",
    "Sessions.Export",
];

/// Who may call what.
#[derive(Debug, Clone)]
pub struct Access {
    enforce: bool,
    own_uid: Option<u32>,
    operator_gid: Option<u32>,
    admin_gid: Option<u32>,
}

/// The id of a local group (the system's group database, as `getgrnam(3)` sees it); `None`
/// when there is no such group or the database cannot be read, which denies its members.
pub fn group_id(name: &str) -> Option<u32> {
    match nix::unistd::Group::from_name(name) {
        Ok(group) => group.map(|g| g.gid.as_raw()),
        Err(e) => {
            tracing::warn!("group {name} unknown: {e}");
            None
        }
    }
}

/// Whether an operator may call `method` (`Interface.Member`).
pub fn operator_may(method: &str) -> bool {
    let iface = method.split('.').next().unwrap_or("");
    OPERATOR_METHODS
        .iter()
        .any(|m| *m == method || (m.ends_with(".*") && m.trim_end_matches(".*") == iface))
}

impl Access {
    /// Checks nothing.
    pub fn open() -> Access {
        Access {
            enforce: false,
            own_uid: None,
            operator_gid: None,
            admin_gid: None,
        }
    }

    /// Checks callers against the groups of this system.
    pub fn enforcing() -> Access {
        Access {
            enforce: true,
            own_uid: std::fs::metadata("/proc/self").ok().map(|m| m.uid()),
            operator_gid: group_id(OPERATOR_GROUP),
            admin_gid: group_id(ADMIN_GROUP),
        }
    }

    /// Whether a caller with this uid and these groups may call `method`.
    pub fn allows(&self, method: &str, uid: Option<u32>, groups: &[u32]) -> bool {
        if !self.enforce {
            return true;
        }
        if uid == Some(0) || (uid.is_some() && uid == self.own_uid) {
            return true;
        }
        let member = |gid: Option<u32>| gid.is_some_and(|g| groups.contains(&g));
        member(self.admin_gid) || (operator_may(method) && member(self.operator_gid))
    }

    /// Checks the sender of the message being handled.
    pub async fn check(
        &self,
        conn: &zbus::Connection,
        hdr: &zbus::message::Header<'_>,
        method: &str,
    ) -> Result<(), Error> {
        if !self.enforce {
            return Ok(());
        }
        let denied = || Error::PermissionDenied(format!("{method}: caller not authorised"));
        let sender = hdr.sender().ok_or_else(denied)?.to_owned();
        let dbus = zbus::fdo::DBusProxy::new(conn).await.map_err(Error::ZBus)?;
        let creds = dbus
            .get_connection_credentials(sender.into())
            .await
            .map_err(|e| Error::PermissionDenied(format!("{method}: no credentials: {e}")))?;
        let groups = creds.unix_group_ids().cloned().unwrap_or_default();
        if self.allows(method, creds.unix_user_id(), &groups) {
            Ok(())
        } else {
            let need = if operator_may(method) {
                format!("{OPERATOR_GROUP} or {ADMIN_GROUP}")
            } else {
                ADMIN_GROUP.to_string()
            };
            Err(Error::PermissionDenied(format!(
                "{method} needs membership of {need}"
            )))
        }
    }
}

/// The uid of the sender of the message being handled, asked of the bus daemon (settings
/// changes are logged with it). `None` when the bus cannot tell; the change still goes
/// ahead and is logged as made by an unknown uid.
pub async fn caller_uid(conn: &zbus::Connection, hdr: &zbus::message::Header<'_>) -> Option<u32> {
    let sender = hdr.sender()?.to_owned();
    let dbus = match zbus::fdo::DBusProxy::new(conn).await {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!("caller's uid unknown: {e}");
            return None;
        }
    };
    match dbus.get_connection_unix_user(sender.into()).await {
        Ok(uid) => Some(uid),
        Err(e) => {
            tracing::warn!("caller's uid unknown: {e}");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_match_the_policy_file() {
        let a = Access {
            enforce: true,
            own_uid: Some(999),
            operator_gid: Some(2001),
            admin_gid: Some(2002),
        };
        assert!(a.allows("Unit.Start", Some(0), &[]));
        assert!(a.allows("Maintenance.Enter", Some(999), &[]));
        assert!(a.allows("Unit.Start", Some(1000), &[2001]));
        assert!(a.allows("Sessions.Stats", Some(1000), &[2001]));
        assert!(a.allows("Sessions.Export", Some(1000), &[2001]));
        assert!(a.allows("Unit.CurrentSession", Some(1000), &[2001]));
        assert!(!a.allows("Unit.CurrentSession", Some(1000), &[]));
        assert!(!a.allows("Sessions.List", Some(65534), &[]));
        assert!(!a.allows("Maintenance.Enter", Some(1000), &[2001]));
        assert!(!a.allows("Protocols.Create", Some(1000), &[2001]));
        assert!(a.allows("Protocols.Create", Some(1000), &[2002]));
        assert!(!a.allows("Unit.Stop", Some(65534), &[]));
        assert!(!a.allows("Unit.Stop", None, &[2003]));
        assert!(Access::open().allows("Maintenance.Enter", Some(65534), &[]));
    }

    #[test]
    fn groups_are_looked_up_in_the_system_database() {
        assert_eq!(group_id("root"), Some(0));
        assert_eq!(group_id("coldspray-no-such-group"), None);
    }

    #[test]
    fn policy_file_grants_operators_exactly_these_methods() {
        let policy = include_str!("../../../packaging/dbus/org.coldspray.ColdSpray1.conf");
        let op = policy
            .split("<policy group=\"coldspray-operator\">")
            .nth(1)
            .and_then(|s| s.split("</policy>").next())
            .unwrap_or("");
        let mut granted = Vec::new();
        for rule in op.split("<allow").skip(1) {
            let attr = |name: &str| {
                rule.split(&format!("{name}=\""))
                    .nth(1)
                    .and_then(|s| s.split('"').next())
                    .map(str::to_string)
            };
            let iface = attr("send_interface").unwrap_or_default();
            let Some(short) = iface.strip_prefix("org.coldspray.ColdSpray1.") else {
                continue;
            };
            let member = attr("send_member").unwrap_or_else(|| "*".into());
            granted.push(format!("{short}.{member}"));
        }
        granted.sort();
        let mut expected: Vec<_> = OPERATOR_METHODS.iter().map(|s| s.to_string()).collect();
        expected.sort();
        assert_eq!(granted, expected);
        // Treatment data: operators read properties and receive signals, outsiders do not.
        let signals =
            "<allow receive_sender=\"org.coldspray.ColdSpray1\" receive_type=\"signal\"/>";
        assert!(op.contains(signals) && op.contains("send_member=\"GetAll\""));
        let default = policy
            .split("<policy context=\"default\">")
            .nth(1)
            .and_then(|s| s.split("</policy>").next())
            .unwrap_or("");
        assert!(
            !default.contains("org.freedesktop.DBus.Properties"),
            "{default}"
        );
        assert!(default.contains(
            "<deny receive_sender=\"org.coldspray.ColdSpray1\" receive_type=\"signal\"/>"
        ));
    }
}
