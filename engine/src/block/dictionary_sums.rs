//! Summing one row group of `samples.parquet` per stack on the Parquet encoding itself: the
//! `stack_id` column's dictionary indexes address an array of sums, so no row's 64-bit stack
//! id is materialized or hashed (only the dictionary's entries are, once per row group), and a
//! run of equal indexes is summed in one step.
//!
//! Handles the encodings this engine's writer produces for required, non-nested columns:
//! PLAIN and dictionary (PLAIN_DICTIONARY / RLE_DICTIONARY) data pages, v1 or v2. Anything
//! else returns `Ok(false)` and the caller reads the row group the ordinary way.

use bytes::Bytes;
use parquet::basic::{Encoding, Type as PhysicalType};
use parquet::errors::{ParquetError, Result};
use parquet::file::metadata::{ColumnChunkMetaData, RowGroupMetaData};
use parquet::file::statistics::Statistics;

use super::page_reader::{PageDecompressor, read_pages};

use crate::stack_sums::StackSums;

/// Root columns of `samples.parquet` the sums read.
pub(crate) const PERIOD_COLUMN: usize = 4;
/// See [`PERIOD_COLUMN`].
pub(crate) const STACK_ID_COLUMN: usize = 5;
/// See [`PERIOD_COLUMN`].
pub(crate) const VALUE_COLUMN: usize = 6;
/// The columns a row group's sums need, in the order [`RowGroupSummer::add`] takes their bytes.
pub(crate) const SUM_COLUMNS: [usize; 3] = [PERIOD_COLUMN, STACK_ID_COLUMN, VALUE_COLUMN];

/// A data page's values section and how it is encoded.
struct DataPage {
    data: Bytes,
    values: usize,
    encoding: Encoding,
}

/// The pages of one column chunk: its dictionary (as raw 64-bit values) and data pages.
struct ColumnPages {
    dictionary: Option<Vec<u64>>,
    pages: Vec<DataPage>,
}

/// 8-byte little-endian PLAIN values.
fn plain_u64(data: &[u8], n: usize) -> Result<Vec<u64>> {
    let bytes = n
        .checked_mul(8)
        .filter(|&b| b <= data.len())
        .ok_or_else(|| {
            ParquetError::General(format!(
                "PLAIN page of {n} 8-byte values has only {} bytes",
                data.len()
            ))
        })?;
    Ok(data[..bytes]
        .chunks_exact(8)
        .map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes")))
        .collect())
}

/// Reads a column chunk's pages, or `None` when its layout is not one this module decodes.
fn column_pages(
    chunk: &ColumnChunkMetaData,
    bytes: Bytes,
    rows: usize,
    decompressor: &mut PageDecompressor,
) -> Result<Option<ColumnPages>> {
    let descr = chunk.column_descr();
    if descr.max_def_level() != 0
        || descr.max_rep_level() != 0
        || !matches!(chunk.column_type(), PhysicalType::INT64)
    {
        return Ok(None);
    }
    let Some(pages) = read_pages(&bytes, chunk.compression(), decompressor)? else {
        return Ok(None);
    };
    let mut out = ColumnPages {
        dictionary: None,
        pages: Vec::new(),
    };
    for page in pages {
        if page.dictionary {
            out.dictionary = Some(plain_u64(&page.data, page.values)?);
        } else {
            out.pages.push(DataPage {
                data: page.data,
                values: page.values,
                encoding: page.encoding,
            });
        }
    }
    let total: usize = out.pages.iter().map(|p| p.values).sum();
    if total != rows {
        return Err(ParquetError::General(format!(
            "column chunk has {total} values for {rows} rows"
        )));
    }
    Ok(Some(out))
}

/// A run of dictionary indexes in the RLE / bit-packed hybrid encoding.
enum Run<'a> {
    /// `len` times `index`.
    Repeat { index: u32, len: usize },
    /// `len` indexes of `bit_width` bits each, packed little-endian from bit 0.
    Packed { bytes: &'a [u8], len: usize },
}

/// The runs of a dictionary-encoded data page (a bit-width byte, then hybrid runs), `values`
/// indexes in all.
struct HybridRuns<'a> {
    data: &'a [u8],
    bit_width: u32,
    remaining: usize,
}

impl<'a> HybridRuns<'a> {
    fn new(page: &'a [u8], values: usize) -> Result<Self> {
        let (&bit_width, data) = page
            .split_first()
            .ok_or_else(|| ParquetError::General("empty dictionary data page".into()))?;
        if bit_width > 32 {
            return Err(ParquetError::General(format!(
                "dictionary index bit width {bit_width} > 32"
            )));
        }
        Ok(HybridRuns {
            data,
            bit_width: bit_width as u32,
            remaining: values,
        })
    }

    fn varint(&mut self) -> Result<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let (&b, rest) = self
                .data
                .split_first()
                .ok_or_else(|| ParquetError::General("truncated run header".into()))?;
            self.data = rest;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(ParquetError::General("run header varint too long".into()))
    }

    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8]> {
        if n > self.data.len() {
            return Err(ParquetError::General(format!(
                "{what} needs {n} bytes, {} left in the page",
                self.data.len()
            )));
        }
        let (head, rest) = self.data.split_at(n);
        self.data = rest;
        Ok(head)
    }

    fn next_run(&mut self) -> Result<Option<Run<'a>>> {
        if self.remaining == 0 {
            return Ok(None);
        }
        let header = self.varint()?;
        let count = usize::try_from(header >> 1).unwrap_or(usize::MAX);
        if header & 1 == 1 {
            let values = count.saturating_mul(8);
            let bytes = self.take(
                count.saturating_mul(self.bit_width as usize),
                "bit-packed run",
            )?;
            let len = values.min(self.remaining);
            self.remaining -= len;
            Ok(Some(Run::Packed { bytes, len }))
        } else {
            if count == 0 {
                return Err(ParquetError::General("empty RLE run".into()));
            }
            let raw = self.take(self.bit_width.div_ceil(8) as usize, "RLE run value")?;
            let mut b = [0u8; 4];
            b[..raw.len()].copy_from_slice(raw);
            let len = count.min(self.remaining);
            self.remaining -= len;
            Ok(Some(Run::Repeat {
                index: u32::from_le_bytes(b),
                len,
            }))
        }
    }
}

/// Unpacks `len` indexes of `bit_width` bits from `bytes` into `out` (cleared first). `bytes`
/// holds whole groups of 8 indexes, at least `len` indexes' worth (as [`HybridRuns`] checks).
fn unpack(bytes: &[u8], bit_width: u32, len: usize, out: &mut Vec<u32>) {
    out.clear();
    let groups = len.div_ceil(8);
    out.resize(groups * 8, 0);
    macro_rules! widths {
        ($($w:literal)*) => {
            match bit_width {
                0 => {}
                $($w => unpack_groups::<$w>(&bytes[..groups * $w], out),)*
                _ => unreachable!("bit width {bit_width} > 32 is refused by HybridRuns"),
            }
        };
    }
    widths!(1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29 30 31 32);
    out.truncate(len);
}

/// Unpacks groups of 8 `W`-bit values (`W` bytes each), little-endian from bit 0. With `W`
/// constant every shift and offset is too, so each group compiles to a few loads and shifts.
#[inline(always)]
fn unpack_groups<const W: usize>(bytes: &[u8], out: &mut [u32]) {
    let mask = (1u64 << W) - 1;
    for (group, values) in bytes.chunks_exact(W).zip(out.chunks_exact_mut(8)) {
        // Zero padding so every 8-byte load stays inside the buffer.
        let mut buf = [0u8; 40];
        buf[..W].copy_from_slice(group);
        for (i, v) in values.iter_mut().enumerate() {
            let bit = i * W;
            let word = u64::from_le_bytes(buf[bit / 8..bit / 8 + 8].try_into().expect("8 bytes"));
            *v = ((word >> (bit % 8)) & mask) as u32;
        }
    }
}

/// Most values [`decode_values`] reserves room for up front.
const MAX_RESERVED_VALUES: usize = 16 << 20;

/// Appends every row's 64-bit value of a column chunk to `out` (PLAIN values, or dictionary
/// indexes looked up).
fn decode_values(pages: &ColumnPages, out: &mut Vec<u64>, indexes: &mut Vec<u32>) -> Result<()> {
    // Room for the pages' values at once (a row group of a million rows otherwise grows by
    // copying, 5 % of a SQL sum's time); a corrupt count reserves at most 128 MiB here.
    let values = pages
        .pages
        .iter()
        .fold(0usize, |n, p| n.saturating_add(p.values));
    out.reserve(values.min(MAX_RESERVED_VALUES));
    for p in &pages.pages {
        if p.encoding == Encoding::PLAIN {
            out.extend(plain_u64(&p.data, p.values)?);
            continue;
        }
        let dict = dictionary(pages)?;
        let mut runs = HybridRuns::new(&p.data, p.values)?;
        while let Some(run) = runs.next_run()? {
            match run {
                Run::Repeat { index, len } => {
                    let v = *lookup(dict, index)?;
                    out.extend(std::iter::repeat_n(v, len));
                }
                Run::Packed { bytes, len } => {
                    unpack(bytes, runs.bit_width, len, indexes);
                    check_indexes(indexes, dict.len())?;
                    out.extend(indexes.iter().map(|&i| dict[i as usize]));
                }
            }
        }
    }
    Ok(())
}

fn dictionary(pages: &ColumnPages) -> Result<&[u64]> {
    pages
        .dictionary
        .as_deref()
        .ok_or_else(|| ParquetError::General("dictionary-encoded page without a dictionary".into()))
}

fn index_error(index: u32, len: usize) -> ParquetError {
    ParquetError::General(format!(
        "dictionary index {index} out of a dictionary of {len}"
    ))
}

#[inline]
fn lookup<T>(dict: &[T], index: u32) -> Result<&T> {
    dict.get(index as usize)
        .ok_or_else(|| index_error(index, dict.len()))
}

/// Checks a run's indexes against the dictionary's size once, so the loops index freely.
fn check_indexes(indexes: &[u32], len: usize) -> Result<()> {
    match indexes.iter().copied().max() {
        Some(max) if max as usize >= len => Err(index_error(max, len)),
        _ => Ok(()),
    }
}

fn constant_period(chunk: &ColumnChunkMetaData) -> Option<i64> {
    match chunk.statistics()? {
        Statistics::Int64(s) if s.min_is_exact() && s.max_is_exact() => {
            match (s.min_opt(), s.max_opt()) {
                (Some(lo), Some(hi)) if lo == hi => Some(*lo),
                _ => None,
            }
        }
        _ => None,
    }
}

/// Sums row groups of one file per stack, reusing its buffers from one row group to the next
/// (a row group's values are about half a megabyte: allocating them anew would fault in fresh
/// pages every time).
#[derive(Default)]
pub(crate) struct RowGroupSummer {
    values: Vec<u64>,
    periods: Vec<u64>,
    indexes: Vec<u32>,
    dict: DictionarySums,
    decompressor: PageDecompressor,
}

/// Per entry of a row group's stack dictionary: sum, largest period, whether seen.
#[derive(Default)]
struct DictionarySums {
    sums: Vec<i64>,
    max_periods: Vec<i64>,
    seen: Vec<bool>,
}

impl DictionarySums {
    fn reset(&mut self, len: usize) {
        self.sums.clear();
        self.sums.resize(len, 0);
        self.max_periods.clear();
        self.max_periods.resize(len, i64::MIN);
        self.seen.clear();
        self.seen.resize(len, false);
    }

    /// Rows with `values` (and `periods`, unless the period is constant) of dictionary entry
    /// `i`.
    fn add_repeat(&mut self, i: usize, values: &[u64], periods: Option<&[u64]>) {
        let total = values
            .iter()
            .fold(0i64, |acc, &v| acc.wrapping_add(v as i64));
        self.sums[i] = self.sums[i].wrapping_add(total);
        self.seen[i] = true;
        if let Some(periods) = periods {
            let max = periods.iter().map(|&p| p as i64).max();
            self.max_periods[i] = self.max_periods[i].max(max.unwrap_or(i64::MIN));
        }
    }

    /// Rows of the dictionary entries `indexes` (checked), with `values` and `periods`.
    fn add_packed(&mut self, indexes: &[u32], values: &[u64], periods: Option<&[u64]>) {
        for (&i, &v) in indexes.iter().zip(values) {
            let i = i as usize;
            self.sums[i] = self.sums[i].wrapping_add(v as i64);
            self.seen[i] = true;
        }
        if let Some(periods) = periods {
            for (&i, &p) in indexes.iter().zip(periods) {
                let i = i as usize;
                self.max_periods[i] = self.max_periods[i].max(p as i64);
            }
        }
    }
}

/// A row group's pages of the summed columns; no period pages when the period is constant.
struct SumPages {
    values: ColumnPages,
    stacks: ColumnPages,
    periods: Option<ColumnPages>,
    constant_period: Option<i64>,
}

impl RowGroupSummer {
    /// Adds row group `rg`'s rows to `out`, summed per stack, from the raw bytes of its
    /// [`SUM_COLUMNS`] chunks (in that order). `Ok(false)`, with `out` untouched, when a chunk
    /// is encoded in a way this module does not decode; on `Err` `out` may hold part of the
    /// row group.
    pub(crate) fn add(
        &mut self,
        rg: &RowGroupMetaData,
        bytes: [Bytes; 3],
        out: &mut StackSums,
    ) -> Result<bool> {
        let rows = usize::try_from(rg.num_rows())
            .map_err(|_| ParquetError::General(format!("row group of {} rows", rg.num_rows())))?;
        let Some(pages) = self.pages(rg, bytes, rows)? else {
            return Ok(false);
        };
        let constant = pages.constant_period;
        self.values.clear();
        decode_values(&pages.values, &mut self.values, &mut self.indexes)?;
        self.periods.clear();
        if let Some(period_pages) = &pages.periods {
            decode_values(period_pages, &mut self.periods, &mut self.indexes)?;
        }
        let dict: &[u64] = pages.stacks.dictionary.as_deref().unwrap_or(&[]);
        self.dict.reset(dict.len());
        let mut row = 0usize;
        for p in &pages.stacks.pages {
            if p.encoding == Encoding::PLAIN {
                // A dictionary fallback page: summed by hashing.
                for (k, id) in plain_u64(&p.data, p.values)?.into_iter().enumerate() {
                    let period = constant.unwrap_or_else(|| self.periods[row + k] as i64);
                    out.add(id, self.values[row + k] as i64, period);
                }
                row += p.values;
                continue;
            }
            row = self.add_dictionary_page(p, row, dict.len(), constant.is_none())?;
        }
        let d = &self.dict;
        out.reserve(dict.len());
        for (i, &id) in dict.iter().enumerate() {
            if d.seen[i] {
                out.add(id, d.sums[i], constant.unwrap_or(d.max_periods[i]));
            }
        }
        Ok(true)
    }

    /// The pages of the summed columns; `None` if a chunk is encoded in a way this module
    /// does not decode.
    fn pages(
        &mut self,
        rg: &RowGroupMetaData,
        [period_bytes, stack_bytes, value_bytes]: [Bytes; 3],
        rows: usize,
    ) -> Result<Option<SumPages>> {
        let d = &mut self.decompressor;
        let Some(values) = column_pages(rg.column(VALUE_COLUMN), value_bytes, rows, d)? else {
            return Ok(None);
        };
        let Some(stacks) = column_pages(rg.column(STACK_ID_COLUMN), stack_bytes, rows, d)? else {
            return Ok(None);
        };
        let constant_period = constant_period(rg.column(PERIOD_COLUMN));
        let periods = match constant_period {
            Some(_) => None,
            None => match column_pages(rg.column(PERIOD_COLUMN), period_bytes, rows, d)? {
                Some(pages) => Some(pages),
                None => return Ok(None),
            },
        };
        Ok(Some(SumPages {
            values,
            stacks,
            periods,
            constant_period,
        }))
    }

    /// Sums one dictionary-encoded page of stack indexes whose first row is `row`, into the
    /// per-entry sums; returns the row after it.
    fn add_dictionary_page(
        &mut self,
        page: &DataPage,
        mut row: usize,
        dict_len: usize,
        periods_vary: bool,
    ) -> Result<usize> {
        let mut runs = HybridRuns::new(&page.data, page.values)?;
        while let Some(run) = runs.next_run()? {
            let len = match &run {
                Run::Repeat { len, .. } | Run::Packed { len, .. } => *len,
            };
            let values = &self.values[row..row + len];
            let periods = periods_vary.then(|| &self.periods[row..row + len]);
            match run {
                Run::Repeat { index, .. } => {
                    if index as usize >= dict_len {
                        return Err(index_error(index, dict_len));
                    }
                    self.dict.add_repeat(index as usize, values, periods);
                }
                Run::Packed { bytes, .. } => {
                    unpack(bytes, runs.bit_width, len, &mut self.indexes);
                    check_indexes(&self.indexes, dict_len)?;
                    self.dict.add_packed(&self.indexes, values, periods);
                }
            }
            row += len;
        }
        Ok(row)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use arrow::array::{ArrayRef, AsArray, DictionaryArray, Int64Array, RecordBatch, UInt64Array};
    use arrow::datatypes::{Int32Type, Int64Type, UInt64Type};
    use parquet::arrow::ArrowWriter;
    use parquet::basic::{Compression, ZstdLevel};
    use parquet::file::properties::{WriterProperties, WriterVersion};
    use parquet::file::reader::{FileReader, SerializedFileReader};
    use proptest::prelude::*;

    use crate::block::samples_schema;

    /// One sample row: (stack key, value, period).
    type Row = (u64, i64, i64);

    /// Writes `rows` as `samples.parquet` with the given writer knobs and returns the file.
    fn write(rows: &[Row], dict_limit: usize, page_rows: usize, v2: bool, zstd: bool) -> Bytes {
        let n = rows.len();
        let col = |f: &dyn Fn(&Row) -> i64| -> ArrayRef {
            Arc::new(Int64Array::from_iter_values(rows.iter().map(f)))
        };
        let pt: DictionaryArray<Int32Type> = std::iter::repeat_n("cpu", n).collect();
        let batch = RecordBatch::try_new(
            samples_schema(),
            vec![
                Arc::new(pt),
                Arc::new(UInt64Array::from_iter_values((0..n as u64).map(|i| i / 7))),
                col(&|_| 1),
                col(&|_| 0),
                col(&|r| r.2),
                // Well-mixed 64-bit ids, like content hashes.
                Arc::new(UInt64Array::from_iter_values(
                    rows.iter().map(|r| r.0.wrapping_mul(0x9E37_79B9_7F4A_7C15)),
                )),
                col(&|r| r.1),
            ],
        )
        .unwrap();
        let props = WriterProperties::builder()
            .set_compression(if zstd {
                Compression::ZSTD(ZstdLevel::default())
            } else {
                Compression::UNCOMPRESSED
            })
            .set_dictionary_page_size_limit(dict_limit)
            .set_data_page_row_count_limit(page_rows)
            .set_write_batch_size(page_rows.min(1024))
            // Two row groups (one when n is 1), summed by one summer: buffers are reused.
            .set_max_row_group_row_count(Some(n.div_ceil(2).max(1)))
            .set_writer_version(if v2 {
                WriterVersion::PARQUET_2_0
            } else {
                WriterVersion::PARQUET_1_0
            })
            .build();
        let mut out = Vec::new();
        let mut w = ArrowWriter::try_new(&mut out, samples_schema(), Some(props)).unwrap();
        w.write(&batch).unwrap();
        w.close().unwrap();
        Bytes::from(out)
    }

    /// One summer's sums of every row group of the file, or `None` when it declined one.
    fn sums_of(file: &Bytes) -> Option<BTreeMap<u64, (i64, i64)>> {
        let reader = SerializedFileReader::new(file.clone()).unwrap();
        let mut summer = RowGroupSummer::default();
        let mut sums = StackSums::default();
        for rg in reader.metadata().row_groups() {
            let chunks = SUM_COLUMNS.map(|c| {
                let (start, len) = rg.column(c).byte_range();
                file.slice(start as usize..(start + len) as usize)
            });
            if !summer.add(rg, chunks, &mut sums).unwrap() {
                return None;
            }
        }
        let b = sums.into_batch().unwrap();
        let ids = b.column(0).as_primitive::<UInt64Type>();
        let values = b.column(1).as_primitive::<Int64Type>();
        let periods = b.column(2).as_primitive::<Int64Type>();
        let mut out = BTreeMap::new();
        for i in 0..b.num_rows() {
            let prev = out.insert(ids.value(i), (values.value(i), periods.value(i)));
            assert!(prev.is_none(), "stack {} twice", ids.value(i));
        }
        Some(out)
    }

    fn naive(rows: &[Row]) -> BTreeMap<u64, (i64, i64)> {
        let mut out: BTreeMap<u64, (i64, i64)> = BTreeMap::new();
        for &(k, v, p) in rows {
            let e = out
                .entry(k.wrapping_mul(0x9E37_79B9_7F4A_7C15))
                .or_insert((0, i64::MIN));
            e.0 = e.0.wrapping_add(v);
            e.1 = e.1.max(p);
        }
        out
    }

    fn rows() -> impl Strategy<Value = Vec<Row>> {
        (1u64..3000, any::<bool>(), 1usize..3000).prop_flat_map(|(keys, one_period, n)| {
            let period = if one_period { 10i64..11 } else { -5i64..50 };
            prop::collection::vec(
                (
                    prop_oneof![3 => 0..keys.min(4), 1 => 0..keys],
                    prop_oneof![any::<i64>(), -100i64..1000],
                    period,
                ),
                n,
            )
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]
        /// Whatever the encoding (small dictionaries that fall back to PLAIN pages, page v1
        /// or v2, pages of a few rows), the sums equal a naive fold. The one layout declined
        /// is a v2 file's dictionary fallback (DELTA_BINARY_PACKED; the engine writes v1).
        #[test]
        fn sums_equal_a_naive_fold(
            rows in rows(),
            dict_limit in prop_oneof![Just(64usize), Just(4 << 20)],
            page_rows in prop_oneof![Just(3usize), Just(100), Just(20_000)],
            v2 in any::<bool>(),
            zstd in any::<bool>(),
        ) {
            let file = write(&rows, dict_limit, page_rows, v2, zstd);
            match sums_of(&file) {
                Some(got) => prop_assert_eq!(got, naive(&rows)),
                None => prop_assert!(v2 && dict_limit == 64, "declined a v1 or dictionary-only file"),
            }
        }

        /// Corrupted column chunks are an error or a (wrong but bounded) answer, never a panic.
        #[test]
        fn damaged_chunks_never_panic(rows in rows(), flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8)) {
            let file = write(&rows, 4 << 20, 100, false, true);
            let mut bytes = file.to_vec();
            let reader = SerializedFileReader::new(file.clone()).unwrap();
            let rg = reader.metadata().row_group(0).clone();
            let (start, len) = rg.column(STACK_ID_COLUMN).byte_range();
            for (at, x) in flips {
                bytes[start as usize + at.index(len as usize)] ^= x | 1;
            }
            let damaged = Bytes::from(bytes);
            let chunks = SUM_COLUMNS.map(|c| {
                let (start, len) = rg.column(c).byte_range();
                damaged.slice(start as usize..(start + len) as usize)
            });
            let _ = RowGroupSummer::default().add(&rg, chunks, &mut StackSums::default());
        }
    }

    /// Packs `values` LSB-first at `w` bits, padded to whole groups of 8.
    fn pack(values: &[u32], w: u32) -> Vec<u8> {
        let n = values.len().div_ceil(8) * 8;
        let mut bits = vec![0u8; (n * w as usize).div_ceil(8)];
        for (i, &v) in values.iter().enumerate() {
            for b in 0..w as usize {
                if v >> b & 1 == 1 {
                    let bit = i * w as usize + b;
                    bits[bit / 8] |= 1 << (bit % 8);
                }
            }
        }
        bits
    }

    #[test]
    fn unpack_matches_a_bit_by_bit_packing_for_every_width() {
        let mut out = Vec::new();
        for w in 0..=32u32 {
            let mask = if w == 32 { u32::MAX } else { (1u32 << w) - 1 };
            let values: Vec<u32> = (0..37u32)
                .map(|i| i.wrapping_mul(2_654_435_761) & mask)
                .collect();
            let packed = pack(&values, w);
            unpack(&packed, w, values.len(), &mut out);
            assert_eq!(out, values, "bit width {w}");
        }
    }

    #[test]
    fn hybrid_runs_decode_repeats_and_packed_groups_and_stop_at_the_value_count() {
        // bit width 3; RLE run of 4 x 5; bit-packed 1 group of 8 (only 6 counted).
        let mut page = vec![3u8, 4 << 1, 5];
        page.push((1 << 1) | 1);
        page.extend(pack(&[0, 1, 2, 3, 4, 5, 6, 7], 3));
        let mut runs = HybridRuns::new(&page, 10).unwrap();
        let mut got = Vec::new();
        let mut buf = Vec::new();
        while let Some(run) = runs.next_run().unwrap() {
            match run {
                Run::Repeat { index, len } => got.extend(std::iter::repeat_n(index, len)),
                Run::Packed { bytes, len } => {
                    unpack(bytes, 3, len, &mut buf);
                    got.extend(&buf);
                }
            }
        }
        assert_eq!(got, vec![5, 5, 5, 5, 0, 1, 2, 3, 4, 5]);
    }

    #[test]
    fn truncated_or_malformed_pages_are_errors() {
        fn message<T>(r: Result<T>) -> String {
            match r {
                Err(ParquetError::General(m)) => m,
                Err(other) => panic!("expected a General error, got {other:?}"),
                Ok(_) => panic!("expected an error"),
            }
        }
        assert_eq!(
            message(HybridRuns::new(&[], 1)),
            "empty dictionary data page"
        );
        assert!(message(HybridRuns::new(&[33], 1)).contains("bit width 33 > 32"));
        let mut r = HybridRuns::new(&[8, 3], 8).unwrap(); // packed group, no bytes
        assert!(message(r.next_run()).contains("bytes, 0 left in the page"));
        let mut r = HybridRuns::new(&[8, 0], 8).unwrap(); // empty RLE run
        assert_eq!(message(r.next_run()), "empty RLE run");
        let mut r = HybridRuns::new(&[8, 0x80], 8).unwrap(); // header cut short
        assert_eq!(message(r.next_run()), "truncated run header");
    }
}
