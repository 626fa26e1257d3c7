//! `GET /api/v1/debuginfo/status[?build_id=…&build_id=…]`: per build id, whether its debug
//! info was found, missing or failed and why (the reason names the fix), the files it was
//! mapped as, and its uploaded file's record. Without `build_id`, every build id seen since
//! the server started and every one with an upload. Answer: `{"enabled": bool, "build_ids":
//! [BuildIdReport…]}`; a malformed build id is a 400 `{"error": …}`.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Extension, RawQuery};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use strata_engine::{DebuginfoKind, validate_build_id};

use crate::state::RequestTenant;
use crate::status::ServerError;
use crate::symbolization::BuildIdReport;

/// `GET /api/v1/debuginfo/status`.
pub(crate) async fn status(
    Extension(tenant): Extension<RequestTenant>,
    RawQuery(query): RawQuery,
) -> Result<Response, ServerError> {
    let wanted: Vec<String> = url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .filter(|(k, _)| k == "build_id")
        .flat_map(|(_, v)| {
            v.split(',')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .collect();
    for id in &wanted {
        if let Err(e) = validate_build_id(id) {
            return Err(ServerError::invalid(e.to_string()));
        }
    }
    let sym = &tenant.store.symbolization;
    let uploads = tenant.store.engine.debuginfo().list().await?;
    // The debug info record of each build id, else its executable's.
    let mut uploaded: BTreeMap<String, strata_engine::DebuginfoMeta> = BTreeMap::new();
    for m in uploads
        .into_iter()
        .filter(|m| m.kind != DebuginfoKind::Sources)
    {
        uploaded.entry(m.build_id.clone()).or_insert(m);
    }
    let mut reports: Vec<BuildIdReport> = if wanted.is_empty() {
        let mut all: BTreeMap<String, BuildIdReport> = sym
            .reports()
            .into_iter()
            .map(|r| (r.build_id.clone(), r))
            .collect();
        for id in uploaded.keys() {
            all.entry(id.clone())
                .or_insert_with(|| BuildIdReport::unknown(id, sym.enabled()));
        }
        all.into_values().collect()
    } else {
        wanted
            .iter()
            .map(|id| {
                sym.report(id)
                    .unwrap_or_else(|| BuildIdReport::unknown(id, sym.enabled()))
            })
            .collect()
    };
    for r in &mut reports {
        r.upload = uploaded.get(&r.build_id).cloned();
    }
    Ok(Json(json!({ "enabled": sym.enabled(), "build_ids": reports })).into_response())
}
