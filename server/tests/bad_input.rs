//! Bad input on every gRPC push path — gzip bomb, truncated protobuf, wrong content type,
//! oversize body — and a gzip bomb on `/ingest`: each gets a status that says what was wrong,
//! and the store is unchanged.

mod common;

use std::io::Write;

use strata_ingest::{DecodeLimits, PprofBuilder};
use strata_proto::otlp::collector::profiles::v1development::ExportProfilesServiceRequest;
use strata_proto::otlp::collector::profiles::v1development::profiles_service_client::ProfilesServiceClient;
use strata_proto::otlp::profiles::v1development::ProfilesDictionary;
use strata_proto::parca::profile_store_service_client::ProfileStoreServiceClient;
use strata_proto::parca::{Label, LabelSet, RawProfileSeries, RawSample, WriteRawRequest};
use strata_proto::pyroscope::push::v1::pusher_service_client::PusherServiceClient;
use strata_proto::pyroscope::{push::v1 as push, types::v1 as types};
use tonic::Code;

const LIMITS: DecodeLimits = DecodeLimits {
    max_body_bytes: 64 << 10,
    max_decompressed_bytes: 1 << 20,
};

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// Bytes that do not compress: past the body limit even gzipped.
fn noise(n: usize) -> Vec<u8> {
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn cpu_profile() -> Vec<u8> {
    let mut b = PprofBuilder::new(&[("samples", "count")], ("cpu", "nanoseconds"), 10_000_000);
    b.sample(&["main"], &[1], &[]);
    b.encode()
}

fn parca(raw_profile: Vec<u8>) -> WriteRawRequest {
    WriteRawRequest {
        series: vec![RawProfileSeries {
            labels: Some(LabelSet {
                labels: vec![Label {
                    name: "__name__".into(),
                    value: "process_cpu".into(),
                }],
            }),
            samples: vec![RawSample { raw_profile }],
        }],
        ..Default::default()
    }
}

fn pyroscope(raw_profile: Vec<u8>) -> push::PushRequest {
    push::PushRequest {
        series: vec![push::RawProfileSeries {
            labels: vec![types::LabelPair {
                name: "__name__".into(),
                value: "process_cpu".into(),
            }],
            samples: vec![push::RawSample {
                raw_profile,
                id: String::new(),
            }],
            annotations: vec![],
        }],
    }
}

fn check(what: &str, result: Result<(), tonic::Status>, code: Code, says: &str) {
    let status = result.expect_err(what);
    assert_eq!(status.code(), code, "{what}: {status:?}");
    assert!(status.message().contains(says), "{what}: {status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_protocol_refuses_bad_input_and_stores_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let engine = common::open_engine(dir.path()).await;
    let app = strata_server::App::with_limits(engine.clone(), LIMITS);
    let (addr, server) = common::spawn_server(app, std::future::pending()).await;
    let url = format!("http://{addr}");
    let bomb = gzip(&vec![0u8; 8 << 20]);
    assert!(bomb.len() < LIMITS.max_body_bytes as usize);
    let mut truncated = cpu_profile();
    truncated.truncate(truncated.len() - 3);
    let oversize = noise(100 << 10);

    let mut client = ProfileStoreServiceClient::connect(url.clone())
        .await
        .unwrap();
    let mut write = async |raw: Vec<u8>| client.write_raw(parca(raw)).await.map(|_| ());
    check(
        "parca bomb",
        write(bomb.clone()).await,
        Code::ResourceExhausted,
        "decompresses to more than 1048576",
    );
    check(
        "parca truncated",
        write(truncated.clone()).await,
        Code::InvalidArgument,
        "bad protobuf",
    );
    check(
        "parca oversize",
        write(oversize.clone()).await,
        Code::OutOfRange,
        "message length too large",
    );

    let mut client = PusherServiceClient::connect(url.clone()).await.unwrap();
    let mut push = async |raw: Vec<u8>| client.push(pyroscope(raw)).await.map(|_| ());
    check(
        "pyroscope bomb",
        push(bomb.clone()).await,
        Code::ResourceExhausted,
        "decompresses to more than",
    );
    check(
        "pyroscope truncated",
        push(truncated.clone()).await,
        Code::InvalidArgument,
        "bad protobuf",
    );
    check(
        "pyroscope oversize",
        push(oversize.clone()).await,
        Code::OutOfRange,
        "message length too large",
    );

    // OTLP: the whole request is the message, so its limit is the decompressed size.
    let mut client = ProfilesServiceClient::connect(url.clone()).await.unwrap();
    let big = ExportProfilesServiceRequest {
        resource_profiles: vec![],
        dictionary: Some(ProfilesDictionary {
            string_table: vec![
                String::new(),
                String::from_utf8(vec![b'x'; 2 << 20]).unwrap(),
            ],
            ..Default::default()
        }),
    };
    check(
        "otlp oversize",
        client.export(big.clone()).await.map(|_| ()),
        Code::OutOfRange,
        "message length too large",
    );
    let mut gz = ProfilesServiceClient::connect(url.clone())
        .await
        .unwrap()
        .send_compressed(tonic::codec::CompressionEncoding::Gzip);
    check(
        "otlp bomb",
        gz.export(big).await.map(|_| ()),
        Code::ResourceExhausted,
        "size limit",
    );

    // Not gRPC: 415 on every gRPC path, native or gRPC-web.
    for path in [
        "/parca.profilestore.v1alpha1.ProfileStoreService/WriteRaw",
        "/opentelemetry.proto.collector.profiles.v1development.ProfilesService/Export",
        "/api/parca.profilestore.v1alpha1.ProfileStoreService/WriteRaw",
        "/api/push.v1.PusherService/Push",
    ] {
        let (status, body) =
            common::post_with(addr, path, &[("Content-Type", "application/json")], b"{}").await;
        assert_eq!(status, 415, "{path}: {body}");
        assert!(body.contains("not gRPC"), "{path}: {body}");
    }

    // The legacy /ingest: a gzip bomb is 413 with the limit named.
    let (status, body) = common::post(addr, "/ingest?name=app.cpu&format=pprof", &bomb).await;
    assert_eq!(status, 413, "{body}");
    assert!(body.contains("max_decompressed_bytes"), "{body}");

    assert_eq!(engine.stats().head.samples, 0, "nothing was stored");
    server.abort();
}
