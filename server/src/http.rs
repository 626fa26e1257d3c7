//! Plain HTTP routes: health, readiness, Pyroscope's legacy `/ingest`, `/metrics`, scrape
//! target health and the server's own CPU profile.

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};

use crate::app::App;

/// `/healthy` and `/ready` (the store is open once the app exists), `/ingest`.
pub(crate) fn routes(app: Arc<App>) -> Router {
    Router::new()
        .route("/healthy", get(|| async { "ok\n" }))
        .route("/ready", get(|| async { "ready\n" }))
        .route("/ingest", post(crate::pyroscope_ingest::ingest))
        .route("/metrics", get(crate::metrics::metrics))
        .route("/api/v1/targets", get(crate::scrape::targets))
        .route("/debug/pprof/profile", get(crate::self_profile::profile))
        .route("/push.v1.PusherService/Push", post(crate::connect::push))
        .layer(DefaultBodyLimit::max(app.limits.max_body_bytes as usize))
        .with_state(app)
}
