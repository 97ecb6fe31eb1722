//! Treatment reports: one session drawn as a chart a clinician reads without a manual — the
//! skin (sensor) and mist temperature over time, the protocol's target and floor, when the
//! laser stopped and the spray ran, and a header with the outcome and quality indicators
//! (docs/REQUIREMENTS.md §4) in plain words.
//!
//! [`render`] draws a [`SessionReport`] as SVG or PNG with `plotters`; [`fetch`] reads one
//! from the daemon over D-Bus, so `coldsprayctl sessions report` and the kiosk's history
//! screen draw the same picture. Text is set in DejaVu Sans, read at run time from Debian's
//! `fonts-dejavu-core` (see [`font`]).

mod chart;
mod fetch;
pub mod font;
#[cfg(test)]
mod tests;
pub mod text;

pub use fetch::fetch;

use crate::dbus::convert::CurvePoint;
use crate::dbus::proxy::SessionInfo;
use std::path::{Path, PathBuf};

/// Default size of a report, pixels: a landscape A4-like page that also fits a 1280×800 panel.
pub const DEFAULT_SIZE: (u32, u32) = (1280, 800);

/// Why a report could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The treatment log has no session with this id.
    #[error("no session {0} in the treatment log")]
    UnknownSession(u64),
    /// Reading the session from the daemon failed.
    #[error("reading the session from the daemon: {0}")]
    Bus(#[from] zbus::Error),
    /// A font file is missing or unreadable.
    #[error(
        "font {path} not readable ({why}): install the Debian package fonts-dejavu-core, or \
         point COLDSPRAY_FONT_DIR at a directory holding DejaVuSans.ttf and DejaVuSans-Bold.ttf"
    )]
    FontMissing {
        /// The file looked for.
        path: PathBuf,
        /// The I/O error.
        why: String,
    },
    /// A font file is not a usable TrueType font.
    #[error("font {0} is not a usable TrueType font")]
    FontInvalid(PathBuf),
    /// The output name ends in neither `.svg` nor `.png`.
    #[error("cannot tell the format of {0}: name it .svg or .png")]
    UnknownFormat(PathBuf),
    /// Drawing failed.
    #[error("drawing the report: {0}")]
    Draw(String),
    /// PNG encoding failed.
    #[error("encoding the PNG: {0}")]
    Png(String),
}

/// The picture's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Scalable vector graphics (text stays text).
    Svg,
    /// A PNG bitmap.
    Png,
}

impl Format {
    /// The format a file name asks for by its extension.
    pub fn from_path(path: &Path) -> Result<Format, ReportError> {
        match path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("svg") => Ok(Format::Svg),
            Some("png") => Ok(Format::Png),
            _ => Err(ReportError::UnknownFormat(path.to_path_buf())),
        }
    }
}

/// Everything a report shows.
#[derive(Debug, Clone)]
pub struct SessionReport {
    /// The session as the treatment log holds it.
    pub session: SessionInfo,
    /// Its 10 Hz curve.
    pub curve: Vec<CurvePoint>,
    /// Which unit: serial, site and room when known, and the daemon version.
    pub unit: String,
}

/// Draws `report` as `format`, `size` pixels; returns the file's bytes.
pub fn render(
    report: &SessionReport,
    format: Format,
    size: (u32, u32),
) -> Result<Vec<u8>, ReportError> {
    font::ensure_loaded()?;
    match format {
        Format::Svg => chart::svg(report, size).map(String::into_bytes),
        Format::Png => chart::png(report, size),
    }
}
