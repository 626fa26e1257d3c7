//! OTLP's `opentelemetry.proto.collector.profiles.v1development.ProfilesService/Export`
//! over gRPC.

use std::sync::Arc;

use strata_engine::now_ns;
use strata_proto::otlp::collector::profiles::v1development::profiles_service_server::ProfilesService;
use strata_proto::otlp::collector::profiles::v1development::{
    ExportProfilesServiceRequest, ExportProfilesServiceResponse,
};
use tonic::{Request, Response, Status};

use super::store::ingest;
use crate::state::App;

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
