//! [`LinuxInputs`]: the inputs as one line request per GPIO chip, with kernel edge
//! detection, debounce and `CLOCK_MONOTONIC` timestamps.

use super::events::{event_loop, LineEdgeReader};
use super::io;
use super::lookup::{locate_configured, ChipLines};
use super::request::{bias, request_error};
use crate::linux::config::HardwareConfig;
use crate::linux::LinuxError;
use crate::port::{EdgeReader, EdgeSink, HalError, InputPort};
use crate::signal::Input;
use gpiocdev::line::{EdgeDetection, EventClock, Value};
use gpiocdev::Request;
use std::io::PipeWriter;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// Edge detection per input: the flow meter counts rising edges, the rest report both.
pub fn edges(input: Input) -> EdgeDetection {
    match input {
        Input::FlowPulse => EdgeDetection::RisingEdge,
        _ => EdgeDetection::BothEdges,
    }
}

/// One line request and the inputs it carries.
struct InputGroup {
    request: Arc<Request>,
    /// `(input, offset)` of each line in the request.
    lines: Vec<(Input, u32)>,
}

/// The inputs: one request per chip holding input lines, each with edge detection, kernel
/// debounce and `CLOCK_MONOTONIC` event timestamps.
pub struct LinuxInputs {
    groups: Vec<InputGroup>,
    /// `(group index, offset)` per input, in [`Input::ALL`] order.
    index: Vec<(usize, u32)>,
    /// Whether `subscribe` or `edge_readers` has been called.
    edges_handed_out: bool,
    stop: Option<PipeWriter>,
    threads: Vec<JoinHandle<()>>,
    failure: Arc<Mutex<Option<String>>>,
    /// `SCHED_FIFO` priority of the edge threads (0 = normal scheduling).
    priority: u8,
}

impl std::fmt::Debug for LinuxInputs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LinuxInputs")
            .field("index", &self.index)
            .field("threads", &self.threads.len())
            .finish_non_exhaustive()
    }
}

impl LinuxInputs {
    /// Requests every input line.
    pub fn open(config: &HardwareConfig, chips: &[ChipLines]) -> Result<Self, LinuxError> {
        let mut located = Vec::new();
        for input in Input::ALL {
            let (line, at) =
                locate_configured(config, input.name(), config.lines.input(input), chips)?;
            located.push((input, line, at));
        }
        let mut chip_paths: Vec<PathBuf> =
            located.iter().map(|(_, _, at)| at.chip.clone()).collect();
        chip_paths.sort();
        chip_paths.dedup();
        let mut groups = Vec::new();
        let mut index = vec![(0usize, 0u32); Input::ALL.len()];
        for (gi, chip) in chip_paths.iter().enumerate() {
            let mut builder = Request::builder();
            builder
                .on_chip(chip)
                .with_consumer(config.consumer.as_str())
                .with_kernel_event_buffer_size(256);
            let mut lines = Vec::new();
            for (input, line, at) in located.iter().filter(|(_, _, at)| &at.chip == chip) {
                builder.with_line(at.offset).as_input();
                if line.active_low {
                    builder.as_active_low();
                }
                if let Some(b) = line.bias {
                    builder.with_bias(bias(b));
                }
                builder
                    .with_edge_detection(edges(*input))
                    .with_event_clock(EventClock::Monotonic);
                if !line.debounce.is_zero() {
                    builder.with_debounce_period(line.debounce);
                }
                lines.push((*input, at.offset));
                index[input.index()] = (gi, at.offset);
            }
            let first = located
                .iter()
                .find(|(_, _, at)| &at.chip == chip)
                .map(|(i, _, at)| (i.name(), at.clone()));
            let request = builder.request().map_err(|e| match &first {
                Some((name, at)) => request_error(name, at, e),
                None => LinuxError::NoGpioChips,
            })?;
            groups.push(InputGroup {
                request: Arc::new(request),
                lines,
            });
        }
        Ok(Self {
            groups,
            index,
            edges_handed_out: false,
            stop: None,
            threads: Vec::new(),
            failure: Arc::new(Mutex::new(None)),
            priority: config.realtime_priority,
        })
    }
}

impl InputPort for LinuxInputs {
    fn level(&mut self, input: Input) -> Result<bool, HalError> {
        if let Some(why) = self
            .failure
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
        {
            return Err(io(input, why));
        }
        let (group, offset) = self.index[input.index()];
        let value = self.groups[group]
            .request
            .value(offset)
            .map_err(|e| io(input, e))?;
        Ok(value == Value::Active)
    }

    fn subscribe(&mut self, sink: EdgeSink) -> Result<(), HalError> {
        self.hand_out_edges()?;
        let (reader, writer) = std::io::pipe().map_err(|e| io("gpio events", e))?;
        for group in &self.groups {
            let stop = reader.try_clone().map_err(|e| io("gpio events", e))?;
            let edges = self.reader_of(group);
            let sink = Arc::clone(&sink);
            let priority = self.priority;
            let handle = std::thread::Builder::new()
                .name("gpio-events".to_owned())
                .spawn(move || {
                    // Without the permission the thread runs at normal priority; the daemon
                    // reports that once, for its control thread, which needs the same.
                    let _ = crate::linux::sched::set_current_thread_realtime(priority);
                    event_loop(edges, stop, sink)
                })
                .map_err(|e| io("gpio events", e))?;
            self.threads.push(handle);
        }
        self.stop = Some(writer);
        Ok(())
    }

    /// One reader per GPIO chip's request: the caller waits on them, no edge thread runs.
    fn edge_readers(&mut self) -> Result<Option<Vec<Box<dyn EdgeReader>>>, HalError> {
        self.hand_out_edges()?;
        Ok(Some(
            self.groups
                .iter()
                .map(|group| Box::new(self.reader_of(group)) as Box<dyn EdgeReader>)
                .collect(),
        ))
    }
}

impl LinuxInputs {
    /// The edges go to one consumer only: the second call of `subscribe`/`edge_readers` fails.
    fn hand_out_edges(&mut self) -> Result<(), HalError> {
        if self.edges_handed_out {
            return Err(HalError::Unsupported(
                "edges already handed out (subscribe or edge_readers called twice)".to_owned(),
            ));
        }
        self.edges_handed_out = true;
        Ok(())
    }

    fn reader_of(&self, group: &InputGroup) -> LineEdgeReader {
        LineEdgeReader::new(
            Arc::clone(&group.request),
            group.lines.clone(),
            Arc::clone(&self.failure),
        )
    }
}

impl Drop for LinuxInputs {
    fn drop(&mut self) {
        // Closing the write end wakes every event thread with POLLHUP on its read end.
        self.stop = None;
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}
