//! The scale harness end to end: the tiny preset pushed into a real `strata server` (the
//! workspace's debug build, built here if absent), every request acknowledged, the merged
//! total equal to what was generated, and the report's JSON and SVG charts written.

use std::path::PathBuf;
use std::process::Command;

use strata_benches::doors::{self, Door, DoorsConfig};
use strata_benches::scale::{self, Preset, Report, Target, cluster, plot};

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

/// Real Go CPU profiles (benches/goprof, built with the system's `go`) pushed through every
/// front door: each door stores every row of every push — the same count for all five, equal
/// to the rows the files hold — and the server's CPU is measured; `go tool pprof` merged the
/// same files.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_front_door_stores_every_row() {
    let go = Command::new("go").arg("version").output();
    if go.is_err() {
        assert!(
            std::env::var("STRATA_SKIP_GO").is_ok_and(|v| v == "1"),
            "`go` is missing (./scripts/test installs it); set STRATA_SKIP_GO=1 to skip this test"
        );
        return;
    }
    let work = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("doors-goprof");
    let file = strata_benches::goprof::profiles(&work, 1)
        .unwrap()
        .join("cpu.pb.gz");
    let raw = std::fs::read(&file).unwrap();
    let profile =
        strata_ingest::decode_pprof(&raw, &strata_ingest::DecodeLimits::default()).unwrap();
    // One row per sample and sample type with a non-zero value.
    let rows_per_push: u64 = profile
        .sample
        .iter()
        .map(|s| s.value.iter().filter(|&&v| v != 0).count() as u64)
        .sum();
    let cfg = DoorsConfig {
        files: vec![file],
        pushes: 12,
        series: 5,
        concurrency: 4,
        doors: Door::ALL.to_vec(),
        profile_seconds: 0,
        server_config: "scrape_configs: []\n".into(),
    };
    let out = tempfile::tempdir().unwrap();
    let report = doors::run(&cfg, &strata_binary(), None, out.path(), "doors")
        .await
        .unwrap();
    assert!(report.go.cpu.as_secs_f64() > 0.0);
    assert_eq!(report.doors.len(), 5);
    for d in &report.doors {
        assert_eq!(
            (d.acked, d.failed),
            (12, 0),
            "{:?}: {:?}",
            d.door,
            d.first_error
        );
        assert_eq!(d.rows, 12 * rows_per_push, "{:?}", d.door);
        assert!(d.server_cpu_s > 0.0 && d.us_per_row > 0.0, "{d:?}");
    }
    assert!(doors::markdown(&report).contains("| otlp | 12 | 0 |"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tiny_preset_end_to_end() {
    let mut cfg = Preset::Tiny.config();
    // The requests of each checkpoint are made before it is pushed.
    cfg.pregenerate = true;
    let out = tempfile::tempdir().unwrap();
    let target = Target::Spawn(strata_binary(), None);
    let report = scale::run(&cfg, &target, None).await.unwrap();
    // The spawned server's CPU while pushing, per row.
    let us = report.summary.server_us_per_row.unwrap();
    assert!(
        us > 0.0 && report.summary.server_cpu_s.unwrap() > 0.0,
        "{us}"
    );

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

/// The tiny preset into a cluster on moto (two ingesters, two queriers, a compactor): every
/// push acknowledged and spread over both ingesters, every querier's merge equal to what was
/// pushed before and after the flush, the bucket's blocks holding every row.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tiny_preset_into_a_cluster() {
    if Command::new("moto_server").arg("--help").output().is_err() {
        assert!(
            std::env::var("STRATA_SKIP_S3").is_ok_and(|v| v == "1"),
            "moto_server is missing (pip install 'moto[server]'); set STRATA_SKIP_S3=1 to skip"
        );
        return;
    }
    let mut cfg = Preset::Tiny.config();
    cfg.pregenerate = true;
    // Flushed heads kept 4 s (not 2 m), so the blocks-only merges start soon after the flush.
    let setup = cluster::ClusterSetup {
        flushed_head_retention_s: 4,
        ..cluster::ClusterSetup::new(2, 2)
    };
    let report = cluster::run(&cfg, setup, &strata_binary(), None, None)
        .await
        .unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    let v = &report.verification;
    assert_eq!(v.failed_requests, 0, "first error: {:?}", v.first_error);
    assert_eq!(report.acked, report.generated);
    assert_eq!(v.merged_total, report.generated.value as f64);
    // Before the flush (querier 0), then each querier after it.
    assert_eq!(report.querier_totals.len(), 3);
    assert_eq!(report.bucket.live_rows, report.acked.rows);
    assert!(
        report.bucket.live_block_bytes > 0 && report.bucket.bytes >= report.bucket.live_block_bytes
    );

    // Both ingesters took pushes (5 nodes: 3 and 2) and spent CPU on them.
    let ingesters: Vec<_> = report
        .members
        .iter()
        .filter(|m| m.name.starts_with("ingester"))
        .collect();
    assert_eq!(ingesters.len(), 2);
    assert_eq!(
        ingesters.iter().map(|m| m.rows).sum::<u64>(),
        report.acked.rows
    );
    assert!(
        ingesters
            .iter()
            .all(|m| m.rows > 0 && m.us_per_row.is_some_and(|us| us > 0.0))
    );
    assert!(report.members.iter().any(|m| m.name == "compactor"));

    // Merges: 1 h and 24 h before the flush and right after it (one querier), then, once the
    // flushed heads expired, through one and through both at once; the 24 h merge covers
    // everything pushed.
    assert!(report.heads_expired_after_s.is_some());
    let shapes: Vec<_> = report
        .merges
        .iter()
        .map(|m| (m.query.as_str(), m.stage.as_str(), m.queriers))
        .collect();
    assert_eq!(
        shapes,
        [
            ("merge_1h", "heads", 1),
            ("merge_24h", "heads", 1),
            ("merge_1h", "flushed", 1),
            ("merge_24h", "flushed", 1),
            ("merge_1h", "blocks", 1),
            ("merge_24h", "blocks", 1),
            ("merge_1h", "blocks", 2),
            ("merge_24h", "blocks", 2),
        ]
    );
    for m in &report.merges {
        if m.query == "merge_24h" {
            assert_eq!(m.total, report.generated.value as f64, "{m:?}");
        }
        assert!(m.median_ms > 0.0 && m.runs >= m.queriers, "{m:?}");
    }
    let md = cluster::markdown(&report);
    assert!(
        md.contains("ingester-1") && md.contains("merge_24h"),
        "{md}"
    );
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

/// Sustained mode, briefly: 15 s of pushing at 20x real time into a server held to 512 MiB
/// (in a memory cgroup when this runs as root), then a verdict, the time series and the
/// charts. And the verdict fails a run whose limit the server cannot stay under.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sustained_mode_under_a_memory_limit() {
    use scale::sustained::{self, SustainedConfig};
    let mut cfg = SustainedConfig::new(5, 15.0, 512 << 20);
    cfg.fleet.processes = 4;
    cfg.rate = scale::Rate::Realtime(20.0);
    cfg.window_s = 3.0;
    cfg.enforce = scale::cgroup::available();
    let target = Target::Spawn(strata_binary(), None);
    let r = sustained::run(&cfg, &target, None).await.unwrap();
    assert!(r.failures.is_empty(), "{:?}", r.failures);
    let s = &r.summary;
    assert_eq!(s.failed_requests, 0, "{:?}", s.first_error);
    assert_eq!(r.acked, r.generated);
    // Several rounds (one every 0.5 s), all queryable.
    assert!(r.acked.requests >= 5 * 4, "{:?}", r.acked);
    assert_eq!(s.merged_total, Some(r.acked.value as f64));
    assert!(s.rss_peak_bytes > 0 && s.rss_peak_bytes < cfg.memory_limit_bytes);
    assert!(s.server_exit.is_none());
    // Samples over the whole run, and windows covering it.
    assert!(r.memory.len() >= 10, "{} memory samples", r.memory.len());
    assert!(r.memory.iter().any(|p| p.head_bytes.is_some_and(|b| b > 0)));
    assert!(r.windows.len() >= 4);
    assert_eq!(
        r.windows.iter().map(|w| w.requests).sum::<u64>(),
        r.acked.requests
    );
    assert!(r.windows.iter().filter(|w| w.rows_per_s > 0.0).count() >= 3);
    if cfg.enforce {
        assert!(r.cgroup.is_some());
        assert_eq!(s.oom_kills, Some(0));
        assert!(s.cgroup_peak_bytes.is_some_and(|p| p > 0));
        assert!(s.anon_peak_bytes.is_some_and(|p| p > 0));
        // The server ran inside it; it is gone afterwards.
        let leftover = format!("strata-bench-{}", std::process::id());
        let found = std::process::Command::new("find")
            .args(["/sys/fs/cgroup", "-maxdepth", "5", "-name", &leftover])
            .output()
            .unwrap();
        assert!(found.stdout.is_empty(), "cgroup left behind");
    }
    let out = tempfile::tempdir().unwrap();
    let charts = sustained::charts(&r, out.path(), "s").unwrap();
    assert_eq!(charts.len(), 3);
    assert!(sustained::markdown(&r).contains("PASS"));

    // A limit below what the server needs: reported as a failure (RSS checked, no cgroup).
    let mut small = SustainedConfig::new(2, 2.0, 4 << 20);
    small.enforce = false;
    small.verify = false;
    let r = sustained::run(&small, &target, None).await.unwrap();
    assert!(
        r.failures
            .iter()
            .any(|f| f.contains("not under the 4 MiB limit")),
        "{:?}",
        r.failures
    );
}
