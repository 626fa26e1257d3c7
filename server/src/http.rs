//! Plain HTTP routes: health and readiness.

use std::sync::Arc;

use axum::Router;
use axum::routing::get;

use crate::app::App;

/// `/healthy` and `/ready` (the store is open once the app exists).
pub(crate) fn routes(app: Arc<App>) -> Router {
    Router::new()
        .route("/healthy", get(|| async { "ok\n" }))
        .route("/ready", get(|| async { "ready\n" }))
        .with_state(app)
}
