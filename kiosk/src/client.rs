//! The kiosk's only way to the daemon: D-Bus through the typed proxies of
//! `coldsprayd::dbus::proxy` (the ones `coldsprayctl` uses). A [`Request`] goes in, a
//! [`Reply`] comes out; the screens never see zbus. The connection is made on first use and
//! made again after the bus went away, so the kiosk reconnects by itself.

use crate::model::{self, CurveSlice, Poll};
use coldsprayd::dbus::convert::{CurvePoint, Dict};
use coldsprayd::dbus::proxy::{
    uncached, MaintenanceProxy, ProtocolsProxy, SessionInfo, SessionsProxy, UnitProxy,
};
use coldsprayd::dbus::{INTERFACES, NAME, PATH};
use std::sync::Arc;
use std::time::Duration;
use zbus::zvariant::OwnedValue;

/// How many sessions the history screen asks for (newest first).
const HISTORY_LIMIT: u32 = 200;

/// How long a call may take before the daemon counts as gone.
const CALL_TIMEOUT: Duration = Duration::from_secs(2);

/// How long to wait before listening for signals again after the bus went away.
const RELISTEN_AFTER: Duration = Duration::from_secs(2);

/// Where the daemon is.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Bus {
    /// The system bus (the unit).
    System,
    /// The session bus (a developer's `coldsprayd --sim`).
    Session,
    /// A bus address (tests, a private bus).
    Address(String),
}

/// A failed request, in words for the screen.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ClientError {
    /// The daemon (or the bus) cannot be reached.
    #[error("daemon not reachable: {0}")]
    Unreachable(String),
    /// The daemon answered with an error.
    #[error("{name}: {message}")]
    Refused {
        /// Short D-Bus error name (`PermissionDenied`, `NotReady`...).
        name: String,
        /// Its message.
        message: String,
    },
    /// Anything else (an unexpected reply).
    #[error("{0}")]
    Other(String),
}

impl ClientError {
    fn of(e: zbus::Error) -> ClientError {
        match e {
            zbus::Error::MethodError(name, msg, _) => {
                let short = name.as_str().rsplit('.').next().unwrap_or("").to_string();
                let message = msg.unwrap_or_default();
                match short.as_str() {
                    "ServiceUnknown" | "NameHasNoOwner" | "NoReply" | "Timeout"
                    | "Disconnected" | "NoServer" => ClientError::Unreachable(short),
                    _ => ClientError::Refused {
                        name: short,
                        message,
                    },
                }
            }
            zbus::Error::InputOutput(e) => ClientError::Unreachable(e.to_string()),
            zbus::Error::Address(e) => ClientError::Unreachable(e),
            other => ClientError::Other(other.to_string()),
        }
    }

    /// True when the daemon is not there (as opposed to answering no).
    pub fn unreachable(&self) -> bool {
        matches!(self, ClientError::Unreachable(_))
    }
}

/// What the kiosk asks of the daemon.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    /// Every property the screens show, and the live curve from this index.
    Poll(u32),
    /// Sessions of the treatment log, newest first.
    History,
    /// One session and its curve.
    Session(u64),
    /// An action; its label is shown with the result.
    Act(Action),
}

/// An action of a person at the unit.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// `Unit.Start(protocol)`.
    Start(String),
    /// `Unit.Stop`.
    Stop,
    /// `Unit.Arm(protocol)` (the pedal starts it).
    Arm(String),
    /// `Unit.Disarm`.
    Disarm,
    /// `Unit.Acknowledge(key)`, "" for all.
    Acknowledge(String),
    /// `Unit.AudioPause`.
    AudioPause,
    /// `Maintenance.Enter`.
    EnterMaintenance,
    /// `Maintenance.Exit`.
    ExitMaintenance,
    /// `Maintenance.Prime(s)`.
    Prime(f64),
    /// `Maintenance.Drain(s)`.
    Drain(f64),
    /// `Maintenance.TestOutput(output, s)`.
    TestOutput(String, f64),
    /// `Maintenance.SelfTest`.
    SelfTest,
    /// `Maintenance.RecordWaterChange`.
    RecordWaterChange,
    /// `Protocols.Update(name, changes)` with numeric fields.
    UpdateProtocol(String, Vec<(String, f64)>),
}

impl Action {
    /// The D-Bus method (`Interface.Member`) it calls, for the role check.
    pub fn method(&self) -> &'static str {
        match self {
            Action::Start(_) => "Unit.Start",
            Action::Stop => "Unit.Stop",
            Action::Arm(_) => "Unit.Arm",
            Action::Disarm => "Unit.Disarm",
            Action::Acknowledge(_) => "Unit.Acknowledge",
            Action::AudioPause => "Unit.AudioPause",
            Action::EnterMaintenance => "Maintenance.Enter",
            Action::ExitMaintenance => "Maintenance.Exit",
            Action::Prime(_) => "Maintenance.Prime",
            Action::Drain(_) => "Maintenance.Drain",
            Action::TestOutput(..) => "Maintenance.TestOutput",
            Action::SelfTest => "Maintenance.SelfTest",
            Action::RecordWaterChange => "Maintenance.RecordWaterChange",
            Action::UpdateProtocol(..) => "Protocols.Update",
        }
    }

    /// What was done, in words.
    pub fn done_text(&self) -> String {
        match self {
            Action::Start(p) => format!("Started {p}"),
            Action::Stop => "Stopped".into(),
            Action::Arm(p) => format!("Pedal starts {p}"),
            Action::Disarm => "Pedal disarmed".into(),
            Action::Acknowledge(k) if k.is_empty() => "All alarms acknowledged".into(),
            Action::Acknowledge(k) => format!("{k} acknowledged"),
            Action::AudioPause => "Audio paused".into(),
            Action::EnterMaintenance => "Maintenance mode".into(),
            Action::ExitMaintenance => "Left maintenance".into(),
            Action::Prime(s) => format!("Priming {s:.0} s"),
            Action::Drain(s) => format!("Draining {s:.0} s"),
            Action::TestOutput(o, s) => format!("Testing {o} {s:.0} s"),
            Action::SelfTest => "Self-test started".into(),
            Action::RecordWaterChange => "Water change recorded".into(),
            Action::UpdateProtocol(p, _) => format!("{p} saved"),
        }
    }
}

/// What came back.
#[derive(Debug, Clone)]
pub enum Reply {
    /// A poll.
    Polled(Result<Box<Poll>, ClientError>),
    /// The treatment log.
    History(Result<Vec<SessionInfo>, ClientError>),
    /// One session.
    Session(Result<Box<(SessionInfo, Vec<CurvePoint>)>, ClientError>),
    /// An action's result.
    Acted(Action, Result<(), ClientError>),
}

/// The connection to the daemon, shared by every request (cheap to clone).
#[derive(Clone)]
pub struct Client {
    bus: Bus,
    conn: Arc<tokio::sync::Mutex<Option<zbus::Connection>>>,
}

/// A new connection to `bus`.
async fn connect(bus: &Bus) -> Result<zbus::Connection, ClientError> {
    let builder = match bus {
        Bus::System => zbus::connection::Builder::system(),
        Bus::Session => zbus::connection::Builder::session(),
        Bus::Address(a) => zbus::connection::Builder::address(a.as_str()),
    }
    .map_err(ClientError::of)?;
    tokio::time::timeout(CALL_TIMEOUT, builder.method_timeout(CALL_TIMEOUT).build())
        .await
        .map_err(|_| ClientError::Unreachable("timed out connecting to the bus".into()))?
        .map_err(|e| ClientError::Unreachable(format!("bus: {e}")))
}

/// Every signal of the daemon's object (`PropertiesChanged`, `StateChanged`, `AlarmRaised`,
/// ...), on a connection of its own.
async fn listen(bus: &Bus) -> Result<zbus::MessageStream, ClientError> {
    let conn = connect(bus).await?;
    let rule = zbus::MatchRule::builder()
        .msg_type(zbus::message::Type::Signal)
        .path(PATH)
        .map_err(ClientError::of)?
        .build();
    zbus::MessageStream::for_match_rule(rule, &conn, Some(64))
        .await
        .map_err(ClientError::of)
}

/// Properties that change all the time while the unit runs (up to 10 times a second for the
/// temperatures): the kiosk's 1 Hz read shows them, a change of only these reads nothing.
const MEASUREMENTS: [&str; 8] = [
    "Temperatures",
    "Pressure",
    "FlowRate",
    "AudioPauseLeft",
    "CurrentSession",
    "PumpHours",
    "ChillerHours",
    "ChillerDuty",
];

/// Whether a signal of the daemon's object is worth a read now: every signal but a
/// `PropertiesChanged` of measurements only.
fn matters(m: &zbus::Message) -> bool {
    let header = m.header();
    if header.member().map(|n| n.as_str()) != Some("PropertiesChanged") {
        return true;
    }
    match m.body().deserialize::<(
        String,
        std::collections::HashMap<String, OwnedValue>,
        Vec<String>,
    )>() {
        Ok((_, changed, invalidated)) => changes_matter(changed.keys(), &invalidated),
        Err(_) => true,
    }
}

/// Whether properties `changed` (with values) and `invalidated` (without) hold anything but
/// measurements.
fn changes_matter<'a>(
    mut changed: impl Iterator<Item = &'a String>,
    invalidated: &[String],
) -> bool {
    !invalidated.is_empty() || changed.any(|name| !MEASUREMENTS.contains(&name.as_str()))
}

/// One item each time the daemon signals a change of its object: the screens should read it
/// again. While the bus is away it listens again every [`RELISTEN_AFTER`] (the kiosk's slow
/// poll shows the daemon gone meanwhile); the stream never ends.
pub fn changes(bus: Bus) -> impl futures_util::Stream<Item = ()> + Send + 'static {
    futures_util::stream::unfold((bus, None), |(bus, mut signals)| async move {
        use futures_util::StreamExt;
        loop {
            let stream: &mut zbus::MessageStream = match &mut signals {
                Some(s) => s,
                None => match listen(&bus).await {
                    Ok(s) => signals.insert(s),
                    Err(e) => {
                        tracing::debug!("not listening for the daemon's signals: {e}");
                        tokio::time::sleep(RELISTEN_AFTER).await;
                        continue;
                    }
                },
            };
            match stream.next().await {
                Some(Ok(m)) if matters(&m) => return Some(((), (bus, signals))),
                Some(Ok(_)) => {}
                Some(Err(e)) => tracing::debug!("unreadable signal: {e}"),
                None => {
                    tracing::debug!("the bus went away: listening again");
                    signals = None;
                    tokio::time::sleep(RELISTEN_AFTER).await;
                }
            }
        }
    })
}

impl Client {
    /// A client of the daemon on `bus`; nothing is connected until the first request.
    pub fn new(bus: Bus) -> Client {
        Client {
            bus,
            conn: Arc::new(tokio::sync::Mutex::new(None)),
        }
    }

    /// The connection, made now if there is none.
    async fn conn(&self) -> Result<zbus::Connection, ClientError> {
        let mut slot = self.conn.lock().await;
        if let Some(c) = slot.as_ref() {
            return Ok(c.clone());
        }
        let c = connect(&self.bus).await?;
        *slot = Some(c.clone());
        Ok(c)
    }

    /// Forgets the connection after a failure that was not the daemon's answer, so the next
    /// request connects again (the bus itself may have restarted).
    async fn forget_on(&self, e: &ClientError) {
        if !matches!(e, ClientError::Refused { .. }) {
            *self.conn.lock().await = None;
        }
    }

    /// Carries out one request.
    pub async fn perform(self, request: Request) -> Reply {
        match request {
            Request::Poll(since) => {
                let r = self.poll(since).await.map(Box::new);
                if let Err(e) = &r {
                    self.forget_on(e).await;
                }
                Reply::Polled(r)
            }
            Request::History => Reply::History(self.history().await),
            Request::Session(id) => Reply::Session(self.session(id).await.map(Box::new)),
            Request::Act(a) => {
                let r = self.act(&a).await;
                Reply::Acted(a, r)
            }
        }
    }

    /// `GetAll` of one interface, read as `T` (one of the properties structs of the proxies).
    async fn all<T>(&self, conn: &zbus::Connection, iface: &str) -> Result<T, ClientError>
    where
        T: for<'d> zbus::zvariant::DynamicDeserialize<'d>,
    {
        let properties = zbus::Proxy::new(conn, NAME, PATH, "org.freedesktop.DBus.Properties")
            .await
            .map_err(ClientError::of)?;
        properties
            .call("GetAll", &(iface,))
            .await
            .map_err(ClientError::of)
    }

    /// Every value the screens show, read from the service now, and the live curve's
    /// samples from index `since`.
    pub async fn poll(&self, since: u32) -> Result<Poll, ClientError> {
        let conn = self.conn().await?;
        let unit = self.all(&conn, INTERFACES[0]).await?;
        let maintenance = self.all(&conn, INTERFACES[3]).await?;
        let protocols: ProtocolsProxy = uncached(&conn).await.map_err(ClientError::of)?;
        let protocols = protocols.list().await.map_err(ClientError::of)?;
        let sessions: SessionsProxy = uncached(&conn).await.map_err(ClientError::of)?;
        let curve = match sessions.live_curve(since).await.map_err(ClientError::of) {
            Ok((session_id, running, next, points)) => Some(CurveSlice {
                session_id,
                running,
                next,
                from: since,
                samples: model::curve(&points),
            }),
            // A role that may not read it (a viewer) sees no curve; the rest still shows.
            Err(ClientError::Refused { name, message }) => {
                tracing::debug!("LiveCurve refused: {name}: {message}");
                None
            }
            Err(e) => return Err(e),
        };
        Ok(Poll {
            unit,
            maintenance,
            protocols,
            curve,
        })
    }

    /// The last 200 sessions, newest first.
    pub async fn history(&self) -> Result<Vec<SessionInfo>, ClientError> {
        let conn = self.conn().await?;
        let p: SessionsProxy = uncached(&conn).await.map_err(ClientError::of)?;
        let mut filter = Dict::new();
        coldsprayd::dbus::convert::put(&mut filter, "limit", HISTORY_LIMIT);
        p.list(filter).await.map_err(ClientError::of)
    }

    /// One session and its curve.
    pub async fn session(&self, id: u64) -> Result<(SessionInfo, Vec<CurvePoint>), ClientError> {
        let conn = self.conn().await?;
        let p: SessionsProxy = uncached(&conn).await.map_err(ClientError::of)?;
        p.get(id).await.map_err(ClientError::of)
    }

    /// Carries out an action.
    pub async fn act(&self, a: &Action) -> Result<(), ClientError> {
        let conn = self.conn().await?;
        let e = ClientError::of;
        let unit = || async { uncached::<UnitProxy>(&conn).await.map_err(e) };
        let maint = || async { uncached::<MaintenanceProxy>(&conn).await.map_err(e) };
        match a {
            Action::Start(p) => unit().await?.start(p, Dict::new()).await.map(drop),
            Action::Stop => unit().await?.stop().await,
            Action::Arm(p) => unit().await?.arm(p).await,
            Action::Disarm => unit().await?.disarm().await,
            Action::Acknowledge(k) => unit().await?.acknowledge(k).await,
            Action::AudioPause => unit().await?.audio_pause().await,
            Action::EnterMaintenance => maint().await?.enter().await,
            Action::ExitMaintenance => maint().await?.exit().await,
            Action::Prime(s) => maint().await?.prime(*s).await,
            Action::Drain(s) => maint().await?.drain(*s).await,
            Action::TestOutput(o, s) => maint().await?.test_output(o, *s).await,
            Action::SelfTest => maint().await?.self_test().await,
            Action::RecordWaterChange => maint().await?.record_water_change().await,
            Action::UpdateProtocol(name, fields) => {
                let p: ProtocolsProxy = uncached(&conn).await.map_err(e)?;
                let changes: Dict = fields
                    .iter()
                    .map(|(k, v)| (k.clone(), OwnedValue::from(*v)))
                    .collect();
                p.update(name, changes).await
            }
        }
        .map_err(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_changes_beyond_the_measurements_ask_for_a_read() {
        let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let temps = names(&["Temperatures", "ChillerDuty"]);
        assert!(!changes_matter(temps.iter(), &[]));
        let alarm = names(&["Temperatures", "AlarmDetails"]);
        assert!(changes_matter(alarm.iter(), &[]));
        assert!(changes_matter(temps.iter(), &names(&["State"])));
    }
}
