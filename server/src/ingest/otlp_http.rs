//! OTLP/HTTP: `POST /v1development/profiles` with an `ExportProfilesServiceRequest` as
//! `application/x-protobuf` (gzipped or not: `Content-Encoding: gzip` or a gzip body),
//! answered as the OTLP/HTTP specification says: `200` with an
//! `ExportProfilesServiceResponse`; else a `google.rpc.Status` body (code and message) with
//! `400` for bad input, `413` for a size limit, `415` for another content type, and `429` /
//! `503` with `Retry-After` when the store pushes back. The request is stored whole or not
//! at all, as over gRPC ([`super::otlp`]).

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Extension, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use prost::Message;
use strata_engine::now_ns;
use strata_proto::otlp::collector::profiles::v1development::{
    ExportProfilesServiceRequest, ExportProfilesServiceResponse,
};

use super::pyroscope::body_too_large;
use super::store::ingest;
use crate::state::{App, RequestTenant};
use crate::status::ServerError;

/// The content type of OTLP/HTTP's binary encoding.
const PROTOBUF: &str = "application/x-protobuf";

/// Seconds a client is asked to wait before retrying a request the store pushed back.
const RETRY_AFTER_SECONDS: &str = "1";

/// `google.rpc.Status`, the body of every OTLP/HTTP error (details are not sent).
#[derive(Clone, PartialEq, Message)]
struct RpcStatus {
    /// The gRPC status code.
    #[prost(int32, tag = "1")]
    code: i32,
    /// What was wrong, for a person.
    #[prost(string, tag = "2")]
    message: String,
}

/// `POST /v1development/profiles`.
pub(crate) async fn export(
    State(app): State<Arc<App>>,
    Extension(tenant): Extension<RequestTenant>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    match store(&app, &tenant, &headers, body).await {
        Ok(()) => (
            [(header::CONTENT_TYPE, PROTOBUF)],
            ExportProfilesServiceResponse {
                partial_success: None,
            }
            .encode_to_vec(),
        )
            .into_response(),
        Err(e) => error_response(&e),
    }
}

async fn store(
    app: &App,
    tenant: &RequestTenant,
    headers: &HeaderMap,
    body: Body,
) -> Result<(), ServerError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let media_type = content_type.split(';').next().unwrap_or("").trim();
    if !media_type.eq_ignore_ascii_case(PROTOBUF) {
        return Err(ServerError::UnsupportedMediaType(format!(
            "OTLP/HTTP profiles are read as {PROTOBUF} (got {content_type:?}; the JSON \
             encoding is not supported yet)"
        )));
    }
    let max = app.limits.max_body_bytes;
    let body = axum::body::to_bytes(body, max as usize)
        .await
        .map_err(|_| app.refused(body_too_large(max)))?;
    let raw = strata_ingest::decompress(&body, &app.limits).map_err(|e| app.refused(e))?;
    let request = ExportProfilesServiceRequest::decode(&*raw).map_err(|e| {
        ServerError::invalid(format!("cannot decode ExportProfilesServiceRequest: {e}"))
    })?;
    ingest(app, &tenant.store, "otlp_http", |deltas| {
        strata_ingest::otlp_export(&request, now_ns(), deltas)
    })
    .await?;
    Ok(())
}

/// The error as OTLP/HTTP answers it: the status of the one error table, a
/// `google.rpc.Status` body, and `Retry-After` on the statuses a client retries.
fn error_response(e: &ServerError) -> Response {
    let codes = e.codes();
    let body = RpcStatus {
        code: codes.grpc as i32,
        message: e.to_string(),
    }
    .encode_to_vec();
    let mut response = (codes.http, [(header::CONTENT_TYPE, PROTOBUF)], body).into_response();
    if matches!(
        codes.http,
        StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE
    ) {
        response.headers_mut().insert(
            header::RETRY_AFTER,
            HeaderValue::from_static(RETRY_AFTER_SECONDS),
        );
    }
    response
}
