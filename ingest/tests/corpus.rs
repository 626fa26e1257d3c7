//! Robustness: every pprof file from other profilers in `../shared/testdata/pprof-corpus`
//! ingests into a real engine, or is refused with a clear error (the truncated ones). The
//! folder is `$STRATA_PPROF_CORPUS` or `../shared/testdata/pprof-corpus` beside the checkout;
//! when it is absent the test fails, unless `STRATA_SKIP_CORPUS=1` (`scripts/test` sets it,
//! saying so, where the corpus is not on the machine).

use strata_engine::{Engine, EngineConfig, ScanRequest, TimeRange};
use strata_ingest::{DecodeLimits, Error, ProfileSource, decode_pprof, normalize};

#[tokio::test]
async fn every_corpus_file_ingests_or_is_refused_clearly() {
    let corpus = std::env::var_os("STRATA_PPROF_CORPUS")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../shared/testdata/pprof-corpus")
        });
    let entries = match std::fs::read_dir(&corpus) {
        Ok(entries) => entries,
        Err(e) => {
            let skip = std::env::var("STRATA_SKIP_CORPUS").is_ok_and(|v| v == "1");
            assert!(
                skip,
                "the pprof corpus {} cannot be read ({e}): set STRATA_PPROF_CORPUS to it, or \
                 STRATA_SKIP_CORPUS=1 to skip this test",
                corpus.display()
            );
            eprintln!(
                "skipped (STRATA_SKIP_CORPUS=1): {} is absent",
                corpus.display()
            );
            return;
        }
    };
    let dir = tempfile::tempdir().unwrap();
    let mut config = EngineConfig::new(dir.path());
    config.background = false;
    let engine = Engine::open(config).await.unwrap();
    let mut ingested = 0;
    let mut files: Vec<_> = entries
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e != "md"))
        .collect();
    files.sort();
    for path in files {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let bytes = std::fs::read(&path).unwrap();
        let source = ProfileSource::from_labels(
            [
                ("__name__".to_string(), "corpus".to_string()),
                ("file".to_string(), name.clone()),
            ],
            1_700_000_000_000_000_000,
        )
        .unwrap();
        let result =
            decode_pprof(&bytes, &DecodeLimits::default()).and_then(|p| normalize(&p, &source));
        match result {
            Ok(batch) => {
                engine.append(&batch).await.unwrap();
                let mut rows = 0;
                for pt in batch.profile_types() {
                    let out = engine
                        .scan(ScanRequest {
                            profile_type: pt.clone(),
                            matchers: vec![strata_engine::LabelMatcher::equal(
                                "file",
                                name.clone(),
                            )],
                            range: TimeRange::ALL,
                        })
                        .await
                        .unwrap();
                    rows += out
                        .collect()
                        .await
                        .unwrap()
                        .iter()
                        .map(|b| b.num_rows())
                        .sum::<usize>();
                }
                assert_eq!(
                    rows,
                    batch.num_samples(),
                    "{name}: every sample is read back"
                );
                eprintln!(
                    "{name}: {} samples, types {:?}",
                    batch.num_samples(),
                    batch
                        .profile_types()
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                );
                ingested += 1;
            }
            Err(e) => {
                assert!(name.contains("truncated"), "{name} was refused: {e}");
                assert!(
                    matches!(e, Error::Gzip(_) | Error::Protobuf(_)),
                    "{name}: {e}"
                );
                eprintln!("{name}: refused: {e}");
            }
        }
    }
    assert!(ingested >= 5, "only {ingested} corpus files ingested");
    engine.close().await.unwrap();
}
