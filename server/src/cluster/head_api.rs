//! The ingester's head API (`/internal/v1/heads/…`): what queriers ask an ingester about its
//! heads — partial aggregates (stack sums) or projected rows per head, tagged with the block
//! each head is flushed as; profile types, label names and values; symbols of stacks.

use axum::Json;
use axum::extract::Extension;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use strata_engine::StackId;

use super::wire::{
    HEAD_SCAN_MEDIA_TYPE, WireLabelValues, WireResolve, WireScan, WireSelection, encode_scan,
};
use crate::state::RequestTenant;
use crate::status::{Result, ServerError};

/// Most stacks one `resolve` may ask for.
const MAX_RESOLVE_STACKS: usize = 4 << 20;

/// `POST /internal/v1/heads/scan`.
pub(crate) async fn scan(
    Extension(tenant): Extension<RequestTenant>,
    Json(req): Json<WireScan>,
) -> Result<Response> {
    let request = req.request()?;
    let answer = tenant.store.engine.answer_head_scan(&request).await?;
    let body = encode_scan(&answer)?;
    Ok(([(header::CONTENT_TYPE, HEAD_SCAN_MEDIA_TYPE)], body).into_response())
}

/// `POST /internal/v1/heads/profile_types`.
pub(crate) async fn profile_types(
    Extension(tenant): Extension<RequestTenant>,
    Json(s): Json<WireSelection>,
) -> Result<Json<Vec<String>>> {
    let types = tenant.store.engine.profile_types(s.range()).await?;
    Ok(Json(types.iter().map(|t| t.to_string()).collect()))
}

/// `POST /internal/v1/heads/label_names`.
pub(crate) async fn label_names(
    Extension(tenant): Extension<RequestTenant>,
    Json(s): Json<WireSelection>,
) -> Result<Json<Vec<String>>> {
    let pt = s.profile_type()?;
    let names = tenant
        .store
        .engine
        .label_names(pt.as_ref(), &s.matchers()?, s.range())
        .await?;
    Ok(Json(names))
}

/// `POST /internal/v1/heads/label_values`.
pub(crate) async fn label_values(
    Extension(tenant): Extension<RequestTenant>,
    Json(r): Json<WireLabelValues>,
) -> Result<Json<Vec<String>>> {
    let s = &r.selection;
    let pt = s.profile_type()?;
    let values = tenant
        .store
        .engine
        .label_values(&r.name, pt.as_ref(), &s.matchers()?, s.range())
        .await?;
    Ok(Json(values))
}

/// `POST /internal/v1/heads/resolve`.
pub(crate) async fn resolve(
    Extension(tenant): Extension<RequestTenant>,
    Json(r): Json<WireResolve>,
) -> Result<Json<strata_engine::SymbolTables>> {
    if r.stack_ids.len() > MAX_RESOLVE_STACKS {
        return Err(ServerError::InvalidArgument(format!(
            "resolve asks for {} stacks; at most {MAX_RESOLVE_STACKS} at a time",
            r.stack_ids.len()
        )));
    }
    let ids: Vec<StackId> = r.stack_ids.into_iter().map(StackId).collect();
    Ok(Json(tenant.store.engine.resolve_stacks(&ids).await?))
}
