//! Strata ingest: from bytes on the wire to [`strata_engine::SampleBatch`]es.
//!
//! This crate is filled by issue [2/8]. What will live here:
//! - `pprof`: decode gzipped or plain pprof with a bound on decompressed size;
//! - `normalize`: one profile type per pprof sample type, labels, interned stacks;
//! - `delta`: server-side deltas of cumulative profiles;
//! - `pyroscope`, `parca`, `otlp`: the push protocols' payloads;
//! - `scrape`: the Prometheus-style pprof scraper.
//!
//! `ingest` uses only the engine's public API and never depends on `query`.
#![deny(missing_docs)]
