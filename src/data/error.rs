//! The one error type of the data pipeline (loading, splitting, preprocessing): a stable code,
//! a message, and where in which file it happened; converts to a `Diagnostic`.

use crate::diagnostics::Diagnostic;
use std::fmt;
use std::path::{Path, PathBuf};

pub const FILE_MISSING: &str = "mlx::data::file_missing";
pub const MALFORMED: &str = "mlx::data::malformed";
pub const LABEL: &str = "mlx::data::label";
pub const VALUE: &str = "mlx::data::value";
pub const COLUMN_MISSING: &str = "mlx::data::column_missing";
pub const SPLIT: &str = "mlx::data::split";
/// What a streamed dataset cannot do, or a source that changed between its passes.
pub const STREAM: &str = "mlx::data::stream";

/// A problem with the data itself, found while loading, splitting or preprocessing it.
#[derive(Clone, Debug, PartialEq)]
pub struct DataError {
    pub code: &'static str,
    /// The bare message, without the `path:line:` prefix (see `diagnostic`).
    pub message: String,
    pub path: Option<PathBuf>,
    /// 1-based line of a CSV file (or record number of an IDX file).
    pub line: Option<usize>,
    pub help: Option<String>,
}

impl DataError {
    pub fn new(code: &'static str, message: impl Into<String>) -> DataError {
        DataError {
            code,
            message: message.into(),
            path: None,
            line: None,
            help: None,
        }
    }

    pub fn at(mut self, path: &Path, line: Option<usize>) -> DataError {
        self.path = Some(path.to_path_buf());
        self.line = line.filter(|l| *l > 0);
        self
    }

    pub fn with_help(mut self, help: impl Into<String>) -> DataError {
        self.help = Some(help.into());
        self
    }

    /// `path:line: message` (or `path: message`, or the bare message).
    pub fn full_message(&self) -> String {
        match (&self.path, self.line) {
            (Some(p), Some(l)) => format!("{}:{l}: {}", p.display(), self.message),
            (Some(p), None) => format!("{}: {}", p.display(), self.message),
            _ => self.message.clone(),
        }
    }

    /// The diagnostic to print: no span labels (data errors point into data files, not
    /// into the program), the location in the message.
    pub fn diagnostic(&self) -> Diagnostic {
        let d = Diagnostic::error(self.code, self.full_message());
        match &self.help {
            Some(h) => d.with_help(h.clone()),
            None => d,
        }
    }
}

impl fmt::Display for DataError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.full_message())
    }
}

impl std::error::Error for DataError {}

/// The error for a file that could not be opened or read: `file_missing` when it does not
/// exist, `malformed` otherwise.
pub fn unreadable(path: &Path, line: usize, message: &str) -> DataError {
    if !path.exists() {
        DataError::new(FILE_MISSING, "the data file does not exist")
            .at(path, None)
            .with_help("paths are relative to the .mlx file that names them")
    } else {
        DataError::new(MALFORMED, message).at(path, Some(line))
    }
}
