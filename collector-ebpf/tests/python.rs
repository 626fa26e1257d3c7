//! CPython stacks: Debian's `/usr/bin/python3` (3.11, no frame pointers) running a pure-Python
//! program whose CPU splits 6:3:1 between three functions that share a name (`work`, in three
//! modules) under one caller. The sampled stacks must show the Python frames (qualified name,
//! file, line) in place of the interpreter's eval loop, in order
//! `<module>` → `main` → `caller` → `work`, with the native frames of the interpreter below
//! them, and the shares of the three `work`s within 7 points of 6:3:1.
//!
//! Needs root (or CAP_BPF + CAP_PERFMON) and `/usr/bin/python3.11` (`STRATA_SKIP_EBPF`,
//! `STRATA_SKIP_PYTHON` skip). `STRATA_TEST_PYTHON=/path/to/python3.12` runs it against another
//! interpreter instead (by hand: only Debian's 3.11 is part of the suite).

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use strata_collector_ebpf::Frame;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/python");
const PYTHON: &str = "/usr/bin/python3";

/// A frame as the test reads it: function, and the file's name for Python frames.
fn name(f: &Frame) -> String {
    let function = f.function.as_deref().unwrap_or("?");
    match &f.file {
        Some(file) => format!("{function}@{}", file.rsplit('/').next().unwrap_or(file)),
        None => function.to_owned(),
    }
}

#[test]
fn python_frames_replace_the_eval_loop_with_names_files_and_shares() {
    let other = std::env::var("STRATA_TEST_PYTHON").ok();
    let python_311 = std::fs::read_link(PYTHON)
        .map(|p| p.to_string_lossy().contains("python3.11"))
        .unwrap_or(false);
    if other.is_none() && !python_311 {
        common::skip_or_fail(
            "STRATA_SKIP_PYTHON",
            "/usr/bin/python3 is not Debian's python3.11 (apt-get install python3)",
        );
        return;
    }
    let Some(mut sampler) = common::sampler_99hz(|_| {}) else {
        return;
    };
    let mut child = Command::new(other.as_deref().unwrap_or(PYTHON))
        .arg("workload.py")
        .current_dir(FIXTURES)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    common::warm_up(&mut sampler, 3);
    let mut stacks: Vec<(Vec<String>, u64)> = Vec::new();
    let counting = Instant::now();
    while counting.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(50));
        sampler.poll();
        if counting.elapsed().as_millis() % 2000 < 50 {
            collect(&mut stacks, sampler.finish_interval(), pid);
        }
    }
    sampler.poll();
    collect(&mut stacks, sampler.finish_interval(), pid);
    let _ = child.kill();
    let _ = child.wait();

    let total: u64 = stacks.iter().map(|(_, n)| n).sum();
    let mut work = [0u64; 3];
    let mut ordered = 0u64;
    for (frames, n) in &stacks {
        let joined = frames.join(";");
        for (i, m) in ["mod_a.py", "mod_b.py", "mod_c.py"].iter().enumerate() {
            if joined.contains(&format!("caller@workload.py;work@{m}")) {
                work[i] += n;
            }
        }
        // Python frames in order, under the interpreter's native frames.
        if joined.contains("<module>@workload.py;main@workload.py;caller@workload.py;work@mod_")
            && joined.contains("Py_RunMain")
            && joined.find("Py_RunMain") < joined.find("<module>")
        {
            ordered += n;
        }
    }
    let mut top = stacks.clone();
    top.sort_by_key(|(_, n)| std::cmp::Reverse(*n));
    top.truncate(5);
    let sum: u64 = work.iter().sum();
    assert!(
        total >= 200 && sum as f64 >= 0.85 * total as f64,
        "{sum} of {total} samples under caller -> work; top stacks {top:#?}"
    );
    assert!(
        ordered as f64 >= 0.85 * total as f64,
        "{ordered} of {total} samples in order under Py_RunMain; top stacks {top:#?}"
    );
    for (i, want) in [60.0, 30.0, 10.0].into_iter().enumerate() {
        let share = 100.0 * work[i] as f64 / sum as f64;
        assert!(
            (share - want).abs() <= 7.0,
            "work@mod_{} has {share:.1} % (want {want} ± 7): {work:?}",
            ["a", "b", "c"][i]
        );
    }
    eprintln!("python: {work:?} of {total} samples; top {:?}", top.first());
}

/// Adds the user stacks (root first) of `pid` in `interval` to `stacks`.
fn collect(
    stacks: &mut Vec<(Vec<String>, u64)>,
    interval: strata_collector_ebpf::IntervalProfiles,
    pid: u32,
) {
    for p in interval.processes.iter().filter(|p| p.pid == pid) {
        for (frames, n) in &p.stacks {
            let mut names: Vec<String> = frames.iter().filter(|f| !f.kernel).map(name).collect();
            names.reverse();
            stacks.push((names, *n));
        }
    }
}
