//! `GET /debug/pprof/profile?seconds=N`: a CPU profile of this process, as Go's
//! `net/http/pprof` serves one, so the server can scrape (and `go tool pprof` can read) itself.
//!
//! Sampling is pprof-rs's: `SIGPROF` at 100 Hz of process CPU time, stacks unwound in the
//! signal handler. One profile runs at a time; a second request waits for the first.

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use strata_ingest::PprofBuilder;

use crate::state::App;

/// Samples per second of CPU time, as Go's profiler.
const FREQUENCY_HZ: i32 = 100;
/// The longest profile served.
const MAX_SECONDS: u64 = 300;

#[derive(Deserialize)]
pub(crate) struct ProfileParams {
    /// Profile length; default 30 as Go's.
    seconds: Option<u64>,
}

/// `GET /debug/pprof/profile`.
pub(crate) async fn profile(
    State(app): State<Arc<App>>,
    Query(params): Query<ProfileParams>,
) -> Response {
    let seconds = params.seconds.unwrap_or(30);
    if seconds == 0 || seconds > MAX_SECONDS {
        return (
            StatusCode::BAD_REQUEST,
            format!("seconds must be between 1 and {MAX_SECONDS}, got {seconds}\n"),
        )
            .into_response();
    }
    let _one_at_a_time = app.self_profile.lock().await;
    let profiled = tokio::task::spawn_blocking(move || cpu_profile(Duration::from_secs(seconds)))
        .await
        .map_err(|e| e.to_string())
        .and_then(|r| r);
    match profiled {
        Ok(bytes) => (
            [
                (header::CONTENT_TYPE, "application/octet-stream"),
                (
                    header::CONTENT_DISPOSITION,
                    "attachment; filename=\"profile\"",
                ),
            ],
            bytes,
        )
            .into_response(),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("could not profile: {e}\n"),
        )
            .into_response(),
    }
}

/// Profiles this process for `duration`; the pprof protobuf (Go's CPU profile layout:
/// `samples/count` and `cpu/nanoseconds`, period type `cpu/nanoseconds`).
fn cpu_profile(duration: Duration) -> Result<Vec<u8>, String> {
    let guard = pprof::ProfilerGuardBuilder::default()
        .frequency(FREQUENCY_HZ)
        .blocklist(&["libc", "libgcc", "pthread", "vdso"])
        .build()
        .map_err(|e| e.to_string())?;
    std::thread::sleep(duration);
    let report = guard.report().build().map_err(|e| e.to_string())?;
    drop(guard);

    let period_ns = 1_000_000_000 / i64::from(FREQUENCY_HZ);
    let mut b = PprofBuilder::new(
        &[("samples", "count"), ("cpu", "nanoseconds")],
        ("cpu", "nanoseconds"),
        period_ns,
    );
    let start_ns = report
        .timing
        .start_time
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0);
    b.time(start_ns, report.timing.duration.as_nanos() as i64);
    for (frames, &count) in &report.data {
        // Leaf first; a frame's inlined functions innermost first.
        let names: Vec<String> = frames
            .frames
            .iter()
            .flat_map(|frame| frame.iter().map(|symbol| symbol.name()))
            .collect();
        let stack: Vec<&str> = names.iter().map(String::as_str).collect();
        let count = count as i64;
        b.sample(&stack, &[count, count * period_ns], &[]);
    }
    Ok(b.encode())
}
