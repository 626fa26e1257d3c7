//! Writes the seeds of the `wal` and `block` fuzz targets from real profiles: each pprof file
//! given (default: `seeds/pprof/*`) is decoded and normalized by strata-ingest, appended to an
//! engine twice (two records, a minute apart), and
//!
//! - its WAL segment is saved as `seeds/wal/<name>-crc` (mode 1: CRCs recomputed by the
//!   target) and `seeds/wal/<name>-raw` (mode 0), plus a torn copy (`<name>-torn`);
//! - the block a flush writes is saved as `seeds/block/<name>-zstd` (as the engine writes it)
//!   and `seeds/block/<name>-plain` (its Parquet files rewritten uncompressed, same layout, with
//!   `FIX_META`), so that mutations reach the page decoders rather than zstd.
//!
//! ```sh
//! cd fuzz && cargo run --example gen_seeds [PPROF_FILE...]
//! ```

use std::path::{Path, PathBuf};
use std::sync::Arc;

use object_store::ObjectStoreExt;
use object_store::memory::InMemory;
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::Compression;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use strata_engine::{Engine, SampleBatch};
use strata_fuzz::{
    BLOCK_ID, FIX_META, RUNTIME, config, encode_block_archive, fixed_meta, scratch_dir,
};
use strata_ingest::{DecodeLimits, ProfileSource, decode_pprof, normalize};

fn batches(path: &Path) -> Vec<SampleBatch> {
    let bytes = std::fs::read(path).unwrap();
    let limits = DecodeLimits {
        max_body_bytes: 64 << 20,
        max_decompressed_bytes: 256 << 20,
    };
    let profile = decode_pprof(&bytes, &limits).unwrap();
    let stem = path.file_name().unwrap().to_string_lossy().into_owned();
    (0..2i64)
        .map(|i| {
            let source = ProfileSource::from_labels(
                [
                    ("__name__".to_owned(), "fuzz".to_owned()),
                    ("job".to_owned(), "seed".to_owned()),
                    ("instance".to_owned(), format!("{stem}-{i}")),
                ],
                1_700_000_000_000_000_000 + i * 60_000_000_000,
            )
            .unwrap();
            normalize(&profile, &source).unwrap()
        })
        .collect()
}

/// A Parquet file rewritten without compression, with the engine's layout otherwise.
fn uncompressed(file: &[u8]) -> Vec<u8> {
    let builder =
        ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::copy_from_slice(file)).unwrap();
    let schema = builder.schema().clone();
    let sorting = builder
        .metadata()
        .row_groups()
        .first()
        .and_then(|g| g.sorting_columns().cloned());
    let props = WriterProperties::builder()
        .set_compression(Compression::UNCOMPRESSED)
        .set_dictionary_enabled(true)
        .set_dictionary_page_size_limit(4 << 20)
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_max_row_group_row_count(Some(64))
        .set_data_page_row_count_limit(16)
        .set_write_batch_size(16)
        .set_sorting_columns(sorting)
        .build();
    let mut w = ArrowWriter::try_new(Vec::new(), schema, Some(props)).unwrap();
    for b in builder.build().unwrap() {
        w.write(&b.unwrap()).unwrap();
    }
    w.into_inner().unwrap()
}

fn main() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut inputs: Vec<PathBuf> = std::env::args().skip(1).map(PathBuf::from).collect();
    if inputs.is_empty() {
        inputs = std::fs::read_dir(root.join("seeds/pprof"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        inputs.sort();
    }
    let (wal_out, block_out) = (root.join("seeds/wal"), root.join("seeds/block"));
    std::fs::create_dir_all(&wal_out).unwrap();
    std::fs::create_dir_all(&block_out).unwrap();
    for input in &inputs {
        let name = input
            .file_name()
            .unwrap()
            .to_string_lossy()
            .split('.')
            .next()
            .unwrap()
            .to_owned();
        let batches = batches(input);
        let dir = scratch_dir("gen-seeds");
        let _ = std::fs::remove_dir_all(&dir);
        RUNTIME.block_on(async {
            let store = Arc::new(InMemory::new());
            let engine = Engine::open_with_store(config(dir.clone()), store.clone())
                .await
                .unwrap();
            for b in &batches {
                engine.append(b).await.unwrap();
            }
            // The WAL as it is before the flush deletes it.
            let mut segment = Vec::new();
            for e in std::fs::read_dir(dir.join("wal")).unwrap() {
                let bytes = std::fs::read(e.unwrap().path()).unwrap();
                if bytes.len() > segment.len() {
                    segment = bytes;
                }
            }
            for (suffix, mode, bytes) in [
                ("crc", 1u8, &segment[..]),
                ("raw", 0, &segment[..]),
                ("torn", 0, &segment[..segment.len() - 5]),
            ] {
                let mut seed = vec![mode];
                seed.extend_from_slice(bytes);
                std::fs::write(wal_out.join(format!("{name}-{suffix}")), seed).unwrap();
            }

            let meta = engine.flush().await.unwrap().expect("a block");
            engine.close().await.unwrap();
            let mut files: Vec<(&str, Vec<u8>)> = Vec::new();
            for f in strata_fuzz::BLOCK_FILES {
                let path = object_store::path::Path::from(format!("blocks/{}/{f}", meta.id));
                let bytes = store.get(&path).await.unwrap().bytes().await.unwrap();
                files.push((f, bytes.to_vec()));
            }
            let as_written: Vec<(&str, &[u8])> = files.iter().map(|(n, b)| (*n, &b[..])).collect();
            let meta_json = fixed_meta(&files[0].1, &as_written).unwrap();
            let mut zstd = as_written.clone();
            zstd[0].1 = &meta_json;
            let plain_files: Vec<(&str, Vec<u8>)> = files
                .iter()
                .map(|(n, b)| {
                    let b = if n.ends_with(".parquet") {
                        uncompressed(b)
                    } else {
                        b.clone()
                    };
                    (*n, b)
                })
                .collect();
            let mut plain: Vec<(&str, &[u8])> =
                plain_files.iter().map(|(n, b)| (*n, &b[..])).collect();
            let plain_meta = fixed_meta(&files[0].1, &plain).unwrap();
            plain[0].1 = &plain_meta;
            std::fs::write(
                block_out.join(format!("{name}-zstd")),
                encode_block_archive(0, &zstd),
            )
            .unwrap();
            std::fs::write(
                block_out.join(format!("{name}-plain")),
                encode_block_archive(FIX_META, &plain),
            )
            .unwrap();
            println!(
                "{name}: WAL segment {} bytes, block {} samples ({})",
                segment.len(),
                meta.num_samples,
                BLOCK_ID
            );
        });
        let _ = std::fs::remove_dir_all(&dir);
    }
}
