//! The router: every route of the server declared once, here, with its [`Access`] class and
//! the component that serves it ([`Routes`] has no way to add a route without an access
//! class); the gate every request passes first ([`gate_request`]: token, then tenant); and [`serve`].
//!
//! A process serves the front doors of the components it runs ([`ComponentSet`]): the push
//! protocols with `ingest`, the query APIs and the UI with `query`; health, readiness, metrics
//! and the server's own profile always.

use std::convert::Infallible;
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post};
use axum::serve::ListenerExt;
use serde::Serialize;
use strata_proto::otlp::collector::profiles::v1development::profiles_service_server::ProfilesServiceServer;
use strata_proto::parca::debuginfo::v1alpha1::debuginfo_service_server::DebuginfoServiceServer;
use strata_proto::parca::profile_store_service_server::ProfileStoreServiceServer;
use strata_proto::parca::query::v1alpha1::query_service_server::QueryServiceServer;
use strata_proto::pyroscope::push::v1::pusher_service_server::PusherServiceServer;
use tokio::net::TcpListener;
use tonic::codec::CompressionEncoding;
use tonic::server::NamedService;
use tower::Layer;

use crate::auth::{Access, Refusal};
use crate::components::{Component, ComponentSet};
use crate::debuginfo::grpc::ParcaDebuginfo;
use crate::ingest::{
    ingest_http, otlp::OtlpProfiles, otlp_http, parca::ParcaProfileStore, pyroscope,
};
use crate::limits::Limit;
use crate::ops::{health, metrics, self_profile, ui};
use crate::query::{flight_sql::FlightSql, http as query_http, parca_grpc::ParcaQuery};
use crate::state::{App, RequestTenant};
use crate::status::{ERROR_METADATA, ServerError};

/// One declared route, as [`route_table`] lists them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RouteEntry {
    /// The path (HTTP) or path prefix (`/<package.Service>/`, gRPC).
    pub path: String,
    /// `http`, `grpc` or `grpc-web`.
    pub protocol: &'static str,
    /// The token it needs.
    pub access: Access,
}

/// The routes of one process, each added with its access class.
struct Routes {
    app: Arc<App>,
    router: Router,
    table: Vec<RouteEntry>,
}

/// A tonic service (what the generated `…Server` types are).
trait GrpcService:
    tower::Service<
        axum::http::Request<tonic::body::Body>,
        Response = axum::http::Response<tonic::body::Body>,
        Error = Infallible,
        Future: Send + 'static,
    > + NamedService
    + Clone
    + Send
    + Sync
    + 'static
{
}

impl<S> GrpcService for S where
    S: tower::Service<
            axum::http::Request<tonic::body::Body>,
            Response = axum::http::Response<tonic::body::Body>,
            Error = Infallible,
            Future: Send + 'static,
        > + NamedService
        + Clone
        + Send
        + Sync
        + 'static
{
}

/// What the gate of one route knows.
#[derive(Clone)]
struct Gate {
    app: Arc<App>,
    access: Access,
    /// The limit that bounds this gRPC route's message size (tonic refuses oversize messages
    /// before a handler runs; the gate counts those refusals under it).
    message_limit: Option<Limit>,
}

impl Routes {
    fn new(app: Arc<App>) -> Self {
        Routes {
            app,
            router: Router::new(),
            table: Vec::new(),
        }
    }

    fn gate(&self, access: Access, message_limit: Option<Limit>) -> Gate {
        Gate {
            app: self.app.clone(),
            access,
            message_limit,
        }
    }

    /// An HTTP route.
    fn http(&mut self, path: &'static str, access: Access, route: MethodRouter<Arc<App>>) {
        self.http_grpc(path, access, None, route);
    }

    /// An HTTP route that also answers gRPC, its messages bounded by `message_limit`.
    fn http_grpc(
        &mut self,
        path: &'static str,
        access: Access,
        message_limit: Option<Limit>,
        route: MethodRouter<Arc<App>>,
    ) {
        let gate = self.gate(access, message_limit);
        let router = Router::new()
            .route(path, route)
            .route_layer(axum::middleware::from_fn_with_state(gate, gate_request))
            .with_state(self.app.clone());
        self.merge(router, path.to_owned(), "http", access);
    }

    /// A gRPC service at `/<package.Service>/…`, and with `web` also as gRPC-web under
    /// `/api/<package.Service>/…` (as Parca serves its UI).
    fn grpc<S: GrpcService>(
        &mut self,
        access: Access,
        message_limit: Option<Limit>,
        web: bool,
        service: S,
    ) {
        let gate = self.gate(access, message_limit);
        let native = Router::new()
            .route_service(
                &format!("/{}/{{*rest}}", S::NAME),
                axum_service(service.clone()),
            )
            .route_layer(axum::middleware::from_fn(require_grpc_content_type))
            .route_layer(axum::middleware::from_fn_with_state(
                gate.clone(),
                gate_request,
            ));
        self.merge(native, format!("/{}/", S::NAME), "grpc", access);
        if web {
            self.grpc_web_only(access, message_limit, service);
        }
    }

    fn merge(&mut self, router: Router, path: String, protocol: &'static str, access: Access) {
        self.router = std::mem::take(&mut self.router).merge(router);
        self.table.push(RouteEntry {
            path,
            protocol,
            access,
        });
    }
}

/// Every route of a process running `components`.
fn declare(app: Arc<App>, components: &ComponentSet) -> Routes {
    use Access::{Open, Read};
    let mut r = Routes::new(app.clone());

    r.http("/healthy", Open, get(health::healthy));
    r.http("/ready", Open, get(health::ready));
    r.http("/metrics", Read, get(metrics::metrics));
    r.http("/debug/pprof/profile", Read, get(self_profile::profile));
    r.http(
        "/api/v1/targets",
        Read,
        get(
            |axum::extract::State(app): axum::extract::State<Arc<App>>| async move {
                crate::scrape::health::targets(&app.targets)
            },
        ),
    );

    if components.contains(Component::Ingest) {
        declare_ingest(&mut r, &app);
    }
    if components.contains(Component::Query) {
        declare_query(&mut r, &app);
    }
    if components.contains(Component::HeadApi) {
        declare_head_api(&mut r);
    }
    r
}

/// An ingester's head API, which queriers ask (read access).
fn declare_head_api(r: &mut Routes) {
    use crate::cluster::head_api;
    use Access::Read;
    // A `resolve` of millions of stack ids is a large JSON body.
    let body_limit = DefaultBodyLimit::max(256 << 20);
    r.http("/internal/v1/heads/scan", Read, post(head_api::scan));
    r.http(
        "/internal/v1/heads/profile_types",
        Read,
        post(head_api::profile_types),
    );
    r.http(
        "/internal/v1/heads/label_names",
        Read,
        post(head_api::label_names),
    );
    r.http(
        "/internal/v1/heads/label_values",
        Read,
        post(head_api::label_values),
    );
    r.http(
        "/internal/v1/heads/resolve",
        Read,
        post(head_api::resolve).layer(body_limit),
    );
}

/// The push front doors and debug info uploads.
fn declare_ingest(r: &mut Routes, app: &Arc<App>) {
    use Access::Write;
    let max_body = app.limits.max_body_bytes as usize;
    let body_limit = DefaultBodyLimit::max(max_body);
    r.http(
        "/ingest",
        Write,
        post(ingest_http::ingest).layer(body_limit),
    );
    r.http(
        "/v1development/profiles",
        Write,
        post(otlp_http::export).layer(body_limit),
    );
    r.http("/ingester/flush", Write, post(crate::ops::flush::flush));
    // gRPC and Connect on one path (the handler tells them apart by content type).
    r.http_grpc(
        "/push.v1.PusherService/Push",
        Write,
        Some(Limit::IngestBodyBytes),
        post(pyroscope::push).layer(body_limit),
    );
    r.grpc(
        Write,
        Some(Limit::IngestBodyBytes),
        true,
        ProfileStoreServiceServer::new(ParcaProfileStore(app.clone()))
            .max_decoding_message_size(max_body),
    );
    r.grpc(
        Write,
        Some(Limit::IngestDecompressedBytes),
        false,
        ProfilesServiceServer::new(OtlpProfiles(app.clone()))
            .max_decoding_message_size(app.limits.max_decompressed_bytes as usize)
            .accept_compressed(CompressionEncoding::Gzip),
    );
    // The native path is the HTTP route above; gRPC-web only under /api.
    r.grpc_web_only(
        Write,
        Some(Limit::IngestBodyBytes),
        PusherServiceServer::new(pyroscope::PyroscopePusher(app.clone()))
            .max_decoding_message_size(max_body),
    );
    // Upload chunks of up to 16 MiB.
    r.grpc(
        Write,
        None,
        true,
        DebuginfoServiceServer::new(ParcaDebuginfo::new(app.clone()))
            .max_decoding_message_size(16 << 20),
    );
}

/// The query front doors and the UI.
fn declare_query(r: &mut Routes, app: &Arc<App>) {
    use Access::{Open, Read};
    r.grpc(
        Read,
        None,
        true,
        QueryServiceServer::new(ParcaQuery(app.clone())),
    );
    r.grpc(Read, None, false, FlightSql::server(app.clone()));
    // A querier of a cluster is also a worker of the others' distributed queries.
    if let Some(worker) = &app.worker {
        r.grpc(Read, None, false, worker.clone().into_worker_server());
    }
    r.http(
        "/api/v1/profile_types",
        Read,
        get(query_http::profile_types),
    );
    r.http("/api/v1/labels", Read, get(query_http::labels));
    r.http(
        "/api/v1/labels/{name}/values",
        Read,
        get(query_http::values),
    );
    r.http("/api/v1/complete", Read, get(query_http::completion));
    r.http("/api/v1/query_range", Read, get(query_http::query_range));
    r.http("/api/v1/query", Read, get(query_http::query));
    r.http("/api/v1/sql", Read, post(query_http::sql));
    r.http(
        "/api/v1/debuginfo/status",
        Read,
        get(crate::debuginfo::http::status),
    );
    r.http("/", Open, get(ui::index));
    r.http("/index.html", Open, get(ui::index));
    r.http("/ui/access.json", Open, get(ui::access));
    r.http("/ui/{*file}", Open, get(ui::file));
}

impl Routes {
    /// A gRPC service served only as gRPC-web under `/api` (its native path is an HTTP route
    /// that also speaks Connect).
    fn grpc_web_only<S: GrpcService>(
        &mut self,
        access: Access,
        message_limit: Option<Limit>,
        service: S,
    ) {
        let gate = self.gate(access, message_limit);
        let web = Router::new()
            .route_service(
                &format!("/{}/{{*rest}}", S::NAME),
                tonic_web::GrpcWebLayer::new().layer(service),
            )
            .route_layer(axum::middleware::from_fn(require_grpc_content_type))
            .route_layer(axum::middleware::from_fn_with_state(gate, gate_request));
        let router = Router::new().nest("/api", web);
        self.merge(router, format!("/api/{}/", S::NAME), "grpc-web", access);
    }
}

/// A tonic service as an axum one (what `tonic::service::Routes` does, without the catch-all
/// fallback that would keep two services' routers from merging).
fn axum_service<S: GrpcService>(
    service: S,
) -> impl tower::Service<
    axum::http::Request<axum::body::Body>,
    Response = axum::http::Response<tonic::body::Body>,
    Error = Infallible,
    Future = impl Send + 'static,
> + Clone
+ Send
+ Sync
+ 'static {
    use tower::ServiceExt;
    service
        .map_request(|req: axum::http::Request<axum::body::Body>| req.map(tonic::body::Body::new))
}

/// The server's router for a process running every component.
pub fn router(app: Arc<App>) -> Router {
    router_for(app, &ComponentSet::all())
}

/// The server's router for a process running `components`.
pub fn router_for(app: Arc<App>, components: &ComponentSet) -> Router {
    let router = declare(app.clone(), components).router;
    match app.ingesters.is_some() {
        true => router.layer(axum::middleware::from_fn_with_state(app, mark_partial)),
        false => router,
    }
}

/// The HTTP header (and gRPC metadata) on an answer made while an ingester did not answer
/// (`cluster.partial_answers`): its unflushed data is missing. Conservative: an answer
/// overlapping another one's failure is marked too.
pub const PARTIAL_HEADER: &str = "strata-partial";

/// A querier's answers made while an ingester did not answer get [`PARTIAL_HEADER`].
async fn mark_partial(
    axum::extract::State(app): axum::extract::State<Arc<App>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let Some(set) = &app.ingesters else {
        return next.run(req).await;
    };
    let (before, _) = set.unanswered();
    let mut response = next.run(req).await;
    let (after, reason) = set.unanswered();
    if after > before {
        let reason: String = reason
            .chars()
            .filter(|c| c.is_ascii() && !c.is_ascii_control())
            .collect();
        if let Ok(v) = axum::http::HeaderValue::from_str(&reason) {
            response.headers_mut().insert(PARTIAL_HEADER, v);
        }
    }
    response
}

/// Every route a process running `components` declares, in declaration order.
pub fn route_table(app: Arc<App>, components: &ComponentSet) -> Vec<RouteEntry> {
    declare(app, components).table
}

/// Every request passes here first: its bearer token is checked against its route's access
/// class, then its tenant's store is found (opened on first use) and attached as a
/// [`RequestTenant`] extension.
async fn gate_request(
    axum::extract::State(gate): axum::extract::State<Gate>,
    mut req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let app = &gate.app;
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let refuse = |e: ServerError| e.response_for(content_type.as_deref());
    let authorization = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if let Err(refusal) =
        crate::auth::check(&app.auth, gate.access, req.uri().path(), authorization)
    {
        return refuse(match refusal {
            Refusal::Unauthenticated(m) => ServerError::Unauthenticated(m),
            Refusal::Forbidden(m) => ServerError::PermissionDenied(m),
        });
    }
    let tenants = app.tenants.config();
    let named = match (tenants.enabled, req.headers().get(tenants.header.as_str())) {
        (false, _) | (true, None) => None,
        (true, Some(v)) => match v.to_str() {
            Ok(v) if !v.trim().is_empty() => Some(v.trim().to_owned()),
            _ => {
                return refuse(ServerError::invalid(format!(
                    "header {}: expected a tenant id",
                    tenants.header
                )));
            }
        },
    };
    let store = match app.tenants.get(named.as_deref()).await {
        Ok(store) => store,
        Err(e) => return refuse(app.refused(e)),
    };
    req.extensions_mut().insert(RequestTenant {
        store,
        named: named.is_some(),
    });
    let response = next.run(req).await;
    if let Some(limit) = gate.message_limit
        && is_message_size_refusal(&response)
    {
        app.limit_counters.hit(limit);
    }
    response
}

/// Whether a gRPC response is tonic's refusal of an oversize message: a `RESOURCE_EXHAUSTED`
/// or `OUT_OF_RANGE` status that no handler raised (a handler's status carries the
/// [`ERROR_METADATA`] key; its limit refusals were counted when raised).
fn is_message_size_refusal(response: &Response) -> bool {
    let headers = response.headers();
    headers
        .get("grpc-status")
        .is_some_and(|s| s == "8" || s == "11")
        && !headers.contains_key(ERROR_METADATA)
}

/// Serves `router(app)` on `listener` (HTTP/1.1 and HTTP/2; over TLS when `tls` is given)
/// until `shutdown` resolves.
pub async fn serve(
    app: Arc<App>,
    listener: TcpListener,
    tls: Option<&crate::tls::TlsConfig>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_router(router(app), listener, tls, shutdown).await
}

/// Serves `router` on `listener` (over TLS when `tls` is given) until `shutdown` resolves.
pub async fn serve_router(
    router: Router,
    listener: TcpListener,
    tls: Option<&crate::tls::TlsConfig>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    match tls {
        None => {
            axum::serve(listener.tap_io(crate::tls::no_delay), router)
                .with_graceful_shutdown(shutdown)
                .await
        }
        Some(tls) => {
            let listener =
                crate::tls::TlsListener::new(listener, tls).map_err(std::io::Error::other)?;
            axum::serve(listener, router)
                .with_graceful_shutdown(shutdown)
                .await
        }
    }
}

/// Refuses a request to a gRPC route whose content type is not gRPC's (`application/grpc*`,
/// which covers gRPC-web) with HTTP 415 and a message, as the gRPC over HTTP/2 spec asks.
async fn require_grpc_content_type(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if content_type.starts_with("application/grpc") {
        return next.run(req).await;
    }
    (
        axum::http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
        format!(
            "content type {content_type:?} is not gRPC; {} takes application/grpc (or application/grpc-web under /api)\n",
            req.uri().path()
        ),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_tonic_own_refusals_count_as_oversize_messages() {
        let response = |status: tonic::Status| status.into_http::<axum::body::Body>();
        // tonic's own: no marker.
        assert!(is_message_size_refusal(&response(
            tonic::Status::out_of_range("decoded message length too large")
        )));
        assert!(is_message_size_refusal(&response(
            tonic::Status::resource_exhausted("Error decompressing: size limit")
        )));
        // A handler's: a full disk, or a limit already counted when raised.
        let full = ServerError::StorageFull("no space left on device".into());
        assert!(!is_message_size_refusal(&response(full.to_status())));
        let limit = ServerError::limit(Limit::HeadSeries, Some(2), 1, "over");
        assert!(!is_message_size_refusal(&response(limit.to_status())));
        assert!(!is_message_size_refusal(&response(
            tonic::Status::internal("x")
        )));
    }
}
