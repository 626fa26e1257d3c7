//! Reading blocks: pruned sample scans and symbol lookups.

use std::collections::HashSet;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, BooleanArray, RecordBatch};
use arrow::datatypes::{DataType, Int32Type, Int64Type, Schema, SchemaRef, UInt64Type};
use futures::{FutureExt, TryStreamExt};
use object_store::ObjectStore;
use parquet::arrow::arrow_reader::statistics::StatisticsConverter;
use parquet::arrow::arrow_reader::{
    ArrowPredicateFn, ArrowReaderMetadata, ArrowReaderOptions, RowFilter, RowSelection, RowSelector,
};
use parquet::arrow::{ParquetRecordBatchStreamBuilder, ProjectionMask};
use parquet::file::metadata::{PageIndexPolicy, ParquetMetaData};

use super::dictionary_sums::{RowGroupSummer, SUM_COLUMNS};
use super::object_reader::BlockFileReader;
use super::schema::{
    functions_schema, locations_schema, mappings_schema, samples_schema, stacks_schema,
};
use super::{BlockHandle, block_path, files};
use crate::error::{Error, Result};
use crate::model::{
    Function, FunctionId, Line, Location, LocationId, Mapping, MappingId, ProfileType, StackId,
};
use crate::scan::{TimeRange, scan_schema};
use crate::stack_sums::StackSums;
use crate::symbol_tables::SymbolTables;

/// A Parquet error reading one of the block's files: the object store's own error when the
/// store failed (unreachable, denied: the block is fine), else the file is corrupt.
fn corrupt(block: &BlockHandle, file: &str) -> impl FnOnce(parquet::errors::ParquetError) -> Error {
    let (block, file) = (block.id().to_owned(), file.to_owned());
    move |e| match e {
        parquet::errors::ParquetError::External(inner) => {
            match inner.downcast::<object_store::Error>() {
                Ok(source) => Error::ObjectStore {
                    path: block_path(&block, &file).to_string(),
                    source: *source,
                },
                Err(other) => Error::CorruptBlock {
                    block,
                    file,
                    reason: other.to_string(),
                },
            }
        }
        e => Error::CorruptBlock {
            block,
            file,
            reason: e.to_string(),
        },
    }
}

/// Refuses a file whose columns are not the ones the format lists (checked before any column
/// is read, so a mismatched file is an error, never a panic).
fn check_schema(block: &BlockHandle, file: &str, found: &Schema, expected: &Schema) -> Result<()> {
    let shape = |s: &Schema| -> Vec<(String, DataType)> {
        s.fields()
            .iter()
            .map(|f| (f.name().clone(), f.data_type().clone()))
            .collect()
    };
    if shape(found) != shape(expected) {
        return Err(Error::CorruptBlock {
            block: block.id().to_owned(),
            file: file.to_owned(),
            reason: format!("unexpected columns {:?}", shape(found)),
        });
    }
    Ok(())
}

fn expected_schema(file: &str) -> SchemaRef {
    match file {
        files::STACKS => stacks_schema(),
        files::LOCATIONS => locations_schema(),
        files::FUNCTIONS => functions_schema(),
        files::MAPPINGS => mappings_schema(),
        _ => samples_schema(),
    }
}

/// Runs Parquet decoding, turning a panic inside it into a corrupt-block error: the `parquet`
/// crate panics on some malformed files instead of returning an error (an `unwrap` on a data
/// page header without its `data_page_header`, overflowing page offsets), and a block file is
/// input like any other. Found by the `block` fuzz target.
async fn contain_panics<T>(
    block: &BlockHandle,
    file: &str,
    decode: impl Future<Output = Result<T>>,
) -> Result<T> {
    match std::panic::AssertUnwindSafe(decode).catch_unwind().await {
        Ok(result) => result,
        Err(panic) => {
            let message = panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("(no message)");
            Err(Error::CorruptBlock {
                block: block.id().to_owned(),
                file: file.to_owned(),
                reason: format!("the Parquet decoder panicked: {message}"),
            })
        }
    }
}

/// How block files are opened: with the schema the engine writes, not the Arrow schema embedded
/// in the file (`ARROW:schema`), whose decoder (arrow-ipc) panics on some malformed ones; a
/// file whose columns do not fit the schema is an error.
fn read_options(schema: SchemaRef) -> ArrowReaderOptions {
    ArrowReaderOptions::new().with_schema(schema)
}

async fn open_reader(
    store: &Arc<dyn ObjectStore>,
    block: &BlockHandle,
    file: &str,
) -> Result<ParquetRecordBatchStreamBuilder<BlockFileReader>> {
    let reader = BlockFileReader::new(
        store.clone(),
        block_path(block.id(), file),
        block.file_size(file),
    );
    let builder = ParquetRecordBatchStreamBuilder::new_with_options(
        reader,
        read_options(expected_schema(file)),
    )
    .await
    .map_err(corrupt(block, file))?;
    check_schema(block, file, builder.schema(), &expected_schema(file))?;
    Ok(builder)
}

/// Reads every batch of one of the block's files.
async fn read_file(
    store: &Arc<dyn ObjectStore>,
    block: &BlockHandle,
    file: &str,
) -> Result<Vec<RecordBatch>> {
    contain_panics(block, file, async {
        let stream = open_reader(store, block, file)
            .await?
            .build()
            .map_err(corrupt(block, file))?;
        stream.try_collect().await.map_err(corrupt(block, file))
    })
    .await
}

/// Rows per batch a block scan decodes (the Parquet reader's default is 1,024; DataFusion's
/// operators work best near their own default of 8,192).
const SCAN_BATCH_ROWS: usize = 8192;

/// The samples of one profile type in one block, for a set of its series and a time range: a
/// part of a scan, read on demand by [`BlockScan::read`].
#[derive(Clone)]
pub(crate) struct BlockScan {
    pub(crate) store: Arc<dyn ObjectStore>,
    pub(crate) block: Arc<BlockHandle>,
    pub(crate) profile_type: ProfileType,
    /// Selected series ids, sorted.
    pub(crate) series: Arc<[u64]>,
    /// Whether `series` holds every series of `profile_type` in the block, so rows need no
    /// series test.
    pub(crate) every_series: bool,
    pub(crate) range: TimeRange,
}

impl BlockScan {
    /// The block's samples scaled by the share of its series selected.
    pub(crate) fn estimated_rows(&self) -> u64 {
        let meta = &self.block.meta;
        let share = self.series.len() as f64 / meta.num_series.max(1) as f64;
        (meta.num_samples as f64 * share.min(1.0)) as u64
    }

    /// The footer of `samples.parquet`, read once per block and cached.
    async fn footer(&self) -> Result<ArrowReaderMetadata> {
        let file = files::SAMPLES;
        let (store, block) = (&self.store, &self.block);
        let footer = block
            .samples_footer
            .get_or_try_init(|| async {
                let mut r = BlockFileReader::new(
                    store.clone(),
                    block_path(block.id(), file),
                    block.file_size(file),
                );
                let load = ArrowReaderMetadata::load_async(
                    &mut r,
                    read_options(samples_schema())
                        .with_page_index_policy(PageIndexPolicy::Optional),
                );
                let footer = contain_panics(block, file, async {
                    load.await.map_err(corrupt(block, file))
                })
                .await?;
                let size = block.file_size(file);
                if let Err(reason) = check_column_chunks(footer.metadata(), size)
                    .and_then(|()| check_offset_index(footer.metadata(), size))
                {
                    return Err(Error::CorruptBlock {
                        block: block.id().to_owned(),
                        file: file.into(),
                        reason,
                    });
                }
                Ok(footer)
            })
            .await?
            .clone();
        check_schema(block, file, footer.schema(), &samples_schema())?;
        Ok(footer)
    }

    /// The rows, `projection` of the scan schema (output `schema`). Row groups are pruned by
    /// their statistics on profile type, series id and timestamp, then pages by the page
    /// index. A row group whose statistics show that every row is selected (one profile type,
    /// every series of it selected, its time span inside the range) is decoded without a row
    /// filter and only for the projected columns; in the others a row filter evaluates the
    /// three selection columns first, so the rest are decoded only for matching rows.
    pub(crate) async fn read(
        self,
        projection: Option<Arc<[usize]>>,
        schema: SchemaRef,
    ) -> Result<Vec<RecordBatch>> {
        let block = &self.block;
        let footer = self.footer().await?;
        let meta = footer.metadata().clone();
        let selected =
            prune_row_groups(&meta, block, &self.profile_type, &self.series, self.range)?;
        if selected.is_empty() {
            return Ok(Vec::new());
        }
        let (whole, partial) = self.split_whole(&meta, selected);
        // Scan column i is the file's root column i + 1 (root 0 is `profile_type`).
        let roots: Vec<usize> = match &projection {
            Some(p) => p.iter().map(|&i| i + 1).collect(),
            None => (1..=scan_schema().fields().len()).collect(),
        };
        let mut out = Vec::new();
        for (groups, filtered) in [(whole, false), (partial, true)] {
            for b in self
                .read_row_groups(&footer, groups, filtered, &roots)
                .await?
            {
                out.push(
                    RecordBatch::try_new(schema.clone(), b.columns().to_vec())
                        .map_err(Error::arrow("projecting samples"))?,
                );
            }
        }
        Ok(out)
    }

    /// The selected rows summed per stack (see
    /// [`ScanPart::stack_sums`](crate::ScanPart::stack_sums)). Row groups where every row is
    /// selected are summed on their dictionary encoding ([`RowGroupSummer`]), one ranged read
    /// of three column chunks each; the others (and any in an encoding it does not decode)
    /// are read with the row filter and summed by hashing.
    pub(crate) async fn stack_sums(self) -> Result<RecordBatch> {
        let file = files::SAMPLES;
        let block = &self.block;
        let footer = self.footer().await?;
        let meta = footer.metadata().clone();
        let selected =
            prune_row_groups(&meta, block, &self.profile_type, &self.series, self.range)?;
        let (whole, mut rest) = self.split_whole(&meta, selected);
        let mut sums = StackSums::default();
        let mut summer = RowGroupSummer::default();
        let path = block_path(block.id(), file);
        for g in whole {
            let rg = meta.row_group(g);
            let ranges: Vec<std::ops::Range<u64>> = SUM_COLUMNS
                .iter()
                .map(|&c| {
                    let (start, len) = rg.column(c).byte_range();
                    start..start + len
                })
                .collect();
            let chunks = self
                .store
                .get_ranges(&path, &ranges)
                .await
                .map_err(Error::store(&path))?;
            let chunks: [bytes::Bytes; 3] = chunks.try_into().map_err(|c: Vec<_>| {
                corrupt(block, file)(parquet::errors::ParquetError::General(format!(
                    "{} column chunks read for 3 ranges",
                    c.len()
                )))
            })?;
            if !summer
                .add(rg, chunks, &mut sums)
                .map_err(corrupt(block, file))?
            {
                rest.push(g);
            }
        }
        // Scan columns period, stack_id, value are the file's roots 4, 5, 6.
        for b in self
            .read_row_groups(&footer, rest, true, &SUM_COLUMNS)
            .await?
        {
            sums.add_batch(&b, [0, 1, 2]);
        }
        sums.into_batch()
    }

    /// Splits selected row groups into those whose every row is selected and the rest.
    fn split_whole(
        &self,
        meta: &ParquetMetaData,
        selected: Vec<usize>,
    ) -> (Vec<usize>, Vec<usize>) {
        selected.into_iter().partition(|&g| {
            self.every_series && row_group_inside(meta, g, &self.profile_type, self.range)
        })
    }

    /// Root columns `roots` of row groups `groups`, through the row filter when `filtered`.
    async fn read_row_groups(
        &self,
        footer: &ArrowReaderMetadata,
        mut groups: Vec<usize>,
        filtered: bool,
        roots: &[usize],
    ) -> Result<Vec<RecordBatch>> {
        if groups.is_empty() {
            return Ok(Vec::new());
        }
        groups.sort_unstable();
        let file = files::SAMPLES;
        let block = &self.block;
        let meta = footer.metadata();
        let schema_descr = meta.file_metadata().schema_descr();
        let reader = BlockFileReader::new(
            self.store.clone(),
            block_path(block.id(), file),
            block.file_size(file),
        );
        let mut builder =
            ParquetRecordBatchStreamBuilder::new_with_metadata(reader, footer.clone());
        if filtered {
            if let Some(pages) = page_selection(meta, &groups, &self.series, self.range) {
                builder = builder.with_row_selection(pages);
            }
            builder = builder.with_row_filter(RowFilter::new(vec![Box::new(
                self.row_predicate(schema_descr),
            )]));
        }
        let batches: Vec<RecordBatch> = contain_panics(block, file, async {
            let stream = builder
                .with_batch_size(SCAN_BATCH_ROWS)
                .with_row_groups(groups)
                .with_projection(ProjectionMask::roots(schema_descr, roots.iter().copied()))
                .build()
                .map_err(corrupt(block, file))?;
            stream.try_collect().await.map_err(corrupt(block, file))
        })
        .await?;
        Ok(batches.into_iter().filter(|b| b.num_rows() > 0).collect())
    }

    /// The row filter: this profile type, inside the range, one of the series. Rows are sorted
    /// by series, so the series test is a binary search only when the id changes.
    fn row_predicate(
        &self,
        schema_descr: &parquet::schema::types::SchemaDescriptor,
    ) -> impl parquet::arrow::arrow_reader::ArrowPredicate + use<> {
        let pt_name = self.profile_type.to_string();
        let series = self.series.clone();
        let range = self.range;
        ArrowPredicateFn::new(
            ProjectionMask::roots(schema_descr, [0, 1, 2]),
            move |b: RecordBatch| {
                let dict = b.column(0).as_dictionary::<Int32Type>();
                let names = dict.values().as_string::<i32>();
                let key_ok: Vec<bool> = (0..names.len())
                    .map(|k| names.value(k) == pt_name)
                    .collect();
                let keys = dict.keys();
                let sid = b.column(1).as_primitive::<UInt64Type>();
                let ts = b.column(2).as_primitive::<Int64Type>();
                let mut last: Option<(u64, bool)> = None;
                Ok((0..b.num_rows())
                    .map(|r| {
                        let id = sid.value(r);
                        let wanted = match last {
                            Some((l, w)) if l == id => w,
                            _ => {
                                let w = series.binary_search(&id).is_ok();
                                last = Some((id, w));
                                w
                            }
                        };
                        Some(
                            wanted && key_ok[keys.value(r) as usize] && range.contains(ts.value(r)),
                        )
                    })
                    .collect::<BooleanArray>())
            },
        )
    }
}

/// Whether row group `g`'s statistics show every row is of `pt` and inside `range`.
fn row_group_inside(meta: &ParquetMetaData, g: usize, pt: &ProfileType, range: TimeRange) -> bool {
    use parquet::file::statistics::Statistics;
    let rg = meta.row_group(g);
    let stats = |col: usize| rg.column(col).statistics();
    let pt_name = pt.to_string();
    let pt_ok = match stats(0) {
        Some(Statistics::ByteArray(s)) => {
            let (lo, hi) = (s.min_bytes_opt(), s.max_bytes_opt());
            s.min_is_exact()
                && s.max_is_exact()
                && lo == Some(pt_name.as_bytes())
                && hi == Some(pt_name.as_bytes())
        }
        _ => false,
    };
    let time_ok = match stats(2) {
        Some(Statistics::Int64(s)) => match (s.min_opt(), s.max_opt()) {
            (Some(&lo), Some(&hi)) => range.contains(lo) && range.contains(hi),
            _ => false,
        },
        _ => false,
    };
    pt_ok && time_ok
}

/// Checks that every column chunk lies inside the file: `ColumnChunkMetaData::byte_range`
/// (used by the summing scan and the Parquet reader) asserts that offset and size are not
/// negative, and a chunk past the end of the file is corrupt.
fn check_column_chunks(meta: &ParquetMetaData, file_size: u64) -> std::result::Result<(), String> {
    for (g, rg) in meta.row_groups().iter().enumerate() {
        for (c, column) in rg.columns().iter().enumerate() {
            let start = column
                .dictionary_page_offset()
                .unwrap_or(column.data_page_offset());
            let len = column.compressed_size();
            let end = u64::try_from(start)
                .ok()
                .zip(u64::try_from(len).ok())
                .and_then(|(s, l)| s.checked_add(l));
            if end.is_none_or(|end| end > file_size) || column.data_page_offset() < 0 {
                return Err(format!(
                    "row group {g} column {c}: a chunk of {len} bytes at {start} is outside the \
                     {file_size}-byte file"
                ));
            }
        }
    }
    Ok(())
}

/// Checks the offset index (where each data page is and its first row) against the file: the
/// Parquet reader trusts it for the ranged reads of selected rows and overflows or panics on a
/// corrupt one (a negative offset, a page past the end, rows out of order).
fn check_offset_index(meta: &ParquetMetaData, file_size: u64) -> std::result::Result<(), String> {
    let Some(index) = meta.offset_index() else {
        return Ok(());
    };
    if index.len() != meta.num_row_groups() {
        return Err("page index: wrong number of row groups".into());
    }
    for (g, columns) in index.iter().enumerate() {
        let rows = meta.row_group(g).num_rows();
        for (c, column) in columns.iter().enumerate() {
            let bad = |what: &str| format!("page index: row group {g} column {c}: {what}");
            let mut next_row = 0;
            for p in column.page_locations() {
                let start = u64::try_from(p.offset).map_err(|_| bad("negative page offset"))?;
                let len =
                    u64::try_from(p.compressed_page_size).map_err(|_| bad("negative page size"))?;
                if start.checked_add(len).is_none_or(|end| end > file_size) {
                    return Err(bad("page past the end of the file"));
                }
                if p.first_row_index < next_row || p.first_row_index >= rows.max(1) {
                    return Err(bad("page rows out of order"));
                }
                next_row = p.first_row_index + 1;
            }
        }
    }
    Ok(())
}

/// Within the chosen row groups, the rows of data pages whose page-index statistics admit one of
/// the series (column `series_id`) and the time range (column `timestamp_ns`). Samples are
/// sorted by series, so one series' rows sit in a few pages. `None` when there is no page index.
fn page_selection(
    meta: &ParquetMetaData,
    row_groups: &[usize],
    series: &[u64],
    range: TimeRange,
) -> Option<RowSelection> {
    let (column_index, offset_index) = (meta.column_index()?, meta.offset_index()?);
    let schema = samples_schema();
    let descr = meta.file_metadata().schema_descr();
    let pages_of = |column: &str, admit: &dyn Fn(&ArrayRef, &ArrayRef, usize) -> bool| {
        let conv = StatisticsConverter::try_new(column, &schema, descr).ok()?;
        let mins = conv
            .data_page_mins(column_index, offset_index, row_groups)
            .ok()?;
        let maxes = conv
            .data_page_maxes(column_index, offset_index, row_groups)
            .ok()?;
        let counts = conv
            .data_page_row_counts(offset_index, meta.row_groups(), row_groups)
            .ok()??;
        let selectors: Vec<RowSelector> = (0..counts.len())
            .map(|i| {
                let rows = counts.value(i) as usize;
                let known = !mins.is_null(i) && !maxes.is_null(i);
                if !known || admit(&mins, &maxes, i) {
                    RowSelector::select(rows)
                } else {
                    RowSelector::skip(rows)
                }
            })
            .collect();
        Some(RowSelection::from(selectors))
    };
    let by_series = pages_of("series_id", &|lo, hi, i| {
        let (lo, hi) = (
            lo.as_primitive::<UInt64Type>().value(i),
            hi.as_primitive::<UInt64Type>().value(i),
        );
        let p = series.partition_point(|&s| s < lo);
        p < series.len() && series[p] <= hi
    })?;
    let by_time = pages_of("timestamp_ns", &|lo, hi, i| {
        range.overlaps(
            lo.as_primitive::<Int64Type>().value(i),
            hi.as_primitive::<Int64Type>().value(i),
        )
    })?;
    Some(by_series.intersection(&by_time))
}

/// Row groups whose statistics admit the profile type, one of the series and the range.
fn prune_row_groups(
    meta: &ParquetMetaData,
    block: &BlockHandle,
    pt: &ProfileType,
    series: &[u64],
    range: TimeRange,
) -> Result<Vec<usize>> {
    let file = files::SAMPLES;
    let pt_name = pt.to_string();
    let schema = samples_schema();
    let groups = meta.row_groups();
    let stat = |col: &str| -> Result<(ArrayRef, ArrayRef)> {
        let conv = StatisticsConverter::try_new(col, &schema, meta.file_metadata().schema_descr())
            .map_err(corrupt(block, file))?;
        Ok((
            conv.row_group_mins(groups.iter())
                .map_err(corrupt(block, file))?,
            conv.row_group_maxes(groups.iter())
                .map_err(corrupt(block, file))?,
        ))
    };
    let (pt_min, pt_max) = stat("profile_type")?;
    let (s_min, s_max) = stat("series_id")?;
    let (t_min, t_max) = stat("timestamp_ns")?;
    let string_at = |a: &ArrayRef, i: usize| -> Option<String> {
        if a.is_null(i) {
            return None;
        }
        match a.data_type() {
            DataType::Utf8 => Some(a.as_string::<i32>().value(i).to_owned()),
            DataType::Dictionary(..) => {
                let d = a.as_dictionary::<Int32Type>();
                let k = d.keys().value(i) as usize;
                Some(d.values().as_string::<i32>().value(k).to_owned())
            }
            _ => None,
        }
    };
    let u64_at =
        |a: &ArrayRef, i: usize| (!a.is_null(i)).then(|| a.as_primitive::<UInt64Type>().value(i));
    let i64_at =
        |a: &ArrayRef, i: usize| (!a.is_null(i)).then(|| a.as_primitive::<Int64Type>().value(i));
    let mut selected = Vec::new();
    for i in 0..groups.len() {
        let pt_ok = match (string_at(&pt_min, i), string_at(&pt_max, i)) {
            (Some(lo), Some(hi)) => {
                lo.as_str() <= pt_name.as_str() && pt_name.as_str() <= hi.as_str()
            }
            _ => true,
        };
        let series_ok = match (u64_at(&s_min, i), u64_at(&s_max, i)) {
            (Some(lo), Some(hi)) => {
                let p = series.partition_point(|&s| s < lo);
                p < series.len() && series[p] <= hi
            }
            _ => true,
        };
        let time_ok = match (i64_at(&t_min, i), i64_at(&t_max, i)) {
            (Some(lo), Some(hi)) => range.overlaps(lo, hi),
            _ => true,
        };
        if pt_ok && series_ok && time_ok {
            selected.push(i);
        }
    }
    Ok(selected)
}

/// Which symbols [`read_symbols`] returns.
pub(crate) enum SymbolFilter<'a> {
    /// Everything in the block.
    All,
    /// These stacks, these locations, and every location, function and mapping they reach.
    Only {
        stacks: &'a HashSet<StackId>,
        locations: &'a HashSet<LocationId>,
    },
}

/// Reads the block's symbol tables, filtered.
pub(crate) async fn read_symbols(
    store: &Arc<dyn ObjectStore>,
    block: &BlockHandle,
    filter: SymbolFilter<'_>,
) -> Result<SymbolTables> {
    let (stacks, extra_locations) = match filter {
        SymbolFilter::All => (None, None),
        SymbolFilter::Only { stacks, locations } => (Some(stacks), Some(locations)),
    };
    let mut out = SymbolTables::default();
    for b in read_file(store, block, files::STACKS).await? {
        add_stacks(&b, |id| stacks.is_none_or(|s| s.contains(&id)), &mut out);
    }
    let wanted_locs: Option<HashSet<LocationId>> = extra_locations.map(|extra| {
        out.stacks
            .values()
            .flatten()
            .chain(extra.iter())
            .copied()
            .collect()
    });
    let keep_location = |id| wanted_locs.as_ref().is_none_or(|w| w.contains(&id));
    for b in read_file(store, block, files::LOCATIONS).await? {
        add_locations(&b, keep_location, &mut out);
    }
    // Everything, or the functions and mappings of the locations read.
    let all = stacks.is_none();
    let functions_wanted: HashSet<FunctionId> = out
        .locations
        .values()
        .flat_map(|l| l.lines.iter().map(|x| x.function_id))
        .collect();
    let mappings_wanted: HashSet<MappingId> =
        out.locations.values().map(|l| l.mapping_id).collect();
    for b in read_file(store, block, files::FUNCTIONS).await? {
        add_functions(&b, |id| all || functions_wanted.contains(&id), &mut out);
    }
    for b in read_file(store, block, files::MAPPINGS).await? {
        add_mappings(&b, |id| all || mappings_wanted.contains(&id), &mut out);
    }
    Ok(out)
}

/// The rows of a `stacks.parquet` batch that `keep` selects.
fn add_stacks(b: &RecordBatch, keep: impl Fn(StackId) -> bool, out: &mut SymbolTables) {
    let ids = b.column(0).as_primitive::<UInt64Type>();
    let lists = b.column(1).as_list::<i32>();
    for r in 0..b.num_rows() {
        let id = StackId(ids.value(r));
        if !keep(id) {
            continue;
        }
        let locs = lists.value(r);
        let locs = locs.as_primitive::<UInt64Type>();
        out.stacks
            .insert(id, locs.values().iter().map(|&l| LocationId(l)).collect());
    }
}

/// The rows of a `locations.parquet` batch that `keep` selects.
fn add_locations(b: &RecordBatch, keep: impl Fn(LocationId) -> bool, out: &mut SymbolTables) {
    let ids = b.column(0).as_primitive::<UInt64Type>();
    let mids = b.column(1).as_primitive::<UInt64Type>();
    let addrs = b.column(2).as_primitive::<UInt64Type>();
    let lines = b.column(3).as_list::<i32>();
    for r in 0..b.num_rows() {
        let id = LocationId(ids.value(r));
        if !keep(id) {
            continue;
        }
        let l = lines.value(r);
        let l = l.as_struct();
        let fids = l.column(0).as_primitive::<UInt64Type>();
        let nums = l.column(1).as_primitive::<Int64Type>();
        let lines: Vec<Line> = (0..l.len())
            .map(|i| Line {
                function_id: FunctionId(fids.value(i)),
                line: nums.value(i),
            })
            .collect();
        out.insert_location(
            id,
            Location {
                mapping_id: MappingId(mids.value(r)),
                address: addrs.value(r),
                lines,
            },
        );
    }
}

/// The rows of a `functions.parquet` batch that `keep` selects.
fn add_functions(b: &RecordBatch, keep: impl Fn(FunctionId) -> bool, out: &mut SymbolTables) {
    let ids = b.column(0).as_primitive::<UInt64Type>();
    let s = |c: usize| b.column(c).as_string::<i32>();
    let start = b.column(4).as_primitive::<Int64Type>();
    for r in 0..b.num_rows() {
        let id = FunctionId(ids.value(r));
        if keep(id) {
            out.functions.insert(
                id,
                Function {
                    name: s(1).value(r).to_owned(),
                    system_name: s(2).value(r).to_owned(),
                    filename: s(3).value(r).to_owned(),
                    start_line: start.value(r),
                },
            );
        }
    }
}

/// The rows of a `mappings.parquet` batch that `keep` selects.
fn add_mappings(b: &RecordBatch, keep: impl Fn(MappingId) -> bool, out: &mut SymbolTables) {
    let ids = b.column(0).as_primitive::<UInt64Type>();
    let s = |c: usize| b.column(c).as_string::<i32>();
    let u = |c: usize| b.column(c).as_primitive::<UInt64Type>();
    for r in 0..b.num_rows() {
        let id = MappingId(ids.value(r));
        if keep(id) {
            out.mappings.insert(
                id,
                Mapping {
                    build_id: s(1).value(r).to_owned(),
                    filename: s(2).value(r).to_owned(),
                    memory_start: u(3).value(r),
                    memory_limit: u(4).value(r),
                    file_offset: u(5).value(r),
                },
            );
        }
    }
}

#[cfg(test)]
mod tests;
