//! Input edges into the control loop's channel: from descriptors the loop's own runtime
//! waits on where the backend has them (Linux: the GPIO line requests, so no edge thread
//! exists and an edge wakes the control thread directly), else through the backend's
//! thread ([`InputPort::subscribe`]: the simulated unit).

use super::RuntimeError;
use coldspray_hal::edge_watch::WatchedEdges;
use coldspray_hal::{InputEdge, InputPort};
use std::sync::Arc;
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
        let watched = WatchedEdges::new(reader).map_err(RuntimeError::Hardware)?;
        control_runtime.spawn(forward(watched, to_loop.clone()));
    }
    Ok(())
}

/// Reads the edges each time the descriptor turns readable, until the reader fails (the
/// port then reports the failure from `level`, which the loop re-reads every 100 ms and
/// treats as the safety inputs asserted) or the loop is gone.
async fn forward(mut watched: WatchedEdges, to_loop: UnboundedSender<InputEdge>) {
    loop {
        let mut loop_gone = false;
        let read = watched
            .next(|edge| loop_gone |= to_loop.send(edge).is_err())
            .await;
        if let Err(e) = read {
            tracing::error!("GPIO edges stopped ({e}): the loop now reads the inputs' levels");
            return;
        }
        if loop_gone {
            return;
        }
    }
}
