//! The push front doors: Parca's `WriteRaw` ([`parca`]), Pyroscope's `Push` over gRPC and
//! Connect ([`pyroscope`]) and its legacy `/ingest` ([`ingest_http`]), OTLP's profiles
//! `Export` over gRPC ([`otlp`]) and HTTP ([`otlp_http`]). Each decodes its request and hands
//! it to [`store`], which normalizes, stores and counts it ([`counters`]).

pub(crate) mod counters;
pub(crate) mod ingest_http;
pub(crate) mod otlp;
pub(crate) mod otlp_http;
pub(crate) mod parca;
pub(crate) mod pyroscope;
pub(crate) mod store;
