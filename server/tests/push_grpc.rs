//! Push over real gRPC (h2c on a local port): Parca `WriteRaw` and Pyroscope `Push`, read back
//! through the engine; bad input gets a clear status and stores nothing.

mod common;

use prost::Message;
use strata_engine::{Engine, LabelMatcher, ScanRequest, TimeRange};
use strata_ingest::PprofBuilder;
use strata_proto::parca::profile_store_service_client::ProfileStoreServiceClient;
use strata_proto::parca::{Label, LabelSet, RawProfileSeries, RawSample, WriteRawRequest};
use strata_proto::pyroscope::push::v1::pusher_service_client::PusherServiceClient;
use strata_proto::pyroscope::{push::v1 as push, types::v1 as types};

fn cpu_profile(samples: i64) -> Vec<u8> {
    let mut b = PprofBuilder::new(
        &[("samples", "count"), ("cpu", "nanoseconds")],
        ("cpu", "nanoseconds"),
        10_000_000,
    );
    b.time(1_700_000_000_000_000_000, 0)
        .sample(&["main"], &[samples, samples * 10_000_000], &[]);
    b.encode()
}

async fn total(engine: &Engine, matcher: LabelMatcher) -> i64 {
    let out = engine
        .scan(ScanRequest {
            profile_type: "process_cpu:samples:count:cpu:nanoseconds:delta"
                .parse()
                .unwrap(),
            matchers: vec![matcher],
            range: TimeRange::ALL,
        })
        .await
        .unwrap();
    use arrow::array::AsArray;
    out.collect()
        .await
        .unwrap()
        .iter()
        .map(|b| {
            b.column(5)
                .as_primitive::<arrow::datatypes::Int64Type>()
                .values()
                .iter()
                .sum::<i64>()
        })
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parca_and_pyroscope_pushes_over_grpc() {
    let dir = tempfile::tempdir().unwrap();
    let engine = common::open_engine(dir.path()).await;
    let app = strata_server::App::new(engine.clone());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let (addr, server) = common::spawn_server(app, async {
        let _ = stopped.await;
    })
    .await;
    let url = format!("http://{addr}");

    let mut parca = ProfileStoreServiceClient::connect(url.clone())
        .await
        .unwrap();
    let labels = |pairs: &[(&str, &str)]| {
        Some(LabelSet {
            labels: pairs
                .iter()
                .map(|(n, v)| Label {
                    name: n.to_string(),
                    value: v.to_string(),
                })
                .collect(),
        })
    };
    parca
        .write_raw(WriteRawRequest {
            series: vec![RawProfileSeries {
                labels: labels(&[("__name__", "process_cpu"), ("job", "parca")]),
                samples: vec![RawSample {
                    raw_profile: cpu_profile(3),
                }],
            }],
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(total(&engine, LabelMatcher::equal("job", "parca")).await, 3);

    let mut pyroscope = PusherServiceClient::connect(url.clone()).await.unwrap();
    pyroscope
        .push(push::PushRequest {
            series: vec![push::RawProfileSeries {
                labels: vec![
                    types::LabelPair {
                        name: "__name__".into(),
                        value: "process_cpu".into(),
                    },
                    types::LabelPair {
                        name: "service_name".into(),
                        value: "checkout".into(),
                    },
                ],
                samples: vec![push::RawSample {
                    raw_profile: cpu_profile(5),
                    id: "a".into(),
                }],
                annotations: vec![],
            }],
        })
        .await
        .unwrap();
    assert_eq!(
        total(&engine, LabelMatcher::equal("service_name", "checkout")).await,
        5
    );

    // Bad input: a clear status, nothing stored.
    let before = engine.stats().head.samples;
    let mut truncated = cpu_profile(1);
    truncated.truncate(truncated.len() - 4);
    let err = parca
        .write_raw(WriteRawRequest {
            series: vec![RawProfileSeries {
                labels: labels(&[("__name__", "process_cpu")]),
                samples: vec![
                    RawSample {
                        raw_profile: cpu_profile(1),
                    },
                    RawSample {
                        raw_profile: truncated,
                    },
                ],
            }],
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    assert!(err.message().contains("bad protobuf"), "{}", err.message());
    let err = parca
        .write_raw(WriteRawRequest {
            series: vec![RawProfileSeries {
                labels: labels(&[("job", "x")]),
                samples: vec![RawSample {
                    raw_profile: cpu_profile(1),
                }],
            }],
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    assert!(err.message().contains("__name__"), "{}", err.message());
    assert_eq!(engine.stats().head.samples, before);

    // gRPC-web under /api, as Parca's UI calls it: a length-prefixed message in, the response
    // and a trailer frame with grpc-status out.
    let message = WriteRawRequest {
        series: vec![RawProfileSeries {
            labels: labels(&[("__name__", "process_cpu"), ("job", "web")]),
            samples: vec![RawSample {
                raw_profile: cpu_profile(7),
            }],
        }],
        ..Default::default()
    }
    .encode_to_vec();
    let grpc_web = |message: &[u8]| {
        let mut frame = vec![0u8];
        frame.extend_from_slice(&(message.len() as u32).to_be_bytes());
        frame.extend_from_slice(message);
        frame
    };
    let (status, body) = common::post_with(
        addr,
        "/api/parca.profilestore.v1alpha1.ProfileStoreService/WriteRaw",
        &[
            ("Content-Type", "application/grpc-web+proto"),
            ("X-Grpc-Web", "1"),
        ],
        &grpc_web(&message),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("grpc-status:0"), "{body:?}");
    assert_eq!(total(&engine, LabelMatcher::equal("job", "web")).await, 7);
    let no_name = WriteRawRequest {
        series: vec![RawProfileSeries {
            labels: labels(&[("job", "web")]),
            samples: vec![RawSample {
                raw_profile: cpu_profile(1),
            }],
        }],
        ..Default::default()
    }
    .encode_to_vec();
    let response = common::post_full(
        addr,
        "/api/parca.profilestore.v1alpha1.ProfileStoreService/WriteRaw",
        &[("Content-Type", "application/grpc-web+proto")],
        &grpc_web(&no_name),
    )
    .await;
    assert!(
        response.contains("grpc-status: 3") || response.contains("grpc-status:3"),
        "{response}"
    );
    assert!(response.contains("__name__"), "{response}");

    // Plain HTTP on the same port.
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    stream
        .write_all(b"GET /healthy HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");

    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
    engine.close().await.unwrap();
}
