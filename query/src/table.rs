//! The engine as DataFusion tables.
//!
//! - [`SamplesTable`] (`samples`): one row per stored sample, each label a column; filters on
//!   `profile_type`, `time` and label columns are pushed down into the engine's scan (the series
//!   index and Parquet statistics prune what is read).
//! - [`StackSumsTable`]: a selection's samples summed per stack within each engine scan part
//!   (the engine sums on the Parquet dictionary encoding); what a merge aggregates, and what
//!   SQL's per-stack sums over `samples` read instead once [`StackSumsRule`] rewrites them.
//! - [`StackSumsExec`]: [`StackSumsTable`]'s scan, which can travel to other queriers
//!   ([`StackSumsCodec`]) and read its parts from their engines ([`EngineExt`]).
//! - [`SymbolsTable`] (`stacks`, `locations`, `functions`, `mappings`): the symbol tables of the
//!   stacks that samples reference.

mod filters;
mod samples;
mod stack_sums;
mod stack_sums_exec;
mod stack_sums_rule;
mod symbols;

pub use samples::{SamplesTable, Selection};
pub use stack_sums::StackSumsTable;
pub use stack_sums_exec::{EngineExt, StackSumsCodec, StackSumsExec};
pub use stack_sums_rule::{STACK_SUMS_SCAN, StackSumsRule};
pub use symbols::{SymbolTableKind, SymbolsTable};
