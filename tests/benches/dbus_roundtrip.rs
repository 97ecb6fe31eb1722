//! D-Bus round-trip figures on a real private dbus-daemon: a property Get on the ColdSpray
//! service next to `org.freedesktop.DBus.Peer.Ping` answered by the bus daemon itself (the
//! floor any service can reach), and calls per second sustained for 10 s
//! (`COLDSPRAY_BENCH_SECS` overrides), sequential and with 8 calls in flight.
//!
//! Run: `cargo bench -p coldspray-e2e --bench dbus_roundtrip`.

use coldspray_e2e::fake_core::FakeCore;
use coldspray_e2e::{current_user, PrivateBus};
use coldsprayd::dbus::proxy::{uncached, UnitProxy};
use coldsprayd::dbus::{self, BusChoice, DbusConfig};
use std::time::{Duration, Instant};

/// `Properties.Get(Unit, State)` through the typed proxy (uncached: every call goes to the
/// service).
async fn get_state(unit: &UnitProxy<'_>) {
    unit.state().await.expect("Get");
}

async fn ping_bus(c: &zbus::Connection) {
    c.call_method(
        Some("org.freedesktop.DBus"),
        "/org/freedesktop/DBus",
        Some("org.freedesktop.DBus.Peer"),
        "Ping",
        &(),
    )
    .await
    .expect("Ping");
}

fn summary(name: &str, mut us: Vec<f64>) -> f64 {
    us.sort_by(f64::total_cmp);
    let mean = us.iter().sum::<f64>() / us.len() as f64;
    let pct = |p: f64| us[((us.len() as f64 - 1.0) * p).round() as usize];
    println!(
        "{name:<34} n={:<6} mean {mean:>8.1} us  p50 {:>8.1} us  p99 {:>8.1} us",
        us.len(),
        pct(0.5),
        pct(0.99)
    );
    mean
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let secs: u64 = std::env::var("COLDSPRAY_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    // Debian's defaults allow only the org.freedesktop.DBus interface on the bus itself; open
    // Peer.Ping to it for the reference measurement.
    let policy = coldspray_e2e::adapted_policy(&current_user())
        .expect("policy")
        .replace(
            "</busconfig>",
            "<policy context=\"default\"><allow send_destination=\"org.freedesktop.DBus\" \
             send_interface=\"org.freedesktop.DBus.Peer\"/></policy></busconfig>",
        );
    let bus = PrivateBus::start_with_policy(&policy).expect("private bus");
    let core = FakeCore::start(None);
    let config = DbusConfig {
        bus: BusChoice::Session,
        address: Some(bus.address().to_string()),
    };
    let _server = dbus::start(core.handle.clone(), &config, false)
        .await
        .expect("serve")
        .expect("some");
    let c = bus.connect().await.expect("client");
    let unit: UnitProxy = uncached(&c).await.expect("Unit proxy");
    for _ in 0..200 {
        get_state(&unit).await;
        ping_bus(&c).await;
    }
    let n = 3000;
    let (mut g, mut p) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for _ in 0..n {
        let t = Instant::now();
        get_state(&unit).await;
        g.push(t.elapsed().as_secs_f64() * 1e6);
        let t = Instant::now();
        ping_bus(&c).await;
        p.push(t.elapsed().as_secs_f64() * 1e6);
    }
    println!(
        "dbus_roundtrip (private dbus-daemon, debug={})",
        cfg!(debug_assertions)
    );
    let gm = summary("Properties.Get Unit.State (daemon)", g);
    let pm = summary("Peer.Ping (bus daemon itself)", p);
    println!(
        "ratio Get/Ping                     {:.2}x (the service hop costs {:.1} us)",
        gm / pm,
        gm - pm
    );

    let run = Duration::from_secs(secs);
    let t = Instant::now();
    let mut count = 0u64;
    while t.elapsed() < run {
        get_state(&unit).await;
        count += 1;
    }
    println!(
        "sustained Get, 1 in flight, {secs} s:  {:.0} calls/s",
        count as f64 / t.elapsed().as_secs_f64()
    );
    let t = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let unit = unit.clone();
        tasks.push(tokio::spawn(async move {
            let mut k = 0u64;
            while t.elapsed() < run {
                get_state(&unit).await;
                k += 1;
            }
            k
        }));
    }
    let mut total = 0;
    for task in tasks {
        total += task.await.expect("task");
    }
    println!(
        "sustained Get, 8 in flight, {secs} s:  {:.0} calls/s",
        total as f64 / t.elapsed().as_secs_f64()
    );
    let calls = core.handle.telemetry.dbus_calls();
    get_state(&unit).await;
    println!(
        "service still answering after the run ({} method calls counted)",
        calls.len()
    );
}
