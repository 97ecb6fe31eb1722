//! Configuration errors and warnings located by file, line, column and key, and the helpers
//! that find a key's line in the file's text.

use std::fmt;

/// A configuration problem, located.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{file}: cannot read: {reason}")]
    Read {
        /// Path.
        file: String,
        /// OS error.
        reason: String,
    },
    /// The path is not something a configuration may be read from (a FIFO, a device, a
    /// directory, a file larger than [`super::MAX_CONFIG_BYTES`]); nothing was read.
    #[error("{file}: refused: {reason}")]
    Refused {
        /// Path.
        file: String,
        /// What the path is.
        reason: String,
    },
    /// A syntax error, unknown key or wrong type, or a value out of range.
    #[error("{}", Located(.file, .line, .column, .key, .reason))]
    Invalid {
        /// Path.
        file: String,
        /// 1-based line (0 when unknown).
        line: usize,
        /// 1-based column (0 when unknown).
        column: usize,
        /// Dotted key (`thermostat.setpoint_c`), empty when unknown.
        key: String,
        /// What is wrong.
        reason: String,
    },
}

struct Located<'a>(&'a String, &'a usize, &'a usize, &'a String, &'a String);

impl fmt::Display for Located<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Located(file, line, column, key, reason) = self;
        write!(f, "{file}")?;
        if **line > 0 {
            write!(f, ":{line}:{column}")?;
        }
        if !key.is_empty() {
            write!(f, ": key `{key}`")?;
        }
        write!(f, ": {reason}")
    }
}

/// A value that is valid but probably not what the clinic wants, or that can only be fully
/// checked at run time; printed by `--check-config` and logged at start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigWarning {
    /// Path.
    pub file: String,
    /// 1-based line (0 when the key is not in the file: a default).
    pub line: usize,
    /// 1-based column (0 when unknown).
    pub column: usize,
    /// Dotted key.
    pub key: String,
    /// What to look at.
    pub message: String,
}

impl fmt::Display for ConfigWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        Located(
            &self.file,
            &self.line,
            &self.column,
            &self.key,
            &self.message,
        )
        .fmt(f)
    }
}

/// 1-based line and column of a byte offset.
pub(super) fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// The dotted key defined on a 1-based line: `section.key`, or the table name for a header.
pub(super) fn key_at_line(text: &str, line: usize) -> String {
    let mut table = String::new();
    for (i, raw) in text.lines().enumerate() {
        let l = raw.trim();
        if let Some(name) = l.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
            table = name.trim().to_string();
            if i + 1 == line {
                return table;
            }
            continue;
        }
        if i + 1 == line {
            let key = l.split('=').next().unwrap_or("").trim().trim_matches('"');
            return if table.is_empty() {
                key.to_string()
            } else {
                format!("{table}.{key}")
            };
        }
    }
    table
}

/// Where a dotted key is defined: `(line, column)` of its first character.
pub(super) fn locate_key(text: &str, dotted: &str) -> Option<(usize, usize)> {
    let (table, key) = dotted.rsplit_once('.').unwrap_or(("", dotted));
    let mut current = String::new();
    for (i, raw) in text.lines().enumerate() {
        let l = raw.trim_start();
        if let Some(name) = l
            .trim_end()
            .strip_prefix('[')
            .and_then(|r| r.strip_suffix(']'))
        {
            current = name.trim().to_string();
            continue;
        }
        let k = l.split('=').next().unwrap_or("").trim().trim_matches('"');
        if current == table && k == key && l.contains('=') {
            return Some((i + 1, raw.len() - l.len() + 1));
        }
    }
    None
}
