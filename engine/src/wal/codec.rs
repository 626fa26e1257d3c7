//! The byte encoding of a [`SampleBatch`] inside a WAL record (see `storage-format.md`,
//! "WAL record payload"). Decoding never panics: every read is bounds-checked and every
//! reference is validated.

use crate::batch::{SampleBatch, SampleColumns, SymbolIds, Symbols};
use crate::model::{
    Function, FunctionId, IdMap, Labels, Line, Location, Mapping, MappingId, ProfileType, StackId,
    stack_id,
};
use crate::varint::{DecodeResult, Reader, put_str, put_svar, put_uvar};

/// Payload kind: a sample batch.
pub(crate) const KIND_SAMPLE_BATCH: u8 = 1;
/// Version of the sample batch payload layout.
pub(crate) const BATCH_VERSION: u8 = 1;

/// What the head already holds of a batch's symbols, so its WAL record can leave it out:
/// the head's segments are replayed before this record, in order, so the definitions are there.
#[derive(Clone, Debug, Default)]
pub(crate) struct Elision {
    /// Per stack of the batch: the head holds its definition.
    pub known_stacks: Vec<bool>,
    /// Per location of the batch: the head holds it, symbolized if this one is.
    pub known_locations: Vec<bool>,
}

/// Appends the record payload for `batch` to `out`, leaving out what `elision` says is known:
/// known stacks become external references (by ID), and only the locations, functions and
/// mappings that the written stacks reach, or that the head lacks, are written.
pub(crate) fn encode_batch(batch: &SampleBatch, elision: Option<&Elision>, out: &mut Vec<u8>) {
    out.push(KIND_SAMPLE_BATCH);
    out.push(BATCH_VERSION);
    put_profile_types_and_series(batch, out);
    let carried = Carried::new(batch, elision);
    carried.put_symbols(&batch.symbols, out);
    let stack_slot = carried.put_stacks(batch, out);
    put_samples(&batch.samples, &stack_slot, out);
}

/// Tables 3 and 4: profile types and series.
fn put_profile_types_and_series(batch: &SampleBatch, out: &mut Vec<u8>) {
    put_uvar(out, batch.profile_types.len() as u64);
    for pt in &batch.profile_types {
        put_str(out, &pt.to_string());
    }
    put_uvar(out, batch.series.len() as u64);
    for s in &batch.series {
        put_uvar(out, s.len() as u64);
        for l in s.iter() {
            put_str(out, &l.name);
            put_str(out, &l.value);
        }
    }
}

/// Positions of `ids` in a slice, by raw ID.
fn positions(ids: impl Iterator<Item = u64>) -> IdMap<u64, usize> {
    ids.enumerate().map(|(i, id)| (id, i)).collect()
}

/// Positions in the record's table of the kept entries, by raw ID.
fn renumber(keep: &[bool], ids: impl Iterator<Item = u64>) -> IdMap<u64, u64> {
    let mut next = 0;
    let mut out = IdMap::default();
    for (k, id) in keep.iter().zip(ids) {
        if *k {
            out.insert(id, next);
            next += 1;
        }
    }
    out
}

/// Which of a batch's symbols one record carries, and where they sit in its tables.
struct Carried {
    known_stack: Vec<bool>,
    keep_mapping: Vec<bool>,
    keep_function: Vec<bool>,
    keep_location: Vec<bool>,
    mapping_index: IdMap<u64, u64>,
    function_index: IdMap<u64, u64>,
    location_index: IdMap<u64, u64>,
}

impl Carried {
    fn new(batch: &SampleBatch, elision: Option<&Elision>) -> Carried {
        let (sym, ids) = (&batch.symbols, &batch.ids);
        let known_stack: Vec<bool> = (0..sym.stacks.len())
            .map(|i| elision.is_some_and(|e| e.known_stacks[i]))
            .collect();
        // A location is written if the head lacks it or a written stack uses it.
        let location_pos = positions(ids.locations.iter().map(|x| x.0));
        let mut keep_location: Vec<bool> = (0..sym.locations.len())
            .map(|i| !elision.is_some_and(|e| e.known_locations[i]))
            .collect();
        for (stack, _) in sym.stacks.iter().zip(&known_stack).filter(|(_, k)| !**k) {
            for l in stack {
                keep_location[location_pos[&l.0]] = true;
            }
        }
        let (keep_mapping, keep_function) = Self::keep_definitions(batch, &keep_location);
        Carried {
            mapping_index: renumber(&keep_mapping, ids.mappings.iter().map(|x| x.0)),
            function_index: renumber(&keep_function, ids.functions.iter().map(|x| x.0)),
            location_index: renumber(&keep_location, ids.locations.iter().map(|x| x.0)),
            known_stack,
            keep_mapping,
            keep_function,
            keep_location,
        }
    }

    /// The mappings and functions written: those a written location uses, and those no
    /// location of the batch uses (free-standing definitions are kept as they are).
    fn keep_definitions(batch: &SampleBatch, keep_location: &[bool]) -> (Vec<bool>, Vec<bool>) {
        let (sym, ids) = (&batch.symbols, &batch.ids);
        let mapping_pos = positions(ids.mappings.iter().map(|x| x.0));
        let function_pos = positions(ids.functions.iter().map(|x| x.0));
        let mut keep_mapping = vec![false; sym.mappings.len()];
        let mut keep_function = vec![false; sym.functions.len()];
        let mut used_mapping = vec![false; sym.mappings.len()];
        let mut used_function = vec![false; sym.functions.len()];
        for (l, keep) in sym.locations.iter().zip(keep_location) {
            if l.mapping_id != MappingId::NONE {
                let m = mapping_pos[&l.mapping_id.0];
                used_mapping[m] = true;
                keep_mapping[m] |= *keep;
            }
            for line in &l.lines {
                let f = function_pos[&line.function_id.0];
                used_function[f] = true;
                keep_function[f] |= *keep;
            }
        }
        for (k, used) in keep_mapping.iter_mut().zip(&used_mapping) {
            *k |= !used;
        }
        for (k, used) in keep_function.iter_mut().zip(&used_function) {
            *k |= !used;
        }
        (keep_mapping, keep_function)
    }

    /// Tables 5-7: the carried mappings, functions and locations.
    fn put_symbols(&self, sym: &Symbols, out: &mut Vec<u8>) {
        let kept = |keep: &[bool]| keep.iter().filter(|k| **k).count() as u64;
        put_uvar(out, kept(&self.keep_mapping));
        for (m, _) in sym
            .mappings
            .iter()
            .zip(&self.keep_mapping)
            .filter(|(_, k)| **k)
        {
            put_str(out, &m.build_id);
            put_str(out, &m.filename);
            put_uvar(out, m.memory_start);
            put_uvar(out, m.memory_limit);
            put_uvar(out, m.file_offset);
        }
        put_uvar(out, kept(&self.keep_function));
        for (f, _) in sym
            .functions
            .iter()
            .zip(&self.keep_function)
            .filter(|(_, k)| **k)
        {
            put_str(out, &f.name);
            put_str(out, &f.system_name);
            put_str(out, &f.filename);
            put_svar(out, f.start_line);
        }
        put_uvar(out, kept(&self.keep_location));
        for (l, _) in sym
            .locations
            .iter()
            .zip(&self.keep_location)
            .filter(|(_, k)| **k)
        {
            let m = if l.mapping_id == MappingId::NONE {
                0
            } else {
                self.mapping_index[&l.mapping_id.0] + 1
            };
            put_uvar(out, m);
            put_uvar(out, l.address);
            put_uvar(out, l.lines.len() as u64);
            for line in &l.lines {
                put_uvar(out, self.function_index[&line.function_id.0]);
                put_svar(out, line.line);
            }
        }
    }

    /// Tables 8 and 8b: the written stacks, then the external references. Returns, per entry
    /// of the batch's stack column space (its stacks, then its external stacks), the index the
    /// record's stack column uses for it.
    fn put_stacks(&self, batch: &SampleBatch, out: &mut Vec<u8>) -> Vec<u64> {
        let (stacks, ids) = (&batch.symbols.stacks, &batch.ids.stacks);
        let mut stack_slot = vec![0u64; stacks.len() + batch.external_stacks.len()];
        let local: Vec<usize> = (0..stacks.len())
            .filter(|&i| !self.known_stack[i])
            .collect();
        put_uvar(out, local.len() as u64);
        for (slot, &i) in local.iter().enumerate() {
            stack_slot[i] = slot as u64;
            put_uvar(out, stacks[i].len() as u64);
            for l in &stacks[i] {
                put_uvar(out, self.location_index[&l.0]);
            }
        }
        let external: Vec<StackId> = (0..stacks.len())
            .filter(|&i| self.known_stack[i])
            .map(|i| ids[i])
            .chain(batch.external_stacks.iter().copied())
            .collect();
        let mut next = local.len() as u64;
        for (i, slot) in stack_slot.iter_mut().enumerate() {
            if i >= stacks.len() || self.known_stack[i] {
                *slot = next;
                next += 1;
            }
        }
        put_uvar(out, external.len() as u64);
        for id in &external {
            out.extend_from_slice(&id.0.to_le_bytes());
        }
        stack_slot
    }
}

/// Columns 9-16: the sample count and the seven sample columns.
fn put_samples(c: &SampleColumns, stack_slot: &[u64], out: &mut Vec<u8>) {
    put_uvar(out, c.len() as u64);
    out.reserve(c.len() * 8);
    c.profile_type.iter().for_each(|&v| put_uvar(out, v as u64));
    c.series.iter().for_each(|&v| put_uvar(out, v as u64));
    let mut prev = 0i64;
    for &t in &c.timestamp {
        put_svar(out, t.wrapping_sub(prev));
        prev = t;
    }
    c.duration.iter().for_each(|&v| put_svar(out, v));
    c.period.iter().for_each(|&v| put_svar(out, v));
    c.stack
        .iter()
        .for_each(|&v| put_uvar(out, stack_slot[v as usize]));
    c.value.iter().for_each(|&v| put_svar(out, v));
}

/// Decodes a record payload produced by [`encode_batch`].
pub(crate) fn decode_batch(payload: &[u8]) -> DecodeResult<SampleBatch> {
    let mut r = Reader::new(payload, 0);
    let kind = r.u8()?;
    if kind != KIND_SAMPLE_BATCH {
        return Err(format!("unknown record kind {kind}"));
    }
    let version = r.u8()?;
    if version != BATCH_VERSION {
        return Err(format!("unknown batch version {version}"));
    }
    let profile_types = read_profile_types(&mut r)?;
    let series = read_series(&mut r)?;
    let (sym, ids) = read_symbols(&mut r)?;
    let n = r.count()?;
    let mut external_stacks = Vec::with_capacity(n);
    for _ in 0..n {
        external_stacks.push(StackId(r.u64_le()?));
    }
    let tables = [
        profile_types.len(),
        series.len(),
        sym.stacks.len() + external_stacks.len(),
    ];
    let c = read_samples(&mut r, tables)?;
    if !r.at_end() {
        return Err("trailing bytes after the samples".into());
    }
    SampleBatch::from_parts_with_ids(profile_types, series, sym, ids, external_stacks, c)
        .map_err(|e| e.to_string())
}

/// Table 3.
fn read_profile_types(r: &mut Reader<'_>) -> DecodeResult<Vec<ProfileType>> {
    let n = r.count()?;
    let mut profile_types = Vec::with_capacity(n);
    for _ in 0..n {
        let pt: ProfileType = r.str()?.parse().map_err(|e: crate::Error| e.to_string())?;
        profile_types.push(pt);
    }
    Ok(profile_types)
}

/// Table 4.
fn read_series(r: &mut Reader<'_>) -> DecodeResult<Vec<Labels>> {
    let n = r.count()?;
    let mut series = Vec::with_capacity(n);
    for _ in 0..n {
        let k = r.count()?;
        let mut pairs = Vec::with_capacity(k);
        for _ in 0..k {
            pairs.push((r.str()?, r.str()?));
        }
        series.push(Labels::new(pairs).map_err(|e| e.to_string())?);
    }
    Ok(series)
}

/// Tables 5-8, and the IDs of their entries (each table's references are checked against the
/// tables before it).
fn read_symbols(r: &mut Reader<'_>) -> DecodeResult<(Symbols, SymbolIds)> {
    let mut sym = Symbols::default();
    let n = r.count()?;
    for _ in 0..n {
        sym.mappings.push(Mapping {
            build_id: r.str()?.to_owned(),
            filename: r.str()?.to_owned(),
            memory_start: r.uvar()?,
            memory_limit: r.uvar()?,
            file_offset: r.uvar()?,
        });
    }
    let mapping_ids: Vec<MappingId> = sym.mappings.iter().map(Mapping::id).collect();
    let n = r.count()?;
    for _ in 0..n {
        sym.functions.push(Function {
            name: r.str()?.to_owned(),
            system_name: r.str()?.to_owned(),
            filename: r.str()?.to_owned(),
            start_line: r.svar()?,
        });
    }
    let function_ids: Vec<_> = sym.functions.iter().map(Function::id).collect();
    let n = r.count()?;
    for _ in 0..n {
        sym.locations
            .push(read_location(r, &mapping_ids, &function_ids)?);
    }
    let location_ids: Vec<_> = sym.locations.iter().map(Location::id).collect();
    let n = r.count()?;
    for _ in 0..n {
        let k = r.count()?;
        let mut stack = Vec::with_capacity(k);
        for _ in 0..k {
            stack.push(location_ids[r.index(location_ids.len(), "location")?]);
        }
        sym.stacks.push(stack);
    }
    let ids = SymbolIds {
        stacks: sym.stacks.iter().map(|s| stack_id(s)).collect(),
        mappings: mapping_ids,
        functions: function_ids,
        locations: location_ids,
    };
    Ok((sym, ids))
}

/// One entry of table 7.
fn read_location(
    r: &mut Reader<'_>,
    mapping_ids: &[MappingId],
    function_ids: &[FunctionId],
) -> DecodeResult<Location> {
    let m = r.index(mapping_ids.len() + 1, "mapping")?;
    let mapping_id = if m == 0 {
        MappingId::NONE
    } else {
        mapping_ids[m - 1]
    };
    let address = r.uvar()?;
    let k = r.count()?;
    let mut lines = Vec::with_capacity(k);
    for _ in 0..k {
        let f = r.index(function_ids.len(), "function")?;
        lines.push(Line {
            function_id: function_ids[f],
            line: r.svar()?,
        });
    }
    Ok(Location {
        mapping_id,
        address,
        lines,
    })
}

/// `n` indexes into a table of `len` entries.
fn index_column(r: &mut Reader<'_>, n: usize, len: usize, what: &str) -> DecodeResult<Vec<u32>> {
    (0..n).map(|_| Ok(r.index(len, what)? as u32)).collect()
}

/// `n` zigzag varints.
fn svar_column(r: &mut Reader<'_>, n: usize) -> DecodeResult<Vec<i64>> {
    (0..n).map(|_| r.svar()).collect()
}

/// Columns 9-16, given the sizes of the profile type, series and stack tables the columns
/// index.
fn read_samples(r: &mut Reader<'_>, tables: [usize; 3]) -> DecodeResult<SampleColumns> {
    let [profile_types, series, stacks] = tables;
    // Each sample takes at least one byte in each of its seven columns.
    let n = r.count()?;
    if n > r.remaining() / 7 {
        return Err(format!("{n} samples cannot fit in the bytes left"));
    }
    let profile_type = index_column(r, n, profile_types, "profile type")?;
    let series = index_column(r, n, series, "series")?;
    let mut prev = 0i64;
    let mut timestamp = Vec::with_capacity(n);
    for _ in 0..n {
        prev = prev.wrapping_add(r.svar()?);
        timestamp.push(prev);
    }
    let duration = svar_column(r, n)?;
    let period = svar_column(r, n)?;
    let stack = index_column(r, n, stacks, "stack")?;
    let value = svar_column(r, n)?;
    Ok(SampleColumns {
        profile_type,
        series,
        timestamp,
        duration,
        period,
        stack,
        value,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::{SampleBatchBuilder, SampleRow};
    use proptest::prelude::*;

    fn batch_from(rows: &[(u8, u8, i64, i64, u8, i64)]) -> SampleBatch {
        let mut b = SampleBatchBuilder::new();
        let m = b.mapping(Mapping {
            build_id: "abc".into(),
            filename: "/bin/x".into(),
            memory_start: 1,
            memory_limit: 99,
            file_offset: 0,
        });
        for &(pt, series, ts, dur, stack, value) in rows {
            let p = b.profile_type(&format!("n{pt}:s:u:p:pu").parse().unwrap());
            let s = b.series(Labels::new([("job", format!("j{series}"))]).unwrap());
            let f = b.function(Function {
                name: format!("f{stack}"),
                start_line: -3,
                ..Default::default()
            });
            let l1 = b.location(Location {
                mapping_id: m,
                address: 0x10 + stack as u64,
                lines: vec![],
            });
            let l2 = b.location(Location {
                lines: vec![Line {
                    function_id: f,
                    line: stack as i64,
                }],
                ..Default::default()
            });
            let st = b.stack(&[l1, l2]);
            b.sample(SampleRow {
                profile_type: p,
                series: s,
                timestamp_ns: ts,
                duration_ns: dur,
                period: 7,
                stack: st,
                value,
            });
        }
        b.build().unwrap()
    }

    proptest! {
        #[test]
        fn round_trips(rows in proptest::collection::vec((0u8..3, 0u8..4, any::<i64>(), any::<i64>(), 0u8..5, any::<i64>()), 0..40)) {
            let batch = batch_from(&rows);
            let mut buf = Vec::new();
            encode_batch(&batch, None, &mut buf);
            prop_assert_eq!(decode_batch(&buf).unwrap(), batch);
        }

        #[test]
        fn elided_records_keep_every_sample(
            rows in proptest::collection::vec((0u8..3, 0u8..4, any::<i64>(), any::<i64>(), 0u8..5, any::<i64>()), 1..40),
            stack_mask in proptest::collection::vec(any::<bool>(), 5),
            location_mask in proptest::collection::vec(any::<bool>(), 10),
        ) {
            let batch = batch_from(&rows);
            let elision = Elision {
                known_stacks: (0..batch.symbols.stacks.len()).map(|i| stack_mask[i % 5]).collect(),
                known_locations: (0..batch.symbols.locations.len()).map(|i| location_mask[i % 10]).collect(),
            };
            let mut buf = Vec::new();
            encode_batch(&batch, Some(&elision), &mut buf);
            let back = decode_batch(&buf).unwrap();
            prop_assert_eq!(&back.samples.value, &batch.samples.value);
            prop_assert_eq!(&back.samples.timestamp, &batch.samples.timestamp);
            for i in 0..batch.num_samples() {
                prop_assert_eq!(back.stack_at(back.samples.stack[i]), batch.stack_at(batch.samples.stack[i]));
            }
            // Written stacks are exactly the unknown ones; known ones are referenced by ID.
            let unknown = elision.known_stacks.iter().filter(|k| !**k).count();
            prop_assert_eq!(back.symbols.stacks.len(), unknown);
            prop_assert_eq!(back.external_stacks.len(), batch.symbols.stacks.len() - unknown);
            // Every location that is unknown, or reached by a written stack, is written.
            for (i, l) in batch.symbols.locations.iter().enumerate() {
                let reached = batch.symbols.stacks.iter().enumerate().any(|(s, st)| !elision.known_stacks[s] && st.contains(&batch.ids.locations[i]));
                if !elision.known_locations[i] || reached {
                    prop_assert!(back.symbols.locations.contains(l));
                }
            }
            // Re-encoding the decoded batch without elision round-trips it.
            let mut again = Vec::new();
            encode_batch(&back, None, &mut again);
            prop_assert_eq!(decode_batch(&again).unwrap(), back);
        }

        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = decode_batch(&bytes);
        }

        #[test]
        fn truncations_are_refused(rows in proptest::collection::vec((0u8..3, 0u8..4, any::<i64>(), any::<i64>(), 0u8..5, any::<i64>()), 1..10), cut in any::<prop::sample::Index>()) {
            let batch = batch_from(&rows);
            let mut buf = Vec::new();
            encode_batch(&batch, None, &mut buf);
            let cut = cut.index(buf.len());
            let e = decode_batch(&buf[..cut]).unwrap_err();
            // Every cut ends a field early or leaves a count larger than the bytes left.
            prop_assert!(e.contains("data ends early") || e.contains("bytes left"), "{}", e);
        }
    }
}
