//! Parca's `parca.profilestore.v1alpha1.ProfileStoreService/WriteRaw` (what Parca's agent
//! and `strata agent` send).

use std::sync::Arc;

use strata_engine::now_ns;
use strata_proto::parca::profile_store_service_server::ProfileStoreService;
use strata_proto::parca::{WriteRawRequest, WriteRawResponse};
use tonic::{Request, Response, Status};

use super::store::ingest;
use crate::state::App;

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
