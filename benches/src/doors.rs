//! What a user's server pays per stored row, door by door: the same real pprof files pushed
//! through each push protocol ([`Door`]) into a fresh `strata server --no-collector`, the
//! server's own CPU time (`/proc/<pid>/stat`, every thread) read around the push phase and
//! divided by the rows it stored (`strata_ingest_samples_total`), side by side with
//! `go tool pprof -proto` merging the same files in the same run, as a CPU ratio.
//!
//! Every request body is built before the timed phase, so the harness's own work (encoding,
//! gzip) is not on the server's clock; the harness shares the machine's cores, so the figure
//! that counts is the server's CPU, not the wall time.
//!
//! With `profile_seconds`, the first door's server is profiled by its own
//! `/debug/pprof/profile` while the pushes run; the profile is saved, pushed into a Strata
//! server and read back as a top table and a folded file (Strata profiling Strata).

pub mod otlp;
pub mod request;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

pub use request::Door;

use crate::goprof::{self, GoMerge};
use crate::scale::server::{self, Server};

/// A run's settings.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct DoorsConfig {
    /// The pprof files pushed, round robin.
    pub files: Vec<PathBuf>,
    /// Pushes per door (one profile each).
    pub pushes: usize,
    /// Distinct series the pushes are spread over.
    pub series: usize,
    /// Calls in flight.
    pub concurrency: usize,
    /// The doors to run.
    pub doors: Vec<Door>,
    /// Seconds of the `writeraw` server's own CPU profile (0: none).
    pub profile_seconds: u64,
    /// The servers' config file (YAML); empty: the product's defaults, under which a server
    /// also profiles itself every 10 s.
    pub server_config: String,
}

/// One door's figures.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct DoorResult {
    /// The door.
    pub door: Door,
    /// Pushes acknowledged.
    pub acked: u64,
    /// Pushes refused or failed.
    pub failed: u64,
    /// The first failure.
    pub first_error: Option<String>,
    /// Sample rows the server stored (one per pprof sample and sample type).
    pub rows: u64,
    /// The server's CPU time over the push phase (s).
    pub server_cpu_s: f64,
    /// The part of it spent in the kernel (s).
    pub server_system_s: f64,
    /// Wall time of the push phase (s).
    pub wall_s: f64,
    /// Server CPU per stored row (us).
    pub us_per_row: f64,
    /// `go tool pprof -proto`'s CPU over the server's, for the same files.
    pub cheaper_than_go: f64,
}

/// A run's report.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct DoorsReport {
    /// The settings.
    pub config: DoorsConfig,
    /// `go tool pprof -proto` of the same `pushes` files.
    pub go: GoMerge,
    /// Per door.
    pub doors: Vec<DoorResult>,
    /// The server's own profile (pprof), when taken.
    pub profile: Option<PathBuf>,
}

/// Runs every door of `cfg` against fresh servers spawned from `strata`; `out` receives the
/// server's profile files.
pub async fn run(
    cfg: &DoorsConfig,
    strata: &Path,
    data_parent: Option<&Path>,
    out: &Path,
    name: &str,
) -> Result<DoorsReport, String> {
    let raws: Vec<Vec<u8>> = cfg
        .files
        .iter()
        .map(|f| std::fs::read(f).map_err(|e| format!("reading {}: {e}", f.display())))
        .collect::<Result<_, _>>()?;
    let pushed_files: Vec<PathBuf> = (0..cfg.pushes)
        .map(|i| cfg.files[i % cfg.files.len()].clone())
        .collect();
    let go = goprof::merge(&pushed_files)?;
    let go_cpu = go.cpu.as_secs_f64();
    let mut report = DoorsReport {
        config: cfg.clone(),
        go,
        doors: Vec::new(),
        profile: None,
    };
    for &door in &cfg.doors {
        let bodies = (0..cfg.pushes)
            .map(|i| {
                let k = i % cfg.files.len();
                request::body(door, &cfg.files[k], &raws[k], i % cfg.series.max(1))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let profile = (Some(&door) == cfg.doors.first() && cfg.profile_seconds > 0)
            .then(|| out.join(format!("{name}-server-profile.pb.gz")));
        let mut r = run_door(
            door,
            Arc::new(bodies),
            cfg,
            strata,
            data_parent,
            profile.as_deref(),
        )
        .await?;
        r.cheaper_than_go = go_cpu / r.server_cpu_s.max(1e-9);
        if profile.is_some() {
            report.profile = profile;
        }
        report.doors.push(r);
    }
    Ok(report)
}

/// One door against a fresh server; with `profile`, the server's own CPU profile of the push
/// phase is written there.
async fn run_door(
    door: Door,
    bodies: Arc<Vec<request::PushBody>>,
    cfg: &DoorsConfig,
    strata: &Path,
    data_parent: Option<&Path>,
    profile: Option<&Path>,
) -> Result<DoorResult, String> {
    let mut srv = Server::spawn_with(strata, data_parent, &cfg.server_config, None)
        .await
        .map_err(|e| e.to_string())?;
    let pid = srv.pid().ok_or("the server was not spawned")?;
    let stored = |m: &[(String, f64)]| server::metric(m, "strata_ingest_samples_total");
    let before = stored(&srv.metrics().await.map_err(|e| e.to_string())?).unwrap_or(0.0);
    let profiling = profile.map(|_| {
        let api = srv.api().clone();
        let seconds = cfg.profile_seconds;
        tokio::spawn(async move {
            api.get_bytes("/debug/pprof/profile", &[("seconds", seconds.to_string())])
                .await
        })
    });
    let (cpu0, t0) = (server::cpu_of(pid).ok_or("no /proc stat")?, Instant::now());
    let sent = request::send_all(&srv.url, bodies, cfg.concurrency).await?;
    let (cpu1, wall) = (server::cpu_of(pid).ok_or("no /proc stat")?, t0.elapsed());
    let after = stored(&srv.metrics().await.map_err(|e| e.to_string())?).unwrap_or(0.0);
    if let (Some(task), Some(path)) = (profiling, profile) {
        let bytes = task
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| format!("/debug/pprof/profile: {e}"))?;
        std::fs::write(path, bytes).map_err(|e| format!("writing {}: {e}", path.display()))?;
    }
    srv.stop();
    let rows = (after - before) as u64;
    let server_system_s = (cpu1.1 - cpu0.1).as_secs_f64();
    let server_cpu_s = (cpu1.0 - cpu0.0).as_secs_f64() + server_system_s;
    Ok(DoorResult {
        door,
        acked: sent.acked,
        failed: sent.failed,
        first_error: sent.first_error,
        rows,
        server_cpu_s,
        server_system_s,
        wall_s: wall.as_secs_f64(),
        us_per_row: server_cpu_s * 1e6 / rows.max(1) as f64,
        cheaper_than_go: 0.0,
    })
}

/// The report as a markdown table.
pub fn markdown(r: &DoorsReport) -> String {
    let c = &r.config;
    let files: Vec<String> = c
        .files
        .iter()
        .map(|f| {
            f.file_name()
                .map_or(String::new(), |n| n.to_string_lossy().into_owned())
        })
        .collect();
    let mut s = format!(
        "{} pushes per door of {} ({} series, {} in flight); `go tool pprof -proto` of the same {} files: {:.2} s CPU ({:.2} s wall)\n\n",
        c.pushes,
        files.join(", "),
        c.series,
        c.concurrency,
        c.pushes,
        r.go.cpu.as_secs_f64(),
        r.go.wall.as_secs_f64(),
    );
    s.push_str("| door | pushes acked | failed | rows stored | server CPU (of it kernel) | wall | server CPU per row | vs `go tool pprof` |\n|---|---|---|---|---|---|---|---|\n");
    for d in &r.doors {
        s.push_str(&format!(
            "| {} | {} | {} | {} | {:.2} s ({:.2} s) | {:.2} s | **{:.3} us** | **{:.1}x** cheaper |\n",
            d.door.name(),
            d.acked,
            d.failed,
            d.rows,
            d.server_cpu_s,
            d.server_system_s,
            d.wall_s,
            d.us_per_row,
            d.cheaper_than_go,
        ));
    }
    s
}

/// Pushes the server profile at `pprof` into a fresh server and writes its top table
/// (`<stem>-top.md`, the first `rows` rows) and folded stacks (`<stem>.folded`) beside it.
pub async fn store_profile(
    pprof: &Path,
    strata: &Path,
    data_parent: Option<&Path>,
    rows: usize,
) -> Result<Vec<PathBuf>, String> {
    let srv = Server::spawn(strata, data_parent)
        .await
        .map_err(|e| e.to_string())?;
    let raw = std::fs::read(pprof).map_err(|e| format!("reading {}: {e}", pprof.display()))?;
    let now = strata_engine::now_ns() / 1_000_000_000;
    srv.api()
        .post_bytes(
            &format!(
                "/ingest?name=strata-server.cpu&format=pprof&from={}&until={now}",
                now - 60
            ),
            raw,
        )
        .await
        .map_err(|e| format!("pushing the profile: {e}"))?;
    let selection = strata_server::client::Selection {
        query: "process_cpu:cpu:nanoseconds:cpu:nanoseconds:delta{service_name=\"strata-server\"}"
            .into(),
        start: "now-1h".into(),
        end: "now".into(),
    };
    let top = srv
        .api()
        .top(&selection, &[])
        .await
        .map_err(|e| format!("top: {e}"))?;
    let total = top.meta.total.max(1) as f64;
    let mut md = format!(
        "Top of the server's own CPU profile ({:.2} s of CPU sampled), stored in Strata and read back with `/api/v1/query?report=top`.\n\n| function | flat | flat % | cumulative | cum % |\n|---|---|---|---|---|\n",
        total / 1e9
    );
    for row in top.rows.iter().take(rows) {
        md.push_str(&format!(
            "| `{}` | {:.0} ms | {:.1} % | {:.0} ms | {:.1} % |\n",
            top.name(row).replace('|', "\\|"),
            row.flat as f64 / 1e6,
            100.0 * row.flat as f64 / total,
            row.cumulative as f64 / 1e6,
            100.0 * row.cumulative as f64 / total,
        ));
    }
    let folded = srv
        .api()
        .export(&selection, "folded")
        .await
        .map_err(|e| format!("folded export: {e}"))?;
    let stem = pprof
        .to_string_lossy()
        .trim_end_matches(".pb.gz")
        .to_owned();
    let (md_path, folded_path) = (
        PathBuf::from(format!("{stem}-top.md")),
        PathBuf::from(format!("{stem}.folded")),
    );
    std::fs::write(&md_path, md).map_err(|e| e.to_string())?;
    std::fs::write(&folded_path, folded).map_err(|e| e.to_string())?;
    Ok(vec![md_path, folded_path])
}
