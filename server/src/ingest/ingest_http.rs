//! Pyroscope's legacy `POST /ingest?name=app.cpu{k=v}&from=&until=&format=&sampleRate=&spyName=`
//! with a raw pprof body, folded text (`format=folded`, the default), or a `multipart/form-data`
//! body whose `profile` part is a pprof (what Pyroscope's Go and Java agents send; the
//! `prev_profile` and `sample_type_config` parts are not used).
//! The application name becomes the `service_name` label, as Pyroscope does.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Extension, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use strata_engine::{Labels, ProfileType, SampleBatchBuilder};
use strata_ingest::{
    AppName, ProfileSource, decompress, folded_into, normalize_with_deltas, parse_app_name,
    parse_folded,
};

use super::pyroscope::body_too_large;
use crate::state::{App, RequestTenant};
use crate::status::ServerError;
use crate::tenants::TenantStore;

/// The `__name__` Pyroscope gives a legacy profile kind.
fn name_for_kind(kind: &str) -> &str {
    match kind {
        "cpu" | "itimer" | "wall" => "process_cpu",
        "alloc_objects" | "alloc_space" | "inuse_objects" | "inuse_space" => "memory",
        "goroutine" | "goroutines" => "goroutine",
        "mutex_count" | "mutex_duration" => "mutex",
        "block_count" | "block_duration" => "block",
        other => other,
    }
}

fn bad(message: impl ToString) -> ServerError {
    ServerError::invalid(message.to_string())
}

fn labels_of(app: &AppName, spy: Option<&String>) -> Vec<(String, String)> {
    let mut labels: Vec<(String, String)> = app
        .labels
        .iter()
        .filter(|(k, _)| k != "service_name")
        .cloned()
        .collect();
    labels.push(("service_name".into(), app.service_name.clone()));
    if let Some(spy) = spy {
        labels.push(("pyroscope_spy".into(), spy.clone()));
    }
    labels
}

/// `POST /ingest`.
pub(crate) async fn ingest(
    State(app): State<Arc<App>>,
    Extension(tenant): Extension<RequestTenant>,
    Query(params): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Result<StatusCode, ServerError> {
    let max = app.limits.max_body_bytes;
    let body = axum::body::to_bytes(body, max as usize)
        .await
        .map_err(|_| app.refused(body_too_large(max)))?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let result = if content_type.starts_with("multipart/form-data") {
        match profile_part(content_type, body).await {
            Ok(profile) => {
                let mut params = params.clone();
                params.insert("format".into(), "pprof".into());
                store(&app, &tenant.store, &params, &profile).await
            }
            Err(e) => Err(e),
        }
    } else {
        store(&app, &tenant.store, &params, &body).await
    };
    app.counters.record(
        "pyroscope_ingest",
        result.is_ok(),
        *result.as_ref().unwrap_or(&0),
    );
    result.map(|_| StatusCode::OK)
}

/// Parses and stores one `/ingest` body; returns the samples stored.
async fn store(
    app: &App,
    tenant: &TenantStore,
    params: &HashMap<String, String>,
    body: &[u8],
) -> Result<u64, ServerError> {
    let name = params
        .get("name")
        .ok_or_else(|| bad("missing query parameter name"))?;
    let app_name = parse_app_name(name).map_err(bad)?;
    let kind = app_name.kind.clone().unwrap_or_else(|| "cpu".into());
    let seconds = |key: &str| -> Result<Option<i64>, ServerError> {
        params
            .get(key)
            .map(|v| {
                v.parse::<i64>()
                    .map_err(|_| bad(format!("{key}={v:?} is not a number of seconds")))
            })
            .transpose()
    };
    let now_s = strata_engine::now_ns() / 1_000_000_000;
    let from = seconds("from")?.unwrap_or(now_s);
    let until = seconds("until")?.unwrap_or(from).max(from);
    let labels = labels_of(&app_name, params.get("spyName"));
    let refused = |e: strata_ingest::Error| app.refused(e);
    let raw = decompress(body, &app.limits).map_err(refused)?;
    let format = params.get("format").map(String::as_str).unwrap_or("folded");
    let mut b = SampleBatchBuilder::new();
    let mut touched = Vec::new();
    match format {
        "pprof" => {
            let profile = strata_ingest::decode_pprof(&raw, &app.limits).map_err(refused)?;
            let mut with_name = labels.clone();
            with_name.push(("__name__".into(), name_for_kind(&kind).into()));
            let source = ProfileSource::from_labels(with_name, from.saturating_mul(1_000_000_000))
                .map_err(bad)?;
            let ((), moved) = tenant
                .normalize(|deltas| normalize_with_deltas(&profile, &source, deltas, &mut b))
                .map_err(bad)?;
            touched = moved;
        }
        "folded" => {
            let text = std::str::from_utf8(&raw).map_err(|_| bad("folded body is not UTF-8"))?;
            let stacks = parse_folded(text).map_err(bad)?;
            let sample_rate: i64 =
                match params.get("sampleRate") {
                    Some(v) => v.parse().ok().filter(|r| *r > 0).ok_or_else(|| {
                        bad(format!("sampleRate={v:?} is not a positive integer"))
                    })?,
                    None => 100,
                };
            let units = params.get("units").map(String::as_str).unwrap_or("samples");
            let pt = if name_for_kind(&kind) == "process_cpu" {
                ProfileType::new(
                    "process_cpu",
                    "samples",
                    "count",
                    "cpu",
                    "nanoseconds",
                    true,
                )
            } else {
                ProfileType::new(name_for_kind(&kind), &kind, units, &kind, units, false)
            }
            .map_err(bad)?;
            let labels = Labels::new(labels).map_err(bad)?;
            folded_into(
                &stacks,
                &pt,
                labels,
                from.saturating_mul(1_000_000_000),
                (until - from).saturating_mul(1_000_000_000),
                1_000_000_000 / sample_rate,
                &mut b,
            );
        }
        other => {
            return Err(bad(format!(
                "format={other:?} is not supported (pprof, folded)"
            )));
        }
    }
    let batch = b.build().map_err(bad)?;
    tenant
        .store(&batch, &touched)
        .await
        .map_err(|e| app.refused(e))
}

/// The `profile` part of a multipart body.
async fn profile_part(content_type: &str, body: Bytes) -> Result<Bytes, ServerError> {
    let boundary = multer::parse_boundary(content_type)
        .map_err(|e| bad(format!("bad multipart content type: {e}")))?;
    let stream = futures::stream::once(async move { Ok::<_, std::io::Error>(body) });
    let mut form = multer::Multipart::new(stream, boundary);
    while let Some(field) = form
        .next_field()
        .await
        .map_err(|e| bad(format!("bad multipart body: {e}")))?
    {
        if field.name() == Some("profile") {
            return field
                .bytes()
                .await
                .map_err(|e| bad(format!("bad multipart body: {e}")));
        }
    }
    Err(bad("multipart body has no profile part"))
}
