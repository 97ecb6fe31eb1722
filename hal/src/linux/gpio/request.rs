//! Line requests: outputs at their safe value from the first instant, and errors that name
//! the line at fault (device, offset and, for a busy line, who holds it).

use super::lookup::LineLocation;
use crate::linux::config::{LineBias, ResolvedLine};
use crate::linux::LinuxError;
use gpiocdev::line::{Bias, Value};
use gpiocdev::Request;

/// The configured bias in gpiocdev's terms.
pub(super) fn bias(b: LineBias) -> Bias {
    match b {
        LineBias::PullUp => Bias::PullUp,
        LineBias::PullDown => Bias::PullDown,
        LineBias::Disabled => Bias::Disabled,
    }
}

/// A failed line request as the error the operator can act on: permission (join `gpio`), a
/// busy line (with its holder when the kernel names one), or the request's own failure.
pub(super) fn request_error(signal: &str, at: &LineLocation, e: gpiocdev::Error) -> LinuxError {
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
