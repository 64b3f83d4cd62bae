//! Configuration errors: each names the file, the line and column, and the
//! dotted key it is about; all errors found are returned together.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// What kind of problem a [`ConfigError`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The file could not be read (or is not UTF-8).
    Io,
    /// The file is not valid TOML.
    Syntax,
    /// A key (or table) this schema does not know.
    UnknownKey,
    /// A value of the wrong type or that does not parse (address, duration,
    /// enum variant, number out of range, …).
    InvalidValue,
    /// A required key is missing.
    MissingKey,
    /// A `…_profile_name` names a profile that is not defined.
    UnknownProfile,
    /// Values that are individually fine but inconsistent, or out of the
    /// allowed range after inheritance.
    Inconsistent,
    /// Two definitions that must be unique collide.
    Duplicate,
    /// Unsafe file permissions: a secrets file that group or others may
    /// access (an error), or a secret written in a configuration file that
    /// group or others may read (a warning, see [`crate::Config::warnings`]).
    Permissions,
}

/// 1-based line and column (in characters) of a position in a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Position {
    /// Line, starting at 1.
    pub line: u32,
    /// Column in characters, starting at 1.
    pub column: u32,
}

/// One problem in the configuration.
///
/// Displays as `FILE:LINE:COLUMN: key `KEY`: MESSAGE` (the position and the
/// key are left out when unknown).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ConfigError {
    /// The file the problem is in.
    pub file: PathBuf,
    /// Where in the file, if known.
    pub position: Option<Position>,
    /// The dotted key (`tunnel.lac1.hello_timeout`) or table
    /// (`tunnel.lac1`) the problem is about, if any.
    pub key: Option<String>,
    /// The kind of problem.
    pub kind: ErrorKind,
    /// What is wrong, for a person.
    pub message: String,
}

impl ConfigError {
    /// The line (1-based), if known.
    pub fn line(&self) -> Option<u32> {
        self.position.map(|p| p.line)
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(p) = self.position {
            write!(f, ":{}:{}", p.line, p.column)?;
        }
        f.write_str(": ")?;
        if let Some(k) = &self.key {
            write!(f, "key `{k}`: ")?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for ConfigError {}

/// All problems found in a configuration, sorted by file and position.
/// Displays one error per line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors {
    /// The errors, at least one.
    pub errors: Vec<ConfigError>,
}

impl ConfigErrors {
    pub(crate) fn new(mut errors: Vec<ConfigError>) -> Self {
        errors.sort_by(|a, b| {
            (&a.file, a.position, &a.key, &a.message)
                .cmp(&(&b.file, b.position, &b.key, &b.message))
        });
        errors.dedup();
        Self { errors }
    }

    /// The errors, sorted by file and position.
    pub fn iter(&self) -> std::slice::Iter<'_, ConfigError> {
        self.errors.iter()
    }

    /// Number of errors.
    pub fn len(&self) -> usize {
        self.errors.len()
    }

    /// Always false for a returned error (kept for API symmetry).
    pub fn is_empty(&self) -> bool {
        self.errors.is_empty()
    }
}

impl<'a> IntoIterator for &'a ConfigErrors {
    type Item = &'a ConfigError;
    type IntoIter = std::slice::Iter<'a, ConfigError>;
    fn into_iter(self) -> Self::IntoIter {
        self.errors.iter()
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.errors.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// Where a key or table was written: file and position. Kept with every
/// parsed key so errors found after merging and inheritance still point at
/// the right file and line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Origin {
    pub file: Arc<Path>,
    pub pos: Position,
}

/// Byte offset → line/column for one file.
pub(crate) struct LineIndex<'a> {
    text: &'a str,
    starts: Vec<usize>,
}

impl<'a> LineIndex<'a> {
    pub(crate) fn new(text: &'a str) -> Self {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        LineIndex { text, starts }
    }

    pub(crate) fn position(&self, offset: usize) -> Position {
        let offset = offset.min(self.text.len());
        let line = self.starts.partition_point(|&s| s <= offset) - 1;
        let start = self.starts[line];
        // Column in characters; clamp to a char boundary.
        let mut end = offset;
        while !self.text.is_char_boundary(end) {
            end -= 1;
        }
        let column = self.text[start..end].chars().count() + 1;
        Position {
            line: u32::try_from(line + 1).unwrap_or(u32::MAX),
            column: u32::try_from(column).unwrap_or(u32::MAX),
        }
    }
}

/// A dotted key path as TOML would write it: bare segments as they are,
/// others quoted.
pub(crate) fn key_path<S: AsRef<str>>(segments: &[S]) -> String {
    let mut out = String::new();
    for (i, s) in segments.iter().enumerate() {
        if i > 0 {
            out.push('.');
        }
        out.push_str(&quote_key(s.as_ref()));
    }
    out
}

pub(crate) fn quote_key(s: &str) -> String {
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        s.to_owned()
    } else {
        format!("{s:?}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions() {
        let idx = LineIndex::new("ab\ncdé\n\nx");
        assert_eq!(idx.position(0), Position { line: 1, column: 1 });
        assert_eq!(idx.position(1), Position { line: 1, column: 2 });
        assert_eq!(idx.position(3), Position { line: 2, column: 1 });
        // 'é' is two bytes; the char after it is column 4.
        assert_eq!(idx.position(7), Position { line: 2, column: 4 });
        assert_eq!(idx.position(8), Position { line: 3, column: 1 });
        assert_eq!(idx.position(9), Position { line: 4, column: 1 });
        assert_eq!(idx.position(100), Position { line: 4, column: 2 });
    }

    #[test]
    fn key_paths() {
        assert_eq!(key_path(&["tunnel", "lac1", "mtu"]), "tunnel.lac1.mtu");
        assert_eq!(key_path(&["tunnel", "a b"]), "tunnel.\"a b\"");
    }
}
