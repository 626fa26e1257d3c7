//! [`StackSumsExec`]: the leaf of a merge — engine scan parts, each summed per stack — as an
//! execution plan that can travel: [`StackSumsCodec`] encodes it as the parts' descriptors
//! ([`PartDesc`]), and a querier that decodes it reads them from its own engine (found in the
//! session as an [`EngineExt`]), so distributed queries
//! ([`crate::distributed`]) run each part on the querier that owns its block.

use std::fmt;
use std::sync::Arc;

use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{Result as DfResult, exec_err, internal_err};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::{EquivalenceProperties, Partitioning, PhysicalExpr};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties};
use datafusion_proto::physical_plan::{PhysicalExtensionCodec, PhysicalProtoConverterExtension};
use futures::{StreamExt, stream};
use serde::{Deserialize, Serialize};
use strata_engine::{Engine, PartDesc, ScanPart, stack_sums_schema};

use super::samples::external;

/// The session's engine (a [`SessionConfig`](datafusion::prelude::SessionConfig) extension):
/// where a decoded [`StackSumsExec`] reads its parts.
#[derive(Clone)]
pub struct EngineExt(pub Engine);

impl fmt::Debug for EngineExt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("EngineExt")
    }
}

/// One part of the leaf: the engine's part (in the planning process) and its descriptor (when
/// another process can read it).
#[derive(Clone)]
pub(crate) struct LeafPart {
    part: Option<ScanPart>,
    desc: Option<PartDesc>,
}

impl LeafPart {
    fn estimated_rows(&self) -> u64 {
        match (&self.part, &self.desc) {
            (Some(p), _) => p.estimated_rows(),
            (None, Some(d)) => d.estimated_rows(),
            (None, None) => 0,
        }
    }

    /// Whether it is the ingesters' heads.
    pub(crate) fn is_remote_heads(&self) -> bool {
        matches!(self.desc, Some(PartDesc::RemoteHeads { .. }))
    }

    /// What routes it ([`PartDesc::route_key`]); local-only parts have none.
    pub(crate) fn route_key(&self) -> Option<&str> {
        self.desc.as_ref().map(PartDesc::route_key)
    }
}

/// The leaf: parts spread over partitions, each partition summing its parts in turn.
#[derive(Clone)]
pub struct StackSumsExec {
    parts: Arc<[LeafPart]>,
    /// Per output partition, indexes into `parts`.
    partitions: Arc<[Vec<usize>]>,
    /// Columns of [`stack_sums_schema`] returned.
    projection: Arc<[usize]>,
    /// The worker this variant was planned for (routing; not encoded).
    pub(crate) preferred_url: Option<url::Url>,
    props: Arc<PlanProperties>,
}

impl fmt::Debug for StackSumsExec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StackSumsExec")
            .field("parts", &self.parts.len())
            .field("partitions", &self.partitions.len())
            .finish_non_exhaustive()
    }
}

impl StackSumsExec {
    /// The engine's `parts` in `n` partitions (balanced by estimated rows).
    pub(crate) fn new(parts: Vec<ScanPart>, projection: Arc<[usize]>, n: usize) -> DfResult<Self> {
        let parts = parts
            .into_iter()
            .map(|p| LeafPart {
                desc: p.descriptor(),
                part: Some(p),
            })
            .collect();
        Self::from_parts(parts, projection, n)
    }

    pub(crate) fn from_parts(
        parts: Vec<LeafPart>,
        projection: Arc<[usize]>,
        n: usize,
    ) -> DfResult<Self> {
        let n = n.max(1);
        let mut order: Vec<usize> = (0..parts.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(parts[i].estimated_rows()));
        let mut load = vec![0u64; n];
        let mut partitions = vec![Vec::new(); n];
        for i in order {
            let p = (0..n).min_by_key(|&p| load[p]).expect("n >= 1");
            load[p] += parts[i].estimated_rows().max(1);
            partitions[p].push(i);
        }
        let schema = Arc::new(stack_sums_schema().project(&projection)?);
        let props = Arc::new(PlanProperties::new(
            EquivalenceProperties::new(schema),
            Partitioning::UnknownPartitioning(n),
            EmissionType::Incremental,
            Boundedness::Bounded,
        ));
        Ok(StackSumsExec {
            parts: parts.into(),
            partitions: partitions.into(),
            projection,
            preferred_url: None,
            props,
        })
    }

    pub(crate) fn parts(&self) -> &[LeafPart] {
        &self.parts
    }

    pub(crate) fn projection(&self) -> &Arc<[usize]> {
        &self.projection
    }
}

impl DisplayAs for StackSumsExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(
            f,
            "StackSumsExec: partitions={}, parts={}",
            self.partitions.len(),
            self.parts.len()
        )
    }
}

impl ExecutionPlan for StackSumsExec {
    fn name(&self) -> &str {
        "StackSumsExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.props
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        Vec::new()
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> DfResult<TreeNodeRecursion>,
    ) -> DfResult<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        if !children.is_empty() {
            return internal_err!("StackSumsExec has no children");
        }
        Ok(self)
    }

    fn execute(
        &self,
        partition: usize,
        ctx: Arc<TaskContext>,
    ) -> DfResult<SendableRecordBatchStream> {
        let Some(indexes) = self.partitions.get(partition) else {
            return exec_err!("StackSumsExec: partition {partition} out of range");
        };
        let engine = ctx
            .session_config()
            .get_extension::<EngineExt>()
            .map(|e| e.0.clone());
        let parts: Vec<LeafPart> = indexes.iter().map(|&i| self.parts[i].clone()).collect();
        let projection = self.projection.clone();
        let batches = stream::iter(parts).then(move |leaf| {
            let (engine, projection) = (engine.clone(), projection.clone());
            async move {
                let part = match (leaf.part, leaf.desc, engine) {
                    (Some(p), _, _) => p,
                    (None, Some(d), Some(e)) => {
                        crate::distributed::count_part_read_for_another();
                        e.part(&d, None).await.map_err(external)?
                    }
                    (None, Some(_), None) => {
                        return exec_err!("StackSumsExec: this session has no engine");
                    }
                    (None, None, _) => return internal_err!("StackSumsExec: an empty part"),
                };
                Ok(part
                    .stack_sums()
                    .await
                    .map_err(external)?
                    .project(&projection)?)
            }
        });
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            self.schema(),
            batches,
        )))
    }
}

/// [`StackSumsExec`] on the wire.
#[derive(Serialize, Deserialize)]
struct WireLeaf {
    parts: Vec<PartDesc>,
    projection: Vec<usize>,
    partitions: usize,
}

/// Encodes [`StackSumsExec`] for the other queriers (register on the coordinator and in every
/// worker's session).
#[derive(Debug)]
pub struct StackSumsCodec;

impl PhysicalExtensionCodec for StackSumsCodec {
    fn try_decode(
        &self,
        buf: &[u8],
        inputs: &[Arc<dyn ExecutionPlan>],
        _ctx: &TaskContext,
        _proto_converter: &dyn PhysicalProtoConverterExtension,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        if !inputs.is_empty() {
            return internal_err!("StackSumsExec has no children, got {}", inputs.len());
        }
        let wire: WireLeaf = serde_json::from_slice(buf).map_err(|e| {
            datafusion::error::DataFusionError::Internal(format!("decoding StackSumsExec: {e}"))
        })?;
        let fields = stack_sums_schema().fields().len();
        if wire.projection.iter().any(|&c| c >= fields) {
            return internal_err!(
                "StackSumsExec: projection {:?} out of range",
                wire.projection
            );
        }
        let parts = wire
            .parts
            .into_iter()
            .map(|d| LeafPart {
                part: None,
                desc: Some(d),
            })
            .collect();
        Ok(Arc::new(StackSumsExec::from_parts(
            parts,
            wire.projection.into(),
            wire.partitions,
        )?))
    }

    fn try_encode(
        &self,
        node: Arc<dyn ExecutionPlan>,
        buf: &mut Vec<u8>,
        _proto_converter: &dyn PhysicalProtoConverterExtension,
    ) -> DfResult<()> {
        let Some(exec) = node.downcast_ref::<StackSumsExec>() else {
            return internal_err!("StackSumsCodec cannot encode {}", node.name());
        };
        let parts = exec
            .parts
            .iter()
            .map(|p| p.desc.clone())
            .collect::<Option<Vec<_>>>();
        let Some(parts) = parts else {
            return internal_err!(
                "StackSumsExec holds rows of this process's own heads, which no other process can read"
            );
        };
        let wire = WireLeaf {
            parts,
            projection: exec.projection.to_vec(),
            partitions: exec.partitions.len(),
        };
        serde_json::to_writer(buf, &wire).map_err(|e| {
            datafusion::error::DataFusionError::Internal(format!("encoding StackSumsExec: {e}"))
        })
    }
}
