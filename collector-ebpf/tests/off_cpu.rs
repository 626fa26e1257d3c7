//! Off-CPU time from the scheduler: a program that sleeps 40 ms then computes 10 ms, in a
//! loop (built without frame pointers, so its stacks come from the unwind tables), sampled
//! with every block taken: in the off-CPU profile the sleeping function holds at least 85 %
//! of the blocked time, and the total estimates the real blocked time; in the CPU profile the
//! computing function holds at least 85 % of the samples.
//!
//! Needs root (or CAP_BPF + CAP_PERFMON) and clang (`STRATA_SKIP_EBPF`, `STRATA_SKIP_CC` skip).

mod common;

use std::process::{Command, Stdio};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use strata_collector_ebpf::{OffCpuConfig, ProcessProfile};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/unwind");

/// The share (%) of `profiles`' values whose user stack holds `function`, and the total.
fn share(profiles: &[ProcessProfile], function: &str) -> (f64, u64) {
    let (mut with, mut total) = (0u64, 0u64);
    for (frames, v) in profiles.iter().flat_map(|p| &p.stacks) {
        total += v;
        if frames
            .iter()
            .any(|f| !f.kernel && f.function.as_deref() == Some(function))
        {
            with += v;
        }
    }
    (100.0 * with as f64 / total.max(1) as f64, total)
}

#[test]
fn sleeping_function_holds_the_blocked_time_and_computing_one_the_cpu() {
    if !common::have("clang", "STRATA_SKIP_CC") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let exe = dir.path().join("workload");
    let out = Command::new("clang")
        .args(["-O2", "-fomit-frame-pointer", "-o"])
        .arg(&exe)
        .arg(format!("{FIXTURES}/workload.c"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let Some(mut sampler) = common::sampler_99hz(|c| {
        c.off_cpu = OffCpuConfig {
            enabled: true,
            min_block: Duration::from_millis(1),
            sample_ratio: 1.0,
        }
    }) else {
        return;
    };
    let mut child = Command::new(&exe)
        .arg("sleep")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    common::warm_up(&mut sampler, 3);
    let counted = Instant::now();
    while counted.elapsed() < Duration::from_secs(8) {
        std::thread::sleep(Duration::from_millis(50));
        sampler.poll();
    }
    let wall = counted.elapsed();
    let interval = sampler.finish_interval();
    let _ = child.kill();
    let _ = child.wait();
    let stats = sampler.stats();
    eprintln!(
        "off-CPU: {} sampled, {} records, {} dropped",
        stats.off_cpu_sampled.load(Ordering::Relaxed),
        stats.off_cpu_records.load(Ordering::Relaxed),
        stats.off_cpu_drops.load(Ordering::Relaxed)
    );
    let off: Vec<ProcessProfile> = interval
        .off_cpu
        .iter()
        .filter(|p| p.pid == pid)
        .cloned()
        .collect();
    let cpu: Vec<ProcessProfile> = interval
        .processes
        .iter()
        .filter(|p| p.pid == pid)
        .cloned()
        .collect();
    let (sleeping, blocked_ns) = share(&off, "sleeper");
    let (computing, samples) = share(&cpu, "computer");
    eprintln!(
        "blocked {:.2} s of {:.2} s wall, {sleeping:.1} % in sleeper; {samples} CPU samples, {computing:.1} % in computer",
        blocked_ns as f64 / 1e9,
        wall.as_secs_f64()
    );
    assert!(
        sleeping >= 85.0,
        "sleeper has {sleeping:.1} % of the blocked time: {off:#?}"
    );
    assert!(
        computing >= 85.0,
        "computer has {computing:.1} % of the CPU samples"
    );
    assert!(samples >= 50, "{samples} CPU samples");
    // 40 of every 50 ms are spent asleep: the estimate is within reach of the real time.
    let blocked = blocked_ns as f64 / wall.as_nanos() as f64;
    assert!(
        (0.6..=1.0).contains(&blocked),
        "blocked {:.0} % of the wall time",
        100.0 * blocked
    );
    // Every stack was taken with the process's unwind tables: the kernel side
    // (nanosleep) and the user side down to main.
    let (through_main, _) = share(&off, "main");
    assert!(
        through_main >= 85.0,
        "only {through_main:.1} % of the blocked time reaches main"
    );
}
