//! Programs without frame pointers, profiled for 20 s by `strata server`'s in-process eBPF
//! collector, come out with whole stacks in the stored profiles (read back as folded stacks
//! through `/api/v1/query`): a C program built with `clang -O2 -fomit-frame-pointer` whose CPU
//! splits 6:3:1 between three functions under one caller, the same in a Rust release build,
//! and a `qsort` comparator burning CPU under Debian's libc. Each must show main → caller →
//! each function with shares within 5 points of 6:3:1 (the comparator: under qsort, under
//! its caller, under main); `/metrics` shows the unwinder's tables and stop reasons. A fourth
//! program sleeps 40 ms then computes 10 ms in a loop: in the off-CPU profile type the
//! sleeping function holds at least 85 % of its blocked time, in the CPU type the computing
//! one at least 85 % of its samples. A fifth, pure Python on Debian's `/usr/bin/python3`
//! (3.11), splits its CPU 6:3:1 between three functions named `work` in three modules under
//! one caller: its profile for `comm="python3"` (read as pprof) names them by function and
//! file, under `caller`, with those shares within 7 points.
//!
//! Needs root (or CAP_BPF + CAP_PERFMON), clang, rustc and Debian's python3.11: the test fails
//! without them, unless `STRATA_SKIP_EBPF=1` (resp. `STRATA_SKIP_CC=1`,
//! `STRATA_SKIP_PYTHON=1`, which leaves out the Python part).

mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::strata::{Strata, wait_for};

const FIXTURES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../collector-ebpf/tests/fixtures/unwind"
);

/// A child process killed when dropped (also when the test fails).
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn run(cmd: &mut Command) -> Result<(), String> {
    let out = cmd
        .output()
        .map_err(|e| format!("{cmd:?} does not run: {e}"))?;
    match out.status.success() {
        true => Ok(()),
        false => Err(format!("{cmd:?}: {}", String::from_utf8_lossy(&out.stderr))),
    }
}

/// Builds the C workload (no frame pointers) and the Rust release workload into `dir`.
fn build(dir: &Path) -> Result<(PathBuf, PathBuf), String> {
    let (c, rs) = (dir.join("workload"), dir.join("workload_rs"));
    run(Command::new("clang")
        .args(["-O2", "-fomit-frame-pointer", "-o"])
        .arg(&c)
        .arg(format!("{FIXTURES}/workload.c")))?;
    run(Command::new("rustc")
        .args(["-C", "opt-level=3", "-o"])
        .arg(&rs)
        .arg(format!("{FIXTURES}/workload.rs")))?;
    Ok((c, rs))
}

fn spawn(exe: &Path, arg: &str) -> Killed {
    Killed(
        Command::new(exe)
            .arg(arg)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    )
}

/// When the workloads started, plus the time the collector takes to load the unwind tables of
/// every process on the host (their first samples are walked by frame pointers), in Unix ms:
/// the start of the queried range.
static COUNTED_FROM: std::sync::OnceLock<i64> = std::sync::OnceLock::new();

fn counted_from() -> i64 {
    *COUNTED_FROM.get().expect("set when the workloads start")
}

/// The stored CPU profile of process `pid`, as folded stacks (root first) → samples.
async fn folded(addr: SocketAddr, pid: u32) -> BTreeMap<String, i64> {
    folded_of(addr, strata_collector_ebpf::PROFILE_TYPE, pid).await
}

/// The stored profile of type `profile_type` of process `pid`, as folded stacks → values.
async fn folded_of(addr: SocketAddr, profile_type: &str, pid: u32) -> BTreeMap<String, i64> {
    let query = format!("{profile_type}{{pid=\"{pid}\"}}");
    let (status, body) = common::get(
        addr,
        &format!(
            "/api/v1/query?query={}&start={}&end=now%2B1m&report=folded",
            urlencode(&query),
            counted_from()
        ),
    )
    .await;
    if status != 200 {
        return BTreeMap::new();
    }
    body.lines()
        .filter_map(|l| {
            let (stack, v) = l.rsplit_once(' ')?;
            Some((stack.to_owned(), v.parse().ok()?))
        })
        .collect()
}

/// The stored CPU profile of `selector` as pprof.
async fn pprof_of(addr: SocketAddr, selector: &str) -> strata_proto::pprof::Profile {
    use prost::Message;
    use std::io::Read;
    let query = format!("{}{selector}", strata_collector_ebpf::PROFILE_TYPE);
    let (status, body) = common::get_bytes(
        addr,
        &format!(
            "/api/v1/query?query={}&start={}&end=now%2B1m&report=pprof",
            urlencode(&query),
            counted_from()
        ),
    )
    .await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let mut raw = Vec::new();
    flate2::read::GzDecoder::new(&body[..])
        .read_to_end(&mut raw)
        .unwrap();
    strata_proto::pprof::Profile::decode(&raw[..]).unwrap()
}

/// Per (function, file name) of the frame right under `caller`: the samples of `profile`, and
/// the total.
fn under_caller(p: &strata_proto::pprof::Profile) -> (BTreeMap<(String, String), i64>, i64) {
    let s = |i: i64| p.string_table[i as usize].clone();
    let function = |loc: u64| -> Option<(String, String)> {
        let l = p.location.iter().find(|l| l.id == loc)?;
        let function_id = l.line.first()?.function_id;
        let f = p.function.iter().find(|f| f.id == function_id)?;
        let file = s(f.filename);
        Some((s(f.name), file.rsplit('/').next().unwrap_or("").to_owned()))
    };
    let mut out = BTreeMap::new();
    let mut total = 0;
    for sample in &p.sample {
        total += sample.value[0];
        let frames: Vec<_> = sample
            .location_id
            .iter()
            .filter_map(|&l| function(l))
            .collect();
        if let Some(i) = frames.iter().position(|(name, _)| name == "caller")
            && i > 0
        {
            *out.entry(frames[i - 1].clone()).or_default() += sample.value[0];
        }
    }
    (out, total)
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' | b'.' | b'-' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Samples under `path;leaf` for each leaf, and all the process's samples.
fn under(stacks: &BTreeMap<String, i64>, path: &str, leaves: [&str; 3]) -> ([i64; 3], i64) {
    let mut out = [0i64; 3];
    for (stack, n) in stacks {
        for (i, leaf) in leaves.iter().enumerate() {
            if stack.contains(&format!("{path};{leaf}")) {
                out[i] += n;
            }
        }
    }
    (out, stacks.values().sum())
}

/// Asserts 6:3:1 within 5 points among the samples under `path`, and that at least 85 % of
/// the process's samples walk through it.
fn check_shares(what: &str, stacks: &BTreeMap<String, i64>, path: &str, leaves: [&str; 3]) {
    let (got, total) = under(stacks, path, leaves);
    let sum: i64 = got.iter().sum();
    let mut top: Vec<_> = stacks.iter().collect();
    top.sort_by_key(|(_, n)| std::cmp::Reverse(**n));
    top.truncate(6);
    assert!(
        total >= 300 && sum as f64 >= 0.85 * total as f64,
        "{what}: {sum} of {total} samples walk through {path}; top stacks {top:#?}"
    );
    for (i, want) in [60.0, 30.0, 10.0].into_iter().enumerate() {
        let share = 100.0 * got[i] as f64 / sum as f64;
        assert!(
            (share - want).abs() <= 5.0,
            "{what}: {} has {share:.1} % of the samples under {path} (want {want} ± 5): {got:?}",
            leaves[i]
        );
    }
    eprintln!("{what}: {got:?} of {total} samples");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stacks_without_frame_pointers_unwind_through_c_rust_and_libc() {
    let dir = tempfile::tempdir().unwrap();
    let built = build(dir.path());
    if !common::tool_or_skip("CC", built.as_ref().map(|_| ()).map_err(Clone::clone)) {
        return;
    }
    let (c, rs) = built.unwrap();
    let config = dir.path().join("config.yaml");
    std::fs::write(
        &config,
        "scrape_configs: []\n\
         collector: {frequency_hz: 99, interval: 2s, off_cpu: {sample_ratio: 1.0}}\n",
    )
    .unwrap();
    let server = Strata::start_with(&dir.path().join("data"), Some(&config), true);
    let addr = server.addr;
    if !common::collector_started(addr).await {
        return;
    }

    let shares = spawn(&c, "shares");
    let sorter = spawn(&c, "qsort");
    let rust = spawn(&rs, "");
    let sleeper = spawn(&c, "sleep");
    let python = std::fs::read_link("/usr/bin/python3")
        .is_ok_and(|p| p.to_string_lossy().contains("python3.11"));
    let python = common::tool_or_skip(
        "PYTHON",
        match python {
            true => Ok(()),
            false => Err("/usr/bin/python3 is not Debian's python3.11".to_owned()),
        },
    )
    .then(|| {
        Killed(
            Command::new("/usr/bin/python3")
                .arg("workload.py")
                .current_dir(format!("{FIXTURES}/../python"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        )
    });
    let python_pid = python.as_ref().map(|p| p.0.id());
    COUNTED_FROM
        .set(strata_engine::now_ns() / 1_000_000 + 5_000)
        .unwrap();
    let (shares_pid, sorter_pid, rust_pid) = (shares.0.id(), sorter.0.id(), rust.0.id());
    let sleeper_pid = sleeper.0.id();
    tokio::time::sleep(Duration::from_secs(20)).await;
    drop((shares, sorter, rust, sleeper, python));
    // The last interval reaches the store within one interval (2 s) of the programs' end.
    let mut last = 0;
    wait_for("the last interval stored", async || {
        let n: i64 = folded(addr, rust_pid).await.values().sum();
        let settled = n > 0 && n == last;
        last = n;
        if !settled {
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
        settled
    })
    .await;

    let (_, metrics) = common::get(addr, "/metrics").await;
    let unwind: Vec<&str> = metrics
        .lines()
        .filter(|l| {
            l.starts_with("strata_collector_unwind") || l.starts_with("strata_collector_off_cpu")
        })
        .collect();
    eprintln!("{unwind:#?}");
    let leaves = ["work_a", "work_b", "work_c"];
    check_shares(
        "C, clang -O2 -fomit-frame-pointer",
        &folded(addr, shares_pid).await,
        "main;caller",
        leaves,
    );
    check_shares(
        "Rust release build",
        &folded(addr, rust_pid).await,
        "workload::main;caller",
        leaves,
    );
    let sorted = folded(addr, sorter_pid).await;
    let total: i64 = sorted.values().sum();
    let through: i64 = sorted
        .iter()
        .filter(|(s, _)| {
            s.split_once("main;sort_caller;qsort")
                .is_some_and(|(_, below)| below.contains(";compare"))
        })
        .map(|(_, n)| n)
        .sum();
    let mut top: Vec<_> = sorted.iter().collect();
    top.sort_by_key(|(_, n)| std::cmp::Reverse(**n));
    top.truncate(6);
    assert!(
        total >= 300 && through as f64 >= 0.85 * total as f64,
        "qsort: {through} of {total} samples walk main;sort_caller;qsort;…;compare: {top:#?}"
    );
    eprintln!("qsort: {through} of {total} samples through libc");

    // Off-CPU: the sleeping function holds the blocked time, the computing one the CPU.
    let holding = |stacks: &BTreeMap<String, i64>, function: &str| -> f64 {
        let total: i64 = stacks.values().sum();
        let with: i64 = stacks
            .iter()
            .filter(|(s, _)| s.split(';').any(|f| f == function))
            .map(|(_, v)| v)
            .sum();
        100.0 * with as f64 / total.max(1) as f64
    };
    let off = folded_of(
        addr,
        strata_collector_ebpf::OFF_CPU_PROFILE_TYPE,
        sleeper_pid,
    )
    .await;
    let blocked_s = off.values().sum::<i64>() as f64 / 1e9;
    let sleeping = holding(&off, "sleeper");
    assert!(
        blocked_s >= 5.0 && sleeping >= 85.0,
        "off-CPU: {blocked_s:.1} s blocked, {sleeping:.1} % in sleeper: {off:#?}"
    );
    let cpu = folded(addr, sleeper_pid).await;
    let computing = holding(&cpu, "computer");
    assert!(
        cpu.values().sum::<i64>() >= 50 && computing >= 85.0,
        "CPU: {computing:.1} % in computer: {cpu:#?}"
    );
    eprintln!(
        "sleep/compute: {blocked_s:.1} s blocked, {sleeping:.1} % in sleeper; {computing:.1} % of the CPU in computer"
    );

    // Python: the three `work`s told apart by file, under caller, 6:3:1.
    if let Some(pid) = python_pid {
        let profile = pprof_of(addr, &format!("{{comm=\"python3\",pid=\"{pid}\"}}")).await;
        let (by_function, total) = under_caller(&profile);
        let sum: i64 = by_function.values().sum();
        assert!(
            total >= 300 && sum as f64 >= 0.85 * total as f64,
            "python: {sum} of {total} samples under caller: {by_function:?}"
        );
        for (module, want) in [("mod_a.py", 60.0), ("mod_b.py", 30.0), ("mod_c.py", 10.0)] {
            let got = by_function
                .get(&("work".to_owned(), module.to_owned()))
                .copied()
                .unwrap_or(0);
            let share = 100.0 * got as f64 / sum as f64;
            assert!(
                (share - want).abs() <= 7.0,
                "python: work in {module} has {share:.1} % (want {want} ± 7): {by_function:?}"
            );
        }
        eprintln!("python: {by_function:?} of {total} samples");
    }

    let (_, metrics) = common::get(addr, "/metrics").await;
    let value = |name: &str| -> f64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {name} in /metrics"))
    };
    assert!(value("strata_collector_unwind_table_bytes") > 0.0);
    assert!(value("strata_collector_unwind_files") >= 2.0);
    assert!(value("strata_collector_unwind_process_bytes") > 0.0);
    assert!(value("strata_collector_unwind_stops_total{reason=\"end\"}") > 0.0);
    drop(server);
}
