//! The range operator: a value per step bucket per series (or per `sum by` label set).
//!
//! Stage one is a DataFusion aggregation, `SUM(value), MAX(duration_ns) GROUP BY series,
//! labels, time`: one total per stored profile. Stage two buckets those per step: delta types
//! (CPU, allocations over an interval) are summed; gauge types (heap in use, goroutines) take
//! the last or the mean value per bucket, so a wide step does not add up snapshots. Then series
//! are summed by the `sum by` labels.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{Int64Type, TimestampNanosecondType, UInt64Type};
use datafusion::functions_aggregate::expr_fn::sum;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::language::Selector;
use crate::query_engine::{QueryEngine, column};

/// How profiles inside one step bucket combine.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RangeAggregation {
    /// Sum (the default for delta types).
    Sum,
    /// The last profile's value (the default for gauges).
    Last,
    /// The mean of the profiles' values.
    Mean,
}

/// A range query.
#[derive(Clone, Debug)]
pub struct RangeQuery {
    /// What to select.
    pub selector: Selector,
    /// `[start, end)` in ns; both must be finite.
    pub start_ns: i64,
    /// End (exclusive).
    pub end_ns: i64,
    /// Bucket width in ns (> 0).
    pub step_ns: i64,
    /// Sum series by these labels; `None` keeps every series apart.
    pub sum_by: Option<Vec<String>>,
    /// Bucket aggregation; `None` picks by type (delta: sum, else last).
    pub aggregation: Option<RangeAggregation>,
}

/// One point: a bucket.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct RangePoint {
    /// Bucket start, ns.
    pub timestamp_ns: i64,
    /// The bucket's value.
    pub value: f64,
    /// For summed buckets, value per second: over the bucket width, or over the profiles'
    /// durations when those are longer; otherwise 0 (also for profiles without a duration in
    /// a bucket under a second).
    pub value_per_second: f64,
    /// Sum of the durations of the profiles in the bucket, ns.
    pub duration_ns: i64,
    /// Profiles in the bucket.
    pub profiles: u64,
}

/// One line of a range answer.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RangeSeries {
    /// The series' labels (or the `sum by` labels).
    pub labels: Vec<(String, String)>,
    /// Points, by time.
    pub points: Vec<RangePoint>,
}

#[derive(Default, Clone, Copy)]
struct Bucket {
    sum: i64,
    last: (i64, i64),
    count: u64,
    duration: i64,
}

/// (series, label values) -> bucket index -> bucket.
type PerSeries = BTreeMap<(u64, Vec<Option<String>>), BTreeMap<i64, Bucket>>;

/// Label values -> bucket index -> point.
type Lines = BTreeMap<Vec<Option<String>>, BTreeMap<i64, RangePoint>>;

impl QueryEngine {
    /// Values over time for `q`.
    pub async fn range(&self, q: &RangeQuery) -> Result<Vec<RangeSeries>> {
        if q.step_ns <= 0 {
            return Err(Error::InvalidQuery(format!(
                "step must be positive, got {} ns",
                q.step_ns
            )));
        }
        if q.start_ns >= q.end_ns {
            return Err(Error::InvalidQuery(format!(
                "empty time range: start {} is not before end {}",
                q.start_ns, q.end_ns
            )));
        }
        let pt = &q.selector.profile_type;
        let range = strata_engine::TimeRange::new(q.start_ns, q.end_ns);
        let labels = match &q.sum_by {
            Some(by) => by.clone(),
            None => {
                self.engine()
                    .label_names(Some(pt), &q.selector.matchers, range)
                    .await?
            }
        };
        let batches = self.profile_totals(q, range, &labels).await?;
        let aggregation = q.aggregation.unwrap_or(if pt.delta {
            RangeAggregation::Sum
        } else {
            RangeAggregation::Last
        });
        let lines = sum_series(bucket_per_series(&batches, labels.len(), q), aggregation, q);
        Ok(lines
            .into_iter()
            .map(|(key, points)| RangeSeries {
                labels: labels
                    .iter()
                    .zip(key)
                    .filter_map(|(n, v)| v.map(|v| (n.clone(), v)))
                    .collect(),
                points: points.into_values().collect(),
            })
            .collect())
    }

    /// Stage one: per stored profile, its series, time, `labels` values, total value and
    /// duration (in that column order).
    async fn profile_totals(
        &self,
        q: &RangeQuery,
        range: strata_engine::TimeRange,
        labels: &[String],
    ) -> Result<Vec<RecordBatch>> {
        let pt = &q.selector.profile_type;
        let table = self.selection_table(pt, &q.selector.matchers, range, labels.to_vec());
        let columns: Vec<String> = table.label_columns().map(|(c, _)| c.to_owned()).collect();
        let mut keys = vec![column("series_id"), column("time")];
        keys.extend(columns.iter().map(|c| column(c)));
        Ok(self
            .session()?
            .read_table(Arc::new(table))?
            .aggregate(
                keys,
                vec![
                    sum(column("value")).alias("value"),
                    datafusion::functions_aggregate::expr_fn::max(column("duration_ns"))
                        .alias("duration_ns"),
                ],
            )?
            .collect()
            .await?)
    }
}

/// Stage two: the profile totals of [`QueryEngine::profile_totals`] (with `n_labels` label
/// columns) in `q`'s step buckets, per series.
fn bucket_per_series(batches: &[RecordBatch], n_labels: usize, q: &RangeQuery) -> PerSeries {
    let mut per_series = PerSeries::new();
    for b in batches {
        let series = b.column(0).as_primitive::<UInt64Type>();
        let time = b.column(1).as_primitive::<TimestampNanosecondType>();
        let label_arrays: Vec<_> = (0..n_labels)
            .map(|i| b.column(2 + i).as_string::<i32>())
            .collect();
        let values = b.column(2 + n_labels).as_primitive::<Int64Type>();
        let durations = b.column(3 + n_labels).as_primitive::<Int64Type>();
        for r in 0..b.num_rows() {
            let t = time.value(r);
            let key = (
                series.value(r),
                label_arrays
                    .iter()
                    .map(|a| (!a.is_null(r)).then(|| a.value(r).to_owned()))
                    .collect(),
            );
            let k = (t - q.start_ns) / q.step_ns;
            let bucket = per_series.entry(key).or_default().entry(k).or_default();
            let v = if values.is_null(r) {
                0
            } else {
                values.value(r)
            };
            bucket.sum += v;
            bucket.count += 1;
            bucket.duration += durations.value(r);
            if bucket.count == 1 || t >= bucket.last.0 {
                bucket.last = (t, v);
            }
        }
    }
    per_series
}

/// The buckets' values by `aggregation`, series summed by their label values.
fn sum_series(per_series: PerSeries, aggregation: RangeAggregation, q: &RangeQuery) -> Lines {
    let mut out = Lines::new();
    let step_s = q.step_ns as f64 / 1e9;
    for ((_, key), buckets) in per_series {
        let line = out.entry(key).or_default();
        for (k, b) in buckets {
            let value = match aggregation {
                RangeAggregation::Sum => b.sum as f64,
                RangeAggregation::Last => b.last.1 as f64,
                RangeAggregation::Mean => b.sum as f64 / b.count as f64,
            };
            let timestamp_ns = q.start_ns + k * q.step_ns;
            let p = line.entry(k).or_insert(RangePoint {
                timestamp_ns,
                value: 0.0,
                value_per_second: 0.0,
                duration_ns: 0,
                profiles: 0,
            });
            p.value += value;
            if aggregation == RangeAggregation::Sum {
                // Over the bucket, or over the profiles' own durations when they are
                // longer (a step finer than the profiles: one point per profile). Profiles
                // without a duration in a bucket under a second have no rate (dividing by
                // a nanosecond step would make one up).
                let seconds = step_s.max(b.duration as f64 / 1e9);
                if b.duration > 0 || step_s >= 1.0 {
                    p.value_per_second += value / seconds;
                }
            }
            p.duration_ns += b.duration;
            p.profiles += b.count;
        }
    }
    out
}
