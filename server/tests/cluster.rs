//! A cluster of `strata` processes on one real S3 API (`moto_server`): two ingesters, two
//! queriers and a compactor, each its own process on its own 127.0.0.x address. Real Go CPU
//! and heap profiles go to both ingesters; every query through either querier equals
//! `go tool pprof` over the same files — right after the pushes (heads), after the flushes,
//! while the compactor compacts and after, with both ingesters SIGKILLed (the bucket only:
//! one querier fails naming the ingester, the other, set to `partial_answers`, answers and says
//! it is partial) and after they restart (WAL replay adds nothing twice). And an ingester
//! SIGKILLed under load loses no acknowledged push.

mod common;
#[allow(dead_code)]
#[path = "../../engine/tests/common/s3.rs"]
mod s3;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use common::gotool::go_top;
use common::strata::{Strata, wait_for};
use object_store::ObjectStoreExt;

const CPU: &str = "process_cpu:cpu:nanoseconds:cpu:nanoseconds:delta";
const HEAP: &str = "memory:inuse_space:bytes:space:bytes";

/// What `s3::s3_config` builds on (unused here).
fn test_config(dir: &Path) -> strata_engine::EngineConfig {
    strata_engine::EngineConfig::new(dir)
}

/// A free port on `ip` (a 127.0.0.x address).
fn free_addr(ip: &str) -> String {
    let l = std::net::TcpListener::bind((ip, 0)).unwrap();
    format!("{ip}:{}", l.local_addr().unwrap().port())
}

/// The config every member reads, with the S3 API at `s3_port` and the given ingesters.
fn write_config(
    dir: &Path,
    name: &str,
    s3_port: u16,
    ingesters: &[String],
    extra: &str,
) -> PathBuf {
    write_config_scraping(dir, name, s3_port, ingesters, extra, "[]")
}

/// [`write_config`] with the given `scrape_configs` (YAML flow style).
fn write_config_scraping(
    dir: &Path,
    name: &str,
    s3_port: u16,
    ingesters: &[String],
    extra: &str,
    scrape_configs: &str,
) -> PathBuf {
    let ingesters: Vec<String> = ingesters
        .iter()
        .map(|a| format!("\"http://{a}\""))
        .collect();
    let text = format!(
        r#"engine:
  storage:
    url: s3://{bucket}/{prefix}
    options:
      aws_endpoint: "http://127.0.0.1:{s3_port}"
      aws_allow_http: "true"
      aws_access_key_id: test
      aws_secret_access_key: test
      aws_region: us-east-1
  head: {{max_age: 10m, check_interval: 200ms}}
  shared: {{flushed_head_retention: 4s, catalog_refresh: 1s, deletion_delay: 6s}}
  compaction: {{interval: 1s}}
  retention: {{interval: 1s}}
scrape_configs: {scrape_configs}
cluster:
  ingesters: [{ingesters}]
  request_timeout: 5s
{extra}"#,
        bucket = s3::BUCKET,
        prefix = s3::PREFIX,
        ingesters = ingesters.join(", "),
    );
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// The `cluster.queriers` line naming `addrs`.
fn queriers_yaml(addrs: &[String]) -> String {
    let urls: Vec<String> = addrs.iter().map(|a| format!("\"http://{a}\"")).collect();
    format!("  queriers: [{}]\n", urls.join(", "))
}

/// The merged total of `selector` over the last hour (and the next), through `querier`.
async fn merged_total(querier: SocketAddr, selector: &str) -> i64 {
    let r = reqwest::Client::new()
        .get(format!("http://{querier}/api/v1/query"))
        .query(&[
            ("query", selector),
            ("start", "now-1h"),
            ("end", "now+1h"),
            ("report", "top"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let top: serde_json::Value = serde_json::from_slice(&r.bytes().await.unwrap()).unwrap();
    top["meta"]["total"]
        .as_i64()
        .unwrap_or_else(|| panic!("{top}"))
}

/// The bucket's catalog (`catalog/manifest.json`) as JSON, or `null` before the first commit.
async fn manifest(s3_port: u16) -> serde_json::Value {
    let store = s3::direct_client(s3_port);
    let path = object_store::path::Path::from(format!("{}/catalog/manifest.json", s3::PREFIX));
    match store.get(&path).await {
        Ok(r) => serde_json::from_slice(&r.bytes().await.unwrap()).unwrap(),
        Err(_) => serde_json::Value::Null,
    }
}

fn block_levels(m: &serde_json::Value) -> Vec<u64> {
    m["blocks"]
        .as_object()
        .map(|b| b.values().map(|v| v["level"].as_u64().unwrap()).collect())
        .unwrap_or_default()
}

/// A merged pprof export of `pt` from `querier`: (status, partial header, body).
async fn export(querier: SocketAddr, pt: &str) -> (u16, Option<String>, Vec<u8>) {
    let r = reqwest::Client::new()
        .get(format!("http://{querier}/api/v1/query"))
        .query(&[
            ("query", format!("{pt}{{job=\"goapp\"}}").as_str()),
            ("start", "now-1h"),
            ("end", "now+1h"),
            ("report", "pprof"),
        ])
        .send()
        .await
        .unwrap();
    let partial = r
        .headers()
        .get("strata-partial")
        .map(|v| v.to_str().unwrap().to_owned());
    (
        r.status().as_u16(),
        partial,
        r.bytes().await.unwrap().to_vec(),
    )
}

/// The reference: per profile type, `go tool pprof -top` over the pushed files.
struct Expected {
    dir: PathBuf,
    tops: Vec<(&'static str, common::gotool::Top)>,
}

impl Expected {
    /// Every querier's merge of every type equals `go tool pprof`'s (and is not partial).
    async fn check(&self, queriers: &[SocketAddr], stage: &str) {
        for q in queriers {
            self.check_one(*q, stage, false).await;
        }
    }

    async fn check_one(&self, querier: SocketAddr, stage: &str, partial: bool) {
        for (pt, expected) in &self.tops {
            let (status, marked, body) = export(querier, pt).await;
            assert_eq!(
                status,
                200,
                "{stage}: {pt} via {querier}: {}",
                String::from_utf8_lossy(&body)
            );
            assert_eq!(
                marked.is_some(),
                partial,
                "{stage}: {pt} via {querier}: partial mark {marked:?}"
            );
            let file = self.dir.join("ours.pb.gz");
            std::fs::write(&file, &body).unwrap();
            let got = go_top(&[], &[&file]);
            assert_eq!(
                &got, expected,
                "{stage}: {pt} via {querier} differs from go tool pprof"
            );
        }
    }
}

async fn flush(ingester: SocketAddr) {
    let r = reqwest::Client::new()
        .post(format!("http://{ingester}/ingester/flush"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_ingesters_two_queriers_and_a_compactor_answer_as_go_tool_pprof() {
    let Some(s3) = s3::start_s3() else { return };
    s3::create_bucket(s3.port, s3::BUCKET);
    let dir = tempfile::tempdir().unwrap();
    let go = common::GoApp::start(dir.path());

    let ingester_addrs = [free_addr("127.0.0.2"), free_addr("127.0.0.3")];
    // The queriers split merges between them (each also a worker of the other's).
    let querier_addrs = [free_addr("127.0.0.4"), free_addr("127.0.0.5")];
    let queriers_list = queriers_yaml(&querier_addrs);
    let config = write_config(
        dir.path(),
        "strata.yaml",
        s3.port,
        &ingester_addrs,
        &queriers_list,
    );
    let partial = write_config(
        dir.path(),
        "partial.yaml",
        s3.port,
        &ingester_addrs,
        &format!("{queriers_list}  partial_answers: true\n"),
    );
    let data = |name: &str| dir.path().join(name);
    let start_ingester = |i: usize| {
        let id = format!("ingester-{i}");
        Strata::start_target(
            &ingester_addrs[i],
            "ingester",
            &["--ingester-id", &id],
            &data(&id),
            &config,
        )
    };
    let mut ingesters = vec![start_ingester(0), start_ingester(1)];
    let q0 = Strata::start_target(
        &querier_addrs[0],
        "querier",
        &[],
        &data("querier-0"),
        &config,
    );
    let q1 = Strata::start_target(
        &querier_addrs[1],
        "querier",
        &[],
        &data("querier-1"),
        &partial,
    );
    let queriers = [q0.addr, q1.addr];

    // Two CPU and two heap profiles of a real Go program, one of each to each ingester.
    let mut files: Vec<(&'static str, PathBuf)> = Vec::new();
    for (i, (name, path)) in common::GO_CPU_AND_HEAP.into_iter().enumerate() {
        let bytes = common::fetch(&format!("http://{}{path}", go.addr)).await;
        let file = dir.path().join(format!("{name}-{i}.pb.gz"));
        std::fs::write(&file, &bytes).unwrap();
        common::write_raw(ingesters[i % 2].addr, name, "goapp", bytes).await;
        files.push((name, file));
    }
    let reference = |name: &str, index: &str| {
        let paths: Vec<&Path> = files
            .iter()
            .filter(|(n, _)| *n == name)
            .map(|(_, p)| p.as_path())
            .collect();
        go_top(&[&format!("-sample_index={index}")], &paths)
    };
    let expected = Expected {
        dir: dir.path().to_owned(),
        tops: vec![
            (CPU, reference("process_cpu", "cpu")),
            (HEAP, reference("memory", "inuse_space")),
        ],
    };
    assert!(expected.tops.iter().all(|(_, t)| !t.1.is_empty()));

    expected.check(&queriers, "heads only").await;

    // Flushes: the data moves from heads to blocks; the compactor is not running yet.
    for i in &ingesters {
        flush(i.addr).await;
    }
    assert_eq!(block_levels(&manifest(s3.port).await), vec![0, 0]);
    expected.check(&queriers, "flushed").await;

    // The compactor merges the four blocks while queries run.
    let compactor = Strata::start_target(
        &free_addr("127.0.0.6"),
        "compactor",
        &[],
        &data("compactor"),
        &config,
    );
    let mut rounds = 0;
    loop {
        let levels = block_levels(&manifest(s3.port).await);
        expected
            .check(&queriers, &format!("during compaction ({levels:?})"))
            .await;
        rounds += 1;
        if levels.len() == 1 && levels[0] >= 1 {
            break;
        }
        assert!(rounds < 200, "the compactor did not compact: {levels:?}");
    }
    expected.check(&queriers, "compacted").await;

    // Both ingesters SIGKILLed: one querier refuses, naming an ingester; the other answers
    // from the bucket and marks the answer partial.
    for i in &mut ingesters {
        i.child.kill().unwrap();
        i.child.wait().unwrap();
    }
    let (status, _, body) = export(q0.addr, CPU).await;
    let message = String::from_utf8_lossy(&body);
    assert_eq!(status, 503, "{message}");
    assert!(message.contains("did not answer"), "{message}");
    expected.check_one(q1.addr, "ingesters killed", true).await;

    // Restarted, they replay their WALs: every block already holds their data, so nothing
    // comes back twice.
    ingesters = vec![start_ingester(0), start_ingester(1)];
    expected.check(&queriers, "ingesters restarted").await;
    // Old block files go after the deletion delay; answers stay the same.
    wait_for("the sources' files to be deleted", async || {
        manifest(s3.port).await["tombstones"]
            .as_object()
            .is_some_and(|t| t.is_empty())
    })
    .await;
    expected.check(&queriers, "sources deleted").await;
    drop((compactor, q0, q1, ingesters, go));
}

/// `POST /ingest`-free push of one tiny CPU profile with label `job=<job>`; whether it was
/// acknowledged.
async fn push_one(ingester: SocketAddr, job: &str) -> bool {
    let mut b = strata_ingest::PprofBuilder::new(
        &[("samples", "count"), ("cpu", "nanoseconds")],
        ("cpu", "nanoseconds"),
        10_000_000,
    );
    b.time(strata_engine::now_ns(), 10_000_000_000).sample(
        &["work", "main"],
        &[1, 10_000_000],
        &[],
    );
    use strata_proto::parca::profile_store_service_client::ProfileStoreServiceClient;
    use strata_proto::parca::{Label, LabelSet, RawProfileSeries, RawSample, WriteRawRequest};
    let Ok(mut client) = ProfileStoreServiceClient::connect(format!("http://{ingester}")).await
    else {
        return false;
    };
    let label = |name: &str, value: &str| Label {
        name: name.into(),
        value: value.into(),
    };
    client
        .write_raw(WriteRawRequest {
            series: vec![RawProfileSeries {
                labels: Some(LabelSet {
                    labels: vec![label("__name__", "process_cpu"), label("job", job)],
                }),
                samples: vec![RawSample {
                    raw_profile: b.encode(),
                }],
            }],
            ..Default::default()
        })
        .await
        .is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ingester_killed_under_load_loses_no_acknowledged_push() {
    let Some(s3) = s3::start_s3() else { return };
    s3::create_bucket(s3.port, s3::BUCKET);
    let dir = tempfile::tempdir().unwrap();
    let ingester_addr = free_addr("127.0.0.2");
    let config = write_config(
        dir.path(),
        "strata.yaml",
        s3.port,
        std::slice::from_ref(&ingester_addr),
        "",
    );
    let ingester_dir = dir.path().join("ingester");
    let ingester = Strata::start_target(&ingester_addr, "ingester", &[], &ingester_dir, &config);
    let querier = Strata::start_target(
        &free_addr("127.0.0.3"),
        "querier",
        &[],
        &dir.path().join("q"),
        &config,
    );
    let addr = ingester.addr;

    // Four pushers; the ingester is flushed once in the middle, then killed.
    let acked = Arc::new(parking_lot::Mutex::new(Vec::new()));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut pushers = Vec::new();
    for p in 0..4 {
        let (acked, stop) = (acked.clone(), stop.clone());
        pushers.push(tokio::spawn(async move {
            let mut n = 0;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let job = format!("load-{p}-{n}");
                if push_one(addr, &job).await {
                    acked.lock().push(job);
                }
                n += 1;
            }
        }));
    }
    wait_for("a few acknowledged pushes", async || {
        acked.lock().len() >= 40
    })
    .await;
    flush(addr).await;
    wait_for("more acknowledged pushes", async || {
        acked.lock().len() >= 120
    })
    .await;
    let mut ingester = ingester;
    ingester.child.kill().unwrap();
    ingester.child.wait().unwrap();
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    for p in pushers {
        p.await.unwrap();
    }
    let acked: Vec<String> = acked.lock().clone();
    drop(ingester);
    let _ingester = Strata::start_target(&ingester_addr, "ingester", &[], &ingester_dir, &config);

    // Through the querier: every acknowledged job is there, each once.
    let r = reqwest::Client::new()
        .get(format!("http://{}/api/v1/labels/job/values", querier.addr))
        .query(&[("start", "now-1h"), ("end", "now+1h")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let found: std::collections::BTreeSet<String> =
        serde_json::from_slice(&r.bytes().await.unwrap()).unwrap();
    let missing: Vec<&String> = acked.iter().filter(|j| !found.contains(*j)).collect();
    assert!(
        missing.is_empty(),
        "{} acknowledged pushes lost: {missing:?}",
        missing.len()
    );
    let total = merged_total(querier.addr, &format!("{CPU}{{job=~\"load-.*\"}}")).await;
    // Each stored push is 10 ms; unacknowledged ones may or may not have landed.
    assert!(
        total >= acked.len() as i64 * 10_000_000 && total <= found.len() as i64 * 10_000_000,
        "total {total} for {} acknowledged and {} found pushes",
        acked.len(),
        found.len()
    );
}

/// The scrape targets an ingester runs (`/api/v1/targets`), by instance.
async fn scraped_instances(ingester: SocketAddr) -> std::collections::BTreeSet<String> {
    let r = reqwest::get(format!("http://{ingester}/api/v1/targets"))
        .await
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&r.bytes().await.unwrap()).unwrap();
    v["data"]["activeTargets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["labels"]["instance"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingesters_share_the_scrape_targets_and_take_over_a_stopped_ones() {
    let Some(s3) = s3::start_s3() else { return };
    s3::create_bucket(s3.port, s3::BUCKET);
    let dir = tempfile::tempdir().unwrap();
    let addrs = [free_addr("127.0.0.2"), free_addr("127.0.0.3")];
    // Twenty targets nobody answers: their health is listed all the same.
    let instances: Vec<String> = (0..20).map(|i| format!("127.0.0.9:{}", 1000 + i)).collect();
    let scrape = format!(
        "[{{job_name: fleet, scrape_interval: 1h, static_configs: [{{targets: [{}]}}]}}]",
        instances
            .iter()
            .map(|i| format!("\"{i}\""))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let config = write_config_scraping(
        dir.path(),
        "strata.yaml",
        s3.port,
        &addrs,
        "  heartbeat_interval: 300ms\n",
        &scrape,
    );
    let start = |i: usize| {
        let id = format!("ingester-{i}");
        Strata::start_target(
            &addrs[i],
            "ingester",
            &["--ingester-id", &id],
            &dir.path().join(&id),
            &config,
        )
    };
    let (a, b) = (start(0), start(1));
    let all: std::collections::BTreeSet<String> = instances.iter().cloned().collect();
    wait_for(
        "the targets to be split between the ingesters",
        async || {
            let (x, y) = (
                scraped_instances(a.addr).await,
                scraped_instances(b.addr).await,
            );
            !x.is_empty()
                && !y.is_empty()
                && x.is_disjoint(&y)
                && x.union(&y)
                    .cloned()
                    .collect::<std::collections::BTreeSet<_>>()
                    == all
        },
    )
    .await;
    drop(b);
    wait_for("the remaining ingester to take every target", async || {
        scraped_instances(a.addr).await == all
    })
    .await;
}

/// `strata_distributed_parts_read_total` of a querier.
async fn parts_read_for_others(querier: SocketAddr) -> u64 {
    let text = reqwest::get(format!("http://{querier}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("strata_distributed_parts_read_total "))
        .unwrap_or_else(|| panic!("no strata_distributed_parts_read_total in {text}"))
        .parse()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn merges_are_split_across_the_queriers_by_block() {
    let Some(s3) = s3::start_s3() else { return };
    s3::create_bucket(s3.port, s3::BUCKET);
    let dir = tempfile::tempdir().unwrap();
    let ingester_addr = free_addr("127.0.0.2");
    let querier_addrs = [free_addr("127.0.0.3"), free_addr("127.0.0.4")];
    let extra = queriers_yaml(&querier_addrs);
    let config = write_config(
        dir.path(),
        "strata.yaml",
        s3.port,
        std::slice::from_ref(&ingester_addr),
        &extra,
    );
    let ingester = Strata::start_target(
        &ingester_addr,
        "ingester",
        &[],
        &dir.path().join("i"),
        &config,
    );
    let queriers: Vec<Strata> = querier_addrs
        .iter()
        .enumerate()
        .map(|(i, a)| {
            Strata::start_target(
                a,
                "querier",
                &[],
                &dir.path().join(format!("q{i}")),
                &config,
            )
        })
        .collect();
    // Sixteen blocks (their random ids spread them over both queriers), plus the head.
    let mut pushed = 0;
    for round in 0..17 {
        for k in 0..3 {
            assert!(push_one(ingester.addr, &format!("job-{round}-{k}")).await);
            pushed += 1;
        }
        if round < 16 {
            flush(ingester.addr).await;
        }
    }
    for _ in 0..4 {
        for q in &queriers {
            assert_eq!(merged_total(q.addr, CPU).await, pushed * 10_000_000);
        }
    }
    // SQL's per-stack sums (rewritten onto the same leaf) are split the same way.
    for q in &queriers {
        let sql = format!(
            "SELECT stack_id, sum(value) AS v FROM samples WHERE profile_type = '{CPU}' GROUP BY stack_id"
        );
        let r = reqwest::Client::new()
            .post(format!("http://{}/api/v1/sql", q.addr))
            .body(sql)
            .send()
            .await
            .unwrap();
        let status = r.status();
        let body: serde_json::Value = serde_json::from_slice(&r.bytes().await.unwrap()).unwrap();
        assert_eq!(status, 200, "{body}");
        let total: i64 = body["rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|row| {
                row[1]
                    .as_i64()
                    .unwrap_or_else(|| row[1].as_str().unwrap().parse().unwrap())
            })
            .sum();
        assert_eq!(total, pushed * 10_000_000, "{body}");
    }
    // Each querier read parts of the other's merges.
    for q in &queriers {
        assert!(
            parts_read_for_others(q.addr).await > 0,
            "querier {} took no task",
            q.addr
        );
    }
}
