//! `POST /ingester/flush`: flushes every open tenant's head into blocks now (as Cortex and
//! Mimir ingesters do before a scale-down or an upgrade); answers with the blocks written.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use crate::state::App;
use crate::status::{Result, ServerError};

/// `POST /ingester/flush`.
pub(crate) async fn flush(State(app): State<Arc<App>>) -> Result<Json<Value>> {
    let mut blocks = Vec::new();
    for store in app.tenants.open_stores() {
        if let Some(meta) = store.engine.flush().await.map_err(ServerError::from)? {
            blocks.push(json!({
                "tenant": store.id,
                "block": meta.id,
                "samples": meta.num_samples,
            }));
        }
    }
    Ok(Json(json!({ "blocks": blocks })))
}
