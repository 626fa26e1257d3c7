//! Strata ingest: from bytes on the wire to [`strata_engine::SampleBatch`]es.
//!
//! - [`decode_pprof`]: gzipped or plain pprof, within [`DecodeLimits`] (body and decompressed
//!   size, so a gzip bomb is refused);
//! - [`normalize`]: one profile type per pprof sample type (named
//!   `name:sample_type:sample_unit:period_type:period_unit[:delta]` after the `__name__` label,
//!   as Parca names them), pprof string labels added to the series (`exported_` on a clash,
//!   names sanitized), zero values dropped, stacks and symbols interned.
//!
//! - [`DeltaTracker`] + [`normalize_with_deltas`]: server-side deltas of cumulative profiles
//!   (Go's allocs, mutex, block) under `:delta` types, with restarts detected.
//!
//! - [`parse_folded`] + [`folded_into`]: folded stacks (`main;work 12`), and
//!   [`parse_app_name`]: Pyroscope's `app.cpu{k=v}` names, for the legacy `/ingest` API.
//!
//! - [`parca_write_raw`], [`pyroscope_push`]: a push request into one batch, all or nothing.
//! - [`decode_otlp`] + [`otlp_export`]: an OTLP profiles `Export` request into one batch, its
//!   dictionary resolved once per request.
//! - [`PprofBuilder`]: pprof profiles from function-name stacks (fixtures, exporters).
//!
//! `ingest` uses only the engine's public API and never depends on `query`.
#![deny(missing_docs)]

mod app_name;
mod delta;
mod error;
mod folded;
mod limits;
mod normalize;
mod otlp;
mod pprof;
mod pprof_builder;
mod push;
mod sample_writer;

pub use app_name::{AppName, parse_app_name};
pub use delta::{DeltaKey, DeltaSource, DeltaTracker, Increase, delta_type, is_cumulative};
pub use error::{Error, Result};
pub use folded::{FoldedStack, folded_into, parse_folded};
pub use limits::DecodeLimits;
pub use normalize::{
    ProfileSource, normalize, normalize_into, normalize_with_deltas, sanitize_label_name,
};
pub use otlp::{decode_otlp, otlp_export};
pub use pprof::{decode_pprof, decompress, is_gzip};
pub use pprof_builder::PprofBuilder;
pub use push::{parca_write_raw, pyroscope_push};
