//! User stacks without frame pointers, walked in the kernel with `.eh_frame` rows: a C program
//! built with `clang -O2 -fomit-frame-pointer` (6:3:1 between three functions under one
//! caller; a `qsort` comparator burning CPU under Debian's libc) and a Rust release build
//! (6:3:1 again), sampled together; each must come out as main → caller → leaf with the
//! shares of the program, and its walks must end at the outermost frame. A SIGPROF handler's
//! stacks must walk through the kernel's signal frame back to the interrupted function.
//!
//! Needs root (or CAP_BPF + CAP_PERFMON), clang and rustc (`STRATA_SKIP_EBPF`,
//! `STRATA_SKIP_CC` skip).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use strata_collector_ebpf::{CfaRule, IntervalProfiles, UNWIND_STOPS, compile_elf};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/unwind");

/// Builds the C and Rust workloads into `dir`: (C binary, Rust binary).
fn build(dir: &Path) -> Option<(PathBuf, PathBuf)> {
    if !common::have("clang", "STRATA_SKIP_CC") || !common::have("rustc", "STRATA_SKIP_CC") {
        return None;
    }
    let c = dir.join("workload");
    let rs = dir.join("workload_rs");
    let run = |cmd: &mut Command| {
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "{cmd:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(Command::new("clang")
        .args(["-O2", "-fomit-frame-pointer", "-o"])
        .arg(&c)
        .arg(format!("{FIXTURES}/workload.c")));
    run(Command::new("rustc")
        .args(["-C", "opt-level=3", "-o"])
        .arg(&rs)
        .arg(format!("{FIXTURES}/workload.rs")));
    Some((c, rs))
}

struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
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

/// Folded user stacks (root first, `;`-joined function names) of process `pid` with their
/// sample counts.
fn folded(profiles: &[IntervalProfiles], pid: u32) -> Vec<(String, u64)> {
    profiles
        .iter()
        .flat_map(|p| &p.processes)
        .filter(|p| p.pid == pid)
        .flat_map(|p| &p.stacks)
        .map(|(frames, n)| {
            let mut names: Vec<&str> = frames
                .iter()
                .filter(|f| !f.kernel)
                .map(|f| f.function.as_deref().unwrap_or("?"))
                .collect();
            names.reverse();
            (names.join(";"), *n)
        })
        .collect()
}

/// Checks that `stacks` hold `path;leaf` for the three leaves in shares 60/30/10 (within 5
/// points) and that nearly every sample passes through `path`.
fn check_shares(what: &str, stacks: &[(String, u64)], path: &str, leaves: [&str; 3]) {
    let total: u64 = stacks.iter().map(|(_, n)| n).sum();
    let mut under = [0u64; 3];
    for (stack, n) in stacks {
        for (i, leaf) in leaves.iter().enumerate() {
            if stack.contains(&format!("{path};{leaf}")) {
                under[i] += n;
            }
        }
    }
    let sum: u64 = under.iter().sum();
    let mut top: Vec<_> = stacks.to_vec();
    top.sort_by_key(|(_, n)| std::cmp::Reverse(*n));
    top.truncate(8);
    assert!(
        total >= 200 && sum as f64 >= 0.85 * total as f64,
        "{what}: {sum} of {total} samples under {path}; top stacks: {top:#?}"
    );
    for (i, want) in [60.0, 30.0, 10.0].into_iter().enumerate() {
        let got = 100.0 * under[i] as f64 / sum as f64;
        assert!(
            (got - want).abs() <= 5.0,
            "{what}: {} has {got:.1} % (want {want} ± 5): {under:?}",
            leaves[i]
        );
    }
    eprintln!("{what}: {under:?} of {total} samples");
}

#[test]
fn compiles_libc_rows_with_plt_and_signal_frames() {
    let libc = std::fs::read("/lib/x86_64-linux-gnu/libc.so.6").unwrap();
    let rows = compile_elf(&*libc).unwrap();
    assert!(rows.len() > 10_000, "{} rows", rows.len());
    let kinds = |f: fn(&CfaRule) -> bool| rows.iter().filter(|(_, r)| f(&r.cfa)).count();
    assert!(
        kinds(|c| matches!(c, CfaRule::Signal)) >= 1,
        "no signal frame row"
    );
    assert!(
        kinds(|c| matches!(c, CfaRule::Plt { .. })) >= 1,
        "no PLT row"
    );
    assert!(kinds(|c| matches!(c, CfaRule::Rsp(_))) > 5_000);
    let unsupported = kinds(|c| matches!(c, CfaRule::Unsupported));
    assert!(
        unsupported * 1000 < rows.len(),
        "{unsupported} unsupported rows"
    );
    // Sorted, strictly increasing pcs.
    let all: Vec<_> = rows.iter().collect();
    assert!(all.windows(2).all(|w| w[0].0 < w[1].0));
}

#[test]
fn walks_c_rust_and_libc_stacks_without_frame_pointers() {
    let dir = tempfile::tempdir().unwrap();
    let Some((c, rs)) = build(dir.path()) else {
        return;
    };
    let Some(mut sampler) = common::sampler_99hz(|_| {}) else {
        return;
    };
    let shares = spawn(&c, "shares");
    let sorter = spawn(&c, "qsort");
    let rust = spawn(&rs, "");
    // Beside them, as on a real host: a process of the same binary that sleeps and computes
    // (off-CPU walks of the same tables), and an interpreter.
    let sleeper = spawn(&c, "sleep");
    let signalled = spawn(&c, "signal");
    let python = Command::new("/usr/bin/python3")
        .arg("workload.py")
        .current_dir(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/python"
        ))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()
        .map(Killed);
    let pids = [shares.0.id(), sorter.0.id(), rust.0.id(), signalled.0.id()];
    common::warm_up(&mut sampler, 3);
    let start = Instant::now();
    let mut profiles = Vec::new();
    while start.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(50));
        sampler.poll();
        if profiles.len() < (start.elapsed().as_secs() as usize) {
            profiles.push(sampler.finish_interval());
        }
    }
    sampler.poll();
    profiles.push(sampler.finish_interval());
    drop((shares, sorter, rust, sleeper, signalled, python));
    let stats = sampler.stats();
    let stops: Vec<(&str, u64)> = UNWIND_STOPS
        .iter()
        .zip(&stats.unwind.stops)
        .map(|(r, n)| (*r, n.load(Ordering::Relaxed)))
        .collect();
    eprintln!(
        "unwind stops {stops:?}; {} files, {} bytes of rows",
        stats.unwind.files.load(Ordering::Relaxed),
        stats.unwind.table_bytes.load(Ordering::Relaxed)
    );

    check_shares(
        "C -O2 -fomit-frame-pointer",
        &folded(&profiles, pids[0]),
        "main;caller",
        ["work_a", "work_b", "work_c"],
    );
    check_shares(
        "Rust release",
        &folded(&profiles, pids[2]),
        "caller",
        ["work_a", "work_b", "work_c"],
    );
    // qsort: the comparator under libc's sort, under the program's caller and main.
    let sorted = folded(&profiles, pids[1]);
    let total: u64 = sorted.iter().map(|(_, n)| n).sum();
    let through: u64 = sorted
        .iter()
        .filter(|(s, _)| {
            s.contains("main;sort_caller;qsort") && s.ends_with("compare")
                || s.contains("main;sort_caller;qsort") && s.contains(";compare;")
        })
        .map(|(_, n)| n)
        .sum();
    assert!(
        total >= 200 && through as f64 >= 0.85 * total as f64,
        "qsort: {through} of {total} samples walk main;sort_caller;qsort;…;compare: {sorted:#?}"
    );
    // A signal handler's stacks pass through the signal frame to the interrupted code.
    let signal = folded(&profiles, pids[3]);
    let in_handler: u64 = signal
        .iter()
        .filter(|(s, _)| s.ends_with(";handler_work"))
        .map(|(_, n)| n)
        .sum();
    let through: u64 = signal
        .iter()
        .filter(|(s, _)| s.ends_with(";handler_work") && s.contains("main;interrupted;"))
        .map(|(_, n)| n)
        .sum();
    // At least 10: under heavy CPU contention the process gets few samples (132 in 10 s once,
    // 13 of them in the handler).
    assert!(
        in_handler >= 10 && through as f64 >= 0.85 * in_handler as f64,
        "signal: {through} of {in_handler} handler samples reach main;interrupted: {signal:#?}"
    );
    eprintln!("signal: {through} of {in_handler} handler samples through the signal frame");
    // Most walks ended at the outermost frame (the counters are the whole host's: other
    // processes, JIT code among them, stop for their own reasons).
    let all: u64 = stops.iter().map(|(_, n)| n).sum();
    assert!(stops[0].1 as f64 >= 0.5 * all as f64, "{stops:?}");
}
