//! Input edges into the control loop's channel: from descriptors the loop's own runtime
//! waits on where the backend has them (Linux: the GPIO line requests, so no edge thread
//! exists and an edge wakes the control thread directly), else through the backend's
//! thread ([`InputPort::subscribe`]: the simulated unit).

use super::RuntimeError;
use coldspray_hal::{EdgeReader, InputEdge, InputPort};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::Arc;
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;
use tokio::runtime::Runtime;
use tokio::sync::mpsc::UnboundedSender;

/// Connects the inputs' edges to `to_loop`. With readers, each is registered with
/// `control_runtime`'s reactor now (a failure stops the start, outputs already safe) and read
/// by a task that runs on the control thread once the loop runs.
pub(super) fn connect(
    inputs: &mut dyn InputPort,
    control_runtime: &Runtime,
    to_loop: UnboundedSender<InputEdge>,
) -> Result<(), RuntimeError> {
    let Some(readers) = inputs.edge_readers().map_err(RuntimeError::Hardware)? else {
        return inputs
            .subscribe(Arc::new(move |edge| {
                // Gone only when the loop has ended: nothing is left to react.
                let _ = to_loop.send(edge);
            }))
            .map_err(RuntimeError::Hardware);
    };
    let _reactor = control_runtime.enter();
    for reader in readers {
        // SAFETY: `EdgeReader` is an unsafe trait whose implementations promise that `fd`
        // returns the same open descriptor for the reader's whole life; the `AsyncFd` owns the
        // reader, so the descriptor outlives its registration.
        #[allow(unsafe_code)]
        let registered =
            unsafe { AsyncFd::register_with_interest(Watched(reader), Interest::READABLE) };
        let watched = registered.map_err(|e| {
            let (_, cause) = e.into_parts();
            RuntimeError::Edges(cause)
        })?;
        control_runtime.spawn(forward(watched, to_loop.clone()));
    }
    Ok(())
}

/// An edge reader as a descriptor for the reactor.
struct Watched(Box<dyn EdgeReader>);

impl AsRawFd for Watched {
    fn as_raw_fd(&self) -> RawFd {
        self.0.fd().as_raw_fd()
    }
}

/// Reads the edges each time the descriptor turns readable, until the reader fails (the
/// port then reports the failure from `level`, which the loop re-reads every 100 ms and
/// treats as the safety inputs asserted) or the loop is gone.
async fn forward(mut watched: AsyncFd<Watched>, to_loop: UnboundedSender<InputEdge>) {
    loop {
        let mut ready = match watched.readable_mut().await {
            Ok(ready) => ready,
            Err(e) => {
                tracing::error!("GPIO edges: waiting on the line request failed: {e}");
                return;
            }
        };
        let mut loop_gone = false;
        let read = ready.get_inner_mut().0.read_waiting(&mut |edge| {
            loop_gone |= to_loop.send(edge).is_err();
        });
        if let Err(e) = read {
            tracing::error!("GPIO edges stopped ({e}): the loop now reads the inputs' levels");
            return;
        }
        if loop_gone {
            return;
        }
        // Everything waiting was read: wait for the next edge.
        ready.clear_ready();
    }
}
