//! OTLP profiles `Export` over real gRPC and over OTLP/HTTP (`/v1development/profiles`),
//! sent by the OpenTelemetry Python stack (opentelemetry-proto 1.45 + grpcio, installed by
//! `scripts/test`; urllib for HTTP): read back through the engine; bad input gets a clear
//! status (a `google.rpc.Status` body over HTTP) and stores nothing.

mod common;

use common::StoredStack;

const CPU: &str = "process_cpu:samples:count:cpu:nanoseconds:delta";
const ALLOC: &str = "memory:alloc_space:bytes:space:bytes";

/// Runs the fixture client against `addr`; returns (case, code, details) per case.
fn export(addr: std::net::SocketAddr, cases: &[&str]) -> Vec<(String, String, String)> {
    run_client(&[addr.to_string()], cases)
}

fn run_client(args: &[String], cases: &[&str]) -> Vec<(String, String, String)> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/otlp_export.py");
    let out = std::process::Command::new("python3")
        .arg(script)
        .args(args)
        .args(cases)
        .output()
        .expect("python3 runs (./scripts/test installs what the OTLP client needs)");
    assert!(
        out.status.success(),
        "the OTLP client failed (pip install opentelemetry-proto==1.45.0 grpcio): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            let s = |k: &str| v[k].as_str().unwrap().to_owned();
            (s("case"), s("code"), s("details"))
        })
        .collect()
}

fn labels(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut v: Vec<_> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    v.sort();
    v
}

/// The CPU stacks the fixture's valid request stores, when stored `times` times.
fn expected_cpu(times: i64) -> Vec<StoredStack> {
    let checkout = [("host_name", "node-1"), ("service_name", "checkout")];
    let mut with_thread = checkout.to_vec();
    with_thread.push(("thread_name", "worker"));
    vec![
        StoredStack {
            labels: labels(&checkout),
            folded: "main".into(),
            value: 2 * times, // two timestamps, no values
        },
        StoredStack {
            labels: labels(&with_thread),
            folded: "main;work".into(),
            value: 3 * times,
        },
    ]
}

/// A server over a fresh engine in `dir` with a 1 MiB body limit (4 MiB decompressed): the
/// engine, its address, the sender that stops it and its task.
async fn start(
    dir: &std::path::Path,
) -> (
    strata_engine::Engine,
    std::net::SocketAddr,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<std::io::Result<()>>,
) {
    let engine = common::open_engine(dir).await;
    let limits = strata_ingest::DecodeLimits {
        max_body_bytes: 1 << 20,
        max_decompressed_bytes: 4 << 20,
    };
    let app = strata_server::App::with_limits(engine.clone(), limits);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let (addr, server) = common::spawn_server(app, async {
        let _ = stopped.await;
    })
    .await;
    (engine, addr, stop, server)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn otlp_export_is_stored_and_bad_requests_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, addr, stop, server) = start(dir.path()).await;

    // Bad requests first: each is refused with a status that says why, and stores nothing.
    let refused =
        tokio::task::spawn_blocking(move || export(addr, &["truncated", "bad_index", "bomb"]))
            .await
            .unwrap();
    let expect = [
        // As grpc-go and tonic answer a request that does not parse.
        ("truncated", "INTERNAL", "failed to decode Protobuf message"),
        (
            "bad_index",
            "INVALID_ARGUMENT",
            "sample 0's stack refers to entry 99",
        ),
        ("bomb", "RESOURCE_EXHAUSTED", "size limit"),
    ];
    for ((case, code, details), (want_case, want_code, want_details)) in refused.iter().zip(expect)
    {
        assert_eq!(case, want_case);
        assert_eq!(code, want_code, "{case}: {details}");
        assert!(details.contains(want_details), "{case}: {details}");
    }
    assert_eq!(refused.len(), 3);
    assert_eq!(
        engine.stats().head.samples,
        0,
        "a refused request stored samples"
    );

    // Not gRPC at all: a plain POST to the gRPC path is refused, and stores nothing.
    let (status, body) = common::post_with(
        addr,
        "/opentelemetry.proto.collector.profiles.v1development.ProfilesService/Export",
        &[("Content-Type", "text/plain")],
        b"hello",
    )
    .await;
    assert_eq!(status, 415, "{body}");
    assert!(body.contains("not gRPC"), "{body}");
    assert_eq!(engine.stats().head.samples, 0);

    let ok = tokio::task::spawn_blocking(move || export(addr, &["valid"]))
        .await
        .unwrap();
    assert_eq!(ok[0].1, "OK", "{:?}", ok[0]);

    assert_eq!(common::stored_stacks(&engine, CPU).await, expected_cpu(1));
    let alloc = common::stored_stacks(&engine, ALLOC).await;
    assert_eq!(
        alloc,
        vec![StoredStack {
            labels: labels(&[("service_name", "cart")]),
            folded: "main;alloc".into(),
            value: 4096,
        }]
    );

    // The mapping's build id came from its attribute.
    let symbols = engine
        .resolve_stacks(&[engine_stack_id(&engine, ALLOC).await])
        .await
        .unwrap();
    let build_ids: Vec<_> = symbols
        .mappings
        .values()
        .map(|m| m.build_id.as_str())
        .collect();
    assert_eq!(build_ids, ["abc123"]);

    let _ = stop.send(());
    server.await.unwrap().unwrap();
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `google.rpc.Status`, the body of an OTLP/HTTP error.
#[derive(Clone, PartialEq, prost::Message)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn otlp_http_export_is_stored_and_bad_requests_get_a_status() {
    use prost::Message;
    let dir = tempfile::tempdir().unwrap();
    let (engine, addr, stop, server) = start(dir.path()).await;
    let http = |cases: &'static [&'static str]| {
        let args = vec!["--http".to_owned(), addr.to_string()];
        tokio::task::spawn_blocking(move || run_client(&args, cases))
    };

    // Refused, each with the status the OTLP/HTTP specification gives it and a
    // google.rpc.Status saying why; nothing stored.
    let refused = http(&["truncated", "bad_index", "json_bad", "text", "too_large"])
        .await
        .unwrap();
    let expect = [
        (
            "truncated",
            "400",
            3,
            "cannot decode ExportProfilesServiceRequest",
        ),
        ("bad_index", "400", 3, "sample 0's stack refers to entry 99"),
        (
            "json_bad",
            "400",
            3,
            "cannot decode ExportProfilesServiceRequest from JSON",
        ),
        ("text", "415", 3, "application/json"),
        ("too_large", "413", 8, "ingest.max_body_bytes"),
    ];
    assert_eq!(refused.len(), expect.len());
    for ((case, code, body), (want_case, want_code, want_grpc, want_message)) in
        refused.iter().zip(expect)
    {
        assert_eq!((case.as_str(), code.as_str()), (want_case, want_code));
        let bytes: Vec<u8> = (0..body.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&body[i..i + 2], 16).unwrap())
            .collect();
        // In the request's encoding: JSON for a JSON request, else protobuf.
        let status = if case.starts_with("json") {
            let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
            RpcStatus {
                code: v["code"].as_i64().unwrap() as i32,
                message: v["message"].as_str().unwrap().to_owned(),
            }
        } else {
            RpcStatus::decode(&*bytes).unwrap_or_else(|e| panic!("{case}: {e}"))
        };
        assert_eq!(status.code, want_grpc, "{case}: {status:?}");
        assert!(status.message.contains(want_message), "{case}: {status:?}");
    }
    assert_eq!(
        engine.stats().head.samples,
        0,
        "a refused request stored samples"
    );

    // The same request as protobuf and as OTLP JSON, each plain and gzipped: all four
    // stored, so every value counts four times.
    let ok = http(&["plain", "gzip", "json_plain", "json_gzip"])
        .await
        .unwrap();
    assert_eq!(ok.len(), 4);
    for (case, code, body) in &ok {
        assert_eq!(code, "200", "{case}: {body}");
        if case.starts_with("json") {
            assert_eq!(
                body,
                &hex(b"{}"),
                "{case}: an empty ExportProfilesServiceResponse"
            );
        }
    }
    assert_eq!(common::stored_stacks(&engine, CPU).await, expected_cpu(4));
    let alloc = common::stored_stacks(&engine, ALLOC).await;
    assert_eq!(alloc.len(), 1);
    assert_eq!(alloc[0].value, 16384);

    let _ = stop.send(());
    server.await.unwrap().unwrap();
}

async fn engine_stack_id(engine: &strata_engine::Engine, pt: &str) -> strata_engine::StackId {
    use arrow::array::AsArray;
    let out = engine
        .scan(strata_engine::ScanRequest {
            profile_type: pt.parse().unwrap(),
            matchers: vec![],
            range: strata_engine::TimeRange::ALL,
        })
        .await
        .unwrap();
    let batches = out.collect().await.unwrap();
    strata_engine::StackId(
        batches[0]
            .column(4)
            .as_primitive::<arrow::datatypes::UInt64Type>()
            .value(0),
    )
}
