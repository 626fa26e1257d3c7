//! The engine as DataFusion tables.
//!
//! - [`SamplesTable`] (`samples`): one row per stored sample, each label a column; filters on
//!   `profile_type`, `time` and label columns are pushed down into the engine's scan (the series
//!   index and Parquet statistics prune what is read).
//! - [`StackSumsTable`]: a selection's samples summed per stack within each engine scan part
//!   (the engine sums on the Parquet dictionary encoding); what a merge aggregates.
//! - [`SymbolsTable`] (`stacks`, `locations`, `functions`, `mappings`): the symbol tables of the
//!   stacks that samples reference.

mod filters;
mod samples;
mod stack_sums;
mod symbols;

pub use samples::{SamplesTable, Selection};
pub use stack_sums::StackSumsTable;
pub use symbols::{SymbolTableKind, SymbolsTable};
