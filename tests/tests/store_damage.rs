//! Records sled drops after damage in its files are not silent: the real daemon (simulated
//! unit, private bus, real sled log) starts with a `log_damaged` alarm when the log's
//! high-water mark says more sessions were flushed than the log now holds, keeps treating,
//! and the alarm goes once acknowledged.
//!
//! The damage is played by the mark itself: the file `coldspray-high-water` (session id, u64
//! big-endian, then its CRC-32 little-endian) is rewritten to claim sessions the log never
//! had, exactly what the store sees when sled drops the newest records after damage.

use coldspray_e2e::rel::*;
use coldspray_e2e::{current_user, PrivateBus, TempDir};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_lost_from_the_log_raise_an_alarm_at_start() {
    let _ticket = coldspray_e2e::gate::alone();
    let bus = PrivateBus::start(&current_user()).expect("private bus");
    let dir = TempDir::new("store-damage").unwrap();
    let mut d =
        SimDaemon::spawn(&bus, dir.path(), 20.0, "initial_reservoir_c = 4.0", "").expect("daemon");
    let c = Client::connect(&bus).await.unwrap();
    c.wait_up(Duration::from_secs(60)).await.unwrap();
    c.wait_ready(Duration::from_secs(60)).await.unwrap();
    let id = c.start("co2_fractional").await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(d.terminate().is_some(), "daemon stopped");

    // A clean restart first: nothing lost, no alarm.
    d.start().unwrap();
    c.wait_up(Duration::from_secs(60)).await.unwrap();
    let codes = |a: &[AlarmTuple]| a.iter().map(|t| t.0.clone()).collect::<Vec<_>>();
    let alarms = c.alarms().await.unwrap();
    assert!(
        !codes(&alarms).contains(&"log_damaged".to_string()),
        "{alarms:?}"
    );
    assert!(d.terminate().is_some());

    let mark = d.state.join("log").join("coldspray-high-water");
    assert!(
        mark.exists(),
        "the store keeps its mark at {}",
        mark.display()
    );
    let claimed = id + 40;
    let mut bytes = claimed.to_be_bytes().to_vec();
    bytes.extend_from_slice(&crc32fast::hash(&claimed.to_be_bytes()).to_le_bytes());
    std::fs::write(&mark, bytes).unwrap();

    d.start().unwrap();
    c.wait_up(Duration::from_secs(60)).await.unwrap();
    let alarms = c.alarms().await.unwrap();
    let damaged = alarms
        .iter()
        .find(|a| a.0 == "log_damaged")
        .unwrap_or_else(|| panic!("no log_damaged alarm: {alarms:?}"));
    assert_eq!(damaged.1, "medium", "{damaged:?}");
    // Treatment goes on: the unit gets ready and sprays, and the surviving session is listed.
    c.wait_ready(Duration::from_secs(60)).await.unwrap();
    let next = c.start("co2_fractional").await.unwrap();
    assert!(
        next > claimed,
        "lost ids are not handed out again: {next} <= {claimed}"
    );
    let listed: Vec<u64> = c
        .sessions(50)
        .await
        .unwrap()
        .iter()
        .filter_map(|s| dict_u64(s, "id"))
        .collect();
    assert!(listed.contains(&id), "{listed:?}");
    c.ack_all().await.unwrap();
    let alarms = c.alarms().await.unwrap();
    assert!(
        !codes(&alarms).contains(&"log_damaged".to_string()),
        "acknowledged: {alarms:?}"
    );
    let log = d.stderr();
    assert!(
        log.contains("log_damaged"),
        "the alarm is in the daemon's log"
    );
}
