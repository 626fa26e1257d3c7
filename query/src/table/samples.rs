//! [`SamplesTable`]: stored samples as a DataFusion table, one column per label.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, Int64Array, RecordBatch, StringArray, StringBuilder, TimestampNanosecondArray,
    UInt64Array,
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
use futures::{TryStreamExt, stream};
use strata_engine::{Engine, LabelMatcher, Labels, ProfileType, ScanRequest, SeriesId, TimeRange};

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
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let columns: Vec<usize> = match projection {
            Some(p) => p.clone(),
            None => (0..self.schema.fields().len()).collect(),
        };
        let schema = Arc::new(self.schema.project(&columns)?);
        let base = Pushdown {
            profile_type: self.selection.profile_type.clone(),
            range: self.selection.range,
            matchers: self.selection.matchers.clone(),
        };
        let Some(pushdown) = filters::narrow(&base, filters, &self.labels) else {
            return Ok(Arc::new(EmptyExec::new(schema)));
        };
        let columns = columns
            .into_iter()
            .map(|i| match i.checked_sub(FIXED.len()) {
                None => Column::Fixed(i),
                Some(l) => Column::Label(self.labels[l].label.clone()),
            })
            .collect();
        let partition = SampleStream {
            engine: self.engine.clone(),
            pushdown,
            schema: schema.clone(),
            columns,
        };
        Ok(Arc::new(StreamingTableExec::try_new(
            schema,
            vec![Arc::new(partition)],
            None,
            Vec::new(),
            false,
            limit,
        )?))
    }
}

/// An output column.
#[derive(Clone, Debug)]
enum Column {
    /// Index into [`FIXED`].
    Fixed(usize),
    /// A label's value.
    Label(String),
}

/// The scan of one table: every profile type the pushdown admits, in turn.
struct SampleStream {
    engine: Engine,
    pushdown: Pushdown,
    schema: SchemaRef,
    columns: Vec<Column>,
}

impl fmt::Debug for SampleStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SampleStream")
            .field("pushdown", &self.pushdown)
            .field("columns", &self.columns)
            .finish_non_exhaustive()
    }
}

fn external(e: strata_engine::Error) -> DataFusionError {
    DataFusionError::External(Box::new(e))
}

impl PartitionStream for SampleStream {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn execute(&self, _ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
        let engine = self.engine.clone();
        let pushdown = self.pushdown.clone();
        let schema = self.schema.clone();
        let columns = Arc::new(self.columns.clone());
        let types = {
            let engine = engine.clone();
            let pushdown = pushdown.clone();
            async move {
                match pushdown.profile_type {
                    Some(pt) => Ok(vec![pt]),
                    None => engine.profile_types(pushdown.range).await.map_err(external),
                }
            }
        };
        let batches = stream::once(types)
            .map_ok(move |types| stream::iter(types.into_iter().map(Ok::<_, DataFusionError>)))
            .try_flatten()
            .and_then(move |pt: ProfileType| {
                let engine = engine.clone();
                let req = ScanRequest {
                    profile_type: pt.clone(),
                    matchers: pushdown.matchers.clone(),
                    range: pushdown.range,
                };
                async move {
                    let out = engine.scan(req).await.map_err(external)?;
                    let series = Arc::new(out.series);
                    let name: Arc<str> = pt.to_string().into();
                    Ok(out
                        .batches
                        .map_err(external)
                        .map_ok(move |b| (b, series.clone(), name.clone())))
                }
            })
            .try_flatten()
            .and_then({
                let schema = schema.clone();
                move |(batch, series, pt): (
                    RecordBatch,
                    Arc<BTreeMap<SeriesId, Labels>>,
                    Arc<str>,
                )| {
                    let out = project(&batch, &series, &pt, &columns, &schema);
                    async move { out }
                }
            });
        Box::pin(RecordBatchStreamAdapter::new(schema, batches))
    }
}

/// One engine batch (scan schema) as the table's projected columns.
fn project(
    batch: &RecordBatch,
    series: &BTreeMap<SeriesId, Labels>,
    profile_type: &str,
    columns: &[Column],
    schema: &SchemaRef,
) -> DfResult<RecordBatch> {
    let n = batch.num_rows();
    let series_ids = batch
        .column(0)
        .as_any()
        .downcast_ref::<UInt64Array>()
        .ok_or_else(|| DataFusionError::Internal("scan series_id is not UInt64".into()))?;
    let out: Vec<ArrayRef> = columns
        .iter()
        .map(|c| -> DfResult<ArrayRef> {
            Ok(match c {
                Column::Fixed(0) => Arc::new(StringArray::from_iter_values(std::iter::repeat_n(
                    profile_type,
                    n,
                ))),
                Column::Fixed(1) => batch.column(0).clone(),
                Column::Fixed(2) => {
                    let ts = batch
                        .column(1)
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
                // duration_ns, period, stack_id, value: scan columns 2..=5.
                Column::Fixed(i) => batch.column(i - 1).clone(),
                Column::Label(name) => {
                    let mut b = StringBuilder::with_capacity(n, n * 8);
                    let mut last: Option<(u64, Option<&str>)> = None;
                    for id in series_ids.values().iter() {
                        let v = match last {
                            Some((l, v)) if l == *id => v,
                            _ => {
                                let v = series.get(&SeriesId(*id)).and_then(|l| l.get(name));
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
    Ok(RecordBatch::try_new(schema.clone(), out)?)
}
