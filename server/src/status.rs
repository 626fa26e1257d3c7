//! [`ServerError`]: every error a front door answers with, and the one table
//! ([`ServerError::codes`]) that maps it to an HTTP status, a gRPC code and a Connect code.
//!
//! Front doors turn the engine's, ingest's and query's errors into a `ServerError` (`From`
//! impls here) and answer with it: [`IntoResponse`] for HTTP (`{"error": …}` JSON),
//! `tonic::Status::from` for gRPC, [`ServerError::connect_response`] for Connect. A limit's
//! refusal is [`ServerError::LimitExceeded`], carrying the [`Limit`]; the front door counts it
//! with [`App::refused`](crate::state::App::refused).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tonic::Code;

use crate::limits::Limit;

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The request is malformed: bad protobuf, selector, time, SQL, a missing field.
    #[error("{0}")]
    InvalidArgument(String),
    /// A configured limit refused the request.
    #[error("{message}")]
    LimitExceeded {
        /// The limit.
        limit: Limit,
        /// The value seen, when known.
        value: Option<u64>,
        /// The configured maximum.
        max: u64,
        /// What was over the limit, in words.
        message: String,
    },
    /// No token, or one the server does not know.
    #[error("{0}")]
    Unauthenticated(String),
    /// A known token of the other class (a write token reading, or a read token writing).
    #[error("{0}")]
    PermissionDenied(String),
    /// The content type is not one this route takes.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// The disk (or quota) holding the write-ahead log is full; writes resume once space is
    /// freed.
    #[error("{0}")]
    StorageFull(String),
    /// The store cannot take the request now (WAL unavailable, back-pressure, a tenant's
    /// store not opening); retrying later may succeed.
    #[error("{0}")]
    Unavailable(String),
    /// The method exists in the protocol but not in this server.
    #[error("{0}")]
    Unimplemented(String),
    /// Our fault.
    #[error("{0}")]
    Internal(String),
}

/// The gRPC metadata key (and HTTP header) naming the limit that refused a request.
pub const LIMIT_METADATA: &str = "strata-limit";

/// The gRPC metadata key on every status a handler raised from a [`ServerError`] (its value
/// the Connect code): a status without it came from tonic itself.
pub const ERROR_METADATA: &str = "strata-error";

/// A result whose error is a [`ServerError`].
pub type Result<T, E = ServerError> = std::result::Result<T, E>;

/// How one [`ServerError`] is answered on each protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Codes {
    /// The HTTP status of the HTTP/JSON API and of plain HTTP routes.
    pub http: StatusCode,
    /// The gRPC status code.
    pub grpc: Code,
    /// The Connect error code (whose HTTP status is Connect's own, [`connect_http_status`]).
    pub connect: &'static str,
}

impl ServerError {
    /// Shorthand for [`ServerError::InvalidArgument`].
    pub fn invalid(message: impl Into<String>) -> Self {
        ServerError::InvalidArgument(message.into())
    }

    /// Shorthand for [`ServerError::Internal`].
    pub fn internal(message: impl ToString) -> Self {
        ServerError::Internal(message.to_string())
    }

    /// A refusal by `limit` of `value` (over `max`), with the message `message`.
    pub fn limit(limit: Limit, value: Option<u64>, max: u64, message: impl Into<String>) -> Self {
        ServerError::LimitExceeded {
            limit,
            value,
            max,
            message: message.into(),
        }
    }

    /// The limit that refused the request, if one did.
    pub fn exceeded_limit(&self) -> Option<Limit> {
        match self {
            ServerError::LimitExceeded { limit, .. } => Some(*limit),
            _ => None,
        }
    }

    /// The one table: this error's HTTP status, gRPC code and Connect code.
    pub fn codes(&self) -> Codes {
        let (http, grpc, connect) = match self {
            ServerError::InvalidArgument(_) => (
                StatusCode::BAD_REQUEST,
                Code::InvalidArgument,
                "invalid_argument",
            ),
            ServerError::LimitExceeded { limit, .. } => (
                limit_http_status(*limit),
                Code::ResourceExhausted,
                "resource_exhausted",
            ),
            ServerError::Unauthenticated(_) => (
                StatusCode::UNAUTHORIZED,
                Code::Unauthenticated,
                "unauthenticated",
            ),
            ServerError::PermissionDenied(_) => (
                StatusCode::FORBIDDEN,
                Code::PermissionDenied,
                "permission_denied",
            ),
            ServerError::UnsupportedMediaType(_) => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                Code::InvalidArgument,
                "invalid_argument",
            ),
            ServerError::StorageFull(_) => (
                StatusCode::INSUFFICIENT_STORAGE,
                Code::ResourceExhausted,
                "resource_exhausted",
            ),
            ServerError::Unavailable(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                Code::Unavailable,
                "unavailable",
            ),
            ServerError::Unimplemented(_) => (
                StatusCode::NOT_IMPLEMENTED,
                Code::Unimplemented,
                "unimplemented",
            ),
            ServerError::Internal(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                Code::Internal,
                "internal",
            ),
        };
        Codes {
            http,
            grpc,
            connect,
        }
    }

    /// The error as a gRPC status. Its [`ERROR_METADATA`] entry (the Connect code) says a
    /// handler raised it; a limit's refusal also names its limit in [`LIMIT_METADATA`].
    pub fn to_status(&self) -> tonic::Status {
        let codes = self.codes();
        let mut status = tonic::Status::new(codes.grpc, self.to_string());
        status.metadata_mut().insert(
            ERROR_METADATA,
            tonic::metadata::MetadataValue::from_static(codes.connect),
        );
        if let Some(limit) = self.exceeded_limit() {
            status.metadata_mut().insert(
                LIMIT_METADATA,
                tonic::metadata::MetadataValue::from_static(limit.config_name()),
            );
        }
        status
    }

    /// The error as a Connect unary error: Connect's HTTP status for the code, JSON body
    /// `{"code": …, "message": …}`.
    pub fn connect_response(&self) -> Response {
        let code = self.codes().connect;
        let body = serde_json::json!({ "code": code, "message": self.to_string() }).to_string();
        (
            connect_http_status(code),
            [(header::CONTENT_TYPE, "application/json")],
            body,
        )
            .into_response()
    }

    /// The error for a request whose content type was `content_type`: gRPC's trailers-only
    /// answer for gRPC (and gRPC-web), else the HTTP/JSON answer ([`IntoResponse`]).
    pub fn response_for(&self, content_type: Option<&str>) -> Response {
        if content_type.is_some_and(|v| v.starts_with("application/grpc")) {
            return self.to_status().into_http::<axum::body::Body>();
        }
        let mut response = (
            self.codes().http,
            axum::Json(serde_json::json!({ "error": self.to_string() })),
        )
            .into_response();
        if matches!(self, ServerError::Unauthenticated(_)) {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

/// The HTTP status of a refusal by `limit`: 413 for what a push carries, 429 for tenants, 400
/// for a query asking for too much.
fn limit_http_status(limit: Limit) -> StatusCode {
    match limit {
        Limit::Tenants => StatusCode::TOO_MANY_REQUESTS,
        Limit::QueryRange | Limit::QueryResultNodes => StatusCode::BAD_REQUEST,
        Limit::IngestBodyBytes
        | Limit::IngestDecompressedBytes
        | Limit::BatchSamples
        | Limit::LabelsPerSeries
        | Limit::LabelNameBytes
        | Limit::LabelValueBytes
        | Limit::WalRecordBytes
        | Limit::HeadBytes
        | Limit::HeadSeries => StatusCode::PAYLOAD_TOO_LARGE,
    }
}

/// The HTTP status the Connect protocol gives an error code.
pub fn connect_http_status(code: &str) -> StatusCode {
    match code {
        "invalid_argument" | "failed_precondition" | "out_of_range" => StatusCode::BAD_REQUEST,
        "unauthenticated" => StatusCode::UNAUTHORIZED,
        "permission_denied" => StatusCode::FORBIDDEN,
        "not_found" => StatusCode::NOT_FOUND,
        "already_exists" | "aborted" => StatusCode::CONFLICT,
        "resource_exhausted" => StatusCode::TOO_MANY_REQUESTS,
        "unimplemented" => StatusCode::NOT_IMPLEMENTED,
        "unavailable" => StatusCode::SERVICE_UNAVAILABLE,
        "deadline_exceeded" => StatusCode::GATEWAY_TIMEOUT,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// An engine error as a gRPC status, through the table.
pub fn engine_status(e: strata_engine::Error) -> tonic::Status {
    ServerError::from(e).to_status()
}

impl IntoResponse for ServerError {
    fn into_response(self) -> Response {
        self.response_for(None)
    }
}

impl From<ServerError> for tonic::Status {
    fn from(e: ServerError) -> Self {
        e.to_status()
    }
}

impl From<strata_engine::Error> for ServerError {
    fn from(e: strata_engine::Error) -> Self {
        use strata_engine::Error as E;
        match &e {
            E::LimitExceeded { limit, value, max } => match Limit::from_config_name(limit) {
                Some(l) => ServerError::limit(l, Some(*value), *max, e.to_string()),
                None => ServerError::Internal(e.to_string()),
            },
            E::DiskFull { .. } => ServerError::StorageFull(e.to_string()),
            E::InvalidBatch { .. } | E::InvalidLabels { .. } | E::InvalidProfileType { .. } => {
                ServerError::InvalidArgument(e.to_string())
            }
            E::WalUnavailable { .. }
            | E::Backpressure { .. }
            | E::HeadUnavailable { .. }
            | E::CatalogConflict { .. } => ServerError::Unavailable(e.to_string()),
            E::ReadOnly { .. } => ServerError::Unimplemented(e.to_string()),
            E::InvalidMatcher { .. } => ServerError::InvalidArgument(e.to_string()),
            _ => ServerError::Internal(e.to_string()),
        }
    }
}

impl From<strata_ingest::Error> for ServerError {
    fn from(e: strata_ingest::Error) -> Self {
        use strata_ingest::Error as E;
        match e {
            E::BodyTooLarge { size, max } => {
                let message = e.to_string();
                ServerError::limit(Limit::IngestBodyBytes, Some(size), max, message)
            }
            E::DecompressedTooLarge { max } => {
                let message = e.to_string();
                ServerError::limit(Limit::IngestDecompressedBytes, None, max, message)
            }
            E::Engine(e) => e.into(),
            other => ServerError::InvalidArgument(other.to_string()),
        }
    }
}

/// Whether a DataFusion error is the caller's (bad SQL, unknown table or column, an unsupported
/// construct, a bad table-function argument) rather than ours: decided by the root error's kind.
pub fn is_caller_error(e: &datafusion::error::DataFusionError) -> bool {
    use datafusion::error::DataFusionError as D;
    matches!(
        e.find_root(),
        D::Plan(_) | D::SQL(..) | D::SchemaError(..) | D::NotImplemented(_)
    )
}

/// What [`strata_engine::Error::HeadUnavailable`] says, however it travelled.
const HEAD_UNAVAILABLE: &str = "did not answer for its recent data";

/// The engine error at the root of a DataFusion error, if that is what it is.
fn engine_error_in(e: &datafusion::error::DataFusionError) -> Option<&strata_engine::Error> {
    match e.find_root() {
        datafusion::error::DataFusionError::External(inner) => {
            inner.downcast_ref::<strata_engine::Error>()
        }
        _ => None,
    }
}

impl From<strata_query::Error> for ServerError {
    fn from(e: strata_query::Error) -> Self {
        use strata_query::Error as E;
        match e {
            E::Engine(e) => e.into(),
            // An engine error inside a plan (an ingester that did not answer, say) is answered
            // as the engine's own.
            E::DataFusion(e) if engine_error_in(&e).is_some() => {
                let inner = engine_error_in(&e).expect("checked");
                match inner {
                    strata_engine::Error::HeadUnavailable { .. } => {
                        ServerError::Unavailable(inner.to_string())
                    }
                    _ => ServerError::Internal(e.strip_backtrace()),
                }
            }
            E::DataFusion(e) if is_caller_error(&e) => {
                ServerError::InvalidArgument(e.strip_backtrace())
            }
            // From another querier (a distributed task), the engine's error arrives as text.
            E::DataFusion(e) if e.to_string().contains(HEAD_UNAVAILABLE) => {
                ServerError::Unavailable(e.strip_backtrace())
            }
            E::DataFusion(e) => ServerError::Internal(e.strip_backtrace()),
            other => ServerError::InvalidArgument(other.to_string()),
        }
    }
}

impl From<crate::tenants::TenantError> for ServerError {
    fn from(e: crate::tenants::TenantError) -> Self {
        use crate::tenants::TenantError as E;
        match e {
            E::Invalid(m) => ServerError::InvalidArgument(m),
            E::TooMany { max } => {
                let message = e.to_string();
                ServerError::limit(Limit::Tenants, None, max as u64, message)
            }
            E::Open(m) => ServerError::Unavailable(m),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The table, row by row: every variant's HTTP status, gRPC code and Connect code.
    #[test]
    fn every_error_maps_to_one_code_per_protocol() {
        let limit = |l| ServerError::limit(l, Some(2), 1, "over");
        let cases: Vec<(ServerError, u16, Code, &str)> = vec![
            (
                ServerError::invalid("x"),
                400,
                Code::InvalidArgument,
                "invalid_argument",
            ),
            (
                limit(Limit::IngestBodyBytes),
                413,
                Code::ResourceExhausted,
                "resource_exhausted",
            ),
            (
                limit(Limit::HeadSeries),
                413,
                Code::ResourceExhausted,
                "resource_exhausted",
            ),
            (
                limit(Limit::Tenants),
                429,
                Code::ResourceExhausted,
                "resource_exhausted",
            ),
            (
                limit(Limit::QueryRange),
                400,
                Code::ResourceExhausted,
                "resource_exhausted",
            ),
            (
                ServerError::Unauthenticated("x".into()),
                401,
                Code::Unauthenticated,
                "unauthenticated",
            ),
            (
                ServerError::PermissionDenied("x".into()),
                403,
                Code::PermissionDenied,
                "permission_denied",
            ),
            (
                ServerError::UnsupportedMediaType("x".into()),
                415,
                Code::InvalidArgument,
                "invalid_argument",
            ),
            (
                ServerError::StorageFull("x".into()),
                507,
                Code::ResourceExhausted,
                "resource_exhausted",
            ),
            (
                ServerError::Unavailable("x".into()),
                503,
                Code::Unavailable,
                "unavailable",
            ),
            (
                ServerError::Unimplemented("x".into()),
                501,
                Code::Unimplemented,
                "unimplemented",
            ),
            (ServerError::internal("x"), 500, Code::Internal, "internal"),
        ];
        for (e, http, grpc, connect) in cases {
            let codes = e.codes();
            assert_eq!(codes.http.as_u16(), http, "{e:?}");
            assert_eq!(codes.grpc, grpc, "{e:?}");
            assert_eq!(codes.connect, connect, "{e:?}");
            assert_eq!(e.to_status().code(), grpc);
            assert_eq!(e.to_status().message(), e.to_string());
            assert_eq!(
                e.connect_response().status(),
                connect_http_status(connect),
                "{e:?}"
            );
        }
    }

    #[test]
    fn engine_and_ingest_limits_keep_their_limit_and_value() {
        let e: ServerError = strata_engine::Error::LimitExceeded {
            limit: "head.max_series",
            value: 11,
            max: 10,
        }
        .into();
        assert!(matches!(
            e,
            ServerError::LimitExceeded {
                limit: Limit::HeadSeries,
                value: Some(11),
                max: 10,
                ..
            }
        ));
        let e: ServerError = strata_ingest::Error::BodyTooLarge { size: 9, max: 8 }.into();
        assert_eq!(e.exceeded_limit(), Some(Limit::IngestBodyBytes));
        let unknown: ServerError = strata_engine::Error::LimitExceeded {
            limit: "no.such_limit",
            value: 1,
            max: 0,
        }
        .into();
        assert!(matches!(unknown, ServerError::Internal(_)), "{unknown:?}");
    }

    #[test]
    fn every_limit_has_a_config_name_that_maps_back() {
        for l in Limit::ALL {
            assert_eq!(Limit::from_config_name(l.config_name()), Some(l));
        }
    }
}
