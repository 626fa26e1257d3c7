//! Queries through the server: real Go profiles pushed over Parca's WriteRaw, merged and
//! exported, read by `go tool pprof` exactly as the original files are (top table per
//! function, and `-diff_base` for a diff); Parca's QueryService over gRPC and gRPC-web; the
//! HTTP/JSON API with its errors.

mod common;

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use strata_proto::parca::query::v1alpha1 as pb;
use strata_proto::parca::query::v1alpha1::query_service_client::QueryServiceClient;

const CPU: &str = "process_cpu:cpu:nanoseconds:cpu:nanoseconds:delta";
const HEAP: &str = "memory:inuse_space:bytes:space:bytes";

/// `time_nanos` of a (gzipped) pprof.
fn time_nanos(bytes: &[u8]) -> i64 {
    strata_ingest::decode_pprof(bytes, &Default::default())
        .unwrap()
        .time_nanos
}

async fn push(addr: std::net::SocketAddr, name: &str, raw: &[u8]) {
    common::write_raw(addr, name, "goapp", raw.to_vec()).await;
}

/// GET an HTTP API path with query parameters; status and body bytes.
async fn api(addr: std::net::SocketAddr, path: &str, params: &[(&str, &str)]) -> (u16, Vec<u8>) {
    let r = reqwest::Client::new()
        .get(format!("http://{addr}{path}"))
        .query(params)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.bytes().await.unwrap().to_vec())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn go_profiles_merge_and_diff_as_go_tool_pprof_does() {
    let dir = tempfile::tempdir().unwrap();
    let go = common::GoApp::start(dir.path());
    let engine = common::open_engine(&dir.path().join("data")).await;
    let app = strata_server::App::new(engine);
    let (addr, _server) = common::spawn_server(app.clone(), std::future::pending()).await;

    // Two CPU profiles and two heap profiles of a real Go program.
    let mut files = Vec::new();
    for (i, (name, path)) in common::GO_CPU_AND_HEAP.into_iter().enumerate() {
        let bytes = common::fetch(&format!("http://{}{path}", go.addr)).await;
        let file = dir.path().join(format!("{name}-{i}.pb.gz"));
        std::fs::write(&file, &bytes).unwrap();
        push(addr, name, &bytes).await;
        files.push((file, bytes));
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }

    for (pt, index, originals) in [
        (CPU, "cpu", &files[0..2]),
        (HEAP, "inuse_space", &files[2..4]),
    ] {
        // Merge of everything = go tool pprof over both files.
        let (status, ours) = api(
            addr,
            "/api/v1/query",
            &[
                ("query", &format!("{pt}{{job=\"goapp\"}}")),
                ("start", "now-1h"),
                ("end", "now+1h"),
                ("report", "pprof"),
            ],
        )
        .await;
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&ours));
        let ours_file = dir.path().join(format!("ours-{index}.pb.gz"));
        std::fs::write(&ours_file, &ours).unwrap();
        let paths: Vec<&Path> = originals.iter().map(|(p, _)| p.as_path()).collect();
        let expected = common::gotool::go_top(&[&format!("-sample_index={index}")], &paths);
        let got = common::gotool::go_top(&[], &[&ours_file]);
        assert!(!expected.1.is_empty());
        assert_eq!(
            got, expected,
            "{pt}: merged top differs from go tool pprof's"
        );

        if pt == CPU {
            pgo_build(addr, dir.path()).await;
        }

        // Diff of the second profile against the first = go tool pprof -diff_base.
        let (a, b) = (time_nanos(&originals[0].1), time_nanos(&originals[1].1));
        let (status, diff) = api(
            addr,
            "/api/v1/query",
            &[
                ("mode", "diff"),
                ("query", pt),
                ("time", &b.to_string()),
                ("base_time", &a.to_string()),
                ("report", "pprof"),
            ],
        )
        .await;
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&diff));
        let diff_file = dir.path().join(format!("diff-{index}.pb.gz"));
        std::fs::write(&diff_file, &diff).unwrap();
        let base = format!("-diff_base={}", paths[0].display());
        let expected =
            common::gotool::go_top(&[&format!("-sample_index={index}"), &base], &[paths[1]]);
        let got = common::gotool::go_top(&[], &[&diff_file]);
        // Flat and cumulative per function agree; percentages differ by design (go relates
        // them to the base profile's total), so they are not compared.
        assert_eq!(got.1, expected.1, "{pt}: diff differs from -diff_base");
    }
    drop(go);
}

/// The `pgo-go` export of the Go program's CPU profiles builds that program with
/// `go build -pgo` (Go 1.23 from bookworm-backports; Debian's default Go predates PGO).
async fn pgo_build(addr: std::net::SocketAddr, dir: &Path) {
    let go = "/usr/lib/go-1.23/bin/go";
    let available = match Path::new(go).exists() {
        true => Ok(()),
        false => Err(format!("the go build -pgo check needs {go}")),
    };
    if !common::tool_or_skip("GO_PGO", available) {
        return;
    }
    // A profile of the program built by that Go (Go 1.20+ records the functions' start lines,
    // which PGO needs).
    let build_dir = dir.join("go123");
    std::fs::create_dir_all(&build_dir).unwrap();
    let app = common::GoApp::start_with(&build_dir, go);
    let bytes = common::fetch(&format!(
        "http://{}/debug/pprof/profile?seconds=1",
        app.addr
    ))
    .await;
    drop(app);
    common::write_raw(addr, "process_cpu", "goapp-1.23", bytes).await;
    let (status, pgo) = api(
        addr,
        "/api/v1/query",
        &[
            ("query", &format!("{CPU}{{job=\"goapp-1.23\"}}")),
            ("start", "now-1h"),
            ("end", "now+1h"),
            ("report", "pgo-go"),
        ],
    )
    .await;
    assert_eq!(status, 200);
    let profile = dir.join("default.pgo");
    std::fs::write(&profile, &pgo).unwrap();
    let bin = dir.join("goapp-pgo");
    let built = Command::new(go)
        .args(["build", "-o"])
        .arg(&bin)
        .arg(format!("-pgo={}", profile.display()))
        .arg(".")
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/goapp"))
        .env("GOTOOLCHAIN", "local")
        .env("GOFLAGS", "")
        .output()
        .unwrap();
    assert!(
        built.status.success(),
        "go build -pgo: {}",
        String::from_utf8_lossy(&built.stderr)
    );
    let info = Command::new(go)
        .args(["version", "-m"])
        .arg(&bin)
        .output()
        .unwrap();
    let info = String::from_utf8_lossy(&info.stdout);
    assert!(
        info.contains("-pgo="),
        "the build did not use the profile:\n{info}"
    );
}

/// A store with two series of a synthetic CPU profile.
async fn synthetic() -> (
    tempfile::TempDir,
    Arc<strata_server::App>,
    std::net::SocketAddr,
) {
    let dir = tempfile::tempdir().unwrap();
    let engine = common::open_engine(dir.path()).await;
    let app = strata_server::App::new(engine);
    let (addr, _server) = common::spawn_server(app.clone(), std::future::pending()).await;
    common::push_two_jobs(addr, T0).await;
    (dir, app, addr)
}

fn ts(ns: i64) -> Option<strata_proto::prost_types::Timestamp> {
    Some(strata_proto::prost_types::Timestamp {
        seconds: ns.div_euclid(1_000_000_000),
        nanos: ns.rem_euclid(1_000_000_000) as i32,
    })
}

const T0: i64 = 1_700_000_000_000_000_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parca_query_service_over_grpc_and_grpc_web() {
    let (_dir, _app, addr) = synthetic().await;
    let mut q = QueryServiceClient::connect(format!("http://{addr}"))
        .await
        .unwrap();
    let types = q
        .profile_types(pb::ProfileTypesRequest::default())
        .await
        .unwrap()
        .into_inner()
        .types;
    assert!(
        types
            .iter()
            .any(|t| t.name == "process_cpu" && t.sample_type == "cpu" && t.delta)
    );
    let labels = q
        .labels(pb::LabelsRequest {
            profile_type: Some(CPU.into()),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .label_names;
    assert!(labels.contains(&"job".to_owned()), "{labels:?}");
    let values = q
        .values(pb::ValuesRequest {
            label_name: "job".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .label_values;
    assert_eq!(values, ["api", "db"]);

    let range = q
        .query_range(pb::QueryRangeRequest {
            query: CPU.into(),
            start: ts(T0 - 1),
            end: ts(T0 + 1),
            sum_by: vec!["job".into()],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let totals: Vec<(String, i64)> = range
        .series
        .iter()
        .map(|s| {
            (
                s.labelset.as_ref().unwrap().labels[0].value.clone(),
                s.samples[0].value,
            )
        })
        .collect();
    assert_eq!(
        totals,
        [("api".into(), 350_000_000), ("db".into(), 150_000_000)]
    );

    let merge = |report: pb::query_request::ReportType| pb::QueryRequest {
        mode: pb::query_request::Mode::Merge as i32,
        options: Some(pb::query_request::Options::Merge(pb::MergeProfile {
            query: CPU.into(),
            start: ts(T0 - 1),
            end: ts(T0 + 1),
        })),
        report_type: report as i32,
        ..Default::default()
    };
    use pb::query_response::Report;
    let top = q
        .query(merge(pb::query_request::ReportType::Top))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(top.total, 500_000_000);
    let Some(Report::Top(top)) = top.report else {
        panic!("a top report")
    };
    let first = &top.list[0];
    assert_eq!(
        first.meta.as_ref().unwrap().function.as_ref().unwrap().name,
        "work"
    );
    assert_eq!((first.flat, first.cumulative), (400_000_000, 400_000_000));

    let fg = q
        .query(merge(pb::query_request::ReportType::FlamegraphTable))
        .await
        .unwrap()
        .into_inner();
    let Some(Report::Flamegraph(fg)) = fg.report else {
        panic!("a flame graph")
    };
    let root = fg.root.unwrap();
    assert_eq!(root.cumulative, 500_000_000);
    assert_eq!(root.children.len(), 1);
    let main = &root.children[0];
    let name = |n: &pb::FlamegraphNode| {
        fg.string_table[n
            .meta
            .as_ref()
            .unwrap()
            .function
            .as_ref()
            .unwrap()
            .name_string_index as usize]
            .clone()
    };
    assert_eq!(name(main), "main");
    assert_eq!(
        main.children.iter().map(name).collect::<Vec<_>>(),
        ["gc", "handle"]
    );

    let cg = q
        .query(merge(pb::query_request::ReportType::Callgraph))
        .await
        .unwrap()
        .into_inner();
    let Some(Report::Callgraph(cg)) = cg.report else {
        panic!("a call graph")
    };
    assert_eq!(cg.nodes.len(), 4);
    assert_eq!(cg.edges.len(), 3);

    let pprof = q
        .query(merge(pb::query_request::ReportType::Pprof))
        .await
        .unwrap()
        .into_inner();
    let Some(Report::Pprof(bytes)) = pprof.report else {
        panic!("pprof")
    };
    let decoded = strata_ingest::decode_pprof(&bytes, &Default::default()).unwrap();
    assert_eq!(
        decoded.sample.iter().map(|s| s.value[0]).sum::<i64>(),
        500_000_000
    );

    // A diff: job=api against job=db, with a stack filter dropping `gc`.
    let sel = |query: &str| pb::ProfileDiffSelection {
        mode: pb::profile_diff_selection::Mode::Merge as i32,
        options: Some(pb::profile_diff_selection::Options::Merge(
            pb::MergeProfile {
                query: query.into(),
                start: ts(T0 - 1),
                end: ts(T0 + 1),
            },
        )),
    };
    let diff = q
        .query(pb::QueryRequest {
            mode: pb::query_request::Mode::Diff as i32,
            options: Some(pb::query_request::Options::Diff(pb::DiffProfile {
                a: Some(sel(&format!("{CPU}{{job=\"db\"}}"))),
                b: Some(sel(&format!("{CPU}{{job=\"api\"}}"))),
                absolute: None,
            })),
            report_type: pb::query_request::ReportType::Top as i32,
            filter: vec![pb::Filter {
                filter: Some(pb::filter::Filter::StackFilter(pb::StackFilter {
                    filter: Some(pb::stack_filter::Filter::FunctionNameStackFilter(
                        pb::FunctionNameStackFilter {
                            function_to_filter: "gc".into(),
                            exclude: true,
                        },
                    )),
                })),
            }],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(diff.total, 300_000_000);
    assert_eq!(diff.filtered, 50_000_000);
    let Some(Report::Top(top)) = diff.report else {
        panic!("top")
    };
    let work = top
        .list
        .iter()
        .find(|n| n.meta.as_ref().unwrap().function.as_ref().unwrap().name == "work")
        .unwrap();
    assert_eq!((work.cumulative, work.diff), (300_000_000, 200_000_000));

    // Relative: the base is scaled to the compared total (150 -> 350) before the difference.
    let relative = q
        .query(pb::QueryRequest {
            mode: pb::query_request::Mode::Diff as i32,
            options: Some(pb::query_request::Options::Diff(pb::DiffProfile {
                a: Some(sel(&format!("{CPU}{{job=\"db\"}}"))),
                b: Some(sel(&format!("{CPU}{{job=\"api\"}}"))),
                absolute: Some(false),
            })),
            report_type: pb::query_request::ReportType::Top as i32,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let Some(Report::Top(top)) = relative.report else {
        panic!("top")
    };
    let diff_of = |name: &str| {
        top.list
            .iter()
            .find(|n| n.meta.as_ref().unwrap().function.as_ref().unwrap().name == name)
            .unwrap()
            .diff
    };
    assert_eq!(diff_of("work"), 300_000_000 - 233_333_333);
    assert_eq!(diff_of("gc"), 50_000_000 - 116_666_667);

    // Bad requests: a clear INVALID_ARGUMENT with the position.
    let mut bad = merge(pb::query_request::ReportType::Top);
    bad.options = Some(pb::query_request::Options::Merge(pb::MergeProfile {
        query: format!("{CPU}{{job=~\"(\"}}"),
        start: ts(T0 - 1),
        end: ts(T0 + 1),
    }));
    let err = q.query(bad).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    assert!(err.message().contains("column 56"), "{}", err.message());
    let mut empty = merge(pb::query_request::ReportType::Top);
    empty.options = None;
    assert_eq!(
        q.query(empty).await.unwrap_err().code(),
        tonic::Code::InvalidArgument
    );

    // gRPC-web under /api.
    let (status, body) = common::post_with(
        addr,
        "/api/parca.query.v1alpha1.QueryService/ProfileTypes",
        &[
            ("Content-Type", "application/grpc-web+proto"),
            ("X-Grpc-Web", "1"),
        ],
        &[0, 0, 0, 0, 0],
    )
    .await;
    assert_eq!(status, 200);
    assert!(
        body.contains("process_cpu") && body.contains("grpc-status:0"),
        "{body:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_json_api_answers_and_explains_errors() {
    let (_dir, _app, addr) = synthetic().await;
    let json = |b: Vec<u8>| -> serde_json::Value { serde_json::from_slice(&b).unwrap() };
    let t = |d: i64| (T0 + d).to_string();
    let (s, b) = api(addr, "/api/v1/profile_types", &[]).await;
    assert_eq!(s, 200);
    assert!(json(b).as_array().unwrap().iter().any(|t| t["id"] == CPU));
    let (_, b) = api(addr, "/api/v1/labels/job/values", &[("query", CPU)]).await;
    assert_eq!(json(b), serde_json::json!(["api", "db"]));
    let (_, b) = api(
        addr,
        "/api/v1/complete",
        &[("query", &format!("{CPU}{{job=\"a"))],
    )
    .await;
    let c = json(b);
    assert_eq!(c["context"]["kind"], "label_value");
    assert_eq!(c["suggestions"], serde_json::json!(["api"]));
    let (_, b) = api(addr, "/api/v1/complete", &[("query", "process_cpu:c")]).await;
    assert!(
        json(b)["suggestions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s == CPU)
    );

    let (s, b) = api(
        addr,
        "/api/v1/query_range",
        &[
            ("query", CPU),
            ("start", &t(-10)),
            ("end", &t(10)),
            ("step", "1m"),
            ("sum_by", "job"),
        ],
    )
    .await;
    assert_eq!(s, 200);
    let r = json(b);
    assert_eq!(r["series"][0]["labels"]["job"], "api");
    assert_eq!(r["series"][0]["points"][0]["value"], 350_000_000.0);

    let (s, b) = api(
        addr,
        "/api/v1/query",
        &[
            ("query", CPU),
            ("start", &t(-10)),
            ("end", &t(10)),
            ("report", "folded"),
            ("group_by", "labels.job"),
        ],
    )
    .await;
    assert_eq!(s, 200);
    let text = String::from_utf8(b).unwrap();
    assert!(
        text.contains("job=api;main;handle;work 300000000"),
        "{text}"
    );
    let (s, b) = api(
        addr,
        "/api/v1/query",
        &[
            ("query", CPU),
            ("time", &t(0)),
            ("report", "flamegraph"),
            ("max_nodes", "3"),
        ],
    )
    .await;
    assert_eq!(s, 200);
    let fg = json(b);
    assert_eq!(fg["nodes"].as_array().unwrap().len(), 3);
    assert_eq!(fg["meta"]["total"], 500_000_000);

    // Errors: 400 with a message that says what is wrong.
    for (params, says) in [
        (
            vec![("query", "nonsense{"), ("time", "0")],
            "is not a profile type",
        ),
        (
            vec![("query", CPU), ("start", "yesterday"), ("end", "now")],
            "start \"yesterday\"",
        ),
        (
            vec![("query", CPU), ("start", "now"), ("end", "now-1h")],
            "empty time range",
        ),
        (
            vec![("query", CPU), ("time", "0"), ("report", "svg")],
            "report \"svg\"",
        ),
        (
            vec![("query", CPU), ("time", "0"), ("keep", "re:(")],
            "invalid filter",
        ),
        (vec![("query", CPU)], "give start and end"),
    ] {
        let (s, b) = api(addr, "/api/v1/query", &params).await;
        assert_eq!(s, 400, "{params:?}");
        let e = json(b);
        assert!(
            e["error"].as_str().unwrap().contains(says),
            "{params:?}: {e}"
        );
    }
    // SQL over HTTP, and its errors.
    let r = reqwest::Client::new()
        .post(format!("http://{addr}/api/v1/sql"))
        .body(format!("SELECT job, sum(value) AS v FROM samples WHERE profile_type = '{CPU}' GROUP BY job ORDER BY job"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = serde_json::from_slice(&r.bytes().await.unwrap()).unwrap();
    assert_eq!(
        v["rows"],
        serde_json::json!([["api", 350_000_000], ["db", 150_000_000]])
    );
    let r = reqwest::Client::new()
        .post(format!("http://{addr}/api/v1/sql"))
        .body("SELECT nope FROM samples")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
}
