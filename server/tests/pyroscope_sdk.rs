//! The real Pyroscope Python SDK (PyPI `pyroscope-io` 1.4.0; `scripts/test` installs it) pushes
//! to Strata: its pushes carry OpenTelemetry-style label names (`otel.scope.name`,
//! `process.runtime.name`, …), which are stored as they are and queryable with quoted names,
//! as in Prometheus 3 (`{"otel.scope.name"="com.grafana.pyroscope/python"}`).

mod common;

use serde_json::Value;

async fn json(addr: std::net::SocketAddr, path: &str) -> Value {
    let (status, body) = common::get(addr, path).await;
    assert_eq!(status, 200, "{path}: {body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path}: {e}: {body}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_sdk_pushes_with_otel_label_names_are_stored_and_queryable() {
    if !common::tool_or_skip("PYROSCOPE_SDK", common::python_imports("pyroscope")) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let engine = common::open_engine(dir.path()).await;
    let app = strata_server::App::new(engine.clone());
    let (addr, _server) = common::spawn_server(app.clone(), std::future::pending()).await;

    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/pyroscope_sdk_client.py"
    );
    let out = tokio::process::Command::new("python3")
        .arg(script)
        .arg(format!("http://{addr}"))
        .arg("3")
        .output()
        .await
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "the SDK client failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The SDK only logs a refused push: the server's counters say whether one was refused.
    let (_, metrics) = common::get(addr, "/metrics").await;
    let pushes: Vec<&str> = metrics
        .lines()
        .filter(|l| l.starts_with("strata_ingest_requests_total"))
        .collect();
    assert!(
        pushes.iter().any(|l| l.contains("outcome=\"accepted\"")),
        "no push arrived: {pushes:?}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !pushes.iter().any(|l| l.contains("outcome=\"rejected\"")),
        "a push was refused: {pushes:?}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let names = json(addr, "/api/v1/labels").await;
    for name in ["otel.scope.name", "process.runtime.name", "service_name"] {
        assert!(
            names.as_array().unwrap().iter().any(|n| n == name),
            "{name} is not among the label names {names}"
        );
    }
    let scopes = json(addr, "/api/v1/labels/otel.scope.name/values").await;
    assert_eq!(scopes, serde_json::json!(["com.grafana.pyroscope/python"]));
    let runtimes = json(addr, "/api/v1/labels/process.runtime.name/values").await;
    assert_eq!(runtimes, serde_json::json!(["cpython"]), "{runtimes}");

    // A selector with a quoted UTF-8 name finds the SDK's profile, and its stack has the
    // function that burned the CPU.
    let types = json(addr, "/api/v1/profile_types").await;
    let cpu = types
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap().to_owned())
        .find(|id| id.starts_with("process_cpu:"))
        .unwrap_or_else(|| panic!("no process_cpu type in {types}"));
    let selector = format!(
        r#"{cpu}{{"otel.scope.name"="com.grafana.pyroscope/python", service_name="sdk.python.app"}}"#
    );
    let top = json(
        addr,
        &format!(
            "/api/v1/query?query={}&report=top&start=now-1h&end=now%2B1m",
            url_encode(&selector)
        ),
    )
    .await;
    assert!(
        top.to_string().contains("burn_cpu"),
        "burn_cpu is not in the SDK's profile: {top}"
    );
}

/// Percent-encodes a query parameter.
fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
