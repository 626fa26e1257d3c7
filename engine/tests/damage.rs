//! Bad-input tests: corrupt WAL records, torn WAL tails, truncated or corrupt Parquet, missing
//! block files, over-limit batches. Always a clear error or the bad part quarantined and
//! reported; never a panic, never silent loss of good data.

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use common::*;
use strata_engine::{Engine, Error, TimeRange, WalDamageKind};

fn one_row(ts: i64, value: i64) -> Vec<Row> {
    vec![Row {
        pt: 0,
        labels: vec![("job".into(), "a".into())],
        ts,
        stack: 1,
        value,
    }]
}

/// Offset and length of the payload of record `n` (0-based) of a WAL segment.
fn record_span(segment: &[u8], n: usize) -> (usize, usize) {
    let mut pos = 8; // segment magic
    for _ in 0..n {
        pos += 8 + u32::from_le_bytes(segment[pos..pos + 4].try_into().unwrap()) as usize;
    }
    let len = u32::from_le_bytes(segment[pos..pos + 4].try_into().unwrap()) as usize;
    (pos + 8, len)
}

fn wal_segments(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir.join("wal"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "wal"))
        .collect();
    v.sort();
    v
}

async fn values(engine: &Engine) -> Vec<i64> {
    let mut v: Vec<i64> = scan_all(engine, &profile_types()[0], vec![], TimeRange::ALL)
        .await
        .into_iter()
        .map(|r| r.3)
        .collect();
    v.sort();
    v
}

/// Appends three one-sample records (values 1, 2, 3; same stack) and closes without flushing.
async fn three_records_in_the_wal(dir: &Path) -> strata_engine::EngineConfig {
    let config = test_config(dir);
    let engine = Engine::open(config.clone()).await.unwrap();
    for v in [1, 2, 3] {
        engine.append(&batch(&one_row(v, v))).await.unwrap();
    }
    engine.close().await.unwrap();
    config
}

#[tokio::test]
async fn corrupt_wal_record_is_quarantined_and_later_records_survive() {
    let dir = tempfile::tempdir().unwrap();
    let config = three_records_in_the_wal(dir.path()).await;
    let seg = wal_segments(dir.path()).pop().unwrap();
    let mut bytes = fs::read(&seg).unwrap();
    // Flip a byte in the middle of the second record.
    let (start, len) = record_span(&bytes, 1);
    bytes[start + len / 2] ^= 0x5a;
    fs::write(&seg, &bytes).unwrap();

    let engine = Engine::open(config.clone()).await.unwrap();
    let report = engine.open_report().replay.clone();
    assert_eq!(report.records, 2);
    assert_eq!(report.damage.len(), 1, "{report:?}");
    assert_eq!(report.damage[0].kind, WalDamageKind::CorruptRecord);
    let q = report.damage[0]
        .quarantined_to
        .as_ref()
        .expect("quarantined");
    assert_eq!(fs::read(q).unwrap().len() as u64, report.damage[0].bytes);
    assert_eq!(values(&engine).await, vec![1, 3]);
    engine.close().await.unwrap();
    drop(engine);
    // The damage was cut out: the next open is clean and keeps the good records.
    let engine = Engine::open(config).await.unwrap();
    assert!(engine.open_report().replay.damage.is_empty());
    assert_eq!(values(&engine).await, vec![1, 3]);
    engine.close().await.unwrap();
}

/// WAL records leave out stacks the head already holds. If the record that defined a stack is
/// damaged, the samples of later records that use it are still kept, the stack is reported as
/// undefined, and it resolves again once it is appended anew.
#[tokio::test]
async fn samples_survive_when_the_record_defining_their_stack_is_damaged() {
    let dir = tempfile::tempdir().unwrap();
    let config = three_records_in_the_wal(dir.path()).await;
    let seg = wal_segments(dir.path()).pop().unwrap();
    let mut bytes = fs::read(&seg).unwrap();
    let (first, first_len) = record_span(&bytes, 0);
    let (_, second_len) = record_span(&bytes, 1);
    assert!(
        second_len < first_len,
        "later records reference the stack instead of repeating it"
    );
    bytes[first + first_len / 2] ^= 0x5a;
    fs::write(&seg, &bytes).unwrap();

    let engine = Engine::open(config).await.unwrap();
    let report = engine.open_report().replay.clone();
    assert_eq!(report.damage.len(), 1);
    assert_eq!(report.records, 2);
    assert_eq!(report.undefined_stacks, 1);
    assert_eq!(values(&engine).await, vec![2, 3]);
    let stack = stack_id_of(1);
    assert!(
        engine
            .resolve_stacks(&[stack])
            .await
            .unwrap()
            .stacks
            .is_empty()
    );
    // The same stack arrives again: it is defined again and everything resolves.
    engine.append(&batch(&one_row(4, 4))).await.unwrap();
    let resolved = engine.resolve_stacks(&[stack]).await.unwrap();
    assert_eq!(resolved.stacks[&stack].len(), 2);
    engine.flush().await.unwrap();
    assert_eq!(values(&engine).await, vec![2, 3, 4]);
    let resolved = engine.resolve_stacks(&[stack]).await.unwrap();
    assert_eq!(resolved.stacks[&stack].len(), 2);
    engine.close().await.unwrap();
}

#[tokio::test]
async fn torn_wal_tail_is_truncated() {
    let dir = tempfile::tempdir().unwrap();
    let config = test_config(dir.path());
    let engine = Engine::open(config.clone()).await.unwrap();
    for v in [1, 2] {
        engine.append(&batch(&one_row(v, v))).await.unwrap();
    }
    engine.close().await.unwrap();
    drop(engine);
    let seg = wal_segments(dir.path()).pop().unwrap();
    let mut bytes = fs::read(&seg).unwrap();
    let len = bytes.len();
    let half_record = bytes[8..len / 2].to_vec(); // a crash mid-write
    bytes.extend_from_slice(&half_record);
    fs::write(&seg, &bytes).unwrap();
    let engine = Engine::open(config).await.unwrap();
    let report = &engine.open_report().replay;
    assert_eq!(report.damage.len(), 1);
    assert_eq!(report.damage[0].kind, WalDamageKind::TornTail);
    assert_eq!(values(&engine).await, vec![1, 2]);
    engine.close().await.unwrap();
}

fn block_file(dir: &Path, id: &str, name: &str) -> PathBuf {
    dir.join("blocks").join(id).join(name)
}

async fn two_blocks(dir: &Path) -> (Vec<String>, strata_engine::EngineConfig) {
    let config = test_config(dir);
    let engine = Engine::open(config.clone()).await.unwrap();
    let mut ids = Vec::new();
    for v in [10, 20] {
        engine.append(&batch(&one_row(v, v))).await.unwrap();
        ids.push(engine.flush().await.unwrap().unwrap().id);
    }
    engine.append(&batch(&one_row(30, 30))).await.unwrap(); // head + WAL only
    engine.close().await.unwrap();
    (ids, config)
}

#[tokio::test]
async fn truncated_parquet_block_is_quarantined() {
    let dir = tempfile::tempdir().unwrap();
    let (ids, config) = two_blocks(dir.path()).await;
    let file = block_file(dir.path(), &ids[0], "samples.parquet");
    let len = fs::metadata(&file).unwrap().len();
    fs::OpenOptions::new()
        .write(true)
        .open(&file)
        .unwrap()
        .set_len(len / 2)
        .unwrap();

    let engine = Engine::open(config).await.unwrap();
    let report = engine.open_report();
    assert_eq!(report.quarantined_blocks.len(), 1);
    assert_eq!(report.quarantined_blocks[0].0, ids[0]);
    assert!(
        report.quarantined_blocks[0].1.contains("samples.parquet"),
        "{:?}",
        report.quarantined_blocks
    );
    assert!(
        dir.path()
            .join("quarantine")
            .join(&ids[0])
            .join("samples.parquet")
            .exists()
    );
    assert!(
        !dir.path()
            .join("blocks")
            .join(&ids[0])
            .join("meta.json")
            .exists()
    );
    // The other block and the WAL are intact.
    assert_eq!(values(&engine).await, vec![20, 30]);
    engine.close().await.unwrap();
}

#[tokio::test]
async fn staging_files_of_puts_cut_off_by_a_crash_are_deleted_on_open() {
    // A local put writes `<file>#<n>` and renames it: a crash between leaves a file no listing
    // shows, so no block deletion would ever remove it (found by server/tests/crash.rs).
    let dir = tempfile::tempdir().unwrap();
    let (ids, config) = two_blocks(dir.path()).await;
    let leftovers = [
        block_file(
            dir.path(),
            "01JD3Q5V8Z2X7R4M9K6T1B0C3A",
            "samples.parquet#1",
        ),
        block_file(dir.path(), &ids[0], "index.bin#17"),
        dir.path().join("debuginfo/abcd/debuginfo#2"),
    ];
    for f in &leftovers {
        fs::create_dir_all(f.parent().unwrap()).unwrap();
        fs::write(f, b"partial").unwrap();
    }
    // Not staging names: kept.
    let kept = block_file(dir.path(), &ids[1], "notes#x");
    fs::write(&kept, b"").unwrap();

    let engine = Engine::open(config).await.unwrap();
    let mut removed = engine.open_report().removed_staging.clone();
    removed.sort();
    let mut expected = leftovers.to_vec();
    expected.sort();
    assert_eq!(removed, expected);
    assert!(leftovers.iter().all(|f| !f.exists()));
    assert!(kept.exists());
    assert!(engine.open_report().quarantined_blocks.is_empty());
    assert_eq!(values(&engine).await, vec![10, 20, 30]);
    engine.close().await.unwrap();
}

#[tokio::test]
async fn missing_block_file_is_quarantined() {
    let dir = tempfile::tempdir().unwrap();
    let (ids, config) = two_blocks(dir.path()).await;
    fs::remove_file(
        dir.path()
            .join("blocks")
            .join(&ids[1])
            .join("stacks.parquet"),
    )
    .unwrap();
    let engine = Engine::open(config).await.unwrap();
    let report = engine.open_report();
    assert_eq!(report.quarantined_blocks.len(), 1);
    assert!(report.quarantined_blocks[0].1.contains("stacks.parquet"));
    assert_eq!(values(&engine).await, vec![10, 30]);
    engine.close().await.unwrap();
}

#[tokio::test]
async fn corrupt_parquet_of_the_same_size_gives_a_clear_scan_error() {
    let dir = tempfile::tempdir().unwrap();
    let (ids, config) = two_blocks(dir.path()).await;
    let file = block_file(dir.path(), &ids[0], "samples.parquet");
    let mut bytes = fs::read(&file).unwrap();
    let n = bytes.len();
    for b in &mut bytes[4..n - 8] {
        *b = 0xff; // wreck pages and footer, keep the magic and the size
    }
    fs::write(&file, &bytes).unwrap();
    let engine = Engine::open(config).await.unwrap();
    let out = engine
        .scan(strata_engine::ScanRequest {
            profile_type: profile_types()[0].clone(),
            matchers: vec![],
            range: TimeRange::ALL,
        })
        .await
        .unwrap();
    let err = out.collect().await.unwrap_err();
    assert!(matches!(err, Error::CorruptBlock { .. }), "{err}");
    assert!(
        err.to_string().contains(&ids[0]) && err.to_string().contains("samples.parquet"),
        "{err}"
    );
    // Label APIs still answer from the index.
    assert_eq!(
        engine
            .label_values("job", None, &[], TimeRange::ALL)
            .await
            .unwrap(),
        vec!["a"]
    );
    engine.close().await.unwrap();
}

#[tokio::test]
async fn refused_batches_leave_the_store_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(dir.path());
    config.limits.max_labels_per_series = 2;
    config.limits.max_label_value_bytes = 8;
    config.head.max_series = 3;
    let engine = Engine::open(config).await.unwrap();
    engine.append(&batch(&one_row(1, 1))).await.unwrap();
    let too_many_labels = vec![Row {
        pt: 0,
        labels: vec![
            ("a".into(), "1".into()),
            ("b".into(), "2".into()),
            ("c".into(), "3".into()),
        ],
        ts: 2,
        stack: 0,
        value: 2,
    }];
    let err = engine.append(&batch(&too_many_labels)).await.unwrap_err();
    assert!(
        err.to_string()
            .contains("limits.max_labels_per_series is 3, the maximum is 2"),
        "{err}"
    );
    let long_value = vec![Row {
        pt: 0,
        labels: vec![("job".into(), "x".repeat(9))],
        ts: 2,
        stack: 0,
        value: 2,
    }];
    let err = engine.append(&batch(&long_value)).await.unwrap_err();
    assert!(
        err.to_string().contains("limits.max_label_value_bytes"),
        "{err}"
    );
    let series: Vec<Row> = (0..3)
        .map(|i| Row {
            pt: 0,
            labels: vec![("job".into(), format!("s{i}"))],
            ts: 3,
            stack: 0,
            value: 3,
        })
        .collect();
    let err = engine.append(&batch(&series)).await.unwrap_err();
    assert!(err.to_string().contains("head.max_series"), "{err}");
    assert_eq!(engine.stats().head.samples, 1);
    assert_eq!(values(&engine).await, vec![1]);
    // The data directory is locked while open.
    let second = Engine::open(test_config(dir.path())).await;
    assert!(matches!(second, Err(Error::Locked { .. })));
    engine.close().await.unwrap();
}

/// A compaction whose upload failed after its meta.json landed, then retried, leaves two
/// committed blocks over the same sources: open keeps one, so no sample is counted twice.
#[tokio::test]
async fn a_compaction_committed_twice_is_kept_once() {
    let dir = tempfile::tempdir().unwrap();
    let (_, config) = two_blocks(dir.path()).await;
    let engine = Engine::open(config.clone()).await.unwrap();
    let merged = engine.compact().await.unwrap().expect("two blocks merge");
    engine.close().await.unwrap();
    drop(engine);
    // A second committed copy of the compaction output under a later id.
    let copy_id = "7ZZZZZZZZZZZZZZZZZZZZZZZZZ".to_string(); // the largest ULID
    assert!(copy_id > merged.id);
    let (from, to) = (
        dir.path().join("blocks").join(&merged.id),
        dir.path().join("blocks").join(&copy_id),
    );
    fs::create_dir_all(&to).unwrap();
    for entry in fs::read_dir(&from).unwrap() {
        let entry = entry.unwrap();
        fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
    let meta = fs::read_to_string(to.join("meta.json"))
        .unwrap()
        .replace(&merged.id, &copy_id);
    fs::write(to.join("meta.json"), meta).unwrap();

    let engine = Engine::open(config).await.unwrap();
    assert_eq!(
        engine.open_report().removed_superseded,
        vec![copy_id.clone()]
    );
    assert_eq!(engine.blocks().len(), 1);
    assert_eq!(values(&engine).await, vec![10, 20, 30]);
    engine.close().await.unwrap();
}
