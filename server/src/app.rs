//! [`App`]: what the handlers share, and the router that serves them.

use std::sync::Arc;

use parking_lot::Mutex;
use strata_engine::Engine;
use strata_ingest::{DecodeLimits, DeltaTracker};
use strata_proto::otlp::collector::profiles::v1development::profiles_service_server::ProfilesServiceServer;
use strata_proto::parca::profile_store_service_server::ProfileStoreServiceServer;
use strata_proto::pyroscope::push::v1::pusher_service_server::PusherServiceServer;
use tokio::net::TcpListener;
use tonic::codec::CompressionEncoding;

use strata_proto::parca::debuginfo::v1alpha1::debuginfo_service_server::DebuginfoServiceServer;
use strata_proto::parca::query::v1alpha1::query_service_server::QueryServiceServer;

use crate::debuginfo_grpc::ParcaDebuginfo;
use crate::flight_sql::FlightSql;
use crate::grpc::{OtlpProfiles, ParcaProfileStore, PyroscopePusher};
use crate::query_grpc::ParcaQuery;

/// State shared by every handler.
pub struct App {
    /// The store.
    pub engine: Engine,
    /// Queries over the store.
    pub query: strata_query::QueryEngine,
    /// Baselines for server-side deltas of cumulative profiles.
    pub deltas: Mutex<DeltaTracker>,
    /// Body and decompression limits.
    pub limits: DecodeLimits,
    /// Push counters for `/metrics`.
    pub counters: crate::metrics::IngestCounters,
    /// Health of every scrape target, kept by the [`Scraper`](crate::Scraper).
    pub targets: crate::scrape::TargetHealthMap,
    /// Held while `/debug/pprof/profile` profiles this process (one profile at a time).
    pub(crate) self_profile: tokio::sync::Mutex<()>,
    /// Background symbolization of stored addresses, and the upload limits.
    pub symbolization: crate::symbolization::Symbolization,
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
        Arc::new(App {
            query: strata_query::QueryEngine::new(engine.clone()),
            engine,
            deltas: Mutex::new(DeltaTracker::new(100_000)),
            limits,
            counters: Default::default(),
            targets: Default::default(),
            self_profile: Default::default(),
            symbolization,
        })
    }
}

impl App {
    /// Normalizes a request with the delta baselines locked; returns the result and the
    /// baselines it moved (forgotten at once if normalization failed).
    pub(crate) fn normalize<T, E>(
        &self,
        f: impl FnOnce(&mut DeltaTracker) -> Result<T, E>,
    ) -> Result<(T, Vec<strata_ingest::DeltaKey>), E> {
        let mut tracker = self.deltas.lock();
        tracker.take_touched();
        let out = f(&mut tracker);
        let touched = tracker.take_touched();
        if out.is_err() {
            tracker.forget(&touched);
        }
        out.map(|t| (t, touched))
    }

    /// Appends a normalized batch; if the store refuses it, the baselines it moved are
    /// forgotten (no wrong increase later). Returns the samples stored.
    pub(crate) async fn store(
        &self,
        batch: &strata_engine::SampleBatch,
        touched: &[strata_ingest::DeltaKey],
    ) -> strata_engine::Result<u64> {
        match self.engine.append(batch).await {
            Ok(()) => {
                self.symbolization.notify_batch(batch);
                Ok(batch.num_samples() as u64)
            }
            Err(e) => {
                self.deltas.lock().forget(touched);
                Err(e)
            }
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
        .merge(crate::debuginfo_http::routes(app))
        .merge(crate::ui::routes())
        .nest("/api", grpc_web)
}

/// Parca's `DebuginfoService`; upload chunks of up to 16 MiB.
fn debuginfo_server(app: &Arc<App>) -> DebuginfoServiceServer<ParcaDebuginfo> {
    DebuginfoServiceServer::new(ParcaDebuginfo::new(app.clone()))
        .max_decoding_message_size(16 << 20)
}

/// Serves `router(app)` on `listener` (HTTP/1.1 and HTTP/2 without TLS) until `shutdown`
/// resolves.
pub async fn serve(
    app: Arc<App>,
    listener: TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(app))
        .with_graceful_shutdown(shutdown)
        .await
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
