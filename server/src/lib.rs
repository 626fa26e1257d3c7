//! The `strata` server, as a library so tests can run it in-process.
//!
//! - [`App`]: the engine plus ingest state (delta baselines, decode limits);
//! - [`router`]: one `axum::Router` serving native gRPC (Parca's
//!   `parca.profilestore.v1alpha1.ProfileStoreService/WriteRaw`, Pyroscope's
//!   `push.v1.PusherService/Push`) and HTTP (`/healthy`, `/ready`, Pyroscope's legacy
//!   `/ingest` with pprof or folded bodies, `/metrics`) on one port;
//! - [`serve`]: runs the router on a listener until shutdown.
//!
//! Pyroscope's Push also speaks Connect (`application/proto` or `application/json`, gzip) on
//! the same path.
//!
//! The push services are also served over gRPC-web under `/api` (as Parca serves its UI).
//!
//! Still to come (issue [2/8]): OTLP, `/debug/pprof/profile`, the scraper.
#![deny(missing_docs)]

mod app;
mod connect;
mod grpc;
mod http;
mod metrics;
mod pyroscope_ingest;

pub use app::{App, router, serve};
pub use metrics::IngestCounters;
