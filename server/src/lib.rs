//! The `strata` server, as a library so tests can run it in-process.
//!
//! - [`App`]: the tenants' stores (engine, query engine, delta baselines, symbolizer each)
//!   plus limits, tokens and target health;
//! - [`router`]: one `axum::Router` serving, on one port:
//!   - native gRPC: Parca's `parca.profilestore.v1alpha1.ProfileStoreService/WriteRaw` and
//!     `parca.debuginfo.v1alpha1.DebuginfoService` (debug info uploads, see `debuginfo_grpc`),
//!     Pyroscope's `push.v1.PusherService/Push` (also over Connect: `application/proto` or
//!     `application/json`, gzip) and OTLP's
//!     `opentelemetry.proto.collector.profiles.v1development.ProfilesService/Export`;
//!   - Arrow Flight SQL (`arrow.flight.protocol.FlightService`): SQL over the store for Flight
//!     SQL clients (ADBC, JDBC), see `flight_sql`;
//!   - gRPC-web under `/api` (as Parca serves its UI);
//!   - HTTP: `/healthy`, `/ready`, Pyroscope's legacy `/ingest` (pprof or folded), `/metrics`,
//!     `/api/v1/targets` (scrape health), `/api/v1/debuginfo/status` (per build id: debug info
//!     found, missing or failed, and why), `/debug/pprof/profile` (this process' CPU);
//!   - the web UI at `/` (embedded `ui-static/`, see `ui`);
//! - [`serve`]: runs the router on a listener (plain, or TLS with rustls: [`tls`]) until
//!   shutdown; every request first passes the gate: its bearer token is checked ([`auth`]) and
//!   its tenant's store found ([`tenants`]: each tenant has its own engine);
//! - [`limits`]: query limits and the count of refusals by each configured limit;
//! - [`Scraper`]: pulls `/debug/pprof` endpoints as a Prometheus-style `scrape_configs` says.
//! - [`symbolization`]: background symbolization of stored addresses ([`Symbolization`]), its
//!   `symbolizer:` config section and per-build-id status.
//! - [`collector`]: the eBPF collector in-process (into the engine); [`agent`]: the collector
//!   pushing to a remote store through Parca `WriteRaw`.
#![deny(missing_docs)]

pub mod agent;
mod app;
pub mod auth;
pub mod collector;
mod connect;
mod debuginfo_grpc;
mod debuginfo_http;
mod flight_sql;
mod grpc;
mod http;
pub mod limits;
mod metrics;
mod pyroscope_ingest;
mod query_api;
mod query_grpc;
mod query_http;
pub mod scrape;
mod self_profile;
pub mod symbolization;
pub mod tenants;
pub mod tls;
mod ui;

pub use app::{App, AppSettings, router, serve};
pub use auth::AuthConfig;
pub use limits::QueryLimits;
pub use metrics::IngestCounters;
pub use scrape::{ScrapeJob, Scraper};
pub use symbolization::{Symbolization, SymbolizerSettings};
pub use tenants::{TenantStore, Tenants, TenantsConfig};
pub use tls::TlsConfig;
