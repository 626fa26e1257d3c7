//! What every push front door does with a request once decoded: normalize it into a batch
//! (delta baselines included), store it in the tenant's store, and count the outcome.

use strata_engine::SampleBatch;

use crate::state::App;
use crate::status::ServerError;
use crate::tenants::TenantStore;

/// Normalizes a request with `f` and stores the batch in `store`; a limit's refusal is
/// counted under its limit. Returns the samples stored.
pub(crate) async fn normalize_and_store(
    app: &App,
    store: &TenantStore,
    f: impl FnOnce(&mut dyn strata_ingest::DeltaSource) -> strata_ingest::Result<SampleBatch>,
) -> Result<u64, ServerError> {
    let (batch, touched) = store.normalize(f).map_err(|e| app.refused(e))?;
    store
        .store(&batch, &touched)
        .await
        .map_err(|e| app.refused(e))
}

/// [`normalize_and_store`], counting the outcome under `protocol`.
pub(crate) async fn ingest(
    app: &App,
    store: &TenantStore,
    protocol: &'static str,
    f: impl FnOnce(&mut dyn strata_ingest::DeltaSource) -> strata_ingest::Result<SampleBatch>,
) -> Result<u64, ServerError> {
    let result = normalize_and_store(app, store, f).await;
    app.counters
        .record(protocol, result.is_ok(), *result.as_ref().unwrap_or(&0));
    result
}
