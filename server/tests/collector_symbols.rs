//! A stripped C++ program profiled by the `strata server`'s in-process eBPF collector, whose
//! debug file was uploaded with `strata debuginfo upload` before it started: its frames get
//! their (demangled) names from the upload as soon as they are stored — the collector hands
//! its locations to the symbolizer as a push does, so no sweep is needed (the test sets the
//! sweep interval to 10 minutes) — and Parca's TOP report never shows an empty name (before
//! symbolization a frame is `<binary> 0x<address>`, as the UI shows it).
//!
//! Needs root (or CAP_BPF + CAP_PERFMON) and g++, objcopy, strip: the test fails without them,
//! unless `STRATA_SKIP_EBPF=1`.

mod common;

use std::process::{Command, Stdio};

use common::strata::{Strata, wait_for};
use strata_proto::parca::query::v1alpha1 as pb;
use strata_proto::parca::query::v1alpha1::query_service_client::QueryServiceClient;

const SOURCE: &str = r#"
#include <cstdint>
namespace busy {
__attribute__((noinline)) uint64_t spin(uint64_t n) {
    uint64_t x = n;
    for (uint64_t i = 0; i < 200000000ull; i++) x = x * 6364136223846793005ull + i;
    return x;
}
}
int main() {
    volatile uint64_t sink = 0;
    for (;;) sink += busy::spin(sink);
}
"#;

/// Builds the program, splits off its debug file and strips it: (stripped binary, debug file).
fn build(dir: &std::path::Path) -> Result<(std::path::PathBuf, std::path::PathBuf), String> {
    let src = dir.join("spin.cc");
    let bin = dir.join("spinner");
    let debug = dir.join("spinner.debug");
    std::fs::write(&src, SOURCE).unwrap();
    let run = |cmd: &mut Command| -> Result<(), String> {
        let out = cmd
            .output()
            .map_err(|e| format!("{cmd:?} does not run: {e}"))?;
        match out.status.success() {
            true => Ok(()),
            false => Err(format!("{cmd:?}: {}", String::from_utf8_lossy(&out.stderr))),
        }
    };
    run(Command::new("g++")
        .args([
            "-g",
            "-O1",
            "-fno-omit-frame-pointer",
            "-Wl,--build-id",
            "-o",
        ])
        .arg(&bin)
        .arg(&src))?;
    run(Command::new("objcopy")
        .arg("--only-keep-debug")
        .arg(&bin)
        .arg(&debug))?;
    run(Command::new("strip").arg("-s").arg(&bin))?;
    Ok((bin, debug))
}

/// A child process killed when dropped (also when the test fails).
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Parca's TOP report of the collector's profile of process `pid` over the last minutes.
async fn top(addr: std::net::SocketAddr, pid: u32) -> Vec<(String, i64)> {
    let now = strata_engine::now_ns();
    let ts = |ns: i64| {
        Some(strata_proto::prost_types::Timestamp {
            seconds: ns / 1_000_000_000,
            nanos: 0,
        })
    };
    let mut q = QueryServiceClient::connect(format!("http://{addr}"))
        .await
        .unwrap();
    let answer = q
        .query(pb::QueryRequest {
            mode: pb::query_request::Mode::Merge as i32,
            options: Some(pb::query_request::Options::Merge(pb::MergeProfile {
                query: format!("{}{{pid=\"{pid}\"}}", strata_collector_ebpf::PROFILE_TYPE),
                start: ts(now - 600_000_000_000),
                end: ts(now + 60_000_000_000),
            })),
            report_type: pb::query_request::ReportType::Top as i32,
            ..Default::default()
        })
        .await;
    let Ok(answer) = answer else {
        return Vec::new();
    };
    let Some(pb::query_response::Report::Top(top)) = answer.into_inner().report else {
        panic!("no TOP report");
    };
    top.list
        .into_iter()
        .map(|n| {
            let name = n
                .meta
                .and_then(|m| m.function)
                .map(|f| f.name)
                .unwrap_or_default();
            (name, n.flat)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploaded_debug_info_names_collector_frames_without_waiting_for_a_sweep() {
    let dir = tempfile::tempdir().unwrap();
    let built = build(dir.path());
    if !common::tool_or_skip("EBPF", built.as_ref().map(|_| ()).map_err(Clone::clone)) {
        return;
    }
    let (bin, debug) = built.unwrap();
    let config = dir.path().join("config.yaml");
    std::fs::write(
        &config,
        "scrape_configs: []\n\
         collector: {frequency_hz: 99, interval: 2s}\n\
         symbolizer: {sweep_interval: 10m}\n",
    )
    .unwrap();
    let server = Strata::start_with(&dir.path().join("data"), Some(&config), true);
    let addr = server.addr;
    if !common::collector_started(addr).await {
        return;
    }

    // The debug file first, as a user would: `strata debuginfo upload`.
    let out = Command::new(env!("CARGO_BIN_EXE_strata"))
        .args(["debuginfo", "upload", "--server", &format!("http://{addr}")])
        .arg(&debug)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "strata debuginfo upload: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let program = Killed(
        Command::new(&bin)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let pid = program.0.id();
    let mut seen_rows = false;
    wait_for(
        "the stripped program's frames named from the upload",
        async || {
            let rows = top(addr, pid).await;
            seen_rows |= !rows.is_empty();
            for (name, _) in &rows {
                assert!(!name.is_empty(), "a TOP row without a name: {rows:?}");
            }
            rows.iter()
                .any(|(name, flat)| name == "busy::spin(unsigned long)" && *flat > 0)
        },
    )
    .await;
    drop(program);
    assert!(seen_rows);
    // The frames are named because the collector handed them over, not by a sweep.
    let status = common::get(addr, "/api/v1/debuginfo/status").await.1;
    assert!(status.contains("\"supplied\""), "{status}");
    drop(server);
}
