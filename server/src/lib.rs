//! The `strata` server, as a library so tests (and `strata-bench`) can run it in-process.
//!
//! Entry points:
//! - [`Components`]: assembles, from a [`ServerConfig`], what one process runs — the engine,
//!   the symbolizer, the tenants' stores and the shared state ([`App`]), the scraper and the
//!   in-process eBPF collector; a [`ComponentSet`] picks a subset (a role);
//! - [`router_for`] / [`router`]: one `axum::Router` with every route declared once, with its
//!   access class ([`router`](mod@router)); [`serve`] runs it (plain or TLS, [`tls`]);
//! - [`client`]: a typed client of the HTTP/JSON API (the CLI's and the benchmarks');
//! - [`ServerError`]: the one error every front door answers with, mapped once to HTTP, gRPC
//!   and Connect codes ([`status`]); [`Limit`]: every configured limit a request can hit;
//!
//! The rooms, one folder per front door, all over the shared state:
//! - [`ingest`](mod@ingest): Parca `WriteRaw`, Pyroscope `Push` (gRPC and Connect) and
//!   `/ingest`, OTLP `Export`;
//! - [`query`](mod@query): Parca `QueryService`, the HTTP/JSON API, Arrow Flight SQL;
//! - [`scrape`]: the Prometheus-style scraper of `/debug/pprof` endpoints;
//! - [`debuginfo`](mod@debuginfo): Parca's `DebuginfoService` uploads and their status;
//! - [`symbolization`]: background symbolization of stored addresses;
//! - [`collector`]: the eBPF collector in-process, or as `strata agent`;
//! - [`ops`](mod@ops): health, `/metrics`, `/debug/pprof/profile`, the web UI;
//! - [`cluster`]: roles (`--target`), the ingesters' head API and the queriers' client of it.
//!
//! What the rooms share: [`state`] (the [`App`]), [`status`], [`limits`], [`auth`],
//! [`tenants`], [`config`].
#![deny(missing_docs)]

pub mod auth;
pub mod client;
pub mod cluster;
pub mod collector;
pub mod components;
pub mod config;
pub(crate) mod debuginfo;
pub(crate) mod ingest;
pub mod limits;
pub(crate) mod ops;
pub(crate) mod query;
pub mod router;
pub mod scrape;
pub mod state;
pub mod status;
pub mod symbolization;
pub mod tenants;
pub mod tls;

pub use auth::{Access, AuthConfig};
pub use cluster::{ClusterConfig, StoreRole, Target};
pub use components::{Component, ComponentSet, Components};
pub use config::ServerConfig;
pub use ingest::counters::IngestCounters;
pub use limits::{Limit, QueryLimits};
pub use router::{route_table, router, router_for, serve, serve_router};
pub use scrape::{ScrapeJob, Scraper};
pub use state::{App, AppSettings};
pub use status::ServerError;
pub use symbolization::{Symbolization, SymbolizerSettings};
pub use tenants::{TenantStore, Tenants, TenantsConfig};
pub use tls::TlsConfig;
