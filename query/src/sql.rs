//! SQL over the store: a DataFusion session with the engine's tables (`samples`, `stacks`,
//! `locations`, `functions`, `mappings`) and the table function
//! `merge('<selector>', <start>, <end>)`, one row per stack of the merged profile. Per-stack
//! sums over `samples` (`SELECT stack_id, sum(value) … GROUP BY stack_id`) read the engine's
//! per-part stack sums ([`StackSumsRule`]).

use std::sync::Arc;

use arrow::array::{Int64Array, RecordBatch, StringArray, UInt64Array};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use async_trait::async_trait;
use datafusion::catalog::{Session, TableFunctionArgs, TableFunctionImpl};
use datafusion::common::ScalarValue;
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::datasource::{TableProvider, TableType};
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::logical_expr::Expr;
use datafusion::logical_expr::simplify::SimplifyContext;
use datafusion::optimizer::simplify_expressions::ExprSimplifier;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::prelude::SessionContext;
use strata_engine::TimeRange;

use crate::error::Result;
use crate::frames::FrameProfile;
use crate::language::parse_selector;
use crate::query_engine::{ProfileQuery, QueryEngine};
use crate::table::{SamplesTable, Selection, StackSumsRule, SymbolTableKind, SymbolsTable};

impl QueryEngine {
    /// A DataFusion session with the store's tables and table functions registered. The
    /// `samples` table has a column for every label name stored at the time of the call; the
    /// [`StackSumsRule`] optimizes per-stack sums over it.
    pub async fn sql_session(&self) -> Result<SessionContext> {
        let ctx = self.session()?;
        ctx.add_optimizer_rule(Arc::new(StackSumsRule));
        let samples = SamplesTable::open(self.engine().clone(), Selection::all()).await?;
        ctx.register_table("samples", Arc::new(samples))?;
        for kind in [
            SymbolTableKind::Stacks,
            SymbolTableKind::Locations,
            SymbolTableKind::Functions,
            SymbolTableKind::Mappings,
        ] {
            ctx.register_table(
                kind.name(),
                Arc::new(SymbolsTable::new(self.engine().clone(), kind)),
            )?;
        }
        ctx.register_udtf(
            "merge",
            Arc::new(MergeFunction {
                query: self.clone(),
            }),
        );
        Ok(ctx)
    }

    /// Runs one SQL statement; its result batches (and schema).
    pub async fn sql(&self, sql: &str) -> Result<(SchemaRef, Vec<RecordBatch>)> {
        let df = self.sql_session().await?.sql(sql).await?;
        let schema: SchemaRef = Arc::new(df.schema().as_arrow().clone());
        Ok((schema, df.collect().await?))
    }
}

/// `merge(selector, start, end)`.
struct MergeFunction {
    query: QueryEngine,
}

impl std::fmt::Debug for MergeFunction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MergeFunction")
    }
}

fn plan_err(msg: String) -> DataFusionError {
    DataFusionError::Plan(msg)
}

/// A constant argument, folded (`now() - interval '1 hour'` becomes a timestamp).
fn constant(e: &Expr) -> DfResult<ScalarValue> {
    let simplifier = ExprSimplifier::new(SimplifyContext::builder().with_current_time().build());
    match simplifier.simplify(e.clone())? {
        Expr::Literal(v, _) => Ok(v),
        other => Err(plan_err(format!(
            "merge(): argument {other} is not a constant"
        ))),
    }
}

fn time_arg(e: &Expr, which: &str) -> DfResult<i64> {
    let ns = match constant(e)? {
        ScalarValue::TimestampNanosecond(Some(t), _) | ScalarValue::Int64(Some(t)) => Some(t),
        ScalarValue::TimestampMicrosecond(Some(t), _) => t.checked_mul(1_000),
        ScalarValue::TimestampMillisecond(Some(t), _) => t.checked_mul(1_000_000),
        ScalarValue::TimestampSecond(Some(t), _) => t.checked_mul(1_000_000_000),
        v => {
            return Err(plan_err(format!(
                "merge(): {which} must be a timestamp or nanoseconds since the epoch, got {v:?}"
            )));
        }
    };
    ns.ok_or_else(|| plan_err(format!("merge(): {which} out of range")))
}

impl TableFunctionImpl for MergeFunction {
    fn call_with_args(&self, args: TableFunctionArgs) -> DfResult<Arc<dyn TableProvider>> {
        let [sel, start, end] = args.exprs() else {
            return Err(plan_err(
                "merge(selector, start, end) takes three arguments".into(),
            ));
        };
        let selector = match constant(sel)? {
            ScalarValue::Utf8(Some(s))
            | ScalarValue::Utf8View(Some(s))
            | ScalarValue::LargeUtf8(Some(s)) => s,
            v => {
                return Err(plan_err(format!(
                    "merge(): selector must be a string, got {v:?}"
                )));
            }
        };
        let selector = parse_selector(&selector).map_err(|e| plan_err(format!("merge(): {e}")))?;
        let range = TimeRange::new(time_arg(start, "start")?, time_arg(end, "end")?);
        Ok(Arc::new(MergeTable {
            query: self.query.clone(),
            request: ProfileQuery::new(selector, range),
            schema: Arc::new(Schema::new(vec![
                Field::new("stack_id", DataType::UInt64, false),
                Field::new("value", DataType::Int64, false),
                Field::new("leaf", DataType::Utf8, false),
                Field::new("stack", DataType::Utf8, false),
            ])),
        }))
    }
}

/// The result of one `merge(...)` call: `stack_id`, `value`, `leaf` (function name) and
/// `stack` (root;…;leaf).
struct MergeTable {
    query: QueryEngine,
    request: ProfileQuery,
    schema: SchemaRef,
}

impl std::fmt::Debug for MergeTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MergeTable")
            .field("request", &self.request)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl TableProvider for MergeTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Temporary
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let merged = self
            .query
            .merge(&self.request)
            .await
            .map_err(|e| DataFusionError::External(Box::new(e)))?;
        let frames = FrameProfile::resolve(&merged);
        let names: Vec<String> = frames.frames.iter().map(|f| f.display_name()).collect();
        let leaf = frames.stacks.iter().map(|s| {
            s.frames
                .first()
                .map_or(String::new(), |&f| names[f as usize].clone())
        });
        let stack = frames.stacks.iter().map(|s| {
            s.frames
                .iter()
                .rev()
                .map(|&f| names[f as usize].as_str())
                .collect::<Vec<_>>()
                .join(";")
        });
        let batch = RecordBatch::try_new(
            self.schema.clone(),
            vec![
                Arc::new(UInt64Array::from_iter_values(
                    merged.stacks.iter().map(|s| s.stack_id.0),
                )),
                Arc::new(Int64Array::from_iter_values(
                    merged.stacks.iter().map(|s| s.value),
                )),
                Arc::new(StringArray::from_iter_values(leaf)),
                Arc::new(StringArray::from_iter_values(stack)),
            ],
        )?;
        Ok(MemorySourceConfig::try_new_exec(
            &[vec![batch]],
            self.schema.clone(),
            projection.cloned(),
        )?)
    }
}
