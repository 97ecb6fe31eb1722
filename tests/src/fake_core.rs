//! A control loop played by the test, for in-process tests of the D-Bus layer before (and
//! independently of) the real control core: it answers commands with simple, documented
//! rules and publishes snapshots and events like the runtime does.

use coldsprayd::api::{Command, CommandError, Event, MaintenanceActivity, Reply, Snapshot};
use coldsprayd::handle::{ControlHandle, HandleEnds, UnitInfo};
use coldsprayd::model::session::{Outcome, SessionRecord, SessionStart, StartCause};
use coldsprayd::protocol::Protocol;
use coldsprayd::store::LogStore;
use coldsprayd::UnitState;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{broadcast, watch};

/// A [`FakeCore`] served by the real D-Bus service on `bus`, and a client connected to it.
pub async fn served(
    bus: &crate::PrivateBus,
    store: Option<Arc<dyn LogStore>>,
) -> (FakeCore, coldsprayd::dbus::DbusServer, zbus::Connection) {
    use coldsprayd::dbus::{self, BusChoice, DbusConfig};
    let core = FakeCore::start(store);
    let config = DbusConfig {
        bus: BusChoice::Session,
        address: Some(bus.address().to_string()),
    };
    let server = dbus::start(core.handle.clone(), &config, false)
        .await
        .expect("service starts")
        .expect("bus is not none");
    let client = bus.connect().await.expect("client connects");
    (core, server, client)
}

/// A [`FakeCore`] served on a private bus of its own, with a client: what the D-Bus tests that
/// need no daemon process start from.
pub struct Served {
    /// The core behind the service.
    pub core: FakeCore,
    /// The running service.
    pub server: coldsprayd::dbus::DbusServer,
    /// A client on the same bus.
    pub client: zbus::Connection,
    /// Kept for the bus's lifetime.
    pub bus: crate::PrivateBus,
}

/// Starts a private bus (policy for the current user) and [`served`] on it, without a store.
pub async fn served_privately() -> Served {
    let bus = crate::PrivateBus::start(&crate::current_user()).expect("private bus");
    let (core, server, client) = served(&bus, None).await;
    Served {
        core,
        server,
        client,
        bus,
    }
}

/// `org.freedesktop.DBus.Properties` of the service's object, for its `PropertiesChanged`.
pub async fn properties(c: &zbus::Connection) -> zbus::fdo::PropertiesProxy<'static> {
    zbus::fdo::PropertiesProxy::builder(c)
        .destination(crate::introspect::NAME)
        .expect("bus name")
        .path(crate::introspect::PATH)
        .expect("object path")
        .build()
        .await
        .expect("Properties proxy")
}

/// The played control loop.
pub struct FakeCore {
    /// The handle to give the D-Bus server.
    pub handle: ControlHandle,
    /// Every command that reached the "controller", in order.
    pub received: Arc<Mutex<Vec<Command>>>,
    snapshot: watch::Sender<Arc<Snapshot>>,
    events: broadcast::Sender<Event>,
    task: tokio::task::JoinHandle<()>,
}

/// A ready unit: reservoir 4 °C, skin 33 °C.
pub fn ready_snapshot() -> Snapshot {
    let mut s = Snapshot::power_on(4.0);
    s.state = UnitState::Ready;
    s.ready = true;
    s.not_ready = Vec::new();
    s.pedal_protocol = "co2_fractional".into();
    s.readings = [Some(4.0), Some(4.5), Some(30.0), Some(33.0), Some(0.0)];
    s
}

impl FakeCore {
    /// Starts the loop with a ready unit and the factory protocols.
    pub fn start(store: Option<Arc<dyn LogStore>>) -> FakeCore {
        let info = UnitInfo {
            version: "0.1.0-test".into(),
            backend: "fake".into(),
            features: vec!["skin_sensor".into()],
        };
        let (handle, ends) = ControlHandle::new(
            info,
            ready_snapshot(),
            Protocol::factory_defaults(),
            store,
            None,
        );
        let received = Arc::new(Mutex::new(Vec::new()));
        let snapshot = ends.snapshot.clone();
        let events = ends.events.clone();
        let task = tokio::spawn(run(ends, received.clone()));
        FakeCore {
            handle,
            received,
            snapshot,
            events,
            task,
        }
    }

    /// Changes the published snapshot.
    pub fn update(&self, f: impl FnOnce(&mut Snapshot)) {
        self.snapshot.send_modify(|s| {
            let mut n = (**s).clone();
            f(&mut n);
            n.at += Duration::from_millis(10);
            *s = Arc::new(n);
        });
    }

    /// Publishes an event.
    pub fn emit(&self, e: Event) {
        let _ = self.events.send(e);
    }

    /// Commands received so far.
    pub fn commands(&self) -> Vec<Command> {
        self.received.lock().map(|v| v.clone()).unwrap_or_default()
    }
}

impl Drop for FakeCore {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn modify(ends: &HandleEnds, f: impl FnOnce(&mut Snapshot)) {
    ends.snapshot.send_modify(|s| {
        let mut n = (**s).clone();
        f(&mut n);
        n.at += Duration::from_millis(10);
        *s = Arc::new(n);
    });
}

async fn run(mut ends: HandleEnds, received: Arc<Mutex<Vec<Command>>>) {
    let mut next_id = 1u64;
    while let Some((cmd, _caller, reply)) = ends.commands.recv().await {
        if let Ok(mut v) = received.lock() {
            v.push(cmd.clone());
        }
        let snap = ends.snapshot.borrow().clone();
        let state = snap.state;
        let not_permitted = |action: &str| CommandError::NotPermitted {
            action: action.into(),
            state,
        };
        let r: Result<Reply, CommandError> = match cmd {
            Command::StartSession { protocol, options } => {
                if state != UnitState::Ready {
                    Err(CommandError::NotReady { state })
                } else {
                    let id = next_id;
                    next_id += 1;
                    let start = SessionStart {
                        id,
                        protocol,
                        goal: coldsprayd::protocol::Goal::Protect,
                        cause: StartCause::Command,
                        started_at: snap.at,
                        started_unix_ms: 1_700_000_000_000,
                        laser_to_spray_ms: None,
                        late: false,
                        skin_target_c: options.skin_target_c,
                        skin_floor_c: 10.0,
                    };
                    modify(&ends, |s| {
                        s.state = UnitState::Spraying;
                        s.ready = false;
                        s.session = Some(coldsprayd::api::SessionProgress {
                            start: start.clone(),
                            elapsed_s: 0.0,
                            remaining_s: options.spray_s.unwrap_or(60.0),
                            end_in_s: options.spray_s.unwrap_or(60.0),
                            end_basis: Default::default(),
                            in_band: false,
                            peak_skin_c: None,
                            min_skin_c: None,
                        });
                        s.counters.sessions += 1;
                    });
                    let _ = ends.events.send(Event::SessionStarted(start));
                    Ok(Reply::SessionStarted(id))
                }
            }
            Command::StopSession => match &snap.session {
                Some(p) => {
                    let record = SessionRecord {
                        start: p.start.clone(),
                        ended_at: snap.at,
                        ended_unix_ms: p.start.started_unix_ms + 1000,
                        outcome: Outcome::Stopped,
                        peak_skin_c: None,
                        min_skin_c: None,
                        time_to_target_ms: None,
                        above_40_ms: None,
                        spray_ms: 1000,
                        ended_by_alarm: None,
                    };
                    modify(&ends, |s| {
                        s.state = UnitState::Ready;
                        s.ready = true;
                        s.session = None;
                    });
                    let _ = ends.events.send(Event::SessionEnded(record));
                    Ok(Reply::Accepted)
                }
                None => Err(not_permitted("stop")),
            },
            Command::Arm { protocol } => {
                modify(&ends, |s| s.armed = Some(protocol));
                Ok(Reply::Accepted)
            }
            Command::Disarm => {
                modify(&ends, |s| s.armed = None);
                Ok(Reply::Accepted)
            }
            Command::Acknowledge { key: None } => {
                modify(&ends, |s| s.alarms.clear());
                Ok(Reply::Accepted)
            }
            Command::Acknowledge { key: Some(k) } => {
                if snap.alarms.iter().any(|a| a.kind.key() == k) {
                    modify(&ends, |s| s.alarms.retain(|a| a.kind.key() != k));
                    Ok(Reply::Accepted)
                } else {
                    Err(CommandError::UnknownAlarm(k))
                }
            }
            Command::AudioPause => {
                modify(&ends, |s| {
                    s.audio_paused_until = Some(s.at + Duration::from_secs(120))
                });
                Ok(Reply::Accepted)
            }
            Command::SetSetpoint { celsius } => {
                modify(&ends, |s| s.setpoint_c = celsius);
                Ok(Reply::Accepted)
            }
            Command::EnterMaintenance => {
                if matches!(
                    state,
                    UnitState::Ready | UnitState::Precooling | UnitState::Fault
                ) {
                    modify(&ends, |s| {
                        s.state = UnitState::Maintenance;
                        s.ready = false;
                    });
                    Ok(Reply::Accepted)
                } else {
                    Err(not_permitted("enter maintenance"))
                }
            }
            Command::ExitMaintenance => {
                if state == UnitState::Maintenance {
                    modify(&ends, |s| {
                        s.state = UnitState::Ready;
                        s.ready = true;
                        s.maintenance = None;
                    });
                    Ok(Reply::Accepted)
                } else {
                    Err(not_permitted("exit maintenance"))
                }
            }
            Command::Prime { .. } | Command::Drain { .. } | Command::TestOutput { .. } => {
                if state == UnitState::Maintenance {
                    let act = match cmd {
                        Command::Prime { .. } => MaintenanceActivity::Prime,
                        Command::Drain { .. } => MaintenanceActivity::Drain,
                        Command::TestOutput { output, .. } => {
                            MaintenanceActivity::TestOutput(output)
                        }
                        _ => MaintenanceActivity::SelfTest,
                    };
                    modify(&ends, |s| s.maintenance = Some(act));
                    Ok(Reply::Accepted)
                } else {
                    Err(not_permitted("maintenance activity"))
                }
            }
            Command::SelfTest => {
                modify(&ends, |s| s.last_self_test = Some((s.at, true)));
                let _ = ends.events.send(Event::SelfTestFinished {
                    at: snap.at,
                    passed: true,
                    report: vec!["reservoir: ok".into()],
                });
                Ok(Reply::Accepted)
            }
            Command::SetCalibration { .. } | Command::ConfirmSettings => Ok(Reply::Accepted),
            Command::RecordWaterChange => {
                modify(&ends, |s| s.counters.water_changes += 1);
                Ok(Reply::Accepted)
            }
            Command::UpsertProtocol(p) => {
                ends.protocols.send_modify(|list| {
                    let mut l = (**list).clone();
                    match l.iter_mut().find(|x| x.name == p.name) {
                        Some(x) => *x = *p,
                        None => l.push(*p),
                    }
                    *list = Arc::new(l);
                });
                Ok(Reply::Accepted)
            }
            Command::DeleteProtocol { name } => {
                if Protocol::factory_defaults().iter().any(|p| p.name == name) {
                    Err(not_permitted("delete a factory protocol"))
                } else {
                    ends.protocols.send_modify(|list| {
                        let l: Vec<_> = list.iter().filter(|p| p.name != name).cloned().collect();
                        *list = Arc::new(l);
                    });
                    Ok(Reply::Accepted)
                }
            }
        };
        let _ = reply.send(r);
    }
}
