//! [`Error`]: what failed, with which input.

use std::path::PathBuf;

/// The result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Errors of the symbolizer. Symbolization itself never fails as a whole: a build id whose
/// debug info cannot be read gets [`crate::DebugInfoStatus::Failed`] with the error's text.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A config field is out of range.
    #[error("invalid symbolizer config: {field}: {reason}")]
    Config {
        /// The field, e.g. `max_objects`.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// Reading a file failed.
    #[error("reading {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A file is larger than `max_file_bytes`.
    #[error("{what} is {size} bytes, over the limit of {limit} (max_file_bytes)")]
    TooLarge {
        /// The file (a path, or "the supplied debug file").
        what: String,
        /// Its size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// A file is not an ELF object this crate can read.
    #[error("{what} is not a readable ELF object: {reason}")]
    NotElf {
        /// The file (a path, or "the supplied debug file").
        what: String,
        /// The parser's message.
        reason: String,
    },
    /// DWARF debug info is malformed.
    #[error("{what}: malformed DWARF: {source}")]
    Dwarf {
        /// The file.
        what: String,
        /// The parser's error.
        source: gimli::Error,
    },
    /// A debuginfod fetch failed (not a 404, which is "not found").
    #[error("debuginfod {url}: {reason}")]
    Debuginfod {
        /// The URL requested.
        url: String,
        /// What went wrong.
        reason: String,
    },
}

impl Error {
    /// An [`Error::Io`] for `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}
