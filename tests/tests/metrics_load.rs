//! Scrape latency under idle, slow and many concurrent clients (issue 14, defect 2): idle or
//! slow TCP clients must never delay a new scrape by more than a scrape's own time, and 50
//! concurrent scrapers must not cost the control loop. Prints the p99 figures and ratios
//! recorded in BENCHMARKS.md.
//!
//! What `cargo test` asserts is behaviour, not time: every scrape is answered, the idle
//! connections are still open when the scrapes beside them are done (the defect served a new
//! scrape only once idle ones hit their header timeout), the server holds at most its limit
//! of connections and closes the oldest, and the daemon's loop keeps running under 50
//! scrapers. The timing figures of a shared host are printed; `COLDSPRAY_METRICS_STRICT=1`
//! (as `tests/rel/bench-all.sh` runs it) asserts them too.

use coldspray_e2e::metrics_fixtures::{busy_snapshot, handle, start_on_loopback};
use coldspray_e2e::metrics_support::{free_port, http_get, start_sim_daemon};
use coldspray_e2e::TempDir;
use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// The two tests measure latencies: run them one at a time, not beside each other (nor beside
/// the daemon build the second one starts).
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// One scrape over a fresh connection; returns how long it took.
fn timed_scrape(addr: SocketAddr) -> Duration {
    let t = Instant::now();
    let r = http_get(addr, "/metrics", &[]).expect("scrape");
    assert_eq!(r.status, 200);
    t.elapsed()
}

/// The `p`-th percentile (0-100) of `samples`, nearest rank.
fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    samples.sort();
    let rank = ((p / 100.0) * samples.len() as f64).ceil() as usize;
    samples[rank.clamp(1, samples.len()) - 1]
}

/// Whether the timing figures are asserted as well as printed (`COLDSPRAY_METRICS_STRICT=1`).
fn strict() -> bool {
    std::env::var("COLDSPRAY_METRICS_STRICT").is_ok_and(|v| v == "1")
}

/// Whether the server still holds `s` open: no end of stream and no reset waiting on it.
fn still_open(s: &TcpStream) -> bool {
    s.set_nonblocking(true).expect("nonblocking");
    let mut byte = [0u8; 1];
    let open = matches!(s.peek(&mut byte), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock);
    s.set_nonblocking(false).expect("blocking");
    open
}

/// The server's connection limit (`MAX_CONNECTIONS` in daemon/src/metrics/http.rs).
const SERVER_CONNECTION_LIMIT: usize = 64;

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// `n` scrapes one after another: (p99, max).
fn sequential(addr: SocketAddr, n: usize) -> (Duration, Duration) {
    let mut t: Vec<Duration> = (0..n).map(|_| timed_scrape(addr)).collect();
    let max = *t.iter().max().unwrap();
    (percentile(&mut t, 99.0), max)
}

/// `clients` threads scraping back to back for `time`: every scrape's duration.
fn concurrent(addr: SocketAddr, clients: usize, time: Duration) -> Vec<Duration> {
    let end = Instant::now() + time;
    let threads: Vec<_> = (0..clients)
        .map(|_| {
            std::thread::spawn(move || {
                let mut t = Vec::new();
                while Instant::now() < end {
                    t.push(timed_scrape(addr));
                }
                t
            })
        })
        .collect();
    threads
        .into_iter()
        .flat_map(|h| h.join().expect("scraper thread"))
        .collect()
}

#[test]
fn idle_and_slow_connections_do_not_delay_a_scrape() {
    let _ticket = coldspray_e2e::gate::alone();
    let _serial = serial();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (handle, ends) = handle();
    ends.snapshot.send(Arc::new(busy_snapshot())).unwrap();
    let server = start_on_loopback(&rt, &handle);
    let addr = server.local_addr();

    timed_scrape(addr); // warm up
    let (alone_p99, _) = sequential(addr, 100);

    // 40 clients that connect and send nothing, held open (the figure: 9.7 s).
    let idle: Vec<TcpStream> = (0..40).map(|_| TcpStream::connect(addr).unwrap()).collect();
    let (idle_p99, idle_max) = sequential(addr, 100);
    let idle_open_after_scrapes = idle.iter().filter(|s| still_open(s)).count();

    // Plus 200 more, half of them slow (a request header begun, never finished): far more
    // than the server keeps open, so it must close the oldest instead of queueing new ones.
    let more: Vec<TcpStream> = (0..200)
        .map(|i| {
            let mut s = TcpStream::connect(addr).unwrap();
            if i % 2 == 0 {
                s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: ")
                    .unwrap();
            }
            s
        })
        .collect();
    let (crowd_p99, crowd_max) = sequential(addr, 100);

    println!(
        "scrape p99: alone {:.2} ms; 40 idle connections {:.2} ms (x{:.2}, max {:.2} ms); \
         240 idle or slow {:.2} ms (x{:.2}, max {:.2} ms)",
        ms(alone_p99),
        ms(idle_p99),
        idle_p99.as_secs_f64() / alone_p99.as_secs_f64(),
        ms(idle_max),
        ms(crowd_p99),
        crowd_p99.as_secs_f64() / alone_p99.as_secs_f64(),
        ms(crowd_max),
    );
    // The defect served a new scrape only after idle connections hit their 10 s header
    // timeout and were closed: here the 40 idle ones were all still open after the 100 scrapes
    // beside them (checked below, before the crowd could push them out)...
    assert_eq!(
        idle_open_after_scrapes,
        idle.len(),
        "idle connections were closed"
    );
    // ...and with 240 more the server holds at most its limit, closing the oldest first.
    let everyone: Vec<&TcpStream> = idle.iter().chain(more.iter()).collect();
    let deadline = Instant::now() + Duration::from_secs(10);
    let open = loop {
        let open = everyone.iter().filter(|s| still_open(s)).count();
        if open <= SERVER_CONNECTION_LIMIT || Instant::now() > deadline {
            break open;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(
        open <= SERVER_CONNECTION_LIMIT,
        "{open} of 240 idle or slow connections still open"
    );
    assert!(!still_open(&idle[0]), "the oldest connection was kept");
    if strict() {
        // "Never delayed by more than a scrape's own time": within twice the lone p99 plus
        // 100 ms of slack, and no scrape near the header timeout (the defect: 9.7 s).
        let bound = alone_p99 * 2 + Duration::from_millis(100);
        assert!(idle_p99 < bound, "40 idle: p99 {idle_p99:?} > {bound:?}");
        assert!(
            crowd_p99 < bound,
            "240 idle/slow: p99 {crowd_p99:?} > {bound:?}"
        );
        let ceiling = Duration::from_secs(2);
        assert!(idle_max < ceiling, "40 idle: a scrape took {idle_max:?}");
        assert!(
            crowd_max < ceiling,
            "240 idle/slow: a scrape took {crowd_max:?}"
        );
    }
    drop((idle, more));
    rt.block_on(server.shutdown());
}

/// `coldspray_control_step_overruns_total` and the step count of the daemon at `addr`.
fn overruns_and_steps(addr: SocketAddr) -> (f64, f64) {
    let body = http_get(addr, "/metrics", &[]).unwrap().body;
    let get = |name: &str| {
        body.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse::<f64>().ok())
            .unwrap_or_else(|| panic!("{name} not in scrape"))
    };
    (
        get("coldspray_control_step_overruns_total"),
        get("coldspray_control_step_duration_seconds_count"),
    )
}

/// The real daemon's control loop on the simulated unit, scraped by one client and then by
/// 50 at once: overruns per second and scrape p99 for each, printed.
#[test]
fn fifty_concurrent_scrapers_do_not_cost_the_control_loop() {
    let _ticket = coldspray_e2e::gate::alone();
    let _serial = serial();
    let tmp = TempDir::new("coldspray-metrics-load").unwrap();
    let target: SocketAddr = format!("127.0.0.1:{}", free_port().unwrap())
        .parse()
        .unwrap();
    let (mut child, _log) =
        start_sim_daemon(tmp.path(), target, "", "", &[]).unwrap_or_else(|e| panic!("{e:#}"));
    std::thread::sleep(Duration::from_secs(2)); // past start-up

    let phase = Duration::from_secs(8);
    let mut rows = Vec::new();
    for clients in [1usize, 50] {
        let (o0, s0) = overruns_and_steps(target);
        let t0 = Instant::now();
        let mut times = concurrent(target, clients, phase);
        let secs = t0.elapsed().as_secs_f64();
        let (o1, s1) = overruns_and_steps(target);
        child.check_running().unwrap();
        let p99 = percentile(&mut times, 99.0);
        rows.push((
            clients,
            (o1 - o0) / secs,
            (s1 - s0) / secs,
            p99,
            times.len(),
        ));
    }
    for (clients, overruns, steps, p99, n) in &rows {
        println!(
            "{clients:>2} scraper(s): {n} scrapes, p99 {:.2} ms; control loop {steps:.1} \
             steps/s, {overruns:.2} overruns/s",
            ms(*p99)
        );
    }
    let (one, fifty) = (&rows[0], &rows[1]);
    println!(
        "50 vs 1 scraper: scrape p99 x{:.2}, overruns {:.2}/s vs {:.2}/s",
        fifty.3.as_secs_f64() / one.3.as_secs_f64(),
        fifty.1,
        one.1
    );
    // Behaviour: the loop kept stepping through both phases and every scrape was answered
    // (`timed_scrape` checks each status). Timing (overruns, steps/s) is a figure of the host:
    // asserted only with COLDSPRAY_METRICS_STRICT=1.
    for (clients, _, steps, _, n) in &rows {
        assert!(
            *steps > 0.0,
            "{clients} scraper(s): the control loop stopped"
        );
        assert!(*n > 0, "{clients} scraper(s): no scrape completed");
    }
    if strict() {
        // The defect was ~5x the overruns.
        assert!(
            fifty.1 <= one.1 * 2.0 + 2.0,
            "50 scrapers: {:.2} overruns/s vs {:.2}/s with one",
            fifty.1,
            one.1
        );
        assert!(
            fifty.2 >= one.2 * 0.9,
            "the loop slowed down: {:.1} vs {:.1} steps/s",
            fifty.2,
            one.2
        );
    }
}
