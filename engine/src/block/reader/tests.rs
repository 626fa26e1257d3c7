//! Unit tests of the block reader: each holds a file the `block` fuzz target found.

use std::sync::Arc;

use arrow::array::{Int64Array, RecordBatch};
use arrow::datatypes::{DataType, Field, Schema};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::{ArrowReaderMetadata, ArrowReaderOptions};
use parquet::file::metadata::{PageIndexPolicy, ParquetMetaDataBuilder};
use parquet::file::properties::{EnabledStatistics, WriterProperties};

use super::{check_column_chunks, check_offset_index, read_options};
use crate::block::samples_schema;

/// A Parquet file of one Int64 column `v` holding 0..100, written with `props`.
fn int64_file(props: Option<WriterProperties>) -> bytes::Bytes {
    let schema = Arc::new(Schema::new(vec![Field::new("v", DataType::Int64, false)]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![Arc::new(Int64Array::from_iter_values(0..100))],
    )
    .unwrap();
    let mut w = ArrowWriter::try_new(Vec::new(), schema, props).unwrap();
    w.write(&batch).unwrap();
    bytes::Bytes::from(w.into_inner().unwrap())
}

/// Found by the `block` fuzz target: a column chunk at a negative offset made
/// `ColumnChunkMetaData::byte_range` panic in the summing scan; it is now a corrupt block.
#[test]
fn a_column_chunk_outside_the_file_is_an_error() {
    let file = int64_file(None);
    let meta = ArrowReaderMetadata::load(&file, ArrowReaderOptions::new())
        .unwrap()
        .metadata()
        .clone();
    let size = file.len() as u64;
    assert_eq!(check_column_chunks(&meta, size), Ok(()));
    let damaged = |f: &dyn Fn(
        parquet::file::metadata::ColumnChunkMetaDataBuilder,
    ) -> parquet::file::metadata::ColumnChunkMetaDataBuilder| {
        let rg = meta.row_group(0).clone();
        let column = f(rg.column(0).clone().into_builder()).build().unwrap();
        let rg = rg
            .into_builder()
            .set_column_metadata(vec![column])
            .build()
            .unwrap();
        (*meta)
            .clone()
            .into_builder()
            .set_row_groups(vec![rg])
            .build()
    };
    for m in [
        damaged(&|c| c.set_data_page_offset(-4)),
        damaged(&|c| c.set_dictionary_page_offset(Some(-4))),
        damaged(&|c| c.set_total_compressed_size(-1)),
        damaged(&|c| c.set_total_compressed_size(size as i64)),
        damaged(&|c| c.set_dictionary_page_offset(Some(i64::MAX))),
    ] {
        let e = check_column_chunks(&m, size).unwrap_err();
        assert!(e.contains("outside"), "{e}");
    }
}

/// Found by the `block` fuzz target: a data page header without its `data_page_header`
/// in a list column makes the `parquet` crate unwrap a `None`; reading the file is an
/// error.
#[tokio::test]
async fn a_panic_in_the_parquet_decoder_is_a_corrupt_block() {
    use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

    use crate::block::{BlockHandle, BlockIndex, BlockMeta, block_path, files};
    use crate::error::Error;

    let file: &'static [u8] = include_bytes!("../testdata/locations-bad-page-header.parquet");
    let store: Arc<dyn ObjectStore> = Arc::new(object_store::memory::InMemory::new());
    let path = block_path("b", files::LOCATIONS);
    store
        .put(&path, PutPayload::from_static(file))
        .await
        .unwrap();
    let block = BlockHandle {
        meta: BlockMeta {
            format_version: 1,
            id: "b".into(),
            min_time_ns: 0,
            max_time_ns: 0,
            num_samples: 0,
            num_series: 0,
            num_stacks: 0,
            level: 0,
            sources: Vec::new(),
            wal_segment_upto: 0,
            created_at_ms: 0,
            files: [(files::LOCATIONS.to_owned(), file.len() as u64)].into(),
            ingester: None,
        },
        index: BlockIndex::new(Vec::new(), Vec::new()),
        samples_footer: Default::default(),
    };
    let e = super::read_file(&store, &block, files::LOCATIONS)
        .await
        .unwrap_err();
    assert!(
        matches!(&e, Error::CorruptBlock { reason, .. } if reason.contains("panicked")),
        "{e}"
    );
}

/// Found by the `block` fuzz target: one changed character in the Arrow schema embedded in
/// `samples.parquet` made arrow-ipc panic while the footer was read.
#[test]
fn the_embedded_arrow_schema_is_not_decoded() {
    let schema = samples_schema();
    let mut w = ArrowWriter::try_new(Vec::new(), schema.clone(), None).unwrap();
    w.write(&RecordBatch::new_empty(schema.clone())).unwrap();
    let mut file = w.into_inner().unwrap();
    let key = file.windows(12).position(|w| w == b"ARROW:schema").unwrap();
    // The fuzzer's change: in the base64 text, an `I` became an `M`.
    assert_eq!(file[key + 329], b'I');
    file[key + 329] = b'M';
    let file = bytes::Bytes::from(file);
    let meta = ArrowReaderMetadata::load(&file, read_options(schema.clone())).unwrap();
    assert_eq!(meta.schema(), &schema);
}

/// Found by the `block` fuzz target: a corrupt offset index made the Parquet reader's
/// ranged read of selected rows overflow; it is now a corrupt block.
#[test]
fn a_corrupt_offset_index_is_an_error() {
    let props = WriterProperties::builder()
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_data_page_row_count_limit(10)
        .set_write_batch_size(10)
        .build();
    let file = int64_file(Some(props));
    let options = ArrowReaderOptions::new().with_page_index_policy(PageIndexPolicy::Required);
    let meta = ArrowReaderMetadata::load(&file, options)
        .unwrap()
        .metadata()
        .clone();
    let size = file.len() as u64;
    assert_eq!(check_offset_index(&meta, size), Ok(()));
    let pages = meta.offset_index().unwrap()[0][0].page_locations().len();
    assert!(pages > 1);

    let damaged = |f: &dyn Fn(&mut parquet::file::page_index::offset_index::PageLocation)| {
        let mut index = meta.offset_index().unwrap().clone();
        f(&mut index[0][0].page_locations[1]);
        ParquetMetaDataBuilder::new_from_metadata((*meta).clone())
            .set_offset_index(Some(index))
            .build()
    };
    for (what, m) in [
        ("negative page offset", damaged(&|p| p.offset = -1)),
        (
            "negative page size",
            damaged(&|p| p.compressed_page_size = -7),
        ),
        ("page past the end", damaged(&|p| p.offset = size as i64)),
        ("page past the end", damaged(&|p| p.offset = i64::MAX)),
        ("rows out of order", damaged(&|p| p.first_row_index = 0)),
        ("rows out of order", damaged(&|p| p.first_row_index = 100)),
    ] {
        let e = check_offset_index(&m, size).unwrap_err();
        assert!(e.contains(what), "{e}");
    }
}
