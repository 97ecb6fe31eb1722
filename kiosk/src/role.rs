//! Who runs the kiosk, as the daemon's access rules will see it: the screens show what this
//! role may not do disabled, with the reason, instead of hiding it. The daemon still decides
//! (a refused call is shown as refused); this only spares a click that cannot succeed.

use coldsprayd::dbus::access::{group_id, operator_may, ADMIN_GROUP, OPERATOR_GROUP};

/// The caller's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// May read only.
    Viewer,
    /// May treat (every `Unit` method, read protocols and sessions).
    Operator,
    /// May also configure and maintain.
    Admin,
}

impl Role {
    /// The role of this process: root or `coldspray-admin` is admin, `coldspray-operator` is
    /// operator, anyone else a viewer.
    pub fn of_this_process() -> Role {
        let uid = nix::unistd::getuid().as_raw();
        let groups: Vec<u32> = nix::unistd::getgroups()
            .map(|g| g.into_iter().map(|g| g.as_raw()).collect())
            .unwrap_or_else(|e| {
                tracing::warn!("cannot read this process's groups: {e}");
                Vec::new()
            });
        let member = |name: &str| group_id(name).is_some_and(|gid| groups.contains(&gid));
        if uid == 0 || member(ADMIN_GROUP) {
            Role::Admin
        } else if member(OPERATOR_GROUP) {
            Role::Operator
        } else {
            Role::Viewer
        }
    }

    /// From `viewer`, `operator` or `admin`.
    pub fn from_name(name: &str) -> Option<Role> {
        match name {
            "viewer" => Some(Role::Viewer),
            "operator" => Some(Role::Operator),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }

    /// The label shown in the status bar.
    pub fn label(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "technician",
        }
    }

    /// `Ok` when this role may call `method` (`Interface.Member`), else the reason shown.
    pub fn may(self, method: &str) -> Result<(), &'static str> {
        match self {
            Role::Admin => Ok(()),
            Role::Operator if operator_may(method) => Ok(()),
            Role::Operator => Err("Technicians only (coldspray-admin)"),
            Role::Viewer => Err("Operators only (coldspray-operator)"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operators_treat_and_only_admins_maintain() {
        assert_eq!(Role::Operator.may("Unit.Start"), Ok(()));
        assert!(Role::Operator.may("Maintenance.Prime").is_err());
        assert!(Role::Operator.may("Protocols.Update").is_err());
        assert!(Role::Viewer.may("Unit.Start").is_err());
        assert_eq!(Role::Admin.may("Maintenance.Prime"), Ok(()));
        assert_eq!(Role::from_name("operator"), Some(Role::Operator));
    }
}
