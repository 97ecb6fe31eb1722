//! Helpers for the metrics tests: the unpacked Prometheus tools, plain HTTP over TCP, a real
//! Prometheus server on loopback, and exposition parsing.

use anyhow::{anyhow, bail, Context, Result};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Builds (once per test process) and locates the `coldsprayd` binary.
pub fn build_daemon() -> Result<PathBuf> {
    crate::binary("coldsprayd")
}

/// The folder made by `tests/tools/fetch-prometheus.sh`, from `COLDSPRAY_PROMETHEUS_DIR`.
pub fn prometheus_dir() -> Result<PathBuf> {
    let dir = std::env::var_os("COLDSPRAY_PROMETHEUS_DIR").ok_or_else(|| {
        anyhow!(
            "COLDSPRAY_PROMETHEUS_DIR is not set: run `tests/tools/fetch-prometheus.sh DIR` \
             (Debian's prometheus and prometheus-node-exporter, unpacked, not installed) and \
             export COLDSPRAY_PROMETHEUS_DIR=DIR"
        )
    })?;
    Ok(PathBuf::from(dir))
}

/// One of the binaries in `$COLDSPRAY_PROMETHEUS_DIR/bin` (`promtool`, `prometheus`,
/// `prometheus-node-exporter`).
pub fn prometheus_tool(name: &str) -> Result<PathBuf> {
    let path = prometheus_dir()?.join("bin").join(name);
    if !path.exists() {
        bail!(
            "{} is missing: run `tests/tools/fetch-prometheus.sh $COLDSPRAY_PROMETHEUS_DIR`",
            path.display()
        );
    }
    Ok(path)
}

/// A loopback port that was free a moment ago.
pub fn free_port() -> Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

/// A child process killed (and reaped) when dropped.
pub struct ChildGuard {
    /// The process.
    pub child: Child,
    /// What it is, for messages.
    pub name: String,
}

impl ChildGuard {
    /// Starts `cmd` with stdout/stderr going to `log` (a file) and guards it.
    pub fn spawn(name: &str, cmd: &mut Command, log: &Path) -> Result<ChildGuard> {
        let out = std::fs::File::create(log)?;
        let err = out.try_clone()?;
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .with_context(|| format!("starting {name}"))?;
        Ok(ChildGuard {
            child,
            name: name.to_string(),
        })
    }

    /// Fails if the process has exited.
    pub fn check_running(&mut self) -> Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!("{} exited early: {status}", self.name);
        }
        Ok(())
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An HTTP answer.
#[derive(Debug)]
pub struct HttpResponse {
    /// Status code.
    pub status: u16,
    /// Header lines (`name: value`), names lower-cased.
    pub headers: Vec<(String, String)>,
    /// Body (de-chunked).
    pub body: String,
}

impl HttpResponse {
    /// The first header with this (lower-case) name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A plain HTTP/1.1 GET over a real TCP connection (`Connection: close`).
pub fn http_get(
    addr: SocketAddr,
    path_and_query: &str,
    extra_headers: &[(&str, &str)],
) -> Result<HttpResponse> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut req = format!("GET {path_and_query} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (n, v) in extra_headers {
        req.push_str(&format!("{n}: {v}\r\n"));
    }
    req.push_str("\r\n");
    stream.write_all(req.as_bytes())?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    parse_response(&raw)
}

fn parse_response(raw: &[u8]) -> Result<HttpResponse> {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| anyhow!("no end of headers in {} bytes", raw.len()))?;
    let head = std::str::from_utf8(&raw[..split])?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status: u16 = status_line
        .split_whitespace()
        .nth(1)
        .ok_or_else(|| anyhow!("bad status line {status_line:?}"))?
        .parse()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    let chunked = headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
    if chunked {
        body = dechunk(&body)?;
    }
    Ok(HttpResponse {
        status,
        headers,
        body: String::from_utf8(body)?,
    })
}

fn dechunk(mut data: &[u8]) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let eol = data
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or_else(|| anyhow!("bad chunk"))?;
        let size = usize::from_str_radix(std::str::from_utf8(&data[..eol])?.trim(), 16)?;
        data = &data[eol + 2..];
        if size == 0 {
            return Ok(out);
        }
        out.extend_from_slice(data.get(..size).ok_or_else(|| anyhow!("short chunk"))?);
        data = data.get(size + 2..).ok_or_else(|| anyhow!("short chunk"))?;
    }
}

/// Percent-encodes a query-string value.
pub fn url_encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Polls `f` until it returns `Ok(Some(_))` or `timeout` passes; returns the last error.
pub fn wait_for<T>(timeout: Duration, mut f: impl FnMut() -> Result<Option<T>>) -> Result<T> {
    let deadline = Instant::now() + timeout;
    let mut last = anyhow!("timed out after {timeout:?}");
    loop {
        match f() {
            Ok(Some(v)) => return Ok(v),
            Ok(None) => {}
            Err(e) => last = e,
        }
        if Instant::now() >= deadline {
            return Err(last.context(format!("still not there after {timeout:?}")));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A real Prometheus server (Debian's, from `COLDSPRAY_PROMETHEUS_DIR`) on loopback, with a
/// temporary storage folder, scraping the given targets every second.
pub struct PrometheusServer {
    /// Its address.
    pub addr: SocketAddr,
    /// The process.
    pub process: ChildGuard,
}

impl PrometheusServer {
    /// Starts Prometheus in `dir` scraping `targets` (host:port) as job `coldspray`, and
    /// waits until it is ready.
    pub fn start(dir: &Path, targets: &[SocketAddr]) -> Result<PrometheusServer> {
        let targets: Vec<String> = targets.iter().map(|t| format!("'{t}'")).collect();
        let config = format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
             scrape_configs:\n  - job_name: coldspray\n    scrape_interval: 1s\n    \
             scrape_timeout: 1s\n    static_configs:\n      - targets: [{}]\n",
            targets.join(", ")
        );
        PrometheusServer::start_with(dir, &config, &[])
    }

    /// Starts Prometheus in `dir` with this configuration (YAML) and extra command-line
    /// flags, on a free loopback port, and waits until it is ready.
    pub fn start_with(dir: &Path, config: &str, flags: &[&str]) -> Result<PrometheusServer> {
        let bin = prometheus_tool("prometheus")?;
        let config_path = dir.join("prometheus.yml");
        std::fs::write(&config_path, config)?;
        let port = free_port()?;
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse()?;
        let mut cmd = Command::new(bin);
        cmd.arg(format!("--config.file={}", config_path.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .arg("--log.level=warn")
            .args(flags);
        let mut process = ChildGuard::spawn("prometheus", &mut cmd, &dir.join("prometheus.log"))?;
        wait_for(Duration::from_secs(30), || {
            process.check_running()?;
            Ok(http_get(addr, "/-/ready", &[])
                .ok()
                .filter(|r| r.status == 200)
                .map(|_| ()))
        })
        .with_context(|| {
            format!(
                "prometheus not ready; log:\n{}",
                std::fs::read_to_string(dir.join("prometheus.log")).unwrap_or_default()
            )
        })?;
        Ok(PrometheusServer { addr, process })
    }

    /// Runs an instant query and returns `(labels, value)` per result series.
    pub fn query(&self, expr: &str) -> Result<Vec<(serde_json::Value, f64)>> {
        let r = http_get(
            self.addr,
            &format!("/api/v1/query?query={}", url_encode(expr)),
            &[],
        )?;
        if r.status != 200 {
            bail!("query {expr:?}: HTTP {}: {}", r.status, r.body);
        }
        let v: serde_json::Value = serde_json::from_str(&r.body)?;
        let results = v["data"]["result"]
            .as_array()
            .ok_or_else(|| anyhow!("no result array in {}", r.body))?;
        results
            .iter()
            .map(|s| {
                let value = s["value"][1]
                    .as_str()
                    .ok_or_else(|| anyhow!("no value in {s}"))?
                    .parse::<f64>()?;
                Ok((s["metric"].clone(), value))
            })
            .collect()
    }

    /// Runs an instant query expected to give exactly one series and returns its value.
    pub fn query_one(&self, expr: &str) -> Result<Option<f64>> {
        let r = self.query(expr)?;
        match r.len() {
            0 => Ok(None),
            1 => Ok(Some(r[0].1)),
            n => bail!("{expr:?} gave {n} series: {r:?}"),
        }
    }
}

/// Metric names of the samples in a Prometheus text exposition (histogram series keep their
/// `_bucket`/`_sum`/`_count` suffixes).
pub fn sample_names(exposition: &str) -> std::collections::BTreeSet<String> {
    exposition
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| l.split(['{', ' ']).next())
        .map(str::to_string)
        .collect()
}

/// Whether a finished tool succeeded, and everything it printed (stdout then stderr).
pub fn tool_result(out: &std::process::Output) -> (bool, String) {
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), printed)
}

/// Runs one of the unpacked Prometheus tools (`promtool`, `amtool`) in `dir`; returns
/// (success, everything it printed).
pub fn run_tool(name: &str, args: &[&str], dir: &Path) -> (bool, String) {
    let bin = prometheus_tool(name).unwrap_or_else(|e| panic!("{e:#}"));
    let out = Command::new(bin)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("run {name}: {e}"));
    tool_result(&out)
}

/// The `coldsprayd` binary on the simulated unit with no D-Bus, its metrics on `target`,
/// state and log in `dir`; `unit_keys` adds lines to `[unit]`, `extra` adds `[section]`s to
/// the configuration and `args` command-line arguments. Returns once `/metrics` answers.
pub fn start_sim_daemon(
    dir: &Path,
    target: SocketAddr,
    unit_keys: &str,
    extra: &str,
    args: &[&str],
) -> Result<(ChildGuard, PathBuf)> {
    let daemon = build_daemon()?;
    let state_dir = dir.join("state");
    std::fs::create_dir_all(&state_dir)?;
    let config = dir.join("coldspray.toml");
    std::fs::write(
        &config,
        format!(
            "[unit]\nbackend = \"sim\"\nstate_dir = \"{}\"\n{unit_keys}\n\n[dbus]\n\
             bus = \"none\"\n\n[metrics]\nlisten = \"{target}\"\n\n{extra}",
            state_dir.display()
        ),
    )?;
    let mut cmd = Command::new(&daemon);
    cmd.arg("--config").arg(&config).args(args);
    let log = dir.join("coldsprayd.log");
    let mut child = ChildGuard::spawn("coldsprayd", &mut cmd, &log)?;
    wait_for(Duration::from_secs(30), || {
        child.check_running()?;
        Ok(http_get(target, "/metrics", &[])
            .ok()
            .filter(|r| r.status == 200))
    })
    .with_context(|| {
        format!(
            "daemon metrics never answered:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        )
    })?;
    Ok((child, log))
}
