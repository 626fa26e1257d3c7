//! Restart test: data survives close/reopen, flush and compaction, and the label APIs answer
//! from indexes without reading any sample file (object-store reads are counted).

mod common;

use std::sync::Arc;

use common::store::InstrumentedStore;
use common::*;
use strata_engine::{Engine, LabelMatcher, TimeRange};

fn rows(ts0: i64, n: i64) -> Vec<Row> {
    (0..n)
        .map(|i| Row {
            pt: (i % 2) as usize,
            labels: vec![
                ("job".into(), format!("j{}", i % 3)),
                ("env".into(), format!("e{}", i % 2)),
            ],
            ts: ts0 + i,
            stack: (i % 6) as u8,
            value: 1 + i,
        })
        .collect()
}

#[tokio::test]
async fn survives_restart_flush_and_compaction_and_labels_come_from_indexes() {
    let dir = tempfile::tempdir().unwrap();
    let config = test_config(dir.path());
    let mut model = Vec::new();
    {
        let engine = Engine::open(config.clone()).await.unwrap();
        for round in 0..4 {
            let r = rows(round * 1000, 50);
            engine.append(&batch(&r)).await.unwrap();
            model.extend(r);
            engine.flush().await.unwrap();
        }
        assert_eq!(engine.blocks().len(), 4);
        let compacted = engine
            .compact()
            .await
            .unwrap()
            .expect("adjacent blocks merge");
        assert_eq!(compacted.sources.len(), 4);
        assert_eq!(compacted.num_samples, 200);
        assert_eq!(engine.blocks().len(), 1);
        // And some data only in the WAL + head.
        let r = rows(9000, 30);
        engine.append(&batch(&r)).await.unwrap();
        model.extend(r);
        engine.close().await.unwrap();
    }
    // Compaction deleted its sources: exactly one block prefix remains on disk.
    assert_eq!(
        std::fs::read_dir(dir.path().join("blocks"))
            .unwrap()
            .count(),
        1
    );

    let store = Arc::new(InstrumentedStore::new(dir.path()));
    let engine = Engine::open_with_store(config.clone(), store.clone())
        .await
        .unwrap();
    assert_eq!(engine.open_report().replay.samples, 30);
    assert_eq!(engine.open_report().blocks, 1);
    let opened_at_start = store.reads.lock().clone();
    assert!(
        opened_at_start
            .iter()
            .all(|p| p.ends_with("meta.json") || p.ends_with("index.bin")),
        "{opened_at_start:?}"
    );

    let types = profile_types();
    assert_eq!(engine.profile_types(TimeRange::ALL).await.unwrap().len(), 2);
    let names = engine
        .label_names(Some(&types[0]), &[], TimeRange::ALL)
        .await
        .unwrap();
    assert_eq!(names, vec!["env", "job"]);
    let values = engine
        .label_values(
            "job",
            None,
            &[LabelMatcher::equal("env", "e1")],
            TimeRange::new(0, 5000),
        )
        .await
        .unwrap();
    assert_eq!(values, vec!["j0", "j1", "j2"]);
    assert_eq!(
        store.reads_of("samples.parquet"),
        0,
        "label APIs must not read samples"
    );
    assert_eq!(
        store.reads.lock().len(),
        opened_at_start.len(),
        "label APIs read nothing at all"
    );

    // Everything is still there, and the counter sees the sample file being read.
    for (i, pt) in types.iter().enumerate() {
        let got = scan_all(&engine, pt, vec![], TimeRange::ALL).await;
        assert_eq!(got, model_scan(&model, i, &[], TimeRange::ALL));
    }
    assert!(store.reads_of("samples.parquet") > 0);

    // Pruning: a scan whose time range misses every block reads no sample file.
    let before = store.reads_of("samples.parquet");
    let got = scan_all(&engine, &types[0], vec![], TimeRange::new(5000, 6000)).await;
    assert!(got.is_empty());
    assert_eq!(store.reads_of("samples.parquet"), before);
    engine.close().await.unwrap();
}

#[tokio::test]
async fn late_symbols_replace_unsymbolized_locations() {
    use strata_engine::{Function, Labels, Line, Location, Mapping, SampleBatchBuilder, SampleRow};
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(test_config(dir.path())).await.unwrap();
    let mapping = Mapping {
        build_id: "b1d".into(),
        filename: "/bin/x".into(),
        memory_limit: 1 << 20,
        ..Default::default()
    };
    let mut b = SampleBatchBuilder::new();
    let pt = b.profile_type(&profile_types()[0]);
    let series = b.series(Labels::new([("job", "x")]).unwrap());
    let m = b.mapping(mapping.clone());
    let loc = b.location(Location {
        mapping_id: m,
        address: 0x42,
        lines: vec![],
    });
    let stack = b.stack(&[loc]);
    let stack_id = b.stack_id(stack);
    b.sample(SampleRow {
        profile_type: pt,
        series,
        timestamp_ns: 1,
        duration_ns: 1,
        period: 1,
        stack,
        value: 3,
    });
    engine.append(&b.build().unwrap()).await.unwrap();
    engine.flush().await.unwrap();
    let before = engine.resolve_stacks(&[stack_id]).await.unwrap();
    assert!(!before.locations[&loc].is_symbolized());

    // The symbolizer later sends the lines for the same mapping + address.
    let mut b = SampleBatchBuilder::new();
    let m = b.mapping(mapping);
    let f = b.function(Function {
        name: "main".into(),
        ..Default::default()
    });
    let same = b.location(Location {
        mapping_id: m,
        address: 0x42,
        lines: vec![Line {
            function_id: f,
            line: 9,
        }],
    });
    assert_eq!(same, loc);
    engine.append(&b.build().unwrap()).await.unwrap();
    for step in 0..2 {
        let after = engine.resolve_stacks(&[stack_id]).await.unwrap();
        let l = &after.locations[&loc];
        assert!(l.is_symbolized(), "step {step}");
        assert_eq!(after.functions[&l.lines[0].function_id].name, "main");
        engine.flush().await.unwrap();
        engine.compact().await.unwrap();
    }
    engine.close().await.unwrap();
}

#[tokio::test]
async fn retention_drops_old_blocks_and_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(dir.path());
    config.retention.max_age = Some(std::time::Duration::from_secs(24 * 3600));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64;
    let engine = Engine::open(config.clone()).await.unwrap();
    let old = rows(1_000, 10); // 1970: far beyond max_age
    engine.append(&batch(&old)).await.unwrap();
    let old_block = engine.flush().await.unwrap().unwrap();
    let recent = rows(now - 1_000_000_000, 10);
    engine.append(&batch(&recent)).await.unwrap();
    engine.flush().await.unwrap();
    let dropped = engine.apply_retention().await.unwrap();
    assert_eq!(dropped, vec![old_block.id.clone()]);
    assert!(!dir.path().join("blocks").join(&old_block.id).exists());
    engine.close().await.unwrap();
    drop(engine);

    let engine = Engine::open(config).await.unwrap();
    assert_eq!(engine.blocks().len(), 1);
    let types = profile_types();
    let got = scan_all(&engine, &types[0], vec![], TimeRange::ALL).await;
    assert_eq!(got, model_scan(&recent, 0, &[], TimeRange::ALL));
    engine.close().await.unwrap();
}
