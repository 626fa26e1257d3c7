//! Helpers of the collector's tests: a test that needs what this host lacks (BPF in the
//! kernel, a compiler) fails saying so, unless the variable that skips it is set to `1`:
//!
//! - `STRATA_SKIP_EBPF`: loading the BPF profiler and attaching its perf events (root, or
//!   `CAP_BPF` + `CAP_PERFMON`, on a kernel with BPF, BTF and ring buffers).
//! - `STRATA_SKIP_CC`: clang, for the C workload.
//! - `STRATA_SKIP_GO`: `go`, for the Go workload.
//! - `STRATA_SKIP_BPF_BUILD`: clang, llvm and libbpf-dev, to rebuild the committed BPF object.
#![allow(dead_code)]

use std::process::{Command, Stdio};

use strata_collector_ebpf::Error;

/// For a test that cannot run here (`why`): fails it, unless `var=1` is set; then prints that
/// it is skipped.
pub fn skip_or_fail(var: &str, why: &str) {
    assert!(
        std::env::var(var).is_ok_and(|v| v == "1"),
        "{why}; set {var}=1 to skip this test"
    );
    eprintln!("skipped ({var}=1): {why}");
}

/// Whether `tool` can be run (`tool --version`, whatever it answers: `go` wants `version`).
pub fn runs(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

/// Whether `tool` runs; when it does not, fails the test unless `var=1` ([`skip_or_fail`]).
pub fn have(tool: &str, var: &str) -> bool {
    let ok = runs(tool);
    if !ok {
        skip_or_fail(
            var,
            &format!("`{tool}` is not installed (scripts/test installs it)"),
        );
    }
    ok
}

/// What loading BPF gave: the value, or `None` when the kernel refused BPF
/// ([`Error::Bpf`]) and `STRATA_SKIP_EBPF=1` (else the test fails); any other error fails it.
pub fn bpf<T>(loaded: Result<T, Error>) -> Option<T> {
    match loaded {
        Ok(v) => Some(v),
        Err(e @ Error::Bpf { .. }) => {
            skip_or_fail(
                "STRATA_SKIP_EBPF",
                &format!(
                    "the kernel refused BPF here (needs root, or CAP_BPF and CAP_PERFMON): {e}"
                ),
            );
            None
        }
        Err(e) => panic!("{e}"),
    }
}

/// A sampler at 99 Hz polled every 50 ms whose intervals only the test closes, with `edit`
/// applied to that config; `None` as [`bpf`] says.
pub fn sampler_99hz(
    edit: impl FnOnce(&mut strata_collector_ebpf::SamplerConfig),
) -> Option<strata_collector_ebpf::Sampler> {
    let mut config = strata_collector_ebpf::SamplerConfig {
        frequency_hz: 99,
        interval: std::time::Duration::from_secs(600),
        poll_interval: std::time::Duration::from_millis(50),
        ..Default::default()
    };
    edit(&mut config);
    bpf(strata_collector_ebpf::Sampler::start(config))
}

/// Polls for `secs` seconds and drops that interval: a process's first samples, before its
/// unwind tables are loaded (the loader works through every process on the host first), are
/// walked by frame pointers, so tests count what comes after.
pub fn warm_up(sampler: &mut strata_collector_ebpf::Sampler, secs: u64) {
    let start = std::time::Instant::now();
    while start.elapsed() < std::time::Duration::from_secs(secs) {
        std::thread::sleep(std::time::Duration::from_millis(50));
        sampler.poll();
    }
    sampler.finish_interval();
}
