//! Read requests and their Arrow output.

use std::collections::BTreeMap;
use std::sync::{Arc, LazyLock};

use arrow::array::RecordBatch;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use futures::stream::BoxStream;

use crate::error::Result;
use crate::matcher::LabelMatcher;
use crate::model::{Labels, ProfileType, SeriesId};
use crate::stack_sums::StackSums;
#[cfg(doc)]
use crate::stack_sums::stack_sums_schema;

/// A time range in nanoseconds since the Unix epoch: `start` inclusive, `end` exclusive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimeRange {
    /// First nanosecond included.
    pub start: i64,
    /// First nanosecond excluded.
    pub end: i64,
}

impl TimeRange {
    /// All of time.
    pub const ALL: TimeRange = TimeRange {
        start: i64::MIN,
        end: i64::MAX,
    };

    /// `[start, end)`.
    pub fn new(start: i64, end: i64) -> Self {
        TimeRange { start, end }
    }

    /// Whether `t` is inside.
    pub fn contains(&self, t: i64) -> bool {
        t >= self.start && t < self.end
    }

    /// Whether the closed interval `[min, max]` meets this range.
    pub fn overlaps(&self, min: i64, max: i64) -> bool {
        min < self.end && max >= self.start
    }
}

/// What [`Engine::scan`](crate::Engine::scan) reads.
#[derive(Clone, Debug)]
pub struct ScanRequest {
    /// The profile type.
    pub profile_type: ProfileType,
    /// Label matchers, all of which must hold.
    pub matchers: Vec<LabelMatcher>,
    /// The time range.
    pub range: TimeRange,
}

/// The result of a scan: the matched series and a stream of sample batches in [`scan_schema`].
pub struct ScanOutput {
    /// Labels of every series that may appear in the batches.
    pub series: BTreeMap<SeriesId, Labels>,
    /// Sample batches; rows are unordered across batches.
    pub batches: BoxStream<'static, Result<RecordBatch>>,
}

static SCAN_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        Field::new("series_id", DataType::UInt64, false),
        Field::new("timestamp_ns", DataType::Int64, false),
        Field::new("duration_ns", DataType::Int64, false),
        Field::new("period", DataType::Int64, false),
        Field::new("stack_id", DataType::UInt64, false),
        Field::new("value", DataType::Int64, false),
    ]))
});

/// The schema of scan output: `series_id` UInt64, `timestamp_ns` Int64, `duration_ns` Int64,
/// `period` Int64, `stack_id` UInt64, `value` Int64.
pub fn scan_schema() -> SchemaRef {
    SCAN_SCHEMA.clone()
}

impl ScanOutput {
    /// Reads the whole stream into memory.
    pub async fn collect(self) -> Result<Vec<RecordBatch>> {
        use futures::TryStreamExt;
        self.batches.try_collect().await
    }
}

/// A scan split into independent parts (one per block, one for the in-memory heads) that can be
/// read concurrently; from [`Engine::scan_parts`](crate::Engine::scan_parts).
pub struct ScanParts {
    /// Labels of every series that may appear in the parts' batches.
    pub series: BTreeMap<SeriesId, Labels>,
    /// The parts; together they hold exactly the rows [`Engine::scan`](crate::Engine::scan)
    /// returns for the same request.
    pub parts: Vec<ScanPart>,
}

/// One independently readable piece of a scan. Cheap to clone; nothing is read until
/// [`ScanPart::batches`] is polled.
#[derive(Clone)]
pub struct ScanPart {
    pub(crate) source: PartSource,
    /// Scan-schema column indexes to return (`None`: all).
    pub(crate) projection: Option<Arc<[usize]>>,
    /// The schema of the part's batches.
    pub(crate) schema: SchemaRef,
}

/// Where a part's rows come from.
#[derive(Clone)]
pub(crate) enum PartSource {
    /// Rows already copied out of the heads (scan schema, all columns).
    Memory(Vec<RecordBatch>),
    /// Rows of one block, read on demand.
    Block(crate::block::BlockScan),
    /// Rows of other processes' heads (a shared store's ingesters), asked for on demand.
    Remote(crate::head_source::RemoteHeads),
}

impl ScanPart {
    /// An estimate of the part's rows, for balancing parts over workers.
    pub fn estimated_rows(&self) -> u64 {
        match &self.source {
            PartSource::Memory(b) => b.iter().map(|b| b.num_rows() as u64).sum(),
            PartSource::Block(scan) => scan.estimated_rows(),
            PartSource::Remote(_) => 0,
        }
    }

    /// The schema of [`ScanPart::batches`]: [`scan_schema`] projected.
    pub fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    /// The part's rows summed per stack, in [`stack_sums_schema`]: one row per stack id
    /// occurring in the part, with the (wrapping) sum of its values and its largest period —
    /// `SELECT stack_id, sum(value), max(period) … GROUP BY stack_id` over
    /// [`ScanPart::batches`], whatever the part's projection. Block row groups whose every row
    /// is selected are summed on the Parquet dictionary indexes of `stack_id`, without
    /// decoding or hashing each row's stack id.
    pub async fn stack_sums(self) -> Result<RecordBatch> {
        match self.source {
            PartSource::Memory(batches) => {
                let mut sums = StackSums::default();
                for b in &batches {
                    // Head batches carry every scan column: period 3, stack_id 4, value 5.
                    sums.add_batch(b, [3, 4, 5]);
                }
                sums.into_batch()
            }
            PartSource::Block(scan) => scan.stack_sums().await,
            PartSource::Remote(heads) => heads.stack_sums().await,
        }
    }

    /// The part's rows.
    pub fn batches(self) -> BoxStream<'static, Result<RecordBatch>> {
        use futures::{StreamExt, TryStreamExt, stream};
        let ScanPart {
            source,
            projection,
            schema,
        } = self;
        match source {
            PartSource::Memory(batches) => stream::iter(batches.into_iter().map(move |b| {
                match &projection {
                    None => Ok(b),
                    Some(p) => b
                        .project(p)
                        .map_err(crate::error::Error::arrow("projecting head samples")),
                }
            }))
            .boxed(),
            PartSource::Block(scan) => {
                stream::once(async move { scan.read(projection, schema).await })
                    .map_ok(|batches| stream::iter(batches.into_iter().map(Ok)))
                    .try_flatten()
                    .boxed()
            }
            PartSource::Remote(heads) => {
                let projection = projection.map(|p| p.to_vec());
                stream::once(async move { heads.rows(projection).await })
                    .map_ok(|batches| stream::iter(batches.into_iter().map(Ok)))
                    .try_flatten()
                    .boxed()
            }
        }
    }
}

/// [`scan_schema`] restricted to `projection`, checked.
pub(crate) fn projected_scan_schema(projection: Option<&[usize]>) -> Result<SchemaRef> {
    match projection {
        None => Ok(scan_schema()),
        Some(p) => {
            Ok(Arc::new(scan_schema().project(p).map_err(
                crate::error::Error::arrow("projecting the scan schema"),
            )?))
        }
    }
}
