//! Helpers for the reliability suite (`tests/tests/rel_*.rs`): the real `coldsprayd` on the
//! simulated unit, on a private bus, killed and restarted at will, and a small D-Bus client
//! that reads properties straight from the service (no proxy cache).

use crate::introspect::{NAME, PATH};
use crate::{binary, PrivateBus};
use anyhow::{bail, Context, Result};
use coldsprayd::dbus::proxy;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use zbus::zvariant::{DynamicType, OwnedValue};

/// Interface names.
pub const UNIT: &str = "org.coldspray.ColdSpray1.Unit";
/// Simulator interface.
pub const SIM: &str = "org.coldspray.ColdSpray1.Simulator";
/// Sessions interface.
pub const SESSIONS: &str = "org.coldspray.ColdSpray1.Sessions";
/// Protocols interface.
pub const PROTOCOLS: &str = "org.coldspray.ColdSpray1.Protocols";
/// Maintenance interface.
pub const MAINT: &str = "org.coldspray.ColdSpray1.Maintenance";

/// An `a{sv}` dictionary.
pub type Dict = HashMap<String, OwnedValue>;
/// One entry of `ActiveAlarms`.
pub use coldsprayd::dbus::convert::AlarmTuple;
/// One point of a session curve (`Sessions.Get`).
pub use coldsprayd::dbus::convert::CurvePoint;

/// True when the long ("full") form of the reliability suite was asked for.
pub fn full() -> bool {
    std::env::var_os("COLDSPRAY_FULL").is_some_and(|v| v != "0")
}

/// An environment number, or `default`.
pub fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A small deterministic generator (xorshift64*) so a failing run can be replayed by seed.
pub struct Rng(u64);

impl Rng {
    /// From a seed (0 is replaced).
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
    /// Uniform in `[a, b)`.
    pub fn range_f64(&mut self, a: f64, b: f64) -> f64 {
        a + (b - a) * (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The real daemon on the simulated unit, serving on a private bus.
pub struct SimDaemon {
    child: Option<Child>,
    /// Its configuration file.
    pub config: PathBuf,
    /// Its state directory (treatment log).
    pub state: PathBuf,
    /// Its stderr, appended across restarts.
    pub log: PathBuf,
    /// `[sim] speed`.
    pub speed: f64,
    /// How many times it was started.
    pub starts: u32,
}

impl SimDaemon {
    /// Writes a config under `dir` and starts the daemon. `sim_extra` are lines inside `[sim]`;
    /// `extra` are further sections (`[safety]`, `[store]`, ...), never `[unit]`, `[sim]` or
    /// `[dbus]`.
    pub fn spawn(
        bus: &PrivateBus,
        dir: &Path,
        speed: f64,
        sim_extra: &str,
        extra: &str,
    ) -> Result<SimDaemon> {
        SimDaemon::spawn_with_metrics(bus, dir, speed, sim_extra, extra, None)
    }

    /// As [`SimDaemon::spawn`]; with `Some(port)` the daemon serves `/metrics` on
    /// `127.0.0.1:port` (and the config must accept it), with `None` its metrics server is off.
    pub fn spawn_with_metrics(
        bus: &PrivateBus,
        dir: &Path,
        speed: f64,
        sim_extra: &str,
        extra: &str,
        metrics_port: Option<u16>,
    ) -> Result<SimDaemon> {
        let state = dir.join("state");
        std::fs::create_dir_all(&state)?;
        let base = format!(
            "[unit]\nbackend = \"sim\"\nstate_dir = \"{}\"\n\n[sim]\nspeed = {speed:?}\n{sim_extra}\n\n[dbus]\naddress = \"{}\"\n\n{extra}\n",
            state.display(),
            bus.address()
        );
        let config = dir.join("coldspray.toml");
        let d = binary("coldsprayd")?;
        let section = match metrics_port {
            Some(port) => format!("\n[metrics]\nenabled = true\nlisten = \"127.0.0.1:{port}\"\n"),
            // `[metrics]` exists once the metrics part is merged: keep its server off then.
            None => "\n[metrics]\nenabled = false\n".to_string(),
        };
        let with_metrics = format!("{base}{section}");
        std::fs::write(&config, &with_metrics)?;
        let o = Command::new(&d)
            .args(["--config", &config.to_string_lossy(), "--check-config"])
            .output()?;
        if !o.status.success() && metrics_port.is_some() {
            bail!(
                "config with metrics rejected: {}\n{with_metrics}",
                String::from_utf8_lossy(&o.stderr)
            );
        }
        if !o.status.success() {
            std::fs::write(&config, &base)?;
            let o = Command::new(&d)
                .args(["--config", &config.to_string_lossy(), "--check-config"])
                .output()?;
            if !o.status.success() {
                bail!(
                    "config rejected: {}\n{base}",
                    String::from_utf8_lossy(&o.stderr)
                );
            }
        }
        let mut me = SimDaemon {
            child: None,
            config,
            state,
            log: dir.join("coldsprayd.log"),
            speed,
            starts: 0,
        };
        me.start()?;
        Ok(me)
    }

    /// (Re)starts the process with the same config; stderr is appended to [`Self::log`].
    pub fn start(&mut self) -> Result<()> {
        if self.child.is_some() {
            bail!("already running");
        }
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)?;
        let child = Command::new(binary("coldsprayd")?)
            .args(["--config", &self.config.to_string_lossy()])
            .env("COLDSPRAY_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .context("spawning coldsprayd")?;
        self.child = Some(child);
        self.starts += 1;
        Ok(())
    }

    /// Its pid, while running.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// SIGKILL, then reap.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM and wait up to 20 s; returns the exit code.
    pub fn terminate(&mut self) -> Option<i32> {
        let mut c = self.child.take()?;
        let _ = Command::new("kill")
            .args(["-TERM", &c.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(st)) = c.try_wait() {
                return st.code();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = c.kill();
        let _ = c.wait();
        None
    }

    /// Exited on its own? (`Some(status)` when it did.)
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }

    /// Everything it wrote to stderr so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Simulated seconds for a wall duration (an upper bound: the sim slows down, never
    /// speeds up, when an observer lags).
    pub fn sim_s(&self, wall: Duration) -> f64 {
        wall.as_secs_f64() * self.speed
    }
}

impl Drop for SimDaemon {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// `GET /metrics` from `127.0.0.1:port` over a real TCP connection: the body of a 200 answer.
pub fn scrape(port: u16) -> Result<String> {
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let r = crate::metrics_support::http_get(addr, "/metrics", &[])?;
    if r.status != 200 {
        bail!("/metrics answered {}", r.status);
    }
    Ok(r.body)
}

/// The sum of every sample of metric `name` (all label sets) in a text exposition; `None`
/// when no sample has that exact name.
pub fn metric_sum(exposition: &str, name: &str) -> Option<f64> {
    let mut found = None;
    for line in exposition.lines().filter(|l| !l.starts_with('#')) {
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let metric = series.split('{').next().unwrap_or_default();
        if metric != name {
            continue;
        }
        if let Ok(v) = value.parse::<f64>() {
            found = Some(found.unwrap_or(0.0) + v);
        }
    }
    found
}

/// The `q`-quantile (0..=1, nearest rank) of unsorted figures; NaN when there are none.
pub fn quantile(xs: &[f64], q: f64) -> f64 {
    if xs.is_empty() {
        return f64::NAN;
    }
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    let rank = (q.clamp(0.0, 1.0) * (v.len() - 1) as f64).round() as usize;
    v[rank.min(v.len() - 1)]
}

/// `VmRSS` of a process, KiB.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
}

/// Open file descriptors of a process.
pub fn open_fds(pid: u32) -> Option<usize> {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .ok()
        .map(|d| d.count())
}

/// CPU time (user + system) of a process, clock ticks.
pub fn cpu_ticks(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &s[s.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

/// A D-Bus client of the daemon that always asks the service (no property cache).
#[derive(Clone)]
pub struct Client {
    /// The connection.
    pub conn: zbus::Connection,
}

impl Client {
    /// Connects to the bus.
    pub async fn connect(bus: &PrivateBus) -> Result<Client> {
        Ok(Client {
            conn: bus.connect().await?,
        })
    }

    /// Calls `iface.method(body)` and deserializes the reply.
    pub async fn call<B, R>(&self, iface: &str, method: &str, body: &B) -> zbus::Result<R>
    where
        B: serde::Serialize + DynamicType,
        R: for<'d> zbus::zvariant::DynamicDeserialize<'d>,
    {
        let m = self
            .conn
            .call_method(Some(NAME), PATH, Some(iface), method, body)
            .await?;
        m.body().deserialize::<R>()
    }

    /// Calls a method that returns nothing.
    pub async fn call0<B>(&self, iface: &str, method: &str, body: &B) -> zbus::Result<()>
    where
        B: serde::Serialize + DynamicType,
    {
        self.conn
            .call_method(Some(NAME), PATH, Some(iface), method, body)
            .await
            .map(drop)
    }

    /// Reads one property from the service.
    pub async fn prop(&self, iface: &str, name: &str) -> zbus::Result<OwnedValue> {
        self.call("org.freedesktop.DBus.Properties", "Get", &(iface, name))
            .await
    }

    /// The Unit interface, properties read from the service on every call.
    pub async fn unit(&self) -> zbus::Result<proxy::UnitProxy<'static>> {
        proxy::uncached(&self.conn).await
    }

    /// `Unit.State`.
    pub async fn state(&self) -> Result<String> {
        Ok(self.unit().await?.state().await?)
    }

    /// `Unit.Outputs`.
    pub async fn outputs(&self) -> Result<HashMap<String, bool>> {
        Ok(self.unit().await?.outputs().await?)
    }

    /// `Unit.ActiveAlarms`.
    pub async fn alarms(&self) -> Result<Vec<AlarmTuple>> {
        let unit = self.unit().await?;
        unit.active_alarms()
            .await
            .map_err(|e| anyhow::anyhow!("ActiveAlarms: {e}"))
    }

    /// `Unit.Features`.
    pub async fn features(&self) -> Result<Vec<String>> {
        Ok(self.unit().await?.features().await?)
    }

    /// `Unit.CurrentSession` (empty when none).
    pub async fn current_session(&self) -> Result<Dict> {
        Ok(self.unit().await?.current_session().await?)
    }

    /// `Unit.Start(protocol, {})`.
    pub async fn start(&self, protocol: &str) -> zbus::Result<u64> {
        self.unit().await?.start(protocol, Dict::new()).await
    }

    /// `Unit.Acknowledge("")`: every alarm.
    pub async fn ack_all(&self) -> zbus::Result<()> {
        self.unit().await?.acknowledge("").await
    }

    /// `Sessions.Get(id)`: the record (without the curve).
    pub async fn session(&self, id: u64) -> zbus::Result<Dict> {
        let log: proxy::SessionsProxy = proxy::uncached(&self.conn).await?;
        let (d, _curve) = log.get_dict(id).await?;
        Ok(d)
    }

    /// `Sessions.List({limit: n})`.
    pub async fn sessions(&self, limit: u32) -> zbus::Result<Vec<Dict>> {
        let mut f = Dict::new();
        f.insert("limit".into(), OwnedValue::from(i64::from(limit)));
        let log: proxy::SessionsProxy = proxy::uncached(&self.conn).await?;
        log.list_dicts(f).await
    }

    /// Creates a protocol with `Protocols.Create` (no skin target: sprays its whole time).
    pub async fn create_untargeted(&self, name: &str, spray_s: f64) -> zbus::Result<()> {
        let mut p = Dict::new();
        p.insert("name".into(), str_value(name));
        p.insert("title".into(), str_value(name));
        p.insert("goal".into(), str_value("protect"));
        p.insert("spray_s".into(), OwnedValue::from(spray_s));
        let protocols: proxy::ProtocolsProxy = proxy::uncached(&self.conn).await?;
        protocols.create(p).await
    }

    /// Polls every `every` until `pred` holds; returns the value and the wall time it took.
    pub async fn wait_for<T, F, Fut>(
        &self,
        what: &str,
        limit: Duration,
        every: Duration,
        mut probe: F,
    ) -> Result<(T, Duration)>
    where
        F: FnMut(Client) -> Fut,
        Fut: std::future::Future<Output = Result<Option<T>>>,
    {
        let t0 = Instant::now();
        loop {
            if let Ok(Some(v)) = probe(self.clone()).await {
                return Ok((v, t0.elapsed()));
            }
            if t0.elapsed() > limit {
                bail!("timed out after {limit:?} waiting for {what}");
            }
            tokio::time::sleep(every).await;
        }
    }

    /// Waits until the daemon owns its name and answers `State`.
    pub async fn wait_up(&self, limit: Duration) -> Result<Duration> {
        self.wait_for(
            "the daemon on the bus",
            limit,
            Duration::from_millis(20),
            |c| async move { Ok(c.state().await.ok().map(|_| ())) },
        )
        .await
        .map(|(_, d)| d)
    }

    /// Waits for `ready`.
    pub async fn wait_ready(&self, limit: Duration) -> Result<Duration> {
        self.wait_for("ready", limit, Duration::from_millis(50), |c| async move {
            let r = bool::try_from(c.prop(UNIT, "Ready").await?)?;
            Ok(r.then_some(()))
        })
        .await
        .map(|(_, d)| d)
    }
}

/// A string as an owned variant value.
pub fn str_value(s: &str) -> OwnedValue {
    // A `str` value never holds a file descriptor, so this cannot fail.
    OwnedValue::try_from(zbus::zvariant::Value::from(s.to_string()))
        .unwrap_or_else(|_| OwnedValue::from(0u8))
}

/// A string field of a dictionary.
pub fn dict_str(d: &Dict, key: &str) -> Option<String> {
    d.get(key).and_then(|v| String::try_from(v.clone()).ok())
}

/// A float field of a dictionary.
pub fn dict_f64(d: &Dict, key: &str) -> Option<f64> {
    d.get(key).and_then(|v| f64::try_from(v.clone()).ok())
}

/// An unsigned integer field of a dictionary.
pub fn dict_u64(d: &Dict, key: &str) -> Option<u64> {
    d.get(key).and_then(|v| u64::try_from(v.clone()).ok())
}

/// Pump, spray valve and chiller all off (the actuators; fan, buzzer and lamps may run).
pub fn actuators_off(o: &HashMap<String, bool>) -> bool {
    ["pump", "spray_valve", "chiller"]
        .iter()
        .all(|k| !o.get(*k).copied().unwrap_or(true))
}

/// A fixed-width text table.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut w: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            if i < w.len() {
                w[i] = w[i].max(c.len());
            }
        }
    }
    let line = |cells: Vec<&str>| {
        cells
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c:<width$}", width = w[i]))
            .collect::<Vec<_>>()
            .join(" | ")
    };
    let mut out = line(header.to_vec());
    out.push('\n');
    out.push_str(
        &w.iter()
            .map(|n| "-".repeat(*n))
            .collect::<Vec<_>>()
            .join("-|-"),
    );
    for r in rows {
        out.push('\n');
        out.push_str(&line(r.iter().map(String::as_str).collect()));
    }
    out
}

/// Keeps one line of a reliability test's summary in
/// `target/<profile>/rel-summary/<test file>.txt` (rewritten by each run of the test binary
/// that reaches that file's tests), so `tests/check.sh` can show the tables of tests whose
/// output `cargo test` hides. `module` is the caller's `module_path!()`, e.g.
/// `e2e::rel_faults`: the file is named for the module below the binary's root.
pub fn keep(module: &str, line: &str) {
    use std::collections::BTreeSet;
    use std::io::Write;
    use std::sync::Mutex;
    // The files this run has already started afresh.
    static STARTED: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());
    let Ok(exe) = std::env::current_exe() else {
        return;
    };
    // target/<profile>/deps/e2e-0123abcd → target/<profile>/rel-summary/rel_faults.txt
    let Some(profile) = exe.parent().and_then(Path::parent) else {
        return;
    };
    let mut path = module.split("::");
    let (root, below) = (path.next(), path.next());
    let Some(name) = below.or(root) else {
        return;
    };
    let dir = profile.join("rel-summary");
    let path = dir.join(format!("{name}.txt"));
    {
        let mut started = STARTED.lock().unwrap_or_else(|p| p.into_inner());
        if started.insert(name.to_string()) {
            let _ = std::fs::create_dir_all(&dir);
            let _ = std::fs::write(&path, "");
        }
    }
    if let Ok(mut f) = std::fs::OpenOptions::new().append(true).open(&path) {
        let _ = writeln!(f, "{line}");
    }
}

/// `println!` that also [`keep`]s the line for the end-of-run reliability summary.
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => {{
        let line = format!($($arg)*);
        $crate::rel::keep(module_path!(), &line);
        println!("{line}");
    }};
}
