//! The collector against real processes on this kernel (needs root). Fails where the kernel
//! refuses BPF unless `STRATA_SKIP_EBPF=1`, without clang for the C workload unless
//! `STRATA_SKIP_CC=1`, and without `go` for the Go workload unless `STRATA_SKIP_GO=1`.
//!
//! Two workloads, each run as two instances: `busy` spends 50 / 30 / 20 % of its CPU in three
//! leaves all called from one parent called from main; `syscalls` loops on write(2). At 99 Hz
//! the sampler must find each share within ±5 points, the main -> parent -> leaf order, and
//! kernel frames under the syscall loop joined to its user stack.
//!
//! - C (`fixtures/busy.c`, built here with clang and frame pointers): `leaf_a` / `leaf_b` /
//!   `leaf_c` under `parent` under `main`.
//! - Go (`fixtures/busy_go`, built here with `go build`; Go keeps frame pointers on amd64):
//!   `main.leafA` / `main.leafB` / `main.leafC` under `main.parent` under `main.main`, named
//!   from the Go binary's ELF symbol table. The runtime's own threads (sysmon, GC) run beside
//!   the workload's goroutine, so shares are over the samples under `main.parent`.
//!
//! Each workload is checked through both transports ([`Transport::RingBuffer`] and
//! [`Transport::Map`], the same checks on the profiles); with the map, the sampler must also
//! have read fewer records than samples (they were counted in the kernel).
//!
//! The tests sample one after the other (the host has few cores and the shares need samples,
//! not contention); the builds run before taking the turn.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::Mutex;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use strata_collector_ebpf::{
    Frame, IntervalProfiles, ProcessProfile, Sampler, SamplerConfig, Transport,
};

/// Taken by each test for its sampling.
static SAMPLING: Mutex<()> = Mutex::new(());

struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Builds `fixtures/busy.c` with clang; `None` when there is none and `STRATA_SKIP_CC=1`.
fn build_c_workload(dir: &Path) -> Option<PathBuf> {
    if !common::have("clang", "STRATA_SKIP_CC") {
        return None;
    }
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/busy.c");
    let out = dir.join("busy");
    let status = Command::new("clang")
        .args([
            "-O2",
            "-fno-omit-frame-pointer",
            "-mno-omit-leaf-frame-pointer",
            "-o",
        ])
        .arg(&out)
        .arg(&src)
        .status()
        .expect("running clang");
    assert!(status.success());
    Some(out)
}

/// Builds `fixtures/busy_go` with the `go` on PATH; `None` when there is none and
/// `STRATA_SKIP_GO=1`.
fn build_go_workload(dir: &Path) -> Option<PathBuf> {
    if !common::have("go", "STRATA_SKIP_GO") {
        return None;
    }
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/busy_go");
    let out = dir.join("busy_go");
    let mut go = Command::new("go");
    go.args(["build", "-o"])
        .arg(&out)
        .arg(".")
        .current_dir(&src)
        .env("GOTOOLCHAIN", "local")
        .env("CGO_ENABLED", "0");
    // `go` needs a build cache; use the user's when there is one.
    if ["GOCACHE", "XDG_CACHE_HOME", "HOME"]
        .iter()
        .all(|v| std::env::var_os(v).is_none())
    {
        go.env("GOCACHE", dir.join("gocache"));
    }
    let built = go.output().expect("running go");
    assert!(
        built.status.success(),
        "go build: {}",
        String::from_utf8_lossy(&built.stderr)
    );
    Some(out)
}

/// Starts the sampler at 99 Hz with `transport`; `None` when the kernel refuses BPF and
/// `STRATA_SKIP_EBPF=1`.
fn start_sampler(transport: Transport) -> Option<Sampler> {
    let config = SamplerConfig {
        frequency_hz: 99,
        interval: Duration::from_secs(600),
        poll_interval: Duration::from_millis(50),
        transport,
        ..Default::default()
    };
    let sampler = common::bpf(Sampler::start(config))?;
    assert_eq!(sampler.config().transport, transport);
    Some(sampler)
}

/// Function names of the user frames, leaf first.
fn user_names(frames: &[Frame]) -> Vec<&str> {
    frames
        .iter()
        .filter(|f| !f.kernel)
        .map(|f| f.function.as_deref().unwrap_or("?"))
        .collect()
}

/// Samples of the stacks of process `pid` that `counted` accepts.
fn count_of(profiles: &[IntervalProfiles], pid: u32, counted: impl Fn(&[Frame]) -> bool) -> u64 {
    profiles
        .iter()
        .flat_map(|p| &p.processes)
        .filter(|p| p.pid == pid)
        .flat_map(|p| &p.stacks)
        .filter(|(frames, _)| counted(frames))
        .map(|(_, n)| n)
        .sum()
}

/// Samples for at least 4 s and until process `pid` has 600 samples `counted` accepts (the
/// host may be shared with builds), at most 55 s. Closing intervals is what symbolizes, so the
/// count is checked on intervals of ~0.5 s.
fn sample(
    sampler: &mut Sampler,
    pid: u32,
    counted: impl Fn(&[Frame]) -> bool,
) -> Vec<IntervalProfiles> {
    let start = Instant::now();
    let mut profiles = Vec::new();
    let mut n = 0;
    loop {
        std::thread::sleep(Duration::from_millis(50));
        sampler.poll();
        if start.elapsed() >= Duration::from_secs(2) {
            let p = sampler.finish_interval();
            n += count_of(std::slice::from_ref(&p), pid, &counted);
            profiles.push(p);
            if (start.elapsed() >= Duration::from_secs(4) && n >= 600)
                || start.elapsed() > Duration::from_secs(55)
            {
                break;
            }
            std::thread::sleep(Duration::from_millis(450));
        }
    }
    eprintln!("sampled for {:.1} s", start.elapsed().as_secs_f64());
    profiles
}

/// The profiles of `pid` after it exec'd `exe`: samples taken between fork and exec run
/// the test's own code and carry its thread's comm, in a generation of their own.
fn of<'a>(profiles: &'a [IntervalProfiles], pid: u32, exe: &Path) -> Vec<&'a ProcessProfile> {
    let comm = exe.file_name().unwrap().to_str().unwrap();
    profiles
        .iter()
        .flat_map(|p| &p.processes)
        .filter(|p| p.pid == pid && p.label("comm") == Some(comm))
        .collect()
}

/// The names a workload's stacks must show.
struct Names {
    main: &'static str,
    parent: &'static str,
    leaves: [&'static str; 3],
    /// The user frame under the syscall loop's kernel frames.
    syscall_caller: &'static str,
}

/// Checks the labels, the 50 / 30 / 20 % shares of the leaves among the samples under the
/// parent and the main -> parent -> leaf order; returns the share of all the process's
/// samples that were under the parent.
fn check_busy(busy: &[&ProcessProfile], pid: u32, exe: &Path, names: &Names) -> f64 {
    assert!(!busy.is_empty(), "no samples of the busy process");
    let comm = exe.file_name().unwrap().to_str().unwrap();
    assert_eq!(busy[0].label("comm"), Some(comm));
    assert_eq!(
        busy[0].label("executable"),
        Some(exe.to_str().unwrap()),
        "labels: {:?}",
        busy[0].labels
    );
    assert_eq!(busy[0].label("pid"), Some(pid.to_string().as_str()));
    let all: u64 = busy.iter().map(|p| p.total()).sum();
    let mut total = 0u64;
    let mut leaf = [0u64; 3];
    let mut ordered = 0u64;
    let mut with_build_id = 0u64;
    let mut other = BTreeMap::<String, u64>::new();
    for (frames, count) in busy.iter().flat_map(|p| &p.stacks) {
        let user = user_names(frames);
        if !user.contains(&names.parent) {
            *other.entry(user.join(" <- ")).or_default() += count;
            continue;
        }
        total += count;
        for (i, want) in names.leaves.iter().enumerate() {
            if let Some(pos) = user.iter().position(|n| n == want) {
                leaf[i] += count;
                if user.get(pos + 1) == Some(&names.parent)
                    && user.get(pos + 2) == Some(&names.main)
                {
                    ordered += count;
                }
            }
        }
        if frames
            .iter()
            .filter(|f| !f.kernel)
            .take(1)
            .all(|f| f.mapping.as_ref().is_some_and(|m| !m.build_id.is_empty()))
        {
            with_build_id += count;
        }
    }
    let share = |n: u64| 100.0 * n as f64 / total as f64;
    let shares = leaf.map(share);
    let in_leaves: u64 = leaf.iter().sum();
    eprintln!(
        "busy: {all} samples, {total} under {}; {} {:.1} %, {} {:.1} %, {} {:.1} %; {} -> {} -> leaf order in {:.1} % of leaf samples; leaf in a mapping with a build id in {:.1} %",
        names.parent,
        names.leaves[0],
        shares[0],
        names.leaves[1],
        shares[1],
        names.leaves[2],
        shares[2],
        names.main,
        names.parent,
        100.0 * ordered as f64 / in_leaves as f64,
        share(with_build_id),
    );
    let mut other: Vec<_> = other.into_iter().collect();
    other.sort_by_key(|s| std::cmp::Reverse(s.1));
    eprintln!(
        "busy: top stacks not under {}: {:?}",
        names.parent,
        &other[..other.len().min(4)]
    );
    assert!(total > 0, "no stack reaches {}: {other:?}", names.parent);
    for (got, want) in shares.iter().zip([50.0, 30.0, 20.0]) {
        assert!(
            (got - want).abs() <= 5.0,
            "shares {shares:?} of {:?} vs 50/30/20 (±5)",
            names.leaves
        );
    }
    assert!(
        in_leaves as f64 >= 0.95 * total as f64,
        "only {in_leaves} of the {total} samples under {} are in a leaf",
        names.parent
    );
    assert!(
        ordered as f64 >= 0.95 * in_leaves as f64,
        "main -> parent -> leaf order in only {ordered} of {leaf:?} samples"
    );
    100.0 * total as f64 / all as f64
}

/// Checks that the syscall loop's samples have kernel frames, a write among them, and user
/// stacks joined under them.
fn check_syscalls(sys: &[&ProcessProfile], names: &Names) {
    let sys_total: u64 = sys.iter().map(|p| p.total()).sum();
    let mut kernel = 0u64;
    let mut kernel_named = BTreeMap::<String, u64>::new();
    let mut under_loop = 0u64;
    for (frames, count) in sys.iter().flat_map(|p| &p.stacks) {
        if frames.iter().any(|f| f.kernel) {
            kernel += count;
            for f in frames.iter().filter(|f| f.kernel) {
                if let Some(name) = &f.function {
                    *kernel_named.entry(name.to_string()).or_default() += count;
                }
            }
            if user_names(frames).contains(&names.syscall_caller) {
                under_loop += count;
            }
        }
    }
    let mut top: Vec<_> = kernel_named.iter().collect();
    top.sort_by(|a, b| b.1.cmp(a.1));
    eprintln!(
        "syscalls: {sys_total} samples, {kernel} with kernel frames ({under_loop} of them joined to a user stack reaching {}); top kernel functions {:?}",
        names.syscall_caller,
        &top[..top.len().min(6)]
    );
    assert!(sys_total >= 20, "too few samples of the syscall loop");
    assert!(
        kernel as f64 >= 0.3 * sys_total as f64,
        "kernel frames in only {kernel} of {sys_total} samples"
    );
    assert!(
        kernel_named
            .keys()
            .any(|k| k.contains("sys_write") || k.contains("vfs_write")),
        "no write syscall among kernel frames: {top:?}"
    );
    assert!(
        under_loop > 0,
        "kernel stacks are not joined to the user stack"
    );
}

/// Checks what came through the sampler's transport: samples at all, and with the map fewer
/// records than samples (counted in the kernel), with the ring buffer one record per sample.
fn check_transport(sampler: &Sampler) {
    let transport = sampler.config().transport;
    let stats = sampler.stats();
    let samples = stats.samples.load(Ordering::Relaxed);
    let records = stats.records.load(Ordering::Relaxed);
    let drops = stats.drops.load(Ordering::Relaxed);
    eprintln!("{transport}: {samples} samples in {records} records, {drops} dropped");
    assert!(samples > 0, "{transport}: no samples came through");
    match transport {
        Transport::RingBuffer => assert_eq!(records, samples),
        Transport::Map => assert!(
            records < samples,
            "map: {records} records for {samples} samples: nothing counted in the kernel"
        ),
    }
}

/// Runs `exe busy 60` and `exe syscalls 4` under the sampler, checks both, and returns the
/// share of the busy process's samples that were under the parent. (The syscall loop needs
/// few samples; stopping it early leaves the busy one more CPU on a loaded host.)
fn run_workload(sampler: &mut Sampler, exe: &Path, names: &Names) -> f64 {
    let busy = KillOnDrop(Command::new(exe).args(["busy", "60"]).spawn().unwrap());
    let sys = KillOnDrop(Command::new(exe).args(["syscalls", "4"]).spawn().unwrap());
    let (busy_pid, sys_pid) = (busy.0.id(), sys.0.id());
    let profiles = sample(sampler, busy_pid, |frames| {
        user_names(frames).contains(&names.parent)
    });
    drop(busy);
    drop(sys);
    check_transport(sampler);
    let under_parent = check_busy(&of(&profiles, busy_pid, exe), busy_pid, exe, names);
    check_syscalls(&of(&profiles, sys_pid, exe), names);
    // The whole interval converts to an engine batch.
    let batch = profiles.last().unwrap().to_batch().unwrap();
    assert!(batch.num_samples() > 0);
    under_parent
}

/// The C workload through `transport`.
fn c_workload(transport: Transport) {
    let dir = tempfile::tempdir().unwrap();
    let Some(exe) = build_c_workload(dir.path()) else {
        return;
    };
    let _turn = SAMPLING.lock().unwrap_or_else(|e| e.into_inner());
    let Some(mut sampler) = start_sampler(transport) else {
        return;
    };
    let names = Names {
        main: "main",
        parent: "parent",
        leaves: ["leaf_a", "leaf_b", "leaf_c"],
        // libc's write() keeps no frame pointer of its own, but its .eh_frame rows walk
        // through it to its caller.
        syscall_caller: "syscall_loop",
    };
    let under_parent = run_workload(&mut sampler, &exe, &names);
    // One thread: next to nothing runs outside parent.
    assert!(
        under_parent >= 90.0,
        "only {under_parent:.1} % of the samples under parent"
    );
}

/// The Go workload through `transport`.
fn go_workload(transport: Transport) {
    let dir = tempfile::tempdir().unwrap();
    let Some(exe) = build_go_workload(dir.path()) else {
        return;
    };
    let _turn = SAMPLING.lock().unwrap_or_else(|e| e.into_inner());
    let Some(mut sampler) = start_sampler(transport) else {
        return;
    };
    let names = Names {
        main: "main.main",
        parent: "main.parent",
        leaves: ["main.leafA", "main.leafB", "main.leafC"],
        syscall_caller: "main.syscallLoop",
    };
    let under_parent = run_workload(&mut sampler, &exe, &names);
    // The runtime's threads take a little beside the workload's goroutine.
    assert!(
        under_parent >= 80.0,
        "only {under_parent:.1} % of the samples under main.parent"
    );
}

#[test]
fn finds_cpu_shares_call_order_and_kernel_frames() {
    c_workload(Transport::RingBuffer);
}

#[test]
fn finds_cpu_shares_call_order_and_kernel_frames_through_the_map() {
    c_workload(Transport::Map);
}

#[test]
fn finds_go_cpu_shares_call_order_and_kernel_frames() {
    go_workload(Transport::RingBuffer);
}

#[test]
fn finds_go_cpu_shares_call_order_and_kernel_frames_through_the_map() {
    go_workload(Transport::Map);
}
