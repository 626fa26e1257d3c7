//! `index.bin`: a block's series, postings and per-profile-type statistics (see
//! `storage-format.md`, "index.bin").

use std::collections::BTreeMap;

use roaring::RoaringBitmap;

use crate::index::SeriesIndex;
use crate::model::{Labels, ProfileType, SeriesId};
use crate::varint::{Reader, put_str, put_svar, put_uvar};

const MAGIC: &[u8; 8] = b"STRIDX01";

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
            postings.add(i as u32, labels);
        }
        BlockIndex {
            series,
            postings,
            types,
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = MAGIC.to_vec();
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
        let crc = crc32c::crc32c(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out
    }

    pub fn decode(buf: &[u8]) -> Result<BlockIndex, String> {
        if buf.len() < MAGIC.len() + 4 || &buf[..MAGIC.len()] != MAGIC {
            return Err("missing index magic".into());
        }
        let (body, crc) = buf.split_at(buf.len() - 4);
        if crc32c::crc32c(body) != u32::from_le_bytes(crc.try_into().expect("4 bytes")) {
            return Err("index checksum mismatch".into());
        }
        let mut r = Reader::new(body, MAGIC.len());
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
        bytes[12] ^= 1;
        assert!(BlockIndex::decode(&bytes).unwrap_err().contains("checksum"));
        assert_eq!(
            BlockIndex::decode(&bytes[..5]).unwrap_err(),
            "missing index magic"
        );
    }
}
