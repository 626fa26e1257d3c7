//! The query front doors: Parca's `QueryService` over gRPC and gRPC-web ([`parca_grpc`],
//! reports in [`parca_reports`]), the HTTP/JSON API ([`http`]) and Arrow Flight SQL
//! ([`flight_sql`]). What they share — times, selectors, filters, limits, running a request —
//! is [`request`].

pub(crate) mod flight_sql;
pub(crate) mod http;
pub(crate) mod parca_grpc;
pub(crate) mod parca_reports;
pub(crate) mod request;
