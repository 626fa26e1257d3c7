//! `index.bin`: a block's series, postings and per-profile-type statistics (see
//! `storage-format.md`, "index.bin").

use std::collections::BTreeMap;

use roaring::RoaringBitmap;

use crate::index::SeriesIndex;
use crate::model::{Labels, ProfileType, SeriesId};
use crate::varint::{Reader, put_str, put_svar, put_uvar};

/// The first layout: sections in the clear.
const MAGIC_V1: &[u8; 8] = b"STRIDX01";
/// The second layout: the same sections as one zstd frame (a block's labels repeat across
/// series, so they compress several times over).
const MAGIC_V2: &[u8; 8] = b"STRIDX02";
/// The layout written now: one zstd frame holding the profile types and the series as label
/// columns (one value dictionary per label name, one reference per series); series IDs are
/// recomputed from the labels and the postings rebuilt from the columns on reading.
const MAGIC_V3: &[u8; 8] = b"STRIDX03";
/// zstd level of a v2 or v3 index.
const ZSTD_LEVEL: i32 = 3;
/// A v2 index's sections may be at most this many times its compressed size (and 1 GiB):
/// a corrupt length never makes a huge allocation.
const MAX_EXPANSION: u64 = 512;

/// Statistics of one profile type within a block.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct TypeStats {
    pub profile_type: ProfileType,
    pub min_time: i64,
    pub max_time: i64,
    pub samples: u64,
    /// Ordinals (into `BlockIndex::series`) of series with samples of this type.
    pub series: RoaringBitmap,
}

/// A decoded `index.bin`.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct BlockIndex {
    /// Series sorted by ID; a series' ordinal is its position here.
    pub series: Vec<(SeriesId, Labels)>,
    pub postings: SeriesIndex,
    pub types: Vec<TypeStats>,
}

impl BlockIndex {
    pub fn new(series: Vec<(SeriesId, Labels)>, types: Vec<TypeStats>) -> Self {
        let mut postings = SeriesIndex::default();
        for (i, (_, labels)) in series.iter().enumerate() {
            let _grown = postings.add(i as u32, labels);
        }
        BlockIndex {
            series,
            postings,
            types,
        }
    }

    /// The v3 file: magic, the sections' length, the types and label columns as one zstd
    /// frame, CRC-32C.
    pub fn encode(&self) -> Vec<u8> {
        framed(MAGIC_V3, &self.encode_columns())
    }

    /// The v2 file (v1's sections in one zstd frame), as builds of 2026-12-06 wrote it.
    #[cfg(test)]
    pub fn encode_v2(&self) -> Vec<u8> {
        framed(MAGIC_V2, &self.encode_sections())
    }

    /// The v1 file (sections in the clear), as builds before 2026-12-06 wrote it.
    #[cfg(test)]
    pub fn encode_v1(&self) -> Vec<u8> {
        let mut out = MAGIC_V1.to_vec();
        out.extend_from_slice(&self.encode_sections());
        let crc = crc32c::crc32c(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out
    }

    /// Section 2, the profile types, as every layout has it.
    fn encode_types(&self, out: &mut Vec<u8>) {
        put_uvar(out, self.types.len() as u64);
        for t in &self.types {
            put_str(out, &t.profile_type.to_string());
            put_svar(out, t.min_time);
            put_svar(out, t.max_time);
            put_uvar(out, t.samples);
            put_bitmap(out, &t.series);
        }
    }

    /// v3's sections: the profile types, the series count, then per label name (sorted) its
    /// values (sorted) and each series' reference to one of them (`0`: the series lacks the
    /// name). A column of references compresses far better than labels spelled per series,
    /// and postings of one-series values (`pod`, `pid`) cost nothing on disk.
    fn encode_columns(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode_types(&mut out);
        put_uvar(&mut out, self.series.len() as u64);
        let postings = self.postings.postings();
        put_uvar(&mut out, postings.len() as u64);
        let mut refs = vec![0u64; self.series.len()];
        for (name, values) in postings {
            put_str(&mut out, name);
            put_uvar(&mut out, values.len() as u64);
            refs.fill(0);
            for (i, (value, bitmap)) in values.iter().enumerate() {
                put_str(&mut out, value);
                for ord in bitmap {
                    refs[ord as usize] = i as u64 + 1;
                }
            }
            for &r in &refs {
                put_uvar(&mut out, r);
            }
        }
        out
    }

    /// Sections 2-4 of v1 and v2 (profile types, series, postings).
    #[cfg(test)]
    fn encode_sections(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode_types(&mut out);
        put_uvar(&mut out, self.series.len() as u64);
        for (id, labels) in &self.series {
            out.extend_from_slice(&id.0.to_le_bytes());
            put_uvar(&mut out, labels.len() as u64);
            for l in labels.iter() {
                put_str(&mut out, &l.name);
                put_str(&mut out, &l.value);
            }
        }
        let postings = self.postings.postings();
        put_uvar(&mut out, postings.len() as u64);
        for (name, values) in postings {
            put_str(&mut out, name);
            put_uvar(&mut out, values.len() as u64);
            for (value, bitmap) in values {
                put_str(&mut out, value);
                put_bitmap(&mut out, bitmap);
            }
        }
        out
    }

    /// Decodes a v1, v2 or v3 file.
    pub fn decode(buf: &[u8]) -> Result<BlockIndex, String> {
        let magic = buf.get(..MAGIC_V1.len());
        let known = [MAGIC_V1, MAGIC_V2, MAGIC_V3].map(|m| Some(&m[..]));
        if buf.len() < MAGIC_V1.len() + 4 || !known.contains(&magic) {
            return Err("missing index magic".into());
        }
        let (body, crc) = buf.split_at(buf.len() - 4);
        if crc32c::crc32c(body) != u32::from_le_bytes(crc.try_into().expect("4 bytes")) {
            return Err("index checksum mismatch".into());
        }
        if magic == Some(&MAGIC_V1[..]) {
            return Self::decode_sections(&body[MAGIC_V1.len()..]);
        }
        let sections = unframe(body)?;
        if magic == Some(&MAGIC_V2[..]) {
            Self::decode_sections(&sections)
        } else {
            Self::decode_columns(&sections)
        }
    }

    /// Section 2.
    fn decode_types(r: &mut Reader<'_>) -> Result<Vec<TypeStats>, String> {
        let n = r.count()?;
        let mut types = Vec::with_capacity(n);
        for _ in 0..n {
            types.push(TypeStats {
                profile_type: r.str()?.parse().map_err(|e: crate::Error| e.to_string())?,
                min_time: r.svar()?,
                max_time: r.svar()?,
                samples: r.uvar()?,
                series: read_bitmap(r)?,
            });
        }
        Ok(types)
    }

    /// v3's sections, exactly (see [`encode_columns`](Self::encode_columns)).
    fn decode_columns(body: &[u8]) -> Result<BlockIndex, String> {
        let mut r = Reader::new(body, 0);
        let types = Self::decode_types(&mut r)?;
        let n = usize::try_from(r.uvar()?).map_err(|e| e.to_string())?;
        let names = r.count()?;
        // Every column holds a byte or more per series; with no columns every series would
        // have the same (empty) labels, so there is at most one.
        if names.saturating_mul(n) > r.remaining() || (names == 0 && n > 1) {
            return Err(format!(
                "{n} series of {names} label columns in {} bytes",
                r.remaining()
            ));
        }
        let mut pairs: Vec<Vec<(&str, &str)>> = vec![Vec::with_capacity(names); n];
        let mut postings = BTreeMap::new();
        let mut previous_name: Option<&str> = None;
        for _ in 0..names {
            let name = r.str()?;
            if previous_name.is_some_and(|p| p >= name) {
                return Err(format!("label name {name:?} out of order"));
            }
            previous_name = Some(name);
            let count = r.count()?;
            let mut values: Vec<&str> = Vec::with_capacity(count);
            for _ in 0..count {
                let value = r.str()?;
                if value.is_empty() || values.last().is_some_and(|&p| p >= value) {
                    return Err(format!("value {value:?} of label {name:?} out of order"));
                }
                values.push(value);
            }
            let mut bitmaps = vec![RoaringBitmap::new(); count];
            for (ord, labels) in pairs.iter_mut().enumerate() {
                let i = r.uvar()?;
                if i == 0 {
                    continue;
                }
                let Some(&value) = values.get(i as usize - 1) else {
                    return Err(format!(
                        "series {ord} refers to value {i} of label {name:?}, which has {count}"
                    ));
                };
                labels.push((name, value));
                bitmaps[i as usize - 1].insert(ord as u32);
            }
            let column: BTreeMap<String, RoaringBitmap> = values
                .into_iter()
                .map(str::to_owned)
                .zip(bitmaps)
                .filter(|(_, b)| !b.is_empty())
                .collect();
            if !column.is_empty() {
                postings.insert(name.to_owned(), column);
            }
        }
        if !r.at_end() {
            return Err("trailing bytes in index".into());
        }
        let mut series = Vec::with_capacity(n);
        for p in pairs {
            let labels = Labels::new(p).map_err(|e| e.to_string())?;
            let id = labels.id();
            if series
                .last()
                .is_some_and(|(last, _): &(SeriesId, Labels)| *last >= id)
            {
                return Err(format!("series {labels} out of order or repeated"));
            }
            series.push((id, labels));
        }
        check_ordinals(&types, &postings, n)?;
        let all: RoaringBitmap = (0..n as u32).collect();
        Ok(BlockIndex {
            series,
            postings: SeriesIndex::from_parts(postings, all),
            types,
        })
    }

    /// v1's and v2's sections 2-4, exactly.
    fn decode_sections(body: &[u8]) -> Result<BlockIndex, String> {
        let mut r = Reader::new(body, 0);
        let types = Self::decode_types(&mut r)?;
        let n = r.count()?;
        let mut series = Vec::with_capacity(n);
        for _ in 0..n {
            let id = SeriesId(r.u64_le()?);
            let k = r.count()?;
            let mut pairs = Vec::with_capacity(k);
            for _ in 0..k {
                pairs.push((r.str()?, r.str()?));
            }
            series.push((id, Labels::new(pairs).map_err(|e| e.to_string())?));
        }
        let n = r.count()?;
        let mut postings = BTreeMap::new();
        for _ in 0..n {
            let name = r.str()?.to_owned();
            let k = r.count()?;
            let mut values = BTreeMap::new();
            for _ in 0..k {
                let v = r.str()?.to_owned();
                values.insert(v, read_bitmap(&mut r)?);
            }
            postings.insert(name, values);
        }
        if !r.at_end() {
            return Err("trailing bytes in index".into());
        }
        check_ordinals(&types, &postings, series.len())?;
        let all: RoaringBitmap = (0..series.len() as u32).collect();
        Ok(BlockIndex {
            series,
            postings: SeriesIndex::from_parts(postings, all),
            types,
        })
    }
}

/// Every bitmap names ordinals of the `n` series only.
fn check_ordinals(
    types: &[TypeStats],
    postings: &BTreeMap<String, BTreeMap<String, RoaringBitmap>>,
    n: usize,
) -> Result<(), String> {
    let in_range = |b: &RoaringBitmap| b.max().is_none_or(|m| (m as u64) < n as u64);
    if !types.iter().all(|t| in_range(&t.series))
        || !postings.values().flat_map(|v| v.values()).all(in_range)
    {
        return Err("a bitmap names a series ordinal beyond the series list".into());
    }
    Ok(())
}

/// `magic`, `uvar L`, `sections` as one zstd frame, CRC-32C of all that.
fn framed(magic: &[u8; 8], sections: &[u8]) -> Vec<u8> {
    let frame =
        zstd::bulk::compress(sections, ZSTD_LEVEL).expect("zstd compresses any input into a Vec");
    let mut out = magic.to_vec();
    put_uvar(&mut out, sections.len() as u64);
    out.extend_from_slice(&frame);
    let crc = crc32c::crc32c(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// The sections of a v2 or v3 file's `body` (magic included, checksum excluded).
fn unframe(body: &[u8]) -> Result<Vec<u8>, String> {
    let mut r = Reader::new(body, MAGIC_V2.len());
    let len = r.uvar()?;
    let frame = &body[body.len() - r.remaining()..];
    let most = (frame.len() as u64)
        .saturating_mul(MAX_EXPANSION)
        .min(1 << 30);
    if len > most {
        return Err(format!(
            "index sections of {len} bytes from a {}-byte frame",
            frame.len()
        ));
    }
    let sections =
        zstd::bulk::decompress(frame, len as usize).map_err(|e| format!("bad index frame: {e}"))?;
    if sections.len() as u64 != len {
        return Err(format!(
            "index sections are {} bytes, not the {len} announced",
            sections.len()
        ));
    }
    Ok(sections)
}

fn put_bitmap(out: &mut Vec<u8>, b: &RoaringBitmap) {
    put_uvar(out, b.serialized_size() as u64);
    b.serialize_into(&mut *out)
        .expect("writing to a Vec cannot fail");
}

fn read_bitmap(r: &mut Reader<'_>) -> Result<RoaringBitmap, String> {
    let n = r.count()?;
    RoaringBitmap::deserialize_from(r.bytes(n)?).map_err(|e| format!("bad bitmap: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Series of `label_sets`, as a block lists them: by ID.
    fn series(label_sets: &[&[(&str, &str)]]) -> Vec<(SeriesId, Labels)> {
        let mut series: Vec<_> = label_sets
            .iter()
            .map(|pairs| {
                let labels = Labels::new(pairs.iter().copied()).unwrap();
                (labels.id(), labels)
            })
            .collect();
        series.sort_by_key(|(id, _)| *id);
        series
    }

    #[test]
    fn round_trips_and_detects_corruption() {
        let series = series(&[&[("job", "a")], &[("job", "b"), ("env", "x")]]);
        let types = vec![TypeStats {
            profile_type: "a:b:c:d:e".parse().unwrap(),
            min_time: -5,
            max_time: 10,
            samples: 7,
            series: [0u32, 1].into_iter().collect(),
        }];
        let idx = BlockIndex::new(series, types);
        let mut bytes = idx.encode();
        assert_eq!(BlockIndex::decode(&bytes).unwrap(), idx);
        assert_eq!(&bytes[..8], b"STRIDX03");
        // Files of the earlier layouts still read.
        let v1 = idx.encode_v1();
        assert_eq!(&v1[..8], b"STRIDX01");
        assert_eq!(BlockIndex::decode(&v1).unwrap(), idx);
        let v2 = idx.encode_v2();
        assert_eq!(&v2[..8], b"STRIDX02");
        assert_eq!(BlockIndex::decode(&v2).unwrap(), idx);
        bytes[12] ^= 1;
        assert!(BlockIndex::decode(&bytes).unwrap_err().contains("checksum"));
        assert_eq!(
            BlockIndex::decode(&bytes[..5]).unwrap_err(),
            "missing index magic"
        );
    }

    #[test]
    fn a_lying_length_is_an_error_not_an_allocation() {
        let idx = BlockIndex::new(series(&[&[("a", "b")]]), vec![]);
        let good = idx.encode();
        let mut r = Reader::new(&good, 8);
        r.uvar().unwrap();
        let frame = &good[good.len() - r.remaining()..good.len() - 4];
        for len in [u64::MAX, 1 << 40, 3] {
            let mut bad = b"STRIDX03".to_vec();
            put_uvar(&mut bad, len);
            bad.extend_from_slice(frame);
            let crc = crc32c::crc32c(&bad);
            bad.extend_from_slice(&crc.to_le_bytes());
            assert!(BlockIndex::decode(&bad).is_err(), "{len}");
        }
    }

    /// v3's sections of `types` and `columns` ((name, values, one reference per series)).
    fn columns(n: u64, columns: &[(&str, &[&str], &[u64])]) -> Vec<u8> {
        let mut out = Vec::new();
        put_uvar(&mut out, 0);
        put_uvar(&mut out, n);
        put_uvar(&mut out, columns.len() as u64);
        for (name, values, refs) in columns {
            put_str(&mut out, name);
            put_uvar(&mut out, values.len() as u64);
            for v in *values {
                put_str(&mut out, v);
            }
            for &r in *refs {
                put_uvar(&mut out, r);
            }
        }
        out
    }

    #[test]
    fn columns_decode_to_labels_ids_and_postings() {
        let idx = BlockIndex::new(
            series(&[
                &[("job", "api"), ("pod", "a-1")],
                &[("job", "api"), ("pod", "a-2")],
                &[("job", "db")],
            ]),
            vec![],
        );
        let decoded = BlockIndex::decode_columns(&idx.encode_columns()).unwrap();
        assert_eq!(decoded, idx);
        let pods: Vec<_> = decoded.postings.postings()["pod"].keys().cloned().collect();
        assert_eq!(pods, ["a-1", "a-2"]);
    }

    #[test]
    fn malformed_columns_are_errors() {
        let good = columns(2, &[("job", &["a", "b"], &[1, 2])]);
        let decoded = BlockIndex::decode_columns(&good);
        // Two series: the order of their IDs decides which is first.
        let ids: Vec<_> = [("job", "a"), ("job", "b")]
            .map(|p| Labels::new([p]).unwrap().id())
            .into();
        if ids[0] < ids[1] {
            decoded.unwrap();
        } else {
            assert!(decoded.unwrap_err().contains("out of order"));
        }
        let cases: [(&str, Vec<u8>); 6] = [
            ("value 3", columns(2, &[("job", &["a", "b"], &[1, 3])])),
            ("out of order", columns(1, &[("job", &["b", "a"], &[1])])),
            (
                "out of order",
                columns(1, &[("b", &["x"], &[1]), ("a", &["x"], &[1])]),
            ),
            ("out of order", columns(2, &[("job", &["a"], &[1, 1])])),
            ("label columns", columns(1_000, &[("job", &["a"], &[1])])),
            ("label columns", columns(2, &[])),
        ];
        for (want, bytes) in cases {
            let err = BlockIndex::decode_columns(&bytes).unwrap_err();
            assert!(err.contains(want), "{want}: {err}");
        }
        let mut trailing = good.clone();
        trailing.push(0);
        assert!(BlockIndex::decode_columns(&trailing).is_err());
    }

    /// Sizes of the `index.bin` files named by `STRATA_INDEX_FILES` (space-separated) in each
    /// layout, and v3's decoding time: `STRATA_INDEX_FILES="$(ls <data>/blocks/*/index.bin)"
    /// cargo test --release -p strata-engine --lib index_layout_sizes -- --ignored --nocapture`.
    #[test]
    #[ignore = "a measurement over given files"]
    fn index_layout_sizes() {
        let files = std::env::var("STRATA_INDEX_FILES").expect("STRATA_INDEX_FILES");
        for path in files.split_whitespace() {
            let idx = BlockIndex::decode(&std::fs::read(path).unwrap()).unwrap();
            let (v1, v2, v3) = (idx.encode_v1(), idx.encode_v2(), idx.encode());
            let decoded = |bytes: &[u8]| {
                let t = std::time::Instant::now();
                assert_eq!(BlockIndex::decode(bytes).unwrap(), idx);
                t.elapsed()
            };
            println!(
                "{path}: {} series; v1 {} B, v2 {} B, v3 {} B (decoded in {:?} / {:?})",
                idx.series.len(),
                v1.len(),
                v2.len(),
                v3.len(),
                decoded(&v2),
                decoded(&v3),
            );
        }
    }
}
