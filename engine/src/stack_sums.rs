//! [`StackSums`]: sample values summed per stack, the partial aggregate of a merge
//! ([`ScanPart::stack_sums`](crate::ScanPart::stack_sums)).

use std::sync::{Arc, LazyLock};

use arrow::array::{AsArray, Int64Array, RecordBatch, UInt64Array};
use arrow::datatypes::{DataType, Field, Int64Type, Schema, SchemaRef, UInt64Type};

use crate::error::{Error, Result};
use crate::model::IdMap;

static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        Field::new("stack_id", DataType::UInt64, false),
        Field::new("value", DataType::Int64, false),
        Field::new("period", DataType::Int64, false),
    ]))
});

/// The schema of [`ScanPart::stack_sums`](crate::ScanPart::stack_sums): `stack_id` UInt64,
/// `value` Int64 (the sum), `period` Int64 (the largest).
pub fn stack_sums_schema() -> SchemaRef {
    SCHEMA.clone()
}

/// Per stack id: the wrapping sum of values and the largest period, in first-seen order.
#[derive(Default)]
pub(crate) struct StackSums {
    index: IdMap<u64, u32>,
    stack_ids: Vec<u64>,
    values: Vec<i64>,
    periods: Vec<i64>,
}

impl StackSums {
    /// Room for `additional` more stacks.
    pub(crate) fn reserve(&mut self, additional: usize) {
        self.index.reserve(additional);
        self.stack_ids.reserve(additional);
        self.values.reserve(additional);
        self.periods.reserve(additional);
    }

    /// Adds one row (or an already summed group of rows).
    #[inline]
    pub(crate) fn add(&mut self, stack_id: u64, value: i64, period: i64) {
        let next = self.stack_ids.len() as u32;
        let slot = *self.index.entry(stack_id).or_insert(next) as usize;
        if slot == self.stack_ids.len() {
            self.stack_ids.push(stack_id);
            self.values.push(value);
            self.periods.push(period);
        } else {
            self.values[slot] = self.values[slot].wrapping_add(value);
            self.periods[slot] = self.periods[slot].max(period);
        }
    }

    /// Adds every row of `batch`, whose columns `period`, `stack_id` and `value` are at the
    /// given positions.
    pub(crate) fn add_batch(&mut self, batch: &RecordBatch, [period, stack, value]: [usize; 3]) {
        let periods = batch.column(period).as_primitive::<Int64Type>();
        let stacks = batch.column(stack).as_primitive::<UInt64Type>();
        let values = batch.column(value).as_primitive::<Int64Type>();
        for ((&s, &v), &p) in stacks
            .values()
            .iter()
            .zip(values.values().iter())
            .zip(periods.values().iter())
        {
            self.add(s, v, p);
        }
    }

    /// The sums as one batch in [`stack_sums_schema`].
    pub(crate) fn into_batch(self) -> Result<RecordBatch> {
        RecordBatch::try_new(
            stack_sums_schema(),
            vec![
                Arc::new(UInt64Array::from(self.stack_ids)),
                Arc::new(Int64Array::from(self.values)),
                Arc::new(Int64Array::from(self.periods)),
            ],
        )
        .map_err(Error::arrow("building stack sums"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_per_stack_and_keeps_the_largest_period() {
        let mut s = StackSums::default();
        s.add(7, 5, 10);
        s.add(3, 1, 10);
        s.add(7, -2, 20);
        s.add(7, i64::MAX, 1);
        let b = s.into_batch().unwrap();
        let ids = b.column(0).as_primitive::<UInt64Type>().values().to_vec();
        let values = b.column(1).as_primitive::<Int64Type>().values().to_vec();
        let periods = b.column(2).as_primitive::<Int64Type>().values().to_vec();
        assert_eq!(ids, vec![7, 3]);
        assert_eq!(values, vec![3i64.wrapping_add(i64::MAX), 1]);
        assert_eq!(periods, vec![20, 10]);
    }
}
