//! Strata query: the profile query language and the operators that answer it.
//!
//! - [`language`]: Parca's selector `<profile type>{label="v", l=~"re"}`
//!   ([`parse_selector`]) with positioned [`ParseError`]s, and [`complete`] for the UI's
//!   autocomplete.
//! - [`QueryEngine`]: the operators, as DataFusion plans over the engine's tables
//!   ([`table`]): [`QueryEngine::merge`], [`QueryEngine::single`], [`QueryEngine::diff`]
//!   (each a [`MergedProfile`]), [`QueryEngine::range`] (values per step bucket,
//!   `sum by` labels) and [`QueryEngine::sql`] (with the `merge(...)` table function).
//! - [`FrameProfile`]: a merged profile as frame stacks; [`Filters`] keep or drop stacks, hide
//!   frames and regroup (function, binary, line).
//! - [`distributed`]: queries split across queriers with datafusion-distributed
//!   ([`Distribution`]; every querier is also a [`distributed::worker`]).
//! - [`report`]: flame graph, top, call graph, pprof, folded, LLVM sample profile.
//!
//! `query` uses only the engine's public API and never depends on `ingest`.
#![deny(missing_docs)]

pub mod distributed;
mod error;
mod filter;
mod frames;
pub mod language;
mod profile;
mod query_engine;
mod range;
pub mod report;
mod sql;
pub mod table;

pub use distributed::Distribution;
pub use error::{Error, Result};
pub use filter::{Filters, FrameField, FrameMatcher, Grouping, StackFilter};
pub use frames::{Frame, FrameId, FrameProfile, FrameStack};
pub use language::{
    Completion, CompletionContext, OPERATORS, ParseError, Selector, complete, parse_selector,
};
pub use profile::{MergedProfile, StackValue};
pub use query_engine::{ProfileQuery, QueryEngine};
pub use range::{RangeAggregation, RangePoint, RangeQuery, RangeSeries};
