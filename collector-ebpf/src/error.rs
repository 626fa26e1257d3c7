//! The collector's error type.

use std::path::PathBuf;

/// Errors of the eBPF collector.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The configuration is invalid.
    #[error("invalid collector config: {field}: {reason}")]
    Config {
        /// The offending field.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The kernel refused the BPF program or one of its maps (no privileges, no BPF, no BTF).
    #[error("the kernel refused the BPF profiler ({what}): {source}")]
    Bpf {
        /// The step that failed, e.g. `load` or `attach to cpu 3`.
        what: String,
        /// The underlying error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The BPF object lacks a program or map this crate expects.
    #[error("the BPF object has no {kind} named {name:?}")]
    MissingObject {
        /// `program` or `map`.
        kind: &'static str,
        /// Its name.
        name: &'static str,
    },
    /// Reading a file failed.
    #[error("reading {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// Call frame information (`.eh_frame` / `.debug_frame`) could not be compiled into
    /// unwind rows.
    #[error("call frame information: cannot {what}: {reason}")]
    Cfi {
        /// The step that failed, e.g. `parse the ELF file`.
        what: String,
        /// Why.
        reason: String,
    },
    /// A file's rows did not fit in the room of the unwind tables they were written to.
    #[error("unwind tables: no room for more than {rows} rows of this file")]
    UnwindTableFull {
        /// Rows written before the room ran out.
        rows: usize,
    },
    /// Building an engine batch failed.
    #[error("building a sample batch: {0}")]
    Batch(#[from] strata_engine::Error),
}

impl Error {
    /// Wraps a kernel-side failure of step `what`.
    pub(crate) fn bpf(
        what: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Error::Bpf {
            what: what.into(),
            source: Box::new(source),
        }
    }

    /// Wraps an I/O error on `path`.
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}

/// The collector's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
