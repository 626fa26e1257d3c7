//! The byte encoding of a [`SampleBatch`] inside a WAL record (see `storage-format.md`,
//! "WAL record payload"). Decoding never panics: every read is bounds-checked and every
//! reference is validated.

use crate::batch::{SampleBatch, SampleColumns, SymbolIds, Symbols};
use crate::model::{
    Function, IdMap, Labels, Line, Location, Mapping, MappingId, ProfileType, StackId, stack_id,
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
    let sym = &batch.symbols;
    let ids = &batch.ids;
    let known_stack = |i: usize| elision.is_some_and(|e| e.known_stacks[i]);
    let known_location = |i: usize| elision.is_some_and(|e| e.known_locations[i]);

    // Which symbols this record carries.
    let location_pos: IdMap<u64, usize> = ids
        .locations
        .iter()
        .enumerate()
        .map(|(i, id)| (id.0, i))
        .collect();
    let mut keep_location: Vec<bool> = (0..sym.locations.len())
        .map(|i| !known_location(i))
        .collect();
    for (i, stack) in sym.stacks.iter().enumerate() {
        if !known_stack(i) {
            for l in stack {
                keep_location[location_pos[&l.0]] = true;
            }
        }
    }
    let mut keep_function = vec![false; sym.functions.len()];
    let mut keep_mapping = vec![false; sym.mappings.len()];
    let function_pos: IdMap<u64, usize> = ids
        .functions
        .iter()
        .enumerate()
        .map(|(i, id)| (id.0, i))
        .collect();
    let mapping_pos: IdMap<u64, usize> = ids
        .mappings
        .iter()
        .enumerate()
        .map(|(i, id)| (id.0, i))
        .collect();
    // A function or mapping is written if a written location uses it, or if no location of
    // the batch does (free-standing definitions are kept as they are).
    let mut used_function = vec![false; sym.functions.len()];
    let mut used_mapping = vec![false; sym.mappings.len()];
    for (l, keep) in sym.locations.iter().zip(&keep_location) {
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
    for (k, used) in keep_function.iter_mut().zip(&used_function) {
        *k |= !used;
    }
    for (k, used) in keep_mapping.iter_mut().zip(&used_mapping) {
        *k |= !used;
    }
    // Positions in the record's tables of the kept entries.
    let renumber = |keep: &[bool], keys: &[u64]| -> IdMap<u64, u64> {
        let mut next = 0;
        let mut out = IdMap::default();
        for (k, key) in keep.iter().zip(keys) {
            if *k {
                out.insert(*key, next);
                next += 1;
            }
        }
        out
    };
    let raw = |v: &[crate::model::MappingId]| v.iter().map(|x| x.0).collect::<Vec<_>>();
    let mapping_index = renumber(&keep_mapping, &raw(&ids.mappings));
    let function_index = renumber(
        &keep_function,
        &ids.functions.iter().map(|x| x.0).collect::<Vec<_>>(),
    );
    let location_index = renumber(
        &keep_location,
        &ids.locations.iter().map(|x| x.0).collect::<Vec<_>>(),
    );

    put_uvar(out, mapping_index.len() as u64);
    for (m, _) in sym.mappings.iter().zip(&keep_mapping).filter(|(_, k)| **k) {
        put_str(out, &m.build_id);
        put_str(out, &m.filename);
        put_uvar(out, m.memory_start);
        put_uvar(out, m.memory_limit);
        put_uvar(out, m.file_offset);
    }
    put_uvar(out, function_index.len() as u64);
    for (f, _) in sym
        .functions
        .iter()
        .zip(&keep_function)
        .filter(|(_, k)| **k)
    {
        put_str(out, &f.name);
        put_str(out, &f.system_name);
        put_str(out, &f.filename);
        put_svar(out, f.start_line);
    }
    put_uvar(out, location_index.len() as u64);
    for (l, _) in sym
        .locations
        .iter()
        .zip(&keep_location)
        .filter(|(_, k)| **k)
    {
        let m = if l.mapping_id == MappingId::NONE {
            0
        } else {
            mapping_index[&l.mapping_id.0] + 1
        };
        put_uvar(out, m);
        put_uvar(out, l.address);
        put_uvar(out, l.lines.len() as u64);
        for line in &l.lines {
            put_uvar(out, function_index[&line.function_id.0]);
            put_svar(out, line.line);
        }
    }
    // Stacks: the written ones, then the external references; the sample column indexes both.
    let mut stack_slot = vec![0u64; sym.stacks.len() + batch.external_stacks.len()];
    let local: Vec<usize> = (0..sym.stacks.len()).filter(|&i| !known_stack(i)).collect();
    put_uvar(out, local.len() as u64);
    for (slot, &i) in local.iter().enumerate() {
        stack_slot[i] = slot as u64;
        let s = &sym.stacks[i];
        put_uvar(out, s.len() as u64);
        for l in s {
            put_uvar(out, location_index[&l.0]);
        }
    }
    let external: Vec<StackId> = (0..sym.stacks.len())
        .filter(|&i| known_stack(i))
        .map(|i| ids.stacks[i])
        .chain(batch.external_stacks.iter().copied())
        .collect();
    let mut next = local.len() as u64;
    for (i, slot) in stack_slot.iter_mut().enumerate() {
        if i >= sym.stacks.len() || known_stack(i) {
            *slot = next;
            next += 1;
        }
    }
    put_uvar(out, external.len() as u64);
    for id in &external {
        out.extend_from_slice(&id.0.to_le_bytes());
    }
    let c = &batch.samples;
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
    let n = r.count()?;
    let mut profile_types = Vec::with_capacity(n);
    for _ in 0..n {
        let pt: ProfileType = r.str()?.parse().map_err(|e: crate::Error| e.to_string())?;
        profile_types.push(pt);
    }
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
        sym.locations.push(Location {
            mapping_id,
            address,
            lines,
        });
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
    let n = r.count()?;
    let mut external_stacks = Vec::with_capacity(n);
    for _ in 0..n {
        external_stacks.push(StackId(r.u64_le()?));
    }
    // Each sample takes at least one byte in each of its seven columns.
    let n = r.count()?;
    if n > r.remaining() / 7 {
        return Err(format!("{n} samples cannot fit in the bytes left"));
    }
    let mut c = SampleColumns {
        profile_type: Vec::with_capacity(n),
        series: Vec::with_capacity(n),
        timestamp: Vec::with_capacity(n),
        duration: Vec::with_capacity(n),
        period: Vec::with_capacity(n),
        stack: Vec::with_capacity(n),
        value: Vec::with_capacity(n),
    };
    for _ in 0..n {
        c.profile_type
            .push(r.index(profile_types.len(), "profile type")? as u32);
    }
    for _ in 0..n {
        c.series.push(r.index(series.len(), "series")? as u32);
    }
    let mut prev = 0i64;
    for _ in 0..n {
        prev = prev.wrapping_add(r.svar()?);
        c.timestamp.push(prev);
    }
    for _ in 0..n {
        c.duration.push(r.svar()?);
    }
    for _ in 0..n {
        c.period.push(r.svar()?);
    }
    for _ in 0..n {
        c.stack
            .push(r.index(sym.stacks.len() + external_stacks.len(), "stack")? as u32);
    }
    for _ in 0..n {
        c.value.push(r.svar()?);
    }
    if !r.at_end() {
        return Err("trailing bytes after the samples".into());
    }
    let ids = SymbolIds {
        stacks: sym.stacks.iter().map(|s| stack_id(s)).collect(),
        mappings: mapping_ids,
        functions: function_ids,
        locations: location_ids,
    };
    SampleBatch::from_parts_with_ids(profile_types, series, sym, ids, external_stacks, c)
        .map_err(|e| e.to_string())
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
            prop_assert!(decode_batch(&buf[..cut]).is_err());
        }
    }
}
