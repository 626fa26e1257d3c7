//! Strata query: the profile query language and the operators that answer it.
//!
//! This crate is filled by issue [3/8]. What will live here:
//! - `language`: Parca's selector `<profile type>{label="v", l=~"re"}` with positioned errors
//!   and completion;
//! - `provider`: the engine as DataFusion `TableProvider`s (`samples`, `stacks`, `locations`,
//!   `functions`, `mappings`) with filter pushdown;
//! - `range`, `merge`, `diff`, `filter`: the operators;
//! - `report`: flame graph, top, call graph, pprof export.
//!
//! `query` uses only the engine's public API and never depends on `ingest`.
#![deny(missing_docs)]
