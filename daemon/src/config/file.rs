//! Reading the configuration file without letting the path block or flood the reader.

use super::ConfigError;
use std::path::Path;

/// The largest configuration file read (1 MiB; the shipped one is a few KiB).
pub const MAX_CONFIG_BYTES: u64 = 1 << 20;

/// Reads a configuration file safely: only a regular file of at most [`MAX_CONFIG_BYTES`],
/// opened non-blocking so that a FIFO cannot block the caller and checked after opening
/// (`fstat`), so that a device such as `/dev/zero` or a directory is refused before a byte
/// is read.
pub fn read_config_file(path: &Path) -> Result<String, ConfigError> {
    use std::io::Read;
    use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
    let file_name = path.display().to_string();
    let read_err = |reason: String| ConfigError::Read {
        file: file_name.clone(),
        reason,
    };
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(|e| read_err(e.to_string()))?;
    let meta = file.metadata().map_err(|e| read_err(e.to_string()))?;
    let kind = meta.file_type();
    let what = if kind.is_file() {
        None
    } else if kind.is_dir() {
        Some("a directory")
    } else if kind.is_fifo() {
        Some("a FIFO (named pipe)")
    } else if kind.is_char_device() {
        Some("a character device")
    } else if kind.is_block_device() {
        Some("a block device")
    } else if kind.is_socket() {
        Some("a socket")
    } else {
        Some("not a regular file")
    };
    if let Some(what) = what {
        return Err(ConfigError::Refused {
            file: file_name,
            reason: format!("{what}, not a regular file"),
        });
    }
    if meta.len() > MAX_CONFIG_BYTES {
        return Err(ConfigError::Refused {
            file: file_name,
            reason: format!(
                "{} bytes, more than the {MAX_CONFIG_BYTES} a configuration file may have",
                meta.len()
            ),
        });
    }
    let mut bytes = Vec::new();
    file.take(MAX_CONFIG_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| read_err(e.to_string()))?;
    if bytes.len() as u64 > MAX_CONFIG_BYTES {
        return Err(ConfigError::Refused {
            file: file_name,
            reason: format!("grew past {MAX_CONFIG_BYTES} bytes while being read"),
        });
    }
    String::from_utf8(bytes).map_err(|e| read_err(format!("not UTF-8 text: {e}")))
}
