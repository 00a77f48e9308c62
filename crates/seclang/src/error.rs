//! Load-time errors: every one names the file and line it came from.

use std::fmt;

/// A configuration error, located at `origin:line`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadError {
    /// The file (or the caller-given origin for in-memory text).
    pub origin: String,
    /// 1-based line of the directive's first physical line; 0 when not tied to a line.
    pub line: usize,
    /// What was wrong.
    pub reason: String,
}

impl LoadError {
    pub(crate) fn new(origin: &str, line: usize, reason: impl Into<String>) -> Self {
        LoadError {
            origin: origin.to_string(),
            line,
            reason: reason.into(),
        }
    }
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.origin, self.line, self.reason)
    }
}

impl std::error::Error for LoadError {}
