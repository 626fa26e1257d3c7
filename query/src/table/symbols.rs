//! [`SymbolsTable`]: `stacks`, `locations`, `functions` and `mappings` as DataFusion tables.
//!
//! They hold the symbols of the stacks that stored samples reference. A filter
//! `stack_id = <n>` (or `IN (...)`) on `stacks` resolves only those stacks; otherwise every
//! stack with samples is resolved, which reads all samples once.

use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;

use arrow::array::{
    ArrayRef, Int64Array, ListBuilder, RecordBatch, StringArray, UInt64Array, UInt64Builder,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use async_trait::async_trait;
use datafusion::catalog::Session;
use datafusion::common::ScalarValue;
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::datasource::{TableProvider, TableType};
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::logical_expr::{BinaryExpr, Expr, Operator, TableProviderFilterPushDown};
use datafusion::physical_plan::ExecutionPlan;
use futures::TryStreamExt;
use strata_engine::{Engine, ScanRequest, StackId, SymbolTables, TimeRange};

/// Which symbol table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SymbolTableKind {
    /// `stacks`: `stack_id` UInt64, `location_ids` List<UInt64> (leaf first).
    Stacks,
    /// `locations`: one row per line of a location: `location_id`, `mapping_id`, `address`
    /// (UInt64), `line_index` (0 = innermost inlined), `function_id` (UInt64), `line` (Int64).
    Locations,
    /// `functions`: `function_id` UInt64, `name`, `system_name`, `filename` (Utf8),
    /// `start_line` Int64.
    Functions,
    /// `mappings`: `mapping_id` UInt64, `build_id`, `filename` (Utf8), `memory_start`,
    /// `memory_limit`, `file_offset` (UInt64).
    Mappings,
}

impl SymbolTableKind {
    /// The table's SQL name.
    pub fn name(self) -> &'static str {
        match self {
            SymbolTableKind::Stacks => "stacks",
            SymbolTableKind::Locations => "locations",
            SymbolTableKind::Functions => "functions",
            SymbolTableKind::Mappings => "mappings",
        }
    }

    fn schema(self) -> SchemaRef {
        let u64f = |n: &str| Field::new(n, DataType::UInt64, false);
        let strf = |n: &str| Field::new(n, DataType::Utf8, false);
        let fields = match self {
            SymbolTableKind::Stacks => vec![
                u64f("stack_id"),
                Field::new(
                    "location_ids",
                    DataType::List(Arc::new(Field::new("item", DataType::UInt64, true))),
                    false,
                ),
            ],
            SymbolTableKind::Locations => vec![
                u64f("location_id"),
                u64f("mapping_id"),
                u64f("address"),
                u64f("line_index"),
                u64f("function_id"),
                Field::new("line", DataType::Int64, false),
            ],
            SymbolTableKind::Functions => vec![
                u64f("function_id"),
                strf("name"),
                strf("system_name"),
                strf("filename"),
                Field::new("start_line", DataType::Int64, false),
            ],
            SymbolTableKind::Mappings => vec![
                u64f("mapping_id"),
                strf("build_id"),
                strf("filename"),
                u64f("memory_start"),
                u64f("memory_limit"),
                u64f("file_offset"),
            ],
        };
        Arc::new(Schema::new(fields))
    }
}

/// One of the symbol tables.
#[derive(Clone)]
pub struct SymbolsTable {
    engine: Engine,
    kind: SymbolTableKind,
    schema: SchemaRef,
}

impl fmt::Debug for SymbolsTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SymbolsTable")
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

impl SymbolsTable {
    /// The `kind` table over `engine`.
    pub fn new(engine: Engine, kind: SymbolTableKind) -> Self {
        SymbolsTable {
            engine,
            kind,
            schema: kind.schema(),
        }
    }
}

/// Stack IDs named by `stack_id = n` or `stack_id IN (...)`.
fn stack_ids_in(filter: &Expr) -> Option<Vec<u64>> {
    let as_u64 = |e: &Expr| match e {
        Expr::Literal(ScalarValue::UInt64(Some(v)), _) => Some(*v),
        Expr::Literal(ScalarValue::Int64(Some(v)), _) => u64::try_from(*v).ok(),
        _ => None,
    };
    let is_stack_id = |e: &Expr| matches!(e, Expr::Column(c) if c.name == "stack_id");
    match filter {
        Expr::BinaryExpr(BinaryExpr {
            left,
            op: Operator::Eq,
            right,
        }) if is_stack_id(left) => Some(vec![as_u64(right)?]),
        Expr::InList(l) if !l.negated && is_stack_id(&l.expr) => {
            l.list.iter().map(as_u64).collect()
        }
        _ => None,
    }
}

/// Every stack ID with samples.
async fn all_stack_ids(engine: &Engine) -> strata_engine::Result<Vec<StackId>> {
    let mut ids = BTreeSet::new();
    for pt in engine.profile_types(TimeRange::ALL).await? {
        let out = engine
            .scan(ScanRequest {
                profile_type: pt,
                matchers: Vec::new(),
                range: TimeRange::ALL,
            })
            .await?;
        let mut batches = out.batches;
        while let Some(b) = batches.try_next().await? {
            if let Some(s) = b.column(4).as_any().downcast_ref::<UInt64Array>() {
                ids.extend(s.values().iter().copied());
            }
        }
    }
    Ok(ids.into_iter().map(StackId).collect())
}

fn to_batch(kind: SymbolTableKind, t: &SymbolTables, schema: &SchemaRef) -> DfResult<RecordBatch> {
    let columns: Vec<ArrayRef> = match kind {
        SymbolTableKind::Stacks => {
            let mut list = ListBuilder::new(UInt64Builder::new());
            for locs in t.stacks.values() {
                list.values()
                    .append_slice(&locs.iter().map(|l| l.0).collect::<Vec<_>>());
                list.append(true);
            }
            vec![
                Arc::new(UInt64Array::from_iter_values(t.stacks.keys().map(|s| s.0))),
                Arc::new(list.finish()),
            ]
        }
        SymbolTableKind::Locations => {
            let rows: Vec<_> = t
                .locations
                .iter()
                .flat_map(|(id, loc)| {
                    let only_address = loc.lines.is_empty().then_some((0, None));
                    loc.lines
                        .iter()
                        .enumerate()
                        .map(|(i, l)| (i, Some(l)))
                        .chain(only_address)
                        .map(move |(i, l)| (id.0, loc.mapping_id.0, loc.address, i as u64, l))
                })
                .collect();
            vec![
                Arc::new(UInt64Array::from_iter_values(rows.iter().map(|r| r.0))),
                Arc::new(UInt64Array::from_iter_values(rows.iter().map(|r| r.1))),
                Arc::new(UInt64Array::from_iter_values(rows.iter().map(|r| r.2))),
                Arc::new(UInt64Array::from_iter_values(rows.iter().map(|r| r.3))),
                Arc::new(UInt64Array::from_iter_values(
                    rows.iter().map(|r| r.4.map_or(0, |l| l.function_id.0)),
                )),
                Arc::new(Int64Array::from_iter_values(
                    rows.iter().map(|r| r.4.map_or(0, |l| l.line)),
                )),
            ]
        }
        SymbolTableKind::Functions => {
            let f = &t.functions;
            vec![
                Arc::new(UInt64Array::from_iter_values(f.keys().map(|k| k.0))),
                Arc::new(StringArray::from_iter_values(f.values().map(|v| &v.name))),
                Arc::new(StringArray::from_iter_values(
                    f.values().map(|v| &v.system_name),
                )),
                Arc::new(StringArray::from_iter_values(
                    f.values().map(|v| &v.filename),
                )),
                Arc::new(Int64Array::from_iter_values(
                    f.values().map(|v| v.start_line),
                )),
            ]
        }
        SymbolTableKind::Mappings => {
            let m = &t.mappings;
            vec![
                Arc::new(UInt64Array::from_iter_values(m.keys().map(|k| k.0))),
                Arc::new(StringArray::from_iter_values(
                    m.values().map(|v| &v.build_id),
                )),
                Arc::new(StringArray::from_iter_values(
                    m.values().map(|v| &v.filename),
                )),
                Arc::new(UInt64Array::from_iter_values(
                    m.values().map(|v| v.memory_start),
                )),
                Arc::new(UInt64Array::from_iter_values(
                    m.values().map(|v| v.memory_limit),
                )),
                Arc::new(UInt64Array::from_iter_values(
                    m.values().map(|v| v.file_offset),
                )),
            ]
        }
    };
    Ok(RecordBatch::try_new(schema.clone(), columns)?)
}

#[async_trait]
impl TableProvider for SymbolsTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> DfResult<Vec<TableProviderFilterPushDown>> {
        Ok(filters
            .iter()
            .map(|f| {
                if self.kind == SymbolTableKind::Stacks && stack_ids_in(f).is_some() {
                    TableProviderFilterPushDown::Inexact
                } else {
                    TableProviderFilterPushDown::Unsupported
                }
            })
            .collect())
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        _limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let external = |e: strata_engine::Error| DataFusionError::External(Box::new(e));
        let named: Option<Vec<u64>> = if self.kind == SymbolTableKind::Stacks {
            filters.iter().find_map(stack_ids_in)
        } else {
            None
        };
        let ids = match named {
            Some(ids) => ids.into_iter().map(StackId).collect(),
            None => all_stack_ids(&self.engine).await.map_err(external)?,
        };
        let tables = self.engine.resolve_stacks(&ids).await.map_err(external)?;
        let batch = to_batch(self.kind, &tables, &self.schema)?;
        Ok(MemorySourceConfig::try_new_exec(
            &[vec![batch]],
            self.schema.clone(),
            projection.cloned(),
        )?)
    }
}
