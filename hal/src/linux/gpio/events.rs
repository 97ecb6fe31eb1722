//! Kernel edge events of one line request turned into [`InputEdge`]s: [`LineEdgeReader`]
//! reads what waits without blocking, for the caller's own event loop
//! ([`crate::port::EdgeReader`]); [`event_loop`] is the thread that
//! [`crate::port::InputPort::subscribe`] starts around the same reader, blocking in `poll(2)`
//! on the request and a stop pipe.

use crate::port::{EdgeReader, EdgeSink, HalError, InputEdge};
use crate::signal::Input;
use gpiocdev::line::EdgeKind;
use gpiocdev::Request;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Read errors in a row after which the request counts as failed.
const FAILED_AFTER_ERRORS: u32 = 10;

/// Converts one kernel edge event of `lines` into an [`InputEdge`].
pub fn to_edge(lines: &[(Input, u32)], event: &gpiocdev::line::EdgeEvent) -> Option<InputEdge> {
    let input = lines.iter().find(|(_, o)| *o == event.offset)?.0;
    Some(InputEdge {
        input,
        level: event.kind == EdgeKind::Rising,
        at: Duration::from_nanos(event.timestamp_ns),
        seqno: u64::from(event.line_seqno),
    })
}

/// The edges of one line request. A failure is recorded in the port's `failure`, so
/// [`crate::port::InputPort::level`] reports it from then on.
pub(super) struct LineEdgeReader {
    request: Arc<Request>,
    /// `(input, offset)` of each line in the request.
    lines: Vec<(Input, u32)>,
    failure: Arc<Mutex<Option<String>>>,
    consecutive_errors: u32,
}

impl LineEdgeReader {
    pub(super) fn new(
        request: Arc<Request>,
        lines: Vec<(Input, u32)>,
        failure: Arc<Mutex<Option<String>>>,
    ) -> Self {
        Self {
            request,
            lines,
            failure,
            consecutive_errors: 0,
        }
    }

    /// Records the failure for [`crate::port::InputPort::level`] and returns it as an error.
    fn fail(&self, why: String) -> HalError {
        *self.failure.lock().unwrap_or_else(|p| p.into_inner()) = Some(why.clone());
        HalError::backend("gpio events", why)
    }

    /// Whether the request has something to read (`Ok(false)`: nothing waits).
    fn waiting(&mut self) -> Result<bool, HalError> {
        loop {
            let mut fd = libc::pollfd {
                fd: self.request.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd whose descriptor `self.request` keeps open; a zero
            // timeout never blocks.
            let n = unsafe { libc::poll(&mut fd, 1, 0) };
            if n < 0 {
                let e = std::io::Error::last_os_error();
                if e.kind() == std::io::ErrorKind::Interrupted {
                    continue;
                }
                self.consecutive_errors += 1;
                if self.consecutive_errors >= FAILED_AFTER_ERRORS {
                    return Err(self.fail(format!("edge events stopped: poll failed: {e}")));
                }
                continue;
            }
            if n == 0 {
                return Ok(false);
            }
            if fd.revents & libc::POLLIN != 0 {
                return Ok(true);
            }
            return Err(
                self.fail("edge events stopped: line request closed by the kernel".to_owned())
            );
        }
    }
}

// SAFETY: `fd` is always the descriptor of `self.request`, which the reader keeps open (it
// holds an `Arc` of the request) and never replaces.
unsafe impl EdgeReader for LineEdgeReader {
    fn fd(&self) -> BorrowedFd<'_> {
        self.request.as_fd()
    }

    fn read_waiting(&mut self, sink: &mut dyn FnMut(InputEdge)) -> Result<(), HalError> {
        while self.waiting()? {
            match self.request.read_edge_event() {
                Ok(event) => {
                    self.consecutive_errors = 0;
                    if let Some(edge) = to_edge(&self.lines, &event) {
                        sink(edge);
                    }
                }
                Err(e) => {
                    self.consecutive_errors += 1;
                    if self.consecutive_errors >= FAILED_AFTER_ERRORS {
                        return Err(self.fail(format!("edge events stopped: {e}")));
                    }
                }
            }
        }
        Ok(())
    }
}

/// Blocks in `poll(2)` on the request and the stop pipe; forwards each edge to `sink` until
/// the pipe's write end closes or the reader fails.
pub(super) fn event_loop(mut reader: LineEdgeReader, stop: std::io::PipeReader, sink: EdgeSink) {
    let mut poll_errors = 0u32;
    loop {
        let mut fds = [
            libc::pollfd {
                fd: reader.request.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: stop.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        // SAFETY: `fds` is a valid array of two pollfd structs whose descriptors stay open
        // for the duration of the call (owned by `reader` and `stop`).
        let n = unsafe { libc::poll(fds.as_mut_ptr(), 2, -1) };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            poll_errors += 1;
            if poll_errors >= FAILED_AFTER_ERRORS {
                reader.fail(format!("edge events stopped: poll failed repeatedly: {e}"));
                return;
            }
            continue;
        }
        poll_errors = 0;
        if fds[1].revents != 0 {
            return;
        }
        if reader.read_waiting(&mut |edge| sink(edge)).is_err() {
            return;
        }
    }
}
