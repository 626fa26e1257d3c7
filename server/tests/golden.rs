//! Golden files for the wire formats users' tools read: every HTTP/JSON route's answer and
//! every Parca `QueryService` answer over one fixed store (pushed over Parca `WriteRaw` and
//! Pyroscope `Push` with fixed times, one series with an OpenTelemetry-style label name), and
//! the route table with each route's access class. Re-bless with
//! `STRATA_BLESS=1 cargo test -p strata-server --test golden`.

mod common;
#[path = "../../query/tests/common/golden.rs"]
mod golden_file;

use std::sync::Arc;

use golden_file::check;
use prost::Message;
use strata_proto::parca::query::v1alpha1 as pb;
use strata_proto::parca::query::v1alpha1::query_service_client::QueryServiceClient;
use strata_proto::pyroscope::{push::v1 as push, types::v1 as types};

const T0: i64 = 1_700_000_000_000_000_000;
const CPU: &str = "process_cpu:cpu:nanoseconds:cpu:nanoseconds:delta";

/// A store with two Parca series and one Pyroscope series (dotted label names included).
async fn store() -> (
    tempfile::TempDir,
    Arc<strata_server::App>,
    std::net::SocketAddr,
) {
    let dir = tempfile::tempdir().unwrap();
    let engine = common::open_engine(dir.path()).await;
    let app = strata_server::App::new(engine);
    let (addr, _server) = common::spawn_server(app.clone(), std::future::pending()).await;
    common::push_two_jobs(addr, T0).await;
    let mut b = strata_ingest::PprofBuilder::new(
        &[("cpu", "nanoseconds")],
        ("cpu", "nanoseconds"),
        10_000_000,
    );
    b.time(T0 + 1_000_000_000, 10_000_000_000).sample(
        &["burn_cpu", "<module>"],
        &[70_000_000],
        &[],
    );
    let label = |name: &str, value: &str| types::LabelPair {
        name: name.into(),
        value: value.into(),
    };
    let request = push::PushRequest {
        series: vec![push::RawProfileSeries {
            labels: vec![
                label("__name__", "process_cpu"),
                label("service_name", "sdk.python.app"),
                label("otel.scope.name", "com.grafana.pyroscope/python"),
            ],
            samples: vec![push::RawSample {
                raw_profile: b.encode(),
                id: String::new(),
            }],
            annotations: vec![],
        }],
    };
    let (status, body) = common::post_with(
        addr,
        "/push.v1.PusherService/Push",
        &[("Content-Type", "application/proto")],
        &request.encode_to_vec(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    (dir, app, addr)
}

/// `GET path` as golden text: status, content type, and the body (JSON pretty-printed).
async fn http(addr: std::net::SocketAddr, path: &str) -> String {
    let r = reqwest::get(format!("http://{addr}{path}")).await.unwrap();
    let status = r.status().as_u16();
    let content_type = r
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let body = r.bytes().await.unwrap();
    let text = match serde_json::from_slice::<serde_json::Value>(&body) {
        Ok(v) => serde_json::to_string_pretty(&v).unwrap(),
        Err(_) => String::from_utf8_lossy(&body).into_owned(),
    };
    format!("GET {path}\n{status} {content_type}\n{text}\n")
}

fn encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_json_answers_match_their_golden_files() {
    let (_dir, _app, addr) = store().await;
    let range = format!(
        "start={}&end={}",
        T0 / 1_000_000_000 - 60,
        T0 / 1_000_000_000 + 60
    );
    let api = encode(&format!("{CPU}{{job=\"api\"}}"));
    let otel = encode(&format!(
        "{CPU}{{\"otel.scope.name\"=\"com.grafana.pyroscope/python\"}}"
    ));
    let cases: Vec<(&str, String)> = vec![
        ("healthy", "/healthy".into()),
        ("ready", "/ready".into()),
        ("profile_types", "/api/v1/profile_types".into()),
        ("labels", "/api/v1/labels".into()),
        (
            "label_values",
            "/api/v1/labels/otel.scope.name/values".into(),
        ),
        (
            "complete_label",
            format!("/api/v1/complete?query={}", encode(&format!("{CPU}{{"))),
        ),
        (
            "query_range",
            format!("/api/v1/query_range?query={api}&{range}&step=60s"),
        ),
        (
            "query_range_sum_by",
            format!(
                "/api/v1/query_range?query={}&{range}&step=60s&sum_by=job",
                encode(CPU)
            ),
        ),
        (
            "top",
            format!("/api/v1/query?query={api}&{range}&report=top"),
        ),
        (
            "top_otel",
            format!("/api/v1/query?query={otel}&{range}&report=top"),
        ),
        (
            "flamegraph",
            format!("/api/v1/query?query={api}&{range}&report=flamegraph"),
        ),
        (
            "callgraph",
            format!("/api/v1/query?query={api}&{range}&report=callgraph"),
        ),
        (
            "folded",
            format!("/api/v1/query?query={api}&{range}&report=folded"),
        ),
        (
            "diff_top",
            format!(
                "/api/v1/query?query={api}&{range}&report=top&mode=diff&base_query={}&base_start={}&base_end={}",
                encode(&format!("{CPU}{{job=\"db\"}}")),
                T0 / 1_000_000_000 - 60,
                T0 / 1_000_000_000 + 60
            ),
        ),
        (
            "bad_selector",
            format!("/api/v1/query?query={}&{range}", encode("cpu{job=}")),
        ),
        (
            "bad_report",
            format!("/api/v1/query?query={api}&{range}&report=nope"),
        ),
        ("targets", "/api/v1/targets".into()),
        ("debuginfo_status", "/api/v1/debuginfo/status".into()),
        ("not_found", "/api/v1/no_such_route".into()),
    ];
    for (name, path) in cases {
        check(&format!("http/{name}.txt"), &http(addr, &path).await);
    }
    // SQL, by POST.
    let (status, body) = common::post(
        addr,
        "/api/v1/sql",
        b"SELECT job, sum(value) AS v, count(*) AS n FROM samples GROUP BY job ORDER BY job",
    )
    .await;
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    check(
        "http/sql.txt",
        &format!("{status}\n{}\n", serde_json::to_string_pretty(&v).unwrap()),
    );
    // /metrics: the names, types and help of every metric (values change from run to run).
    let (_, metrics) = common::get(addr, "/metrics").await;
    let shape: String = metrics
        .lines()
        .filter(|l| l.starts_with('#'))
        .map(|l| format!("{l}\n"))
        .collect();
    check("http/metrics_shape.txt", &shape);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parca_query_service_answers_match_their_golden_files() {
    let (_dir, _app, addr) = store().await;
    let mut q = QueryServiceClient::connect(format!("http://{addr}"))
        .await
        .unwrap();
    let ts = |ns: i64| {
        Some(strata_proto::prost_types::Timestamp {
            seconds: ns.div_euclid(1_000_000_000),
            nanos: 0,
        })
    };
    let (start, end) = (ts(T0 - 60_000_000_000), ts(T0 + 60_000_000_000));
    let mut out = String::new();
    let types = q
        .profile_types(pb::ProfileTypesRequest::default())
        .await
        .unwrap()
        .into_inner();
    out += &format!("ProfileTypes\n{types:#?}\n");
    let labels = q
        .labels(pb::LabelsRequest {
            start,
            end,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    out += &format!("Labels\n{labels:#?}\n");
    let values = q
        .values(pb::ValuesRequest {
            label_name: "otel.scope.name".into(),
            start,
            end,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    out += &format!("Values otel.scope.name\n{values:#?}\n");
    let range = q
        .query_range(pb::QueryRangeRequest {
            query: format!("{CPU}{{job=\"api\"}}"),
            start,
            end,
            step: Some(strata_proto::prost_types::Duration {
                seconds: 60,
                nanos: 0,
            }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    out += &format!("QueryRange\n{range:#?}\n");
    check("parca/labels_and_range.txt", &out);

    let merge = pb::MergeProfile {
        query: format!("{CPU}{{job=\"api\"}}"),
        start,
        end,
    };
    for (name, report) in [
        ("top", pb::query_request::ReportType::Top),
        ("callgraph", pb::query_request::ReportType::Callgraph),
        (
            "flamegraph_table",
            pb::query_request::ReportType::FlamegraphTable,
        ),
    ] {
        let answer = q
            .query(pb::QueryRequest {
                mode: pb::query_request::Mode::Merge as i32,
                options: Some(pb::query_request::Options::Merge(merge.clone())),
                report_type: report as i32,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        check(
            &format!("parca/query_{name}.txt"),
            &format!("{answer:#?}\n"),
        );
    }
    let refused = q
        .query(pb::QueryRequest {
            mode: pb::query_request::Mode::Merge as i32,
            options: Some(pb::query_request::Options::Merge(pb::MergeProfile {
                query: "cpu{job=}".into(),
                start,
                end,
            })),
            ..Default::default()
        })
        .await
        .unwrap_err();
    check(
        "parca/query_bad_selector.txt",
        &format!("{:?}: {}\n", refused.code(), refused.message()),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_is_declared_with_its_access_class() {
    let dir = tempfile::tempdir().unwrap();
    let engine = common::open_engine(dir.path()).await;
    let app = strata_server::App::new(engine);
    let mut out = String::new();
    for (role, set) in [
        ("all", strata_server::ComponentSet::all()),
        (
            "query only",
            strata_server::ComponentSet::only([strata_server::Component::Query]),
        ),
        (
            "--target ingester",
            strata_server::ComponentSet::for_target(&"ingester".parse().unwrap()),
        ),
        (
            "--target compactor",
            strata_server::ComponentSet::for_target(&"compactor".parse().unwrap()),
        ),
    ] {
        out += &format!("# {role}\n");
        for r in strata_server::route_table(app.clone(), &set) {
            out += &format!(
                "{:<10} {:<6} {}\n",
                r.protocol,
                format!("{:?}", r.access),
                r.path
            );
        }
    }
    check("routes.txt", &out);
}
