//! The symbolization service's errors.

/// Its result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong setting up background symbolization.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A `symbolizer:` config field is out of range.
    #[error("invalid config field {field}: {reason}")]
    Config {
        /// The field, e.g. `symbolizer.workers`.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The symbolizer library refused its config.
    #[error(transparent)]
    Symbolizer(#[from] strata_symbolizer::Error),
}
