//! Soak: the real `coldsprayd` on the simulated unit at accelerated time through a clinic-day
//! pattern — a laser pass with auto-start every 5 simulated minutes, a water-low fault raised,
//! cleared and acknowledged every 20, a water change every hour — while its resident memory
//! and open file descriptors are sampled. Both must stay flat, and the daemon must log no
//! ERROR line (the pattern raises only medium alarms, which log at WARN).
//!
//! Bounded form: 1 simulated hour at speed 100 (~40 s). Full form: `COLDSPRAY_FULL=1` (24
//! simulated hours at speed 500), or `COLDSPRAY_SOAK_HOURS` / `COLDSPRAY_SOAK_SPEED`.

use coldspray_e2e::rel::*;
use coldspray_e2e::{current_user, PrivateBus, TempDir};
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clinic_day_leaves_memory_and_descriptors_flat() {
    let _ticket = coldspray_e2e::gate::alone();
    let hours = env_num("COLDSPRAY_SOAK_HOURS", if full() { 24 } else { 1 });
    let speed = env_num("COLDSPRAY_SOAK_SPEED", if full() { 500 } else { 100 }) as f64;
    let bus = PrivateBus::start(&current_user()).expect("private bus");
    let dir = TempDir::new("rel-soak").unwrap();
    let mut d =
        SimDaemon::spawn(&bus, dir.path(), speed, "initial_reservoir_c = 4.0", "").expect("daemon");
    let c = Client::connect(&bus).await.unwrap();
    c.wait_up(Duration::from_secs(60)).await.unwrap();
    c.wait_ready(Duration::from_secs(120)).await.unwrap();
    c.call0(UNIT, "Arm", &("co2_fractional",)).await.unwrap();
    let pid = d.pid().expect("running");

    // Wall time of one simulated minute (the daemon slows the sim when the machine is busy, so
    // this is the fastest it can go; the pattern just becomes sparser, never denser).
    let minute = Duration::from_secs_f64(60.0 / speed);
    let total = minute * (60 * hours as u32);
    let mut curve: Vec<(f64, u64, usize)> = Vec::new();
    let sample = |at: f64, curve: &mut Vec<(f64, u64, usize)>| {
        if let (Some(rss), Some(fds)) = (rss_kib(pid), open_fds(pid)) {
            curve.push((at, rss, fds));
        }
    };
    let t0 = Instant::now();
    let mut sessions = 0u32;
    let mut faults = 0u32;
    let mut minute_no = 0u32;
    while t0.elapsed() < total {
        minute_no += 1;
        if minute_no.is_multiple_of(5) {
            c.call0(SIM, "LaserPass", &(2.0f64, 1.0f64)).await.unwrap();
            sessions += 1;
        }
        if minute_no % 20 == 10 {
            c.call0(SIM, "InjectFault", &("water_low", ""))
                .await
                .unwrap();
            tokio::time::sleep(minute / 4).await;
            c.call0(SIM, "ClearFault", &("water_low", ""))
                .await
                .unwrap();
            tokio::time::sleep(minute / 4).await;
            c.ack_all().await.unwrap();
            faults += 1;
        }
        if minute_no.is_multiple_of(60) {
            c.call0(SIM, "Refill", &(1.5f64, 4.0f64)).await.unwrap();
            c.call0(MAINT, "RecordWaterChange", &()).await.unwrap();
        }
        if minute_no.is_multiple_of(10) {
            sample(t0.elapsed().as_secs_f64() * speed / 3600.0, &mut curve);
        }
        tokio::time::sleep(minute).await;
    }
    sample(t0.elapsed().as_secs_f64() * speed / 3600.0, &mut curve);
    let logged = c.sessions(10_000).await.unwrap();
    let state = c.state().await.unwrap();
    assert!(d.exited().is_none(), "the daemon died during the soak");
    assert_eq!(d.terminate(), Some(0), "clean stop after the soak");
    let log = d.stderr();
    if std::env::var_os("COLDSPRAY_SOAK_LOG").is_some() {
        println!("{log}");
    }

    coldspray_e2e::say!(
        "soak: {hours} simulated h at speed {speed} in {:.0} s wall; {sessions} laser passes, \
         {} sessions logged, {faults} water-low faults acknowledged; final state {state}",
        t0.elapsed().as_secs_f64(),
        logged.len()
    );
    coldspray_e2e::say!("{:>10} {:>10} {:>6}", "sim h", "RSS KiB", "fds");
    for (h, rss, fds) in &curve {
        coldspray_e2e::say!("{h:>10.2} {rss:>10} {fds:>6}");
    }
    assert!(curve.len() >= 3, "too few samples: {curve:?}");
    // Memory: from the first sample (after warm-up) to the end, at most +20 % and +4 MiB.
    let (first, last) = (curve[1], curve[curve.len() - 1]);
    coldspray_e2e::say!(
        "endpoints: RSS {} -> {} KiB, fds {} -> {}",
        first.1,
        last.1,
        first.2,
        last.2
    );
    assert!(
        last.1 <= first.1 + first.1 / 5 + 4096,
        "RSS grew from {} to {} KiB",
        first.1,
        last.1
    );
    assert!(
        last.2 <= first.2 + 2,
        "file descriptors grew from {} to {}",
        first.2,
        last.2
    );
    assert!(!logged.is_empty(), "no session logged");
    assert!(faults >= 1 || hours == 0);
    let errors: Vec<&str> = log.lines().filter(|l| l.contains(" ERROR ")).collect();
    assert!(
        errors.is_empty(),
        "unexpected errors logged:\n{}",
        errors.join("\n")
    );
}
