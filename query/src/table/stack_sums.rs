//! [`StackSumsTable`]: one selection's samples already summed per stack within each engine scan
//! part — the partial aggregate of a merge, done by the engine on the block encoding
//! ([`ScanPart::stack_sums`]) so that DataFusion's aggregate only combines the parts.

use std::fmt;
use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use async_trait::async_trait;
use datafusion::catalog::Session;
use datafusion::datasource::{TableProvider, TableType};
use datafusion::error::Result as DfResult;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::Expr;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::streaming::PartitionStream;
use futures::{StreamExt, stream};
use strata_engine::{Engine, ScanPart, ScanRequest, stack_sums_schema};

use super::samples::{balance, external, streaming_exec};

/// `stack_id` UInt64, `value` Int64, `period` Int64: per engine scan part of one request, one
/// row per stack with the sum of its values and its largest period. Summing `value` (and
/// taking the largest `period`) per `stack_id` over the table gives the merged profile.
#[derive(Clone)]
pub struct StackSumsTable {
    engine: Engine,
    request: ScanRequest,
}

impl fmt::Debug for StackSumsTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StackSumsTable")
            .field("request", &self.request)
            .finish_non_exhaustive()
    }
}

impl StackSumsTable {
    /// The table of `request`'s samples.
    pub fn new(engine: Engine, request: ScanRequest) -> Self {
        StackSumsTable { engine, request }
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
        limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let projection: Arc<[usize]> = match projection {
            Some(p) => p.as_slice().into(),
            None => (0..stack_sums_schema().fields().len()).collect(),
        };
        let schema = Arc::new(stack_sums_schema().project(&projection)?);
        // The projection only matters to `ScanPart::batches`; sums read their own columns.
        let parts = self
            .engine
            .scan_parts(&self.request, Some(&[4]))
            .map_err(external)?
            .parts
            .into_iter()
            .map(|p| (p, ()))
            .collect();
        let partitions: Vec<Arc<dyn PartitionStream>> =
            balance(parts, state.config().target_partitions())
                .into_iter()
                .map(|parts| -> Arc<dyn PartitionStream> {
                    Arc::new(StackSumsPartition {
                        parts: parts.into_iter().map(|(p, ())| p).collect(),
                        schema: schema.clone(),
                        projection: projection.clone(),
                    })
                })
                .collect();
        streaming_exec(schema, partitions, limit)
    }
}

/// One partition: some parts, each summed in turn.
struct StackSumsPartition {
    parts: Vec<ScanPart>,
    schema: SchemaRef,
    projection: Arc<[usize]>,
}

impl fmt::Debug for StackSumsPartition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StackSumsPartition")
            .field("parts", &self.parts.len())
            .finish_non_exhaustive()
    }
}

impl PartitionStream for StackSumsPartition {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn execute(&self, _ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
        let projection = self.projection.clone();
        let batches = stream::iter(self.parts.clone()).then(move |part| {
            let projection = projection.clone();
            async move {
                Ok(part
                    .stack_sums()
                    .await
                    .map_err(external)?
                    .project(&projection)?)
            }
        });
        Box::pin(RecordBatchStreamAdapter::new(self.schema.clone(), batches))
    }
}
