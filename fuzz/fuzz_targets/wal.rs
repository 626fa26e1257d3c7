//! Bytes as a WAL segment, replayed by `Engine::open`: the first byte picks a mode (bit 0:
//! recompute every record frame's CRC-32C, so mutated payloads reach the record decoder), the
//! rest is the segment file `wal/00000000000000000001.wal`. Replay must never panic: damage is
//! cut out (torn tail truncated, corrupt records quarantined) or opening fails with an error.
//! Then: everything replayed is read back, the engine is closed and reopened (a replayed,
//! rewritten WAL has no damage left and replays the same records), flushed to a block (in
//! memory) and read again.
#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use object_store::memory::InMemory;
use strata_engine::Engine;
use strata_fuzz::{RUNTIME, config, fix_wal_crcs, read_everything, scratch_dir};

fuzz_target!(init: strata_fuzz::let_decoder_panics_unwind(), |data: &[u8]| {
    let Some((&mode, segment)) = data.split_first() else {
        return;
    };
    let mut segment = segment.to_vec();
    if mode & 1 == 1 {
        fix_wal_crcs(&mut segment);
    }
    let dir = scratch_dir("wal");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("wal")).unwrap();
    std::fs::write(dir.join("wal/00000000000000000001.wal"), &segment).unwrap();
    RUNTIME.block_on(async {
        let store = Arc::new(InMemory::new());
        let Ok(engine) = Engine::open_with_store(config(dir.clone()), store.clone()).await else {
            return;
        };
        let first = engine.open_report().replay.clone();
        for d in &first.damage {
            assert!(
                d.offset + d.bytes <= segment.len() as u64,
                "damage outside the segment: {d:?}"
            );
        }
        read_everything(&engine).await;
        engine.close().await.unwrap();
        drop(engine);

        let engine = Engine::open_with_store(config(dir.clone()), store)
            .await
            .expect("reopening a replayed WAL");
        let second = engine.open_report().replay.clone();
        assert!(
            second.damage.is_empty(),
            "damage left after replay: {:?}",
            second.damage
        );
        assert_eq!(
            (second.records, second.samples),
            (first.records, first.samples),
            "a second replay found other records"
        );
        if engine.flush().await.is_ok() {
            read_everything(&engine).await;
        }
        engine.close().await.unwrap();
    });
    let _ = std::fs::remove_dir_all(&dir);
});
