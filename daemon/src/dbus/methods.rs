//! The name of every D-Bus method the service offers (`Interface.Member`, as the access rules
//! and the telemetry know them), so that `coldspray_dbus_calls_total` and
//! `coldspray_dbus_call_errors_total` carry every label set at 0 from the start, not only
//! after a method's first call. A test keeps the list equal to the shipped introspection XML,
//! which another test keeps equal to the live service.

use crate::telemetry::Telemetry;

/// Methods of the interfaces served on every unit.
pub const ALWAYS: [&str; 26] = [
    "Unit.Start",
    "Unit.Stop",
    "Unit.Arm",
    "Unit.Disarm",
    "Unit.Acknowledge",
    "Unit.AudioPause",
    "Unit.SetSetpoint",
    "Protocols.List",
    "Protocols.Get",
    "Protocols.Create",
    "Protocols.Update",
    "Protocols.Delete",
    "Sessions.List",
    "Sessions.Get",
    "Sessions.Export",
    "Sessions.Stats",
    "Sessions.LiveCurve",
    "Maintenance.Enter",
    "Maintenance.Exit",
    "Maintenance.Prime",
    "Maintenance.Drain",
    "Maintenance.TestOutput",
    "Maintenance.SelfTest",
    "Maintenance.SetCalibration",
    "Maintenance.ConfirmSettings",
    "Maintenance.RecordWaterChange",
];

/// Methods of the `Simulator` interface, served only on the simulated unit.
pub const SIMULATOR: [&str; 8] = [
    "Simulator.LaserPass",
    "Simulator.InjectFault",
    "Simulator.ClearFault",
    "Simulator.ClearAllFaults",
    "Simulator.SetEstop",
    "Simulator.SetTrigger",
    "Simulator.SetAmbient",
    "Simulator.Refill",
];

/// Counts every method served at 0 calls and 0 errors.
pub fn register(telemetry: &Telemetry, simulator: bool) {
    let sim: &[&str] = if simulator { &SIMULATOR } else { &[] };
    for method in ALWAYS.iter().chain(sim) {
        telemetry.register_dbus_method(method);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn the_list_is_every_method_of_the_shipped_xml() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../packaging/dbus");
        let mut shipped = BTreeSet::new();
        for iface in ["Unit", "Protocols", "Sessions", "Maintenance", "Simulator"] {
            let path = dir.join(format!("org.coldspray.ColdSpray1.{iface}.xml"));
            let xml = std::fs::read_to_string(&path).unwrap();
            for part in xml.split("<method name=\"").skip(1) {
                let member = part.split('"').next().unwrap();
                shipped.insert(format!("{iface}.{member}"));
            }
        }
        let listed: BTreeSet<String> = ALWAYS
            .iter()
            .chain(&SIMULATOR)
            .map(|m| m.to_string())
            .collect();
        assert_eq!(listed, shipped);
    }

    #[test]
    fn every_method_is_counted_at_zero_before_its_first_call() {
        let t = Telemetry::default();
        register(&t, false);
        let calls = t.dbus_calls();
        assert_eq!(calls.len(), ALWAYS.len());
        assert_eq!(calls.get("Unit.Start"), Some(&(0, 0)));
        assert!(!calls.contains_key("Simulator.LaserPass"));
        register(&t, true);
        assert_eq!(t.dbus_calls().get("Simulator.LaserPass"), Some(&(0, 0)));
        t.record_dbus_call("Unit.Start", true);
        register(&t, true);
        assert_eq!(
            t.dbus_calls().get("Unit.Start"),
            Some(&(1, 1)),
            "registering again keeps the counts"
        );
    }
}
