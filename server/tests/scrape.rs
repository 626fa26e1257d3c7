//! The scraper against a real Go program serving `net/http/pprof` (built from
//! `tests/fixtures/goapp` with Debian's Go): every Go profile type arrives with `job` and
//! `instance`, the allocs delta too; target health shows in `/api/v1/targets` and `/metrics`;
//! a new configuration replaces the running one.

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use strata_server::scrape::{ScrapeConfigs, Scraper};

const GO_TYPES: [&str; 11] = [
    "process_cpu:samples:count:cpu:nanoseconds:delta",
    "process_cpu:cpu:nanoseconds:cpu:nanoseconds:delta",
    "memory:alloc_objects:count:space:bytes",
    "memory:alloc_space:bytes:space:bytes",
    "memory:inuse_objects:count:space:bytes",
    "memory:inuse_space:bytes:space:bytes",
    "goroutine:goroutine:count:goroutine:count",
    "mutex:contentions:count:contentions:count",
    "mutex:delay:nanoseconds:contentions:count",
    "block:contentions:count:contentions:count",
    "block:delay:nanoseconds:contentions:count",
];
const ALLOC_DELTA: &str = "memory:alloc_space:bytes:space:bytes:delta";

/// Distinct sample timestamps stored for `pt`.
async fn timestamps(engine: &strata_engine::Engine, pt: &str) -> BTreeSet<i64> {
    use arrow::array::AsArray;
    let out = engine
        .scan(strata_engine::ScanRequest {
            profile_type: pt.parse().unwrap(),
            matchers: vec![],
            range: strata_engine::TimeRange::ALL,
        })
        .await
        .unwrap();
    let mut ts = BTreeSet::new();
    for b in out.collect().await.unwrap() {
        ts.extend(
            b.column(1)
                .as_primitive::<arrow::datatypes::Int64Type>()
                .values()
                .iter()
                .copied(),
        );
    }
    ts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn go_program_is_scraped_for_every_profile_type() {
    let dir = tempfile::tempdir().unwrap();
    let go = common::GoApp::start(dir.path());
    let engine = common::open_engine(&dir.path().join("data")).await;
    let app = strata_server::App::new(engine.clone());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let (addr, server) = common::spawn_server(app.clone(), async {
        let _ = stopped.await;
    })
    .await;

    let config = format!(
        r#"
- job_name: goapp
  scrape_interval: 1s
  static_configs:
    - targets: ["{}"]
      labels: {{ env: test }}
- job_name: nowhere
  scrape_interval: 1s
  static_configs:
    - targets: ["127.0.0.1:1"]
  profiling_config:
    pprof_config:
      memory: {{ enabled: false }}
      goroutine: {{ enabled: false }}
      mutex: {{ enabled: false }}
      block: {{ enabled: false }}
"#,
        go.addr
    );
    let jobs: ScrapeConfigs = serde_yaml::from_str(&config).unwrap();
    let scraper = Scraper::new(app.clone());
    scraper.apply(&jobs).unwrap();

    // At least three scrapes of the allocs endpoint, and every type present.
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let mut missing = Vec::new();
        for pt in GO_TYPES.iter().chain([&ALLOC_DELTA]) {
            if timestamps(&engine, pt).await.is_empty() {
                missing.push(*pt);
            }
        }
        let scrapes = timestamps(&engine, GO_TYPES[3]).await.len();
        if missing.is_empty() && scrapes >= 3 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "after 90 s: {scrapes} allocs scrapes; missing {missing:?}; targets {:?}",
            app.targets.read()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    for pt in GO_TYPES.iter().chain([&ALLOC_DELTA]) {
        let rows = common::stored_stacks(&engine, pt).await;
        assert!(!rows.is_empty(), "{pt}");
        for row in &rows {
            let get = |k: &str| {
                row.labels
                    .iter()
                    .find(|(n, _)| n == k)
                    .map(|(_, v)| v.as_str())
            };
            assert_eq!(get("job"), Some("goapp"), "{pt}: {row:?}");
            assert_eq!(get("instance"), Some(go.addr.as_str()), "{pt}: {row:?}");
            assert_eq!(get("env"), Some("test"), "{pt}: {row:?}");
        }
        assert!(rows.iter().map(|r| r.value).sum::<i64>() > 0, "{pt}");
    }
    // The Go workload's own functions are in the stacks.
    let cpu = common::stored_stacks(&engine, GO_TYPES[1]).await;
    assert!(
        cpu.iter().any(|r| r.folded.contains("main.burnCPU")),
        "{cpu:?}"
    );
    let mutex = common::stored_stacks(&engine, GO_TYPES[8]).await;
    assert!(
        mutex.iter().any(|r| r.folded.contains("main.contend")),
        "{mutex:?}"
    );

    // Health: the Go endpoints are up, the unreachable one is down with the reason.
    let (status, body) = common::get(addr, "/api/v1/targets").await;
    assert_eq!(status, 200);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let active = v["data"]["activeTargets"].as_array().unwrap();
    assert_eq!(active.len(), 6, "{body}");
    for t in active {
        if t["scrapePool"] == "goapp" {
            assert_eq!(t["health"], "up", "{t}");
            assert_eq!(t["labels"]["instance"], go.addr.as_str());
            assert!(t["lastScrape"].as_str().unwrap().ends_with('Z'), "{t}");
        } else {
            assert_eq!(t["health"], "down", "{t}");
            assert!(
                t["lastError"].as_str().unwrap().contains("127.0.0.1:1"),
                "{t}"
            );
        }
    }
    let cpu_target = active
        .iter()
        .find(|t| t["scrapePool"] == "goapp" && t["profile"] == "process_cpu")
        .unwrap();
    assert!(
        cpu_target["scrapeUrl"]
            .as_str()
            .unwrap()
            .ends_with("/debug/pprof/profile?seconds=1"),
        "{cpu_target}"
    );
    let (_, metrics) = common::get(addr, "/metrics").await;
    let up = format!(
        "strata_scrape_target_up{{job=\"goapp\",instance=\"{}\",profile=\"memory\"}} 1",
        go.addr
    );
    assert!(metrics.contains(&up), "{metrics}");
    assert!(
        metrics.contains(
            "strata_scrape_target_up{job=\"nowhere\",instance=\"127.0.0.1:1\",profile=\"process_cpu\"} 0"
        ),
        "{metrics}"
    );

    // A new configuration replaces the old: one job left, the other's targets gone.
    let invalid: ScrapeConfigs =
        serde_yaml::from_str("- job_name: x\n  scrape_interval: 0s").unwrap();
    let e = scraper
        .apply(&invalid)
        .expect_err("scrape_interval 0s taken");
    assert!(e.to_string().contains("scrape_interval"), "{e}");
    assert_eq!(
        app.targets.read().len(),
        6,
        "an invalid config changed nothing"
    );
    scraper.apply(&jobs[1..]).unwrap();
    let keys: Vec<_> = app.targets.read().keys().map(|k| k.job.clone()).collect();
    assert_eq!(keys, ["nowhere"]);

    scraper.stop();
    let _ = stop.send(());
    server.await.unwrap().unwrap();
}
