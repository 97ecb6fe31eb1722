//! GPIO lines through the Linux GPIO character device (uAPI v2, crate `gpiocdev`).

use super::config::{HardwareConfig, LineBias, ResolvedLine};
use super::pwm::PumpPwm;
use super::LinuxError;
use crate::port::{EdgeSink, HalError, InputEdge, InputPort, OutputPort};
use crate::signal::{Input, Output};
use gpiocdev::line::{Bias, EdgeDetection, EdgeKind, EventClock, Value, Values};
use gpiocdev::Request;
use std::io::PipeWriter;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// What the lookup needs to know of one GPIO chip.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChipLines {
    /// Device path, e.g. `/dev/gpiochip4`.
    pub path: PathBuf,
    /// Kernel name, e.g. `gpiochip4`.
    pub name: String,
    /// Label, e.g. `pinctrl-rp1`.
    pub label: String,
    /// Line names by offset (empty for unnamed lines).
    pub lines: Vec<String>,
}

impl ChipLines {
    fn matches(&self, spec: &str) -> bool {
        spec.is_empty()
            || self.label == spec
            || self.name == spec
            || self.path == Path::new(spec)
            || std::fs::canonicalize(spec).is_ok_and(|p| p == self.path)
    }

    fn describe(&self) -> String {
        format!("{} [{}]", self.path.display(), self.label)
    }
}

/// Where a signal's line is: chip path and offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineLocation {
    /// The chip's device path.
    pub chip: PathBuf,
    /// The line offset on it.
    pub offset: u32,
}

/// Finds a signal's line: by name on the configured chip(s) first, then by the configured
/// offset. A name found on more than one chip is an error, never a guess.
pub fn locate(line: &ResolvedLine, chips: &[ChipLines]) -> Result<LineLocation, LinuxError> {
    let candidates: Vec<&ChipLines> = chips.iter().filter(|c| c.matches(&line.chip)).collect();
    if candidates.is_empty() {
        return Err(LinuxError::ChipNotFound {
            signal: line.signal.to_owned(),
            chip: line.chip.clone(),
            present: chips
                .iter()
                .map(ChipLines::describe)
                .collect::<Vec<_>>()
                .join(", "),
        });
    }
    let mut found = Vec::new();
    if !line.line.is_empty() {
        for chip in &candidates {
            for (offset, name) in chip.lines.iter().enumerate() {
                if *name == line.line {
                    found.push(LineLocation {
                        chip: chip.path.clone(),
                        offset: offset as u32,
                    });
                }
            }
        }
    }
    match found.len() {
        1 => return Ok(found.remove(0)),
        0 => {}
        _ => {
            return Err(LinuxError::AmbiguousLine {
                signal: line.signal.to_owned(),
                line: line.line.clone(),
                at: found
                    .iter()
                    .map(|l| format!("{}:{}", l.chip.display(), l.offset))
                    .collect::<Vec<_>>()
                    .join(", "),
            })
        }
    }
    let searched = candidates
        .iter()
        .map(|c| c.describe())
        .collect::<Vec<_>>()
        .join(", ");
    match (line.offset, candidates.as_slice()) {
        (Some(offset), [chip]) if (offset as usize) < chip.lines.len() => Ok(LineLocation {
            chip: chip.path.clone(),
            offset,
        }),
        (Some(offset), [chip]) => Err(LinuxError::LineNotFound {
            signal: line.signal.to_owned(),
            detail: format!(
                "no line named `{}` and offset {offset} is beyond the {} lines of {}",
                line.line,
                chip.lines.len(),
                chip.describe()
            ),
        }),
        (Some(_), _) => Err(LinuxError::LineNotFound {
            signal: line.signal.to_owned(),
            detail: format!(
                "no line named `{}` on {searched}; an offset fallback needs exactly one chip (set `chip`)",
                line.line
            ),
        }),
        (None, _) => Err(LinuxError::LineNotFound {
            signal: line.signal.to_owned(),
            detail: format!(
                "no line named `{}` on {searched} (name the line in the device tree or set `offset`)",
                line.line
            ),
        }),
    }
}

/// Reads every GPIO chip's label and line names. A chip the process may not open is a
/// [`LinuxError::PermissionDenied`] naming the device and the `gpio` group.
pub fn scan_chips() -> Result<Vec<ChipLines>, LinuxError> {
    scan_each_chip()?.into_iter().collect()
}

/// Like [`scan_chips`], but one result per chip, so that a chip that cannot be read does not
/// hide the others (the safe-off helper drives every line it can find). An error only when
/// `/dev` cannot be listed or holds no GPIO chip at all.
pub fn scan_each_chip() -> Result<Vec<Result<ChipLines, LinuxError>>, LinuxError> {
    let paths = gpiocdev::chip::chips().map_err(|e| LinuxError::Gpio {
        signal: "gpio chips".to_owned(),
        detail: e.to_string(),
    })?;
    if paths.is_empty() {
        return Err(LinuxError::NoGpioChips);
    }
    Ok(paths.iter().map(|p| scan_chip(p)).collect())
}

fn scan_chip(path: &Path) -> Result<ChipLines, LinuxError> {
    if let Err(e) = std::fs::File::open(path) {
        if e.kind() == std::io::ErrorKind::PermissionDenied {
            return Err(LinuxError::PermissionDenied {
                device: path.display().to_string(),
                group: "gpio",
            });
        }
    }
    let gpio_err = |e: gpiocdev::Error| LinuxError::Gpio {
        signal: path.display().to_string(),
        detail: e.to_string(),
    };
    let chip = gpiocdev::Chip::from_path(path).map_err(gpio_err)?;
    let info = chip.info().map_err(gpio_err)?;
    let mut lines = Vec::with_capacity(info.num_lines as usize);
    for offset in 0..info.num_lines {
        lines.push(chip.line_info(offset).map_err(gpio_err)?.name);
    }
    Ok(ChipLines {
        path: chip.path().to_path_buf(),
        name: info.name,
        label: info.label,
        lines,
    })
}

fn bias(b: LineBias) -> Bias {
    match b {
        LineBias::PullUp => Bias::PullUp,
        LineBias::PullDown => Bias::PullDown,
        LineBias::Disabled => Bias::Disabled,
    }
}

fn request_error(signal: &str, at: &LineLocation, e: gpiocdev::Error) -> LinuxError {
    let text = e.to_string();
    if text.contains("ermission denied") {
        return LinuxError::PermissionDenied {
            device: at.chip.display().to_string(),
            group: "gpio",
        };
    }
    let held = if text.contains("busy") {
        match holder(at) {
            Some(consumer) => format!(" (line held by `{consumer}`)"),
            None => " (line held by another process or a kernel driver)".to_owned(),
        }
    } else {
        String::new()
    };
    LinuxError::Gpio {
        signal: signal.to_owned(),
        detail: format!(
            "request of {}:{} failed: {text}{held}",
            at.chip.display(),
            at.offset,
        ),
    }
}

/// The consumer label of whoever holds a line, if the kernel names one.
fn holder(at: &LineLocation) -> Option<String> {
    let info = gpiocdev::Chip::from_path(&at.chip)
        .and_then(|chip| chip.line_info(at.offset))
        .ok()?;
    (info.used && !info.consumer.is_empty()).then_some(info.consumer)
}

/// Requests one output line at its safe (inactive) value from the first instant.
pub fn request_output(
    line: &ResolvedLine,
    at: &LineLocation,
    consumer: &str,
) -> Result<Request, LinuxError> {
    request_outputs(&[(line.clone(), at.clone())], consumer)
}

/// Requests output lines that sit on one chip in a single line request, each with its own
/// polarity and bias and at its safe (inactive) value from the first instant. One request
/// lets [`LinuxOutputs`] drive several of them with one `ioctl`.
///
/// If the request fails, the lines are requested one by one (each at its safe value and
/// released at once) to name the line at fault in the error: device, offset and, for a busy
/// line, who holds it.
pub fn request_outputs(
    lines: &[(ResolvedLine, LineLocation)],
    consumer: &str,
) -> Result<Request, LinuxError> {
    let Some((first_line, first_at)) = lines.first() else {
        return Err(LinuxError::Config("no output lines to request".to_owned()));
    };
    if let Some((line, at)) = lines.iter().find(|(_, at)| at.chip != first_at.chip) {
        return Err(LinuxError::Gpio {
            signal: line.signal.to_owned(),
            detail: format!(
                "one request cannot hold lines of {} and {}",
                first_at.chip.display(),
                at.chip.display()
            ),
        });
    }
    let mut builder = Request::builder();
    builder.on_chip(&first_at.chip).with_consumer(consumer);
    for (line, at) in lines {
        // Every setting after `with_line` applies to that line only.
        builder.with_line(at.offset).as_output(Value::Inactive);
        if line.active_low {
            builder.as_active_low();
        }
        if let Some(b) = line.bias {
            builder.with_bias(bias(b));
        }
    }
    builder.request().map_err(|e| {
        if let [_] = lines {
            return request_error(first_line.signal, first_at, e);
        }
        first_failure(lines, |(line, at)| {
            request_outputs(&[(line.clone(), at.clone())], consumer).map(drop)
        })
        .unwrap_or_else(|| group_request_error(lines, e))
    })
}

/// The error of the first item `try_one` fails on, trying them in order.
fn first_failure<T>(
    items: &[T],
    mut try_one: impl FnMut(&T) -> Result<(), LinuxError>,
) -> Option<LinuxError> {
    items.iter().find_map(|item| try_one(item).err())
}

/// A grouped request failed although each of its lines can be requested alone.
fn group_request_error(lines: &[(ResolvedLine, LineLocation)], e: gpiocdev::Error) -> LinuxError {
    let signals: Vec<&str> = lines.iter().map(|(l, _)| l.signal).collect();
    let offsets: Vec<String> = lines.iter().map(|(_, at)| at.offset.to_string()).collect();
    let chip = lines
        .first()
        .map(|(_, at)| at.chip.display().to_string())
        .unwrap_or_default();
    LinuxError::Gpio {
        signal: signals.join(", "),
        detail: format!(
            "request of {chip} lines {} together failed: {e} (each line alone can be requested)",
            offsets.join(",")
        ),
    }
}

fn io(signal: impl std::fmt::Display, e: impl std::fmt::Display) -> HalError {
    HalError::Io {
        signal: signal.to_string(),
        detail: e.to_string(),
    }
}

/// The outputs: one line request per GPIO chip holding output lines (on the reference board,
/// one for all seven), plus the optional pump PWM. Outputs on one chip turn off together in
/// one `ioctl` ([`OutputPort::set_safe`]).
#[derive(Debug)]
pub struct LinuxOutputs {
    requests: Vec<Request>,
    /// `(request index, offset)` per output, in [`Output::ALL`] order.
    index: [(usize, u32); Output::ALL.len()],
    commanded: [bool; Output::ALL.len()],
    pwm: Option<PumpPwm>,
    duty: u8,
}

impl LinuxOutputs {
    /// Requests every output at its safe value, one request per chip. Two outputs configured
    /// onto the same line are an error.
    pub fn open(
        config: &HardwareConfig,
        chips: &[ChipLines],
        pwm: Option<PumpPwm>,
    ) -> Result<Self, LinuxError> {
        let mut located: Vec<(Output, ResolvedLine, LineLocation)> =
            Vec::with_capacity(Output::ALL.len());
        for output in Output::ALL {
            let line = config
                .lines
                .output(output)
                .resolved(output.name(), &config.chip);
            let at = locate(&line, chips)?;
            if let Some((other, _, _)) = located.iter().find(|(_, _, a)| *a == at) {
                return Err(LinuxError::Gpio {
                    signal: output.name().to_owned(),
                    detail: format!(
                        "line {}:{} is already `{other}`'s: two outputs cannot share a line",
                        at.chip.display(),
                        at.offset
                    ),
                });
            }
            located.push((output, line, at));
        }
        // Chips in the order their first output appears in `Output::ALL`.
        let mut chip_paths: Vec<PathBuf> = Vec::new();
        for (_, _, at) in &located {
            if !chip_paths.contains(&at.chip) {
                chip_paths.push(at.chip.clone());
            }
        }
        let mut requests = Vec::with_capacity(chip_paths.len());
        let mut index = [(0usize, 0u32); Output::ALL.len()];
        for (ri, chip) in chip_paths.iter().enumerate() {
            let lines: Vec<(ResolvedLine, LineLocation)> = located
                .iter()
                .filter(|(_, _, at)| &at.chip == chip)
                .map(|(output, line, at)| {
                    index[output.index()] = (ri, at.offset);
                    (line.clone(), at.clone())
                })
                .collect();
            requests.push(request_outputs(&lines, &config.consumer)?);
        }
        Ok(Self {
            requests,
            index,
            commanded: [false; Output::ALL.len()],
            pwm,
            duty: 100,
        })
    }

    fn request(&self, output: Output) -> Result<(&Request, u32), HalError> {
        let (ri, offset) = self.index[output.index()];
        let request = self
            .requests
            .get(ri)
            .ok_or_else(|| io(output, "not requested"))?;
        Ok((request, offset))
    }
}

impl OutputPort for LinuxOutputs {
    fn set(&mut self, output: Output, on: bool) -> Result<(), HalError> {
        let value = if on { Value::Active } else { Value::Inactive };
        if output == Output::Pump && on {
            if let Some(pwm) = self.pwm.as_mut() {
                pwm.set_percent(self.duty).map_err(|e| io(output, e))?;
            }
        }
        let (request, offset) = self.request(output)?;
        request
            .set_value(offset, value)
            .map_err(|e| io(output, e))?;
        self.commanded[output.index()] = on;
        if output == Output::Pump && !on {
            if let Some(pwm) = self.pwm.as_mut() {
                pwm.set_percent(0).map_err(|e| io(output, e))?;
            }
        }
        Ok(())
    }

    /// One `ioctl` per chip: the listed outputs of a chip go off together. Chips are written
    /// in the order their first output appears in `outputs`; the pump's PWM duty goes to 0
    /// once its line is off.
    fn set_safe(&mut self, outputs: &[Output]) -> Result<(), HalError> {
        // The E-stop's path: nothing allocates here but gpiocdev's `Values` (its API), and
        // the error text when a write fails.
        let index = self.index;
        let mut first = Ok(());
        let mut chip_done = [false; Output::ALL.len()]; // by request index (≤ one per output)
        for (i, output) in outputs.iter().enumerate() {
            let ri = index[output.index()].0;
            if chip_done[ri] {
                continue;
            }
            chip_done[ri] = true;
            // This chip's listed outputs (the earlier ones belong to chips already written).
            let members = || {
                outputs[i..]
                    .iter()
                    .copied()
                    .filter(move |o| index[o.index()].0 == ri)
            };
            let mut values = Values::default();
            for o in members() {
                values.set(index[o.index()].1, Value::Inactive);
            }
            let names = || members().map(Output::name).collect::<Vec<_>>().join(", ");
            let written = match self.requests.get(ri) {
                Some(request) => request.set_values(&values).map_err(|e| io(names(), e)),
                None => Err(io(names(), "not requested")),
            };
            let result = written.and_then(|()| {
                for o in members() {
                    self.commanded[o.index()] = false;
                }
                match self.pwm.as_mut() {
                    Some(pwm) if members().any(|o| o == Output::Pump) => {
                        pwm.set_percent(0).map_err(|e| io(Output::Pump, e))
                    }
                    _ => Ok(()),
                }
            });
            if let Err(e) = result {
                if first.is_ok() {
                    first = Err(e);
                }
            }
        }
        first
    }

    /// With `[hardware.pump_pwm]` the duty goes to the PWM channel (at once if the pump
    /// runs). Without it (rev A) the pump line is a plain switch: any duty is full drive,
    /// and this only remembers the value.
    fn set_pump_duty(&mut self, percent: u8) -> Result<(), HalError> {
        self.duty = percent.clamp(1, 100);
        if self.commanded[Output::Pump.index()] {
            if let Some(pwm) = self.pwm.as_mut() {
                pwm.set_percent(self.duty)
                    .map_err(|e| io(Output::Pump, e))?;
            }
        }
        Ok(())
    }

    fn commanded(&self, output: Output) -> bool {
        self.commanded[output.index()]
    }
}

/// Edge detection per input: the flow meter counts rising edges, the rest report both.
pub fn edges(input: Input) -> EdgeDetection {
    match input {
        Input::FlowPulse => EdgeDetection::RisingEdge,
        _ => EdgeDetection::BothEdges,
    }
}

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
            let line = config
                .lines
                .input(input)
                .resolved(input.name(), &config.chip);
            let at = locate(&line, chips)?;
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
            stop: None,
            threads: Vec::new(),
            failure: Arc::new(Mutex::new(None)),
            priority: config.realtime_priority,
        })
    }
}

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
fn event_loop(
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
        if self.stop.is_some() {
            return Err(HalError::Unsupported("subscribe called twice".to_owned()));
        }
        let (reader, writer) = std::io::pipe().map_err(|e| io("gpio events", e))?;
        for group in &self.groups {
            let stop = reader.try_clone().map_err(|e| io("gpio events", e))?;
            let request = Arc::clone(&group.request);
            let lines = group.lines.clone();
            let sink = Arc::clone(&sink);
            let failure = Arc::clone(&self.failure);
            let priority = self.priority;
            let handle = std::thread::Builder::new()
                .name("gpio-events".to_owned())
                .spawn(move || {
                    // Without the permission the thread runs at normal priority; the daemon
                    // reports that once, for its control thread, which needs the same.
                    let _ = super::sched::set_current_thread_realtime(priority);
                    event_loop(request, lines, stop, sink, failure)
                })
                .map_err(|e| io("gpio events", e))?;
            self.threads.push(handle);
        }
        self.stop = Some(writer);
        Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_failure_is_the_first_line_that_fails_alone_and_stops_there() {
        let lines = ["pump", "spray_valve", "chiller", "buzzer"];
        let mut tried = Vec::new();
        let err = first_failure(&lines, |l| {
            tried.push(*l);
            if *l == "spray_valve" || *l == "buzzer" {
                Err(LinuxError::Gpio {
                    signal: (*l).to_owned(),
                    detail: "busy".to_owned(),
                })
            } else {
                Ok(())
            }
        });
        assert_eq!(
            err,
            Some(LinuxError::Gpio {
                signal: "spray_valve".to_owned(),
                detail: "busy".to_owned(),
            })
        );
        assert_eq!(tried, ["pump", "spray_valve"]);
        assert_eq!(first_failure(&lines, |_| Ok(())), None);
    }
}
