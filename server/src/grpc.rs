//! The push gRPC services: Parca's `WriteRaw` and Pyroscope's `Push`.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use strata_proto::parca::profile_store_service_server::ProfileStoreService;
use strata_proto::parca::{WriteRawRequest, WriteRawResponse};
use strata_proto::pyroscope::push::v1::pusher_service_server::PusherService;
use strata_proto::pyroscope::push::v1::{PushRequest, PushResponse};
use tonic::{Request, Response, Status};

use crate::app::App;

pub(crate) fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

/// A gRPC status that says what was wrong: bad input is `InvalidArgument`, a limit
/// `ResourceExhausted`, a store that cannot take writes `Unavailable`.
pub(crate) fn ingest_status(e: strata_ingest::Error) -> Status {
    use strata_ingest::Error as E;
    match e {
        E::BodyTooLarge { .. } | E::DecompressedTooLarge { .. } => {
            Status::resource_exhausted(e.to_string())
        }
        E::Engine(e) => engine_status(e),
        other => Status::invalid_argument(other.to_string()),
    }
}

pub(crate) fn engine_status(e: strata_engine::Error) -> Status {
    use strata_engine::Error as E;
    match e {
        E::LimitExceeded { .. } => Status::resource_exhausted(e.to_string()),
        E::InvalidBatch { .. } | E::InvalidLabels { .. } | E::InvalidProfileType { .. } => {
            Status::invalid_argument(e.to_string())
        }
        E::WalUnavailable { .. } => Status::unavailable(e.to_string()),
        other => Status::internal(other.to_string()),
    }
}

/// `parca.profilestore.v1alpha1.ProfileStoreService`.
pub(crate) struct ParcaProfileStore(pub Arc<App>);

#[tonic::async_trait]
impl ProfileStoreService for ParcaProfileStore {
    async fn write_raw(
        &self,
        request: Request<WriteRawRequest>,
    ) -> Result<Response<WriteRawResponse>, Status> {
        let app = &self.0;
        let result = async {
            let (batch, touched) = app
                .normalize(|deltas| {
                    strata_ingest::parca_write_raw(request.get_ref(), &app.limits, now_ns(), deltas)
                })
                .map_err(ingest_status)?;
            app.store(&batch, &touched).await.map_err(engine_status)
        }
        .await;
        app.counters
            .record("parca_grpc", result.is_ok(), *result.as_ref().unwrap_or(&0));
        result.map(|_| Response::new(WriteRawResponse {}))
    }
}

/// `push.v1.PusherService`.
pub(crate) struct PyroscopePusher(pub Arc<App>);

#[tonic::async_trait]
impl PusherService for PyroscopePusher {
    async fn push(&self, request: Request<PushRequest>) -> Result<Response<PushResponse>, Status> {
        let app = &self.0;
        let result = async {
            let (batch, touched) = app
                .normalize(|deltas| {
                    strata_ingest::pyroscope_push(request.get_ref(), &app.limits, now_ns(), deltas)
                })
                .map_err(ingest_status)?;
            app.store(&batch, &touched).await.map_err(engine_status)
        }
        .await;
        app.counters.record(
            "pyroscope_grpc",
            result.is_ok(),
            *result.as_ref().unwrap_or(&0),
        );
        result.map(|_| Response::new(PushResponse {}))
    }
}
