//! `index.bin`: a block's series, postings and per-profile-type statistics (see
//! `storage-format.md`, "index.bin").

use std::collections::BTreeMap;

use roaring::RoaringBitmap;

use crate::index::SeriesIndex;
use crate::model::{Labels, ProfileType, SeriesId};
use crate::varint::{Reader, put_str, put_svar, put_uvar};

/// The first layout: sections in the clear.
const MAGIC_V1: &[u8; 8] = b"STRIDX01";
/// The layout written now: the same sections as one zstd frame (a block's labels repeat
/// across series, so they compress several times over).
const MAGIC_V2: &[u8; 8] = b"STRIDX02";
/// zstd level of a v2 index.
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

    /// The v2 file: magic, the sections' length, the sections as one zstd frame, CRC-32C.
    pub fn encode(&self) -> Vec<u8> {
        let sections = self.encode_sections();
        let frame = zstd::bulk::compress(&sections, ZSTD_LEVEL)
            .expect("zstd compresses any input into a Vec");
        let mut out = MAGIC_V2.to_vec();
        put_uvar(&mut out, sections.len() as u64);
        out.extend_from_slice(&frame);
        let crc = crc32c::crc32c(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out
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

    /// Sections 2-4 (profile types, series, postings).
    fn encode_sections(&self) -> Vec<u8> {
        let mut out = Vec::new();
        put_uvar(&mut out, self.types.len() as u64);
        for t in &self.types {
            put_str(&mut out, &t.profile_type.to_string());
            put_svar(&mut out, t.min_time);
            put_svar(&mut out, t.max_time);
            put_uvar(&mut out, t.samples);
            put_bitmap(&mut out, &t.series);
        }
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

    /// Decodes a v1 or v2 file.
    pub fn decode(buf: &[u8]) -> Result<BlockIndex, String> {
        let magic = buf.get(..MAGIC_V1.len());
        if buf.len() < MAGIC_V1.len() + 4 || (magic != Some(MAGIC_V1) && magic != Some(MAGIC_V2)) {
            return Err("missing index magic".into());
        }
        let (body, crc) = buf.split_at(buf.len() - 4);
        if crc32c::crc32c(body) != u32::from_le_bytes(crc.try_into().expect("4 bytes")) {
            return Err("index checksum mismatch".into());
        }
        if magic == Some(MAGIC_V1) {
            return Self::decode_sections(&body[MAGIC_V1.len()..]);
        }
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
        let sections = zstd::bulk::decompress(frame, len as usize)
            .map_err(|e| format!("bad index frame: {e}"))?;
        if sections.len() as u64 != len {
            return Err(format!(
                "index sections are {} bytes, not the {len} announced",
                sections.len()
            ));
        }
        Self::decode_sections(&sections)
    }

    /// Sections 2-4, exactly.
    fn decode_sections(body: &[u8]) -> Result<BlockIndex, String> {
        let mut r = Reader::new(body, 0);
        let n = r.count()?;
        let mut types = Vec::with_capacity(n);
        for _ in 0..n {
            types.push(TypeStats {
                profile_type: r.str()?.parse().map_err(|e: crate::Error| e.to_string())?,
                min_time: r.svar()?,
                max_time: r.svar()?,
                samples: r.uvar()?,
                series: read_bitmap(&mut r)?,
            });
        }
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
        let n = series.len() as u64;
        let in_range = |b: &RoaringBitmap| b.max().is_none_or(|m| (m as u64) < n);
        if !types.iter().all(|t| in_range(&t.series))
            || !postings.values().flat_map(|v| v.values()).all(in_range)
        {
            return Err("a bitmap names a series ordinal beyond the series list".into());
        }
        let all: RoaringBitmap = (0..series.len() as u32).collect();
        Ok(BlockIndex {
            series,
            postings: SeriesIndex::from_parts(postings, all),
            types,
        })
    }
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

    #[test]
    fn round_trips_and_detects_corruption() {
        let series = vec![
            (SeriesId(3), Labels::new([("job", "a")]).unwrap()),
            (
                SeriesId(9),
                Labels::new([("job", "b"), ("env", "x")]).unwrap(),
            ),
        ];
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
        assert_eq!(&bytes[..8], b"STRIDX02");
        // Files of the first layout still read.
        let v1 = idx.encode_v1();
        assert_eq!(&v1[..8], b"STRIDX01");
        assert_eq!(BlockIndex::decode(&v1).unwrap(), idx);
        bytes[12] ^= 1;
        assert!(BlockIndex::decode(&bytes).unwrap_err().contains("checksum"));
        assert_eq!(
            BlockIndex::decode(&bytes[..5]).unwrap_err(),
            "missing index magic"
        );
    }

    #[test]
    fn a_lying_length_is_an_error_not_an_allocation() {
        let idx = BlockIndex::new(
            vec![(SeriesId(1), Labels::new([("a", "b")]).unwrap())],
            vec![],
        );
        let good = idx.encode();
        let mut r = Reader::new(&good, 8);
        r.uvar().unwrap();
        let frame = &good[good.len() - r.remaining()..good.len() - 4];
        for len in [u64::MAX, 1 << 40, 3] {
            let mut bad = b"STRIDX02".to_vec();
            put_uvar(&mut bad, len);
            bad.extend_from_slice(frame);
            let crc = crc32c::crc32c(&bad);
            bad.extend_from_slice(&crc.to_le_bytes());
            assert!(BlockIndex::decode(&bad).is_err(), "{len}");
        }
    }
}
