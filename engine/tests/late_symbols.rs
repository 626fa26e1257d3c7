//! Late symbols: lines stored for address-keyed locations after their samples (the symbol
//! overlay) resolve for stacks in the head and in older blocks, are found by the sweep, survive
//! flush, compaction and reopen; and debug info files kept by build id survive reopen.

mod common;

use std::collections::HashSet;

use bytes::Bytes;
use common::test_config;
use strata_engine::{
    DebuginfoKind, Engine, Error, Function, Labels, LocationId, LocationLines, Mapping,
    SampleBatchBuilder, SampleRow, StackId, SymbolTables,
};

fn mapping() -> Mapping {
    Mapping {
        build_id: "0123abcd".into(),
        filename: "/opt/app/bin/server".into(),
        memory_start: 0x40_0000,
        memory_limit: 0x50_0000,
        file_offset: 0,
    }
}

/// Appends one sample per stack; each stack is a list of unsymbolized addresses of
/// [`mapping`], leaf first. Returns the stack ids.
async fn append_unsymbolized(engine: &Engine, ts: i64, stacks: &[&[u64]]) -> Vec<StackId> {
    let mut b = SampleBatchBuilder::new();
    let pt = b.profile_type(
        &"process_cpu:cpu:nanoseconds:cpu:nanoseconds:delta"
            .parse()
            .unwrap(),
    );
    let series = b.series(Labels::new([("job", "app")]).unwrap());
    let m = b.mapping(mapping());
    let mut ids = Vec::new();
    for addrs in stacks {
        let locs: Vec<LocationId> = addrs
            .iter()
            .map(|&address| {
                b.location(strata_engine::Location {
                    mapping_id: m,
                    address,
                    lines: vec![],
                })
            })
            .collect();
        let stack = b.stack(&locs);
        ids.push(b.stack_id(stack));
        b.sample(SampleRow {
            profile_type: pt,
            series,
            timestamp_ns: ts,
            duration_ns: 10,
            period: 10,
            stack,
            value: 1,
        });
    }
    engine.append(&b.build().unwrap()).await.unwrap();
    ids
}

fn function(name: &str) -> Function {
    Function {
        name: name.into(),
        system_name: name.into(),
        filename: "/src/app.c".into(),
        start_line: 1,
    }
}

/// The lines found for 0x401000 (an inlined `helper` in `work`) and 0x402000 (`main`).
fn lines() -> Vec<LocationLines> {
    vec![
        LocationLines {
            mapping: mapping(),
            address: 0x40_1000,
            lines: vec![(function("helper"), 12), (function("work"), 30)],
        },
        LocationLines {
            mapping: mapping(),
            address: 0x40_2000,
            lines: vec![(function("main"), 44)],
        },
    ]
}

/// The stack's frames, leaf first, as `function:line` (inlined first), or `?<addr>` for a
/// location without lines.
fn frames(t: &SymbolTables, stack: StackId) -> Vec<String> {
    t.stacks[&stack]
        .iter()
        .flat_map(|l| {
            let loc = &t.locations[l];
            if loc.lines.is_empty() {
                return vec![format!("?{:#x}", loc.address)];
            }
            loc.lines
                .iter()
                .map(|line| format!("{}:{}", t.functions[&line.function_id].name, line.line))
                .collect()
        })
        .collect()
}

fn addresses(sweep: &strata_engine::UnsymbolizedSweep) -> Vec<u64> {
    let mut a: Vec<u64> = sweep.locations.iter().map(|l| l.address).collect();
    a.sort();
    a
}

#[tokio::test]
async fn late_lines_resolve_for_head_and_block_stacks_and_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let config = test_config(dir.path());
    let (in_block, in_head);
    {
        let engine = Engine::open(config.clone()).await.unwrap();
        // Stored before any symbols exist: one stack flushed to a block, one left in the head.
        in_block = append_unsymbolized(&engine, 1_000, &[&[0x40_1000, 0x40_2000]]).await[0];
        engine.flush().await.unwrap();
        in_head = append_unsymbolized(&engine, 2_000, &[&[0x40_1000, 0x40_3000]]).await[0];

        let before = engine.resolve_stacks(&[in_block, in_head]).await.unwrap();
        assert_eq!(frames(&before, in_block), ["?0x401000", "?0x402000"]);
        let sweep = engine
            .unsymbolized_locations(&HashSet::new())
            .await
            .unwrap();
        assert_eq!(addresses(&sweep), [0x40_1000, 0x40_2000, 0x40_3000]);
        assert_eq!(sweep.blocks.len(), 1);
        assert!(sweep.locations.iter().all(|l| l.mapping == mapping()));
        // Skipping the block it read leaves the head's locations only.
        let skip: HashSet<String> = sweep.blocks.iter().cloned().collect();
        let heads_only = engine.unsymbolized_locations(&skip).await.unwrap();
        assert_eq!(addresses(&heads_only), [0x40_1000, 0x40_3000]);
        assert!(heads_only.blocks.is_empty());

        // A bad entry refuses the whole call.
        let mut bad = lines();
        bad[1].lines.clear();
        assert!(matches!(
            engine.put_location_lines(&bad).await,
            Err(Error::InvalidLocationLines { .. })
        ));
        assert_eq!(
            engine
                .unsymbolized_locations(&HashSet::new())
                .await
                .unwrap()
                .locations
                .len(),
            3
        );

        engine.put_location_lines(&lines()).await.unwrap();
        assert_eq!(lines()[0].location_id(), sweep.locations[0].id);
        let after = engine.resolve_stacks(&[in_block, in_head]).await.unwrap();
        assert_eq!(
            frames(&after, in_block),
            ["helper:12", "work:30", "main:44"],
            "the block's stack, stored before the lines"
        );
        assert_eq!(
            frames(&after, in_head),
            ["helper:12", "work:30", "?0x403000"]
        );
        // Only the address nothing named is left.
        let sweep = engine
            .unsymbolized_locations(&HashSet::new())
            .await
            .unwrap();
        assert_eq!(addresses(&sweep), [0x40_3000]);

        // The head (the second stack and the lines) becomes a block...
        engine.flush().await.unwrap();
        let after_flush = engine.resolve_stacks(&[in_block, in_head]).await.unwrap();
        assert_eq!(
            frames(&after_flush, in_block),
            ["helper:12", "work:30", "main:44"]
        );
        assert_eq!(engine.blocks().len(), 2);
        let sweep = engine
            .unsymbolized_locations(&HashSet::new())
            .await
            .unwrap();
        assert_eq!(
            addresses(&sweep),
            [0x40_3000],
            "another block's lines count"
        );
        // ...and lines for a location only blocks hold make a block with no samples.
        let late = LocationLines {
            mapping: mapping(),
            address: 0x40_3000,
            lines: vec![(function("tail"), 7)],
        };
        engine.put_location_lines(&[late]).await.unwrap();
        engine.flush().await.unwrap();
        assert_eq!(engine.blocks().len(), 3);
        assert_eq!(engine.blocks()[2].num_samples, 0);
        let sweep = engine
            .unsymbolized_locations(&HashSet::new())
            .await
            .unwrap();
        assert!(sweep.locations.is_empty(), "{sweep:?}");
        engine.close().await.unwrap();
    }
    // All of it survives a reopen, and a compaction of the two data blocks (the lines' block
    // is dated by its creation, far from them, so it stays apart).
    let engine = Engine::open(config.clone()).await.unwrap();
    let reopened = engine.resolve_stacks(&[in_block, in_head]).await.unwrap();
    assert_eq!(
        frames(&reopened, in_block),
        ["helper:12", "work:30", "main:44"]
    );
    assert_eq!(
        frames(&reopened, in_head),
        ["helper:12", "work:30", "tail:7"]
    );
    let merged = engine
        .compact()
        .await
        .unwrap()
        .expect("the data blocks merge");
    assert_eq!(merged.sources.len(), 2);
    assert_eq!(engine.blocks().len(), 2);
    let compacted = engine.resolve_stacks(&[in_block, in_head]).await.unwrap();
    assert_eq!(
        frames(&compacted, in_block),
        ["helper:12", "work:30", "main:44"]
    );
    assert_eq!(
        frames(&compacted, in_head),
        ["helper:12", "work:30", "tail:7"]
    );
    let sweep = engine
        .unsymbolized_locations(&HashSet::new())
        .await
        .unwrap();
    assert!(sweep.locations.is_empty());
    engine.close().await.unwrap();
}

#[tokio::test]
async fn debuginfo_files_are_kept_by_build_id_next_to_the_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let config = test_config(dir.path());
    let go_id = "foh3mEXu7BLZjsN9pOwG/kATcXlYVCDEFouRMQed_";
    {
        let engine = Engine::open(config.clone()).await.unwrap();
        let store = engine.debuginfo();
        store
            .put_file(
                "c89b1120",
                DebuginfoKind::Debuginfo,
                Bytes::from_static(b"\x7fELF1"),
            )
            .await
            .unwrap();
        store
            .put_file(
                go_id,
                DebuginfoKind::Executable,
                Bytes::from_static(b"\x7fELF2"),
            )
            .await
            .unwrap();
        assert!(matches!(
            store
                .put_file("", DebuginfoKind::Debuginfo, Bytes::new())
                .await,
            Err(Error::InvalidBuildId { .. })
        ));
        engine.close().await.unwrap();
    }
    // On the local store the files are plain files under <data_dir>/debuginfo/<key>/.
    assert_eq!(
        std::fs::read(dir.path().join("debuginfo/c89b1120/debuginfo")).unwrap(),
        b"\x7fELF1"
    );
    let engine = Engine::open(config).await.unwrap();
    let store = engine.debuginfo();
    assert_eq!(
        store
            .file(go_id, DebuginfoKind::Executable)
            .await
            .unwrap()
            .unwrap(),
        Bytes::from_static(b"\x7fELF2")
    );
    assert!(
        store
            .file(go_id, DebuginfoKind::Debuginfo)
            .await
            .unwrap()
            .is_none()
    );
    // Opening and block listing ignore the prefix.
    assert!(engine.open_report().quarantined_blocks.is_empty());
    assert!(engine.blocks().is_empty());
}
