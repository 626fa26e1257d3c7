//! A shared store on one bucket (in memory here; `server/tests/cluster.rs` runs the processes
//! against a real S3 API): two ingesters, a reader asking their heads in process, a compactor.
//! Every scan equals the naive model at every stage — heads only, a flush the reader's
//! snapshot does or does not know yet, compaction, retained heads expired, an ingester
//! restarted (its WAL replay adds nothing twice) — and concurrent catalog commits neither lose
//! nor double a block (property test).

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{Row, batch, model_scan, profile_types, scan_all, test_config};
use object_store::memory::InMemory;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use proptest::prelude::*;
use strata_engine::{
    BlockMeta, Catalog, CatalogDelta, Engine, EngineConfig, Error, HeadScanRequest,
    HeadScanResponse, HeadSource, LabelMatcher, ProfileType, Result, StackId, SymbolTables,
    TimeRange,
};

/// The ingesters' heads, asked in process (the server asks them over HTTP).
struct InProcessHeads(parking_lot::RwLock<Vec<Engine>>);

impl std::fmt::Debug for InProcessHeads {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("InProcessHeads")
    }
}

impl InProcessHeads {
    fn engines(&self) -> Vec<Engine> {
        self.0.read().clone()
    }
}

#[async_trait::async_trait]
impl HeadSource for InProcessHeads {
    async fn scan(&self, request: &HeadScanRequest) -> Result<HeadScanResponse> {
        let engines = self.engines();
        let mut out = HeadScanResponse::default();
        for e in engines {
            let a = e.answer_head_scan(request).await?;
            out.series.extend(a.series);
            out.parts.extend(a.parts);
        }
        Ok(out)
    }
    async fn profile_types(&self, range: TimeRange) -> Result<Vec<ProfileType>> {
        let mut out = Vec::new();
        for e in self.engines() {
            out.extend(e.profile_types(range).await?);
        }
        Ok(out)
    }
    async fn label_names(
        &self,
        pt: Option<&ProfileType>,
        matchers: &[LabelMatcher],
        range: TimeRange,
    ) -> Result<Vec<String>> {
        let mut out = Vec::new();
        for e in self.engines() {
            out.extend(e.label_names(pt, matchers, range).await?);
        }
        Ok(out)
    }
    async fn label_values(
        &self,
        name: &str,
        pt: Option<&ProfileType>,
        matchers: &[LabelMatcher],
        range: TimeRange,
    ) -> Result<Vec<String>> {
        let mut out = Vec::new();
        for e in self.engines() {
            out.extend(e.label_values(name, pt, matchers, range).await?);
        }
        Ok(out)
    }
    async fn resolve_stacks(&self, ids: &[StackId]) -> Result<SymbolTables> {
        let mut out = SymbolTables::default();
        for e in self.engines() {
            out.merge(e.resolve_stacks(ids).await?);
        }
        Ok(out)
    }
}

fn shared_config(dir: &std::path::Path, ingester: &str) -> EngineConfig {
    let mut c = test_config(dir);
    c.shared.enabled = true;
    c.shared.ingester_id = Some(ingester.into());
    c.shared.flushed_head_retention = Duration::from_millis(400);
    c.shared.catalog_refresh = Duration::from_millis(200);
    c.shared.deletion_delay = Duration::from_millis(450);
    c.shared.orphan_grace = Duration::from_millis(400);
    c
}

fn rows(from: i64, n: i64, node: &str) -> Vec<Row> {
    (0..n)
        .map(|i| Row {
            pt: 0,
            labels: vec![("node".into(), node.into())],
            ts: 1_000 + from + i,
            stack: (i % 5) as u8,
            value: 1 + i,
        })
        .collect()
}

async fn check(reader: &Engine, model: &[Row], stage: &str) {
    let pt = &profile_types()[0];
    let got = scan_all(reader, pt, vec![], TimeRange::ALL).await;
    let want = model_scan(model, 0, &[], TimeRange::ALL);
    assert_eq!(got.len(), want.len(), "{stage}: rows");
    assert_eq!(got, want, "{stage}");
    // Stacks resolve whether they sit in heads or blocks.
    let ids: Vec<StackId> = got.iter().map(|r| StackId(r.2)).collect();
    let symbols = reader.resolve_stacks(&ids).await.unwrap();
    for id in &ids {
        assert!(
            symbols.stacks.contains_key(id),
            "{stage}: stack {id:?} resolves"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_ingesters_a_reader_and_a_compactor_see_every_row_once() {
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let dirs: Vec<_> = (0..4).map(|_| tempfile::tempdir().unwrap()).collect();
    let open_ingester = |i: usize| {
        let store = store.clone();
        let config = shared_config(dirs[i].path(), &format!("ingester-{i}"));
        async move { Engine::open_with_store(config, store).await.unwrap() }
    };
    let i0 = open_ingester(0).await;
    let i1 = open_ingester(1).await;
    let heads = Arc::new(InProcessHeads(parking_lot::RwLock::new(vec![
        i0.clone(),
        i1.clone(),
    ])));
    let reader = Engine::open_reader_with_store(
        shared_config(dirs[2].path(), "-"),
        store.clone(),
        Some(heads.clone()),
    )
    .await
    .unwrap();
    let mut compactor_config = shared_config(dirs[3].path(), "-");
    compactor_config.compaction.max_block_duration = Duration::from_secs(3600);
    let compactor = Engine::open_reader_with_store(compactor_config, store.clone(), None)
        .await
        .unwrap();
    assert!(matches!(
        compactor.append(&batch(&rows(0, 1, "x"))).await,
        Err(Error::ReadOnly { .. })
    ));

    let mut model = Vec::new();
    for (k, e) in [&i0, &i1, &i0, &i1].into_iter().enumerate() {
        let r = rows(k as i64 * 100, 20, &format!("n{}", k % 2));
        e.append(&batch(&r)).await.unwrap();
        model.extend(r);
    }
    check(&reader, &model, "heads only").await;

    // A flush the reader's snapshot does not list yet: the retained head answers.
    reader.refresh_catalog().await.unwrap();
    i0.flush().await.unwrap().unwrap();
    check(&reader, &model, "flushed, snapshot stale").await;
    reader.refresh_catalog().await.unwrap();
    check(&reader, &model, "flushed, snapshot fresh").await;

    let r = rows(1_000, 10, "n0");
    i0.append(&batch(&r)).await.unwrap();
    model.extend(r);
    i1.flush().await.unwrap().unwrap();
    i0.flush().await.unwrap().unwrap();
    assert_eq!(
        compactor.catalog_manifest().map(|m| m.blocks.len()),
        Some(0)
    );
    compactor.refresh_catalog().await.unwrap();
    assert_eq!(compactor.blocks().len(), 3);
    check(&reader, &model, "three blocks").await;

    // Compaction swaps sources for the output in one commit; the reader sees either.
    let out = compactor
        .compact()
        .await
        .unwrap()
        .expect("something to compact");
    assert_eq!(out.sources.len(), 3);
    check(&reader, &model, "compacted, snapshot stale").await;
    reader.refresh_catalog().await.unwrap();
    assert_eq!(reader.blocks().len(), 1);
    check(&reader, &model, "compacted").await;

    // Retained heads expire: only blocks remain.
    tokio::time::sleep(Duration::from_millis(500)).await;
    check(&reader, &model, "retained heads expired").await;

    // A restarted ingester replays nothing its committed blocks hold.
    let r = rows(2_000, 7, "n1");
    i1.append(&batch(&r)).await.unwrap();
    model.extend(r);
    i1.close().await.unwrap();
    heads.0.write().truncate(1);
    drop(i1);
    let i1 = open_ingester(1).await;
    assert_eq!(i1.open_report().replay.samples, 7);
    heads.0.write().push(i1.clone());
    check(&reader, &model, "ingester restarted").await;

    // The sources' files go after the deletion delay; an upload never committed after the
    // orphan grace.
    let orphan = object_store::path::Path::from("blocks/01ORPHAN/samples.parquet");
    store
        .put(&orphan, PutPayload::from_static(b"x"))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let gc = compactor.collect_garbage().await.unwrap();
    assert_eq!(gc.deleted.len(), 3, "{gc:?}");
    assert_eq!(gc.orphans, vec!["01ORPHAN".to_owned()]);
    assert!(store.head(&orphan).await.is_err());
    check(&reader, &model, "after garbage collection").await;
    i0.flush().await.unwrap();
    i1.flush().await.unwrap();
    reader.refresh_catalog().await.unwrap();
    check(&reader, &model, "all flushed").await;
}

#[tokio::test]
async fn a_shared_store_refuses_a_local_directory() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = EngineConfig::new(dir.path());
    c.shared.enabled = true;
    let e = Engine::open(c.clone()).await.err().expect("refused");
    assert!(
        e.to_string().contains("local directory cannot be shared"),
        "{e}"
    );
    c.storage.url = Some(format!("file://{}", dir.path().display()));
    let e = Engine::open(c).await.err().expect("refused");
    assert!(e.to_string().contains("file://"), "{e}");
}

fn meta(id: String, samples: u64, sources: Vec<String>) -> BlockMeta {
    BlockMeta {
        format_version: 1,
        id,
        min_time_ns: 0,
        max_time_ns: 1,
        num_samples: samples,
        num_series: 1,
        num_stacks: 1,
        level: u32::from(!sources.is_empty()),
        sources,
        wal_segment_upto: 0,
        created_at_ms: 0,
        files: Default::default(),
        ingester: None,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Writers adding blocks and compactors merging them, all at once on one store: every
    /// acknowledged add is committed (or merged into a committed block), no sample is in two
    /// committed blocks, and failed compactions change nothing.
    #[test]
    fn concurrent_commits_lose_and_double_nothing(
        writers in 2usize..5,
        adds in 2usize..8,
        compactors in 1usize..3,
        seed in any::<u64>(),
    ) {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(4).enable_all().build().unwrap();
        rt.block_on(async move {
            let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
            let mut tasks = Vec::new();
            for w in 0..writers {
                let store = store.clone();
                tasks.push(tokio::spawn(async move {
                    let catalog = Catalog::new(store);
                    let mut samples = 0;
                    for a in 0..adds {
                        let n = 1 + ((seed >> (a % 16)) & 7) + w as u64;
                        let delta = CatalogDelta {
                            add: vec![meta(format!("w{w}-{a}"), n, vec![])],
                            wal_covered: Some((format!("w{w}"), a as u64 + 1)),
                            ..Default::default()
                        };
                        catalog.commit(&delta).await.unwrap();
                        // A retried (ambiguous) commit changes nothing.
                        if (seed >> a) & 1 == 1 {
                            catalog.commit(&delta).await.unwrap();
                        }
                        samples += n;
                        tokio::task::yield_now().await;
                    }
                    samples
                }));
            }
            let mut merges = Vec::new();
            for c in 0..compactors {
                let store = store.clone();
                merges.push(tokio::spawn(async move {
                    let catalog = Catalog::new(store);
                    let mut won = 0;
                    for round in 0..6 {
                        let snap = catalog.read().await.unwrap();
                        let group: Vec<&BlockMeta> = snap.manifest.blocks.values().take(3).collect();
                        if group.len() < 2 {
                            tokio::task::yield_now().await;
                            continue;
                        }
                        let delta = CatalogDelta {
                            add: vec![meta(
                                format!("c{c}-{round}"),
                                group.iter().map(|b| b.num_samples).sum(),
                                group.iter().map(|b| b.id.clone()).collect(),
                            )],
                            remove: group.iter().map(|b| b.id.clone()).collect(),
                            now_ms: 1,
                            ..Default::default()
                        };
                        match catalog.commit(&delta).await {
                            Ok(_) => won += 1,
                            Err(Error::CatalogConflict { .. }) => {}
                            Err(e) => panic!("{e}"),
                        }
                    }
                    won
                }));
            }
            let mut pushed = 0;
            for t in tasks {
                pushed += t.await.unwrap();
            }
            for m in merges {
                m.await.unwrap();
            }
            let m = Catalog::new(store).read().await.unwrap().manifest;
            let stored: u64 = m.blocks.values().map(|b| b.num_samples).sum();
            assert_eq!(stored, pushed, "samples in committed blocks equal the samples added");
            for b in m.blocks.values() {
                for s in &b.sources {
                    assert!(!m.blocks.contains_key(s), "source {s} and its output {} both committed", b.id);
                    assert!(m.tombstones.contains_key(s));
                }
            }
            for w in 0..writers {
                assert_eq!(m.wal_covered.get(&format!("w{w}")), Some(&(adds as u64)));
            }
        });
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_follows_an_ingester_on_a_real_s3_api() {
    let Some(s3) = common::s3::start_s3() else {
        return;
    };
    common::s3::create_bucket(s3.port, common::s3::BUCKET);
    let dirs: Vec<_> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut c = common::s3::s3_config(dirs[0].path(), s3.port);
    c.shared.enabled = true;
    c.shared.ingester_id = Some("i0".into());
    let ingester = Engine::open(c).await.unwrap();
    let mut c = common::s3::s3_config(dirs[1].path(), s3.port);
    c.shared.catalog_refresh = Duration::from_millis(100);
    let reader = Engine::open_reader(c, None).await.unwrap();
    assert_eq!(reader.blocks().len(), 0);
    let r = rows(0, 10, "n0");
    ingester.append(&batch(&r)).await.unwrap();
    ingester.flush().await.unwrap().unwrap();
    tokio::time::sleep(Duration::from_millis(150)).await;
    check(&reader, &r, "from the bucket").await;
    assert_eq!(reader.blocks().len(), 1);
}
