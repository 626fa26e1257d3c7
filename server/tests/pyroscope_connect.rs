//! Pyroscope's Push over the Connect protocol (what the SDKs send): `application/proto`,
//! gzipped, on the same path as the gRPC service; errors are Connect JSON errors.

mod common;

use std::io::Write;

use common::{get, post_with};
use prost::Message;
use strata_engine::{LabelMatcher, TimeRange};
use strata_ingest::PprofBuilder;
use strata_proto::pyroscope::{push::v1 as push, types::v1 as types};

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

fn push_request(service: &str) -> Vec<u8> {
    let mut b = PprofBuilder::new(
        &[("cpu", "nanoseconds")],
        ("cpu", "nanoseconds"),
        10_000_000,
    );
    b.time(1_700_000_000_000_000_000, 0)
        .sample(&["main"], &[20_000_000], &[]);
    let profile = b.build();
    push::PushRequest {
        series: vec![push::RawProfileSeries {
            labels: vec![
                types::LabelPair {
                    name: "__name__".into(),
                    value: "process_cpu".into(),
                },
                types::LabelPair {
                    name: "service_name".into(),
                    value: service.into(),
                },
            ],
            samples: vec![push::RawSample {
                raw_profile: gzip(&profile.encode_to_vec()),
                id: "1".into(),
            }],
            annotations: vec![],
        }],
    }
    .encode_to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_push_gzipped_proto() {
    let dir = tempfile::tempdir().unwrap();
    let engine = common::open_engine(dir.path()).await;
    let app = strata_server::App::new(engine.clone());
    let (addr, server) = common::spawn_server(app, std::future::pending()).await;
    let path = "/push.v1.PusherService/Push";
    let proto = [
        ("Content-Type", "application/proto"),
        ("Connect-Protocol-Version", "1"),
    ];
    let gzipped = [
        ("Content-Type", "application/proto"),
        ("Content-Encoding", "gzip"),
    ];

    let (status, body) = post_with(addr, path, &gzipped, &gzip(&push_request("cart"))).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = post_with(addr, path, &proto, &push_request("shop")).await;
    assert_eq!(status, 200, "{body}");
    let services = engine
        .label_values("service_name", None, &[], TimeRange::ALL)
        .await
        .unwrap();
    assert_eq!(services, vec!["cart", "shop"]);
    let pt = "process_cpu:cpu:nanoseconds:cpu:nanoseconds:delta"
        .parse()
        .unwrap();
    let names = engine
        .label_names(
            Some(&pt),
            &[LabelMatcher::equal("service_name", "cart")],
            TimeRange::ALL,
        )
        .await
        .unwrap();
    assert_eq!(names, vec!["service_name"]);

    // The JSON codec: the protobuf JSON mapping, bytes in base64.
    let raw = push::PushRequest::decode(push_request("json").as_slice()).unwrap();
    let profile = &raw.series[0].samples[0].raw_profile;
    use base64::Engine as _;
    let json = serde_json::json!({
        "series": [{
            "labels": [{"name": "__name__", "value": "process_cpu"}, {"name": "service_name", "value": "json"}],
            "samples": [{"rawProfile": base64::engine::general_purpose::STANDARD.encode(profile), "ID": "j1"}]
        }]
    })
    .to_string();
    let json_headers = [("Content-Type", "application/json")];
    let (status, body) = post_with(addr, path, &json_headers, json.as_bytes()).await;
    assert_eq!((status, body.as_str()), (200, "{}"));
    let services = engine
        .label_values("service_name", None, &[], TimeRange::ALL)
        .await
        .unwrap();
    assert_eq!(services, vec!["cart", "json", "shop"]);
    let (status, body) = post_with(
        addr,
        path,
        &json_headers,
        br#"{"series":[{"samples":[{"rawProfile":"%%%"}]}]}"#,
    )
    .await;
    assert_eq!(status, 400);
    assert!(body.contains("base64"), "{body}");

    // Errors: Connect JSON with a code and a message; nothing stored.
    let before = engine.stats().head.samples;
    let (status, body) = post_with(addr, path, &gzipped, b"not gzip at all").await;
    assert_eq!(status, 400);
    assert!(
        body.contains("\"code\":\"invalid_argument\"") && body.contains("gzip"),
        "{body}"
    );
    let (status, body) = post_with(addr, path, &proto, &push_request("x")[..20]).await;
    assert_eq!(status, 400);
    assert!(body.contains("bad push.v1.PushRequest protobuf"), "{body}");
    let (status, body) = post_with(addr, path, &[("Content-Type", "text/plain")], b"hi").await;
    assert_eq!(status, 400);
    assert!(body.contains("application/proto"), "{body}");
    let bomb = gzip(&vec![0u8; 80 << 20]);
    let (status, body) = post_with(addr, path, &gzipped, &bomb).await;
    assert_eq!(status, 429, "{body}");
    assert!(
        body.contains("resource_exhausted") && body.contains("decompresses"),
        "{body}"
    );
    assert_eq!(engine.stats().head.samples, before);

    // The server reports on itself.
    let (status, metrics) = get(addr, "/metrics").await;
    assert_eq!(status, 200);
    assert!(
        metrics.contains(
            r#"strata_ingest_requests_total{protocol="pyroscope_connect",outcome="accepted"} 3"#
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains(
            r#"strata_ingest_requests_total{protocol="pyroscope_connect",outcome="rejected"} 5"#
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains(&format!("strata_head_samples {before}")),
        "{metrics}"
    );

    server.abort();
    engine.close().await.unwrap();
}
