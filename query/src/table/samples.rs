//! [`SamplesTable`]: stored samples as a DataFusion table, one column per label.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, Int64Array, RecordBatch, RecordBatchOptions, StringArray, StringBuilder,
    TimestampNanosecondArray, UInt64Array,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use async_trait::async_trait;
use datafusion::catalog::Session;
use datafusion::datasource::{TableProvider, TableType};
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::empty::EmptyExec;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::streaming::{PartitionStream, StreamingTableExec};
use futures::{StreamExt, stream};
use strata_engine::{Engine, LabelMatcher, Labels, ProfileType, ScanPart, SeriesId, TimeRange};

use super::filters::{self, LabelColumn, Pushdown};

/// The columns every samples table has, before the label columns.
const FIXED: [&str; 7] = [
    "profile_type",
    "series_id",
    "time",
    "duration_ns",
    "period",
    "stack_id",
    "value",
];

/// What a table is fixed to before any SQL filter: a profile type (or all), label matchers and
/// a time range.
#[derive(Clone, Debug)]
pub struct Selection {
    /// Only this profile type, or every type.
    pub profile_type: Option<ProfileType>,
    /// Matchers every series must satisfy.
    pub matchers: Vec<LabelMatcher>,
    /// The time range.
    pub range: TimeRange,
}

impl Selection {
    /// Everything stored.
    pub fn all() -> Self {
        Selection {
            profile_type: None,
            matchers: Vec::new(),
            range: TimeRange::ALL,
        }
    }
}

/// Stored samples as a table: `profile_type` Utf8, `series_id` UInt64, `time`
/// Timestamp(ns, UTC), `duration_ns` Int64, `period` Int64, `stack_id` UInt64, `value` Int64,
/// then one nullable Utf8 column per label name (named as the label, or `label_<name>` when the
/// name is one of the columns before).
#[derive(Clone)]
pub struct SamplesTable {
    engine: Engine,
    selection: Selection,
    labels: Vec<LabelColumn>,
    schema: SchemaRef,
}

impl fmt::Debug for SamplesTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SamplesTable")
            .field("selection", &self.selection)
            .finish_non_exhaustive()
    }
}

impl SamplesTable {
    /// A table over `selection`, with a column for every label name the selection's series
    /// carry.
    pub async fn open(engine: Engine, selection: Selection) -> crate::Result<Self> {
        let names = engine
            .label_names(
                selection.profile_type.as_ref(),
                &selection.matchers,
                selection.range,
            )
            .await?;
        Ok(Self::with_label_names(engine, selection, names))
    }

    /// A table over `selection` with exactly these label columns.
    pub fn with_label_names(engine: Engine, selection: Selection, names: Vec<String>) -> Self {
        let labels: Vec<LabelColumn> = names
            .into_iter()
            .map(|label| LabelColumn {
                column: if FIXED.contains(&label.as_str()) {
                    format!("label_{label}")
                } else {
                    label.clone()
                },
                label,
            })
            .collect();
        let mut fields = vec![
            Field::new("profile_type", DataType::Utf8, false),
            Field::new("series_id", DataType::UInt64, false),
            Field::new(
                "time",
                DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into())),
                false,
            ),
            Field::new("duration_ns", DataType::Int64, false),
            Field::new("period", DataType::Int64, false),
            Field::new("stack_id", DataType::UInt64, false),
            Field::new("value", DataType::Int64, false),
        ];
        fields.extend(
            labels
                .iter()
                .map(|l| Field::new(&l.column, DataType::Utf8, true)),
        );
        SamplesTable {
            engine,
            selection,
            labels,
            schema: Arc::new(Schema::new(fields)),
        }
    }

    /// The label columns: (column name, label name).
    pub fn label_columns(&self) -> impl Iterator<Item = (&str, &str)> {
        self.labels
            .iter()
            .map(|l| (l.column.as_str(), l.label.as_str()))
    }

    /// The engine read.
    pub(crate) fn engine(&self) -> &Engine {
        &self.engine
    }

    /// What a scan with `filters` reads: the selection narrowed by the filters the engine can
    /// apply. `None` when the filters cannot all hold (the scan is empty).
    pub(crate) fn pushdown(&self, filters: &[Expr]) -> Option<Pushdown> {
        let base = Pushdown {
            profile_type: self.selection.profile_type.clone(),
            range: self.selection.range,
            matchers: self.selection.matchers.clone(),
        };
        filters::narrow(&base, filters, &self.labels)
    }
}

#[async_trait]
impl TableProvider for SamplesTable {
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
        Ok(filters::support(filters, &self.labels))
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let columns: Vec<usize> = match projection {
            Some(p) => p.clone(),
            None => (0..self.schema.fields().len()).collect(),
        };
        let schema = Arc::new(self.schema.project(&columns)?);
        let Some(pushdown) = self.pushdown(filters) else {
            return Ok(Arc::new(EmptyExec::new(schema)));
        };
        let columns: Vec<Column> = columns
            .into_iter()
            .map(|i| match i.checked_sub(FIXED.len()) {
                None => Column::Fixed(i),
                Some(l) => Column::Label(self.labels[l].label.clone()),
            })
            .collect();
        let scan_columns = scan_columns(&columns);
        let mut parts = Vec::new();
        for req in pushdown.requests(&self.engine).await.map_err(external)? {
            let scan = self
                .engine
                .scan_parts(&req, Some(&scan_columns))
                .await
                .map_err(external)?;
            let context = Arc::new(PartContext {
                series: scan.series,
                profile_type: req.profile_type.to_string().into(),
            });
            parts.extend(scan.parts.into_iter().map(|p| (p, context.clone())));
        }
        let projection = Arc::new(Projection {
            columns,
            scan_columns,
        });
        let partitions: Vec<Arc<dyn PartitionStream>> =
            balance(parts, state.config().target_partitions())
                .into_iter()
                .map(|parts| -> Arc<dyn PartitionStream> {
                    Arc::new(SamplePartition {
                        parts,
                        schema: schema.clone(),
                        projection: projection.clone(),
                    })
                })
                .collect();
        streaming_exec(schema, partitions, limit)
    }
}

/// A plan streaming `partitions`, or an empty one when there are none.
pub(super) fn streaming_exec(
    schema: SchemaRef,
    partitions: Vec<Arc<dyn PartitionStream>>,
    limit: Option<usize>,
) -> DfResult<Arc<dyn ExecutionPlan>> {
    if partitions.is_empty() {
        return Ok(Arc::new(EmptyExec::new(schema)));
    }
    Ok(Arc::new(StreamingTableExec::try_new(
        schema,
        partitions,
        None,
        Vec::new(),
        false,
        limit,
    )?))
}

/// An output column.
#[derive(Clone, Debug)]
enum Column {
    /// Index into [`FIXED`].
    Fixed(usize),
    /// A label's value.
    Label(String),
}

/// The engine scan columns ([`strata_engine::scan_schema`]) the output columns need, sorted:
/// `profile_type` needs none (it is constant per part), a label needs `series_id`. Never
/// empty, so batches keep their row counts.
fn scan_columns(columns: &[Column]) -> Vec<usize> {
    let mut out: Vec<usize> = columns
        .iter()
        .filter_map(|c| match c {
            Column::Fixed(0) => None,
            Column::Fixed(i) => Some(i - 1),
            Column::Label(_) => Some(0),
        })
        .collect();
    if out.is_empty() {
        out.push(0);
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// How engine batches become table batches.
#[derive(Debug)]
struct Projection {
    columns: Vec<Column>,
    /// The engine columns read, sorted (see [`scan_columns`]).
    scan_columns: Vec<usize>,
}

impl Projection {
    /// Position of engine scan column `i` in the read batches.
    fn position(&self, i: usize) -> DfResult<usize> {
        self.scan_columns
            .binary_search(&i)
            .map_err(|_| DataFusionError::Internal(format!("scan column {i} was not read")))
    }
}

/// What every batch of a part shares: its series' labels and its profile type.
struct PartContext {
    series: BTreeMap<SeriesId, Labels>,
    profile_type: Arc<str>,
}

/// Spreads scan parts over at most `n` partitions, largest first onto the lightest.
pub(super) fn balance<T>(mut parts: Vec<(ScanPart, T)>, n: usize) -> Vec<Vec<(ScanPart, T)>> {
    let n = n.clamp(1, parts.len().max(1));
    parts.sort_by_key(|(p, _)| std::cmp::Reverse(p.estimated_rows()));
    let mut out: Vec<(u64, Vec<(ScanPart, T)>)> = (0..n).map(|_| (0, Vec::new())).collect();
    for (part, ctx) in parts {
        let lightest = out
            .iter_mut()
            .min_by_key(|(rows, _)| *rows)
            .expect("n >= 1");
        lightest.0 += part.estimated_rows();
        lightest.1.push((part, ctx));
    }
    out.into_iter()
        .map(|(_, parts)| parts)
        .filter(|parts| !parts.is_empty())
        .collect()
}

/// One partition of a table scan: some of the engine's scan parts, read in turn.
struct SamplePartition {
    parts: Vec<(ScanPart, Arc<PartContext>)>,
    schema: SchemaRef,
    projection: Arc<Projection>,
}

impl fmt::Debug for SamplePartition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SamplePartition")
            .field("parts", &self.parts.len())
            .field("projection", &self.projection)
            .finish_non_exhaustive()
    }
}

pub(super) fn external(e: strata_engine::Error) -> DataFusionError {
    DataFusionError::External(Box::new(e))
}

impl PartitionStream for SamplePartition {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn execute(&self, _ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
        let schema = self.schema.clone();
        let projection = self.projection.clone();
        let batches = stream::iter(self.parts.clone()).flat_map(move |(part, ctx)| {
            let schema = schema.clone();
            let projection = projection.clone();
            part.batches()
                .map(move |b| project(&b.map_err(external)?, &ctx, &projection, &schema))
        });
        Box::pin(RecordBatchStreamAdapter::new(self.schema.clone(), batches))
    }
}

/// One engine batch (projected scan schema) as the table's projected columns.
fn project(
    batch: &RecordBatch,
    ctx: &PartContext,
    projection: &Projection,
    schema: &SchemaRef,
) -> DfResult<RecordBatch> {
    let n = batch.num_rows();
    let scan_column =
        |i: usize| -> DfResult<&ArrayRef> { Ok(batch.column(projection.position(i)?)) };
    let out: Vec<ArrayRef> = projection
        .columns
        .iter()
        .map(|c| -> DfResult<ArrayRef> {
            Ok(match c {
                Column::Fixed(0) => Arc::new(StringArray::from_iter_values(std::iter::repeat_n(
                    &*ctx.profile_type,
                    n,
                ))),
                Column::Fixed(2) => {
                    let ts = scan_column(1)?
                        .as_any()
                        .downcast_ref::<Int64Array>()
                        .ok_or_else(|| {
                            DataFusionError::Internal("scan timestamp_ns is not Int64".into())
                        })?;
                    Arc::new(
                        TimestampNanosecondArray::new(ts.values().clone(), None)
                            .with_timezone("UTC"),
                    )
                }
                // series_id, duration_ns, period, stack_id, value: scan columns 0, 2..=5.
                Column::Fixed(i) => scan_column(i - 1)?.clone(),
                Column::Label(name) => {
                    let series_ids = scan_column(0)?
                        .as_any()
                        .downcast_ref::<UInt64Array>()
                        .ok_or_else(|| {
                            DataFusionError::Internal("scan series_id is not UInt64".into())
                        })?;
                    let mut b = StringBuilder::with_capacity(n, n * 8);
                    let mut last: Option<(u64, Option<&str>)> = None;
                    for id in series_ids.values().iter() {
                        let v = match last {
                            Some((l, v)) if l == *id => v,
                            _ => {
                                let v = ctx.series.get(&SeriesId(*id)).and_then(|l| l.get(name));
                                last = Some((*id, v));
                                v
                            }
                        };
                        b.append_option(v);
                    }
                    Arc::new(b.finish())
                }
            })
        })
        .collect::<DfResult<_>>()?;
    debug_assert!(out.iter().all(|a| a.len() == n));
    // The row count is explicit: a scan may ask for no columns (`SELECT count(*)`).
    let options = RecordBatchOptions::new().with_row_count(Some(n));
    Ok(RecordBatch::try_new_with_options(
        schema.clone(),
        out,
        &options,
    )?)
}
