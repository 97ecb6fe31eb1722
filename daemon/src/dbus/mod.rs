//! The D-Bus API (`org.coldspray.ColdSpray1`): how the kiosk UI, `coldsprayctl` and service
//! tools control the unit.
//!
//! * [`start`] connects to the configured bus, serves the interfaces — [`unit`],
//!   [`protocols`], [`sessions`], [`maintenance`] and [`simulator`], every method through the
//!   one [`guard`] — at [`PATH`], and returns once [`NAME`] is owned.
//! * [`proxy`] holds the typed client side of the same interfaces.
//! * A watcher task (`watch`) turns snapshot changes into `PropertiesChanged`: state-like
//!   properties at once, State and Ready together in one signal; live values at most every
//!   [`CHANGE_INTERVAL`] (temperatures only when they moved by [`TEMP_EPSILON_C`]); and an
//!   event task turns control events into the Unit signals.
//! * Every argument is checked in [`validate`] before it reaches the controller; refusals are
//!   the typed errors of [`error`].

pub mod access;
pub mod convert;
pub mod error;
pub mod guard;
pub mod live;
pub mod maintenance;
pub mod methods;
pub mod protocols;
pub mod proxy;
pub mod sessions;
pub mod simulator;
pub mod strict;
pub mod unit;
pub mod validate;
mod watch;

use crate::api::Event;
use crate::handle::ControlHandle;
use crate::model::session::Outcome;
use crate::store::Stats;
use serde::{Deserialize, Serialize};
use sessions::Sessions;
use simulator::Simulator;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use strict::Strict;
use tokio::task::JoinHandle;
use zbus::object_server::InterfaceRef;

/// The interfaces as served: each [`Strict`] (standard errors for a wrong signature and a
/// read-only property), so the tasks below hold these types.
type Unit = Strict<unit::Unit>;
type Protocols = Strict<protocols::Protocols>;
type Maintenance = Strict<maintenance::Maintenance>;

pub use error::Error;

/// Interface names, in the order they are documented (each is [`NAME`] and a last part).
pub const INTERFACES: [&str; 5] = [
    "org.coldspray.ColdSpray1.Unit",
    "org.coldspray.ColdSpray1.Protocols",
    "org.coldspray.ColdSpray1.Sessions",
    "org.coldspray.ColdSpray1.Maintenance",
    "org.coldspray.ColdSpray1.Simulator",
];
/// The well-known bus name.
pub const NAME: &str = "org.coldspray.ColdSpray1";
/// The object path of every interface.
pub const PATH: &str = "/org/coldspray/ColdSpray1";
/// Smallest temperature change that emits `PropertiesChanged` for Temperatures, °C.
pub const TEMP_EPSILON_C: f64 = 0.05;
/// Smallest pressure (bar) or flow (L/min) change that emits `PropertiesChanged`.
pub const VALUE_EPSILON: f64 = 0.01;
/// Shortest time between two announcements of live values (temperatures, pressure, flow,
/// the running session's figures, hours, chiller duty). State-like properties go at once.
pub const CHANGE_INTERVAL: Duration = Duration::from_millis(100);

/// Which bus to serve on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BusChoice {
    /// System bus on hardware, session bus on the simulated unit.
    #[default]
    Auto,
    /// The system bus.
    System,
    /// The user's session bus.
    Session,
    /// No D-Bus service.
    None,
}

/// The `[dbus]` section of the daemon's configuration.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DbusConfig {
    /// `"auto"` (default: system bus on hardware, session bus on the sim), `"system"`,
    /// `"session"` or `"none"` (no D-Bus service).
    pub bus: BusChoice,
    /// A bus address (`unix:path=/run/...`) to use instead of `bus` (ignored when `bus` is
    /// `"none"`). Used by tests and by kiosk developers running a private bus.
    pub address: Option<String>,
}

/// Why the D-Bus service could not start.
#[derive(Debug, thiserror::Error)]
pub enum DbusError {
    /// The bus could not be reached.
    #[error("cannot connect to the {bus} bus: {source}")]
    Connect {
        /// Which bus.
        bus: String,
        /// Cause.
        source: zbus::Error,
    },
    /// Serving the interfaces or owning the name failed (name taken, policy forbids owning).
    #[error("cannot own {NAME} on the {bus} bus: {source}")]
    Serve {
        /// Which bus.
        bus: String,
        /// Cause.
        source: zbus::Error,
    },
}

/// The running D-Bus service.
pub struct DbusServer {
    conn: zbus::Connection,
    tasks: Vec<JoinHandle<()>>,
    /// The task that turns control events into signals, drained (not aborted) at shutdown.
    events: JoinHandle<()>,
    /// Tells `events` to send what is queued and end.
    drain: tokio::sync::watch::Sender<bool>,
    bus: String,
}

/// How long [`DbusServer::shutdown`] waits for the queued signals to go out.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(2);

impl DbusServer {
    /// The connection the service runs on.
    pub fn connection(&self) -> &zbus::Connection {
        &self.conn
    }

    /// Which bus it serves on (`system`, `session` or the address).
    pub fn bus(&self) -> &str {
        &self.bus
    }

    /// Stops the change and event tasks, releases the name and closes the connection.
    ///
    /// The control events already broadcast (a session closed by the shutdown, the change to
    /// `stopping`) still go out as signals first, for at most [`DRAIN_TIMEOUT`]: stop the
    /// control loop before calling this, so the kiosk hears how the session ended.
    pub async fn shutdown(self) {
        for t in &self.tasks {
            t.abort();
        }
        // Only fails when the task already ended (the event channel closed).
        let _ = self.drain.send(true);
        let mut events = self.events;
        if tokio::time::timeout(DRAIN_TIMEOUT, &mut events)
            .await
            .is_err()
        {
            tracing::warn!(
                "D-Bus: queued signals not all sent within {DRAIN_TIMEOUT:?} at shutdown"
            );
            events.abort();
        }
        let _ = self.conn.release_name(NAME).await;
        let _ = self.conn.graceful_shutdown().await;
    }
}

/// Starts the D-Bus service; returns after the well-known name is owned, or `None` when
/// `config.bus` is `"none"`. `on_sim` selects the bus for `"auto"` and serves the Simulator
/// interface when the handle carries a simulated unit.
pub async fn start(
    handle: ControlHandle,
    config: &DbusConfig,
    on_sim: bool,
) -> Result<Option<DbusServer>, DbusError> {
    use zbus::connection::Builder;
    let (builder, bus) = match (&config.address, config.bus) {
        (_, BusChoice::None) => return Ok(None),
        (Some(addr), _) => (Builder::address(addr.as_str()), addr.clone()),
        (None, BusChoice::System) => (Builder::system(), "system".into()),
        (None, BusChoice::Session) => (Builder::session(), "session".into()),
        (None, BusChoice::Auto) if on_sim => (Builder::session(), "session".into()),
        (None, BusChoice::Auto) => (Builder::system(), "system".into()),
    };
    let connect = |source| DbusError::Connect {
        bus: bus.clone(),
        source,
    };
    let serve = |source| DbusError::Serve {
        bus: bus.clone(),
        source,
    };
    let builder = builder.map_err(connect)?;
    // The session bus is one user's; everywhere else check callers behind the bus policy.
    let access = if bus == "session" {
        access::Access::open()
    } else {
        access::Access::enforcing()
    };
    let live = Arc::new(live::LiveCurve::default());
    let (h, a) = (&handle, &access);
    let mut builder = builder
        .serve_at(PATH, Strict::new(unit::Unit::new(h.clone(), a.clone())))
        .and_then(|b| {
            b.serve_at(
                PATH,
                Strict::new(protocols::Protocols::new(h.clone(), a.clone())),
            )
        })
        .and_then(|b| {
            b.serve_at(
                PATH,
                Strict::new(Sessions::new(h.clone(), a.clone(), live.clone())),
            )
        })
        .and_then(|b| {
            b.serve_at(
                PATH,
                Strict::new(maintenance::Maintenance::new(h.clone(), a.clone())),
            )
        })
        .map_err(serve)?;
    if let Some(sim) = handle.sim.clone() {
        builder = builder
            .serve_at(PATH, Strict::new(Simulator::new(h.clone(), a.clone(), sim)))
            .map_err(serve)?;
    }
    methods::register(&handle.telemetry, handle.sim.is_some());
    let conn = builder.build().await.map_err(connect)?;
    // Own the name without queueing: a second daemon must fail, not wait in line.
    let reply = conn
        .request_name_with_flags(NAME, zbus::fdo::RequestNameFlags::DoNotQueue.into())
        .await
        .map_err(serve)?;
    if !matches!(
        reply,
        zbus::fdo::RequestNameReply::PrimaryOwner | zbus::fdo::RequestNameReply::AlreadyOwner
    ) {
        return Err(serve(zbus::Error::NameTaken));
    }
    let server = conn.object_server();
    let unit = server.interface::<_, Unit>(PATH).await.map_err(serve)?;
    let protocols = server
        .interface::<_, Protocols>(PATH)
        .await
        .map_err(serve)?;
    let maint = server
        .interface::<_, Maintenance>(PATH)
        .await
        .map_err(serve)?;
    let tasks = vec![
        tokio::spawn(watch::watch_snapshots(
            handle.clone(),
            unit.clone(),
            maint.clone(),
        )),
        tokio::spawn(watch::watch_protocols(handle.clone(), protocols)),
        tokio::spawn(live::follow(handle.clone(), live)),
    ];
    let (drain, drain_rx) = tokio::sync::watch::channel(false);
    let events = tokio::spawn(forward_events(handle.clone(), unit, maint, drain_rx));
    tracing::info!(bus = %bus, "D-Bus service {NAME} ready");
    Ok(Some(DbusServer {
        conn,
        tasks,
        events,
        drain,
        bus,
    }))
}

/// Turns control events into Unit/Maintenance signals until the channel closes, or until
/// `drain` turns true: then it sends what is still queued and ends.
async fn forward_events(
    h: ControlHandle,
    unit: InterfaceRef<Unit>,
    maint: InterfaceRef<Maintenance>,
    mut drain: tokio::sync::watch::Receiver<bool>,
) {
    use tokio::sync::broadcast::error::{RecvError, TryRecvError};
    let mut rx = h.events();
    let ue = unit.signal_emitter().clone();
    let me = maint.signal_emitter().clone();
    let mut draining = false;
    loop {
        let next = if draining {
            match rx.try_recv() {
                Ok(ev) => Ok(ev),
                Err(TryRecvError::Lagged(n)) => Err(RecvError::Lagged(n)),
                Err(TryRecvError::Empty | TryRecvError::Closed) => return,
            }
        } else {
            tokio::select! {
                biased;
                r = rx.recv() => r,
                _ = drain.changed() => {
                    draining = true;
                    continue;
                }
            }
        };
        let ev = match next {
            Ok(ev) => ev,
            Err(RecvError::Lagged(n)) => {
                h.telemetry.events_lagged.fetch_add(n, Ordering::Relaxed);
                continue;
            }
            Err(RecvError::Closed) => return,
        };
        let r = match ev {
            Event::SessionStarted(s) => {
                unit::Unit::session_started(&ue, s.id, &s.protocol, s.cause.name(), s.late).await
            }
            Event::SessionEnded(r) => {
                unit::Unit::session_ended(&ue, r.id(), r.outcome.name(), r.outcome.is_completed())
                    .await
            }
            Event::AlarmRaised(a) => {
                unit::Unit::alarm_raised(&ue, &a.kind.key(), a.priority.name(), &a.message).await
            }
            Event::AlarmRemoved { kind, .. } => unit::Unit::alarm_cleared(&ue, &kind.key()).await,
            Event::NotRecorded {
                what,
                session_id,
                reason,
                ..
            } => unit::Unit::not_recorded(&ue, &what, session_id.unwrap_or(0), &reason).await,
            Event::StateChanged {
                from,
                to,
                reason,
                code,
                ..
            } => unit::Unit::state_transition(&ue, from.name(), to.name(), &reason, &code).await,
            Event::SelfTestFinished { passed, report, .. } => {
                maintenance::Maintenance::self_test_finished(&me, passed, report).await
            }
            _ => Ok(()),
        };
        if let Err(e) = r {
            tracing::debug!("D-Bus signal not sent: {e}");
        }
    }
}

/// `Sessions.Stats` as a D-Bus dict: the store's figures ([`Stats::of`]) under the names
/// the interface documents; every outcome is listed in `by_outcome`, absent figures are
/// absent keys.
pub fn stats_dict(stats: &Stats) -> convert::Dict {
    use convert::put;
    let mut d = convert::Dict::new();
    put(&mut d, "count", stats.sessions);
    put(&mut d, "completed", stats.completed);
    put(&mut d, "late", stats.late_starts);
    let by: std::collections::HashMap<String, u64> = Outcome::ALL
        .into_iter()
        .map(|o| {
            let c = stats.by_outcome.get(o.name()).copied().unwrap_or(0);
            (o.name().to_string(), c)
        })
        .collect();
    put(&mut d, "by_outcome", zbus::zvariant::Value::from(by));
    if let Some(mean) = stats.mean_laser_to_spray_ms {
        put(&mut d, "mean_laser_to_spray_ms", mean);
    }
    if let Some(max) = stats.max_laser_to_spray_ms {
        put(&mut d, "max_laser_to_spray_ms", max);
    }
    if let Some(mean) = stats.mean_spray_s() {
        put(&mut d, "mean_spray_s", mean);
    }
    if let Some(max) = stats.max_peak_skin_c {
        put(&mut d, "max_peak_skin_c", max);
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::session::SessionRecord;
    use crate::store::export::test_record as rec;

    #[test]
    fn stats_of_nothing_and_of_something() {
        let stats = |records: &[SessionRecord]| stats_dict(&Stats::of(records));
        let d = stats(&[]);
        assert_eq!(u64::try_from(&d["count"]).ok(), Some(0));
        assert!(!d.contains_key("mean_spray_s"));
        let d = stats(&[rec(1, "a", None), rec(2, "b", Some("estop"))]);
        assert_eq!(u64::try_from(&d["count"]).ok(), Some(2));
        assert_eq!(u64::try_from(&d["completed"]).ok(), Some(0));
        assert_eq!(f64::try_from(&d["mean_spray_s"]).ok(), Some(2.0));
        assert_eq!(f64::try_from(&d["mean_laser_to_spray_ms"]).ok(), Some(12.5));
    }

    #[test]
    fn dbus_section_parses() {
        let c: DbusConfig = toml::from_str("bus = \"none\"").unwrap();
        assert_eq!(c.bus, BusChoice::None);
        let c: DbusConfig = toml::from_str("address = \"unix:path=/tmp/x\"").unwrap();
        assert_eq!(c.bus, BusChoice::Auto);
        assert!(toml::from_str::<DbusConfig>("bus = \"carrier-pigeon\"").is_err());
        assert!(toml::from_str::<DbusConfig>("port = 1").is_err());
    }
}
