//! `sessions report`: one session drawn to an SVG or PNG file by `coldsprayd::report`.

use crate::failure::{Failure, EXIT_OTHER, EXIT_REFUSED, EXIT_USAGE};
use coldsprayd::config::{Config, DEFAULT_CONFIG_PATH};
use coldsprayd::report::{self, Format, ReportError};
use std::path::Path;

/// Serial, site and room from this machine's configuration, when it is readable and names
/// them (the report says "serial unknown" otherwise).
fn identity() -> Option<String> {
    let unit = Config::load(Path::new(DEFAULT_CONFIG_PATH)).ok()?.unit;
    let parts: Vec<String> = [
        ("serial", &unit.serial),
        ("site", &unit.site),
        ("room", &unit.room),
    ]
    .into_iter()
    .filter(|(_, v)| !v.is_empty())
    .map(|(k, v)| format!("{k} {v}"))
    .collect();
    (!parts.is_empty()).then(|| parts.join(", "))
}

fn failure(e: ReportError) -> Failure {
    let code = match &e {
        ReportError::Bus(z) => return crate::failure::classify(z.clone()),
        ReportError::UnknownSession(_) => EXIT_REFUSED,
        ReportError::UnknownFormat(_) => EXIT_USAGE,
        _ => EXIT_OTHER,
    };
    let message = match &e {
        ReportError::UnknownSession(_) => format!("UnknownSession: {e}"),
        _ => e.to_string(),
    };
    Failure { code, message }
}

/// Fetches session `id`, draws it and writes it to `output`; returns the bytes written.
pub async fn write(
    conn: &zbus::Connection,
    id: u64,
    output: &Path,
    size: (u32, u32),
) -> Result<usize, Failure> {
    let format = Format::from_path(output).map_err(failure)?;
    let data = report::fetch(conn, id, identity().as_deref())
        .await
        .map_err(failure)?;
    let bytes = report::render(&data, format, size).map_err(failure)?;
    std::fs::write(output, &bytes).map_err(|e| Failure {
        code: EXIT_OTHER,
        message: format!("writing {}: {e}", output.display()),
    })?;
    Ok(bytes.len())
}
