//! OTLP/HTTP: `POST /v1development/profiles` with an `ExportProfilesServiceRequest` as
//! `application/x-protobuf` or `application/json` (gzipped or not: `Content-Encoding: gzip`
//! or a gzip body), answered as the OTLP/HTTP specification says, in the request's encoding:
//! `200` with an `ExportProfilesServiceResponse`; else a `google.rpc.Status` (code and
//! message) with `400` for bad input, `413` for a size limit, `415` for another content type,
//! and `429` / `503` with `Retry-After` when the store pushes back. The request is stored
//! whole or not at all, as over gRPC ([`super::otlp`]).
//!
//! JSON is proto3's JSON mapping (generated deserializers: camelCase or original field
//! names, 64-bit integers as strings or numbers, enums as names or numbers) but for one
//! rule of OTLP's: trace, span and profile ids are hex, not base64.

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
/// The content type of OTLP/HTTP's JSON encoding.
const JSON: &str = "application/json";

/// The keys of OTLP's id fields (hex in its JSON) and their sizes in bytes.
const ID_KEYS: [(&str, usize); 6] = [
    ("traceId", 16),
    ("trace_id", 16),
    ("spanId", 8),
    ("span_id", 8),
    ("profileId", 16),
    ("profile_id", 16),
];

/// How a request (and so its answer) is encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Encoding {
    Protobuf,
    Json,
}

impl Encoding {
    fn content_type(self) -> &'static str {
        match self {
            Encoding::Protobuf => PROTOBUF,
            Encoding::Json => JSON,
        }
    }
}

/// Seconds a client is asked to wait before retrying a request the store pushed back.
const RETRY_AFTER_SECONDS: &str = "1";

/// `google.rpc.Status`, the body of every OTLP/HTTP error (details are not sent).
#[derive(Clone, PartialEq, Message, serde::Serialize)]
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
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let media_type = content_type.split(';').next().unwrap_or("").trim();
    let encoding = if media_type.eq_ignore_ascii_case(PROTOBUF) {
        Encoding::Protobuf
    } else if media_type.eq_ignore_ascii_case(JSON) {
        Encoding::Json
    } else {
        let e = ServerError::UnsupportedMediaType(format!(
            "OTLP/HTTP profiles are read as {PROTOBUF} or {JSON} (got {content_type:?})"
        ));
        return error_response(&e, Encoding::Protobuf);
    };
    match store(&app, &tenant, encoding, body).await {
        Ok(()) => {
            let response = ExportProfilesServiceResponse {
                partial_success: None,
            };
            let body = match encoding {
                Encoding::Protobuf => response.encode_to_vec(),
                Encoding::Json => serde_json::to_vec(&response).unwrap_or_default(),
            };
            ([(header::CONTENT_TYPE, encoding.content_type())], body).into_response()
        }
        Err(e) => error_response(&e, encoding),
    }
}

async fn store(
    app: &App,
    tenant: &RequestTenant,
    encoding: Encoding,
    body: Body,
) -> Result<(), ServerError> {
    let max = app.limits.max_body_bytes;
    let body = axum::body::to_bytes(body, max as usize)
        .await
        .map_err(|_| app.refused(body_too_large(max)))?;
    let raw = strata_ingest::decompress(&body, &app.limits).map_err(|e| app.refused(e))?;
    let request = match encoding {
        Encoding::Protobuf => ExportProfilesServiceRequest::decode(&*raw).map_err(|e| {
            ServerError::invalid(format!("cannot decode ExportProfilesServiceRequest: {e}"))
        })?,
        Encoding::Json => decode_json(&raw)?,
    };
    ingest(app, &tenant.store, "otlp_http", |deltas| {
        strata_ingest::otlp_export(&request, now_ns(), deltas)
    })
    .await?;
    Ok(())
}

/// An `ExportProfilesServiceRequest` in OTLP's JSON. A body with id fields goes through a
/// `serde_json::Value` to turn their hex into the base64 the deserializers read; others are
/// read directly.
fn decode_json(raw: &[u8]) -> Result<ExportProfilesServiceRequest, ServerError> {
    let invalid = |e: serde_json::Error| {
        ServerError::invalid(format!(
            "cannot decode ExportProfilesServiceRequest from JSON: {e}"
        ))
    };
    let has_ids = ID_KEYS.iter().any(|(key, _)| {
        let quoted = format!("\"{key}\"");
        raw.windows(quoted.len()).any(|w| w == quoted.as_bytes())
    });
    if !has_ids {
        return serde_json::from_slice(raw).map_err(invalid);
    }
    let mut value: serde_json::Value = serde_json::from_slice(raw).map_err(invalid)?;
    hex_ids_to_base64(&mut value);
    serde_json::from_value(value).map_err(invalid)
}

/// Rewrites OTLP's hex ids (a string of twice the id's size in hex digits under one of
/// [`ID_KEYS`]) as base64, everywhere in `value`; anything else is left alone.
fn hex_ids_to_base64(value: &mut serde_json::Value) {
    use base64::Engine;
    use serde_json::Value;
    match value {
        Value::Object(map) => {
            for (key, v) in map.iter_mut() {
                let size = ID_KEYS.iter().find(|(k, _)| k == key).map(|(_, n)| *n);
                if let (Some(size), Value::String(s)) = (size, &mut *v)
                    && let Some(bytes) = hex_bytes(s, size)
                {
                    *s = base64::engine::general_purpose::STANDARD.encode(bytes);
                } else {
                    hex_ids_to_base64(v);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(hex_ids_to_base64),
        _ => {}
    }
}

/// The `size` bytes a string of `2 × size` hex digits stands for.
fn hex_bytes(s: &str, size: usize) -> Option<Vec<u8>> {
    if s.len() != 2 * size || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    (0..size)
        .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok())
        .collect()
}

/// The error as OTLP/HTTP answers it: the status of the one error table, a
/// `google.rpc.Status` body in the request's encoding, and `Retry-After` on the statuses a
/// client retries.
fn error_response(e: &ServerError, encoding: Encoding) -> Response {
    let codes = e.codes();
    let status = RpcStatus {
        code: codes.grpc as i32,
        message: e.to_string(),
    };
    let body = match encoding {
        Encoding::Protobuf => status.encode_to_vec(),
        Encoding::Json => serde_json::to_vec(&status).unwrap_or_default(),
    };
    let content_type = encoding.content_type();
    let mut response = (codes.http, [(header::CONTENT_TYPE, content_type)], body).into_response();
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_ids_become_base64_and_nothing_else_changes() {
        let mut v = serde_json::json!({
            "resourceProfiles": [{"scopeProfiles": [{"profiles": [{
                "profileId": "000102030405060708090a0b0c0d0e0f",
                "stringTable": ["0102030405060708"]
            }]}]}],
            "dictionary": {"linkTable": [
                {"traceId": "0102030405060708090A0B0C0D0E0F10", "spanId": "0102030405060708"},
                {"traceId": "AQIDBAUGBwgJCgsMDQ4PEA==", "spanId": "not hex!"}
            ]}
        });
        hex_ids_to_base64(&mut v);
        let links = &v["dictionary"]["linkTable"];
        assert_eq!(links[0]["traceId"], "AQIDBAUGBwgJCgsMDQ4PEA==");
        assert_eq!(links[0]["spanId"], "AQIDBAUGBwg=");
        // Already base64 (proto3 JSON), or not an id: left alone.
        assert_eq!(links[1]["traceId"], "AQIDBAUGBwgJCgsMDQ4PEA==");
        assert_eq!(links[1]["spanId"], "not hex!");
        let profile = &v["resourceProfiles"][0]["scopeProfiles"][0]["profiles"][0];
        assert_eq!(profile["profileId"], "AAECAwQFBgcICQoLDA0ODw==");
        assert_eq!(profile["stringTable"][0], "0102030405060708");
    }
}
