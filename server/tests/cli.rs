//! The `strata query` and `strata export` commands against a running server, and the
//! `llvm-sample` export accepted (and used) by clang's `-fprofile-sample-use`.

mod common;

use std::process::{Command, Output};

use prost::Message;
use strata_proto::pprof as pb;

const CPU: &str = "process_cpu:cpu:nanoseconds:cpu:nanoseconds:delta";

/// The C program the profile describes: `hot` (lines 1-5) called by `main` (line 7-9).
const PROGRAM: &str = "int hot(int x) {
  int s = 0;
  for (int i = 0; i < x; i++)
    s += i * i;
  return s;
}
int main(int argc, char **argv) {
  return hot(argc * 1000) & 1;
}
";

/// A CPU pprof of `PROGRAM`: most samples in `hot`'s loop (line 4), called from main line 8.
fn c_profile(time_nanos: i64, scale: i64) -> Vec<u8> {
    let strings: Vec<String> = [
        "",
        "samples",
        "count",
        "cpu",
        "nanoseconds",
        "hot",
        "main",
        "prog.c",
        "/bin/prog",
    ]
    .map(String::from)
    .to_vec();
    let function = |id: u64, name: i64, start_line: i64| pb::Function {
        id,
        name,
        system_name: name,
        filename: 7,
        start_line,
    };
    let location = |id: u64, function_id: u64, line: i64| pb::Location {
        id,
        mapping_id: 1,
        address: 0x1000 + id,
        line: vec![pb::Line {
            function_id,
            line,
            column: 0,
        }],
        is_folded: false,
    };
    let sample = |locs: Vec<u64>, n: i64| pb::Sample {
        location_id: locs,
        value: vec![n, n * 10_000_000],
        label: vec![],
    };
    pb::Profile {
        sample_type: vec![
            pb::ValueType { r#type: 1, unit: 2 },
            pb::ValueType { r#type: 3, unit: 4 },
        ],
        sample: vec![
            sample(vec![1, 3], 90 * scale),
            sample(vec![2, 3], 10 * scale),
            sample(vec![4], 5),
        ],
        mapping: vec![pb::Mapping {
            id: 1,
            filename: 8,
            has_functions: true,
            ..Default::default()
        }],
        location: vec![
            location(1, 1, 4),
            location(2, 1, 2),
            location(3, 2, 8),
            location(4, 2, 7),
        ],
        function: vec![function(1, 5, 1), function(2, 6, 7)],
        string_table: strings,
        time_nanos,
        duration_nanos: 10_000_000_000,
        period_type: Some(pb::ValueType { r#type: 3, unit: 4 }),
        period: 10_000_000,
        ..Default::default()
    }
    .encode_to_vec()
}

fn strata(addr: std::net::SocketAddr, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_strata"))
        .args(args)
        .args(["--server", &format!("http://{addr}")])
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

const T0: i64 = 1_700_000_000_000_000_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_and_export_commands() {
    let dir = tempfile::tempdir().unwrap();
    let engine = common::open_engine(&dir.path().join("data")).await;
    let app = strata_server::App::new(engine);
    let (addr, _server) = common::spawn_server(app, std::future::pending()).await;
    for (t, scale) in [(T0, 1), (T0 + 10_000_000_000, 3)] {
        common::write_raw(addr, "process_cpu", "prog", c_profile(t, scale)).await;
    }
    let from = (T0 / 1_000_000_000 - 60).to_string();
    let to = (T0 / 1_000_000_000 + 60).to_string();
    let range = ["--from", from.as_str(), "--to", to.as_str()];

    // Top, for humans and as JSON.
    let top = stdout(&strata(
        addr,
        &[&["query", "top", CPU][..], &range].concat(),
    ));
    let first = top.lines().nth(2).unwrap();
    assert!(first.ends_with("hot") && first.contains("4.00s"), "{top}");
    let json = stdout(&strata(
        addr,
        &[&["query", "merge", CPU, "--output", "json"][..], &range].concat(),
    ));
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["meta"]["total"], 4_100_000_000i64);
    // Range per profile.
    let r = stdout(&strata(
        addr,
        &[&["query", "range", CPU, "--sum-by", "job"][..], &range].concat(),
    ));
    assert_eq!(r.lines().count(), 3, "{r}");
    assert!(r.contains("job=prog") && r.contains("3050000000"), "{r}");
    // Diff: the second profile against the first.
    let base_to = (T0 + 1).to_string();
    let t1 = (T0 + 10_000_000_000).to_string();
    let d = stdout(&strata(
        addr,
        &[
            "query",
            "diff",
            CPU,
            "--from",
            &t1,
            "--to",
            &to,
            "--base-from",
            &from,
            "--base-to",
            &base_to,
        ],
    ));
    assert!(d.contains("total 3.05s (base 1.05s)"), "{d}");
    // SQL.
    let statement =
        format!("SELECT job, count(*) AS n FROM samples WHERE profile_type = '{CPU}' GROUP BY job");
    let sql = stdout(&strata(addr, &["query", "sql", &statement]));
    assert!(sql.contains("prog") && sql.contains('6'), "{sql}");
    // Errors are explained, with a non-zero exit.
    let bad = strata(addr, &[&["query", "top", "cpu{job="][..], &range].concat());
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("is not a profile type"));

    // Exports: pprof for go tool pprof, folded text.
    let pprof = dir.path().join("p.pb.gz");
    stdout(&strata(
        addr,
        &[
            &["export", CPU, "--format", "pprof", "-o"][..],
            &[pprof.to_str().unwrap()],
            &range,
        ]
        .concat(),
    ));
    let go = Command::new("go")
        .args(["tool", "pprof", "-top"])
        .arg(&pprof)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&go.stdout);
    assert!(
        go.status.success() && text.contains("hot") && text.contains("4100ms total"),
        "{text}"
    );
    let folded = stdout(&strata(
        addr,
        &[&["export", CPU, "--format", "folded"][..], &range].concat(),
    ));
    assert!(folded.contains("main;hot 4000000000"), "{folded}");

    // llvm-sample: clang reads it and annotates `hot` with the profile's counts.
    let prof = dir.path().join("prog.prof");
    stdout(&strata(
        addr,
        &[
            &["export", CPU, "--format", "llvm-sample", "-o"][..],
            &[prof.to_str().unwrap()],
            &range,
        ]
        .concat(),
    ));
    let text = std::fs::read_to_string(&prof).unwrap();
    assert!(text.starts_with("hot:"), "{text}");
    let src = dir.path().join("prog.c");
    std::fs::write(&src, PROGRAM).unwrap();
    let ll = dir.path().join("prog.ll");
    let clang = Command::new("clang")
        .args([
            "-O2",
            "-g",
            "-gline-tables-only",
            "-S",
            "-emit-llvm",
            "-Wall",
        ])
        .arg(format!("-fprofile-sample-use={}", prof.display()))
        .arg(&src)
        .arg("-o")
        .arg(&ll)
        .output()
        .expect("clang runs (./scripts/test installs it)");
    let stderr = String::from_utf8_lossy(&clang.stderr);
    assert!(
        clang.status.success() && !stderr.contains("profile"),
        "{stderr}\n{text}"
    );
    let ir = std::fs::read_to_string(&ll).unwrap();
    assert!(
        ir.contains("function_entry_count"),
        "the profile was not applied:\n{ir}"
    );
}
