//! GPIO lines through the Linux GPIO character device (uAPI v2, crate `gpiocdev`).
//!
//! * [`lookup`]: which chip and offset carries each signal's line ([`scan_chips`], [`locate`]).
//! * [`request`]: line requests at their safe value, with errors naming the line at fault.
//! * [`outputs`]: [`LinuxOutputs`], the [`crate::port::OutputPort`] of the backend.
//! * [`inputs`]: [`LinuxInputs`], the [`crate::port::InputPort`], with [`events`], which turns
//!   kernel edge events into [`crate::port::InputEdge`]s: read from the caller's event loop
//!   ([`crate::port::InputPort::edge_readers`]) or from a thread per chip (`subscribe`).

pub mod events;
pub mod inputs;
pub mod lookup;
pub mod outputs;
pub mod request;

pub use events::to_edge;
pub use inputs::{edges, LinuxInputs};
pub use lookup::{locate, scan_chips, scan_each_chip, ChipLines, LineLocation};
pub use outputs::LinuxOutputs;
pub use request::{request_output, request_outputs};

use crate::port::HalError;

/// A failed read or write of a line (or of the machinery around it), with the error kept.
fn io(
    signal: impl std::fmt::Display,
    e: impl Into<Box<dyn std::error::Error + Send + Sync>>,
) -> HalError {
    HalError::backend(signal, e)
}
