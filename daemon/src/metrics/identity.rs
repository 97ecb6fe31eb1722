//! Who a unit is, for monitoring: the `[unit]` identity keys (serial number, site, room,
//! hardware revision) exported with the daemon version as `coldspray_unit_info`, so rules,
//! dashboards and a chain's central Prometheus can name a unit without relying on the scrape
//! job's name or the unit's address.

use super::family::Family;
use crate::config::UnitConfig;
use prometheus::proto::MetricFamily;

/// Longest identity value accepted, in characters (a label, not a document).
pub const MAX_IDENTITY_CHARS: usize = 64;

/// The identity of one unit; every field may be empty (then its label is absent).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UnitIdentity {
    /// Serial number from the rating plate (`[unit] serial`).
    pub serial: String,
    /// Clinic or site name (`[unit] site`).
    pub site: String,
    /// Room within the site (`[unit] room`).
    pub room: String,
    /// Hardware revision of the board (`[unit] hardware_revision`).
    pub hardware_revision: String,
}

impl From<&UnitConfig> for UnitIdentity {
    fn from(unit: &UnitConfig) -> Self {
        UnitIdentity {
            serial: unit.serial.clone(),
            site: unit.site.clone(),
            room: unit.room.clone(),
            hardware_revision: unit.hardware_revision.clone(),
        }
    }
}

/// Checks one identity value from the configuration: at most [`MAX_IDENTITY_CHARS`]
/// characters, no control characters, no leading or trailing blanks. Returns why not.
pub fn check_identity_value(value: &str) -> Result<(), String> {
    if value.chars().count() > MAX_IDENTITY_CHARS {
        return Err(format!("at most {MAX_IDENTITY_CHARS} characters"));
    }
    if value.chars().any(char::is_control) {
        return Err("no control characters (tabs, newlines)".to_string());
    }
    if value.trim() != value {
        return Err("no leading or trailing spaces".to_string());
    }
    Ok(())
}

/// Appends `coldspray_unit_info` for `identity` and daemon `version` to `out`.
pub(crate) fn collect(identity: &UnitIdentity, version: &str, out: &mut Vec<MetricFamily>) {
    Family::gauge(
        "coldspray_unit_info",
        "Unit identity from the [unit] configuration (serial, site, room, hardware revision) \
         and daemon version; always 1. Empty values are absent labels.",
    )
    .value(
        &[
            ("serial", &identity.serial),
            ("site", &identity.site),
            ("room", &identity.room),
            ("hardware_revision", &identity.hardware_revision),
            ("version", version),
        ],
        1.0,
    )
    .into(out);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_values_are_checked() {
        assert!(check_identity_value("").is_ok());
        assert!(check_identity_value("CS-2026-0042").is_ok());
        assert!(check_identity_value("Klinik Süd, Raum 3").is_ok());
        assert!(check_identity_value(&"x".repeat(MAX_IDENTITY_CHARS)).is_ok());
        assert!(check_identity_value(&"x".repeat(MAX_IDENTITY_CHARS + 1)).is_err());
        assert!(check_identity_value("a\nb").is_err());
        assert!(check_identity_value(" a").is_err());
    }
}
