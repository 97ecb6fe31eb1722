//! How soon a kiosk hears of a state change (issue #17, API gap 1): the release daemon on the
//! simulated unit (speed 1) on a real private dbus-daemon; `Maintenance.Enter` (ready →
//! maintenance) and `Maintenance.Exit` (maintenance → ready or precooling), 60 rounds each by default
//! (`COLDSPRAY_BENCH_ROUNDS`). For each, the time from the method's reply to the
//! `PropertiesChanged` carrying the new State (0 when the signal came first), and from the
//! call to the signal; p50 / p99 / max, and whether Ready came in the same signal. Goal:
//! p99 ≤ 10 ms. Prints only: timing is not asserted in `cargo test`.
//!
//! Run: `cargo bench -p coldspray-e2e --bench props_latency`.

use coldspray_e2e::rel::{env_num, quantile, Client, SimDaemon};
use coldspray_e2e::{current_user, PrivateBus, TempDir};
use futures_util::StreamExt;
use std::time::{Duration, Instant};

const UNIT: &str = "org.coldspray.ColdSpray1.Unit";
const MAINT: &str = "org.coldspray.ColdSpray1.Maintenance";

fn line(name: &str, ms: &[f64]) {
    println!(
        "{name:<44} n={:<4} p50 {:>7.2} ms  p99 {:>7.2} ms  max {:>7.2} ms",
        ms.len(),
        quantile(ms, 0.5),
        quantile(ms, 0.99),
        ms.iter().cloned().fold(0.0, f64::max)
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    // The release daemon, built as the bench itself is.
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let built = std::process::Command::new(cargo)
        .args(["build", "--release", "-p", "coldsprayd", "--bins"])
        .current_dir(coldspray_e2e::repo_root())
        .status()
        .expect("cargo build");
    assert!(built.success(), "building the release daemon failed");
    let rounds = env_num("COLDSPRAY_BENCH_ROUNDS", 60) as usize;
    let bus = PrivateBus::start(&current_user()).expect("private bus");
    let dir = TempDir::new("props-latency").expect("temp dir");
    let _daemon = SimDaemon::spawn(&bus, dir.path(), 1.0, "initial_reservoir_c = 4.0", "")
        .expect("daemon starts");
    let c = Client::connect(&bus).await.expect("client");
    c.wait_ready(Duration::from_secs(120)).await.expect("ready");
    let props = coldspray_e2e::fake_core::properties(&c.conn).await;
    let mut signals = props.receive_properties_changed().await.unwrap();
    let (mut after_reply, mut after_call) = (Vec::new(), Vec::new());
    let mut with_ready = 0;
    for _ in 0..rounds {
        for (method, into_maintenance) in [("Enter", true), ("Exit", false)] {
            let called = Instant::now();
            c.call0(MAINT, method, &()).await.expect(method);
            let replied = Instant::now();
            let (heard, ready_too) = tokio::time::timeout(Duration::from_secs(5), async {
                while let Some(sig) = signals.next().await {
                    let args = sig.args().expect("args");
                    if args.interface_name.as_str() != UNIT {
                        continue;
                    }
                    let Some(state) = args.changed_properties.get("State") else {
                        continue;
                    };
                    let state = String::try_from(state.try_to_owned().unwrap()).unwrap_or_default();
                    if (state == "maintenance") == into_maintenance {
                        let ready = args.changed_properties.contains_key("Ready");
                        return (Instant::now(), ready);
                    }
                }
                panic!("signal stream ended")
            })
            .await
            .unwrap_or_else(|_| panic!("no PropertiesChanged for State after {method} within 5 s"));
            after_reply.push(heard.saturating_duration_since(replied).as_secs_f64() * 1e3);
            after_call.push((heard - called).as_secs_f64() * 1e3);
            with_ready += usize::from(ready_too);
        }
        c.wait_ready(Duration::from_secs(60))
            .await
            .expect("ready again");
    }
    println!("PropertiesChanged(State) latency, release daemon on the simulated unit, speed 1");
    line("method reply -> PropertiesChanged(State)", &after_reply);
    line("method call  -> PropertiesChanged(State)", &after_call);
    println!(
        "Ready in the same signal as State: {with_ready} of {} (the rest left Ready unchanged)",
        after_reply.len()
    );
    let p99 = quantile(&after_reply, 0.99);
    println!(
        "goal p99 <= 10 ms after the reply: {}",
        if p99 <= 10.0 { "met" } else { "NOT met" }
    );
}
