//! [`SampleBatch`]: the unit of `append`, built with [`SampleBatchBuilder`] or from an Arrow
//! `RecordBatch` ([`SampleBatch::from_record_batch`]).

mod arrow_io;

use std::collections::HashMap;

pub use arrow_io::input_schema;

use crate::error::{Error, Result};
use crate::model::{
    Function, FunctionId, IdMap, IdSet, Labels, Location, LocationId, Mapping, MappingId,
    ProfileType, SeriesId, StackId, stack_id,
};

/// Index of a profile type within one batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ProfileTypeRef(pub u32);

/// Index of a series within one batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SeriesRef(pub u32);

/// Index of a location within one batch (from [`SampleBatchBuilder::location_ref`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LocationRef(pub u32);

/// Index of a stack within one batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct StackRef(pub u32);

/// One sample as handed to [`SampleBatchBuilder::sample`].
#[derive(Clone, Copy, Debug)]
pub struct SampleRow {
    /// The profile type.
    pub profile_type: ProfileTypeRef,
    /// The series.
    pub series: SeriesRef,
    /// When the profile was taken, nanoseconds since the Unix epoch.
    pub timestamp_ns: i64,
    /// How long the profile covers, in nanoseconds (0 for instant profiles).
    pub duration_ns: i64,
    /// The sampling period, in the profile type's period unit.
    pub period: i64,
    /// The stack.
    pub stack: StackRef,
    /// The value, in the profile type's sample unit.
    pub value: i64,
}

/// Symbol definitions carried by a batch, each listed once.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Symbols {
    /// Mappings.
    pub mappings: Vec<Mapping>,
    /// Functions.
    pub functions: Vec<Function>,
    /// Locations.
    pub locations: Vec<Location>,
    /// Stacks: location IDs, leaf first.
    pub stacks: Vec<Vec<LocationId>>,
}

/// Columns of the samples, one entry per sample.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct SampleColumns {
    pub profile_type: Vec<u32>,
    pub series: Vec<u32>,
    pub timestamp: Vec<i64>,
    pub duration: Vec<i64>,
    pub period: Vec<i64>,
    /// Index into `Symbols::stacks`.
    pub stack: Vec<u32>,
    pub value: Vec<i64>,
}

impl SampleColumns {
    pub fn len(&self) -> usize {
        self.value.len()
    }

    fn push(&mut self, r: &SampleRow) {
        self.profile_type.push(r.profile_type.0);
        self.series.push(r.series.0);
        self.timestamp.push(r.timestamp_ns);
        self.duration.push(r.duration_ns);
        self.period.push(r.period);
        self.stack.push(r.stack.0);
        self.value.push(r.value);
    }
}

/// A self-contained batch of samples for one `append`: the profile types and series its samples
/// use, the stacks and symbols they point to, and the samples. Every reference is checked when
/// the batch is built; every ID is computed from content.
#[derive(Clone, Debug, PartialEq)]
pub struct SampleBatch {
    pub(crate) profile_types: Vec<ProfileType>,
    pub(crate) series: Vec<Labels>,
    pub(crate) series_ids: Vec<SeriesId>,
    pub(crate) symbols: Symbols,
    pub(crate) ids: SymbolIds,
    /// Stacks the samples use that this batch does not define (only in batches decoded from
    /// the WAL, whose records leave out stacks the head already held). The sample stack column
    /// indexes `Symbols::stacks` followed by these.
    pub(crate) external_stacks: Vec<StackId>,
    pub(crate) samples: SampleColumns,
}

/// The content-addressed IDs of a batch's symbols, parallel to the [`Symbols`] vectors,
/// computed once per batch.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct SymbolIds {
    pub mappings: Vec<MappingId>,
    pub functions: Vec<FunctionId>,
    pub locations: Vec<LocationId>,
    pub stacks: Vec<StackId>,
}

impl SymbolIds {
    pub fn compute(symbols: &Symbols) -> SymbolIds {
        SymbolIds {
            mappings: symbols.mappings.iter().map(Mapping::id).collect(),
            functions: symbols.functions.iter().map(Function::id).collect(),
            locations: symbols.locations.iter().map(Location::id).collect(),
            stacks: symbols.stacks.iter().map(|s| stack_id(s)).collect(),
        }
    }
}

impl SampleBatch {
    /// Number of samples.
    pub fn num_samples(&self) -> usize {
        self.samples.len()
    }

    /// The series the samples belong to.
    pub fn series(&self) -> &[Labels] {
        &self.series
    }

    /// The profile types used.
    pub fn profile_types(&self) -> &[ProfileType] {
        &self.profile_types
    }

    /// The symbol definitions carried.
    pub fn symbols(&self) -> &Symbols {
        &self.symbols
    }

    /// The content-addressed ID of every stack in [`Symbols::stacks`], in order.
    pub fn stack_ids(&self) -> &[StackId] {
        &self.ids.stacks
    }

    /// The stack of sample-column entry `i` (a local stack or an external one).
    pub(crate) fn stack_at(&self, i: u32) -> StackId {
        let i = i as usize;
        match self.ids.stacks.get(i) {
            Some(id) => *id,
            None => self.external_stacks[i - self.ids.stacks.len()],
        }
    }

    /// Assembles and checks a batch from parts, computing every ID (WAL decoder, Arrow input).
    pub(crate) fn from_parts(
        profile_types: Vec<ProfileType>,
        series: Vec<Labels>,
        symbols: Symbols,
        samples: SampleColumns,
    ) -> Result<SampleBatch> {
        let ids = SymbolIds::compute(&symbols);
        Self::from_parts_with_ids(profile_types, series, symbols, ids, Vec::new(), samples)
    }

    /// Assembles and checks a batch whose symbol IDs are already known.
    pub(crate) fn from_parts_with_ids(
        profile_types: Vec<ProfileType>,
        series: Vec<Labels>,
        symbols: Symbols,
        ids: SymbolIds,
        external_stacks: Vec<StackId>,
        samples: SampleColumns,
    ) -> Result<SampleBatch> {
        let mapping_ids: IdSet<MappingId> = ids.mappings.iter().copied().collect();
        let function_ids: IdSet<FunctionId> = ids.functions.iter().copied().collect();
        let location_ids: IdSet<LocationId> = ids.locations.iter().copied().collect();
        check_symbol_references(
            &symbols,
            symbols.stacks.iter(),
            |m| mapping_ids.contains(&m),
            |f| function_ids.contains(&f),
            |l| location_ids.contains(&l),
        )?;
        Self::assemble(
            profile_types,
            series,
            symbols,
            ids,
            external_stacks,
            samples,
        )
    }

    /// A batch from parts whose symbols are known to be closed under references: checks the
    /// sample columns only.
    fn assemble(
        profile_types: Vec<ProfileType>,
        series: Vec<Labels>,
        symbols: Symbols,
        ids: SymbolIds,
        external_stacks: Vec<StackId>,
        samples: SampleColumns,
    ) -> Result<SampleBatch> {
        let n = samples.len();
        let cols = [
            samples.profile_type.len(),
            samples.series.len(),
            samples.timestamp.len(),
            samples.duration.len(),
            samples.period.len(),
            samples.stack.len(),
        ];
        if cols.iter().any(|&c| c != n) {
            return Err(Error::batch("sample columns have different lengths"));
        }
        let check = |col: &[u32], len: usize, what: &str| -> Result<()> {
            match col.iter().find(|&&i| i as usize >= len) {
                Some(i) => Err(Error::batch(format!(
                    "a sample refers to {what} #{i} but the batch defines {len}"
                ))),
                None => Ok(()),
            }
        };
        if samples.timestamp.contains(&i64::MAX) {
            return Err(Error::batch(
                "a sample has timestamp i64::MAX, which no time range can include",
            ));
        }
        check(&samples.profile_type, profile_types.len(), "profile type")?;
        check(&samples.series, series.len(), "series")?;
        check(
            &samples.stack,
            symbols.stacks.len() + external_stacks.len(),
            "stack",
        )?;
        let series_ids = series.iter().map(Labels::id).collect();
        Ok(SampleBatch {
            profile_types,
            series,
            series_ids,
            symbols,
            ids,
            external_stacks,
            samples,
        })
    }
}

/// Checks that symbols are closed under references: every location's mapping and functions,
/// and every stack's locations, are among those `has_*` accept.
fn check_symbol_references<'a>(
    symbols: &Symbols,
    stacks: impl Iterator<Item = &'a Vec<LocationId>>,
    has_mapping: impl Fn(MappingId) -> bool,
    has_function: impl Fn(FunctionId) -> bool,
    has_location: impl Fn(LocationId) -> bool,
) -> Result<()> {
    for loc in &symbols.locations {
        if loc.mapping_id != MappingId::NONE && !has_mapping(loc.mapping_id) {
            return Err(Error::batch(format!(
                "location at address {:#x} refers to mapping {} which the batch does not define",
                loc.address, loc.mapping_id
            )));
        }
        if let Some(line) = loc.lines.iter().find(|l| !has_function(l.function_id)) {
            return Err(Error::batch(format!(
                "location at address {:#x} refers to function {} which the batch does not define",
                loc.address, line.function_id
            )));
        }
    }
    for stack in stacks {
        if let Some(l) = stack.iter().find(|&&l| !has_location(l)) {
            return Err(Error::batch(format!(
                "a stack refers to location {l} which the batch does not define"
            )));
        }
    }
    Ok(())
}

/// Builds a [`SampleBatch`], interning profile types, series and symbols as they are added.
///
/// ```
/// use strata_engine::{Function, Labels, Line, Location, ProfileType, SampleBatchBuilder, SampleRow};
/// let mut b = SampleBatchBuilder::new();
/// let pt = b.profile_type(&"process_cpu:cpu:nanoseconds:cpu:nanoseconds:delta".parse().unwrap());
/// let series = b.series(Labels::new([("job", "api")]).unwrap());
/// let main = b.function(Function { name: "main".into(), ..Default::default() });
/// let loc = b.location(Location { lines: vec![Line { function_id: main, line: 3 }], ..Default::default() });
/// let stack = b.stack(&[loc]);
/// b.sample(SampleRow {
///     profile_type: pt, series, timestamp_ns: 1_700_000_000_000_000_000, duration_ns: 10_000_000_000,
///     period: 10_000_000, stack, value: 30_000_000,
/// });
/// let batch = b.build().unwrap();
/// assert_eq!(batch.num_samples(), 1);
/// ```
#[derive(Debug, Default)]
pub struct SampleBatchBuilder {
    profile_types: Vec<ProfileType>,
    profile_type_index: HashMap<ProfileType, u32>,
    series: Vec<Labels>,
    series_index: HashMap<Labels, u32>,
    symbols: Symbols,
    mapping_index: IdMap<MappingId, u32>,
    function_index: IdMap<FunctionId, u32>,
    location_index: IdMap<LocationId, u32>,
    stack_index: IdMap<StackId, u32>,
    ids: SymbolIds,
    samples: SampleColumns,
    /// Stacks interned from `LocationId`s (not refs), whose locations `build` checks.
    stacks_to_check: Vec<u32>,
    /// A stack's locations while it is interned from refs.
    scratch: Vec<LocationId>,
}

impl SampleBatchBuilder {
    /// An empty builder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Interns a profile type.
    pub fn profile_type(&mut self, pt: &ProfileType) -> ProfileTypeRef {
        if let Some(&i) = self.profile_type_index.get(pt) {
            return ProfileTypeRef(i);
        }
        let i = self.profile_types.len() as u32;
        self.profile_types.push(pt.clone());
        self.profile_type_index.insert(pt.clone(), i);
        ProfileTypeRef(i)
    }

    /// Interns a series.
    pub fn series(&mut self, labels: Labels) -> SeriesRef {
        if let Some(&i) = self.series_index.get(&labels) {
            return SeriesRef(i);
        }
        let i = self.series.len() as u32;
        self.series.push(labels.clone());
        self.series_index.insert(labels, i);
        SeriesRef(i)
    }

    /// Interns a mapping.
    pub fn mapping(&mut self, m: Mapping) -> MappingId {
        let id = m.id();
        self.mapping_index.entry(id).or_insert_with(|| {
            self.symbols.mappings.push(m);
            self.ids.mappings.push(id);
            self.symbols.mappings.len() as u32 - 1
        });
        id
    }

    /// Interns a function.
    pub fn function(&mut self, f: Function) -> FunctionId {
        let id = f.id();
        self.function_index.entry(id).or_insert_with(|| {
            self.symbols.functions.push(f);
            self.ids.functions.push(id);
            self.symbols.functions.len() as u32 - 1
        });
        id
    }

    /// Interns a location. A symbolized version replaces an unsymbolized one with the same ID.
    pub fn location(&mut self, l: Location) -> LocationId {
        let r = self.location_ref(l);
        self.ids.locations[r.0 as usize]
    }

    /// [`location`](Self::location), returning the location's index in this batch, from
    /// which [`stack_of`](Self::stack_of) builds stacks without looking IDs up.
    pub fn location_ref(&mut self, l: Location) -> LocationRef {
        let id = l.id();
        match self.location_index.get(&id) {
            Some(&i) => {
                let existing = &mut self.symbols.locations[i as usize];
                if !existing.is_symbolized() && l.is_symbolized() {
                    *existing = l;
                }
                LocationRef(i)
            }
            None => {
                let i = self.symbols.locations.len() as u32;
                self.location_index.insert(id, i);
                self.symbols.locations.push(l);
                self.ids.locations.push(id);
                LocationRef(i)
            }
        }
    }

    /// Interns a stack of locations, leaf first.
    pub fn stack(&mut self, locations: &[LocationId]) -> StackRef {
        let (r, new) = self.intern_stack(stack_id(locations), locations);
        if new {
            self.stacks_to_check.push(r.0);
        }
        r
    }

    /// Interns a stack of this batch's locations, leaf first. A ref from another builder
    /// that is out of this one's range makes [`build`](Self::build) fail.
    pub fn stack_of(&mut self, frames: &[LocationRef]) -> StackRef {
        let mut locations = std::mem::take(&mut self.scratch);
        locations.clear();
        let mut out_of_range = false;
        locations.extend(
            frames
                .iter()
                .map(|r| match self.ids.locations.get(r.0 as usize) {
                    Some(&id) => id,
                    None => {
                        out_of_range = true;
                        LocationId(0)
                    }
                }),
        );
        let (r, new) = self.intern_stack(stack_id(&locations), &locations);
        if new && out_of_range {
            self.stacks_to_check.push(r.0);
        }
        self.scratch = locations;
        r
    }

    /// The stack with this ID, added if new; whether it was.
    fn intern_stack(&mut self, id: StackId, locations: &[LocationId]) -> (StackRef, bool) {
        if let Some(&i) = self.stack_index.get(&id) {
            return (StackRef(i), false);
        }
        let i = self.symbols.stacks.len() as u32;
        self.symbols.stacks.push(locations.to_vec());
        self.ids.stacks.push(id);
        self.stack_index.insert(id, i);
        (StackRef(i), true)
    }

    /// The content-addressed ID of an interned stack.
    pub fn stack_id(&self, stack: StackRef) -> StackId {
        self.ids.stacks[stack.0 as usize]
    }

    /// The stack with this ID, if interned.
    pub fn stack_ref(&self, id: StackId) -> Option<StackRef> {
        self.stack_index.get(&id).map(|&i| StackRef(i))
    }

    /// Adds one sample.
    pub fn sample(&mut self, row: SampleRow) {
        self.samples.push(&row);
    }

    /// Number of samples added so far.
    pub fn num_samples(&self) -> usize {
        self.samples.len()
    }

    /// Checks every reference and returns the batch.
    pub fn build(self) -> Result<SampleBatch> {
        // The builder's own indexes already hold every interned ID; stacks made of
        // `LocationRef`s hold interned locations by construction.
        check_symbol_references(
            &self.symbols,
            self.stacks_to_check
                .iter()
                .map(|&i| &self.symbols.stacks[i as usize]),
            |m| self.mapping_index.contains_key(&m),
            |f| self.function_index.contains_key(&f),
            |l| self.location_index.contains_key(&l),
        )?;
        SampleBatch::assemble(
            self.profile_types,
            self.series,
            self.symbols,
            self.ids,
            Vec::new(),
            self.samples,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Line;

    #[test]
    fn stacks_of_location_refs_equal_stacks_of_ids_and_foreign_refs_fail() {
        let mut a = SampleBatchBuilder::new();
        let f = a.function(Function {
            name: "main".into(),
            ..Default::default()
        });
        let loc = |line| Location {
            lines: vec![Line {
                function_id: f,
                line,
            }],
            ..Default::default()
        };
        let (r1, r2) = (a.location_ref(loc(1)), a.location_ref(loc(2)));
        let (id1, id2) = (a.location(loc(1)), a.location(loc(2)));
        let by_refs = a.stack_of(&[r1, r2]);
        let by_ids = a.stack(&[id1, id2]);
        assert_eq!(by_refs, by_ids);
        assert_eq!(a.stack_id(by_refs), stack_id(&[id1, id2]));
        assert!(a.build().is_ok());
        // A ref beyond this builder's locations is refused at build.
        let mut b = SampleBatchBuilder::new();
        b.stack_of(&[LocationRef(7)]);
        let err = b.build().unwrap_err().to_string();
        assert!(err.contains("does not define"), "{err}");
    }

    #[test]
    fn build_checks_references() {
        let mut b = SampleBatchBuilder::new();
        let pt = b.profile_type(&"a:b:c:d:e".parse().unwrap());
        let s = b.series(Labels::new([("x", "1")]).unwrap());
        // A location naming a function the batch never defined.
        let loc = b.location(Location {
            lines: vec![Line {
                function_id: FunctionId(42),
                line: 1,
            }],
            ..Default::default()
        });
        let st = b.stack(&[loc]);
        b.sample(SampleRow {
            profile_type: pt,
            series: s,
            timestamp_ns: 1,
            duration_ns: 0,
            period: 1,
            stack: st,
            value: 1,
        });
        let err = b.build().unwrap_err();
        assert!(err.to_string().contains("does not define"), "{err}");
    }

    #[test]
    fn interning_dedupes() {
        let mut b = SampleBatchBuilder::new();
        let f1 = b.function(Function {
            name: "f".into(),
            ..Default::default()
        });
        let f2 = b.function(Function {
            name: "f".into(),
            ..Default::default()
        });
        assert_eq!(f1, f2);
        let l = b.location(Location {
            lines: vec![Line {
                function_id: f1,
                line: 1,
            }],
            ..Default::default()
        });
        let a = b.stack(&[l]);
        let c = b.stack(&[l]);
        assert_eq!(a, c);
        let batch = b.build().unwrap();
        assert_eq!(batch.symbols().functions.len(), 1);
        assert_eq!(batch.symbols().stacks.len(), 1);
    }
}
