//! Checks of the shipped systemd unit and sysusers file with systemd's own tools:
//! `systemd-analyze verify` must be silent, `systemd-analyze security --offline=yes` must
//! rate the unit's exposure at 2.0 or less, and `systemd-sysusers` must create the accounts
//! the unit runs with. Each test prints why it skips when a tool (Debian `systemd`) or the
//! built `coldsprayd` (`cargo build --bins`) is missing.

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

fn have(tool: &str) -> bool {
    Command::new(tool).arg("--version").output().is_ok()
}

/// The `coldsprayd` of this build: target/<profile>/coldsprayd next to the test's deps dir.
fn built_coldsprayd() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let p = exe.parent()?.parent()?.join("coldsprayd");
    p.exists().then_some(p)
}

fn unit_text() -> String {
    std::fs::read_to_string(repo().join("systemd/coldsprayd.service")).expect("read the unit")
}

#[test]
fn unit_verifies_clean() {
    let _ticket = coldspray_e2e::gate::shared();
    if !have("systemd-analyze") {
        println!("SKIP: systemd-analyze not installed (Debian package `systemd`)");
        return;
    }
    let Some(bin) = built_coldsprayd() else {
        println!("SKIP: coldsprayd not built (cargo build --bins)");
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    // The unit as shipped, with /usr/bin/coldsprayd pointing at this build's binary, so that
    // verify checks every Exec line against a real executable.
    let unit = unit_text().replace("/usr/bin/coldsprayd", &bin.display().to_string());
    assert_ne!(unit, unit_text(), "the unit must run /usr/bin/coldsprayd");
    let path = dir.path().join("coldsprayd.service");
    std::fs::write(&path, unit).expect("write unit");
    verify_clean(&path, &[("8", "coldsprayd.8"), ("1", "coldsprayctl.1")]);
}

/// `systemd-analyze verify` on the unit at `path` is silent; Documentation=man:… is checked
/// against `pages` ((section, file) from packaging/debian/man), as the package ships them.
fn verify_clean(path: &Path, pages: &[(&str, &str)]) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cmd = Command::new("systemd-analyze");
    cmd.arg("verify");
    if have("man") {
        let man = dir.path().join("man");
        for (sec, page) in pages {
            let d = man.join(format!("man{sec}"));
            std::fs::create_dir_all(&d).expect("man dir");
            std::fs::copy(repo().join("packaging/debian/man").join(page), d.join(page))
                .expect("copy man page");
        }
        cmd.env("MANPATH", &man);
    } else {
        println!("note: `man` not installed, Documentation= not checked (--man=no)");
        cmd.arg("--man=no");
    }
    let out = cmd.arg(path).output().expect("run systemd-analyze verify");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    println!(
        "systemd-analyze verify {}: exit {:?}, output {text:?}",
        path.display(),
        out.status.code()
    );
    assert!(out.status.success(), "verify failed: {text}");
    assert!(text.trim().is_empty(), "verify printed warnings: {text}");
}

#[test]
fn unit_exposure_at_most_2() {
    let _ticket = coldspray_e2e::gate::shared();
    if !have("systemd-analyze") {
        println!("SKIP: systemd-analyze not installed (Debian package `systemd`)");
        return;
    }
    let out = Command::new("systemd-analyze")
        .args(["security", "--offline=yes", "--no-pager"])
        .arg(repo().join("systemd/coldsprayd.service"))
        .output()
        .expect("run systemd-analyze security");
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.contains("Overall exposure level"))
        .unwrap_or_else(|| panic!("no exposure line in: {text}"));
    let score: f64 = line
        .split(':')
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("cannot read the score in {line:?}"));
    println!("{}", line.trim());
    for l in text.lines().filter(|l| l.starts_with('✗')) {
        println!("  open: {}", l.split_whitespace().nth(1).unwrap_or(l));
    }
    assert!(score <= 2.0, "exposure {score} > 2.0");
}

/// Runs systemd-sysusers on the repository's `file` in an empty root; its /etc/passwd and
/// /etc/group. None (and a SKIP line) without the tool.
fn sysusers(file: &str) -> Option<(String, String)> {
    if !have("systemd-sysusers") {
        println!("SKIP: systemd-sysusers not installed (Debian package `systemd`)");
        return None;
    }
    let root = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(root.path().join("etc")).expect("etc");
    let out = Command::new("systemd-sysusers")
        .arg(format!("--root={}", root.path().display()))
        .arg(repo().join(file))
        .output()
        .expect("run systemd-sysusers");
    assert!(
        out.status.success(),
        "systemd-sysusers: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let passwd = std::fs::read_to_string(root.path().join("etc/passwd")).expect("passwd");
    let group = std::fs::read_to_string(root.path().join("etc/group")).expect("group");
    Some((passwd, group))
}

#[test]
fn sysusers_creates_the_accounts() {
    let _ticket = coldspray_e2e::gate::shared();
    let Some((passwd, group)) = sysusers("systemd/coldspray.sysusers") else {
        return;
    };
    let user = passwd
        .lines()
        .find(|l| l.starts_with("_coldspray:"))
        .unwrap_or_else(|| panic!("no _coldspray in {passwd}"));
    let f: Vec<&str> = user.split(':').collect();
    let uid: u32 = f[2].parse().expect("uid");
    assert!(uid < 1000, "not a system uid: {user}");
    assert_eq!(f[5], "/var/lib/coldspray", "home: {user}");
    assert_eq!(f[6], "/usr/sbin/nologin", "shell: {user}");
    // Every group the unit names exists after sysusers ran (User=/Group=/SupplementaryGroups=).
    let unit = unit_text();
    let mut wanted = vec!["_coldspray", "coldspray-operator", "coldspray-admin"];
    let supp = unit
        .lines()
        .find_map(|l| l.strip_prefix("SupplementaryGroups="))
        .expect("SupplementaryGroups= in the unit");
    wanted.extend(supp.split_whitespace());
    for g in wanted {
        assert!(
            group.lines().any(|l| l.starts_with(&format!("{g}:"))),
            "group {g} missing: {group}"
        );
    }
}

#[test]
fn exec_lines_work_with_the_binary() {
    let _ticket = coldspray_e2e::gate::shared();
    let Some(bin) = built_coldsprayd() else {
        println!("SKIP: coldsprayd not built (cargo build --bins)");
        return;
    };
    let unit = unit_text();
    for key in ["ExecStartPre=", "ExecStart=", "ExecStopPost="] {
        let line = unit
            .lines()
            .find(|l| l.starts_with(key))
            .unwrap_or_else(|| panic!("{key} missing"));
        assert!(
            line.contains("--config /etc/coldspray/coldspray.toml"),
            "{line}"
        );
    }
    // ExecStartPre= on the shipped config: accepted.
    let ok = Command::new(&bin)
        .args(["--check-config", "--config"])
        .arg(repo().join("packaging/coldspray.toml"))
        .output()
        .expect("run coldsprayd");
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    // A bad config exits 78, the status RestartPreventExitStatus= names.
    let dir = tempfile::tempdir().expect("tempdir");
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[unit]\nno_such_key = 1\n").expect("write");
    let out = Command::new(&bin)
        .args(["--check-config", "--config"])
        .arg(&bad)
        .output()
        .expect("run coldsprayd");
    assert_eq!(out.status.code(), Some(78));
    assert!(unit.contains("RestartPreventExitStatus=78"));
    // ExecStopPost= on the simulated unit: succeeds without touching hardware.
    let sim = dir.path().join("sim.toml");
    std::fs::write(&sim, "[unit]\nbackend = \"sim\"\n").expect("write");
    let out = Command::new(&bin)
        .args(["--safe-off", "--config"])
        .arg(&sim)
        .output()
        .expect("run coldsprayd");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn kiosk_unit_text() -> String {
    std::fs::read_to_string(repo().join("systemd/coldspray-kiosk.service"))
        .expect("read the kiosk unit")
}

/// The kiosk's unit runs the kiosk under cage on tty1 in a logind session (PAM), as its own
/// user in coldspray-operator, instead of the getty there.
#[test]
fn kiosk_unit_runs_cage_on_tty1_as_its_own_operator_user() {
    let _ticket = coldspray_e2e::gate::shared();
    let unit = kiosk_unit_text();
    let has = |line: &str| unit.lines().any(|l| l.trim() == line);
    for line in [
        "ExecStart=/usr/bin/cage -- /usr/bin/coldspray-kiosk --fullscreen",
        "User=_coldspray-kiosk",
        "SupplementaryGroups=coldspray-operator",
        "PAMName=coldspray-kiosk",
        "TTYPath=/dev/tty1",
        "StandardInput=tty-fail",
        "Conflicts=getty@tty1.service",
        "Restart=always",
        "WantedBy=graphical.target",
    ] {
        assert!(has(line), "`{line}` missing from the kiosk unit");
    }
    // The PAM service it names is shipped, and opens a logind session.
    let pam = std::fs::read_to_string(repo().join("packaging/debian/pam/coldspray-kiosk"))
        .expect("the PAM file");
    assert!(
        pam.lines().any(|l| l.split_whitespace().collect::<Vec<_>>()
            == ["session", "required", "pam_systemd.so"]),
        "{pam}"
    );
    // Packaged as the unit file and the PAM conffile cargo-deb installs.
    let manifest =
        std::fs::read_to_string(repo().join("kiosk/Cargo.toml")).expect("kiosk/Cargo.toml");
    assert!(
        manifest.contains("unit-name = \"coldspray-kiosk\""),
        "{manifest}"
    );
    assert!(
        manifest.contains("\"etc/pam.d/coldspray-kiosk\""),
        "{manifest}"
    );
}

#[test]
fn kiosk_unit_verifies_clean() {
    let _ticket = coldspray_e2e::gate::shared();
    if !have("systemd-analyze") {
        println!("SKIP: systemd-analyze not installed (Debian package `systemd`)");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    // verify checks that ExecStart= names an executable: stand-ins for cage and the kiosk
    // (neither need be installed on the test machine).
    let mut unit = kiosk_unit_text();
    for name in ["cage", "coldspray-kiosk"] {
        let stub = dir.path().join(name);
        std::fs::write(&stub, "#!/bin/sh\nexit 0\n").expect("stub");
        let mut perm = std::fs::metadata(&stub).expect("stat").permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut perm, 0o755);
        std::fs::set_permissions(&stub, perm).expect("chmod");
        unit = unit.replace(&format!("/usr/bin/{name}"), &stub.display().to_string());
    }
    let path = dir.path().join("coldspray-kiosk.service");
    std::fs::write(&path, unit).expect("write unit");
    verify_clean(&path, &[("1", "coldspray-kiosk.1")]);
}

#[test]
fn kiosk_sysusers_puts_its_user_in_the_operator_group() {
    let _ticket = coldspray_e2e::gate::shared();
    let Some((passwd, group)) = sysusers("systemd/coldspray-kiosk.sysusers") else {
        return;
    };
    let user = passwd
        .lines()
        .find(|l| l.starts_with("_coldspray-kiosk:"))
        .unwrap_or_else(|| panic!("no _coldspray-kiosk in {passwd}"));
    let f: Vec<&str> = user.split(':').collect();
    assert!(
        f[2].parse::<u32>().expect("uid") < 1000,
        "not a system uid: {user}"
    );
    assert_eq!(f[6], "/usr/sbin/nologin", "shell: {user}");
    let operators = group
        .lines()
        .find(|l| l.starts_with("coldspray-operator:"))
        .unwrap_or_else(|| panic!("no coldspray-operator in {group}"));
    let members = operators.rsplit(':').next().unwrap_or_default();
    assert!(
        members.split(',').any(|m| m == "_coldspray-kiosk"),
        "{operators}"
    );
}
