//! Waiting on an [`EdgeReader`]'s descriptor in a tokio runtime (feature `tokio`): the edges
//! of the Linux backend read on the caller's own reactor, with no edge thread. The one
//! `unsafe` step, registering a borrowed descriptor with the reactor, is here beside the
//! [`EdgeReader`] contract that makes it sound.

use crate::port::{EdgeReader, HalError, InputEdge};
use std::os::fd::{AsRawFd, RawFd};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

/// An [`EdgeReader`] registered with the current tokio runtime's reactor.
pub struct WatchedEdges {
    fd: AsyncFd<ReaderFd>,
}

impl std::fmt::Debug for WatchedEdges {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WatchedEdges")
            .field("fd", &self.fd.get_ref().as_raw_fd())
            .finish()
    }
}

/// The reader as the descriptor the reactor watches.
struct ReaderFd(Box<dyn EdgeReader>);

impl AsRawFd for ReaderFd {
    fn as_raw_fd(&self) -> RawFd {
        self.0.fd().as_raw_fd()
    }
}

impl WatchedEdges {
    /// Registers `reader` with the reactor of the runtime this is called in (which needs
    /// its I/O driver enabled). Fails outside a runtime's context or when the reactor
    /// refuses the descriptor.
    pub fn new(reader: Box<dyn EdgeReader>) -> Result<Self, HalError> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(HalError::backend(
                "gpio edges",
                "not within a tokio runtime: no reactor to wait on",
            ));
        }
        // SAFETY: `EdgeReader` is an unsafe trait whose implementations return the same open
        // descriptor from `fd` for the reader's whole life; the `AsyncFd` owns the reader, so
        // the descriptor stays open for as long as it is registered.
        let registered =
            unsafe { AsyncFd::register_with_interest(ReaderFd(reader), Interest::READABLE) };
        let fd = registered.map_err(|e| {
            let (_, cause) = e.into_parts();
            HalError::backend("gpio edges", cause)
        })?;
        Ok(Self { fd })
    }

    /// Waits until edges wait (or the source fails), then hands every waiting edge to
    /// `sink`. An error means the source failed for good (the port's `level` reports it too)
    /// or the reactor did: stop reading.
    pub async fn next(&mut self, mut sink: impl FnMut(InputEdge)) -> Result<(), HalError> {
        let mut ready = self
            .fd
            .readable_mut()
            .await
            .map_err(|e| HalError::backend("gpio edges", e))?;
        ready.get_inner_mut().0.read_waiting(&mut sink)?;
        // Everything waiting was read: the next call waits for the next edge.
        ready.clear_ready();
        Ok(())
    }
}
