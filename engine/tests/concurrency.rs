//! Flushing never blocks appends for long: while a flush uploads a block (held open by a slow
//! object store), appends keep completing into the new head, and scans see both the head being
//! flushed and the new one.

mod common;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use common::store::InstrumentedStore;
use common::*;
use strata_engine::{Engine, TimeRange};

fn rows(ts: i64, value: i64) -> Vec<Row> {
    vec![Row {
        pt: 0,
        labels: vec![("job".into(), "a".into())],
        ts,
        stack: (value % 6) as u8,
        value,
    }]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appends_complete_while_a_flush_uploads() {
    let dir = tempfile::tempdir().unwrap();
    // Each block file upload takes a second: a flush takes at least seven.
    let store = Arc::new(InstrumentedStore::with_put_delay(
        dir.path(),
        Duration::from_secs(1),
    ));
    let engine = Engine::open_with_store(test_config(dir.path()), store.clone())
        .await
        .unwrap();
    let mut model = rows(0, 1000);
    engine.append(&batch(&model)).await.unwrap();

    let flushing = tokio::spawn({
        let engine = engine.clone();
        async move { engine.flush().await }
    });
    while store.puts_started.load(Ordering::SeqCst) == 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // The head has been rotated and its block is uploading. Appends go on.
    for v in 1..=20 {
        let r = rows(v, v);
        engine.append(&batch(&r)).await.unwrap();
        model.extend(r);
    }
    assert!(!flushing.is_finished(), "20 appends waited for the flush");
    // Reads see the head being flushed and the new head.
    let pt = &profile_types()[0];
    assert_eq!(
        scan_all(&engine, pt, vec![], TimeRange::ALL).await,
        model_scan(&model, 0, &[], TimeRange::ALL)
    );

    let block = flushing.await.unwrap().unwrap().expect("a block");
    assert_eq!(block.num_samples, 1);
    assert_eq!(engine.stats().head.samples, 20);
    assert_eq!(
        scan_all(&engine, pt, vec![], TimeRange::ALL).await,
        model_scan(&model, 0, &[], TimeRange::ALL)
    );
    engine.close().await.unwrap();
}
