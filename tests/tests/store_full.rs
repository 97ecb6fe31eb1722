//! A treatment log whose disk fills up is never acknowledged as written: the real daemon
//! (simulated unit, private bus, real sled log) on a 1 MiB tmpfs as its state directory.
//!
//! Five sessions are recorded; the disk is filled; sessions go on (cooling is never withheld
//! for a full disk). The first write that fails is answered `NotRecorded` (never OK), the
//! `NotRecorded` signal names it, and the latched `log_write_failed` alarm is already active
//! when the answer arrives; `log_store_available` is 0. The space is freed: the log comes
//! back without a restart (the alarm's condition ends and an acknowledge clears it). The
//! daemon restarts with the newest sessions unrecorded: their ids are not handed out again
//! and `log_damaged` reports the gap. Two more sessions are recorded, and after another
//! restart every session acknowledged as recorded is in the log and no id was used twice.
//!
//! Mounting the tmpfs needs root (CI runs as root); the test says so and passes otherwise.

use coldspray_e2e::rel::*;
use coldspray_e2e::{current_user, is_root, say, PrivateBus, TempDir};
use futures_util::StreamExt;
use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(60);
const NOT_RECORDED: &str = "org.coldspray.ColdSpray1.Error.NotRecorded";

/// A tmpfs mounted for the test, unmounted on drop.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(dir).unwrap();
        let st = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .status()
            .expect("mount");
        assert!(st.success(), "mount -t tmpfs failed: {st}");
        Tmpfs(dir.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Fills the file system of `dir` with `filler` until it is full; returns the bytes written.
fn fill(filler: &Path) -> u64 {
    let mut f = std::fs::File::create(filler).unwrap();
    let chunk = vec![0xa5u8; 4096];
    let mut n = 0u64;
    while f.write_all(&chunk).is_ok() {
        n += chunk.len() as u64;
    }
    // The last partial page too.
    while f.write_all(&chunk[..1]).is_ok() {
        n += 1;
    }
    // On a full tmpfs a sync may itself fail with ENOSPC; what counts is the bytes written.
    let _ = f.sync_all();
    n
}

/// The session id a `NotRecorded` message names ("session 8 started and is cooling, ...").
fn id_in(msg: &str) -> Option<u64> {
    let rest = msg.split("session ").nth(1)?;
    rest.split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

fn method_error(e: &zbus::Error) -> Option<(String, String)> {
    match e {
        zbus::Error::MethodError(name, msg, _) => {
            Some((name.to_string(), msg.clone().unwrap_or_default()))
        }
        _ => None,
    }
}

async fn log_write_failed(c: &Client) -> Option<AlarmTuple> {
    c.alarms()
        .await
        .unwrap()
        .into_iter()
        .find(|a| a.0 == "log_write_failed")
}

/// `coldspray_log_store_available`, and whether `log_write_failed` is in
/// `coldspray_alarms_active`, from a real scrape.
fn store_metrics(port: u16) -> (f64, bool) {
    let body = scrape(port).unwrap();
    let available = metric_sum(&body, "coldspray_log_store_available").expect("exported");
    let alarm = body.lines().any(|l| {
        l.starts_with("coldspray_alarms_active{")
            && l.contains("kind=\"log_write_failed\"")
            && l.rsplit_once(' ')
                .and_then(|(_, v)| v.parse::<f64>().ok())
                .is_some_and(|v| v >= 1.0)
    });
    (available, alarm)
}

/// What one session's start and stop were answered.
#[derive(Debug, Default)]
struct Run {
    id: Option<u64>,
    start_recorded: bool,
    stop_recorded: bool,
    /// The first `NotRecorded` answer of this session, with the alarm as seen right after it.
    refused: Option<(String, Option<AlarmTuple>)>,
}

async fn session(c: &Client) -> Run {
    let mut run = Run::default();
    c.wait_ready(LIMIT).await.unwrap();
    match c.start("long").await {
        Ok(id) => {
            run.id = Some(id);
            run.start_recorded = true;
        }
        Err(e) => {
            let (name, msg) = method_error(&e).unwrap_or_else(|| panic!("start: {e}"));
            assert_eq!(name, NOT_RECORDED, "start refused: {msg}");
            let alarm = log_write_failed(c).await;
            run.id = id_in(&msg);
            assert!(run.id.is_some(), "the answer names the session: {msg}");
            assert!(msg.contains("is cooling"), "{msg}");
            run.refused = Some((msg, alarm));
        }
    }
    // It sprays whether or not it is recorded.
    let current = c.current_session().await.unwrap();
    assert_eq!(dict_u64(&current, "id"), run.id, "{current:?}");
    tokio::time::sleep(Duration::from_millis(200)).await;
    match c.call0(UNIT, "Stop", &()).await {
        Ok(()) => run.stop_recorded = true,
        Err(e) => {
            let (name, msg) = method_error(&e).unwrap_or_else(|| panic!("stop: {e}"));
            assert_eq!(name, NOT_RECORDED, "stop refused: {msg}");
            let alarm = log_write_failed(c).await;
            run.refused.get_or_insert((msg, alarm));
        }
    }
    run
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_is_told_alarmed_and_recovered_and_ids_are_never_reused() {
    let _ticket = coldspray_e2e::gate::alone();
    if !is_root() {
        println!("skipped: mounting a tmpfs as the state directory needs root");
        return;
    }
    let bus = PrivateBus::start(&current_user()).expect("private bus");
    let dir = TempDir::new("store-full").unwrap();
    let _tmpfs = Tmpfs::mount(&dir.path().join("state"), "1m");
    let port = coldspray_e2e::metrics_support::free_port().unwrap();
    let mut d = SimDaemon::spawn_with_metrics(
        &bus,
        dir.path(),
        5.0,
        "initial_reservoir_c = 4.0",
        "",
        Some(port),
    )
    .expect("daemon");
    let c = Client::connect(&bus).await.unwrap();
    c.wait_up(LIMIT).await.unwrap();
    c.wait_ready(LIMIT).await.unwrap();
    c.create_untargeted("long", 60.0).await.unwrap();
    let rule = zbus::MatchRule::builder()
        .msg_type(zbus::message::Type::Signal)
        .interface(UNIT)
        .unwrap()
        .member("NotRecorded")
        .unwrap()
        .build();
    let mut not_recorded = zbus::MessageStream::for_match_rule(rule, &c.conn, None)
        .await
        .unwrap();

    let mut runs = Vec::new();
    for _ in 0..5 {
        let run = session(&c).await;
        assert!(
            run.start_recorded && run.stop_recorded,
            "room on the disk: {run:?}"
        );
        runs.push(run);
    }
    assert!(log_write_failed(&c).await.is_none());
    assert_eq!(store_metrics(port), (1.0, false));

    let filler = d.state.join("filler");
    let filled = fill(&filler);
    let mut failed_at = None;
    for i in 0..5 {
        let run = session(&c).await;
        if let Some((msg, alarm)) = &run.refused {
            // The first failed write: the alarm is up before the answer.
            let alarm = alarm
                .as_ref()
                .unwrap_or_else(|| panic!("NotRecorded ({msg}) with no log_write_failed alarm"));
            assert_eq!(alarm.1, "medium", "{alarm:?}");
            assert!(alarm.4, "condition present: {alarm:?}");
            failed_at.get_or_insert(i);
        } else {
            assert!(
                failed_at.is_none(),
                "a write was acknowledged after one failed, with the disk still full: {run:?}"
            );
        }
        runs.push(run);
    }
    let failed_at = failed_at.unwrap_or_else(|| {
        panic!("{filled} bytes filled the disk, yet every write was answered OK: {runs:?}")
    });
    let signal = tokio::time::timeout(Duration::from_secs(10), not_recorded.next())
        .await
        .expect("a NotRecorded signal")
        .expect("signal stream")
        .unwrap();
    let (what, sid, reason): (String, u64, String) = signal.body().deserialize().unwrap();
    assert!(
        !what.is_empty() && !reason.is_empty(),
        "{what} {sid} {reason}"
    );
    let alarm = log_write_failed(&c)
        .await
        .expect("latched while the disk is full");
    assert!(alarm.4, "{alarm:?}");
    assert_eq!(
        store_metrics(port),
        (0.0, true),
        "log_store_available 0 and the alarm in alarms_active"
    );
    // Acknowledged while the cause is still there: it stays (and the acknowledge itself is
    // carried out but cannot be recorded either).
    if let Err(e) = c.ack_all().await {
        let (name, msg) = method_error(&e).unwrap_or_else(|| panic!("ack: {e}"));
        assert_eq!(name, NOT_RECORDED, "{msg}");
    }
    assert!(log_write_failed(&c).await.is_some(), "cause still present");

    // Space comes back: the log recovers without a restart (the journal's own retry proves it
    // with a write), and the alarm goes once acknowledged.
    std::fs::remove_file(&filler).unwrap();
    let (_, took) = c
        .wait_for(
            "log_write_failed condition to end",
            LIMIT,
            Duration::from_millis(100),
            |c| async move {
                let a = log_write_failed(&c).await;
                Ok(a.is_none_or(|a| !a.4).then_some(()))
            },
        )
        .await
        .unwrap();
    c.ack_all().await.unwrap();
    assert!(
        log_write_failed(&c).await.is_none(),
        "acknowledged after writes work again: {:?}",
        c.alarms().await.unwrap()
    );
    assert!(d.stderr().contains("NOT recorded"), "logged at error");
    assert_eq!(store_metrics(port), (1.0, false));

    // A restart with the newest ids unrecorded: they are not handed out again, and the log
    // reports the gap.
    let max_before = runs.iter().filter_map(|r| r.id).max().unwrap();
    assert!(d.terminate().is_some(), "daemon stopped");
    d.start().unwrap();
    c.wait_up(LIMIT).await.unwrap();
    let alarms = c.alarms().await.unwrap();
    assert!(
        alarms.iter().any(|a| a.0 == "log_damaged"),
        "the restart reports the unrecorded sessions: {alarms:?}"
    );
    for _ in 0..2 {
        let run = session(&c).await;
        assert!(
            run.start_recorded && run.stop_recorded,
            "space freed: {run:?}"
        );
        assert!(
            run.id.is_some_and(|id| id > max_before),
            "an id handed out again after the restart: {run:?} <= {max_before}"
        );
        runs.push(run);
    }
    c.ack_all().await.unwrap();

    // After another restart: every session acknowledged as recorded is there; no id twice.
    assert!(d.terminate().is_some(), "daemon stopped");
    d.start().unwrap();
    c.wait_up(LIMIT).await.unwrap();
    let listed = c.sessions(100).await.unwrap();
    let by_id = |id: u64| listed.iter().find(|s| dict_u64(s, "id") == Some(id));
    let mut handed_out = BTreeSet::new();
    for run in &runs {
        let id = run.id.expect("every session has an id");
        assert!(handed_out.insert(id), "id {id} handed out twice: {runs:?}");
        if run.start_recorded {
            let s = by_id(id).unwrap_or_else(|| panic!("acknowledged session {id} lost"));
            if run.stop_recorded {
                assert_eq!(dict_str(s, "outcome").as_deref(), Some("stopped"), "{s:?}");
            }
        }
    }
    let max = *handed_out.last().unwrap();
    let next = session(&c).await;
    assert!(
        next.id.is_some_and(|id| id > max),
        "id handed out again after the restart: {next:?} <= {max}"
    );
    runs.push(next);
    let unrecorded = runs.iter().filter(|r| r.refused.is_some()).count();
    say!(
        "store_full: {} sessions, {} answered NotRecorded (first at #{}), {} bytes filled, \
         recovered {:.1} s after space was freed, no id reused across 2 restarts \
         (newest unrecorded {max_before}, last id {:?})",
        runs.len(),
        unrecorded,
        5 + failed_at + 1,
        filled,
        took.as_secs_f64(),
        runs.last().and_then(|r| r.id)
    );
}
