//! The report's typeface: DejaVu Sans (regular and bold) from Debian's `fonts-dejavu-core`,
//! read at run time and registered with `plotters` as `sans-serif`. Nothing is embedded in
//! the binary; a missing file is a [`ReportError::FontMissing`] naming the package.

use super::ReportError;
use plotters::style::FontStyle;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Where `fonts-dejavu-core` installs DejaVu Sans.
pub const DEFAULT_FONT_DIR: &str = "/usr/share/fonts/truetype/dejavu";

/// Environment variable naming another directory holding the two files.
pub const FONT_DIR_ENV: &str = "COLDSPRAY_FONT_DIR";

/// The family name the chart asks for.
pub(super) const FAMILY: &str = "sans-serif";

/// Set once both faces are registered (registration is process-wide in `plotters`).
static LOADED: Mutex<bool> = Mutex::new(false);

/// The directory the fonts are read from.
pub fn font_dir() -> PathBuf {
    std::env::var_os(FONT_DIR_ENV)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_FONT_DIR))
}

/// Registers the faces on first use; a later call after a failure tries again.
pub fn ensure_loaded() -> Result<(), ReportError> {
    let mut loaded = LOADED.lock().unwrap_or_else(|p| p.into_inner());
    if *loaded {
        return Ok(());
    }
    let (regular, bold) = faces(&font_dir())?;
    register(regular, FontStyle::Normal)?;
    register(bold, FontStyle::Bold)?;
    *loaded = true;
    Ok(())
}

/// Reads the regular and bold faces from `dir`.
fn faces(dir: &Path) -> Result<(Face, Face), ReportError> {
    Ok((
        read(&dir.join("DejaVuSans.ttf"))?,
        read(&dir.join("DejaVuSans-Bold.ttf"))?,
    ))
}

struct Face {
    path: PathBuf,
    bytes: Vec<u8>,
}

fn read(path: &Path) -> Result<Face, ReportError> {
    std::fs::read(path)
        .map(|bytes| Face {
            path: path.to_path_buf(),
            bytes,
        })
        .map_err(|e| ReportError::FontMissing {
            path: path.to_path_buf(),
            why: e.to_string(),
        })
}

fn register(face: Face, style: FontStyle) -> Result<(), ReportError> {
    // `plotters` keeps fonts for the life of the process and wants `'static` bytes: each face
    // is leaked once (two files, about 1 MB, guarded by LOADED).
    let bytes: &'static [u8] = Box::leak(face.bytes.into_boxed_slice());
    plotters::style::register_font(FAMILY, style, bytes)
        .map_err(|_| ReportError::FontInvalid(face.path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_font_is_a_typed_error_naming_the_debian_package() {
        let dir = tempfile::tempdir().unwrap();
        let Err(e) = faces(dir.path()) else {
            panic!("an empty directory has no fonts")
        };
        assert!(
            matches!(&e, ReportError::FontMissing { path, .. } if path.ends_with("DejaVuSans.ttf")),
            "{e:?}"
        );
        assert!(e.to_string().contains("fonts-dejavu-core"), "{e}");
    }
}
