//! Blocks on a real S3 API: a local `moto_server` (PyPI `moto[server]`, installed by
//! `scripts/test`) speaks the S3 protocol; the engine stores its blocks there through
//! `object_store`'s S3 client, flushes, compacts, reopens and applies retention.

mod common;

use common::s3::*;
use common::*;
use strata_engine::{Engine, LabelMatcher, TimeRange};

fn rows(ts0: i64) -> Vec<Row> {
    (0..40)
        .map(|i| Row {
            pt: (i % 2) as usize,
            labels: vec![("job".into(), format!("j{}", i % 3))],
            ts: ts0 + i,
            stack: (i % 6) as u8,
            value: ts0 + i,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocks_live_in_s3() {
    let Some(s3) = start_s3() else { return };
    create_bucket(s3.port, "strata-test");
    let dir = tempfile::tempdir().unwrap();
    let config = s3_config(dir.path(), s3.port);
    let mut model = Vec::new();
    {
        let engine = Engine::open(config.clone()).await.unwrap();
        for round in 0..3 {
            let r = rows(round * 100);
            engine.append(&batch(&r)).await.unwrap();
            model.extend(r);
            engine.flush().await.unwrap();
        }
        let merged = engine.compact().await.unwrap().expect("three blocks merge");
        assert_eq!(merged.num_samples, 120);
        let r = rows(1000);
        engine.append(&batch(&r)).await.unwrap();
        model.extend(r);
        engine.close().await.unwrap();
    }
    // Nothing but the WAL and the lock on local disk.
    assert!(!dir.path().join("blocks").exists());

    let mut config = config;
    config.retention.max_bytes = Some(1);
    let engine = Engine::open(config).await.unwrap();
    assert_eq!(engine.open_report().blocks, 1);
    assert_eq!(engine.open_report().replay.samples, 40);
    let types = profile_types();
    for (i, pt) in types.iter().enumerate() {
        let ms = vec![LabelMatcher::equal("job", "j1")];
        assert_eq!(
            scan_all(&engine, pt, ms.clone(), TimeRange::ALL).await,
            model_scan(&model, i, &ms, TimeRange::ALL)
        );
    }
    assert_eq!(
        engine
            .label_values("job", None, &[], TimeRange::ALL)
            .await
            .unwrap(),
        vec!["j0", "j1", "j2"]
    );
    let resolved = engine.resolve_stacks(&[stack_id_of(3)]).await.unwrap();
    assert_eq!(resolved.stacks[&stack_id_of(3)].len(), 4);

    // Retention by size drops the block from S3; the head's samples remain.
    let dropped = engine.apply_retention().await.unwrap();
    assert_eq!(dropped.len(), 1);
    assert!(engine.blocks().is_empty());
    let left = scan_all(&engine, &types[0], vec![], TimeRange::ALL).await;
    assert_eq!(left, model_scan(&model[120..], 0, &[], TimeRange::ALL));
    engine.close().await.unwrap();
}
