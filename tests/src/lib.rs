//! Shared helpers for the end-to-end tests: locating the built binaries and starting them,
//! a private `dbus-daemon` running the shipped bus policy, test accounts, and a control
//! loop played by the test for in-process D-Bus tests, and the gate that keeps the tests
//! that must run alone apart from the others in the one test binary (`tests/tests/e2e.rs`).

pub mod fake_core;
pub mod gate;
pub mod introspect;
pub mod metrics_fixtures;
pub mod metrics_support;
pub mod rel;

use anyhow::{bail, Context, Result};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;

/// Root of the repository (parent of `tests/`).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// The target directory the test binary runs from (`.../target/debug`).
fn target_profile_dir() -> PathBuf {
    if let Ok(exe) = std::env::current_exe() {
        // .../target/debug/deps/test-xxxx -> .../target/debug
        if let Some(dir) = exe.parent().and_then(Path::parent) {
            return dir.to_path_buf();
        }
    }
    repo_root().join("target").join("debug")
}

/// Builds the daemon's binaries once per test process (`cargo build -p coldsprayd --bins`)
/// and returns the path of `name` (`coldsprayd` or `coldsprayctl`).
pub fn binary(name: &str) -> Result<PathBuf> {
    static BUILT: OnceLock<std::result::Result<(), String>> = OnceLock::new();
    let built = BUILT.get_or_init(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "-p", "coldsprayd", "--bins"])
            .current_dir(repo_root())
            .status()
            .map_err(|e| e.to_string())?;
        if status.success() {
            Ok(())
        } else {
            Err(format!("cargo build failed: {status}"))
        }
    });
    if let Err(e) = built {
        bail!("{e}");
    }
    let path = target_profile_dir().join(name);
    if !path.exists() {
        bail!("{} not found after build", path.display());
    }
    Ok(path)
}

/// A scratch directory removed on drop, readable by every uid (so a second uid can reach
/// the bus socket inside it).
pub struct TempDir(PathBuf);

impl TempDir {
    /// Creates a fresh directory under the system temp dir.
    pub fn new(tag: &str) -> Result<TempDir> {
        use std::os::unix::fs::PermissionsExt;
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("coldspray-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755))?;
        Ok(TempDir(dir))
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The name of the user running the tests.
pub fn current_user() -> String {
    let out = Command::new("id").arg("-un").output();
    match out {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout).trim().to_string(),
        _ => std::env::var("USER").unwrap_or_else(|_| "root".into()),
    }
}

/// True when the tests run as root (CI does).
pub fn is_root() -> bool {
    current_user() == "root"
}

/// The shipped bus policy, adapted for a private bus: `_coldspray` (owner) becomes the user
/// running the daemon, and `root` becomes the test user when the tests do not run as root.
pub fn adapted_policy(owner: &str) -> Result<String> {
    let shipped =
        std::fs::read_to_string(repo_root().join("packaging/dbus/org.coldspray.ColdSpray1.conf"))
            .context("reading the shipped policy")?;
    let mut policy = shipped.replace("user=\"_coldspray\"", &format!("user=\"{owner}\""));
    if !is_root() {
        policy = policy.replace("user=\"root\"", &format!("user=\"{}\"", current_user()));
    }
    Ok(policy)
}

/// The bus-wide defaults of Debian's `/usr/share/dbus-1/system.conf` (deny owning and method
/// calls, allow replies and signals, allow talking to the bus): without the reply rules every
/// client hangs.
pub const SYSTEM_DEFAULTS: &str = r#"
  <policy context="default">
    <allow user="*"/>
    <deny own="*"/>
    <deny send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_requested_reply="true" send_type="method_return"/>
    <allow send_requested_reply="true" send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow receive_type="signal"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus"/>
    <allow send_destination="org.freedesktop.DBus"
           send_interface="org.freedesktop.DBus.Introspectable"/>
    <allow send_destination="org.freedesktop.DBus"
           send_interface="org.freedesktop.DBus.Properties"/>
    <deny send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus"
          send_member="UpdateActivationEnvironment"/>
  </policy>
"#;

/// A private `dbus-daemon` with system-bus semantics and the shipped ColdSpray policy.
pub struct PrivateBus {
    child: Child,
    address: String,
    _dir: TempDir,
}

impl PrivateBus {
    /// Starts a bus whose ColdSpray name may be owned by `owner` (a user name).
    pub fn start(owner: &str) -> Result<PrivateBus> {
        PrivateBus::start_with_policy(&adapted_policy(owner)?)
    }

    /// Starts a bus with the Debian defaults and this ColdSpray policy file text.
    pub fn start_with_policy(policy: &str) -> Result<PrivateBus> {
        let dir = TempDir::new("bus")?;
        let policy_path = dir.path().join("coldspray.conf");
        std::fs::write(&policy_path, policy)?;
        let socket = dir.path().join("bus.sock");
        let config = format!(
            r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path={socket}</listen>
  <auth>EXTERNAL</auth>
{SYSTEM_DEFAULTS}
  <include>{policy}</include>
</busconfig>
"#,
            socket = socket.display(),
            policy = policy_path.display()
        );
        let config_path = dir.path().join("bus.conf");
        std::fs::write(&config_path, config)?;
        let mut child = Command::new("dbus-daemon")
            .arg(format!("--config-file={}", config_path.display()))
            .args(["--nofork", "--nopidfile", "--print-address=1"])
            .stdout(Stdio::piped())
            .stderr(
                std::fs::File::create(dir.path().join("bus.log"))
                    .map(Stdio::from)
                    .unwrap_or_else(|_| Stdio::null()),
            )
            .spawn()
            .context("starting dbus-daemon (Debian package `dbus`)")?;
        let stdout = child.stdout.take().context("dbus-daemon stdout")?;
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        let address = line.trim().to_string();
        if address.is_empty() {
            let _ = child.kill();
            bail!("dbus-daemon printed no address");
        }
        // Let every uid reach the socket (the policy, not file modes, decides).
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o777));
        Ok(PrivateBus {
            child,
            address,
            _dir: dir,
        })
    }

    /// The bus address (`unix:path=...,guid=...`).
    pub fn address(&self) -> &str {
        &self.address
    }

    /// A new client connection to this bus.
    pub async fn connect(&self) -> Result<zbus::Connection> {
        Ok(zbus::connection::Builder::address(self.address.as_str())?
            .build()
            .await?)
    }
}

impl Drop for PrivateBus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A test account created (once) when running as root: `(uid, gid)`.
pub fn ensure_user(name: &str, groups: &[&str]) -> Result<(u32, u32)> {
    if !is_root() {
        bail!("creating test users needs root");
    }
    // Tests of one binary run in parallel and may ask for the same account at once, and other
    // processes (another test binary, a package install) may edit /etc/passwd at the same
    // time: one account at a time here, and a failed useradd is retried until the account
    // exists or the tries run out.
    static ACCOUNTS: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one_at_a_time = ACCOUNTS.lock().unwrap_or_else(|p| p.into_inner());
    for g in groups {
        let _ = Command::new("groupadd").args(["-f", g]).status()?;
    }
    let exists = Command::new("id").arg(name).output()?.status.success();
    if !exists {
        let mut c = Command::new("useradd");
        c.args([
            "--no-create-home",
            "--shell",
            "/usr/sbin/nologin",
            "--user-group",
        ]);
        if !groups.is_empty() {
            c.args(["--groups", &groups.join(",")]);
        }
        c.arg(name);
        let mut tries = 0;
        loop {
            let st = c.status()?;
            let exists = Command::new("id").arg(name).output()?.status.success();
            if st.success() || exists {
                break;
            }
            tries += 1;
            if tries == 10 {
                bail!("useradd {name} failed ({st}) 10 times");
            }
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
    } else if !groups.is_empty() {
        let _ = Command::new("usermod")
            .args(["-a", "-G", &groups.join(","), name])
            .status()?;
    }
    let id = |flag: &str| -> Result<u32> {
        let o = Command::new("id").args([flag, name]).output()?;
        Ok(String::from_utf8_lossy(&o.stdout).trim().parse()?)
    };
    Ok((id("-u")?, id("-g")?))
}

/// A command that runs `program` as another uid via `setpriv`: with the account's groups
/// (`init_groups`) or with no supplementary group at all.
pub fn as_uid(uid: u32, gid: u32, init_groups: bool, program: &Path) -> Command {
    let mut c = Command::new("setpriv");
    c.arg(format!("--reuid={uid}"))
        .arg(format!("--regid={gid}"));
    if init_groups {
        c.arg("--init-groups");
    } else {
        c.arg("--clear-groups");
    }
    c.arg("--").arg(program);
    c
}
