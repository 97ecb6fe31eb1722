//! The edge-event threads: each blocks in `poll(2)` on one line request and the stop pipe,
//! and turns kernel edge events into [`InputEdge`]s.

use crate::port::{EdgeSink, InputEdge};
use crate::signal::Input;
use gpiocdev::line::EdgeKind;
use gpiocdev::Request;
use std::os::fd::AsRawFd;
use std::sync::{Arc, Mutex};
use std::time::Duration;

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

/// Blocks in `poll(2)` on the request and the stop pipe; forwards each edge to `sink`.
pub(super) fn event_loop(
    request: Arc<Request>,
    lines: Vec<(Input, u32)>,
    stop: std::io::PipeReader,
    sink: EdgeSink,
    failure: Arc<Mutex<Option<String>>>,
) {
    let mut consecutive_errors = 0u32;
    loop {
        let mut fds = [
            libc::pollfd {
                fd: request.as_raw_fd(),
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
        // for the duration of the call (owned by `request` and `stop`).
        let n = unsafe { libc::poll(fds.as_mut_ptr(), 2, -1) };
        if n < 0 {
            if std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            consecutive_errors += 1;
        } else if fds[1].revents != 0 {
            return;
        } else if fds[0].revents & libc::POLLIN != 0 {
            match request.read_edge_event() {
                Ok(event) => {
                    consecutive_errors = 0;
                    if let Some(edge) = to_edge(&lines, &event) {
                        sink(edge);
                    }
                }
                Err(e) => {
                    consecutive_errors += 1;
                    if consecutive_errors >= 10 {
                        *failure.lock().unwrap_or_else(|p| p.into_inner()) =
                            Some(format!("edge events stopped: {e}"));
                        return;
                    }
                }
            }
        } else if fds[0].revents & (libc::POLLERR | libc::POLLHUP | libc::POLLNVAL) != 0 {
            *failure.lock().unwrap_or_else(|p| p.into_inner()) =
                Some("edge events stopped: line request closed by the kernel".to_owned());
            return;
        }
        if consecutive_errors >= 10 {
            *failure.lock().unwrap_or_else(|p| p.into_inner()) =
                Some("edge events stopped: poll failed repeatedly".to_owned());
            return;
        }
    }
}
