//! Scrape latency of ColdSpray's `/metrics` next to Debian's prometheus-node-exporter, and
//! what concurrent scraping does to a simulated 100 Hz control loop's snapshot publishing.
//!
//! `COLDSPRAY_PROMETHEUS_DIR=DIR cargo bench -p coldsprayd --bench scrape`
//! (DIR from tests/tools/fetch-prometheus.sh). Prints figures; asserts nothing about timing.

use coldsprayd::api::Snapshot;
use coldsprayd::handle::{ControlHandle, UnitInfo};
use coldsprayd::metrics::{self, MetricsConfig};
use coldsprayd::UnitState;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const SCRAPES: usize = 300;

fn scrape(addr: SocketAddr) -> std::io::Result<usize> {
    let mut s = TcpStream::connect(addr)?;
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")?;
    let mut buf = Vec::with_capacity(64 * 1024);
    s.read_to_end(&mut buf)?;
    if !buf.starts_with(b"HTTP/1.1 200") {
        return Err(std::io::Error::other("not 200"));
    }
    Ok(buf.len())
}

struct Stats {
    median: Duration,
    p99: Duration,
    bytes: usize,
}

fn measure(addr: SocketAddr) -> std::io::Result<Stats> {
    for _ in 0..20 {
        scrape(addr)?; // warm-up
    }
    let mut times = Vec::with_capacity(SCRAPES);
    let mut bytes = 0;
    for _ in 0..SCRAPES {
        let t = Instant::now();
        bytes = scrape(addr)?;
        times.push(t.elapsed());
    }
    times.sort();
    Ok(Stats {
        median: times[times.len() / 2],
        p99: times[times.len() * 99 / 100],
        bytes,
    })
}

fn busy_snapshot() -> Snapshot {
    let mut s = Snapshot::power_on(4.0);
    s.state = UnitState::Ready;
    s.ready = true;
    s.readings = [Some(4.1), Some(5.0), Some(30.0), Some(31.0), Some(1.2)];
    s
}

/// A 100 Hz loop that publishes a snapshot per step for `secs`; returns the worst and the
/// 99th-percentile time one publish took, and the worst lateness of a step.
fn control_loop(
    ends: &coldsprayd::handle::HandleEnds,
    secs: u64,
) -> (Duration, Duration, Duration) {
    let period = Duration::from_millis(10);
    let start = Instant::now();
    let mut next = start + period;
    let mut sends = Vec::new();
    let mut worst_late = Duration::ZERO;
    let mut snap = busy_snapshot();
    while start.elapsed() < Duration::from_secs(secs) {
        snap.at += period;
        let t = Instant::now();
        let _ = ends.snapshot.send(Arc::new(snap.clone()));
        sends.push(t.elapsed());
        let now = Instant::now();
        if now < next {
            std::thread::sleep(next - now);
        }
        worst_late = worst_late.max(Instant::now().saturating_duration_since(next));
        next += period;
    }
    sends.sort();
    (
        sends[sends.len() - 1],
        sends[sends.len() * 99 / 100],
        worst_late,
    )
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let info = UnitInfo {
        version: "bench".into(),
        backend: "sim".into(),
        features: vec![],
    };
    let (handle, ends): (ControlHandle, _) =
        ControlHandle::new(info, busy_snapshot(), Vec::new(), None, None);
    let config = MetricsConfig {
        enabled: true,
        listen: "127.0.0.1:0".parse().expect("addr"),
    };
    let server = rt
        .block_on(metrics::start(handle.clone(), &config))
        .expect("start metrics");
    let ours = server.local_addr();
    let ours_stats = measure(ours).expect("scrape coldspray");
    println!(
        "coldspray /metrics:     median {:>8.1} µs  p99 {:>8.1} µs  {} bytes  ({SCRAPES} scrapes, new connection each)",
        ours_stats.median.as_secs_f64() * 1e6,
        ours_stats.p99.as_secs_f64() * 1e6,
        ours_stats.bytes
    );

    match std::env::var_os("COLDSPRAY_PROMETHEUS_DIR") {
        None => println!("node exporter: skipped (set COLDSPRAY_PROMETHEUS_DIR, see tests/tools/fetch-prometheus.sh)"),
        Some(dir) => {
            let bin = PathBuf::from(dir).join("bin/prometheus-node-exporter");
            let port = TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("free port")
                .port();
            let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
            let mut child = Command::new(&bin)
                .arg(format!("--web.listen-address={addr}"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| panic!("start {}: {e}", bin.display()));
            let deadline = Instant::now() + Duration::from_secs(10);
            while scrape(addr).is_err() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(100));
            }
            let node = measure(addr).expect("scrape node exporter");
            let _ = child.kill();
            let _ = child.wait();
            println!(
                "node_exporter /metrics: median {:>8.1} µs  p99 {:>8.1} µs  {} bytes",
                node.median.as_secs_f64() * 1e6,
                node.p99.as_secs_f64() * 1e6,
                node.bytes
            );
            println!(
                "ratio coldspray/node_exporter: median {:.3}  p99 {:.3}",
                ours_stats.median.as_secs_f64() / node.median.as_secs_f64(),
                ours_stats.p99.as_secs_f64() / node.p99.as_secs_f64()
            );
        }
    }

    // Control-loop publishing with and without a scraper hammering /metrics plus hung clients.
    let (max, p99, late) = control_loop(&ends, 3);
    println!(
        "100 Hz publish, idle:      publish max {:>6.1} µs p99 {:>6.1} µs; worst step lateness {:>7.1} µs",
        max.as_secs_f64() * 1e6,
        p99.as_secs_f64() * 1e6,
        late.as_secs_f64() * 1e6
    );
    let stop = Arc::new(AtomicBool::new(false));
    let mut hung = Vec::new();
    for _ in 0..8 {
        if let Ok(mut s) = TcpStream::connect(ours) {
            let _ = s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n");
            hung.push(s);
        }
    }
    let hammer = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                if scrape(ours).is_ok() {
                    n += 1;
                }
            }
            n
        })
    };
    let (max, p99, late) = control_loop(&ends, 3);
    stop.store(true, Ordering::Relaxed);
    let n = hammer.join().unwrap_or(0);
    println!(
        "100 Hz publish, scraped:   publish max {:>6.1} µs p99 {:>6.1} µs; worst step lateness {:>7.1} µs ({n} scrapes in 3 s, 8 hung clients)",
        max.as_secs_f64() * 1e6,
        p99.as_secs_f64() * 1e6,
        late.as_secs_f64() * 1e6
    );
    drop(hung);
    rt.block_on(server.shutdown());
}
