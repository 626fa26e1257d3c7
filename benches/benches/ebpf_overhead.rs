//! What whole-host profiling costs: a fixed CPU-bound workload (`benches/overhead/spin.c`, one
//! thread per CPU) timed alone, under `strata agent` (the eBPF collector, pushing to a
//! `strata server --no-collector` on this host) at 19, 99 and 999 Hz through each transport
//! (`--transport ring_buffer` and `--transport map`), and under `perf record -F 19 -a -g`,
//! rounds interleaved. Reported per mode: the workload's median wall time and slow-down against
//! running alone, the profiler's CPU time (seconds, summed over its threads' run times in
//! `/proc/<pid>/task/*/schedstat`, and as a share of the host: CPU-seconds / (wall seconds x
//! CPUs)) and its peak RSS (`VmHWM`); for the agent also the time spent in its
//! BPF program (charged to the interrupted tasks, not to the agent): per sample and as a share
//! of the host, from the program's `run_time_ns` / `run_cnt` in `/proc/<agent>/fdinfo` with
//! `kernel.bpf_stats_enabled` switched on for the run (and restored after).
//!
//! When the workload runs longer than 8 s, the agent closes its first 10 s interval
//! (symbolizing everything sampled so far, reading symbol tables, pushing) inside the timed run,
//! so its CPU figure includes that work, which varies with what else ran on the host. To compare
//! the transports themselves, the agent also runs "polling only" (`--interval 1h`): during the
//! timed run it only reads the samples from the kernel every 100 ms and aggregates them (and
//! reads `/proc` for new processes).
//!
//! ```sh
//! CARGO_TARGET_DIR=/work/target-bench cargo build --release -p strata-server
//! CARGO_TARGET_DIR=/work/target-bench cargo bench -p strata-benches --bench ebpf_overhead
//! ```
//!
//! `STRATA_BIN` (default: `strata` next to this bench's build directory), `STRATA_BENCH_OVERHEAD_SECS`
//! (workload length alone, default 10), `STRATA_BENCH_OVERHEAD_ROUNDS` (default 3),
//! `STRATA_BENCH_OVERHEAD_FILTER` (run only the profiler modes whose name contains it, e.g.
//! `polling only, 999 Hz`; the workload alone always runs), `STRATA_BENCH_OVERHEAD_PART`
//! (`spin`, `fp-less` or both, the default: see `ebpf_overhead/fp_less_load.rs` for the
//! second part, the collector with CFI unwinding and off-CPU on against 20 processes without
//! frame pointers, next to `perf record --call-graph dwarf`). Needs root
//! (BPF and system-wide perf events), clang and perf; whatever is missing is skipped with a
//! message. Under `cargo test` it runs once, short, and judges nothing.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

#[path = "ebpf_overhead/fp_less_load.rs"]
mod fp_less_load;

/// A profiler running next to the workload.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Mode {
    Alone,
    /// The agent at this frequency, with this `--transport`; polling only (no interval closed
    /// during the run) when the flag is set.
    Agent(u64, &'static str, bool),
    Perf(u64),
}

impl Mode {
    fn name(self) -> String {
        match self {
            Mode::Alone => "workload alone".into(),
            Mode::Agent(hz, transport, false) => format!("strata agent, {hz} Hz, {transport}"),
            Mode::Agent(hz, transport, true) => {
                format!("  polling only, {hz} Hz, {transport}")
            }
            Mode::Perf(hz) => format!("perf record -F {hz} -a -g"),
        }
    }
}

/// One timed run.
struct Run {
    wall: Duration,
    /// The profiler's CPU seconds during the workload.
    profiler_cpu: f64,
    /// The profiler's peak RSS in bytes.
    profiler_hwm: u64,
    /// Nanoseconds in the profiler's BPF programs and their runs during the workload.
    bpf: Option<(u64, u64)>,
}

/// `run_time_ns` and `run_cnt` summed over the BPF programs process `pid` holds (from
/// `/proc/<pid>/fdinfo`; counted while `kernel.bpf_stats_enabled` is 1).
fn bpf_run_time(pid: u32) -> Option<(u64, u64)> {
    let mut seen = std::collections::HashSet::new();
    let mut total = None;
    for fd in std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.flatten() {
        let is_prog =
            std::fs::read_link(fd.path()).is_ok_and(|l| l.to_string_lossy().contains("bpf-prog"));
        if !is_prog {
            continue;
        }
        let Ok(info) = std::fs::read_to_string(format!(
            "/proc/{pid}/fdinfo/{}",
            fd.file_name().to_string_lossy()
        )) else {
            continue;
        };
        let field = |name: &str| -> Option<u64> {
            info.lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
                .and_then(|v| v.trim().parse().ok())
        };
        if let (Some(id), Some(ns), Some(cnt)) =
            (field("prog_id"), field("run_time_ns"), field("run_cnt"))
            && seen.insert(id)
        {
            let (t, c) = total.unwrap_or((0, 0));
            total = Some((t + ns, c + cnt));
        }
    }
    total
}

const BPF_STATS: &str = "/proc/sys/kernel/bpf_stats_enabled";

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

/// CPU seconds of a process: the sum of its threads' run times in nanoseconds
/// (`/proc/<pid>/task/*/schedstat`, first field), else user + system time from
/// `/proc/<pid>/stat` (in clock ticks, 10 ms: too coarse for the agent's few milliseconds per
/// second). Threads that have exited are not in the sum; the agent's are long-lived.
fn cpu_seconds(pid: u32, ticks: f64) -> Option<f64> {
    let mut ns = 0u64;
    if let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) {
        for task in tasks.flatten() {
            let run = std::fs::read_to_string(task.path().join("schedstat"))
                .ok()
                .and_then(|s| s.split_whitespace().next()?.parse::<u64>().ok());
            ns += run.unwrap_or(0);
        }
    }
    if ns > 0 {
        return Some(ns as f64 / 1e9);
    }
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / ticks)
}

/// Peak resident set size in bytes, from `/proc/<pid>/status`.
fn peak_rss(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

fn signal(child: &Child, sig: &str) {
    let _ = Command::new("kill")
        .args([format!("-{sig}"), child.id().to_string()])
        .status();
}

/// Waits up to `timeout` for a line containing `needle` on the child's stderr; the rest of the
/// stream is drained in the background.
fn wait_for_line(child: &mut Child, needle: &'static str, timeout: Duration) -> bool {
    let stderr = child.stderr.take().expect("piped stderr");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains(needle) {
                let _ = tx.send(());
            }
        }
    });
    rx.recv_timeout(timeout).is_ok()
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn spin(bin: &Path, threads: usize, iterations: u64) -> Duration {
    let t0 = Instant::now();
    let status = Command::new(bin)
        .args([threads.to_string(), iterations.to_string()])
        .status()
        .expect("running the workload");
    assert!(status.success(), "workload failed: {status}");
    t0.elapsed()
}

/// Starts the profiler of `mode`; `None` with a reason when it cannot run here.
fn start(mode: Mode, strata: &Path, store: &str, dir: &Path) -> Result<Option<Child>, String> {
    match mode {
        Mode::Alone => Ok(None),
        Mode::Agent(hz, transport, polling_only) => {
            let mut child = Command::new(strata)
                .args(["agent", "--remote-store", store, "--frequency"])
                .arg(hz.to_string())
                .args(["--transport", transport])
                .args(["--interval", if polling_only { "1h" } else { "10s" }])
                .env("RUST_LOG", "info")
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .map_err(|e| format!("cannot start {}: {e}", strata.display()))?;
            if !wait_for_line(&mut child, "strata agent running", Duration::from_secs(60)) {
                let _ = child.kill();
                let _ = child.wait();
                return Err("strata agent did not start (BPF refused?)".into());
            }
            Ok(Some(child))
        }
        Mode::Perf(hz) => {
            let child = Command::new("perf")
                .args(["record", "-q", "-F", &hz.to_string(), "-a", "-g", "-o"])
                .arg(dir.join("perf.data"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .map_err(|e| format!("cannot start perf: {e}"))?;
            Ok(Some(child))
        }
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let secs = env_or("STRATA_BENCH_OVERHEAD_SECS", if bench { 10 } else { 1 });
    let rounds = env_or("STRATA_BENCH_OVERHEAD_ROUNDS", if bench { 3 } else { 1 }).max(1);
    let strata = strata_binary();
    if !strata.exists() {
        println!(
            "skipped: no strata binary at {} (cargo build --release -p strata-server, or set STRATA_BIN)",
            strata.display()
        );
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let spin_bin = dir.path().join("spin");
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("overhead/spin.c");
    let built = Command::new("clang")
        .args(["-O2", "-fno-omit-frame-pointer", "-pthread", "-o"])
        .arg(&spin_bin)
        .arg(&src)
        .status();
    if !built.is_ok_and(|s| s.success()) {
        println!("skipped: clang could not build {}", src.display());
        return;
    }
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let ticks = clock_ticks();

    // The server the agent pushes to (its cost is not the agent's; it is reported apart).
    let (mut server, store) = start_server(&strata, dir.path());

    // Calibrate: iterations for `secs` seconds alone.
    let probe = 20_000u64;
    let t = spin(&spin_bin, threads, probe).as_secs_f64().max(1e-3);
    let iterations = ((probe as f64) * secs as f64 / t).max(1.0) as u64;
    println!(
        "== eBPF collector overhead: {threads} threads x {iterations} rounds of spin ({secs} s alone), {rounds} round(s) per mode =="
    );

    let setup = Setup {
        strata: &strata,
        store: &store,
        dir: dir.path(),
        spin_bin: &spin_bin,
        threads,
        iterations,
        ticks,
    };
    // Time in the BPF programs is only counted with bpf_stats_enabled.
    let bpf_stats_before = std::fs::read_to_string(BPF_STATS).ok();
    if std::fs::write(BPF_STATS, "1").is_err() {
        println!("  (cannot switch on {BPF_STATS}: no BPF run times)");
    }
    let part = std::env::var("STRATA_BENCH_OVERHEAD_PART").unwrap_or_default();
    if part.is_empty() || part == "fp-less" {
        fp_less_load::run(&strata, dir.path(), &store, secs, rounds, ticks);
    }
    if part == "fp-less" {
        if let Some(before) = bpf_stats_before {
            let _ = std::fs::write(BPF_STATS, before.trim());
        }
        signal(&server, "TERM");
        let _ = server.wait();
        return;
    }
    let server_cpu0 = cpu_seconds(server.id(), ticks).unwrap_or(0.0);
    let results = run_rounds(&setup, modes(), rounds);
    if let Some(before) = bpf_stats_before {
        let _ = std::fs::write(BPF_STATS, before.trim());
    }
    let server_cpu = cpu_seconds(server.id(), ticks).unwrap_or(0.0) - server_cpu0;
    let server_hwm = peak_rss(server.id()).unwrap_or(0);
    signal(&server, "TERM");
    let _ = server.wait();

    let agent19 = print_results(&results, threads);
    println!(
        "  (the server receiving the pushes: {:.2} CPU-s over the whole run, peak RSS {:.1} MB)",
        server_cpu,
        server_hwm as f64 / 1e6
    );
    for (transport, pct, hwm) in agent19.into_iter().filter(|_| bench) {
        let met = pct <= 0.5 && hwm <= 100_000_000;
        println!(
            "  target at 19 Hz <= 0.5 % host CPU and <= 100 MB RSS, {transport}: {pct:.2} %, {:.1} MB: {}",
            hwm as f64 / 1e6,
            if met { "met" } else { "NOT met" }
        );
    }
}

/// `STRATA_BIN`, or `strata` next to this bench's build directory.
fn strata_binary() -> PathBuf {
    std::env::var_os("STRATA_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let exe = std::env::current_exe().expect("bench path");
            exe.parent()
                .and_then(Path::parent)
                .expect("target/<profile>/deps")
                .join("strata")
        })
}

/// Starts `strata server --no-collector` on a free port with its data under `dir`; returns
/// it and its URL.
fn start_server(strata: &Path, dir: &Path) -> (Child, String) {
    let port = free_port();
    let mut server = Command::new(strata)
        .args(["server", "--no-collector", "--listen"])
        .arg(format!("127.0.0.1:{port}"))
        .arg("--data-dir")
        .arg(dir.join("data"))
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting strata server");
    assert!(
        wait_for_line(
            &mut server,
            "strata server running",
            Duration::from_secs(60)
        ),
        "strata server did not start"
    );
    (server, format!("http://127.0.0.1:{port}"))
}

/// The modes to run: the workload alone, the agent at 19, 99 and 999 Hz through each
/// transport (with and without an interval closed in the run) and `perf record`, less
/// those `STRATA_BENCH_OVERHEAD_FILTER` leaves out.
fn modes() -> Vec<Mode> {
    let mut modes = vec![Mode::Alone];
    for polling_only in [false, true] {
        for hz in [19, 99, 999] {
            for transport in ["ring_buffer", "map"] {
                modes.push(Mode::Agent(hz, transport, polling_only));
            }
        }
        if !polling_only {
            modes.push(Mode::Perf(19));
        }
    }
    if let Ok(filter) = std::env::var("STRATA_BENCH_OVERHEAD_FILTER") {
        modes.retain(|m| *m == Mode::Alone || m.name().contains(&filter));
    }
    modes
}

/// What every timed run needs.
struct Setup<'a> {
    strata: &'a Path,
    /// The server's URL.
    store: &'a str,
    dir: &'a Path,
    spin_bin: &'a Path,
    threads: usize,
    /// The workload's length.
    iterations: u64,
    /// Clock ticks per second.
    ticks: f64,
}

/// `rounds` rounds of every mode, interleaved; a mode whose profiler cannot start is
/// dropped from the later rounds.
fn run_rounds(setup: &Setup, mut modes: Vec<Mode>, rounds: u64) -> Vec<(Mode, Vec<Run>)> {
    let mut results: Vec<(Mode, Vec<Run>)> = modes.iter().map(|&m| (m, Vec::new())).collect();
    for _ in 0..rounds {
        let mut refused = Vec::new();
        for &mode in &modes {
            let run = match run_once(setup, mode) {
                Ok(run) => run,
                Err(why) => {
                    println!("  {}: skipped: {why}", mode.name());
                    refused.push(mode);
                    continue;
                }
            };
            results
                .iter_mut()
                .find(|(m, _)| *m == mode)
                .expect("mode")
                .1
                .push(run);
        }
        modes.retain(|m| !refused.contains(m));
    }
    results
}

/// Starts the mode's profiler, times the workload under it and stops it.
fn run_once(setup: &Setup, mode: Mode) -> Result<Run, String> {
    let ticks = setup.ticks;
    let mut child = start(mode, setup.strata, setup.store, setup.dir)?;
    // Let it settle (maps read, first symbols loaded) before timing.
    std::thread::sleep(Duration::from_secs(if child.is_some() { 2 } else { 0 }));
    let pid = child.as_ref().map(Child::id);
    let cpu0 = pid.and_then(|p| cpu_seconds(p, ticks)).unwrap_or(0.0);
    let bpf0 = pid.and_then(bpf_run_time);
    let wall = spin(setup.spin_bin, setup.threads, setup.iterations);
    let cpu1 = pid.and_then(|p| cpu_seconds(p, ticks)).unwrap_or(0.0);
    let bpf1 = pid.and_then(bpf_run_time);
    let hwm = pid.and_then(peak_rss).unwrap_or(0);
    if let Some(c) = child.as_mut() {
        // perf writes its file on SIGINT; the agent stops on SIGTERM.
        signal(
            c,
            if matches!(mode, Mode::Perf(_)) {
                "INT"
            } else {
                "TERM"
            },
        );
        let _ = c.wait();
    }
    Ok(Run {
        wall,
        profiler_cpu: (cpu1 - cpu0).max(0.0),
        profiler_hwm: hwm,
        bpf: bpf0
            .zip(bpf1)
            .map(|((t0, c0), (t1, c1))| (t1.saturating_sub(t0), c1.saturating_sub(c0)))
            .filter(|&(t, _)| t > 0),
    })
}

/// Prints every mode's medians against the workload alone; returns the agent's (transport,
/// share of host CPU in %, peak RSS) at 19 Hz with an interval closed, for the target.
fn print_results(results: &[(Mode, Vec<Run>)], threads: usize) -> Vec<(&'static str, f64, u64)> {
    let alone = results
        .iter()
        .find(|(m, _)| *m == Mode::Alone)
        .map(|(_, r)| median(r.iter().map(|r| r.wall.as_secs_f64()).collect()))
        .expect("baseline runs");
    let mut agent19 = Vec::new();
    for (mode, runs) in results {
        if runs.is_empty() {
            continue;
        }
        let wall = median(runs.iter().map(|r| r.wall.as_secs_f64()).collect());
        let host_pct = median(
            runs.iter()
                .map(|r| 100.0 * r.profiler_cpu / (r.wall.as_secs_f64() * threads as f64))
                .collect(),
        );
        let cpu_s = median(runs.iter().map(|r| r.profiler_cpu).collect());
        let hwm = runs.iter().map(|r| r.profiler_hwm).max().unwrap_or(0);
        let slowdown = 100.0 * (wall / alone - 1.0);
        if *mode == Mode::Alone {
            println!("  {:<34} median {wall:7.3} s", mode.name());
        } else {
            let bpf = bpf_figures(runs, threads);
            println!(
                "  {:<34} median {wall:7.3} s  slow-down {slowdown:+6.2} %  profiler CPU {cpu_s:7.4} s = {host_pct:5.3} % of host  peak RSS {:6.1} MB{bpf}",
                mode.name(),
                hwm as f64 / 1e6
            );
        }
        if let Mode::Agent(19, transport, false) = mode {
            agent19.push((*transport, host_pct, hwm));
        }
    }
    agent19
}

/// The runs' median BPF time per sample and share of the host, as printed after the other
/// figures (empty without BPF run times).
fn bpf_figures(runs: &[Run], threads: usize) -> String {
    let bpf: Vec<(f64, f64)> = runs
        .iter()
        .filter_map(|r| {
            let (ns, n) = r.bpf?;
            Some((
                ns as f64 / n.max(1) as f64 / 1e3,
                100.0 * ns as f64 / 1e9 / (r.wall.as_secs_f64() * threads as f64),
            ))
        })
        .collect();
    if bpf.is_empty() {
        String::new()
    } else {
        format!(
            "  BPF {:5.2} us/sample, {:5.2} % of host",
            median(bpf.iter().map(|b| b.0).collect()),
            median(bpf.iter().map(|b| b.1).collect())
        )
    }
}
