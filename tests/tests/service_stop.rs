//! `systemctl restart`, `systemctl stop` or a package upgrade during a session: systemd sends
//! SIGTERM. The real `coldsprayd` (simulated unit, private bus, real sled log) must close the
//! running session durably with outcome `shutdown` and tell the kiosk BEFORE it exits:
//! `SessionEnded(id, "shutdown", false)` and `StateChanged(.., "stopping", reason)` are on the
//! bus, the process exits 0, and after a restart the log holds the record as `shutdown` (not
//! `aborted`: it was closed, not found open) with no id reused.

use coldspray_e2e::rel::*;
use coldspray_e2e::{current_user, PrivateBus, TempDir};
use futures_util::StreamExt;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_a_session_closes_it_and_tells_the_kiosk() {
    let _ticket = coldspray_e2e::gate::shared();
    let bus = PrivateBus::start(&current_user()).expect("private bus");
    let dir = TempDir::new("svc-stop").unwrap();
    let mut d =
        SimDaemon::spawn(&bus, dir.path(), 5.0, "initial_reservoir_c = 4.0", "").expect("daemon");
    let c = Client::connect(&bus).await.unwrap();
    c.wait_up(WAIT).await.unwrap();
    c.wait_ready(WAIT).await.unwrap();
    // 120 s of spray at speed 5: 24 s of wall time, still running at the SIGTERM.
    c.create_untargeted("svc_long", 120.0).await.unwrap();

    // The kiosk's view: every Unit signal, subscribed before the session starts.
    let rule = zbus::MatchRule::builder()
        .msg_type(zbus::message::Type::Signal)
        .interface(UNIT)
        .unwrap()
        .build();
    let mut signals = zbus::MessageStream::for_match_rule(rule, &c.conn, None)
        .await
        .unwrap();
    let id = c.start("svc_long").await.expect("session started");
    c.wait_for(
        "spraying",
        WAIT,
        Duration::from_millis(20),
        |c| async move { Ok((c.state().await? == "spraying").then_some(())) },
    )
    .await
    .unwrap();

    // systemctl stop / restart: SIGTERM to the main process.
    let code = d.terminate();
    assert_eq!(code, Some(0), "exit after SIGTERM\n{}", d.stderr());

    // Everything the daemon sent before it exited is already in the bus's queue to us.
    let mut ended = None;
    let mut stopping = None;
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(Ok(m)) = signals.next().await {
            match m.header().member().map(|x| x.as_str().to_string()) {
                Some(s) if s == "SessionEnded" => {
                    ended = Some(m.body().deserialize::<(u64, String, bool)>().unwrap());
                }
                Some(s) if s == "StateChanged" => {
                    let t = m
                        .body()
                        .deserialize::<(String, String, String, String)>()
                        .unwrap();
                    if t.1 == "stopping" {
                        stopping = Some(t);
                    }
                }
                _ => {}
            }
            if ended.is_some() && stopping.is_some() {
                break;
            }
        }
    })
    .await;
    assert_eq!(
        ended,
        Some((id, "shutdown".to_string(), false)),
        "the kiosk must see SessionEnded before the daemon exits\n{}",
        d.stderr()
    );
    let stopping = stopping.expect("StateChanged to stopping before the daemon exits");
    assert!(
        stopping.2.contains("SIGTERM"),
        "the reason says why: {stopping:?}"
    );
    assert_eq!(stopping.3, "shutdown", "and its code: {stopping:?}");
    let log = d.stderr();
    assert!(
        log.contains(&format!("session {id} ended: shutdown")),
        "the journal says which session was closed and why:\n{log}"
    );

    // After the restart the record is in the log, closed by the stop (not found open).
    d.start().unwrap();
    c.wait_up(WAIT).await.unwrap();
    c.wait_ready(WAIT).await.unwrap();
    let rec = c.session(id).await.unwrap();
    assert_eq!(
        dict_str(&rec, "outcome").as_deref(),
        Some("shutdown"),
        "{rec:?}"
    );
    let restart_log = d.stderr();
    assert!(
        !restart_log[log.len()..].contains("left open by a crash"),
        "the session was closed at the stop, not found open:\n{restart_log}"
    );
    let next = c.start("svc_long").await.unwrap();
    assert!(next > id, "id {next} reused (closed {id})");
    c.call0(UNIT, "Stop", &()).await.unwrap();
    assert_eq!(d.terminate(), Some(0), "{}", d.stderr());
}
