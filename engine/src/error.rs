//! The engine's errors: each variant says what failed and with which input.

use std::path::PathBuf;

/// The engine's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the engine.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A profile type string is malformed.
    #[error("invalid profile type {input:?}: {reason}")]
    InvalidProfileType {
        /// The offending input.
        input: String,
        /// Why it was refused.
        reason: String,
    },

    /// A label set is malformed.
    #[error("invalid labels {labels}: {reason}")]
    InvalidLabels {
        /// The label set, rendered.
        labels: String,
        /// Why it was refused.
        reason: String,
    },

    /// A label matcher is malformed (e.g. a bad regular expression).
    #[error("invalid matcher {matcher}: {reason}")]
    InvalidMatcher {
        /// The matcher, rendered.
        matcher: String,
        /// Why it was refused.
        reason: String,
    },

    /// A batch handed to `append` is inconsistent.
    #[error("invalid batch: {reason}")]
    InvalidBatch {
        /// What is wrong with it.
        reason: String,
    },

    /// A configured limit was exceeded; nothing of the request was stored.
    #[error("limit exceeded: {limit} is {value}, the maximum is {max}")]
    LimitExceeded {
        /// The limit's config name.
        limit: &'static str,
        /// The value seen.
        value: u64,
        /// The configured maximum.
        max: u64,
    },

    /// The configuration is invalid.
    #[error("invalid config field {field}: {reason}")]
    InvalidConfig {
        /// The field's path, e.g. `head.max_bytes`.
        field: &'static str,
        /// Why it was refused.
        reason: String,
    },

    /// A local file operation failed.
    #[error("I/O error on {}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },

    /// The data directory is in use by another engine.
    #[error("data directory {} is locked by another process", path.display())]
    Locked {
        /// The lock file.
        path: PathBuf,
    },

    /// An object store operation failed.
    #[error("object store error on {path}: {source}")]
    ObjectStore {
        /// The object path.
        path: String,
        /// The underlying error.
        source: object_store::Error,
    },

    /// The object store URL could not be used.
    #[error("invalid object store URL {url:?}: {reason}")]
    InvalidStoreUrl {
        /// The URL.
        url: String,
        /// Why it was refused.
        reason: String,
    },

    /// Writing or reading a Parquet file failed.
    #[error("parquet error on {path}: {source}")]
    Parquet {
        /// The object path.
        path: String,
        /// The underlying error.
        source: parquet::errors::ParquetError,
    },

    /// An Arrow computation failed.
    #[error("arrow error while {context}: {source}")]
    Arrow {
        /// What the engine was doing.
        context: &'static str,
        /// The underlying error.
        source: arrow::error::ArrowError,
    },

    /// A WAL record is corrupt (and was quarantined or refused).
    #[error("corrupt WAL segment {} at offset {offset}: {reason}", segment.display())]
    CorruptWal {
        /// The segment file.
        segment: PathBuf,
        /// Byte offset of the bad record.
        offset: u64,
        /// What is wrong.
        reason: String,
    },

    /// A block's file is missing or corrupt.
    #[error("corrupt block {block}, file {file}: {reason}")]
    CorruptBlock {
        /// The block id.
        block: String,
        /// The file within the block.
        file: String,
        /// What is wrong.
        reason: String,
    },

    /// A build id cannot name stored debug info.
    #[error("invalid build id {build_id:?}: {reason}")]
    InvalidBuildId {
        /// The build id (its first 80 characters).
        build_id: String,
        /// Why it was refused.
        reason: &'static str,
    },

    /// A stored debug info metadata record does not parse.
    #[error("corrupt debug info record {path}: {reason}")]
    CorruptDebuginfo {
        /// The object path.
        path: String,
        /// What is wrong.
        reason: String,
    },

    /// Late symbols handed to `put_location_lines` are unusable.
    #[error("invalid location lines: {reason}")]
    InvalidLocationLines {
        /// What is wrong.
        reason: String,
    },

    /// Appends are refused for now: the head is full and the heads before it cannot be
    /// written to the object store (the flush keeps failing; it is retried with back-off).
    /// Nothing of the refused append was stored; retry it later.
    #[error("appends refused until blocks can be written: {reason}")]
    Backpressure {
        /// What fills the head and why flushing fails.
        reason: String,
    },

    /// The disk (or quota) holding the write-ahead log is full: the write was refused and
    /// nothing of it stored. Writes succeed again, without a restart, once space is freed.
    #[error(
        "no space left on the device holding {}: {reason}; nothing of this write was stored, and writes resume once space is freed",
        path.display()
    )]
    DiskFull {
        /// The file that could not be written.
        path: PathBuf,
        /// The operating system's error.
        reason: String,
    },

    /// A shared store's catalog change cannot apply: another writer changed the blocks it
    /// names (e.g. two compactors merged the same blocks). Nothing was changed.
    #[error("catalog commit conflicts: {reason}")]
    CatalogConflict {
        /// What another writer changed.
        reason: String,
    },

    /// A shared store's catalog does not parse.
    #[error("corrupt catalog {path}: {reason}")]
    CorruptCatalog {
        /// The object path.
        path: String,
        /// What is wrong.
        reason: String,
    },

    /// An ingester holding recent (unflushed) data could not be asked for it, so an answer
    /// would be incomplete; the query fails instead of returning less.
    #[error("ingester {ingester} did not answer for its recent data: {reason}")]
    HeadUnavailable {
        /// The ingester (its URL).
        ingester: String,
        /// Why.
        reason: String,
    },

    /// The engine reads a shared store (a querier or a compactor) and takes no appends.
    #[error("this store is read-only here: {reason}")]
    ReadOnly {
        /// Which role the process has.
        reason: String,
    },

    /// The write-ahead log cannot take writes (after an I/O error or shutdown).
    #[error("write-ahead log unavailable: {reason}")]
    WalUnavailable {
        /// Why.
        reason: String,
    },
}

/// Whether an I/O error says the disk or the quota is full (`ENOSPC`, `EDQUOT`).
pub(crate) fn is_disk_full(e: &std::io::Error) -> bool {
    use std::io::ErrorKind;
    matches!(e.kind(), ErrorKind::StorageFull | ErrorKind::QuotaExceeded)
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io { path, source }
    }

    pub(crate) fn store(path: impl ToString) -> impl FnOnce(object_store::Error) -> Error {
        let path = path.to_string();
        move |source| Error::ObjectStore { path, source }
    }

    pub(crate) fn parquet(
        path: impl ToString,
    ) -> impl FnOnce(parquet::errors::ParquetError) -> Error {
        let path = path.to_string();
        move |source| Error::Parquet { path, source }
    }

    pub(crate) fn arrow(context: &'static str) -> impl FnOnce(arrow::error::ArrowError) -> Error {
        move |source| Error::Arrow { context, source }
    }

    pub(crate) fn batch(reason: impl Into<String>) -> Error {
        Error::InvalidBatch {
            reason: reason.into(),
        }
    }
}
