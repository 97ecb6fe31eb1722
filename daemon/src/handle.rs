//! [`ControlHandle`]: how the daemon's other parts (D-Bus, metrics, live view) talk to the
//! control loop. Cheap to clone.

use crate::api::{Command, CommandError, Event, Reply, Snapshot};
use crate::protocol::Protocol;
use crate::store::LogStore;
use crate::telemetry::Telemetry;
use coldspray_hal::sim::SimUnit;
use std::sync::Arc;
use tokio::sync::{broadcast, mpsc, oneshot, watch};

/// A command, the uid of the D-Bus caller who sent it (when known: settings changes are
/// logged with it), and the channel its answer goes back on.
pub type CommandRequest = (
    Command,
    Option<u32>,
    oneshot::Sender<Result<Reply, CommandError>>,
);

/// Static facts about this daemon instance.
#[derive(Debug, Clone, PartialEq)]
pub struct UnitInfo {
    /// Daemon version.
    pub version: String,
    /// Backend name (`sim`, `linux`).
    pub backend: String,
    /// Feature flags: `sim`, `skin_sensor`, `log_store`, `metrics`, ...
    pub features: Vec<String>,
}

/// The daemon's view of the control loop.
#[derive(Clone)]
pub struct ControlHandle {
    pub(crate) commands: mpsc::Sender<CommandRequest>,
    pub(crate) snapshot: watch::Receiver<Arc<Snapshot>>,
    pub(crate) protocols: watch::Receiver<Arc<Vec<Protocol>>>,
    pub(crate) events: broadcast::Sender<Event>,
    /// Static facts.
    pub info: Arc<UnitInfo>,
    /// Shared counters.
    pub telemetry: Arc<Telemetry>,
    /// The treatment log, when it could be opened.
    pub store: Option<Arc<dyn LogStore>>,
    /// The simulated unit, when running on it (fault injection, laser passes).
    pub sim: Option<SimUnit>,
}

impl ControlHandle {
    /// Sends a command and waits for the control loop's answer (one control step at most).
    pub async fn command(&self, command: Command) -> Result<Reply, CommandError> {
        self.command_by(command, None).await
    }

    /// As [`ControlHandle::command`], on behalf of the caller with this uid (logged with
    /// every settings change the command makes).
    pub async fn command_by(
        &self,
        command: Command,
        caller: Option<u32>,
    ) -> Result<Reply, CommandError> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send((command, caller, tx))
            .await
            .map_err(|_| CommandError::ShuttingDown)?;
        rx.await.map_err(|_| CommandError::ShuttingDown)?
    }

    /// The latest snapshot.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot.borrow().clone()
    }

    /// A receiver that wakes on every new snapshot.
    pub fn watch(&self) -> watch::Receiver<Arc<Snapshot>> {
        self.snapshot.clone()
    }

    /// The current protocol list.
    pub fn protocols(&self) -> Arc<Vec<Protocol>> {
        self.protocols.borrow().clone()
    }

    /// A receiver that wakes when the protocol list changes.
    pub fn watch_protocols(&self) -> watch::Receiver<Arc<Vec<Protocol>>> {
        self.protocols.clone()
    }

    /// Subscribes to events (after they were persisted).
    pub fn events(&self) -> broadcast::Receiver<Event> {
        self.events.subscribe()
    }
}

/// The far ends of a [`ControlHandle`]'s channels, for code that plays the control loop: the
/// runtime itself, and tests of the D-Bus and metrics layers that feed snapshots by hand.
pub struct HandleEnds {
    /// Commands arrive here.
    pub commands: mpsc::Receiver<CommandRequest>,
    /// Publish snapshots here.
    pub snapshot: watch::Sender<Arc<Snapshot>>,
    /// Publish the protocol list here.
    pub protocols: watch::Sender<Arc<Vec<Protocol>>>,
    /// Publish (already persisted) events here.
    pub events: broadcast::Sender<Event>,
}

/// Event broadcast capacity: enough for several seconds of 10 Hz samples and bursts of alarms.
pub const EVENT_CAPACITY: usize = 1024;

impl ControlHandle {
    /// Builds a handle and the ends of its channels, starting from `initial` and `protocols`.
    pub fn new(
        info: UnitInfo,
        initial: Snapshot,
        protocols: Vec<Protocol>,
        store: Option<Arc<dyn LogStore>>,
        sim: Option<SimUnit>,
    ) -> (ControlHandle, HandleEnds) {
        let (cmd_tx, cmd_rx) = mpsc::channel(64);
        let (snap_tx, snap_rx) = watch::channel(Arc::new(initial));
        let (proto_tx, proto_rx) = watch::channel(Arc::new(protocols));
        let (ev_tx, _) = broadcast::channel(EVENT_CAPACITY);
        let handle = ControlHandle {
            commands: cmd_tx,
            snapshot: snap_rx,
            protocols: proto_rx,
            events: ev_tx.clone(),
            info: Arc::new(info),
            telemetry: Arc::new(Telemetry::default()),
            store,
            sim,
        };
        let ends = HandleEnds {
            commands: cmd_rx,
            snapshot: snap_tx,
            protocols: proto_tx,
            events: ev_tx,
        };
        (handle, ends)
    }
}

/// Tells long-running tasks to stop: `true` once shutdown has begun.
pub type ShutdownSignal = watch::Receiver<bool>;
