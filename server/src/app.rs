//! [`App`]: what the handlers share, and the router that serves them.

use std::sync::Arc;

use strata_engine::Engine;
use strata_ingest::DecodeLimits;
use strata_proto::otlp::collector::profiles::v1development::profiles_service_server::ProfilesServiceServer;
use strata_proto::parca::profile_store_service_server::ProfileStoreServiceServer;
use strata_proto::pyroscope::push::v1::pusher_service_server::PusherServiceServer;
use tokio::net::TcpListener;
use tonic::codec::CompressionEncoding;

use strata_proto::parca::debuginfo::v1alpha1::debuginfo_service_server::DebuginfoServiceServer;
use strata_proto::parca::query::v1alpha1::query_service_server::QueryServiceServer;

use crate::auth::AuthConfig;
use crate::debuginfo_grpc::ParcaDebuginfo;
use crate::flight_sql::FlightSql;
use crate::grpc::{OtlpProfiles, ParcaProfileStore, PyroscopePusher};
use crate::limits::{LimitCounters, QueryLimits};
use crate::query_grpc::ParcaQuery;
use crate::tenants::{TenantError, TenantStore, Tenants};

/// State shared by every handler.
pub struct App {
    /// Every tenant's store (one, unless `tenants.enabled`).
    pub tenants: Tenants,
    /// Body and decompression limits.
    pub limits: DecodeLimits,
    /// Query range and result size limits.
    pub query_limits: QueryLimits,
    /// Bearer tokens.
    pub auth: AuthConfig,
    /// Push counters for `/metrics`.
    pub counters: crate::metrics::IngestCounters,
    /// Requests refused by each limit, for `/metrics`.
    pub limit_counters: LimitCounters,
    /// Health of every scrape target, kept by the [`Scraper`](crate::Scraper).
    pub targets: crate::scrape::TargetHealthMap,
    /// Held while `/debug/pprof/profile` profiles this process (one profile at a time).
    pub(crate) self_profile: tokio::sync::Mutex<()>,
}

/// The settings of an [`App`] besides its stores.
#[derive(Clone, Debug, Default)]
pub struct AppSettings {
    /// Body and decompression limits (`ingest:`).
    pub ingest: DecodeLimits,
    /// Query limits (`query:`).
    pub query: QueryLimits,
    /// Bearer tokens (`auth:`).
    pub auth: AuthConfig,
}

impl App {
    /// An app over `engine` with default limits.
    pub fn new(engine: Engine) -> Arc<App> {
        Self::with_limits(engine, DecodeLimits::default())
    }

    /// An app over `engine` with the given push limits (background symbolization off).
    pub fn with_limits(engine: Engine, limits: DecodeLimits) -> Arc<App> {
        let off = crate::symbolization::Symbolization::disabled(Default::default());
        Self::with_symbolization(engine, limits, off)
    }

    /// An app over `engine` with the given push limits and symbolizer
    /// ([`Symbolization::start`](crate::symbolization::Symbolization::start)).
    pub fn with_symbolization(
        engine: Engine,
        limits: DecodeLimits,
        symbolization: crate::symbolization::Symbolization,
    ) -> Arc<App> {
        let store = TenantStore::new("anonymous", engine, symbolization);
        let settings = AppSettings {
            ingest: limits,
            ..Default::default()
        };
        Self::with_tenants(Tenants::single(store), settings)
    }

    /// An app over `tenants` with `settings`.
    pub fn with_tenants(tenants: Tenants, settings: AppSettings) -> Arc<App> {
        Arc::new(App {
            tenants,
            limits: settings.ingest,
            query_limits: settings.query,
            auth: settings.auth,
            counters: Default::default(),
            limit_counters: Default::default(),
            targets: Default::default(),
            self_profile: Default::default(),
        })
    }

    /// The default tenant's store (the scraper's and the collector's).
    pub fn default_store(&self) -> &Arc<TenantStore> {
        self.tenants.default_store()
    }
}

/// The tenant a request was given by [`gate`], as a request extension.
#[derive(Clone)]
pub(crate) struct RequestTenant {
    /// Its store.
    pub store: Arc<TenantStore>,
    /// Whether a header named it (else it is the default).
    pub named: bool,
}

impl App {
    /// The store of a request, from its [`RequestTenant`] extension (the default store if no
    /// tenant was resolved for it).
    pub(crate) fn store_of(&self, tenant: Option<&RequestTenant>) -> Arc<TenantStore> {
        tenant.map_or_else(|| self.default_store().clone(), |t| t.store.clone())
    }

    /// The store of tenant `id`, for a request that named it in its body (Parca's `tenant`
    /// field); a tenant named by a header wins.
    pub(crate) async fn store_named(
        &self,
        tenant: Option<&RequestTenant>,
        id: &str,
    ) -> Result<Arc<TenantStore>, tonic::Status> {
        match tenant {
            Some(t) if t.named || id.is_empty() => Ok(t.store.clone()),
            _ if id.is_empty() => Ok(self.default_store().clone()),
            _ => self
                .tenants
                .get(Some(id))
                .await
                .map_err(|e| self.tenant_status(e)),
        }
    }

    /// A gRPC status for a tenant that has no store (counting a limit's refusal).
    pub(crate) fn tenant_status(&self, e: TenantError) -> tonic::Status {
        match e {
            TenantError::Invalid(m) => tonic::Status::invalid_argument(m),
            TenantError::TooMany { .. } => {
                self.limit_counters.hit("tenants.max_tenants");
                tonic::Status::resource_exhausted(e.to_string())
            }
            TenantError::Open(m) => tonic::Status::unavailable(m),
        }
    }
}

/// Native gRPC and HTTP on one router.
pub fn router(app: Arc<App>) -> axum::Router {
    let max = app.limits.max_body_bytes as usize;
    // Pyroscope's Push path serves both gRPC and Connect, so it has its own route (see
    // `connect`); Parca's service is plain gRPC.
    let grpc = tonic::service::Routes::new(
        ProfileStoreServiceServer::new(ParcaProfileStore(app.clone()))
            .max_decoding_message_size(max),
    )
    .add_service(QueryServiceServer::new(ParcaQuery(app.clone())))
    .add_service(
        ProfilesServiceServer::new(OtlpProfiles(app.clone()))
            .max_decoding_message_size(app.limits.max_decompressed_bytes as usize)
            .accept_compressed(CompressionEncoding::Gzip),
    )
    .add_service(FlightSql::server(app.clone()))
    .add_service(debuginfo_server(&app))
    .into_axum_router()
    .layer(axum::middleware::from_fn(require_grpc_content_type));
    // gRPC-web under /api, as Parca serves its UI: /api/<package.Service>/<Method>.
    let grpc_web = tonic::service::Routes::new(
        ProfileStoreServiceServer::new(ParcaProfileStore(app.clone()))
            .max_decoding_message_size(max),
    )
    .add_service(
        PusherServiceServer::new(PyroscopePusher(app.clone())).max_decoding_message_size(max),
    )
    .add_service(QueryServiceServer::new(ParcaQuery(app.clone())))
    .add_service(debuginfo_server(&app))
    .into_axum_router()
    .layer(tonic_web::GrpcWebLayer::new())
    .layer(axum::middleware::from_fn(require_grpc_content_type));
    grpc.merge(crate::http::routes(app.clone()))
        .merge(crate::query_http::routes(app.clone()))
        .merge(crate::debuginfo_http::routes(app.clone()))
        .merge(crate::ui::routes(crate::ui::UiAccess {
            read_token_required: !app.auth.read_tokens.is_empty(),
            tenant_header: app
                .tenants
                .config()
                .enabled
                .then(|| app.tenants.config().header.clone()),
            default_tenant: app.tenants.config().default_tenant.clone(),
        }))
        .nest("/api", grpc_web)
        .layer(axum::middleware::from_fn_with_state(app, gate))
}

/// Every request passes here first: its bearer token is checked against the path's access
/// (`auth`), then its tenant's store is found (opened on first use) and attached as a
/// [`RequestTenant`] extension.
async fn gate(
    axum::extract::State(app): axum::extract::State<Arc<App>>,
    mut req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let headers = req.headers();
    let authorization = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if let Err(refusal) = crate::auth::check(&app.auth, req.uri().path(), authorization) {
        return refusal_response(&req, refusal);
    }
    let named = match app.tenants.config().enabled {
        false => None,
        true => match headers.get(app.tenants.config().header.as_str()) {
            None => None,
            Some(v) => match v.to_str() {
                Ok(v) if !v.trim().is_empty() => Some(v.trim().to_owned()),
                _ => {
                    let status = tonic::Status::invalid_argument(format!(
                        "header {}: expected a tenant id",
                        app.tenants.config().header
                    ));
                    return error_response(&req, axum::http::StatusCode::BAD_REQUEST, status);
                }
            },
        },
    };
    let store = match app.tenants.get(named.as_deref()).await {
        Ok(store) => store,
        Err(e) => {
            let code = match &e {
                TenantError::Invalid(_) => axum::http::StatusCode::BAD_REQUEST,
                TenantError::TooMany { .. } => axum::http::StatusCode::TOO_MANY_REQUESTS,
                TenantError::Open(_) => axum::http::StatusCode::SERVICE_UNAVAILABLE,
            };
            let status = app.tenant_status(e);
            return error_response(&req, code, status);
        }
    };
    req.extensions_mut().insert(RequestTenant {
        store,
        named: named.is_some(),
    });
    let path = req.uri().path().to_owned();
    let response = next.run(req).await;
    count_grpc_size_refusal(&app, &path, &response);
    response
}

/// Counts a gRPC request tonic refused for its size (before any handler ran) under the limit
/// that set the size.
fn count_grpc_size_refusal(app: &App, path: &str, response: &axum::response::Response) {
    let headers = response.headers();
    let refused = headers
        .get("grpc-status")
        .is_some_and(|s| s == "8" || s == "11")
        && headers
            .get("grpc-message")
            .and_then(|m| m.to_str().ok())
            // Percent-encoded (spaces as %20), as gRPC sends it.
            .is_some_and(|m| {
                m.replace("%20", " ")
                    .contains("decoded message length too large")
            });
    if !refused || path.contains("DebuginfoService") {
        return;
    }
    app.limit_counters.hit(if path.contains("ProfilesService") {
        "ingest.max_decompressed_bytes"
    } else {
        "ingest.max_body_bytes"
    });
}

/// A refused request's answer: 401 (with `WWW-Authenticate`) or 403, as a gRPC status for
/// gRPC requests.
fn refusal_response(
    req: &axum::extract::Request,
    refusal: crate::auth::Refusal,
) -> axum::response::Response {
    use crate::auth::Refusal;
    let (code, status) = match refusal {
        Refusal::Unauthenticated(m) => (
            axum::http::StatusCode::UNAUTHORIZED,
            tonic::Status::unauthenticated(m),
        ),
        Refusal::Forbidden(m) => (
            axum::http::StatusCode::FORBIDDEN,
            tonic::Status::permission_denied(m),
        ),
    };
    let mut response = error_response(req, code, status);
    if code == axum::http::StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(
            axum::http::header::WWW_AUTHENTICATE,
            axum::http::HeaderValue::from_static("Bearer"),
        );
    }
    response
}

/// `status` as gRPC's trailers-only answer for a gRPC (or gRPC-web) request, else HTTP `code`
/// with the message as JSON (`{"error": ...}`).
fn error_response(
    req: &axum::extract::Request,
    code: axum::http::StatusCode,
    status: tonic::Status,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let is_grpc = req
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/grpc"));
    if is_grpc {
        return status.into_http::<axum::body::Body>();
    }
    let body = serde_json::json!({ "error": status.message() });
    (code, axum::Json(body)).into_response()
}

/// Parca's `DebuginfoService`; upload chunks of up to 16 MiB.
fn debuginfo_server(app: &Arc<App>) -> DebuginfoServiceServer<ParcaDebuginfo> {
    DebuginfoServiceServer::new(ParcaDebuginfo::new(app.clone()))
        .max_decoding_message_size(16 << 20)
}

/// Serves `router(app)` on `listener` (HTTP/1.1 and HTTP/2; over TLS when `tls` is given)
/// until `shutdown` resolves.
pub async fn serve(
    app: Arc<App>,
    listener: TcpListener,
    tls: Option<&crate::tls::TlsConfig>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let router = router(app);
    match tls {
        None => {
            axum::serve(listener, router)
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
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let content_type = req
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
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
