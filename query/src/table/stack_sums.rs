//! [`StackSumsTable`]: one selection's samples already summed per stack within each engine scan
//! part — the partial aggregate of a merge, done by the engine on the block encoding
//! ([`ScanPart::stack_sums`]) so that DataFusion's aggregate only combines the parts. Read by
//! [`QueryEngine::merge`](crate::QueryEngine::merge) and, in SQL, in place of `samples` where
//! the [`StackSumsRule`](super::StackSumsRule) finds a per-stack sum. Its scan is a
//! [`StackSumsExec`], which distributed queries split across queriers.

use std::fmt;
use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use async_trait::async_trait;
use datafusion::catalog::Session;
use datafusion::datasource::{TableProvider, TableType};
use datafusion::error::Result as DfResult;
use datafusion::logical_expr::Expr;
use datafusion::physical_plan::ExecutionPlan;
use strata_engine::{Engine, ScanRequest, stack_sums_schema};

use super::filters::Pushdown;
use super::samples::external;
use super::stack_sums_exec::StackSumsExec;

/// `stack_id` UInt64, `value` Int64, `period` Int64: per engine scan part of one selection, one
/// row per stack with the sum of its values and its largest period. Summing `value` (and
/// taking the largest `period`) per `stack_id` over the table gives the merged profile.
#[derive(Clone)]
pub struct StackSumsTable {
    engine: Engine,
    /// What is read; `None` when nothing can match.
    pushdown: Option<Pushdown>,
}

impl fmt::Debug for StackSumsTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StackSumsTable")
            .field("pushdown", &self.pushdown)
            .finish_non_exhaustive()
    }
}

impl StackSumsTable {
    /// The table of `request`'s samples.
    pub fn new(engine: Engine, request: ScanRequest) -> Self {
        let pushdown = Pushdown {
            profile_type: Some(request.profile_type),
            range: request.range,
            matchers: request.matchers,
        };
        StackSumsTable {
            engine,
            pushdown: Some(pushdown),
        }
    }

    /// The table of the samples a [`SamplesTable`](super::SamplesTable) scan with this pushdown
    /// reads (every profile type when it names none; nothing when `None`).
    pub(crate) fn from_pushdown(engine: Engine, pushdown: Option<Pushdown>) -> Self {
        StackSumsTable { engine, pushdown }
    }
}

#[async_trait]
impl TableProvider for StackSumsTable {
    fn schema(&self) -> SchemaRef {
        stack_sums_schema()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let projection: Arc<[usize]> = match projection {
            Some(p) => p.as_slice().into(),
            None => (0..stack_sums_schema().fields().len()).collect(),
        };
        let requests = match &self.pushdown {
            Some(pushdown) => pushdown.requests(&self.engine).await.map_err(external)?,
            None => Vec::new(),
        };
        let mut parts = Vec::new();
        for request in &requests {
            // The projection only matters to `ScanPart::batches`; sums read their own columns.
            let scan = self
                .engine
                .scan_parts_without_labels(request, Some(&[4]))
                .await
                .map_err(external)?;
            parts.extend(scan.parts);
        }
        let n = state
            .config()
            .target_partitions()
            .clamp(1, parts.len().max(1));
        Ok(Arc::new(StackSumsExec::new(parts, projection, n)?))
    }
}
