//! Bytes as a block's files (see `strata_fuzz::decode_block_archive`: a flags byte, then
//! `meta.json`, `index.bin` and the Parquet files), stored in an in-memory object store and
//! opened with `Engine::open_with_store`: the block is loaded (or quarantined with an error),
//! then every part of every scan is read as rows and through `ScanPart::stack_sums` (the
//! dictionary-encoded fast path of `dictionary_sums.rs` and `page_reader.rs`), and the symbols
//! of every stack resolved. Flag `FIX_META` rewrites `meta.json`'s id and file sizes to match
//! the archive, so mutations that change a Parquet file's length get past `open_block`.
#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{ObjectStoreExt, PutPayload};
use strata_engine::Engine;
use strata_fuzz::{
    BLOCK_ID, FIX_META, RUNTIME, config, decode_block_archive, fixed_meta, read_everything,
    scratch_dir,
};

fuzz_target!(init: strata_fuzz::let_decoder_panics_unwind(), |data: &[u8]| {
    let (flags, mut files) = decode_block_archive(data);
    let meta;
    if flags & FIX_META != 0
        && let Some(i) = files.iter().position(|(n, _)| *n == "meta.json")
        && let Some(m) = fixed_meta(files[i].1, &files)
    {
        meta = m;
        files[i].1 = &meta;
    }
    let dir = scratch_dir("block");
    let _ = std::fs::remove_dir_all(&dir);
    RUNTIME.block_on(async {
        let store = Arc::new(InMemory::new());
        for (name, bytes) in &files {
            let path = Path::from(format!("blocks/{BLOCK_ID}/{name}"));
            store
                .put(&path, PutPayload::from(bytes.to_vec()))
                .await
                .unwrap();
        }
        let Ok(engine) = Engine::open_with_store(config(dir.clone()), store).await else {
            return;
        };
        read_everything(&engine).await;
        engine.close().await.unwrap();
    });
    let _ = std::fs::remove_dir_all(&dir);
});
