//! Every configured limit refuses with a clear error naming it, stores nothing of the refused
//! request, and is counted on `/metrics` (`strata_limit_refusals_total{limit=...}`).

mod common;

use std::io::Write;
use std::net::SocketAddr;

use strata_ingest::PprofBuilder;
use strata_proto::parca::profile_store_service_client::ProfileStoreServiceClient;
use strata_proto::parca::{Label, LabelSet, RawProfileSeries, RawSample, WriteRawRequest};
use strata_server::{App, AppSettings, QueryLimits, TenantStore, Tenants};

const CPU: &str = "process_cpu:samples:count:cpu:nanoseconds:delta";

/// A CPU profile with one sample per stack `main;f<i>` for `i < stacks`.
fn cpu_profile(stacks: usize) -> Vec<u8> {
    let mut b = PprofBuilder::new(
        &[("samples", "count"), ("cpu", "nanoseconds")],
        ("cpu", "nanoseconds"),
        10_000_000,
    );
    b.time(1_700_000_000_000_000_000, 0);
    for i in 0..stacks {
        let leaf = format!("f{i}");
        b.sample(&[&leaf, "main"], &[1, 10_000_000], &[]);
    }
    b.encode()
}

/// WriteRaw of `raw_profile` under `labels` (plus `__name__`); the error, if refused.
async fn write_raw(
    addr: SocketAddr,
    labels: &[(&str, &str)],
    raw_profile: Vec<u8>,
) -> Option<tonic::Status> {
    let mut all = vec![Label {
        name: "__name__".into(),
        value: "process_cpu".into(),
    }];
    all.extend(labels.iter().map(|(n, v)| Label {
        name: (*n).into(),
        value: (*v).into(),
    }));
    ProfileStoreServiceClient::connect(format!("http://{addr}"))
        .await
        .unwrap()
        .write_raw(WriteRawRequest {
            series: vec![RawProfileSeries {
                labels: Some(LabelSet { labels: all }),
                samples: vec![RawSample { raw_profile }],
            }],
            ..Default::default()
        })
        .await
        .err()
}

/// Asserts `refused` is `code` with a message naming `limit`.
fn assert_refused(refused: Option<tonic::Status>, code: tonic::Code, limit: &str) {
    let status = refused.unwrap_or_else(|| panic!("{limit}: accepted"));
    assert_eq!(status.code(), code, "{limit}: {status:?}");
    assert!(status.message().contains(limit), "{limit}: {status:?}");
}

async fn http(
    addr: SocketAddr,
    method: reqwest::Method,
    path: &str,
    body: Vec<u8>,
) -> (u16, String) {
    let r = reqwest::Client::new()
        .request(method, format!("http://{addr}{path}"))
        .body(body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

fn query_path(selector: &str, start: i64, end: i64) -> String {
    let q: String = url::form_urlencoded::byte_serialize(selector.as_bytes()).collect();
    format!("/api/v1/query?query={q}&start={start}&end={end}&report=top")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_limit_refuses_clearly_and_is_counted() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = strata_engine::EngineConfig::new(dir.path());
    config.background = false;
    config.limits.max_batch_samples = 10;
    config.limits.max_labels_per_series = 6;
    config.limits.max_label_name_bytes = 16;
    config.limits.max_label_value_bytes = 32;
    config.head.max_series = 3;
    let engine = strata_engine::Engine::open(config).await.unwrap();
    let store = TenantStore::new(
        "anonymous",
        engine.clone(),
        strata_server::Symbolization::disabled(Default::default()),
    );
    let settings = AppSettings {
        ingest: strata_ingest::DecodeLimits {
            max_body_bytes: 4096,
            max_decompressed_bytes: 8192,
        },
        query: QueryLimits {
            max_range: std::time::Duration::from_secs(3600),
            max_result_nodes: 2,
        },
        ..Default::default()
    };
    let app = App::with_tenants(Tenants::single(store), settings);
    let (addr, _server) = common::spawn_server(app.clone(), std::future::pending()).await;
    use tonic::Code::{OutOfRange, ResourceExhausted};

    // Samples per push.
    let refused = write_raw(addr, &[("job", "s1")], cpu_profile(11)).await;
    assert_refused(refused, ResourceExhausted, "limits.max_batch_samples");

    // Labels per series, label name and value length.
    let many: Vec<(String, String)> = (0..7).map(|i| (format!("l{i}"), "v".into())).collect();
    let many: Vec<(&str, &str)> = many.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
    let refused = write_raw(addr, &many, cpu_profile(1)).await;
    assert_refused(refused, ResourceExhausted, "limits.max_labels_per_series");
    let long_name = "n".repeat(17);
    let refused = write_raw(addr, &[(&long_name, "v")], cpu_profile(1)).await;
    assert_refused(refused, ResourceExhausted, "limits.max_label_name_bytes");
    let long_value = "v".repeat(33);
    let refused = write_raw(addr, &[("job", &long_value)], cpu_profile(1)).await;
    assert_refused(refused, ResourceExhausted, "limits.max_label_value_bytes");

    // Series per tenant: three series fit, a fourth is refused.
    for job in ["s1", "s2", "s3"] {
        assert!(
            write_raw(addr, &[("job", job)], cpu_profile(1))
                .await
                .is_none()
        );
    }
    let refused = write_raw(addr, &[("job", "s4")], cpu_profile(1)).await;
    assert_refused(refused, ResourceExhausted, "head.max_series");

    // Body size: over gRPC (tonic refuses the message) and over HTTP.
    let big: Vec<u8> = (0..5000u32).map(|i| (i * 7919 % 251) as u8).collect();
    let refused = write_raw(addr, &[("job", "s1")], big.clone())
        .await
        .unwrap();
    assert!(
        [OutOfRange, ResourceExhausted].contains(&refused.code()),
        "{refused:?}"
    );
    let (status, body) = http(
        addr,
        reqwest::Method::POST,
        "/ingest?name=app&format=pprof",
        big,
    )
    .await;
    assert_eq!(status, 413, "{body}");
    assert!(body.contains("ingest.max_body_bytes"), "{body}");

    // Decompressed size: 100 KB of zeros gzip to a few hundred bytes.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(&vec![0u8; 100_000]).unwrap();
    let bomb = gz.finish().unwrap();
    assert!(bomb.len() < 4096);
    let (status, body) = http(
        addr,
        reqwest::Method::POST,
        "/ingest?name=app&format=pprof",
        bomb.clone(),
    )
    .await;
    assert_eq!(status, 413, "{body}");
    assert!(body.contains("ingest.max_decompressed_bytes"), "{body}");
    let refused = write_raw(addr, &[("job", "s1")], bomb).await;
    assert_refused(refused, ResourceExhausted, "ingest.max_decompressed_bytes");

    // Query range: 1 h fits, 2 h does not.
    let t = 1_700_000_000;
    let selector = format!("{CPU}{{job=\"s1\"}}");
    let (status, body) = http(
        addr,
        reqwest::Method::GET,
        &query_path(&selector, t - 1800, t + 1800),
        vec![],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = http(
        addr,
        reqwest::Method::GET,
        &query_path(&selector, t - 3600, t + 3600),
        vec![],
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("query.max_range"), "{body}");

    // Result nodes: two stacks fit, three do not.
    assert!(
        write_raw(addr, &[("job", "s2")], cpu_profile(2))
            .await
            .is_none()
    );
    assert!(
        write_raw(addr, &[("job", "s3")], cpu_profile(3))
            .await
            .is_none()
    );
    let two = query_path(&format!("{CPU}{{job=\"s2\"}}"), t - 1800, t + 1800);
    assert_eq!(http(addr, reqwest::Method::GET, &two, vec![]).await.0, 200);
    let three = query_path(&format!("{CPU}{{job=\"s3\"}}"), t - 1800, t + 1800);
    let (status, body) = http(addr, reqwest::Method::GET, &three, vec![]).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("query.max_result_nodes"), "{body}");

    // Nothing refused was stored: s1 holds its one accepted sample.
    let stacks = common::stored_stacks(&engine, CPU).await;
    let s1: i64 = stacks
        .iter()
        .filter(|s| s.labels.contains(&("job".into(), "s1".into())))
        .map(|s| s.value)
        .sum();
    assert_eq!(s1, 1);
    let jobs: std::collections::BTreeSet<_> = stacks.iter().map(|s| s.labels.clone()).collect();
    assert_eq!(jobs.len(), 3);

    // Every refusal counted under its limit.
    let (status, metrics) = http(addr, reqwest::Method::GET, "/metrics", vec![]).await;
    assert_eq!(status, 200);
    for (limit, n) in [
        ("head.max_series", 1),
        ("limits.max_batch_samples", 1),
        ("limits.max_labels_per_series", 1),
        ("limits.max_label_name_bytes", 1),
        ("limits.max_label_value_bytes", 1),
        ("ingest.max_body_bytes", 2),
        ("ingest.max_decompressed_bytes", 2),
        ("query.max_range", 1),
        ("query.max_result_nodes", 1),
        ("tenants.max_tenants", 0),
    ] {
        let line = format!("strata_limit_refusals_total{{limit=\"{limit}\"}} {n}\n");
        assert!(metrics.contains(&line), "{line}{metrics}");
    }
}
