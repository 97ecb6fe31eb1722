//! The shipped bus policy on a real private dbus-daemon: a uid outside the ColdSpray groups
//! may introspect and nothing else (no method, no property, no signal: treatment data is
//! health data); an operator may control, read and export the treatment log, read the
//! properties and receive the signals, but not configure; an admin may configure. Needs root
//! (to create the test accounts and switch uid); otherwise the test prints why it is skipped.

use coldspray_e2e::fake_core::FakeCore;
use coldspray_e2e::{as_uid, binary, ensure_user, is_root, PrivateBus};
use coldsprayd::api::Command;
use coldsprayd::dbus::{self, BusChoice, DbusConfig};
use std::path::PathBuf;
use std::process::Output;

const NAME: &str = "org.coldspray.ColdSpray1";
const PATH: &str = "/org/coldspray/ColdSpray1";

/// Every method with valid arguments, in busctl's notation: (interface suffix, member,
/// signature and arguments).
const METHODS: &[(&str, &str, &[&str])] = &[
    ("Unit", "Start", &["sa{sv}", "pico", "0"]),
    ("Unit", "Stop", &[]),
    ("Unit", "Arm", &["s", "pico"]),
    ("Unit", "Disarm", &[]),
    ("Unit", "Acknowledge", &["s", ""]),
    ("Unit", "AudioPause", &[]),
    ("Unit", "SetSetpoint", &["d", "5"]),
    ("Protocols", "List", &[]),
    ("Protocols", "Get", &["s", "pico"]),
    (
        "Protocols",
        "Create",
        &[
            "a{sv}", "4", "name", "s", "p2", "title", "s", "P2", "goal", "s", "protect", "spray_s",
            "d", "30",
        ],
    ),
    (
        "Protocols",
        "Update",
        &["sa{sv}", "pico", "1", "spray_s", "d", "50"],
    ),
    ("Protocols", "Delete", &["s", "p2"]),
    ("Sessions", "List", &["a{sv}", "0"]),
    ("Sessions", "Get", &["t", "1"]),
    ("Sessions", "Export", &["a{sv}s", "0", "csv"]),
    ("Sessions", "Stats", &["a{sv}", "0"]),
    ("Sessions", "LiveCurve", &["u", "0"]),
    ("Maintenance", "Enter", &[]),
    ("Maintenance", "Exit", &[]),
    ("Maintenance", "Prime", &["d", "5"]),
    ("Maintenance", "Drain", &["d", "5"]),
    ("Maintenance", "TestOutput", &["sd", "pump", "1"]),
    ("Maintenance", "SelfTest", &[]),
    ("Maintenance", "SetCalibration", &["sd", "skin", "0"]),
    ("Maintenance", "RecordWaterChange", &[]),
];

async fn run(mut c: std::process::Command) -> Output {
    tokio::task::spawn_blocking(move || c.output().expect("spawn"))
        .await
        .expect("join")
}

fn busctl(uid: u32, gid: u32, groups: bool, addr: &str, args: &[&str]) -> std::process::Command {
    let mut c = as_uid(uid, gid, groups, &PathBuf::from("/usr/bin/busctl"));
    c.arg(format!("--address={addr}")).args(args);
    c
}

fn text(o: &Output) -> String {
    format!(
        "status {:?}\nstdout: {}\nstderr: {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_denies_outsiders_and_separates_operator_from_admin() {
    let _ticket = coldspray_e2e::gate::shared();
    if !is_root() {
        println!("SKIPPED: needs root to create test accounts and switch uid (CI runs as root)");
        return;
    }
    let ctl = binary("coldsprayctl").expect("coldsprayctl built");
    let (op_uid, op_gid) =
        ensure_user("cs-test-operator", &["coldspray-operator"]).expect("operator account");
    let (ad_uid, ad_gid) =
        ensure_user("cs-test-admin", &["coldspray-admin"]).expect("admin account");
    let bus = PrivateBus::start("root").expect("private bus");
    let addr = bus.address().to_string();
    let core = FakeCore::start(None);
    let config = DbusConfig {
        bus: BusChoice::System,
        address: Some(addr.clone()),
    };
    let _server = dbus::start(core.handle.clone(), &config, false)
        .await
        .expect("serve")
        .expect("some");

    // nobody, no groups: every method denied by the bus, before the daemon sees it.
    let mut failures = Vec::new();
    for (iface, member, args) in METHODS {
        let iface = format!("{NAME}.{iface}");
        let mut a = vec!["call", NAME, PATH, iface.as_str(), member];
        a.extend_from_slice(args);
        let o = run(busctl(65534, 65534, false, &addr, &a)).await;
        let err = String::from_utf8_lossy(&o.stderr).to_lowercase();
        if o.status.success() || !err.contains("access denied") {
            failures.push(format!("nobody {iface}.{member}: {}", text(&o)));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(
        core.commands().is_empty(),
        "denied calls reached the controller"
    );
    // Not one call reached the daemon to be counted (every method is listed at 0 from the
    // start, so the map is not empty: its counts are all 0).
    let calls = core.handle.telemetry.dbus_calls();
    assert!(
        calls.values().all(|&(n, errors)| n == 0 && errors == 0),
        "{calls:?}"
    );
    // ... nor read a property (the running session is one) ...
    for prop in ["State", "CurrentSession"] {
        let o = run(busctl(
            65534,
            65534,
            false,
            &addr,
            &[
                "get-property",
                NAME,
                PATH,
                "org.coldspray.ColdSpray1.Unit",
                prop,
            ],
        ))
        .await;
        let err = String::from_utf8_lossy(&o.stderr).to_lowercase();
        assert!(
            !o.status.success() && err.contains("access denied"),
            "nobody reads {prop}: {}",
            text(&o)
        );
    }
    // ... nor hear the service's signals, which an operator hears ...
    let monitor = |uid, gid, groups| {
        let mut c = std::process::Command::new("timeout");
        c.args(["3", "setpriv"])
            .arg(format!("--reuid={uid}"))
            .arg(format!("--regid={gid}"))
            .arg(if groups {
                "--init-groups"
            } else {
                "--clear-groups"
            })
            .args(["--", "gdbus", "monitor", "--address", &addr, "--dest", NAME]);
        c.stdout(std::process::Stdio::piped());
        c.spawn().expect("gdbus monitor")
    };
    let outsider = monitor(65534, 65534, false);
    let operator = monitor(op_uid, op_gid, true);
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    core.emit(coldsprayd::api::Event::AlarmRemoved {
        kind: coldsprayd::model::alarm::AlarmKind::WaterLow,
        at: std::time::Duration::ZERO,
        unix_ms: 0,
    });
    let heard = |child: std::process::Child| async move {
        let o = tokio::task::spawn_blocking(move || child.wait_with_output().expect("wait"))
            .await
            .expect("join");
        String::from_utf8_lossy(&o.stdout).to_string()
    };
    let (outsider, operator) = (heard(outsider).await, heard(operator).await);
    assert!(
        operator.contains("AlarmCleared"),
        "operator heard: {operator}"
    );
    assert!(
        !outsider.contains("AlarmCleared"),
        "outsider heard: {outsider}"
    );
    // ... but may introspect.
    let o = run(busctl(
        65534,
        65534,
        false,
        &addr,
        &["introspect", "--xml-interface", NAME, PATH],
    ))
    .await;
    assert!(
        o.status.success() && String::from_utf8_lossy(&o.stdout).contains("\"SetSetpoint\""),
        "{}",
        text(&o)
    );
    let mut c = as_uid(65534, 65534, false, &ctl);
    c.args(["--address", &addr, "status"]);
    let o = run(c).await;
    assert_eq!(o.status.code(), Some(4), "nobody's status: {}", text(&o));
    let mut c = as_uid(65534, 65534, false, &ctl);
    c.args(["--address", &addr, "stop"]);
    let o = run(c).await;
    assert_eq!(o.status.code(), Some(4), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("AccessDenied"),
        "{}",
        text(&o)
    );

    // Operator: control yes, configuration and maintenance no.
    let ctl_as = |uid, gid, args: &[&str]| {
        let mut c = as_uid(uid, gid, true, &ctl);
        c.args(["--address", &addr]).args(args);
        c
    };
    for (args, code) in [
        (vec!["start", "pico", "--spray-s", "30"], 0),
        (vec!["stop"], 0),
        (vec!["arm", "hifu"], 0),
        (vec!["ack"], 0),
        (vec!["protocols", "list"], 0),
        (vec!["maintenance", "enter"], 4),
        (vec!["protocols", "delete", "pico"], 4),
        (vec!["selftest"], 4),
        (vec!["status"], 0),
    ] {
        let o = run(ctl_as(op_uid, op_gid, &args)).await;
        assert_eq!(
            o.status.code(),
            Some(code),
            "operator {args:?}: {}",
            text(&o)
        );
    }
    // The treatment log and the running session: an operator reads and exports them (this
    // fake unit has no log, so Export reaches the daemon and answers StoreUnavailable).
    let export = [
        "call",
        NAME,
        PATH,
        "org.coldspray.ColdSpray1.Sessions",
        "Export",
    ];
    let o = run(busctl(
        op_uid,
        op_gid,
        true,
        &addr,
        &[&export[..], &["a{sv}s", "0", "csv"]].concat(),
    ))
    .await;
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("treatment log is not available"),
        "operator export: {}",
        text(&o)
    );
    let unit = "org.coldspray.ColdSpray1.Unit";
    let get = ["get-property", NAME, PATH, unit, "CurrentSession"];
    let o = run(busctl(op_uid, op_gid, true, &addr, &get)).await;
    assert!(
        o.status.success(),
        "operator reads CurrentSession: {}",
        text(&o)
    );
    // Admin: configuration and maintenance.
    for (args, code) in [
        (
            vec![
                "protocols",
                "create",
                "name=p2",
                "title=P2",
                "goal=protect",
                "spray_s=30",
            ],
            0,
        ),
        (vec!["maintenance", "enter"], 0),
        (vec!["maintenance", "prime", "5"], 0),
        (vec!["maintenance", "exit"], 0),
        (vec!["protocols", "delete", "p2"], 0),
    ] {
        let o = run(ctl_as(ad_uid, ad_gid, &args)).await;
        assert_eq!(o.status.code(), Some(code), "admin {args:?}: {}", text(&o));
    }
    let cmds = core.commands();
    assert!(matches!(cmds[0], Command::StartSession { .. }), "{cmds:?}");
    assert!(cmds.contains(&Command::EnterMaintenance));
    assert!(!cmds.contains(&Command::SelfTest));
}

/// A bus policy that lets everyone call everything (misconfigured or missing file): the
/// daemon's own credential check still refuses with PermissionDenied.
const LOOSE_POLICY: &str = r#"<busconfig>
  <policy context="default">
    <allow own="org.coldspray.ColdSpray1"/>
    <allow send_destination="org.coldspray.ColdSpray1"/>
  </policy>
</busconfig>
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daemon_refuses_by_itself_when_the_policy_is_loosened() {
    let _ticket = coldspray_e2e::gate::shared();
    if !is_root() {
        println!("SKIPPED: needs root to create test accounts and switch uid (CI runs as root)");
        return;
    }
    let ctl = binary("coldsprayctl").expect("coldsprayctl built");
    let (op_uid, op_gid) =
        ensure_user("cs-test-operator", &["coldspray-operator"]).expect("operator account");
    let bus = PrivateBus::start_with_policy(LOOSE_POLICY).expect("private bus");
    let addr = bus.address().to_string();
    let core = FakeCore::start(None);
    let config = DbusConfig {
        bus: BusChoice::System,
        address: Some(addr.clone()),
    };
    let _server = dbus::start(core.handle.clone(), &config, false)
        .await
        .expect("serve")
        .expect("some");
    let o = run(busctl(
        65534,
        65534,
        false,
        &addr,
        &["call", NAME, PATH, "org.coldspray.ColdSpray1.Unit", "Stop"],
    ))
    .await;
    assert!(
        !o.status.success()
            && String::from_utf8_lossy(&o.stderr)
                .contains("needs membership of coldspray-operator"),
        "{}",
        text(&o)
    );
    let mut c = as_uid(65534, 65534, false, &ctl);
    c.args(["--address", &addr, "disarm"]);
    let o = run(c).await;
    assert_eq!(o.status.code(), Some(4), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("PermissionDenied: "),
        "{}",
        text(&o)
    );
    let as_op = |args: &[&str]| {
        let mut c = as_uid(op_uid, op_gid, true, &ctl);
        c.args(["--address", &addr]).args(args);
        c
    };
    let o = run(as_op(&["disarm"])).await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let o = run(as_op(&["maintenance", "enter"])).await;
    assert_eq!(o.status.code(), Some(4), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("coldspray-admin"),
        "{}",
        text(&o)
    );
    let get = [
        "get-property",
        NAME,
        PATH,
        "org.coldspray.ColdSpray1.Unit",
        "CurrentSession",
    ];
    let o = run(busctl(65534, 65534, false, &addr, &get)).await;
    assert!(
        !o.status.success() && String::from_utf8_lossy(&o.stderr).contains("Access denied"),
        "the daemon refuses an outsider the running session: {}",
        text(&o)
    );
    let o = run(busctl(op_uid, op_gid, true, &addr, &get)).await;
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(core.commands(), vec![Command::Disarm]);
    assert_eq!(core.handle.telemetry.dbus_calls()["Unit.Stop"], (1, 1));
}
