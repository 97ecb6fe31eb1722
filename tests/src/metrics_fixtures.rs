//! Fixtures for the metrics tests: a busy unit's snapshot, sessions and alarms, and a
//! [`ControlHandle`] the test drives through its [`HandleEnds`].

use coldspray_hal::Output;
use coldsprayd::api::{Event, SessionProgress, Snapshot};
use coldsprayd::handle::{ControlHandle, HandleEnds, UnitInfo};
use coldsprayd::model::alarm::{Alarm, AlarmKind};
use coldsprayd::model::session::{Outcome, SessionRecord, SessionStart, StartCause};
use coldsprayd::protocol::Goal;
use coldsprayd::store::{LogStore, SessionDetail, SessionQuery, StoreError};
use coldsprayd::UnitState;
use std::sync::Arc;
use std::time::Duration;

/// A log store that stores nothing and reports a fixed size: only its size reaches metrics.
pub struct SizedStore;

impl LogStore for SizedStore {
    fn record(&self, _event: &Event) -> Result<(), StoreError> {
        Ok(())
    }
    fn sessions(&self, _query: &SessionQuery) -> Result<Vec<SessionRecord>, StoreError> {
        Ok(Vec::new())
    }
    fn session(&self, _id: u64) -> Result<Option<SessionDetail>, StoreError> {
        Ok(None)
    }
    fn size_on_disk(&self) -> Option<u64> {
        Some(123_456)
    }
}

/// An active, unacknowledged alarm of `kind` raised at `at_s`.
pub fn alarm(kind: AlarmKind, at_s: u64) -> Alarm {
    Alarm {
        kind,
        priority: kind.priority(),
        message: kind.describe(),
        params: Default::default(),
        raised_at: Duration::from_secs(at_s),
        raised_unix_ms: 1_700_000_000_000,
        condition_present: true,
        acknowledged: false,
    }
}

/// A session opening record.
pub fn session_start(
    id: u64,
    cause: StartCause,
    delay_ms: Option<f64>,
    late: bool,
    at_s: u64,
) -> SessionStart {
    SessionStart {
        id,
        protocol: "co2_fractional".into(),
        goal: Goal::Protect,
        cause,
        started_at: Duration::from_secs(at_s),
        started_unix_ms: 1_700_000_000_000 + at_s as i64 * 1000,
        laser_to_spray_ms: delay_ms,
        late,
        skin_target_c: Some(20.0),
        skin_floor_c: 10.0,
    }
}

/// A closing record `secs` after `start`.
pub fn ended(
    start: SessionStart,
    secs: u64,
    outcome: Outcome,
    min_skin: Option<f64>,
) -> SessionRecord {
    SessionRecord {
        ended_at: start.started_at + Duration::from_secs(secs),
        ended_unix_ms: start.started_unix_ms + secs as i64 * 1000,
        start,
        outcome,
        peak_skin_c: Some(44.0),
        min_skin_c: min_skin,
        time_to_target_ms: Some(8_000),
        above_40_ms: Some(1_500),
        spray_ms: secs * 1000,
        ended_by_alarm: None,
    }
}

/// A spraying unit with every sensor valid, two outputs on, one alarm and a session running.
pub fn busy_snapshot() -> Snapshot {
    let mut s = Snapshot::power_on(4.0);
    s.at = Duration::from_secs(500);
    s.state = UnitState::Spraying;
    s.state_since = Duration::from_secs(490);
    s.readings = [Some(4.2), Some(5.1), Some(31.0), Some(28.5), Some(1.8)];
    s.flow_l_min = 0.6;
    s.outputs[Output::Pump.index()] = true;
    s.outputs[Output::SprayValve.index()] = true;
    s.outputs[Output::Chiller.index()] = true;
    s.alarms = vec![alarm(AlarmKind::ServiceDue, 100)];
    s.session = Some(SessionProgress {
        start: session_start(3, StartCause::AutoStart, Some(9.0), false, 490),
        elapsed_s: 10.0,
        remaining_s: 20.0,
        end_in_s: 20.0,
        end_basis: Default::default(),
        in_band: false,
        peak_skin_c: Some(41.0),
        min_skin_c: Some(21.0),
    });
    s.counters.pump_seconds = 7200.5;
    s.counters.chiller_seconds = 36000.0;
    s.counters.sessions = 42;
    s.counters.water_changes = 3;
    s.chiller_duty = 0.4;
    s.last_self_test = Some((Duration::from_secs(5), true));
    s
}

/// A handle on a simulated-looking unit with a store, as the lead's runtime would build it.
pub fn handle() -> (ControlHandle, HandleEnds) {
    let info = UnitInfo {
        version: "0.1.0-test".into(),
        backend: "sim".into(),
        features: vec!["sim".into(), "metrics".into()],
    };
    let store: Arc<dyn LogStore> = Arc::new(SizedStore);
    ControlHandle::new(info, Snapshot::power_on(4.0), Vec::new(), Some(store), None)
}

/// Starts the metrics endpoint for `handle` on a free loopback port, in `rt`.
pub fn start_on_loopback(
    rt: &tokio::runtime::Runtime,
    handle: &ControlHandle,
) -> coldsprayd::metrics::MetricsServer {
    let config = coldsprayd::metrics::MetricsConfig {
        enabled: true,
        listen: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
    };
    rt.block_on(coldsprayd::metrics::start(handle.clone(), &config))
        .expect("start metrics server")
}
