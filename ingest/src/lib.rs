//! Strata ingest: from bytes on the wire to [`strata_engine::SampleBatch`]es.
//!
//! - [`decode_pprof`]: gzipped or plain pprof, within [`DecodeLimits`] (body and decompressed
//!   size, so a gzip bomb is refused);
//! - [`normalize`]: one profile type per pprof sample type (named
//!   `name:sample_type:sample_unit:period_type:period_unit[:delta]` after the `__name__` label,
//!   as Parca names them), pprof string labels added to the series (`exported_` on a clash,
//!   names sanitized), zero values dropped, stacks and symbols interned.
//!
//! Still to come here (issue [2/8]): server-side deltas of cumulative profiles, the Parca,
//! Pyroscope and OTLP payloads, and the scraper. `ingest` uses only the engine's public API and
//! never depends on `query`.
#![deny(missing_docs)]

mod error;
mod limits;
mod normalize;
mod pprof;

pub use error::{Error, Result};
pub use limits::DecodeLimits;
pub use normalize::{ProfileSource, normalize, normalize_into, sanitize_label_name};
pub use pprof::{decode_pprof, decompress, is_gzip};
