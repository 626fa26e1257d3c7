//! The push gRPC services: Parca's `WriteRaw`, Pyroscope's `Push` and OTLP's profiles `Export`.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use strata_engine::SampleBatch;
use strata_proto::otlp::collector::profiles::v1development::profiles_service_server::ProfilesService;
use strata_proto::otlp::collector::profiles::v1development::{
    ExportProfilesServiceRequest, ExportProfilesServiceResponse,
};
use strata_proto::parca::profile_store_service_server::ProfileStoreService;
use strata_proto::parca::{WriteRawRequest, WriteRawResponse};
use strata_proto::pyroscope::push::v1::pusher_service_server::PusherService;
use strata_proto::pyroscope::push::v1::{PushRequest, PushResponse};
use tonic::{Request, Response, Status};

use crate::app::App;
use crate::tenants::TenantStore;

pub(crate) fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

/// A gRPC status that says what was wrong: bad input is `InvalidArgument`, a limit or a full
/// disk `ResourceExhausted`, a store that cannot take writes `Unavailable`.
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
        // A full disk is a resource exhausted (gRPC's words: "perhaps the entire file system
        // is out of space"); the message names the file and says writes resume once space
        // is freed.
        E::LimitExceeded { .. } | E::DiskFull { .. } => Status::resource_exhausted(e.to_string()),
        E::InvalidBatch { .. } | E::InvalidLabels { .. } | E::InvalidProfileType { .. } => {
            Status::invalid_argument(e.to_string())
        }
        E::WalUnavailable { .. } | E::Backpressure { .. } => Status::unavailable(e.to_string()),
        other => Status::internal(other.to_string()),
    }
}

/// Normalizes a request with `f` and stores the batch in `store`; a limit's refusal is
/// counted under its name. Returns the samples stored.
pub(crate) async fn normalize_and_store(
    app: &App,
    store: &TenantStore,
    f: impl FnOnce(&mut strata_ingest::DeltaTracker) -> strata_ingest::Result<SampleBatch>,
) -> Result<u64, Status> {
    let (batch, touched) = store.normalize(f).map_err(|e| {
        app.limit_counters.count_ingest_error(&e);
        ingest_status(e)
    })?;
    store.store(&batch, &touched).await.map_err(|e| {
        app.limit_counters.count_engine_error(&e);
        engine_status(e)
    })
}

/// [`normalize_and_store`], counting the outcome under `protocol`.
async fn ingest(
    app: &App,
    store: &TenantStore,
    protocol: &'static str,
    f: impl FnOnce(&mut strata_ingest::DeltaTracker) -> strata_ingest::Result<SampleBatch>,
) -> Result<u64, Status> {
    let result = normalize_and_store(app, store, f).await;
    app.counters
        .record(protocol, result.is_ok(), *result.as_ref().unwrap_or(&0));
    result
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
        let store = app
            .store_named(request.extensions().get(), &request.get_ref().tenant)
            .await?;
        ingest(app, &store, "parca_grpc", |deltas| {
            strata_ingest::parca_write_raw(request.get_ref(), &app.limits, now_ns(), deltas)
        })
        .await?;
        Ok(Response::new(WriteRawResponse {}))
    }
}

/// `push.v1.PusherService`.
pub(crate) struct PyroscopePusher(pub Arc<App>);

#[tonic::async_trait]
impl PusherService for PyroscopePusher {
    async fn push(&self, request: Request<PushRequest>) -> Result<Response<PushResponse>, Status> {
        let app = &self.0;
        let store = app.store_of(request.extensions().get());
        ingest(app, &store, "pyroscope_grpc", |deltas| {
            strata_ingest::pyroscope_push(request.get_ref(), &app.limits, now_ns(), deltas)
        })
        .await?;
        Ok(Response::new(PushResponse {}))
    }
}

/// `opentelemetry.proto.collector.profiles.v1development.ProfilesService`.
pub(crate) struct OtlpProfiles(pub Arc<App>);

#[tonic::async_trait]
impl ProfilesService for OtlpProfiles {
    async fn export(
        &self,
        request: Request<ExportProfilesServiceRequest>,
    ) -> Result<Response<ExportProfilesServiceResponse>, Status> {
        let app = &self.0;
        let store = app.store_of(request.extensions().get());
        ingest(app, &store, "otlp_grpc", |deltas| {
            strata_ingest::otlp_export(request.get_ref(), now_ns(), deltas)
        })
        .await?;
        // All or nothing: a refused request is an error status, so there is never a partial
        // success to report.
        Ok(Response::new(ExportProfilesServiceResponse {
            partial_success: None,
        }))
    }
}
