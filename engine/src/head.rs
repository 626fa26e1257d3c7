//! The head: recent samples in memory, columnar, indexed, bounded by a byte budget.
//!
//! Samples are grouped per (profile type, series). Each group holds runs of samples that share
//! timestamp, duration and period (one pushed profile is one run) and two columns: a head-local
//! stack ordinal (`u32`) and the value, kept as `i32` until a value needs 64 bits.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Instant;

use arrow::array::{ArrayRef, DictionaryArray, Int64Array, RecordBatch, StringArray, UInt64Array};
use arrow::datatypes::Int32Type;
use roaring::RoaringBitmap;

use crate::batch::{SampleBatch, SampleColumns};
use crate::block::samples_schema;
use crate::error::{Error, Result};
use crate::index::SeriesIndex;
use crate::model::{
    Function, FunctionId, IdMap, Labels, Location, LocationId, Mapping, MappingId, ProfileType,
    SeriesId, StackId,
};
use crate::scan::{TimeRange, scan_schema};
use crate::symbol_tables::SymbolTables;
use crate::wal::Elision;

/// Rows per record batch produced by the head.
const BATCH_ROWS: usize = 65_536;

#[derive(Clone, Copy, Debug)]
struct Run {
    timestamp: i64,
    duration: i64,
    period: i64,
    len: u32,
}

/// A group's value column. Values are kept as `i32` multiples of a per-group `unit` (the
/// sampling period when the first value is a multiple of it, as CPU nanoseconds are, else 1)
/// until a value does not fit; then the column widens to plain `i64`.
#[derive(Debug)]
enum Values {
    Scaled { unit: i64, values: Vec<i32> },
    Wide(Vec<i64>),
}

impl Values {
    fn get(&self, i: usize) -> i64 {
        match self {
            Values::Scaled { unit, values } => values[i] as i64 * unit,
            Values::Wide(v) => v[i],
        }
    }

    fn bytes(&self) -> usize {
        match self {
            Values::Scaled { values, .. } => values.capacity() * 4,
            Values::Wide(v) => v.capacity() * 8,
        }
    }

    fn reserve_exact(&mut self, n: usize) {
        match self {
            Values::Scaled { values, .. } => values.reserve_exact(n),
            Values::Wide(v) => v.reserve_exact(n),
        }
    }

    fn push(&mut self, value: i64, period: i64) {
        match self {
            Values::Scaled { unit, values } => {
                if values.is_empty() {
                    *unit = if period > 1 && value % period == 0 {
                        period
                    } else {
                        1
                    };
                }
                let scaled = (value % *unit == 0)
                    .then(|| i32::try_from(value / *unit).ok())
                    .flatten();
                match scaled {
                    Some(x) => values.push(x),
                    None => {
                        let mut wide: Vec<i64> = Vec::with_capacity(values.capacity().max(1));
                        wide.extend(values.iter().map(|&x| x as i64 * *unit));
                        wide.push(value);
                        *self = Values::Wide(wide);
                    }
                }
            }
            Values::Wide(v) => v.push(value),
        }
    }
}

/// Samples of one (profile type, series).
#[derive(Debug)]
struct SampleGroup {
    runs: Vec<Run>,
    stacks: Vec<u32>,
    values: Values,
}

/// Fixed bytes of a group beyond its vectors' buffers (struct and hash map slot).
const GROUP_OVERHEAD: usize = std::mem::size_of::<SampleGroup>() + 16;

impl SampleGroup {
    fn bytes(&self) -> usize {
        GROUP_OVERHEAD
            + self.runs.capacity() * std::mem::size_of::<Run>()
            + self.stacks.capacity() * 4
            + self.values.bytes()
    }

    /// Reserves room for `extra` more rows, growing by at least a quarter to bound copying while
    /// keeping slack small.
    fn reserve(&mut self, extra: usize) {
        let len = self.stacks.len();
        if self.stacks.capacity() - len >= extra {
            return;
        }
        let add = extra.max(len / 4);
        self.stacks.reserve_exact(add);
        self.values.reserve_exact(add);
    }

    fn push(&mut self, ts: i64, dur: i64, period: i64, stack: u32, value: i64) {
        match self.runs.last_mut() {
            Some(r) if r.timestamp == ts && r.duration == dur && r.period == period => r.len += 1,
            _ => {
                if self.runs.len() == self.runs.capacity() {
                    self.runs.reserve_exact((self.runs.len() / 4).max(1));
                }
                self.runs.push(Run {
                    timestamp: ts,
                    duration: dur,
                    period,
                    len: 1,
                })
            }
        }
        self.stacks.push(stack);
        self.values.push(value, period);
    }

    /// `(row, run)` pairs in timestamp order, each run's rows contiguous.
    fn runs_by_time(&self) -> Vec<(usize, Run)> {
        let mut out = Vec::with_capacity(self.runs.len());
        let mut row = 0usize;
        for r in &self.runs {
            out.push((row, *r));
            row += r.len as usize;
        }
        out.sort_by_key(|(_, r)| r.timestamp);
        out
    }
}

/// Accumulates rows into record batches of one schema.
#[derive(Default)]
struct RowBuffer {
    series: Vec<u64>,
    ts: Vec<i64>,
    dur: Vec<i64>,
    period: Vec<i64>,
    stack: Vec<u64>,
    value: Vec<i64>,
    profile_type: Vec<i32>,
}

impl RowBuffer {
    fn len(&self) -> usize {
        self.value.len()
    }

    /// Adds the rows of one run of `group`, starting at `row`.
    fn push_run(
        &mut self,
        head: &Head,
        group: &SampleGroup,
        series: SeriesId,
        row: usize,
        run: &Run,
    ) {
        for i in row..row + run.len as usize {
            self.series.push(series.0);
            self.ts.push(run.timestamp);
            self.dur.push(run.duration);
            self.period.push(run.period);
            self.stack.push(head.stack_ids[group.stacks[i] as usize].0);
            self.value.push(group.values.get(i));
        }
    }

    fn take_scan_batch(&mut self) -> RecordBatch {
        let columns: Vec<ArrayRef> = vec![
            Arc::new(UInt64Array::from(std::mem::take(&mut self.series))),
            Arc::new(Int64Array::from(std::mem::take(&mut self.ts))),
            Arc::new(Int64Array::from(std::mem::take(&mut self.dur))),
            Arc::new(Int64Array::from(std::mem::take(&mut self.period))),
            Arc::new(UInt64Array::from(std::mem::take(&mut self.stack))),
            Arc::new(Int64Array::from(std::mem::take(&mut self.value))),
        ];
        RecordBatch::try_new(scan_schema(), columns).expect("columns match the scan schema")
    }

    fn take_block_batch(&mut self, type_names: &StringArray) -> RecordBatch {
        let keys = arrow::array::Int32Array::from(std::mem::take(&mut self.profile_type));
        let dict = DictionaryArray::<Int32Type>::try_new(keys, Arc::new(type_names.clone()))
            .expect("keys index the profile type names");
        let mut scan = self.take_scan_batch().columns().to_vec();
        scan.insert(0, Arc::new(dict));
        RecordBatch::try_new(samples_schema(), scan).expect("columns match the samples schema")
    }
}

/// Counters describing a head.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HeadStats {
    /// Samples held.
    pub samples: u64,
    /// Series held.
    pub series: u64,
    /// Distinct stacks held.
    pub stacks: u64,
    /// Bytes held by samples (columns, runs, groups).
    pub sample_bytes: u64,
    /// Bytes held by series, index and symbols.
    pub other_bytes: u64,
    /// Earliest sample timestamp (ns), if any sample.
    pub min_time: Option<i64>,
    /// Latest sample timestamp (ns), if any sample.
    pub max_time: Option<i64>,
}

/// In-memory recent data.
pub(crate) struct Head {
    created: Instant,
    min_time: i64,
    max_time: i64,
    profile_types: Vec<ProfileType>,
    profile_type_index: HashMap<ProfileType, u32>,
    series: Vec<(SeriesId, Labels)>,
    series_index: IdMap<SeriesId, u32>,
    /// Series admitted by `reserve_series` whose batch is not applied yet.
    reserved_series: u64,
    index: SeriesIndex,
    type_series: Vec<RoaringBitmap>,
    stack_ids: Vec<StackId>,
    stack_index: IdMap<StackId, u32>,
    /// Definitions by stack ordinal; `None` for a stack a replayed WAL record referenced but
    /// whose defining record was damaged (its samples are kept; its symbols may come later).
    stacks: Vec<Option<Box<[LocationId]>>>,
    /// Stacks with no definition.
    undefined_stacks: u64,
    locations: IdMap<LocationId, Location>,
    functions: IdMap<FunctionId, Function>,
    mappings: IdMap<MappingId, Mapping>,
    groups: IdMap<(u32, u32), SampleGroup>,
    num_samples: u64,
    sample_bytes: usize,
    other_bytes: usize,
}

impl Head {
    pub fn new() -> Self {
        Head {
            created: Instant::now(),
            min_time: i64::MAX,
            max_time: i64::MIN,
            profile_types: Vec::new(),
            profile_type_index: HashMap::new(),
            series: Vec::new(),
            series_index: IdMap::default(),
            reserved_series: 0,
            index: SeriesIndex::default(),
            type_series: Vec::new(),
            stack_ids: Vec::new(),
            stack_index: IdMap::default(),
            stacks: Vec::new(),
            undefined_stacks: 0,
            locations: IdMap::default(),
            functions: IdMap::default(),
            mappings: IdMap::default(),
            groups: IdMap::default(),
            num_samples: 0,
            sample_bytes: 0,
            other_bytes: 0,
        }
    }

    pub fn created(&self) -> Instant {
        self.created
    }

    pub fn is_empty(&self) -> bool {
        self.num_samples == 0 && self.stacks.is_empty() && self.locations.is_empty()
    }

    pub fn bytes(&self) -> u64 {
        (self.sample_bytes + self.other_bytes) as u64
    }

    pub fn stats(&self) -> HeadStats {
        HeadStats {
            samples: self.num_samples,
            series: self.series.len() as u64,
            stacks: self.stacks.len() as u64,
            sample_bytes: self.sample_bytes as u64,
            other_bytes: self.other_bytes as u64,
            min_time: (self.num_samples > 0).then_some(self.min_time),
            max_time: (self.num_samples > 0).then_some(self.max_time),
        }
    }

    /// Number of series the batch would add.
    pub fn new_series(&self, batch: &SampleBatch) -> u64 {
        batch
            .series_ids
            .iter()
            .filter(|id| !self.series_index.contains_key(id))
            .count() as u64
    }

    pub fn num_series(&self) -> u64 {
        self.series.len() as u64
    }

    /// Adds a validated batch.
    pub fn apply(&mut self, batch: &SampleBatch) {
        if self.is_empty() {
            // The head's age counts from its first data.
            self.created = Instant::now();
        }
        let pt_map: Vec<u32> = batch
            .profile_types
            .iter()
            .map(|pt| self.intern_type(pt))
            .collect();
        let series_map: Vec<u32> = batch
            .series
            .iter()
            .zip(&batch.series_ids)
            .map(|(labels, id)| self.intern_series(*id, labels))
            .collect();
        self.add_symbols(batch);
        let stack_map = self.add_stacks(batch);
        let c = &batch.samples;
        if c.len() == 0 {
            return;
        }
        let key = |i: usize| {
            (
                pt_map[c.profile_type[i] as usize],
                series_map[c.series[i] as usize],
            )
        };
        self.reserve_groups(c.len(), key);
        self.push_samples(c, key, &stack_map);
    }

    /// Adds the batch's mappings, functions and locations (a symbolized location replaces an
    /// unsymbolized one).
    fn add_symbols(&mut self, batch: &SampleBatch) {
        let (sym, ids) = (&batch.symbols, &batch.ids);
        for (m, &id) in sym.mappings.iter().zip(&ids.mappings) {
            if !self.mappings.contains_key(&id) {
                self.other_bytes += 96 + m.build_id.len() + m.filename.len();
                self.mappings.insert(id, m.clone());
            }
        }
        for (f, &id) in sym.functions.iter().zip(&ids.functions) {
            if !self.functions.contains_key(&id) {
                self.other_bytes += 112 + f.name.len() + f.system_name.len() + f.filename.len();
                self.functions.insert(id, f.clone());
            }
        }
        for (l, &id) in sym.locations.iter().zip(&ids.locations) {
            match self.locations.get_mut(&id) {
                Some(existing) => {
                    if !existing.is_symbolized() && l.is_symbolized() {
                        self.other_bytes += l.lines.len() * 16;
                        *existing = l.clone();
                    }
                }
                None => {
                    self.other_bytes += 64 + l.lines.len() * 16;
                    self.locations.insert(id, l.clone());
                }
            }
        }
    }

    /// Adds the batch's stacks (defining ones held undefined so far) and its external stacks;
    /// returns the head ordinal of each entry of the batch's stack column space.
    fn add_stacks(&mut self, batch: &SampleBatch) -> Vec<u32> {
        let (sym, ids) = (&batch.symbols, &batch.ids);
        let mut stack_map: Vec<u32> =
            Vec::with_capacity(sym.stacks.len() + batch.external_stacks.len());
        for (locs, id) in sym.stacks.iter().zip(&ids.stacks) {
            let o = self.intern_stack(*id);
            let slot = &mut self.stacks[o as usize];
            if slot.is_none() {
                self.other_bytes += locs.len() * 8;
                *slot = Some(locs.clone().into_boxed_slice());
                self.undefined_stacks -= 1;
            }
            stack_map.push(o);
        }
        for id in &batch.external_stacks {
            stack_map.push(self.intern_stack(*id));
        }
        stack_map
    }

    /// Creates the (profile type, series) groups of `n` samples keyed by `key` and reserves
    /// exactly their rows.
    fn reserve_groups(&mut self, n: usize, key: impl Fn(usize) -> (u32, u32)) {
        let mut counts: IdMap<(u32, u32), usize> = IdMap::default();
        for i in 0..n {
            *counts.entry(key(i)).or_default() += 1;
        }
        for (&key, &count) in &counts {
            self.type_series[key.0 as usize].insert(key.1);
            let group = self.groups.entry(key).or_insert_with(|| SampleGroup {
                runs: Vec::new(),
                stacks: Vec::new(),
                values: Values::Scaled {
                    unit: 1,
                    values: Vec::new(),
                },
            });
            let before = if group.stacks.capacity() == 0 {
                0
            } else {
                group.bytes()
            };
            group.reserve(count);
            self.sample_bytes = self.sample_bytes + group.bytes() - before;
        }
    }

    /// Appends the samples to their (reserved) groups, keeping the byte and time counters.
    fn push_samples(
        &mut self,
        c: &SampleColumns,
        key: impl Fn(usize) -> (u32, u32),
        stack_map: &[u32],
    ) {
        let mut last_key = None;
        let mut group: Option<&mut SampleGroup> = None;
        let groups = &mut self.groups;
        let mut grown = 0isize;
        for i in 0..c.len() {
            let key = key(i);
            if last_key != Some(key) {
                last_key = Some(key);
                group = Some(groups.get_mut(&key).expect("reserved above"));
            }
            let g = group.as_deref_mut().expect("set above");
            let (runs_cap, values_bytes) = (g.runs.capacity(), g.values.bytes());
            let ts = c.timestamp[i];
            g.push(
                ts,
                c.duration[i],
                c.period[i],
                stack_map[c.stack[i] as usize],
                c.value[i],
            );
            grown += ((g.runs.capacity() - runs_cap) * std::mem::size_of::<Run>()) as isize
                + g.values.bytes() as isize
                - values_bytes as isize;
            self.min_time = self.min_time.min(ts);
            self.max_time = self.max_time.max(ts);
        }
        self.sample_bytes = (self.sample_bytes as isize + grown) as usize;
        self.num_samples += c.len() as u64;
    }

    /// The ordinal of stack `id`, adding it (undefined) if new.
    fn intern_stack(&mut self, id: StackId) -> u32 {
        if let Some(&o) = self.stack_index.get(&id) {
            return o;
        }
        let o = self.stacks.len() as u32;
        self.other_bytes += 48;
        self.stacks.push(None);
        self.undefined_stacks += 1;
        self.stack_ids.push(id);
        self.stack_index.insert(id, o);
        o
    }

    /// Stacks whose samples are held but whose definition is not.
    pub fn undefined_stacks(&self) -> u64 {
        self.undefined_stacks
    }

    /// What of `batch` this head already holds (see [`Elision`]).
    pub fn elision(&self, batch: &SampleBatch) -> Elision {
        Elision {
            known_stacks: batch
                .ids
                .stacks
                .iter()
                .map(|id| {
                    self.stack_index
                        .get(id)
                        .is_some_and(|&o| self.stacks[o as usize].is_some())
                })
                .collect(),
            known_locations: batch
                .symbols
                .locations
                .iter()
                .zip(&batch.ids.locations)
                .map(|(l, id)| {
                    self.locations
                        .get(id)
                        .is_some_and(|h| h.is_symbolized() || !l.is_symbolized())
                })
                .collect(),
        }
    }

    fn intern_type(&mut self, pt: &ProfileType) -> u32 {
        if let Some(&o) = self.profile_type_index.get(pt) {
            return o;
        }
        let o = self.profile_types.len() as u32;
        self.profile_types.push(pt.clone());
        self.profile_type_index.insert(pt.clone(), o);
        self.type_series.push(RoaringBitmap::new());
        self.other_bytes += 128;
        o
    }

    fn intern_series(&mut self, id: SeriesId, labels: &Labels) -> u32 {
        if let Some(&o) = self.series_index.get(&id) {
            return o;
        }
        let o = self.series.len() as u32;
        let grown = self.index.add(o, labels);
        self.other_bytes += 64 + labels.heap_bytes() + grown;
        self.series.push((id, labels.clone()));
        self.series_index.insert(id, o);
        o
    }

    /// Profile types with samples in `range`.
    pub fn profile_types(&self, range: TimeRange) -> Vec<ProfileType> {
        if self.num_samples == 0 || !range.overlaps(self.min_time, self.max_time) {
            return Vec::new();
        }
        self.profile_types
            .iter()
            .zip(&self.type_series)
            .filter(|(_, s)| !s.is_empty())
            .map(|(pt, _)| pt.clone())
            .collect()
    }

    /// Head series ordinals matching the matchers (restricted to a profile type if given).
    fn select(
        &self,
        profile_type: Option<&ProfileType>,
        matchers: &[crate::LabelMatcher],
        range: TimeRange,
    ) -> RoaringBitmap {
        if self.num_samples == 0 || !range.overlaps(self.min_time, self.max_time) {
            return RoaringBitmap::new();
        }
        let mut sel = self.index.select(matchers);
        match profile_type {
            Some(pt) => match self.profile_type_index.get(pt) {
                Some(&o) => sel &= &self.type_series[o as usize],
                None => sel.clear(),
            },
            None => {
                let with_samples = self
                    .type_series
                    .iter()
                    .fold(RoaringBitmap::new(), |a, b| a | b);
                sel &= with_samples;
            }
        }
        sel
    }

    pub fn label_names(
        &self,
        profile_type: Option<&ProfileType>,
        matchers: &[crate::LabelMatcher],
        range: TimeRange,
    ) -> Vec<String> {
        self.index
            .label_names(&self.select(profile_type, matchers, range))
    }

    pub fn label_values(
        &self,
        name: &str,
        profile_type: Option<&ProfileType>,
        matchers: &[crate::LabelMatcher],
        range: TimeRange,
    ) -> Vec<String> {
        self.index
            .label_values(name, &self.select(profile_type, matchers, range))
    }

    /// Samples of `profile_type` for series matching `matchers` in `range`, in scan schema,
    /// plus the labels of the selected series (none unless `labelled`).
    pub fn scan(
        &self,
        profile_type: &ProfileType,
        matchers: &[crate::LabelMatcher],
        range: TimeRange,
        labelled: bool,
    ) -> (BTreeMap<SeriesId, Labels>, Vec<RecordBatch>) {
        let selected = self.select(Some(profile_type), matchers, range);
        let mut series = BTreeMap::new();
        let mut out = Vec::new();
        let Some(&pt) = self.profile_type_index.get(profile_type) else {
            return (series, out);
        };
        let mut buf = RowBuffer::default();
        for s in &selected {
            let Some(group) = self.groups.get(&(pt, s)) else {
                continue;
            };
            let (sid, labels) = &self.series[s as usize];
            let mut row = 0usize;
            let mut any = false;
            for run in &group.runs {
                let len = run.len as usize;
                if range.contains(run.timestamp) {
                    any = true;
                    buf.push_run(self, group, *sid, row, run);
                    if buf.len() >= BATCH_ROWS {
                        out.push(buf.take_scan_batch());
                    }
                }
                row += len;
            }
            if any && labelled {
                series.insert(*sid, labels.clone());
            }
        }
        if buf.len() > 0 {
            out.push(buf.take_scan_batch());
        }
        (series, out)
    }

    /// Every sample in block layout, sorted by (profile type, series id, timestamp).
    pub fn sorted_block_batches(&self) -> impl Iterator<Item = Result<RecordBatch>> + '_ {
        let mut type_order: Vec<u32> = (0..self.profile_types.len() as u32).collect();
        type_order.sort_by_key(|&p| self.profile_types[p as usize].to_string());
        let names: Vec<String> = type_order
            .iter()
            .map(|&p| self.profile_types[p as usize].to_string())
            .collect();
        let type_names = StringArray::from(names);
        let mut keys: Vec<(usize, SeriesId, u32, u32)> = self
            .groups
            .keys()
            .map(|&(p, s)| {
                let rank = type_order.iter().position(|&x| x == p).expect("known type");
                (rank, self.series[s as usize].0, p, s)
            })
            .collect();
        keys.sort_unstable();
        let mut keys = keys.into_iter().peekable();
        let mut buf = RowBuffer::default();
        std::iter::from_fn(move || {
            for (rank, sid, p, s) in keys.by_ref() {
                let group = &self.groups[&(p, s)];
                for (row, run) in group.runs_by_time() {
                    buf.profile_type
                        .extend(std::iter::repeat_n(rank as i32, run.len as usize));
                    buf.push_run(self, group, sid, row, &run);
                }
                if buf.len() >= BATCH_ROWS {
                    return Some(Ok(buf.take_block_batch(&type_names)));
                }
            }
            (buf.len() > 0).then(|| Ok(buf.take_block_batch(&type_names)))
        })
    }

    /// Labels of every series with samples.
    pub fn series_map(&self) -> BTreeMap<SeriesId, Labels> {
        self.series.iter().map(|(id, l)| (*id, l.clone())).collect()
    }

    /// All stacks and symbols held.
    pub fn symbol_tables(&self) -> SymbolTables {
        SymbolTables {
            stacks: self
                .stack_ids
                .iter()
                .zip(&self.stacks)
                .filter_map(|(id, l)| l.as_ref().map(|l| (*id, l.to_vec())))
                .collect(),
            locations: self
                .locations
                .iter()
                .map(|(k, v)| (*k, v.clone()))
                .collect(),
            functions: self
                .functions
                .iter()
                .map(|(k, v)| (*k, v.clone()))
                .collect(),
            mappings: self.mappings.iter().map(|(k, v)| (*k, v.clone())).collect(),
        }
    }

    /// Resolves what the head knows of `stacks` into `out`; returns the stacks it did not know.
    pub fn resolve(&self, stacks: &[StackId], out: &mut SymbolTables) -> Vec<StackId> {
        let mut missing = Vec::new();
        for id in stacks {
            match self
                .stack_index
                .get(id)
                .and_then(|&o| self.stacks[o as usize].as_ref())
            {
                Some(locs) => {
                    out.stacks.insert(*id, locs.to_vec());
                }
                None => missing.push(*id),
            }
        }
        self.resolve_locations(out);
        missing
    }

    /// Address-keyed locations held without lines, with their mappings.
    pub fn unsymbolized_locations(&self) -> Vec<(LocationId, u64, Mapping)> {
        self.locations
            .iter()
            .filter(|(_, l)| l.is_address_keyed() && !l.is_symbolized())
            .filter_map(|(id, l)| Some((*id, l.address, self.mappings.get(&l.mapping_id)?.clone())))
            .collect()
    }

    /// Whether location `id` is held with lines.
    pub fn has_lines(&self, id: &LocationId) -> bool {
        self.locations.get(id).is_some_and(Location::is_symbolized)
    }

    /// Fills in locations (and their functions and mappings) referenced by `out.stacks` that are
    /// absent or unsymbolized in `out`.
    pub fn resolve_locations(&self, out: &mut SymbolTables) {
        for id in out.unsymbolized_locations() {
            if let Some(loc) = self.locations.get(&id) {
                for line in &loc.lines {
                    if let Some(f) = self.functions.get(&line.function_id) {
                        out.functions.insert(line.function_id, f.clone());
                    }
                }
                if let Some(m) = self.mappings.get(&loc.mapping_id) {
                    out.mappings.insert(loc.mapping_id, m.clone());
                }
                out.insert_location(id, loc.clone());
            }
        }
    }
}

impl Head {
    /// Admits the batch's new series against `max` (counting series admitted for batches not
    /// yet applied) and reserves them; returns how many were reserved, to hand back to
    /// [`Head::release_series`] once the batch is applied or abandoned.
    pub fn reserve_series(&mut self, batch: &SampleBatch, max: u64) -> Result<u64> {
        let new = self.new_series(batch);
        let total = self.num_series() + self.reserved_series + new;
        if total > max {
            return Err(Error::LimitExceeded {
                limit: "head.max_series",
                value: total,
                max,
            });
        }
        self.reserved_series += new;
        Ok(new)
    }

    /// Returns reserved series.
    pub fn release_series(&mut self, n: u64) {
        self.reserved_series -= n;
    }
}

#[cfg(test)]
mod tests;
