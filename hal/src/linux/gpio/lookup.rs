//! Which chip and offset carries each signal's line: by name first, then by the configured
//! chip and offset (docs/REQUIREMENTS.md R3.1).
//!
//! [`scan_chips`] reads every chip's label and line names through `gpiocdev`
//! ([`gpiocdev::chip::chips`], [`gpiocdev::Chip::info`], [`gpiocdev::Chip::line_info_iter`]);
//! [`locate`] then finds a signal's line in that snapshot. gpiocdev's own
//! `find_named_line(s)` is not used: it searches every chip (no `chip` restriction, no offset
//! fallback), skips a chip it may not open instead of reporting it, and names no location of
//! an ambiguous name, all of which the configuration and its errors need.

use crate::linux::config::{HardwareConfig, LineConfig, ResolvedLine};
use crate::linux::LinuxError;
use std::path::{Path, PathBuf};

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

/// Resolves a signal's configured line against the `[hardware]` defaults and locates it.
pub(super) fn locate_configured(
    config: &HardwareConfig,
    signal: &'static str,
    line: &LineConfig,
    chips: &[ChipLines],
) -> Result<(ResolvedLine, LineLocation), LinuxError> {
    let line = line.resolved(signal, &config.chip);
    let at = locate(&line, chips)?;
    Ok((line, at))
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
    let gpio_err = |e: gpiocdev::Error| LinuxError::Gpio {
        signal: path.display().to_string(),
        detail: e.to_string(),
    };
    let chip = gpiocdev::Chip::from_path(path).map_err(|e| match e {
        gpiocdev::Error::Os(errno) if errno.0 == libc::EACCES || errno.0 == libc::EPERM => {
            LinuxError::PermissionDenied {
                device: path.display().to_string(),
                group: "gpio",
            }
        }
        e => gpio_err(e),
    })?;
    let info = chip.info().map_err(gpio_err)?;
    let lines = chip
        .line_info_iter()
        .map_err(gpio_err)?
        .map(|line| line.map(|line| line.name))
        .collect::<Result<Vec<_>, _>>()
        .map_err(gpio_err)?;
    Ok(ChipLines {
        path: chip.path().to_path_buf(),
        name: info.name,
        label: info.label,
        lines,
    })
}
