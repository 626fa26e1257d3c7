//! Encoding a block: sorted samples, symbol tables, series index and metadata into files.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::SystemTime;

use arrow::array::{
    ArrayRef, AsArray, Int64Array, ListBuilder, RecordBatch, StringArray, StructBuilder,
    UInt64Array, UInt64Builder,
};
use arrow::datatypes::{Int32Type, Int64Type, SchemaRef, UInt64Type};
use bytes::Bytes;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use roaring::RoaringBitmap;

use super::index_file::{BlockIndex, TypeStats};
use super::schema::{
    functions_schema, line_fields, locations_schema, mappings_schema, samples_schema, stacks_schema,
};
use super::{BlockMeta, FORMAT_VERSION, files};
use crate::clock::{unix_ms, unix_ns};
use crate::config::BlockConfig;
use crate::error::{Error, Result};
use crate::model::{Labels, SeriesId};
use crate::symbol_tables::SymbolTables;

/// A block ready to upload: its files in upload order (`meta.json` last).
pub(crate) struct EncodedBlock {
    pub meta: BlockMeta,
    pub index: BlockIndex,
    pub files: Vec<(&'static str, Bytes)>,
}

/// What a block is made of, besides its sorted samples.
pub(crate) struct BlockSource<'a> {
    pub id: String,
    pub series: &'a BTreeMap<SeriesId, Labels>,
    pub symbols: &'a SymbolTables,
    pub level: u32,
    pub sources: Vec<String>,
    pub wal_segment_upto: u64,
    /// Creation time (`created_at_ms`; the time range of a block without samples).
    pub created: SystemTime,
    /// The ingester flushing it (shared stores).
    pub ingester: Option<String>,
}

fn properties(config: &BlockConfig, sorted: bool) -> Result<WriterProperties> {
    let level =
        ZstdLevel::try_new(config.zstd_level).map_err(Error::parquet("writer properties"))?;
    let mut b = WriterProperties::builder()
        .set_compression(Compression::ZSTD(level))
        .set_dictionary_enabled(true)
        .set_dictionary_page_size_limit(4 << 20)
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_max_row_group_row_count(Some(config.row_group_rows))
        .set_data_page_row_count_limit(config.page_rows)
        .set_write_batch_size(config.page_rows.min(1024));
    if sorted {
        b = b.set_sorting_columns(Some(vec![
            parquet::file::metadata::SortingColumn {
                column_idx: 0,
                descending: false,
                nulls_first: false,
            },
            parquet::file::metadata::SortingColumn {
                column_idx: 1,
                descending: false,
                nulls_first: false,
            },
            parquet::file::metadata::SortingColumn {
                column_idx: 2,
                descending: false,
                nulls_first: false,
            },
        ]));
    }
    Ok(b.build())
}

fn parquet_bytes(
    name: &str,
    schema: SchemaRef,
    props: WriterProperties,
    batches: impl Iterator<Item = Result<RecordBatch>>,
) -> Result<Bytes> {
    let rows = props.max_row_group_row_count().unwrap_or(usize::MAX).max(1);
    let mut w =
        ArrowWriter::try_new(Vec::new(), schema, Some(props)).map_err(Error::parquet(name))?;
    for b in batches {
        let b = b?;
        // `ArrowWriter::write` recurses once per row group a batch spans: hand it at most one
        // row group at a time so deep stacks never build up.
        let mut offset = 0;
        while offset < b.num_rows() {
            let len = rows.min(b.num_rows() - offset);
            w.write(&b.slice(offset, len))
                .map_err(Error::parquet(name))?;
            offset += len;
        }
    }
    Ok(Bytes::from(w.into_inner().map_err(Error::parquet(name))?))
}

#[derive(Default)]
struct TypeAcc {
    min: i64,
    max: i64,
    samples: u64,
    series: HashSet<u64>,
}

/// Per-profile-type statistics gathered while the sorted samples stream into the Parquet file.
#[derive(Default)]
struct SampleStats {
    types: BTreeMap<String, TypeAcc>,
    num_samples: u64,
}

impl SampleStats {
    fn observe(&mut self, b: &RecordBatch) {
        let dict = b.column(0).as_dictionary::<Int32Type>();
        let names = dict.values().as_string::<i32>();
        let keys = dict.keys();
        let series = b.column(1).as_primitive::<UInt64Type>();
        let ts = b.column(2).as_primitive::<Int64Type>();
        let mut accs: HashMap<i32, String> = HashMap::new();
        for row in 0..b.num_rows() {
            let k = keys.value(row);
            let name = accs
                .entry(k)
                .or_insert_with(|| names.value(k as usize).to_owned());
            let acc = self.types.entry(name.clone()).or_insert_with(|| TypeAcc {
                min: i64::MAX,
                max: i64::MIN,
                ..Default::default()
            });
            let t = ts.value(row);
            acc.min = acc.min.min(t);
            acc.max = acc.max.max(t);
            acc.samples += 1;
            acc.series.insert(series.value(row));
        }
        self.num_samples += b.num_rows() as u64;
    }

    /// The block's index: the series with samples here (only those are indexed), their
    /// postings, and the per-type statistics over their ordinals.
    fn index(&self, all_series: &BTreeMap<SeriesId, Labels>) -> Result<BlockIndex> {
        let seen: HashSet<u64> = self
            .types
            .values()
            .flat_map(|t| t.series.iter().copied())
            .collect();
        let series: Vec<(SeriesId, Labels)> = all_series
            .iter()
            .filter(|(id, _)| seen.contains(&id.0))
            .map(|(id, l)| (*id, l.clone()))
            .collect();
        let ordinal: HashMap<u64, u32> = series
            .iter()
            .enumerate()
            .map(|(i, (id, _))| (id.0, i as u32))
            .collect();
        let mut type_stats = Vec::with_capacity(self.types.len());
        for (name, acc) in &self.types {
            let mut bitmap = RoaringBitmap::new();
            for s in &acc.series {
                let o = ordinal.get(s).ok_or_else(|| {
                    Error::batch(format!("samples refer to series {s:016x} with no labels"))
                })?;
                bitmap.insert(*o);
            }
            type_stats.push(TypeStats {
                profile_type: name.parse()?,
                min_time: acc.min,
                max_time: acc.max,
                samples: acc.samples,
                series: bitmap,
            });
        }
        Ok(BlockIndex::new(series, type_stats))
    }
}

/// Encodes a block from samples sorted by (profile type, series id, timestamp).
pub(crate) fn encode_block(
    config: &BlockConfig,
    src: BlockSource<'_>,
    sorted_samples: impl Iterator<Item = Result<RecordBatch>>,
) -> Result<EncodedBlock> {
    let mut stats = SampleStats::default();
    let observed = sorted_samples.inspect(|b| {
        if let Ok(b) = b {
            stats.observe(b);
        }
    });
    let samples = parquet_bytes(
        files::SAMPLES,
        samples_schema(),
        properties(config, true)?,
        observed,
    )?;
    let index = stats.index(src.series)?;
    let mut files_list = vec![(files::SAMPLES, samples)];
    files_list.extend(symbol_files(config, src.symbols)?);
    files_list.push((files::INDEX, Bytes::from(index.encode())));
    let meta = block_meta(src, &index, stats.num_samples, &files_list);
    Ok(EncodedBlock {
        meta,
        index,
        files: files_list,
    })
}

/// The four symbol files, in upload order.
fn symbol_files(config: &BlockConfig, sym: &SymbolTables) -> Result<Vec<(&'static str, Bytes)>> {
    type Table = (
        &'static str,
        fn() -> SchemaRef,
        fn(&SymbolTables) -> Result<RecordBatch>,
    );
    let tables: [Table; 4] = [
        (files::STACKS, stacks_schema, stacks_batch),
        (files::LOCATIONS, locations_schema, locations_batch),
        (files::FUNCTIONS, functions_schema, functions_batch),
        (files::MAPPINGS, mappings_schema, mappings_batch),
    ];
    tables
        .into_iter()
        .map(|(name, schema, build)| {
            let props = properties(config, false)?;
            let bytes = parquet_bytes(name, schema(), props, std::iter::once(build(sym)))?;
            Ok((name, bytes))
        })
        .collect()
}

/// The block's `meta.json` content.
fn block_meta(
    src: BlockSource<'_>,
    index: &BlockIndex,
    num_samples: u64,
    files_list: &[(&'static str, Bytes)],
) -> BlockMeta {
    // A block of symbols only (late symbolization) takes its creation time as its time range,
    // so retention by age and compaction treat it like the data around it.
    let created_ns = unix_ns(src.created);
    let times = || index.types.iter();
    BlockMeta {
        format_version: FORMAT_VERSION,
        id: src.id,
        min_time_ns: times().map(|t| t.min_time).min().unwrap_or(created_ns),
        max_time_ns: times().map(|t| t.max_time).max().unwrap_or(created_ns),
        num_samples,
        num_series: index.series.len() as u64,
        num_stacks: src.symbols.stacks.len() as u64,
        level: src.level,
        sources: src.sources,
        wal_segment_upto: src.wal_segment_upto,
        created_at_ms: unix_ms(src.created),
        files: files_list
            .iter()
            .map(|(n, b)| (n.to_string(), b.len() as u64))
            .collect(),
        ingester: src.ingester,
    }
}

fn batch(schema: SchemaRef, columns: Vec<ArrayRef>, what: &'static str) -> Result<RecordBatch> {
    RecordBatch::try_new(schema, columns).map_err(Error::arrow(what))
}

fn stacks_batch(sym: &SymbolTables) -> Result<RecordBatch> {
    let ids = UInt64Array::from_iter_values(sym.stacks.keys().map(|k| k.0));
    let mut locs = ListBuilder::new(UInt64Builder::new()).with_field(Arc::new(
        arrow::datatypes::Field::new("item", arrow::datatypes::DataType::UInt64, false),
    ));
    for l in sym.stacks.values() {
        locs.values()
            .append_slice(&l.iter().map(|x| x.0).collect::<Vec<_>>());
        locs.append(true);
    }
    batch(
        stacks_schema(),
        vec![Arc::new(ids), Arc::new(locs.finish())],
        "building stacks",
    )
}

fn locations_batch(sym: &SymbolTables) -> Result<RecordBatch> {
    let ids = UInt64Array::from_iter_values(sym.locations.keys().map(|k| k.0));
    let mappings = UInt64Array::from_iter_values(sym.locations.values().map(|l| l.mapping_id.0));
    let addresses = UInt64Array::from_iter_values(sym.locations.values().map(|l| l.address));
    let item = arrow::datatypes::Field::new(
        "item",
        arrow::datatypes::DataType::Struct(line_fields()),
        false,
    );
    let mut lines =
        ListBuilder::new(StructBuilder::from_fields(line_fields(), 0)).with_field(Arc::new(item));
    for l in sym.locations.values() {
        let s = lines.values();
        for line in &l.lines {
            s.field_builder::<UInt64Builder>(0)
                .expect("function_id")
                .append_value(line.function_id.0);
            s.field_builder::<arrow::array::Int64Builder>(1)
                .expect("line")
                .append_value(line.line);
            s.append(true);
        }
        lines.append(true);
    }
    batch(
        locations_schema(),
        vec![
            Arc::new(ids),
            Arc::new(mappings),
            Arc::new(addresses),
            Arc::new(lines.finish()),
        ],
        "building locations",
    )
}

fn functions_batch(sym: &SymbolTables) -> Result<RecordBatch> {
    let f = || sym.functions.values();
    batch(
        functions_schema(),
        vec![
            Arc::new(UInt64Array::from_iter_values(
                sym.functions.keys().map(|k| k.0),
            )),
            Arc::new(StringArray::from_iter_values(f().map(|x| &x.name))),
            Arc::new(StringArray::from_iter_values(f().map(|x| &x.system_name))),
            Arc::new(StringArray::from_iter_values(f().map(|x| &x.filename))),
            Arc::new(Int64Array::from_iter_values(f().map(|x| x.start_line))),
        ],
        "building functions",
    )
}

fn mappings_batch(sym: &SymbolTables) -> Result<RecordBatch> {
    let m = || sym.mappings.values();
    batch(
        mappings_schema(),
        vec![
            Arc::new(UInt64Array::from_iter_values(
                sym.mappings.keys().map(|k| k.0),
            )),
            Arc::new(StringArray::from_iter_values(m().map(|x| &x.build_id))),
            Arc::new(StringArray::from_iter_values(m().map(|x| &x.filename))),
            Arc::new(UInt64Array::from_iter_values(m().map(|x| x.memory_start))),
            Arc::new(UInt64Array::from_iter_values(m().map(|x| x.memory_limit))),
            Arc::new(UInt64Array::from_iter_values(m().map(|x| x.file_offset))),
        ],
        "building mappings",
    )
}
