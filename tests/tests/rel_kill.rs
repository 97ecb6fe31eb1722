//! Kill loop: SIGKILL the real `coldsprayd` (simulated unit, private bus, real sled log) at
//! random moments — idle, precooling, spraying, writing the log (short sessions back to
//! back) — and after each kill: the restarted daemon comes up with pump, valve and chiller off
//! in `starting`/`precooling` (the sim has no lines to drive off, so `--safe-off` is not the
//! test; a fresh process starting safe is), reaches `ready`, the log opens (no
//! `store_unavailable`), the interrupted session is `aborted`, and every session id a Start
//! returned before any kill is still in the log.
//!
//! Bounded form: 25 kills. `COLDSPRAY_KILLS=120` (or `COLDSPRAY_FULL=1`: 120) for the full
//! form; `COLDSPRAY_SEED` replays a run.

use coldspray_e2e::rel::*;
use coldspray_e2e::{current_user, PrivateBus, TempDir};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_loop_loses_nothing_acknowledged() {
    let _ticket = coldspray_e2e::gate::alone();
    let kills = env_num("COLDSPRAY_KILLS", if full() { 120 } else { 25 });
    let seed = env_num("COLDSPRAY_SEED", 0x5eed_c01d);
    coldspray_e2e::say!("kill loop: {kills} kills, seed {seed:#x}");
    let mut rng = Rng::new(seed);
    let bus = PrivateBus::start(&current_user()).expect("private bus");
    let dir = TempDir::new("rel-kill").unwrap();
    let mut d =
        SimDaemon::spawn(&bus, dir.path(), 20.0, "initial_reservoir_c = 4.0", "").expect("daemon");
    let c = Client::connect(&bus).await.unwrap();
    c.wait_up(Duration::from_secs(60)).await.unwrap();
    c.wait_ready(Duration::from_secs(60)).await.unwrap();

    let mut acknowledged: BTreeSet<u64> = BTreeSet::new();
    let mut counts = [0u32; 4];
    let mut first_states: std::collections::BTreeMap<String, u32> = Default::default();
    let mut restart_ms = Vec::new();
    let t_all = Instant::now();
    for k in 0..kills {
        // The protocol lives in the log across restarts; create it on the first round.
        if k == 0 {
            c.create_untargeted("rel_long", 120.0).await.unwrap();
        }
        let phase = rng.below(4) as usize;
        counts[phase] += 1;
        let mut interrupted: Option<u64> = None;
        match phase {
            0 => {
                // Idle (ready).
                tokio::time::sleep(Duration::from_millis(rng.below(300))).await;
            }
            1 => {
                // Precooling: warm water poured in.
                c.call0(SIM, "Refill", &(1.0f64, 25.0f64)).await.unwrap();
                tokio::time::sleep(Duration::from_millis(rng.below(300))).await;
            }
            2 => {
                // Spraying (120 s protocol = 6 s wall: open at the kill).
                let id = c.start("rel_long").await.unwrap();
                acknowledged.insert(id);
                interrupted = Some(id);
                tokio::time::sleep(Duration::from_millis(50 + rng.below(2000))).await;
            }
            _ => {
                // Writing the log: short sessions back to back, killed mid-burst.
                let until = Instant::now() + Duration::from_millis(100 + rng.below(1500));
                while Instant::now() < until {
                    if let Ok(id) = c.start("rel_long").await {
                        acknowledged.insert(id);
                        interrupted = Some(id);
                    }
                    if c.call0(UNIT, "Stop", &()).await.is_ok() {
                        interrupted = None;
                    }
                }
            }
        }
        d.kill9();
        let log_before = d.stderr().len();
        let t_restart = Instant::now();
        d.start().unwrap();
        // The first answer of the new process.
        let (first, _) = c
            .wait_for(
                "the restarted daemon",
                Duration::from_secs(60),
                Duration::from_millis(5),
                |c| async move {
                    let s = c.state().await?;
                    let o = c.outputs().await?;
                    Ok(Some((s, o)))
                },
            )
            .await
            .unwrap_or_else(|e| panic!("kill {k}: {e}\n{}", d.stderr()));
        *first_states.entry(first.0.clone()).or_default() += 1;
        assert!(
            first.0 == "starting" || first.0 == "precooling" || first.0 == "ready",
            "kill {k}: first state {}",
            first.0
        );
        assert!(
            !first.1["pump"] && !first.1["spray_valve"],
            "kill {k}: pump/valve on at restart: {:?}",
            first.1
        );
        if first.0 == "starting" {
            assert!(
                actuators_off(&first.1),
                "kill {k}: outputs on in starting: {:?}",
                first.1
            );
        }
        let ready = c
            .wait_ready(Duration::from_secs(90))
            .await
            .unwrap_or_else(|e| panic!("kill {k}: {e}\n{}", d.stderr()));
        restart_ms.push(t_restart.elapsed().as_millis() as u64);
        let _ = ready;
        // The log opened.
        let f = c.features().await.unwrap();
        assert!(
            f.iter().any(|x| x == "log_store"),
            "kill {k}: features {f:?}"
        );
        let a = c.alarms().await.unwrap();
        assert!(
            !a.iter().any(|x| x.0 == "store_unavailable"),
            "kill {k}: {a:?}\n{}",
            d.stderr()
        );
        // Nothing acknowledged lost; the interrupted one aborted.
        let list = c.sessions(10_000).await.unwrap();
        let ids: BTreeSet<u64> = list.iter().filter_map(|s| dict_u64(s, "id")).collect();
        let lost: Vec<_> = acknowledged.difference(&ids).collect();
        assert!(lost.is_empty(), "kill {k}: sessions lost {lost:?}");
        if let Some(id) = interrupted {
            let rec = c.session(id).await.unwrap();
            let outcome = dict_str(&rec, "outcome").unwrap_or_default();
            assert_eq!(outcome, "aborted", "kill {k} (phase {phase}): session {id}");
            // Sessions.Get shows a still-open session as `aborted` too: the restart's own
            // report proves it was closed.
            let log = d.stderr();
            let closed = log[log_before..]
                .lines()
                .find(|l| l.contains("left open by a crash as aborted"))
                .unwrap_or_else(|| panic!("kill {k}: no session closed at restart for {id}"));
            let ids = closed.rsplit_once('[').map(|x| x.1).unwrap_or("");
            assert!(
                ids.trim_end_matches(']')
                    .split(", ")
                    .any(|x| x == id.to_string()),
                "kill {k}: {id} not in {closed}"
            );
        }
    }
    restart_ms.sort_unstable();
    let p = |q: f64| restart_ms[((restart_ms.len() - 1) as f64 * q) as usize];
    coldspray_e2e::say!(
        "{}",
        table(
            &[
                "kills",
                "idle",
                "precool",
                "spraying",
                "log burst",
                "sessions acked",
                "lost",
                "restart→ready ms p50/p95/max",
                "first state",
                "wall s"
            ],
            &[vec![
                kills.to_string(),
                counts[0].to_string(),
                counts[1].to_string(),
                counts[2].to_string(),
                counts[3].to_string(),
                acknowledged.len().to_string(),
                "0".into(),
                format!("{}/{}/{}", p(0.5), p(0.95), p(1.0)),
                format!("{first_states:?}"),
                format!("{:.0}", t_all.elapsed().as_secs_f64()),
            ]]
        )
    );
    assert_eq!(d.terminate(), Some(0), "{}", d.stderr());
}
