//! The unit's settings (calibration offsets, operator setpoint) live in their own checksummed
//! file, `<state_dir>/settings.json`, independent of the treatment log. The real daemon
//! (simulated unit, private bus, real files) is restarted with the log unopenable, with the
//! settings file damaged, and with an edited configuration:
//!
//! * the settings survive a log that cannot open;
//! * a damaged settings file raises `settings_lost` and refuses treatment (typed error
//!   `SettingsUnconfirmed`) until a technician calls `Maintenance.ConfirmSettings`;
//! * the operator's setpoint outlives a restart only while `[thermostat] setpoint_c` is
//!   unchanged; an administrator who edits it takes back control;
//! * every settings change is in the event log and the journal with the caller's uid.

use coldspray_e2e::rel::*;
use coldspray_e2e::{current_user, PrivateBus, TempDir};
use coldsprayd::api::Event;
use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::time::Duration;

const UP: Duration = Duration::from_secs(60);

fn thermostat(setpoint: f64) -> String {
    format!("[thermostat]\nsetpoint_c = {setpoint:?}\n")
}

async fn setpoint(c: &Client) -> f64 {
    f64::try_from(c.prop(UNIT, "Setpoint").await.unwrap()).unwrap()
}

async fn calibration(c: &Client) -> HashMap<String, f64> {
    HashMap::<String, f64>::try_from(c.prop(MAINT, "Calibration").await.unwrap()).unwrap()
}

fn codes(a: &[AlarmTuple]) -> Vec<String> {
    a.iter().map(|t| t.0.clone()).collect()
}

/// Waits for a state (the unit is not `ready`-flagged while settings are unconfirmed).
async fn wait_state(c: &Client, state: &'static str) {
    c.wait_for(state, UP, Duration::from_millis(50), |c| async move {
        Ok((c.state().await? == state).then_some(()))
    })
    .await
    .unwrap();
}

fn error_name(e: &zbus::Error) -> String {
    match e {
        zbus::Error::MethodError(name, _, _) => name.to_string(),
        other => format!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_survive_a_treatment_log_that_cannot_open() {
    let _ticket = coldspray_e2e::gate::shared();
    let bus = PrivateBus::start(&current_user()).expect("private bus");
    let dir = TempDir::new("settings-log-gone").unwrap();
    let mut d = SimDaemon::spawn(
        &bus,
        dir.path(),
        20.0,
        "initial_reservoir_c = 4.0",
        &thermostat(4.0),
    )
    .expect("daemon");
    let c = Client::connect(&bus).await.unwrap();
    c.wait_up(UP).await.unwrap();
    c.call0(MAINT, "SetCalibration", &("skin", 5.0f64))
        .await
        .unwrap();
    c.call0(MAINT, "SetCalibration", &("reservoir", -3.0f64))
        .await
        .unwrap();
    c.call0(UNIT, "SetSetpoint", &(10.0f64,)).await.unwrap();
    assert!(d.terminate().is_some(), "daemon stopped");

    // The log cannot open: its directory is replaced by a plain file (root or not).
    let log = d.state.join("log");
    std::fs::rename(&log, d.state.join("log.moved")).unwrap();
    std::fs::write(&log, b"not a directory").unwrap();

    d.start().unwrap();
    c.wait_up(UP).await.unwrap();
    let alarms = c.alarms().await.unwrap();
    assert!(
        codes(&alarms).contains(&"store_unavailable".to_string()),
        "the log really is unavailable: {alarms:?}"
    );
    assert!(
        !codes(&alarms).contains(&"settings_lost".to_string()),
        "{alarms:?}"
    );
    assert_eq!(setpoint(&c).await, 10.0, "operator setpoint kept");
    let cal = calibration(&c).await;
    assert_eq!(cal.get("skin"), Some(&5.0), "{cal:?}");
    assert_eq!(cal.get("reservoir"), Some(&-3.0), "{cal:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_settings_file_refuses_treatment_until_a_technician_confirms() {
    let _ticket = coldspray_e2e::gate::shared();
    let bus = PrivateBus::start(&current_user()).expect("private bus");
    let dir = TempDir::new("settings-damaged").unwrap();
    let mut d = SimDaemon::spawn(
        &bus,
        dir.path(),
        20.0,
        "initial_reservoir_c = 4.0",
        &thermostat(4.0),
    )
    .expect("daemon");
    let c = Client::connect(&bus).await.unwrap();
    c.wait_up(UP).await.unwrap();
    c.call0(MAINT, "SetCalibration", &("skin", 2.0f64))
        .await
        .unwrap();
    assert!(d.terminate().is_some());

    // One flipped byte inside the body, length unchanged: only the checksum can tell.
    let file = d.state.join("settings.json");
    let mut bytes = std::fs::read(&file).expect("the settings file exists");
    let at = bytes.len() - 3;
    bytes[at] = if bytes[at] == b'1' { b'7' } else { b'1' };
    std::fs::write(&file, &bytes).unwrap();

    d.start().unwrap();
    c.wait_up(UP).await.unwrap();
    let alarms = c.alarms().await.unwrap();
    let lost = alarms
        .iter()
        .find(|a| a.0 == "settings_lost")
        .unwrap_or_else(|| panic!("no settings_lost alarm: {alarms:?}"));
    assert_eq!(lost.1, "high", "{lost:?}");
    wait_state(&c, "ready").await;
    let ready = bool::try_from(c.prop(UNIT, "Ready").await.unwrap()).unwrap();
    assert!(
        !ready,
        "not ready to treat while the settings are unconfirmed"
    );
    let e = c.start("co2_fractional").await.unwrap_err();
    assert_eq!(
        error_name(&e),
        "org.coldspray.ColdSpray1.Error.SettingsUnconfirmed",
        "{e}"
    );
    let e = c
        .call0(UNIT, "Arm", &("co2_fractional",))
        .await
        .unwrap_err();
    assert_eq!(
        error_name(&e),
        "org.coldspray.ColdSpray1.Error.SettingsUnconfirmed",
        "auto-start cannot be armed either: {e}"
    );
    // An operator's acknowledge does not end it: the condition stays until confirmed.
    c.ack_all().await.unwrap();
    assert!(codes(&c.alarms().await.unwrap()).contains(&"settings_lost".to_string()));
    assert!(c.start("co2_fractional").await.is_err());

    // The technician checks what is in force (the log's copy) and confirms.
    assert_eq!(calibration(&c).await.get("skin"), Some(&2.0));
    c.call0(MAINT, "ConfirmSettings", &()).await.unwrap();
    assert!(
        !codes(&c.alarms().await.unwrap()).contains(&"settings_lost".to_string()),
        "confirmed"
    );
    c.wait_ready(UP).await.unwrap();
    let id = c.start("co2_fractional").await.unwrap();
    assert!(id > 0);
    c.call0(UNIT, "Stop", &()).await.unwrap();

    // Confirming rewrote the file: the next start is clean.
    assert!(d.terminate().is_some());
    d.start().unwrap();
    c.wait_up(UP).await.unwrap();
    let alarms = c.alarms().await.unwrap();
    assert!(
        !codes(&alarms).contains(&"settings_lost".to_string()),
        "{alarms:?}"
    );
    assert_eq!(calibration(&c).await.get("skin"), Some(&2.0));
    assert!(d.stderr().contains("settings_lost"), "the alarm is logged");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_setpoint_holds_until_the_admin_edits_the_config_and_changes_carry_the_uid() {
    let _ticket = coldspray_e2e::gate::shared();
    let bus = PrivateBus::start(&current_user()).expect("private bus");
    let dir = TempDir::new("settings-precedence").unwrap();
    let mut d = SimDaemon::spawn(&bus, dir.path(), 20.0, "", &thermostat(4.0)).expect("daemon");
    let c = Client::connect(&bus).await.unwrap();
    c.wait_up(UP).await.unwrap();
    c.call0(UNIT, "SetSetpoint", &(9.0f64,)).await.unwrap();
    assert_eq!(setpoint(&c).await, 9.0);
    assert!(d.terminate().is_some());

    // Config unchanged: the operator's setpoint is still in force.
    d.start().unwrap();
    c.wait_up(UP).await.unwrap();
    assert_eq!(setpoint(&c).await, 9.0);
    assert!(d.terminate().is_some());

    // The administrator edits the configuration: it takes back control.
    let text = std::fs::read_to_string(&d.config).unwrap();
    std::fs::write(
        &d.config,
        text.replace("setpoint_c = 4.0", "setpoint_c = 6.0"),
    )
    .unwrap();
    d.start().unwrap();
    c.wait_up(UP).await.unwrap();
    assert_eq!(setpoint(&c).await, 6.0, "the edited configuration wins");
    assert!(d.terminate().is_some());
    // ... and stays in force: the operator's value was dropped, not just outvoted once.
    d.start().unwrap();
    c.wait_up(UP).await.unwrap();
    assert_eq!(setpoint(&c).await, 6.0);
    assert!(d.terminate().is_some());

    // The journal says which setpoint is in force and why, and who changed it.
    let uid = std::fs::metadata("/proc/self").unwrap().uid();
    let log = d.stderr();
    assert!(
        log.contains(&format!("set by the operator (uid {uid})")),
        "start-up log names the setpoint in force and why:\n{log}"
    );
    assert!(
        log.contains("the administrator changed it from 4.0 °C"),
        "start-up log says the configuration took back control:\n{log}"
    );
    assert!(
        log.contains(&format!(
            "setpoint 9.0 °C (over [thermostat] setpoint_c = 4.0 °C) (by uid {uid})"
        )),
        "the change is in the journal with the uid:\n{log}"
    );

    // The event log holds the change with who made it.
    let store = coldsprayd::store::open(&Default::default(), &d.state).unwrap();
    let events = store.events(0, i64::MAX, None).unwrap().value;
    let change = events
        .iter()
        .find_map(|e| match &e.event {
            Event::ConfigChanged { what, by_uid, .. } if what.starts_with("setpoint 9.0") => {
                Some(*by_uid)
            }
            _ => None,
        })
        .unwrap_or_else(|| panic!("no setpoint change in the event log: {events:?}"));
    assert_eq!(change, Some(uid));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_settings_file_that_cannot_be_written_is_answered_truthfully_and_alarmed() {
    let _ticket = coldspray_e2e::gate::shared();
    let bus = PrivateBus::start(&current_user()).expect("private bus");
    let dir = TempDir::new("settings-unwritable").unwrap();
    let mut d = SimDaemon::spawn(&bus, dir.path(), 20.0, "", &thermostat(4.0)).expect("daemon");
    let c = Client::connect(&bus).await.unwrap();
    c.wait_up(UP).await.unwrap();
    // The temporary file's name is taken by a directory: the write fails, even for root.
    let blocker = d.state.join("settings.json.tmp");
    std::fs::create_dir(&blocker).unwrap();
    let e = c.call0(UNIT, "SetSetpoint", &(7.0f64,)).await.unwrap_err();
    assert_eq!(
        error_name(&e),
        "org.coldspray.ColdSpray1.Error.NotSaved",
        "{e}"
    );
    let e = c
        .call0(MAINT, "SetCalibration", &("skin", 1.0f64))
        .await
        .unwrap_err();
    assert_eq!(
        error_name(&e),
        "org.coldspray.ColdSpray1.Error.NotSaved",
        "{e}"
    );
    assert_eq!(setpoint(&c).await, 7.0, "in force now, as the error says");
    let alarms = c.alarms().await.unwrap();
    let a = alarms
        .iter()
        .find(|a| a.0 == "settings_not_saved")
        .unwrap_or_else(|| panic!("no settings_not_saved alarm: {alarms:?}"));
    assert_eq!(a.1, "medium", "{a:?}");

    // The cause goes: the next change is saved, and the latched alarm goes once acknowledged.
    std::fs::remove_dir(&blocker).unwrap();
    c.call0(UNIT, "SetSetpoint", &(7.5f64,)).await.unwrap();
    c.ack_all().await.unwrap();
    let alarms = c.alarms().await.unwrap();
    assert!(
        !codes(&alarms).contains(&"settings_not_saved".to_string()),
        "{alarms:?}"
    );
    assert!(d.terminate().is_some());
    d.start().unwrap();
    c.wait_up(UP).await.unwrap();
    assert_eq!(setpoint(&c).await, 7.5);
    assert_eq!(calibration(&c).await.get("skin"), Some(&1.0));
    assert!(d.stderr().contains("unit settings NOT saved"), "journal");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_from_before_the_file_are_migrated_once_and_a_lost_file_is_noticed() {
    let _ticket = coldspray_e2e::gate::shared();
    let bus = PrivateBus::start(&current_user()).expect("private bus");
    let dir = TempDir::new("settings-migrate").unwrap();
    let mut d = SimDaemon::spawn(&bus, dir.path(), 20.0, "", &thermostat(4.0)).expect("daemon");
    let c = Client::connect(&bus).await.unwrap();
    c.wait_up(UP).await.unwrap();
    assert!(d.terminate().is_some());

    // A unit from before the settings file: its settings only in the log.
    match std::fs::remove_file(d.state.join("settings.json")) {
        // Absent already: the daemon had nothing to save.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        r => r.expect("remove settings.json"),
    }
    {
        let store = coldsprayd::store::open(&Default::default(), &d.state).unwrap();
        let mut legacy = coldsprayd::store::Settings {
            setpoint_c: 8.0,
            ..Default::default()
        };
        legacy.set_offset(coldspray_hal::Sensor::Skin, 4.0);
        store.save_settings(&legacy).unwrap();
    }
    d.start().unwrap();
    c.wait_up(UP).await.unwrap();
    let alarms = c.alarms().await.unwrap();
    assert!(
        !codes(&alarms).contains(&"settings_lost".to_string()),
        "{alarms:?}"
    );
    assert_eq!(setpoint(&c).await, 8.0);
    assert_eq!(calibration(&c).await.get("skin"), Some(&4.0));
    assert!(
        d.state.join("settings.json").exists(),
        "migrated into the file"
    );
    // Make the log's copy note that the file exists (any save does).
    c.call0(MAINT, "SetCalibration", &("skin", 4.5f64))
        .await
        .unwrap();
    assert!(d.terminate().is_some());

    // The file disappears afterwards: that is a loss, not an old unit.
    std::fs::remove_file(d.state.join("settings.json")).unwrap();
    d.start().unwrap();
    c.wait_up(UP).await.unwrap();
    let alarms = c.alarms().await.unwrap();
    assert!(
        codes(&alarms).contains(&"settings_lost".to_string()),
        "{alarms:?}"
    );
    assert_eq!(
        calibration(&c).await.get("skin"),
        Some(&4.5),
        "the log's copy is in force, waiting for confirmation"
    );
}
