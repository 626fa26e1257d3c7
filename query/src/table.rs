//! The engine as DataFusion tables.
//!
//! - [`SamplesTable`] (`samples`): one row per stored sample, each label a column; filters on
//!   `profile_type`, `time` and label columns are pushed down into the engine's scan (the series
//!   index and Parquet statistics prune what is read).
//! - [`SymbolsTable`] (`stacks`, `locations`, `functions`, `mappings`): the symbol tables of the
//!   stacks that samples reference.

mod filters;
mod samples;
mod symbols;

pub use samples::{SamplesTable, Selection};
pub use symbols::{SymbolTableKind, SymbolsTable};
