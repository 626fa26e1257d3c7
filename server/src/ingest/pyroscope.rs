//! Pyroscope's `push.v1.PusherService/Push` (what the Pyroscope SDKs and Grafana Alloy send):
//! gRPC (content type `application/grpc…`, handed to the tonic service [`PyroscopePusher`])
//! and the Connect protocol's unary call (`application/proto` or `application/json`,
//! optionally `Content-Encoding: gzip`) on the same path.

use std::sync::Arc;

use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use prost::Message;
use strata_engine::now_ns;
use strata_proto::pyroscope::push::v1::pusher_service_server::PusherService;
use strata_proto::pyroscope::push::v1::pusher_service_server::PusherServiceServer;
use strata_proto::pyroscope::push::v1::{PushRequest, PushResponse};
use tonic::{Request as GrpcRequest, Response as GrpcResponse, Status};
use tower::ServiceExt;

use super::store::{ingest, normalize_and_store};
use crate::limits::Limit;
use crate::state::{App, RequestTenant};
use crate::status::ServerError;

/// `push.v1.PusherService`.
pub(crate) struct PyroscopePusher(pub Arc<App>);

#[tonic::async_trait]
impl PusherService for PyroscopePusher {
    async fn push(
        &self,
        request: GrpcRequest<PushRequest>,
    ) -> Result<GrpcResponse<PushResponse>, Status> {
        let app = &self.0;
        let store = app.store_of(request.extensions().get());
        ingest(app, &store, "pyroscope_grpc", |deltas| {
            strata_ingest::pyroscope_push(request.get_ref(), &app.limits, now_ns(), deltas)
        })
        .await?;
        Ok(GrpcResponse::new(PushResponse {}))
    }
}

/// The Push route.
pub(crate) async fn push(State(app): State<Arc<App>>, req: Request) -> Response {
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    if content_type.starts_with("application/grpc") {
        let svc = PusherServiceServer::new(PyroscopePusher(app.clone()))
            .max_decoding_message_size(app.limits.max_body_bytes as usize);
        return match svc.oneshot(req).await {
            Ok(response) => response.map(Body::new),
            Err(never) => match never {},
        };
    }
    let result = connect_push(&app, &content_type, req).await;
    app.counters.record(
        "pyroscope_connect",
        result.is_ok(),
        *result.as_ref().unwrap_or(&0),
    );
    match result {
        // The response uses the request's codec: an empty PushResponse.
        Ok(_) if content_type == "application/json" => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            "{}",
        )
            .into_response(),
        Ok(_) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/proto")],
            PushResponse {}.encode_to_vec(),
        )
            .into_response(),
        Err(e) => e.connect_response(),
    }
}

/// `push.v1.PushRequest` in the protobuf JSON mapping (Connect's `application/json`): field
/// names in lowerCamelCase or as declared, bytes in base64.
#[derive(serde::Deserialize)]
struct PushJson {
    #[serde(default)]
    series: Vec<SeriesJson>,
}

#[derive(serde::Deserialize)]
struct SeriesJson {
    #[serde(default)]
    labels: Vec<LabelJson>,
    #[serde(default)]
    samples: Vec<SampleJson>,
}

#[derive(serde::Deserialize)]
struct LabelJson {
    #[serde(default)]
    name: String,
    #[serde(default)]
    value: String,
}

#[derive(serde::Deserialize)]
struct SampleJson {
    #[serde(default, rename = "rawProfile", alias = "raw_profile")]
    raw_profile: String,
    #[serde(default, rename = "ID", alias = "id")]
    id: String,
}

fn push_from_json(body: &[u8]) -> Result<PushRequest, ServerError> {
    use base64::Engine as _;
    let json: PushJson = serde_json::from_slice(body)
        .map_err(|e| ServerError::invalid(format!("bad push.v1.PushRequest JSON: {e}")))?;
    let series = json
        .series
        .into_iter()
        .map(|s| {
            let samples = s
                .samples
                .into_iter()
                .map(|p| {
                    let raw_profile = base64::engine::general_purpose::STANDARD
                        .decode(p.raw_profile.as_bytes())
                        .map_err(|e| {
                            ServerError::invalid(format!("rawProfile is not base64: {e}"))
                        })?;
                    Ok(strata_proto::pyroscope::push::v1::RawSample {
                        raw_profile,
                        id: p.id,
                    })
                })
                .collect::<Result<Vec<_>, ServerError>>()?;
            Ok(strata_proto::pyroscope::push::v1::RawProfileSeries {
                labels: s
                    .labels
                    .into_iter()
                    .map(|l| strata_proto::pyroscope::types::v1::LabelPair {
                        name: l.name,
                        value: l.value,
                    })
                    .collect(),
                samples,
                annotations: Vec::new(),
            })
        })
        .collect::<Result<Vec<_>, ServerError>>()?;
    Ok(PushRequest { series })
}

async fn connect_push(app: &App, content_type: &str, req: Request) -> Result<u64, ServerError> {
    let json = match content_type {
        "application/proto" => false,
        "application/json" => true,
        other => {
            return Err(ServerError::UnsupportedMediaType(format!(
                "content type {other:?} is not supported here; send application/proto or application/json (Connect) or application/grpc"
            )));
        }
    };
    let encoding = req
        .headers()
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("identity")
        .to_owned();
    let store = app.store_of(req.extensions().get::<RequestTenant>());
    let max = app.limits.max_body_bytes as usize;
    let body = to_bytes(req.into_body(), max)
        .await
        .map_err(|_| app.refused(body_too_large(max as u64)))?;
    let raw = match encoding.as_str() {
        "identity" => std::borrow::Cow::Borrowed(&body[..]),
        "gzip" => {
            if !strata_ingest::is_gzip(&body) {
                return Err(ServerError::invalid(
                    "Content-Encoding is gzip but the body is not",
                ));
            }
            strata_ingest::decompress(&body, &app.limits).map_err(|e| app.refused(e))?
        }
        other => {
            return Err(ServerError::invalid(format!(
                "Content-Encoding {other:?} is not supported"
            )));
        }
    };
    let request = if json {
        push_from_json(&raw)?
    } else {
        PushRequest::decode(&*raw)
            .map_err(|e| ServerError::invalid(format!("bad push.v1.PushRequest protobuf: {e}")))?
    };
    normalize_and_store(app, &store, |deltas| {
        strata_ingest::pyroscope_push(&request, &app.limits, now_ns(), deltas)
    })
    .await
}

/// A body longer than `max` bytes, refused while it was read (its full size is unknown).
pub(crate) fn body_too_large(max: u64) -> ServerError {
    ServerError::limit(
        Limit::IngestBodyBytes,
        None,
        max,
        format!("body over {max} bytes (ingest.max_body_bytes)"),
    )
}
