//! The collector with CFI unwinding and off-CPU profiling on (its defaults) against a load of
//! 20 processes built without frame pointers — C (`clang -O2 -fomit-frame-pointer`: a 6:3:1
//! CPU split, a `qsort` comparator under Debian's libc, a sleep/compute loop), a Rust release
//! build, Debian's python3.11 running pure Python — side by side with
//! `perf record -F 19 -a --call-graph dwarf` on the same load, rounds interleaved. Per mode:
//! the profiler's CPU as a share of one core over the measured window, its peak RSS, the time
//! in its BPF programs (agent), and the bytes perf writes; and the unwind-table bytes of each
//! binary the load maps (what the collector loads into its BPF maps, 8 bytes per row).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{bpf_run_time, cpu_seconds, median, peak_rss, signal};

/// Seconds a profiler runs before the measured window: past the agent's first interval close
/// (10 s), which reads the symbol tables of everything sampled so far.
const SETTLE_SECS: u64 = 15;

const FIXTURES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../collector-ebpf/tests/fixtures"
);

/// The load's programs: (program, arguments, working directory, copies).
fn load_programs(c: &Path, rs: &Path) -> Vec<(PathBuf, &'static str, Option<String>, usize)> {
    let mut v = vec![
        (c.to_path_buf(), "shares", None, 8),
        (c.to_path_buf(), "qsort", None, 4),
        (c.to_path_buf(), "sleep", None, 2),
        (rs.to_path_buf(), "", None, 4),
    ];
    if Path::new("/usr/bin/python3.11").exists() {
        v.push((
            PathBuf::from("/usr/bin/python3.11"),
            "workload.py",
            Some(format!("{FIXTURES}/python")),
            2,
        ));
    }
    v
}

/// Builds the C and Rust workloads into `dir`.
fn build(dir: &Path) -> Result<(PathBuf, PathBuf), String> {
    let (c, rs) = (dir.join("workload"), dir.join("workload_rs"));
    let ok = |cmd: &mut Command| cmd.status().is_ok_and(|s| s.success());
    if !ok(Command::new("clang")
        .args(["-O2", "-fomit-frame-pointer", "-o"])
        .arg(&c)
        .arg(format!("{FIXTURES}/unwind/workload.c")))
    {
        return Err("clang could not build the C workload".into());
    }
    if !ok(Command::new("rustc")
        .args(["-C", "opt-level=3", "-o"])
        .arg(&rs)
        .arg(format!("{FIXTURES}/unwind/workload.rs")))
    {
        return Err("rustc could not build the Rust workload".into());
    }
    Ok((c, rs))
}

/// The running load; killed when dropped.
struct Load(Vec<Child>);

impl Drop for Load {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Profiler {
    None,
    Agent,
    PerfDwarf,
}

impl Profiler {
    fn name(self) -> &'static str {
        match self {
            Profiler::None => "load alone",
            Profiler::Agent => "strata agent, 19 Hz (CFI + off-CPU)",
            Profiler::PerfDwarf => "perf record -F 19 -a --call-graph dwarf",
        }
    }
}

struct Measured {
    /// CPU seconds of the profiler while it settled (loading every process's tables).
    startup_cpu: f64,
    /// CPU seconds of the profiler over the window.
    cpu: f64,
    hwm: u64,
    /// BPF run time (ns) and runs over the window.
    bpf: Option<(u64, u64)>,
    /// Bytes perf wrote.
    written: u64,
    window: f64,
}

fn measure(
    profiler: Profiler,
    strata: &Path,
    store: &str,
    dir: &Path,
    secs: u64,
    ticks: f64,
) -> Result<Measured, String> {
    let perf_data = dir.join("perf-dwarf.data");
    let mut child = match profiler {
        Profiler::None => None,
        // The agent at its defaults (ring buffer, 10 s intervals, CFI unwinding, off-CPU).
        Profiler::Agent => crate::start(
            crate::Mode::Agent(19, "ring_buffer", false),
            strata,
            store,
            dir,
        )?,
        Profiler::PerfDwarf => Some(
            Command::new("perf")
                .args([
                    "record",
                    "-q",
                    "-F",
                    "19",
                    "-a",
                    "--call-graph",
                    "dwarf",
                    "-o",
                ])
                .arg(&perf_data)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .map_err(|e| format!("cannot start perf: {e}"))?,
        ),
    };
    // Settle: every process sampled, its maps read, its unwind tables loaded (the large
    // files' last); what that costs is reported apart from the steady state.
    std::thread::sleep(Duration::from_secs(SETTLE_SECS));
    let pid = child.as_ref().map(Child::id);
    let cpu0 = pid.and_then(|p| cpu_seconds(p, ticks)).unwrap_or(0.0);
    let bpf0 = pid.and_then(bpf_run_time);
    let written0 = std::fs::metadata(&perf_data).map_or(0, |m| m.len());
    let t0 = Instant::now();
    std::thread::sleep(Duration::from_secs(secs));
    let window = t0.elapsed().as_secs_f64();
    let cpu1 = pid.and_then(|p| cpu_seconds(p, ticks)).unwrap_or(0.0);
    let bpf1 = pid.and_then(bpf_run_time);
    let hwm = pid.and_then(peak_rss).unwrap_or(0);
    let written1 = std::fs::metadata(&perf_data).map_or(0, |m| m.len());
    if let Some(c) = child.as_mut() {
        signal(
            c,
            if profiler == Profiler::PerfDwarf {
                "INT"
            } else {
                "TERM"
            },
        );
        let _ = c.wait();
    }
    let _ = std::fs::remove_file(&perf_data);
    Ok(Measured {
        startup_cpu: cpu0,
        cpu: (cpu1 - cpu0).max(0.0),
        hwm,
        bpf: bpf0
            .zip(bpf1)
            .map(|((t0, c0), (t1, c1))| (t1.saturating_sub(t0), c1.saturating_sub(c0))),
        written: written1.saturating_sub(written0),
        window,
    })
}

/// Unwind rows per binary the load maps.
fn table_sizes(c: &Path, rs: &Path) {
    println!(
        "  unwind tables the load maps (8 bytes per row, shared by build id across processes):"
    );
    let libs = [
        c.to_path_buf(),
        rs.to_path_buf(),
        PathBuf::from("/usr/bin/python3.11"),
        PathBuf::from("/lib/x86_64-linux-gnu/libc.so.6"),
        PathBuf::from("/lib/x86_64-linux-gnu/libm.so.6"),
        PathBuf::from("/lib/x86_64-linux-gnu/libgcc_s.so.1"),
        PathBuf::from("/lib64/ld-linux-x86-64.so.2"),
    ];
    let mut total = 0usize;
    for path in libs {
        let Ok(data) = std::fs::read(&path) else {
            continue;
        };
        match strata_collector_ebpf::compile_elf(&*data) {
            Ok(rows) => {
                total += rows.bytes();
                println!(
                    "    {:<40} {:>8} rows {:>10} bytes",
                    path.display(),
                    rows.len(),
                    rows.bytes()
                );
            }
            Err(e) => println!("    {}: {e}", path.display()),
        }
    }
    println!(
        "    {:<40} {:>19} bytes; plus {} bytes per process (its mappings)",
        "total", total, 10_248
    );
}

fn median_or_zero(v: Vec<f64>) -> f64 {
    if v.is_empty() { 0.0 } else { median(v) }
}

/// Runs the comparison: `secs` of measurement per mode, `rounds` rounds interleaved; the agent
/// pushes to the server at `store`.
pub fn run(strata: &Path, dir: &Path, store: &str, secs: u64, rounds: u64, ticks: f64) {
    let (c, rs) = match build(dir) {
        Ok(b) => b,
        Err(why) => {
            println!("== FP-less load: skipped: {why}");
            return;
        }
    };
    let programs = load_programs(&c, &rs);
    let n: usize = programs.iter().map(|p| p.3).sum();
    println!(
        "== FP-less load: {n} processes without frame pointers, {secs} s per mode, {rounds} round(s) =="
    );
    table_sizes(&c, &rs);
    let mut children = Vec::new();
    for (exe, arg, cwd, copies) in &programs {
        for _ in 0..*copies {
            let mut cmd = Command::new(exe);
            if !arg.is_empty() {
                cmd.arg(arg);
            }
            if let Some(cwd) = cwd {
                cmd.current_dir(cwd);
            }
            children.push(
                cmd.stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .expect("a load process"),
            );
        }
    }
    let load = Load(children);
    let modes = [Profiler::None, Profiler::Agent, Profiler::PerfDwarf];
    let mut results: Vec<(Profiler, Vec<Measured>)> =
        modes.iter().map(|&m| (m, Vec::new())).collect();
    for _ in 0..rounds {
        for (mode, runs) in results.iter_mut() {
            match measure(*mode, strata, store, dir, secs, ticks) {
                Ok(m) => runs.push(m),
                Err(why) => println!("  {}: skipped: {why}", mode.name()),
            }
        }
    }
    drop(load);
    for (mode, runs) in &results {
        if runs.is_empty() || *mode == Profiler::None {
            continue;
        }
        let core_pct = median(runs.iter().map(|r| 100.0 * r.cpu / r.window).collect());
        let hwm = runs.iter().map(|r| r.hwm).max().unwrap_or(0);
        let bpf = median_or_zero(
            runs.iter()
                .filter_map(|r| r.bpf)
                .map(|(ns, cnt)| ns as f64 / cnt.max(1) as f64 / 1e3)
                .collect(),
        );
        let bpf_pct = median_or_zero(
            runs.iter()
                .filter_map(|r| r.bpf.map(|(ns, _)| 100.0 * ns as f64 / 1e9 / r.window))
                .collect(),
        );
        let written = median(runs.iter().map(|r| r.written as f64 / r.window).collect());
        let startup = median(runs.iter().map(|r| r.startup_cpu).collect());
        println!(
            "  {:<42} profiler CPU {core_pct:6.3} % of one core (first {SETTLE_SECS} s: {startup:.2} CPU-s)  peak RSS {:6.1} MB  BPF {bpf:5.2} us/run, {bpf_pct:5.3} % of one core  writes {:8.1} kB/s",
            mode.name(),
            hwm as f64 / 1e6,
            written / 1e3
        );
        if *mode == Profiler::Agent {
            let met = core_pct <= 0.5 && hwm <= 100 << 20;
            println!(
                "  target: <= 0.5 % of one core and <= 100 MiB: {core_pct:.3} %, {:.1} MiB: {}",
                hwm as f64 / (1 << 20) as f64,
                if met { "met" } else { "NOT met" }
            );
        }
    }
}
