//! Ingest errors: each says what was wrong with the input, so protocol handlers can turn it into
//! a gRPC status or an HTTP 4xx with that message.

/// The ingest result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can be wrong with a profile on its way in.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The body is larger than allowed before decompression.
    #[error("profile is {size} bytes, over the limit of {max} bytes (ingest.max_body_bytes)")]
    BodyTooLarge {
        /// Size seen.
        size: u64,
        /// The limit.
        max: u64,
    },

    /// The gzip stream decompresses to more than allowed (e.g. a gzip bomb).
    #[error("profile decompresses to more than {max} bytes (ingest.max_decompressed_bytes)")]
    DecompressedTooLarge {
        /// The limit.
        max: u64,
    },

    /// The gzip stream is corrupt or truncated.
    #[error("bad gzip: {0}")]
    Gzip(std::io::Error),

    /// The bytes are not the expected protobuf message (a pprof `Profile`, an OTLP request).
    #[error("bad protobuf: {0}")]
    Protobuf(#[from] prost::DecodeError),

    /// The protobuf decodes but its contents are inconsistent.
    #[error("invalid profile: {0}")]
    InvalidProfile(String),

    /// A pushed series lacks the `__name__` label that names its profile type.
    #[error("missing __name__ label: the profile type's name is unknown")]
    MissingName,

    /// The engine refused the normalized batch.
    #[error(transparent)]
    Engine(#[from] strata_engine::Error),
}
