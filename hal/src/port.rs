//! The ports a hardware backend implements, and the [`Board`] that bundles them.
//!
//! All levels are logical (see [`Input`]); active-low wiring is the backend's business.
//! Every call is short and non-blocking except [`SensorPort::read`] and
//! [`SensorPort::identify`], which may block on a bus and are therefore called from a
//! dedicated sensor thread, never from the control loop.

use crate::clock::Clock;
use crate::error_source::ErrorSource;
use crate::reading::{ChipIdentity, SensorError};
use crate::signal::{Input, Output, Sensor};
use std::os::fd::BorrowedFd;
use std::sync::Arc;
use std::time::Duration;

/// A failure of the GPIO side of a backend.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum HalError {
    /// A line could not be found by name or offset.
    #[error("line `{signal}` not found: {source}")]
    LineNotFound {
        /// The signal name.
        signal: String,
        /// The backend's lookup error, saying where the line was looked for.
        #[source]
        source: ErrorSource,
    },
    /// The device exists but the process may not open it.
    #[error("permission denied on {device}: {hint}")]
    PermissionDenied {
        /// The device path.
        device: String,
        /// What to do about it (e.g. which group to join).
        hint: String,
    },
    /// A line request, read or write failed, described in words only (a simulated fault, a
    /// test double); a failure with an error of its own is [`HalError::Backend`].
    #[error("{signal}: {detail}")]
    Io {
        /// The signal name.
        signal: String,
        /// The OS error or driver message.
        detail: String,
    },
    /// A line request, read or write failed with an error of the OS, the driver or the
    /// backend, kept whole as the source.
    #[error("{signal}: {source}")]
    Backend {
        /// The signal (or signals, or the part of the backend) concerned.
        signal: String,
        /// The error that made it fail.
        #[source]
        source: ErrorSource,
    },
    /// The operation is not available on this backend.
    #[error("not supported by this backend: {0}")]
    Unsupported(String),
}

impl HalError {
    /// A [`HalError::Backend`] failure of `signal`, keeping `error` as its source.
    pub fn backend(
        signal: impl std::fmt::Display,
        error: impl Into<Box<dyn std::error::Error + Send + Sync + 'static>>,
    ) -> Self {
        Self::Backend {
            signal: signal.to_string(),
            source: ErrorSource::new(error),
        }
    }
}

/// One edge on an input line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InputEdge {
    /// Which input changed.
    pub input: Input,
    /// Its logical level after the edge.
    pub level: bool,
    /// When it happened, on the board's [`Clock`] time line (kernel timestamp on Linux).
    pub at: Duration,
    /// Per-input sequence number; a gap means events were lost.
    pub seqno: u64,
}

/// Where a backend delivers input edges. Called from the backend's own thread; must not block.
pub type EdgeSink = Arc<dyn Fn(InputEdge) + Send + Sync>;

/// A backend's source of edges for a caller that waits on descriptors in its own event loop
/// (an `epoll` reactor such as tokio's), so no thread of the backend's is needed: see
/// [`InputPort::edge_readers`].
///
/// # Safety
///
/// A caller registers [`EdgeReader::fd`] with its reactor once and relies on it for the
/// reader's whole life: an implementation must return the same descriptor from every call,
/// open and referring to the same file description until the reader is dropped.
pub unsafe trait EdgeReader: Send {
    /// The descriptor that becomes readable when edges wait, or when the source fails: the
    /// same open descriptor for as long as the reader lives.
    fn fd(&self) -> BorrowedFd<'_>;

    /// Hands every edge waiting to `sink`, without blocking; returns once none is left.
    ///
    /// An error means the source failed for good (the kernel closed the request, reads keep
    /// failing): the port then reports the failure from [`InputPort::level`] as well, and the
    /// caller stops reading.
    fn read_waiting(&mut self, sink: &mut dyn FnMut(InputEdge)) -> Result<(), HalError>;
}

/// Drives the digital outputs.
pub trait OutputPort: Send {
    /// Sets one output to a logical level (`false` = safe/off).
    fn set(&mut self, output: Output, on: bool) -> Result<(), HalError>;

    /// Sets the pump drive strength in percent (1–100) used while [`Output::Pump`] is on.
    fn set_pump_duty(&mut self, percent: u8) -> Result<(), HalError>;

    /// The level last commanded for `output`.
    fn commanded(&self, output: Output) -> bool;

    /// Drives the listed outputs to their safe state (off) together, trying all of them even
    /// if some fail; returns the first error. A backend that can write several lines at once
    /// overrides this so the outputs go off in one hardware access (the Linux backend: one
    /// `ioctl` per GPIO chip) — the E-stop path turns every running actuator off through it.
    ///
    /// The default calls [`OutputPort::set`]`(output, false)` for each output in the given
    /// order, so list the outputs in the order they should go off (valve before pump).
    fn set_safe(&mut self, outputs: &[Output]) -> Result<(), HalError> {
        let mut first = Ok(());
        for &output in outputs {
            if let Err(e) = self.set(output, false) {
                if first.is_ok() {
                    first = Err(e);
                }
            }
        }
        first
    }

    /// Drives every output to its safe state, trying all of them even if some fail; returns
    /// the first error. The default is [`OutputPort::set_safe`] of [`Output::ALL`].
    fn all_safe(&mut self) -> Result<(), HalError> {
        self.set_safe(&Output::ALL)
    }
}

/// Reads the digital inputs and reports their edges.
pub trait InputPort: Send {
    /// The current logical level of an input.
    fn level(&mut self, input: Input) -> Result<bool, HalError>;

    /// Starts delivering edges of every input to `sink`. Called once, at start-up.
    fn subscribe(&mut self, sink: EdgeSink) -> Result<(), HalError>;

    /// The backend's edge sources, for a caller that waits on them in its own event loop
    /// instead of calling [`InputPort::subscribe`]: then no backend thread exists for edges.
    /// `Ok(None)`: this backend has no descriptors to wait on (call `subscribe`). Called at
    /// most once, at start-up, and never together with `subscribe`.
    fn edge_readers(&mut self) -> Result<Option<Vec<Box<dyn EdgeReader>>>, HalError> {
        Ok(None)
    }
}

/// Reads the analogue sensors. Calls may block on a bus: never call from the control loop.
pub trait SensorPort: Send {
    /// The sensors fitted to this unit.
    fn fitted(&self) -> Vec<Sensor>;

    /// One reading: °C for temperatures, bar for pressure. Calibration offsets are applied by
    /// the caller, not here.
    fn read(&mut self, sensor: Sensor) -> Result<f64, SensorError>;

    /// Reads the chip's identity, for self-test.
    fn identify(&mut self, sensor: Sensor) -> Result<ChipIdentity, SensorError>;
}

/// A complete unit: outputs, inputs, sensors and the clock their timestamps are on.
pub struct Board {
    /// Backend name for logs and `Features` (`"sim"`, `"linux"`).
    pub backend: &'static str,
    /// The outputs.
    pub outputs: Box<dyn OutputPort>,
    /// The inputs.
    pub inputs: Box<dyn InputPort>,
    /// The sensors.
    pub sensors: Box<dyn SensorPort>,
    /// The time line of every timestamp this board produces.
    pub clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for Board {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Board")
            .field("backend", &self.backend)
            .finish_non_exhaustive()
    }
}
