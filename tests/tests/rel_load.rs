//! Load: the real `coldsprayd` on the simulated unit in real time (speed 1, so the 10 ms
//! control period is a wall-clock deadline), on a private bus, while several D-Bus clients —
//! each its own connection on its own thread — make 1,000 calls/s in total (property Gets,
//! GetAll, Protocols.List/Get, Sessions.List/Stats) and a scraper reads `/metrics` over HTTP
//! every second. Meanwhile the unit sprays continuously (back-to-back sessions) and alarms are
//! injected through the Simulator interface.
//!
//! Asserted: every client makes calls and no load call fails, every scrape
//! answers 200, `coldspray_events_lagged_total` does not move, every injected alarm shows in `ActiveAlarms`, arrives as an `AlarmRaised`
//! signal, drives the actuators off, closes the running session in the treatment log as
//! `interlock` by that alarm, and after clear + acknowledge arrives as `AlarmCleared`; and the
//! laser pass before, under and after the load auto-starts its session, on time (not `late`).
//!
//! Printed, not asserted (timing figures of a shared host; `COLDSPRAY_LOAD_STRICT=1` asserts
//! them): the achieved call rate (strict: ≥ 95 % of the target) and scrape count (strict: one
//! a second), the laser-end → spray-start delay the daemon records (simulated clock, which
//! runs at wall speed here; strict: under and after the load within one control period plus a
//! margin of what it was before), and `coldspray_control_step_overruns_total` before and
//! after the load and over the same spraying without API load (strict: the load adds none).
//!
//! Bounded form (in `cargo test`): 10 s of load. Full form: `COLDSPRAY_FULL=1` (60 s), or
//! `COLDSPRAY_LOAD_SECS`, `COLDSPRAY_LOAD_RATE` (calls/s, default 1000),
//! `COLDSPRAY_LOAD_CLIENTS` (default 8), `COLDSPRAY_LOAD_PROBES` (laser passes per phase).

use coldspray_e2e::introspect::{NAME, PATH};
use coldspray_e2e::metrics_support::free_port;
use coldspray_e2e::rel::*;
use coldspray_e2e::{current_user, PrivateBus, TempDir};
use futures_util::StreamExt;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use zbus::zvariant::OwnedValue;

const PROPS: &str = "org.freedesktop.DBus.Properties";
/// The daemon's control period (`[unit] step_ms` default), ms.
const STEP_MS: f64 = 10.0;
/// Slack on top of one control period when comparing laser → spray delays: the simulated unit
/// advances in ~1 ms slices on its own thread, and the box running CI is shared (2 cores).
const MARGIN_MS: f64 = 5.0;

/// What one load client saw.
#[derive(Default)]
struct ClientStats {
    calls: u64,
    errors: BTreeMap<&'static str, u64>,
    first_errors: Vec<String>,
    /// Call latencies, microseconds.
    lat_us: Vec<f64>,
    /// Calls dropped from the schedule because the client fell more than 1 s behind.
    skipped: u64,
    by_method: BTreeMap<&'static str, u64>,
}

async fn get(conn: &zbus::Connection, iface: &str, name: &str) -> zbus::Result<()> {
    let m = conn
        .call_method(Some(NAME), PATH, Some(PROPS), "Get", &(iface, name))
        .await?;
    m.body().deserialize::<OwnedValue>().map(drop)
}

async fn get_all(conn: &zbus::Connection, iface: &str) -> zbus::Result<()> {
    let m = conn
        .call_method(Some(NAME), PATH, Some(PROPS), "GetAll", &(iface,))
        .await?;
    m.body().deserialize::<Dict>().map(drop)
}

fn limit(n: i64) -> Dict {
    let mut f = Dict::new();
    f.insert("limit".into(), OwnedValue::from(n));
    f
}

/// One call of the mix, picked by `pick` in 0..100.
async fn one_call(conn: &zbus::Connection, pick: u64) -> (&'static str, zbus::Result<()>) {
    let call = |iface: &'static str, method: &'static str| async move {
        conn.call_method(Some(NAME), PATH, Some(iface), method, &())
            .await
    };
    match pick {
        0..=19 => ("Get Unit.State", get(conn, UNIT, "State").await),
        20..=34 => ("Get Unit.Outputs", get(conn, UNIT, "Outputs").await),
        35..=49 => (
            "Get Unit.Temperatures",
            get(conn, UNIT, "Temperatures").await,
        ),
        50..=59 => (
            "Get Unit.ActiveAlarms",
            get(conn, UNIT, "ActiveAlarms").await,
        ),
        60..=69 => (
            "Get Unit.CurrentSession",
            get(conn, UNIT, "CurrentSession").await,
        ),
        70..=74 => ("GetAll Unit", get_all(conn, UNIT).await),
        75..=77 => (
            "Get Maintenance.PumpHours",
            get(conn, MAINT, "PumpHours").await,
        ),
        78..=82 => {
            let r = call(PROTOCOLS, "List").await;
            let r = r.and_then(|m| m.body().deserialize::<Vec<Dict>>().map(drop));
            ("Protocols.List", r)
        }
        83..=85 => {
            let r = conn
                .call_method(Some(NAME), PATH, Some(PROTOCOLS), "Get", &("rel_load",))
                .await;
            ("Protocols.Get", r.map(drop))
        }
        86..=95 => {
            let r = conn
                .call_method(Some(NAME), PATH, Some(SESSIONS), "List", &(limit(5),))
                .await;
            let r = r.and_then(|m| m.body().deserialize::<Vec<Dict>>().map(drop));
            ("Sessions.List", r)
        }
        _ => {
            let r = conn
                .call_method(Some(NAME), PATH, Some(SESSIONS), "Stats", &(limit(200),))
                .await;
            (
                "Sessions.Stats",
                r.and_then(|m| m.body().deserialize::<Dict>().map(drop)),
            )
        }
    }
}

/// A load client: its own connection and runtime on its own thread, paced to an absolute
/// schedule of one call every `period` from `start` (with a random phase) until `stop`.
fn load_client(
    address: String,
    seed: u64,
    period: Duration,
    start: Instant,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<ClientStats> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let conn = zbus::connection::Builder::address(address.as_str())?
            .build()
            .await?;
        let mut rng = Rng::new(seed);
        let mut st = ClientStats::default();
        let mut next = start + period.mul_f64(rng.range_f64(0.0, 1.0));
        while !stop.load(Ordering::Relaxed) {
            let now = Instant::now();
            if next > now {
                tokio::time::sleep_until(next.into()).await;
            } else if now - next > Duration::from_secs(1) {
                // More than a second behind: drop that backlog rather than burst it.
                let behind = ((now - next).as_secs_f64() / period.as_secs_f64()) as u64;
                st.skipped += behind;
                next += period.mul_f64(behind as f64);
            }
            next += period;
            let t = Instant::now();
            let (method, r) = one_call(&conn, rng.below(100)).await;
            st.lat_us.push(t.elapsed().as_secs_f64() * 1e6);
            st.calls += 1;
            *st.by_method.entry(method).or_default() += 1;
            if let Err(e) = r {
                *st.errors.entry(method).or_default() += 1;
                if st.first_errors.len() < 3 {
                    st.first_errors.push(format!("{method}: {e}"));
                }
            }
        }
        Ok(st)
    })
}

/// What the scraper saw.
#[derive(Default)]
struct ScrapeStats {
    ok: u64,
    failures: Vec<String>,
    lat_ms: Vec<f64>,
    bytes: usize,
}

fn scraper(port: u16, stop: Arc<AtomicBool>) -> ScrapeStats {
    let mut st = ScrapeStats::default();
    let mut next = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        if next > now {
            std::thread::sleep(next - now);
        }
        next += Duration::from_secs(1);
        let t = Instant::now();
        match scrape(port) {
            Ok(body) => {
                st.ok += 1;
                st.bytes = body.len();
                st.lat_ms.push(t.elapsed().as_secs_f64() * 1e3);
            }
            Err(e) => st.failures.push(format!("{e:#}")),
        }
    }
    st
}

/// Signals of the Unit interface: (when, member, first string argument).
type SignalLog = Arc<Mutex<Vec<(Instant, String, String)>>>;

async fn listen(bus: &PrivateBus) -> anyhow::Result<SignalLog> {
    let conn = bus.connect().await?;
    let rule = zbus::MatchRule::builder()
        .msg_type(zbus::message::Type::Signal)
        .interface(UNIT)?
        .build();
    let mut stream = zbus::MessageStream::for_match_rule(rule, &conn, Some(100_000)).await?;
    let log: SignalLog = Arc::default();
    let sink = log.clone();
    tokio::spawn(async move {
        let _conn = conn;
        while let Some(Ok(m)) = stream.next().await {
            let member = m
                .header()
                .member()
                .map(|x| x.to_string())
                .unwrap_or_default();
            let key = match member.as_str() {
                "AlarmRaised" => m
                    .body()
                    .deserialize::<(String, String, String)>()
                    .map(|b| b.0)
                    .unwrap_or_default(),
                "AlarmCleared" => m
                    .body()
                    .deserialize::<(String,)>()
                    .map(|b| b.0)
                    .unwrap_or_default(),
                _ => String::new(),
            };
            if let Ok(mut l) = sink.lock() {
                l.push((Instant::now(), member, key));
            }
        }
    });
    Ok(log)
}

/// Waits until `member(key)` was logged at or after `after`; returns when, relative to it.
async fn wait_signal(
    log: &SignalLog,
    member: &str,
    key: &str,
    after: Instant,
    limit: Duration,
) -> anyhow::Result<Duration> {
    let t0 = Instant::now();
    loop {
        let seen = log.lock().ok().and_then(|l| {
            l.iter()
                .find(|(at, m, k)| *at >= after && m == member && k == key)
                .map(|(at, ..)| *at - after)
        });
        if let Some(d) = seen {
            return Ok(d);
        }
        anyhow::ensure!(
            t0.elapsed() < limit,
            "no {member}({key}) signal within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// `n` laser passes with `rel_probe` armed: the laser-end → spray-start delay (ms) the daemon
/// recorded for each auto-started session, from the simulated clock.
async fn probe_laser_to_spray(c: &Client, n: usize) -> anyhow::Result<Vec<f64>> {
    c.call0(UNIT, "Arm", &("rel_probe",)).await?;
    let mut out = Vec::new();
    for _ in 0..n {
        c.wait_ready(Duration::from_secs(30)).await?;
        // A faint pass (fluence is energy per pass; a 0.1 s pass at 0.3 deposits 30 % of a
        // typical pass's energy at once, and a few dozen back to back drive the skin sensor
        // past its plausible range): only its falling edge matters here.
        c.call0(SIM, "LaserPass", &(0.1f64, 0.02f64)).await?;
        let started = c
            .wait_for(
                "an auto-started session",
                Duration::from_secs(10),
                Duration::from_millis(5),
                |c| async move {
                    let s = c.current_session().await?;
                    Ok(s.contains_key("id").then_some(s))
                },
            )
            .await;
        let s = match started {
            Ok((s, _)) => s,
            Err(e) => anyhow::bail!(
                "{e:#} after {} good passes; state {:?}, armed {:?}, laser on {:?}, alarms {:?}",
                out.len(),
                c.state().await,
                c.prop(UNIT, "Armed").await,
                c.prop(UNIT, "LaserOn").await,
                c.alarms().await
            ),
        };
        c.call0(UNIT, "Stop", &()).await?;
        let cause = dict_str(&s, "cause").unwrap_or_default();
        anyhow::ensure!(cause == "auto_start", "session cause {cause}: {s:?}");
        let late = s.get("late").and_then(|v| bool::try_from(v.clone()).ok());
        anyhow::ensure!(late == Some(false), "late auto-start: {s:?}");
        let ms = dict_f64(&s, "laser_to_spray_ms")
            .ok_or_else(|| anyhow::anyhow!("no laser_to_spray_ms in {s:?}"))?;
        out.push(ms);
    }
    c.call0(UNIT, "Disarm", &()).await?;
    Ok(out)
}

/// One injected alarm during the load.
struct AlarmRow {
    key: String,
    active_ms: f64,
    signal_ms: f64,
    safe_ms: f64,
    log: String,
    cleared_ms: f64,
    ready_ms: f64,
}

fn has_alarm(a: &[AlarmTuple], key: &str) -> bool {
    a.iter().any(|x| x.0 == key)
}

/// Injects a fault while a session sprays; checks it all the way through the log and back.
async fn alarm_cycle(
    c: &Client,
    log: &SignalLog,
    kind: &str,
    sensor: &str,
    key: &str,
    session: u64,
) -> anyhow::Result<AlarmRow> {
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let t0 = Instant::now();
    c.call0(SIM, "InjectFault", &(kind, sensor)).await?;
    let k = key.to_string();
    let (_, active) = c
        .wait_for(
            "the alarm in ActiveAlarms",
            Duration::from_secs(10),
            Duration::from_millis(5),
            move |c| {
                let k = k.clone();
                async move { Ok(has_alarm(&c.alarms().await?, &k).then_some(())) }
            },
        )
        .await?;
    let (_, safe) = c
        .wait_for(
            "the safe state",
            Duration::from_secs(10),
            Duration::from_millis(5),
            |c| async move { Ok(actuators_off(&c.outputs().await?).then_some(())) },
        )
        .await?;
    let signal = wait_signal(log, "AlarmRaised", key, t0, Duration::from_secs(10)).await?;
    let (rec, _) = c
        .wait_for(
            "the session closed in the log",
            Duration::from_secs(10),
            Duration::from_millis(20),
            move |c| async move {
                let r = c.session(session).await?;
                Ok((dict_str(&r, "outcome").as_deref() == Some("interlock")).then_some(r))
            },
        )
        .await?;
    let by = dict_str(&rec, "ended_by_alarm").unwrap_or_default();
    anyhow::ensure!(by == key, "session {session} ended by `{by}`, not `{key}`");
    c.call0(SIM, "ClearFault", &(kind, sensor)).await?;
    let t_clear = Instant::now();
    // Latched: acknowledge (again, until it takes: the condition may need a reading or two to
    // be seen gone) until the alarm is cleared.
    let k = key.to_string();
    c.wait_for(
        "the alarm gone after clear + acknowledge",
        Duration::from_secs(20),
        Duration::from_millis(20),
        move |c| {
            let k = k.clone();
            async move {
                let _ = c.ack_all().await;
                Ok((!has_alarm(&c.alarms().await?, &k)).then_some(()))
            }
        },
    )
    .await?;
    let cleared = wait_signal(log, "AlarmCleared", key, t_clear, Duration::from_secs(10)).await?;
    c.wait_ready(Duration::from_secs(60)).await?;
    Ok(AlarmRow {
        key: key.to_string(),
        active_ms: ms(active),
        signal_ms: ms(signal),
        safe_ms: ms(safe),
        log: format!("#{session} interlock by {by}"),
        cleared_ms: ms(cleared),
        ready_ms: ms(t_clear.elapsed()),
    })
}

/// Metric sums read from one scrape.
fn read_metrics(port: u16) -> anyhow::Result<BTreeMap<&'static str, f64>> {
    let body = scrape(port)?;
    let mut m = BTreeMap::new();
    for name in [
        "coldspray_control_step_overruns_total",
        "coldspray_events_lagged_total",
        "coldspray_control_step_duration_seconds_count",
        "coldspray_dbus_calls_total",
        "coldspray_dbus_call_errors_total",
        "coldspray_alarms_raised_total",
    ] {
        let v = metric_sum(&body, name)
            .ok_or_else(|| anyhow::anyhow!("{name} missing from /metrics"))?;
        m.insert(name, v);
    }
    Ok(m)
}

/// CPU ticks (user + system) of this test process.
fn self_ticks() -> Option<u64> {
    cpu_ticks(std::process::id())
}

/// CPU use between two tick readings over `secs`, as a percentage of one core.
fn pct(a: Option<u64>, b: Option<u64>, secs: f64) -> String {
    // Linux reports /proc times in USER_HZ, 100 on every architecture Debian ships.
    match (a, b) {
        (Some(a), Some(b)) => format!("{:.0}", (b.saturating_sub(a)) as f64 / 100.0 / secs * 100.0),
        _ => "?".into(),
    }
}

fn stats_row(name: &str, xs: &[f64]) -> Vec<String> {
    vec![
        name.to_string(),
        xs.len().to_string(),
        format!("{:.2}", quantile(xs, 0.0)),
        format!("{:.2}", quantile(xs, 0.5)),
        format!("{:.2}", quantile(xs, 0.99)),
        format!("{:.2}", quantile(xs, 1.0)),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dbus_and_scrape_load_misses_no_deadline_and_drops_no_alarm() {
    let _ticket = coldspray_e2e::gate::alone();
    let secs = env_num("COLDSPRAY_LOAD_SECS", if full() { 60 } else { 10 });
    let rate = env_num("COLDSPRAY_LOAD_RATE", 1000).max(1);
    let clients = env_num("COLDSPRAY_LOAD_CLIENTS", 8).max(1);
    let probes = env_num("COLDSPRAY_LOAD_PROBES", if full() { 30 } else { 10 }) as usize;
    let t_test = Instant::now();

    let bus = PrivateBus::start(&current_user()).expect("private bus");
    let dir = TempDir::new("rel-load").unwrap();
    let port = free_port().unwrap();
    let mut d = SimDaemon::spawn_with_metrics(
        &bus,
        dir.path(),
        1.0,
        "initial_reservoir_c = 4.0",
        "",
        Some(port),
    )
    .expect("daemon");
    let c = Client::connect(&bus).await.unwrap();
    c.wait_up(Duration::from_secs(60)).await.unwrap();
    c.wait_ready(Duration::from_secs(120)).await.unwrap();
    c.create_untargeted("rel_probe", 10.0).await.unwrap();
    // Shorter than the 120 s maximum continuous spray: sessions follow each other.
    c.create_untargeted("rel_load", 100.0).await.unwrap();
    let signals = listen(&bus).await.unwrap();

    let before = probe_laser_to_spray(&c, probes).await.unwrap();

    // Baseline: the same spraying without API load, for as long (at most 10 s): how many
    // steps this machine alone makes late.
    let base_secs = secs.min(10);
    let b0 = read_metrics(port).unwrap();
    c.start("rel_load").await.unwrap();
    let t_base = Instant::now();
    while t_base.elapsed() < Duration::from_secs(base_secs) {
        let _ = c.state().await;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    c.call0(UNIT, "Stop", &()).await.unwrap();
    let b1 = read_metrics(port).unwrap();
    let base_overruns =
        b1["coldspray_control_step_overruns_total"] - b0["coldspray_control_step_overruns_total"];
    c.wait_ready(Duration::from_secs(30)).await.unwrap();

    let m0 = read_metrics(port).unwrap();
    let pid = d.pid().expect("running");
    let cpu0 = (cpu_ticks(pid), self_ticks());

    // The load.
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now() + Duration::from_millis(300);
    let period = Duration::from_secs_f64(clients as f64 / rate as f64);
    let workers: Vec<_> = (0..clients)
        .map(|i| {
            let (address, stop) = (bus.address().to_string(), stop.clone());
            std::thread::Builder::new()
                .name(format!("load-{i}"))
                .spawn(move || load_client(address, 0x10ad + i, period, start, stop))
                .unwrap()
        })
        .collect();
    let scraper_thread = {
        let stop = stop.clone();
        std::thread::spawn(move || scraper(port, stop))
    };
    tokio::time::sleep_until(start.into()).await;

    // Continuous spraying, with alarms injected along the way.
    let alarms: [(&str, &str, &str); 2] = [
        ("water_low", "", "water_low"),
        (
            "sensor_out_of_range",
            "pressure",
            "sensor_implausible:pressure",
        ),
    ];
    let alarm_every = if secs >= 20 { 12.0 } else { secs as f64 / 2.5 };
    let mut next_alarm = 2.0f64.min(alarm_every);
    let mut alarm_rows = Vec::new();
    let mut sessions: Vec<u64> = Vec::new();
    let mut start_refusals = 0u32;
    let spray_end = start + Duration::from_secs(secs);
    let mut running: Option<u64> = None;
    while Instant::now() < spray_end {
        if c.state().await.unwrap() != "spraying" {
            running = None;
            match c.start("rel_load").await {
                Ok(id) => {
                    sessions.push(id);
                    running = Some(id);
                }
                Err(_) => start_refusals += 1,
            }
        }
        let at = start.elapsed().as_secs_f64();
        if let (Some(id), true) = (running, at >= next_alarm) {
            let (kind, sensor, key) = alarms[alarm_rows.len() % alarms.len()];
            let row = alarm_cycle(&c, &signals, kind, sensor, key, id)
                .await
                .unwrap_or_else(|e| panic!("alarm {key} at {at:.1} s under load: {e:#}"));
            alarm_rows.push(row);
            running = None;
            next_alarm = start.elapsed().as_secs_f64() + alarm_every;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    if c.state().await.unwrap() == "spraying" {
        c.call0(UNIT, "Stop", &()).await.unwrap();
    }
    let spray_secs = start.elapsed().as_secs_f64();
    // Laser → spray with the load still running.
    let during = probe_laser_to_spray(&c, probes).await.unwrap();
    stop.store(true, Ordering::Relaxed);
    let load_secs = start.elapsed().as_secs_f64();
    let mut all = ClientStats::default();
    let mut idle_clients = 0;
    for w in workers {
        let s = w.join().expect("load thread").expect("load client");
        if s.calls == 0 {
            idle_clients += 1;
        }
        all.calls += s.calls;
        all.skipped += s.skipped;
        all.lat_us.extend(s.lat_us);
        all.first_errors.extend(s.first_errors);
        for (k, v) in s.errors {
            *all.errors.entry(k).or_default() += v;
        }
        for (k, v) in s.by_method {
            *all.by_method.entry(k).or_default() += v;
        }
    }
    let scrapes = scraper_thread.join().expect("scraper");
    let m1 = read_metrics(port).unwrap();
    let cpu1 = (cpu_ticks(pid), self_ticks());
    let after = probe_laser_to_spray(&c, probes).await.unwrap();
    let alive = d.exited().is_none();
    let stderr_tail: String = d
        .stderr()
        .lines()
        .rev()
        .take(20)
        .collect::<Vec<_>>()
        .join("\n");

    // The report.
    let delta = |k: &str| m1[k] - m0[k];
    let achieved = all.calls as f64 / load_secs;
    let lat_ms: Vec<f64> = all.lat_us.iter().map(|u| u / 1e3).collect();
    let errors: u64 = all.errors.values().sum();
    let load_overruns = delta("coldspray_control_step_overruns_total");
    // An overrun is a step that finished more than one period after it was due. Whether there
    // are any depends on the machine more than on the daemon: on this shared 2-core box the
    // OS alone made 0-8 in 10 s of spraying with no API load at all (load average 6-7), and
    // 0-9 under the load in the debug build, 3 in 60 s in the release build. A count that
    // depends on the neighbours is a timing figure (COMMON.md: printed, not asserted), so it is
    // printed next to its baseline and enforced only with COLDSPRAY_LOAD_STRICT=1: zero.
    let strict = std::env::var_os("COLDSPRAY_LOAD_STRICT").is_some();
    let noise = (2.0 * base_overruns * load_secs / base_secs.max(1) as f64).ceil()
        + (load_secs / 5.0).ceil();
    coldspray_e2e::say!(
        "\nload (real coldsprayd, sim speed 1, debug={}): {clients} clients, target {rate} calls/s, \
         {spray_secs:.1} s spraying + {:.1} s of laser probes under load",
        cfg!(debug_assertions),
        load_secs - spray_secs
    );
    let rows = vec![
        vec![
            "D-Bus calls".into(),
            format!(
                "{} in {load_secs:.1} s = {achieved:.0}/s ({:.1} % of target)",
                all.calls,
                100.0 * achieved / rate as f64
            ),
        ],
        vec![
            "call errors / skipped".into(),
            format!("{errors} / {}", all.skipped),
        ],
        vec![
            "call latency p50 / p99 / max".into(),
            format!(
                "{:.2} / {:.2} / {:.2} ms",
                quantile(&lat_ms, 0.5),
                quantile(&lat_ms, 0.99),
                quantile(&lat_ms, 1.0)
            ),
        ],
        vec![
            "daemon-counted method calls / errors".into(),
            format!(
                "{:.0} / {:.0} (properties are not counted)",
                delta("coldspray_dbus_calls_total"),
                delta("coldspray_dbus_call_errors_total")
            ),
        ],
        vec![
            "scrapes ok / failed, p50 / max".into(),
            format!(
                "{} / {}, {:.1} / {:.1} ms ({} bytes)",
                scrapes.ok,
                scrapes.failures.len(),
                quantile(&scrapes.lat_ms, 0.5),
                quantile(&scrapes.lat_ms, 1.0),
                scrapes.bytes
            ),
        ],
        vec![
            "CPU during load: daemon / test process (clients)".into(),
            format!(
                "{} / {} % of one core",
                pct(cpu0.0, cpu1.0, load_secs),
                pct(cpu0.1, cpu1.1, load_secs)
            ),
        ],
        vec![
            "control steps during load".into(),
            format!(
                "{:.0} ({:.0}/s)",
                delta("coldspray_control_step_duration_seconds_count"),
                delta("coldspray_control_step_duration_seconds_count") / load_secs
            ),
        ],
        vec![
            "step overruns before / after load (delta)".into(),
            format!(
                "{:.0} / {:.0} ({load_overruns:.0})",
                m0["coldspray_control_step_overruns_total"],
                m1["coldspray_control_step_overruns_total"]
            ),
        ],
        vec![
            format!("step overruns spraying {base_secs} s without API load"),
            format!("{base_overruns:.0}"),
        ],
        vec![
            "step overruns within noise (2x baseline rate + 1 per 5 s)".into(),
            format!(
                "{} (limit {noise:.0})",
                if load_overruns <= noise { "yes" } else { "NO" }
            ),
        ],
        vec![
            "events lagged (delta)".into(),
            format!("{:.0}", delta("coldspray_events_lagged_total")),
        ],
        vec![
            "sessions sprayed / Start refused".into(),
            format!("{} / {start_refusals}", sessions.len()),
        ],
        vec![
            "alarms raised (metric delta)".into(),
            format!("{:.0}", delta("coldspray_alarms_raised_total")),
        ],
    ];
    coldspray_e2e::say!("{}", table(&["figure", "value"], &rows));
    coldspray_e2e::say!(
        "\ncalls by method: {}",
        all.by_method
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let alarm_table: Vec<Vec<String>> = alarm_rows
        .iter()
        .map(|a| {
            vec![
                a.key.clone(),
                format!("{:.0}", a.active_ms),
                format!("{:.0}", a.signal_ms),
                format!("{:.0}", a.safe_ms),
                a.log.clone(),
                format!("{:.0}", a.cleared_ms),
                format!("{:.0}", a.ready_ms),
            ]
        })
        .collect();
    coldspray_e2e::say!(
        "\nalarms injected under load (ms after inject / after clear)\n{}",
        table(
            &[
                "alarm",
                "in ActiveAlarms",
                "AlarmRaised",
                "safe",
                "treatment log",
                "AlarmCleared",
                "ready again"
            ],
            &alarm_table
        )
    );
    coldspray_e2e::say!(
        "\nlaser end → spray start (daemon-recorded, ms)\n{}",
        table(
            &["phase", "n", "min", "p50", "p99", "max"],
            &[
                stats_row("before load", &before),
                stats_row("under load", &during),
                stats_row("after load", &after),
            ]
        )
    );
    coldspray_e2e::say!("test took {:.1} s", t_test.elapsed().as_secs_f64());

    assert!(alive, "the daemon died under load:\n{stderr_tail}");
    // Every call a client made was answered, and without an error; every client got calls
    // through. How many calls per second a shared host lets the clients make is a timing
    // figure (printed above), asserted only with COLDSPRAY_LOAD_STRICT=1: the debug build
    // once made 868 of 1000 calls/s on a busy 2-core host.
    assert!(
        idle_clients == 0 && all.calls > 0,
        "{idle_clients} of {clients} load clients made no call ({} calls in all)",
        all.calls
    );
    assert_eq!(errors, 0, "load calls failed: {:?}", all.first_errors);
    // Every scrape answered 200; how many fit in the load window is again a timing figure.
    assert!(
        scrapes.failures.is_empty() && scrapes.ok > 0,
        "scrapes: {} ok, failures {:?}",
        scrapes.ok,
        scrapes.failures
    );
    if strict {
        assert!(
            achieved >= 0.95 * rate as f64,
            "achieved {achieved:.0} calls/s < 95 % of {rate} (strict)"
        );
        assert!(
            scrapes.ok as f64 >= load_secs - 2.0,
            "only {} scrapes in {load_secs:.1} s (strict)",
            scrapes.ok
        );
        assert_eq!(
            load_overruns, 0.0,
            "control-step overruns under load (strict)"
        );
    }
    assert_eq!(
        delta("coldspray_events_lagged_total"),
        0.0,
        "events dropped by a lagging consumer under load"
    );
    assert!(!alarm_rows.is_empty(), "no alarm was injected");
    assert!(
        delta("coldspray_alarms_raised_total") >= alarm_rows.len() as f64,
        "fewer alarms counted than injected"
    );
    assert!(sessions.len() > alarm_rows.len(), "no continuous spraying");
    // Laser end → spray start: the daemon starts the session in the step the falling edge
    // wakes, so the delay is edge delivery + scheduling (~1-2 ms). If load left the loop
    // slower to wake, the 10 ms tick still steps it: a median moved by more than one control
    // period (plus the margin for the sim's ~1 ms slices and a shared 2-core box) means the
    // loop was held up. Medians, so one descheduled pass does not decide.
    let (b, u, a) = (
        quantile(&before, 0.5),
        quantile(&during, 0.5),
        quantile(&after, 0.5),
    );
    // The simulated clock runs at wall speed here, so these delays are wall-clock figures of
    // a shared host: printed above, asserted with COLDSPRAY_LOAD_STRICT=1. Without it, every
    // probe pass must still have auto-started its session (behaviour, not timing).
    assert!(
        [&before, &during, &after].iter().all(|p| p.len() == probes),
        "a laser pass did not auto-start its session ({} / {} / {} of {probes})",
        before.len(),
        during.len(),
        after.len()
    );
    let bound = b + STEP_MS + MARGIN_MS;
    if strict {
        assert!(
            a <= bound,
            "laser → spray p50 after load {a:.2} ms > before {b:.2} + {STEP_MS} + {MARGIN_MS} ms"
        );
        assert!(
            u <= bound,
            "laser → spray p50 under load {u:.2} ms > before {b:.2} + {STEP_MS} + {MARGIN_MS} ms"
        );
    } else if a > bound || u > bound {
        coldspray_e2e::say!(
            "NOTE laser → spray p50 {u:.2} ms under / {a:.2} ms after load > before {b:.2} + \
             {STEP_MS} + {MARGIN_MS} ms (a timing figure; COLDSPRAY_LOAD_STRICT=1 asserts it)"
        );
    }
    assert_eq!(d.terminate(), Some(0), "clean stop after the load");
}
