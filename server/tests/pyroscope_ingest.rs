//! Pyroscope's legacy `/ingest` over real HTTP: folded text and pprof bodies, read back through
//! the engine; bad input gets a 4xx that says why and stores nothing.

mod common;

use common::post;
use strata_engine::{Engine, LabelMatcher, ScanRequest, TimeRange};
use strata_ingest::PprofBuilder;

async fn values(engine: &Engine, pt: &str, service: &str) -> Vec<i64> {
    let out = engine
        .scan(ScanRequest {
            profile_type: pt.parse().unwrap(),
            matchers: vec![LabelMatcher::equal("service_name", service)],
            range: TimeRange::ALL,
        })
        .await
        .unwrap();
    use arrow::array::AsArray;
    let mut v: Vec<i64> = out
        .collect()
        .await
        .unwrap()
        .iter()
        .flat_map(|b| {
            b.column(5)
                .as_primitive::<arrow::datatypes::Int64Type>()
                .values()
                .to_vec()
        })
        .collect();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legacy_ingest_takes_folded_and_pprof() {
    let dir = tempfile::tempdir().unwrap();
    let engine = common::open_engine(dir.path()).await;
    let app = strata_server::App::with_limits(
        engine.clone(),
        strata_ingest::DecodeLimits {
            max_body_bytes: 1 << 20,
            ..Default::default()
        },
    );
    let (addr, server) = common::spawn_server(app, std::future::pending()).await;

    let (status, body) = post(
        addr,
        "/ingest?name=shop.cpu%7Benv%3Dprod%7D&from=1700000000&until=1700000010&format=folded&sampleRate=100&spyName=rbspy",
        b"main;checkout;pay 7\nmain;idle 2\n",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        values(
            &engine,
            "process_cpu:samples:count:cpu:nanoseconds:delta",
            "shop"
        )
        .await,
        vec![2, 7]
    );
    let labels = engine
        .label_names(
            None,
            &[LabelMatcher::equal("service_name", "shop")],
            TimeRange::ALL,
        )
        .await
        .unwrap();
    assert_eq!(labels, vec!["env", "pyroscope_spy", "service_name"]);

    let mut b = PprofBuilder::new(&[("alloc_space", "bytes")], ("space", "bytes"), 0);
    b.sample(&["main"], &[4096], &[]);
    let pprof = b.encode();
    let (status, body) = post(
        addr,
        "/ingest?name=shop.alloc_space&from=1700000000&format=pprof",
        &pprof,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        values(&engine, "memory:alloc_space:bytes:space:bytes", "shop").await,
        vec![4096]
    );

    // The multipart form Pyroscope's agents send: the pprof in the `profile` part.
    let boundary = "XyZ123";
    let mut form = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"profile\"; filename=\"profile.pprof\"\r\nContent-Type: application/octet-stream\r\n\r\n"
    )
    .into_bytes();
    form.extend_from_slice(&pprof);
    form.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let content_type = format!("multipart/form-data; boundary={boundary}");
    let (status, body) = common::post_with(
        addr,
        "/ingest?name=form.alloc_space&from=1700000000",
        &[("Content-Type", content_type.as_str())],
        &form,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        values(&engine, "memory:alloc_space:bytes:space:bytes", "form").await,
        vec![4096]
    );
    let (status, body) = common::post_with(
        addr,
        "/ingest?name=form.alloc_space",
        &[("Content-Type", content_type.as_str())],
        b"--XyZ123--\r\n",
    )
    .await;
    assert_eq!(status, 400);
    assert!(body.contains("no profile part"), "{body}");

    // Bad input: a 400 that says why; nothing stored.
    let before = engine.stats().head.samples;
    let (status, body) = post(addr, "/ingest?name=shop.cpu&format=folded", b"main;work\n").await;
    assert_eq!(status, 400);
    assert!(body.contains("folded line 1"), "{body}");
    let (status, body) = post(addr, "/ingest?format=folded", b"a 1\n").await;
    assert_eq!(status, 400);
    assert!(body.contains("name"), "{body}");
    let (status, body) = post(
        addr,
        "/ingest?name=shop.cpu&format=pprof",
        &pprof[..pprof.len() - 3],
    )
    .await;
    assert_eq!(status, 400);
    assert!(body.contains("bad protobuf"), "{body}");
    let (status, _) = post(
        addr,
        "/ingest?name=shop.cpu&format=folded",
        &vec![b'a'; 2 << 20],
    )
    .await;
    assert_eq!(status, 413, "over the body limit");
    assert_eq!(engine.stats().head.samples, before);

    server.abort();
    engine.close().await.unwrap();
}
