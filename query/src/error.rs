//! Query errors: each says what failed and where (for a selector, the position in it).

/// The query result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything a query can fail on.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The selector does not parse.
    #[error("{0}")]
    Parse(#[from] crate::language::ParseError),

    /// A stack or frame filter is not valid.
    #[error("invalid filter {filter:?}: {reason}")]
    InvalidFilter {
        /// The filter as given.
        filter: String,
        /// Why it is invalid.
        reason: String,
    },

    /// A query argument is not valid (e.g. an empty range, a zero step).
    #[error("invalid query: {0}")]
    InvalidQuery(String),

    /// DataFusion failed to plan or run a query.
    #[error("query execution: {0}")]
    DataFusion(#[from] datafusion::error::DataFusionError),

    /// The engine failed.
    #[error(transparent)]
    Engine(#[from] strata_engine::Error),
}
