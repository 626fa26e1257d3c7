//! Arrow input for `append`: a samples `RecordBatch` in [`input_schema`] plus [`Symbols`].

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, Int64Array, MapBuilder, RecordBatch, StringArray, StringBuilder,
    UInt64Array,
};
use arrow::datatypes::{DataType, Field, Int64Type, Schema, SchemaRef, UInt64Type};

use super::{SampleBatch, SampleColumns, Symbols};
use crate::error::{Error, Result};
use crate::model::{Labels, ProfileType, StackId, stack_id};

/// The schema of a samples `RecordBatch` accepted by [`SampleBatch::from_record_batch`]:
///
/// | column | type |
/// |---|---|
/// | `profile_type` | Utf8, e.g. `memory:inuse_space:bytes:space:bytes` |
/// | `labels` | Map<Utf8, Utf8> |
/// | `timestamp_ns` | Int64 |
/// | `duration_ns` | Int64 |
/// | `period` | Int64 |
/// | `stack_id` | UInt64, the ID of a stack in the accompanying [`Symbols`] |
/// | `value` | Int64 |
pub fn input_schema() -> SchemaRef {
    let entries = Field::new(
        "entries",
        DataType::Struct(
            vec![
                Field::new("keys", DataType::Utf8, false),
                Field::new("values", DataType::Utf8, true),
            ]
            .into(),
        ),
        false,
    );
    Arc::new(Schema::new(vec![
        Field::new("profile_type", DataType::Utf8, false),
        Field::new("labels", DataType::Map(Arc::new(entries), false), false),
        Field::new("timestamp_ns", DataType::Int64, false),
        Field::new("duration_ns", DataType::Int64, false),
        Field::new("period", DataType::Int64, false),
        Field::new("stack_id", DataType::UInt64, false),
        Field::new("value", DataType::Int64, false),
    ]))
}

fn column<'a>(batch: &'a RecordBatch, name: &str, ty: &DataType) -> Result<&'a ArrayRef> {
    let col = batch
        .column_by_name(name)
        .ok_or_else(|| Error::batch(format!("the record batch has no column {name:?}")))?;
    let matches = match (ty, col.data_type()) {
        (DataType::Map(..), DataType::Map(..)) => true,
        (a, b) => a == b,
    };
    if !matches {
        return Err(Error::batch(format!(
            "column {name:?} has type {}, expected {ty}",
            col.data_type()
        )));
    }
    if col.null_count() > 0 {
        return Err(Error::batch(format!("column {name:?} holds nulls")));
    }
    Ok(col)
}

impl SampleBatch {
    /// Builds a batch from a samples `RecordBatch` in [`input_schema`] and the symbols its
    /// `stack_id`s point to.
    pub fn from_record_batch(batch: &RecordBatch, symbols: Symbols) -> Result<SampleBatch> {
        let schema = input_schema();
        let f = |i: usize| schema.field(i);
        let pt_col = column(batch, "profile_type", f(0).data_type())?.as_string::<i32>();
        let labels_col = column(batch, "labels", f(1).data_type())?.as_map();
        let ts = column(batch, "timestamp_ns", &DataType::Int64)?.as_primitive::<Int64Type>();
        let dur = column(batch, "duration_ns", &DataType::Int64)?.as_primitive::<Int64Type>();
        let period = column(batch, "period", &DataType::Int64)?.as_primitive::<Int64Type>();
        let stack = column(batch, "stack_id", &DataType::UInt64)?.as_primitive::<UInt64Type>();
        let value = column(batch, "value", &DataType::Int64)?.as_primitive::<Int64Type>();

        let keys = labels_col
            .keys()
            .as_any()
            .downcast_ref::<StringArray>()
            .ok_or_else(|| Error::batch("labels map keys must be Utf8"))?;
        let values = labels_col
            .values()
            .as_any()
            .downcast_ref::<StringArray>()
            .ok_or_else(|| Error::batch("labels map values must be Utf8"))?;

        let stack_index: HashMap<StackId, u32> = symbols
            .stacks
            .iter()
            .enumerate()
            .map(|(i, s)| (stack_id(s), i as u32))
            .collect();

        let mut profile_types = Vec::new();
        let mut pt_index: HashMap<&str, u32> = HashMap::new();
        let mut series = Vec::new();
        let mut series_index: HashMap<Labels, u32> = HashMap::new();
        let mut cols = SampleColumns::default();
        let offsets = labels_col.value_offsets();
        for row in 0..batch.num_rows() {
            let pt_str = pt_col.value(row);
            let pt = match pt_index.get(pt_str) {
                Some(&i) => i,
                None => {
                    let parsed: ProfileType = pt_str.parse()?;
                    profile_types.push(parsed);
                    let i = profile_types.len() as u32 - 1;
                    pt_index.insert(pt_str, i);
                    i
                }
            };
            let (start, end) = (offsets[row] as usize, offsets[row + 1] as usize);
            let pairs = (start..end).map(|i| {
                let v = if values.is_null(i) {
                    ""
                } else {
                    values.value(i)
                };
                (keys.value(i), v)
            });
            let labels = Labels::new(pairs)?;
            let s = match series_index.get(&labels) {
                Some(&i) => i,
                None => {
                    series.push(labels.clone());
                    let i = series.len() as u32 - 1;
                    series_index.insert(labels, i);
                    i
                }
            };
            let sid = StackId(stack.value(row));
            let st = *stack_index.get(&sid).ok_or_else(|| {
                Error::batch(format!(
                    "row {row} refers to stack {sid} which the symbols do not define"
                ))
            })?;
            cols.profile_type.push(pt);
            cols.series.push(s);
            cols.timestamp.push(ts.value(row));
            cols.duration.push(dur.value(row));
            cols.period.push(period.value(row));
            cols.stack.push(st);
            cols.value.push(value.value(row));
        }
        SampleBatch::from_parts(profile_types, series, symbols, cols)
    }

    /// The samples as a `RecordBatch` in [`input_schema`] (the inverse of
    /// [`SampleBatch::from_record_batch`]).
    pub fn to_record_batch(&self) -> Result<RecordBatch> {
        let s = &self.samples;
        let pts: Vec<String> = self.profile_types.iter().map(ToString::to_string).collect();
        let pt_col =
            StringArray::from_iter_values(s.profile_type.iter().map(|&i| &pts[i as usize]));
        let mut labels = MapBuilder::new(None, StringBuilder::new(), StringBuilder::new());
        for &series in &s.series {
            for l in self.series[series as usize].iter() {
                labels.keys().append_value(&l.name);
                labels.values().append_value(&l.value);
            }
            labels
                .append(true)
                .map_err(Error::arrow("building the labels column"))?;
        }
        let stack_col = UInt64Array::from_iter_values(s.stack.iter().map(|&i| self.stack_at(i).0));
        let columns: Vec<ArrayRef> = vec![
            Arc::new(pt_col),
            Arc::new(labels.finish()),
            Arc::new(Int64Array::from(s.timestamp.clone())),
            Arc::new(Int64Array::from(s.duration.clone())),
            Arc::new(Int64Array::from(s.period.clone())),
            Arc::new(stack_col),
            Arc::new(Int64Array::from(s.value.clone())),
        ];
        RecordBatch::try_new(input_schema(), columns)
            .map_err(Error::arrow("assembling the samples record batch"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::{SampleBatchBuilder, SampleRow};
    use crate::model::{Function, Line, Location};

    #[test]
    fn record_batch_round_trip() {
        let mut b = SampleBatchBuilder::new();
        let pt = b.profile_type(&"a:b:c:d:e:delta".parse().unwrap());
        let s1 = b.series(Labels::new([("job", "x"), ("i", "1")]).unwrap());
        let s2 = b.series(Labels::new([("job", "y")]).unwrap());
        let f = b.function(Function {
            name: "f".into(),
            ..Default::default()
        });
        let l = b.location(Location {
            lines: vec![Line {
                function_id: f,
                line: 2,
            }],
            ..Default::default()
        });
        let st = b.stack(&[l]);
        for (i, series) in [s1, s2, s1].into_iter().enumerate() {
            b.sample(SampleRow {
                profile_type: pt,
                series,
                timestamp_ns: i as i64,
                duration_ns: 10,
                period: 1,
                stack: st,
                value: 5 + i as i64,
            });
        }
        let batch = b.build().unwrap();
        let rb = batch.to_record_batch().unwrap();
        let back = SampleBatch::from_record_batch(&rb, batch.symbols().clone()).unwrap();
        assert_eq!(back, batch);
    }

    #[test]
    fn refuses_unknown_stack_and_bad_types() {
        let mut b = SampleBatchBuilder::new();
        let pt = b.profile_type(&"a:b:c:d:e".parse().unwrap());
        let s = b.series(Labels::new([("job", "x")]).unwrap());
        let st = b.stack(&[]);
        b.sample(SampleRow {
            profile_type: pt,
            series: s,
            timestamp_ns: 0,
            duration_ns: 0,
            period: 0,
            stack: st,
            value: 1,
        });
        let batch = b.build().unwrap();
        let rb = batch.to_record_batch().unwrap();
        let err = SampleBatch::from_record_batch(&rb, Symbols::default()).unwrap_err();
        assert!(err.to_string().contains("symbols do not define"), "{err}");
        let wrong = rb.project(&[0, 1, 2, 3, 4, 6, 5]).unwrap();
        let mut fields: Vec<Field> = wrong
            .schema()
            .fields()
            .iter()
            .map(|f| f.as_ref().clone())
            .collect();
        fields[5] = Field::new("stack_id", DataType::Int64, false);
        fields[6] = Field::new("value", DataType::UInt64, false);
        let wrong =
            RecordBatch::try_new(Arc::new(Schema::new(fields)), wrong.columns().to_vec()).unwrap();
        let err = SampleBatch::from_record_batch(&wrong, batch.symbols().clone()).unwrap_err();
        assert!(
            err.to_string()
                .contains("column \"stack_id\" has type Int64"),
            "{err}"
        );
    }
}
