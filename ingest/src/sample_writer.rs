//! The format-independent half of normalization: once a decoder (pprof, OTLP) has resolved a
//! sample's stack and labels, [`SampleWriter`] names its series, drops zero values, writes the
//! rows and, for cumulative types, the `:delta` increase since the series' previous profile.

use rustc_hash::FxHashMap;

use strata_engine::{
    Labels, ProfileType, ProfileTypeRef, SampleBatchBuilder, SampleRow, SeriesId, SeriesRef,
    StackId, StackRef, is_valid_label_name,
};

use crate::delta::{DeltaSource, delta_type, is_cumulative};
use crate::error::{Error, Result};
use crate::normalize::sanitize_label_name;

/// Per cumulative (type, series): the series' id and the profile's total per stack.
type Totals = FxHashMap<(usize, SeriesRef), (SeriesId, FxHashMap<StackId, (StackRef, i64)>)>;

/// Timing shared by every sample of one profile.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ProfileTiming {
    /// The profile's time, ns since the epoch.
    pub timestamp_ns: i64,
    /// How long the profile covers, ns.
    pub duration_ns: i64,
    /// The sampling period, in the period type's unit.
    pub period: i64,
}

/// Writes one profile's samples into a [`SampleBatchBuilder`].
pub(crate) struct SampleWriter<'b> {
    b: &'b mut SampleBatchBuilder,
    base: &'b [(String, String)],
    types: Vec<ProfileTypeRef>,
    /// For each type: the type itself when it is cumulative and deltas are tracked.
    cumulative: Vec<Option<ProfileType>>,
    timing: ProfileTiming,
    totals: Totals,
}

impl<'b> SampleWriter<'b> {
    /// A writer for samples with one value per type in `types`, in series that start from the
    /// `base` labels. Increases of cumulative types are totalled when `track_deltas`.
    pub fn new(
        b: &'b mut SampleBatchBuilder,
        base: &'b [(String, String)],
        types: &[ProfileType],
        timing: ProfileTiming,
        track_deltas: bool,
    ) -> Self {
        SampleWriter {
            types: types.iter().map(|pt| b.profile_type(pt)).collect(),
            cumulative: types
                .iter()
                .map(|pt| (track_deltas && is_cumulative(pt)).then(|| pt.clone()))
                .collect(),
            b,
            base,
            timing,
            totals: FxHashMap::default(),
        }
    }

    /// The number of values each sample carries.
    pub fn num_types(&self) -> usize {
        self.types.len()
    }

    /// The builder, to intern stacks and symbols.
    pub fn builder(&mut self) -> &mut SampleBatchBuilder {
        self.b
    }

    /// The series of the base labels plus `extra` (names sanitized, `exported_` on a clash).
    pub fn series<'a>(
        &mut self,
        extra: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<(SeriesRef, SeriesId)> {
        let mut labels = self.base.to_vec();
        for (k, v) in extra {
            let mut name = sanitize_label_name(k);
            if labels.iter().any(|(existing, _)| *existing == name) || name == "__name__" {
                name = format!("exported_{name}");
            }
            if !is_valid_label_name(&name) {
                return Err(Error::InvalidProfile(format!(
                    "label name {name:?} is invalid"
                )));
            }
            labels.push((name, v.to_owned()));
        }
        let labels = Labels::new(labels)?;
        let id = labels.id();
        Ok((self.b.series(labels), id))
    }

    /// Writes one sample: `values[i]` of type `i`; zero values are dropped.
    pub fn sample(&mut self, series: (SeriesRef, SeriesId), stack: StackRef, values: &[i64]) {
        debug_assert_eq!(values.len(), self.types.len());
        for (i, (&value, &pt)) in values.iter().zip(&self.types).enumerate() {
            if value == 0 {
                continue;
            }
            if self.cumulative[i].is_some() {
                let entry = self
                    .totals
                    .entry((i, series.0))
                    .or_insert_with(|| (series.1, FxHashMap::default()));
                entry
                    .1
                    .entry(self.b.stack_id(stack))
                    .or_insert((stack, 0))
                    .1 += value;
            }
            self.b.sample(SampleRow {
                profile_type: pt,
                series: series.0,
                timestamp_ns: self.timing.timestamp_ns,
                duration_ns: self.timing.duration_ns,
                period: self.timing.period,
                stack,
                value,
            });
        }
    }

    /// Writes the `:delta` increases of cumulative types, as tracked by `deltas` (a writer made
    /// without delta tracking has none).
    pub fn finish(self, deltas: Option<&mut dyn DeltaSource>) {
        let Some(deltas) = deltas else { return };
        if self.totals.is_empty() {
            return;
        }
        let tracker = deltas.tracker();
        let mut groups: Vec<_> = self.totals.into_iter().collect();
        groups.sort_by_key(|((i, s), _)| (*i, s.0));
        for ((i, series), (series_id, per_stack)) in groups {
            let pt = self.cumulative[i]
                .as_ref()
                .expect("only cumulative types are totalled");
            let values = per_stack.iter().map(|(id, (_, v))| (*id, *v)).collect();
            let Some(increase) = tracker.update(series_id, pt, self.timing.timestamp_ns, values)
            else {
                continue;
            };
            let delta_pt = self.b.profile_type(&delta_type(pt));
            for (stack_id, value) in increase.values {
                self.b.sample(SampleRow {
                    profile_type: delta_pt,
                    series,
                    timestamp_ns: self.timing.timestamp_ns,
                    duration_ns: increase.duration_ns,
                    period: self.timing.period,
                    stack: per_stack[&stack_id].0,
                    value,
                });
            }
        }
    }
}
