//! The scale harness end to end: the tiny preset pushed into a real `strata server` (the
//! workspace's debug build, built here if absent), every request acknowledged, the merged
//! total equal to what was generated, and the report's JSON and SVG charts written.

use std::path::PathBuf;
use std::process::Command;

use strata_benches::scale::{self, Preset, Report, Target, plot};

/// `target/<profile>/strata` beside this test binary (`target/<profile>/deps/harness-…`),
/// built with `cargo build -p strata-server` when missing (e.g. `cargo test -p
/// strata-benches` alone; `cargo test --workspace` builds it with the server's tests).
fn strata_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().unwrap().parent().unwrap().to_owned();
    let bin = profile_dir.join("strata");
    if !bin.is_file() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let target_dir = profile_dir.parent().unwrap();
        let mut cmd = Command::new(cargo);
        cmd.args(["build", "-p", "strata-server", "--bin", "strata"])
            .arg("--target-dir")
            .arg(target_dir)
            .current_dir(env!("CARGO_MANIFEST_DIR"));
        if profile_dir.file_name().is_some_and(|n| n == "release") {
            cmd.arg("--release");
        }
        let status = cmd.status().expect("running cargo build -p strata-server");
        assert!(status.success(), "cargo build -p strata-server failed");
    }
    assert!(bin.is_file(), "no strata binary at {}", bin.display());
    bin
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tiny_preset_end_to_end() {
    let cfg = Preset::Tiny.config();
    let out = tempfile::tempdir().unwrap();
    let target = Target::Spawn(strata_binary(), None);
    let report = scale::run(&cfg, &target, None).await.unwrap();

    // Everything pushed was acknowledged and is queryable.
    let v = &report.verification;
    assert_eq!(v.failed_requests, 0, "first error: {:?}", v.first_error);
    assert_eq!(report.acked, report.generated);
    assert_eq!(
        report.generated.requests,
        cfg.rounds * cfg.fleet.nodes as u64
    );
    assert!(report.generated.rows > 0 && report.generated.value >= report.generated.rows);
    assert_eq!(v.merged_total, report.generated.value as f64);

    // Measured at every checkpoint; the last merge over 24 h covers everything pushed.
    assert_eq!(report.checkpoints.len() as u64, cfg.checkpoints);
    let last = report.checkpoints.last().unwrap();
    assert_eq!(last.rows, report.acked.rows);
    let answer = |q: &str| last.queries.iter().find(|t| t.query == q).unwrap().answer;
    assert_eq!(answer("merge_24h"), report.generated.value as f64);
    assert!(answer("merge_1h") > 0.0 && answer("merge_1h") < answer("merge_24h"));
    assert!(answer("label_values") >= (cfg.fleet.nodes * cfg.fleet.processes) as f64);
    assert!(answer("range_1h") > 0.0);
    assert!(report.summary.rss_peak_bytes > 0);
    assert!(report.summary.ack_p99_ms >= report.summary.ack_p50_ms);
    assert!(report.summary.disk_bytes_per_row.unwrap() > 0.0);

    // The report round-trips through JSON; the charts are SVG documents.
    let json = out.path().join("tiny.json");
    std::fs::write(&json, serde_json::to_vec_pretty(&report).unwrap()).unwrap();
    let back: Report = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(back.acked, report.acked);
    let mut charts = plot::run_charts(&back, out.path(), "tiny").unwrap();
    charts.extend(plot::scaling_charts(&[back.clone(), back], out.path()).unwrap());
    assert_eq!(charts.len(), 6);
    for c in charts {
        let svg = std::fs::read_to_string(&c).unwrap();
        assert!(
            svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"),
            "{c:?}"
        );
        assert!(
            svg.contains("<polyline") || svg.contains("<path"),
            "{c:?} has no line"
        );
    }
}

#[test]
fn fleet_is_deterministic_and_churns() {
    use scale::fleet::{Fleet, FleetConfig};
    use scale::pprof::PprofEncoder;
    let cfg = FleetConfig {
        nodes: 3,
        processes: 5,
        stacks: 2_000,
        functions: 800,
        ..FleetConfig::default()
    };
    let requests = |cfg: &FleetConfig| {
        let mut fleet = Fleet::new(cfg.clone());
        let program = fleet.program().clone();
        let mut enc = PprofEncoder::new(&program);
        let mut out = Vec::new();
        for round in 0..12 {
            for node in 0..cfg.nodes {
                out.push(fleet.request(&mut enc, node, round, 1_000 + round as i64));
            }
        }
        out
    };
    let a = requests(&cfg);
    assert_eq!(a, requests(&cfg), "same seed, same requests");
    let b = requests(&FleetConfig {
        seed: 2,
        ..cfg.clone()
    });
    assert_ne!(a, b);
    // Short-lived processes come and go: more pids than slots over 12 rounds.
    let pids: std::collections::HashSet<String> = a
        .iter()
        .flat_map(|(r, _)| &r.series)
        .flat_map(|s| &s.labels.as_ref().unwrap().labels)
        .filter(|l| l.name == "pid")
        .map(|l| l.value.clone())
        .collect();
    assert!(
        pids.len() > cfg.nodes * cfg.processes,
        "{} pids",
        pids.len()
    );
    // 19 Hz x 8 cores x 10 s x 10-60 % busy (±20 %) per node and interval.
    for (_, g) in &a {
        assert!((120..=1_100).contains(&g.value), "{g:?}");
    }
}
