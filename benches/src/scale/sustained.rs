//! Sustained load: the fleet pushed continuously for a wall-clock duration into a server
//! configured for, and confined to, a memory limit.
//!
//! The server gets a config derived from the limit ([`MemoryBudget`]) and runs in a memory
//! cgroup with that limit ([`super::cgroup`]), so going over it is an OOM kill, not a number
//! in a report. While pushing, the harness samples the server's RSS, the cgroup's charge and
//! anonymous memory every 250 ms and the server's head and blocks (`/metrics`) every second;
//! it keeps every acknowledgement's time and latency. The run fails ([`SustainedReport::
//! failures`]) if the server dies, if its peak RSS (`VmHWM`, which catches spikes between
//! samples) reaches the limit, or if more than a small fraction of pushes fail.
//!
//! Simulated time advances with the pushes: rounds are consecutive 10 s intervals (no gaps),
//! and at `--rate 1` each round's timestamps are the wall clock's, as in production.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::cgroup::{self, Cgroup};
use super::fleet::{Fleet, FleetConfig, Generated};
use super::push::{self, Rate, Timeline};
use super::report::{percentile, si};
use super::server::{self, Server};
use super::{Error, Target};

mod render;

pub use render::{charts, markdown};

/// Rows one verification merge reads at most (about; whole rounds).
const VERIFY_SLICE_ROWS: u64 = 2_000_000;

/// A sustained run's settings.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SustainedConfig {
    /// The fleet.
    pub fleet: FleetConfig,
    /// Wall-clock time to push for (s).
    pub duration_s: f64,
    /// Push pacing.
    pub rate: Rate,
    /// `WriteRaw` calls in flight.
    pub concurrency: usize,
    /// The server's memory limit (bytes): its config is derived from it, and (with
    /// `enforce`) the kernel enforces it.
    pub memory_limit_bytes: u64,
    /// Run a spawned server in a memory cgroup limited to `memory_limit_bytes`.
    pub enforce: bool,
    /// Most failed pushes tolerated, as a fraction of requests.
    pub max_error_fraction: f64,
    /// Width of the time series' windows (s).
    pub window_s: f64,
    /// At the end, check that a merge over all the pushed data equals what was acknowledged.
    pub verify: bool,
}

impl SustainedConfig {
    /// `nodes` x 10 processes at real time (`--rate 1`) for `duration_s`, limited to
    /// `memory_limit_bytes`, enforced; 0.1 % of pushes may fail; 10 s windows.
    pub fn new(nodes: usize, duration_s: f64, memory_limit_bytes: u64) -> SustainedConfig {
        SustainedConfig {
            fleet: FleetConfig {
                nodes,
                processes: 10,
                ..FleetConfig::default()
            },
            duration_s,
            rate: Rate::Realtime(1.0),
            concurrency: 8,
            memory_limit_bytes,
            enforce: true,
            max_error_fraction: 0.001,
            window_s: 10.0,
            verify: true,
        }
    }
}

/// What bounds the server's memory, sized for a limit. The rest of the server (runtime,
/// gRPC buffers of the requests in flight, one query's working set, allocator slack) has to
/// fit in what is left: about half the limit.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct MemoryBudget {
    /// `engine.head.max_bytes`: the head is flushed at this size; while one head is being
    /// written out as a block the next fills, so two heads (and the block being encoded) can
    /// be in memory. limit / 8.
    pub head_max_bytes: u64,
    /// `engine.block.symbol_cache_bytes`: decoded symbol tables of queried blocks. limit / 16.
    pub symbol_cache_bytes: u64,
    /// `engine.compaction.merge_chunk_rows`: rows a compaction merges at a time (about 50
    /// bytes each). limit / 32 of rows' worth.
    pub merge_chunk_rows: u64,
    /// `engine.wal.group_commit_bytes`: bytes one WAL write gathers. limit / 64, at most the
    /// default 16 MiB.
    pub group_commit_bytes: u64,
}

impl MemoryBudget {
    /// The budget for a server limited to `limit` bytes.
    pub fn for_limit(limit: u64) -> MemoryBudget {
        MemoryBudget {
            head_max_bytes: (limit / 8).max(1 << 20),
            symbol_cache_bytes: limit / 16,
            merge_chunk_rows: (limit / 32 / 50).max(1024),
            group_commit_bytes: (limit / 64).clamp(64 << 10, 16 << 20),
        }
    }

    /// The `strata server` config file: the budget, everything else at its production
    /// default (WAL `fsync: always`, head `max_age` 10 m, compaction every minute), and no
    /// scraping of itself, so the store holds only the pushed data.
    pub fn server_yaml(&self) -> String {
        format!(
            "# strata server config for a memory limit (strata-bench sustained mode)\n\
             engine:\n  \
               head:\n    max_bytes: {}\n  \
               block:\n    symbol_cache_bytes: {}\n  \
               compaction:\n    merge_chunk_rows: {}\n  \
               wal:\n    group_commit_bytes: {}\n\
             scrape_configs: []\n",
            self.head_max_bytes,
            self.symbol_cache_bytes,
            self.merge_chunk_rows,
            self.group_commit_bytes
        )
    }
}

/// One memory sample.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct MemPoint {
    /// Seconds since the first push.
    pub elapsed_s: f64,
    /// Sample rows acknowledged by then.
    pub rows: u64,
    /// Server resident memory (bytes).
    pub rss_bytes: u64,
    /// The cgroup's charge: anonymous memory + page cache + kernel (bytes).
    pub cgroup_bytes: Option<u64>,
    /// The cgroup's anonymous memory (bytes).
    pub anon_bytes: Option<u64>,
    /// `strata_head_bytes` (all heads), from the latest `/metrics` read.
    pub head_bytes: Option<u64>,
    /// `strata_blocks`, likewise.
    pub blocks: Option<u64>,
}

/// The run over one window of wall time.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct Window {
    /// Start (s since the first push).
    pub start_s: f64,
    /// End.
    pub end_s: f64,
    /// Requests acknowledged in the window.
    pub requests: u64,
    /// Requests that failed in the window.
    pub failed: u64,
    /// Sample rows acknowledged per second.
    pub rows_per_s: f64,
    /// Acknowledgement latency of the window's requests, median (ms).
    pub ack_p50_ms: f64,
    /// 99th percentile (ms).
    pub ack_p99_ms: f64,
    /// Highest RSS sampled in the window (bytes).
    pub rss_max_bytes: u64,
    /// Highest cgroup charge sampled in the window (bytes).
    pub cgroup_max_bytes: Option<u64>,
}

/// Headline figures of a sustained run.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct SustainedSummary {
    /// Wall time spent pushing (s).
    pub wall_s: f64,
    /// Simulated time covered (s).
    pub simulated_s: f64,
    /// Sample rows acknowledged per second.
    pub rows_per_s: f64,
    /// CPU samples (sum of values) acknowledged per second.
    pub values_per_s: f64,
    /// Ingest rate over the rate the fleet produces rows in real time.
    pub realtime_factor: f64,
    /// Failed requests.
    pub failed_requests: u64,
    /// Failed over all requests.
    pub error_fraction: f64,
    /// The first failure's message.
    pub first_error: Option<String>,
    /// Acknowledgement latency, median (ms).
    pub ack_p50_ms: f64,
    /// 99th percentile (ms).
    pub ack_p99_ms: f64,
    /// Slowest (ms).
    pub ack_max_ms: f64,
    /// Peak resident memory over the whole run, verification included: the highest of the
    /// samples and the kernel's `VmHWM` (bytes).
    pub rss_peak_bytes: u64,
    /// The same until the end of pushing (bytes): the sustained ingest alone.
    pub rss_peak_push_bytes: u64,
    /// `VmHWM` at the end (bytes), if the server was still there to ask.
    pub rss_hwm_bytes: Option<u64>,
    /// Highest anonymous memory of the cgroup sampled (bytes).
    pub anon_peak_bytes: Option<u64>,
    /// The cgroup's peak charge, page cache included (`memory.peak` /
    /// `memory.max_usage_in_bytes`).
    pub cgroup_peak_bytes: Option<u64>,
    /// The cgroup's peak charge until the end of pushing.
    pub cgroup_peak_push_bytes: Option<u64>,
    /// The limit as the kernel held it.
    pub cgroup_limit_bytes: Option<u64>,
    /// OOM kills in the cgroup.
    pub oom_kills: Option<u64>,
    /// Times the cgroup hit its limit (and reclaimed page cache, or worse).
    pub limit_hits: Option<u64>,
    /// Highest `strata_head_bytes` seen (bytes).
    pub head_peak_bytes: Option<u64>,
    /// Blocks at the end.
    pub blocks: Option<u64>,
    /// Merged total over the whole run (when verified).
    pub merged_total: Option<f64>,
    /// How the server ended, if it did so on its own during the run.
    pub server_exit: Option<String>,
}

/// Everything a sustained run measured.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct SustainedReport {
    /// Settings.
    pub config: SustainedConfig,
    /// The server config derived from the limit.
    pub budget: MemoryBudget,
    /// The cgroup interface used, if the limit was enforced.
    pub cgroup: Option<cgroup::Version>,
    /// Pushed.
    pub generated: Generated,
    /// Acknowledged.
    pub acked: Generated,
    /// Headline figures.
    pub summary: SustainedSummary,
    /// Over time.
    pub windows: Vec<Window>,
    /// Memory samples.
    pub memory: Vec<MemPoint>,
    /// Why the run failed; empty when it passed.
    pub failures: Vec<String>,
}

/// Runs the sustained load. An `Err` is a harness failure (the server could not be started,
/// the cgroup not created); a run that completes with the server over its limit, dead or
/// refusing pushes returns a report whose `failures` say so.
pub async fn run(
    cfg: &SustainedConfig,
    target: &Target,
    progress: Option<&indicatif::ProgressBar>,
) -> Result<SustainedReport, Error> {
    let budget = MemoryBudget::for_limit(cfg.memory_limit_bytes);
    let (mut server, cgroup) = start_server(cfg, target, &budget).await?;
    let cgroup = cgroup.map(Arc::new);

    let timeline = timeline(cfg);
    let counters = Arc::new(push::Progress::default());
    let started = Instant::now();

    // Memory and the head, sampled while pushing; stops pushing if the server goes away.
    let sampler = MemorySampler::start(&server, counters.clone(), cgroup.clone(), started);
    let deadline = stop_after(cfg.duration_s, counters.clone());
    let ticker = progress.map(|bar| show_progress(bar.clone(), counters.clone(), started));

    let fleet = Fleet::new(cfg.fleet.clone());
    let pushed = push::push_rounds(
        std::slice::from_ref(&server.url),
        fleet,
        0..u64::MAX,
        timeline,
        push::PushOptions {
            rate: cfg.rate,
            concurrency: cfg.concurrency,
            pregenerate: false,
        },
        counters.clone(),
    )
    .await;
    deadline.abort();
    let wall = started.elapsed();
    let hwm_push = server.pid().and_then(server::hwm_of);
    let cgroup_peak_push = cgroup.as_ref().and_then(|c| c.peak());
    // Keep sampling through the verification query: it is part of what the server must fit.
    let mut failures = Vec::new();
    let mut summary = SustainedSummary::default();
    let outcome = match pushed {
        Ok((_, o)) => o,
        Err(e) => {
            failures.push(format!("pushing: {e}"));
            push::PushOutcome::default()
        }
    };
    // Rounds begun (the last one possibly cut short by the deadline).
    let rounds = outcome
        .generated
        .requests
        .div_ceil(cfg.fleet.nodes.max(1) as u64);
    let end_ns = timeline.round_end(rounds.max(1) - 1);
    if cfg.verify && server.exit_status().is_none() && outcome.acked.requests > 0 {
        summary.merged_total = verify(
            &server,
            timeline,
            rounds,
            outcome.generated.rows,
            &mut failures,
        )
        .await;
    }
    let memory = sampler.finish().await;
    if let Some(t) = ticker {
        t.abort();
    }
    let (hwm, version) = shut_down(server, cgroup, &mut summary);
    let hwm = hwm.max(hwm_push);

    let secs = wall.as_secs_f64().max(1e-9);
    let measured = Measured {
        outcome: &outcome,
        memory: &memory,
        secs,
        simulated_s: (end_ns - timeline.start_ns) as f64 / 1e9,
        rounds,
        hwm,
        hwm_push,
        cgroup_peak_push,
    };
    summarize(&mut summary, cfg, &measured);
    let windows = windows(cfg, &outcome, &memory, secs);
    failures.extend(verdict(cfg, &summary, &outcome));
    Ok(SustainedReport {
        config: cfg.clone(),
        budget,
        cgroup: version,
        generated: outcome.generated,
        acked: outcome.acked,
        summary,
        windows,
        memory,
        failures,
    })
}

/// Reads the server's exit status and the cgroup's peak charge, limit, OOM kills and limit
/// hits into the summary, stops the server and removes the cgroup. Returns the server's
/// `VmHWM` before it stopped and the cgroup interface used.
fn shut_down(
    mut server: Server,
    cgroup: Option<Arc<Cgroup>>,
    summary: &mut SustainedSummary,
) -> (Option<u64>, Option<cgroup::Version>) {
    let hwm = server.pid().and_then(server::hwm_of);
    summary.server_exit = server.exit_status().map(|s| s.to_string());
    if let Some(cg) = &cgroup {
        summary.cgroup_peak_bytes = cg.peak();
        summary.cgroup_limit_bytes = cg.limit();
        summary.oom_kills = cg.oom_kills();
        summary.limit_hits = cg.limit_hits();
    }
    server.stop();
    drop(server);
    // The server has exited: the cgroup can go.
    let version = cgroup.as_ref().map(|c| c.version());
    drop(cgroup);
    (hwm, version)
}

/// Starts (or connects to) the server with the budget's config, in a memory cgroup limited
/// to the budget's limit when the server is spawned and the limit enforced.
async fn start_server(
    cfg: &SustainedConfig,
    target: &Target,
    budget: &MemoryBudget,
) -> Result<(Server, Option<Cgroup>), Error> {
    let cgroup = match target {
        Target::Spawn(..) if cfg.enforce => Some(Cgroup::create(cfg.memory_limit_bytes, None)?),
        _ => None,
    };
    let server = match target {
        Target::Spawn(bin, parent) => {
            let procs = cgroup.as_ref().map(Cgroup::procs_file);
            Server::spawn_with(
                bin,
                parent.as_deref(),
                &budget.server_yaml(),
                procs.as_deref(),
            )
            .await?
        }
        Target::Url(url) => Server::connect(url).await?,
    };
    if let (Some(cg), Some(pid)) = (&cgroup, server.pid()) {
        // The server put itself there before exec; check.
        let procs = std::fs::read_to_string(cg.procs_file()).unwrap_or_default();
        if !procs.lines().any(|l| l.trim() == pid.to_string()) {
            cg.add(pid)?;
        }
    }
    Ok((server, cgroup))
}

/// Consecutive intervals ending now: round r ends at start + (r + 1) x interval. At real
/// time that is when it is pushed; faster, the data starts as far back as the run can
/// reach, so it never lies ahead of the wall clock.
fn timeline(cfg: &SustainedConfig) -> Timeline {
    let interval = cfg.fleet.interval_ns;
    let now_ns = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64);
    let ahead_s = match cfg.rate {
        Rate::Realtime(f) => cfg.duration_s * (f - 1.0).max(0.0),
        Rate::Max => cfg.duration_s * 20.0,
    };
    let start_ns = (now_ns - (ahead_s * 1e9) as i64) / interval * interval - interval;
    Timeline {
        start_ns,
        gap_ns: interval,
    }
}

/// A task sampling the server's memory every 250 ms and its head and blocks (`/metrics`)
/// every second until [`MemorySampler::finish`]; it stops the push if a spawned server goes
/// away.
struct MemorySampler {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<Vec<MemPoint>>,
}

impl MemorySampler {
    fn start(
        server: &Server,
        counters: Arc<push::Progress>,
        cgroup: Option<Arc<Cgroup>>,
        started: Instant,
    ) -> MemorySampler {
        let stop = Arc::new(AtomicBool::new(false));
        let pid = server.pid();
        let url = server.url.clone();
        let task = tokio::spawn(sample_memory(
            stop.clone(),
            counters,
            cgroup,
            pid,
            url,
            started,
        ));
        MemorySampler { stop, task }
    }

    /// Stops sampling and returns the samples.
    async fn finish(self) -> Vec<MemPoint> {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.unwrap_or_default()
    }
}

/// The sampling loop of [`MemorySampler`].
async fn sample_memory(
    stop: Arc<AtomicBool>,
    counters: Arc<push::Progress>,
    cgroup: Option<Arc<Cgroup>>,
    pid: Option<u32>,
    url: String,
    started: Instant,
) -> Vec<MemPoint> {
    let probe = Server::connect(&url).await.ok();
    let mut points = Vec::new();
    let (mut head_bytes, mut blocks) = (None, None);
    let mut tick = 0u64;
    while !stop.load(Ordering::Relaxed) {
        if tick.is_multiple_of(4)
            && let Some(p) = &probe
            && let Ok(m) = p.metrics().await
        {
            head_bytes = server::metric(&m, "strata_head_bytes").map(|v| v as u64);
            blocks = server::metric(&m, "strata_blocks").map(|v| v as u64);
        }
        tick += 1;
        let rss = match (pid, &probe) {
            (Some(pid), _) => server::rss_of(pid),
            (None, Some(s)) => s.rss_bytes().await,
            _ => None,
        };
        match rss {
            Some(rss_bytes) => points.push(MemPoint {
                elapsed_s: started.elapsed().as_secs_f64(),
                rows: counters.rows.load(Ordering::Relaxed),
                rss_bytes,
                cgroup_bytes: cgroup.as_ref().and_then(|c| c.current()),
                anon_bytes: cgroup.as_ref().and_then(|c| c.anon()),
                head_bytes,
                blocks,
            }),
            // A spawned server without a VmRSS: it exited (or is a zombie).
            None if pid.is_some() => {
                counters.stop.store(true, Ordering::Relaxed);
                break;
            }
            None => {}
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    points
}

/// A task that stops the push after `duration_s` seconds.
fn stop_after(duration_s: f64, counters: Arc<push::Progress>) -> tokio::task::JoinHandle<()> {
    let d = Duration::from_secs_f64(duration_s);
    tokio::spawn(async move {
        tokio::time::sleep(d).await;
        counters.stop.store(true, Ordering::Relaxed);
    })
}

/// A task showing elapsed seconds and acknowledged rows on `bar` every 500 ms, until aborted.
fn show_progress(
    bar: indicatif::ProgressBar,
    counters: Arc<push::Progress>,
    started: Instant,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            bar.set_position(started.elapsed().as_secs());
            bar.set_message(format!(
                "{} rows acknowledged, {} failed",
                si(counters.rows.load(Ordering::Relaxed) as f64),
                counters.failed.load(Ordering::Relaxed)
            ));
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    })
}

/// The total of a merge over the `rounds` rounds pushed, or `None` (with the failure in
/// `failures`) if a query failed. In slices of about `VERIFY_SLICE_ROWS` rows: a merge's
/// working memory grows with the rows it reads, and this checks what was stored, not how big
/// a query fits.
async fn verify(
    server: &Server,
    timeline: Timeline,
    rounds: u64,
    generated_rows: u64,
    failures: &mut Vec<String>,
) -> Option<f64> {
    let per_round = (generated_rows / rounds.max(1)).max(1);
    let step = (VERIFY_SLICE_ROWS / per_round).max(1);
    let at = |r: u64| timeline.start_ns + r as i64 * timeline.gap_ns;
    let mut total = 0.0;
    let mut r0 = 0;
    while r0 < rounds {
        let r1 = (r0 + step).min(rounds);
        match super::probe::merge_total(server, at(r0), at(r1)).await {
            Ok(t) => total += t,
            Err(e) => {
                failures.push(format!("verification query: {e}"));
                break;
            }
        }
        r0 = r1;
    }
    (r0 >= rounds).then_some(total)
}

/// What a run measured, for [`summarize`].
struct Measured<'a> {
    /// The push's outcome.
    outcome: &'a push::PushOutcome,
    /// The memory samples.
    memory: &'a [MemPoint],
    /// Wall time spent pushing (s).
    secs: f64,
    /// Simulated time covered (s).
    simulated_s: f64,
    /// Rounds begun.
    rounds: u64,
    /// The server's `VmHWM` at the end.
    hwm: Option<u64>,
    /// The same at the end of pushing.
    hwm_push: Option<u64>,
    /// The cgroup's peak charge at the end of pushing.
    cgroup_peak_push: Option<u64>,
}

/// Fills in the headline figures from what the run measured.
fn summarize(summary: &mut SustainedSummary, cfg: &SustainedConfig, m: &Measured) {
    let (outcome, memory, secs) = (m.outcome, m.memory, m.secs);
    let (generated, acked) = (&outcome.generated, &outcome.acked);
    let interval = cfg.fleet.interval_ns;
    let mut lat = outcome.latencies_us.clone();
    lat.sort_unstable();
    let rows_per_interval = generated.rows as f64 / m.rounds.max(1) as f64;
    summary.wall_s = secs;
    summary.simulated_s = m.simulated_s;
    summary.rows_per_s = acked.rows as f64 / secs;
    summary.values_per_s = acked.value as f64 / secs;
    summary.realtime_factor =
        summary.rows_per_s / (rows_per_interval / (interval as f64 / 1e9)).max(1e-9);
    summary.failed_requests = outcome.failed;
    summary.error_fraction = outcome.failed as f64 / generated.requests.max(1) as f64;
    summary.first_error = outcome.first_error.clone();
    summary.ack_p50_ms = percentile(&lat, 50.0) as f64 / 1e3;
    summary.ack_p99_ms = percentile(&lat, 99.0) as f64 / 1e3;
    summary.ack_max_ms = lat.last().map_or(0.0, |&v| v as f64 / 1e3);
    summary.rss_hwm_bytes = m.hwm;
    summary.rss_peak_bytes = memory
        .iter()
        .map(|p| p.rss_bytes)
        .chain(m.hwm)
        .max()
        .unwrap_or(0);
    summary.rss_peak_push_bytes = memory
        .iter()
        .filter(|p| p.elapsed_s <= secs)
        .map(|p| p.rss_bytes)
        .chain(m.hwm_push)
        .max()
        .unwrap_or(0);
    summary.cgroup_peak_push_bytes = m.cgroup_peak_push;
    summary.anon_peak_bytes = memory.iter().filter_map(|p| p.anon_bytes).max();
    summary.head_peak_bytes = memory.iter().filter_map(|p| p.head_bytes).max();
    summary.blocks = memory.iter().rev().find_map(|p| p.blocks);
}

/// Why the run failed, from its summary: the server exited or was OOM-killed, its RSS
/// reached the limit, too many pushes failed, none was acknowledged, or the merge disagrees.
fn verdict(
    cfg: &SustainedConfig,
    summary: &SustainedSummary,
    outcome: &push::PushOutcome,
) -> Vec<String> {
    let (generated, acked) = (&outcome.generated, &outcome.acked);
    let mut failures = Vec::new();
    let limit = cfg.memory_limit_bytes;
    if let Some(exit) = &summary.server_exit {
        failures.push(format!("the server exited during the run: {exit}"));
    }
    if let Some(n) = summary.oom_kills.filter(|&n| n > 0) {
        failures.push(format!(
            "the kernel OOM-killed {n} process(es) of the server's cgroup"
        ));
    }
    if summary.rss_peak_bytes >= limit {
        failures.push(format!(
            "server RSS peaked at {} MiB, not under the {} MiB limit",
            summary.rss_peak_bytes >> 20,
            limit >> 20
        ));
    }
    if summary.error_fraction > cfg.max_error_fraction {
        failures.push(format!(
            "{} of {} pushes failed ({:.3} %, tolerance {:.3} %); first: {}",
            outcome.failed,
            generated.requests,
            summary.error_fraction * 100.0,
            cfg.max_error_fraction * 100.0,
            outcome.first_error.as_deref().unwrap_or("-")
        ));
    }
    if acked.requests == 0 {
        failures.push("no push was acknowledged".into());
    }
    if let Some(total) = summary.merged_total
        && total != acked.value as f64
    {
        failures.push(format!(
            "a merge over the run totals {total}, but {} values were acknowledged",
            acked.value
        ));
    }
    failures
}

/// Buckets acknowledgements, failures and memory samples into `cfg.window_s` windows.
fn windows(
    cfg: &SustainedConfig,
    o: &push::PushOutcome,
    memory: &[MemPoint],
    wall_s: f64,
) -> Vec<Window> {
    let w = cfg.window_s.max(0.5);
    // Whole windows; the last one takes the remainder (the drain after the deadline).
    let n = (wall_s / w).round().max(1.0) as usize;
    let mut out: Vec<Window> = (0..n)
        .map(|i| Window {
            start_s: i as f64 * w,
            end_s: if i + 1 == n {
                wall_s
            } else {
                (i + 1) as f64 * w
            },
            ..Window::default()
        })
        .collect();
    let slot = |ms: u64| ((ms as f64 / 1e3 / w) as usize).min(n - 1);
    let mut lat: Vec<Vec<u64>> = vec![Vec::new(); n];
    let mut rows = vec![0u64; n];
    for (&at, &us) in o.acked_at_ms.iter().zip(&o.latencies_us) {
        let i = slot(at);
        lat[i].push(us);
        out[i].requests += 1;
    }
    for &at in &o.failed_at_ms {
        out[slot(at)].failed += 1;
    }
    // Rows per window from the acknowledged-rows counter in the memory samples.
    let mut prev = 0u64;
    for p in memory.iter().filter(|p| p.elapsed_s <= wall_s) {
        let i = ((p.elapsed_s / w) as usize).min(n - 1);
        rows[i] += p.rows.saturating_sub(prev);
        prev = prev.max(p.rows);
        out[i].rss_max_bytes = out[i].rss_max_bytes.max(p.rss_bytes);
        out[i].cgroup_max_bytes = out[i].cgroup_max_bytes.max(p.cgroup_bytes);
    }
    for (i, win) in out.iter_mut().enumerate() {
        lat[i].sort_unstable();
        win.ack_p50_ms = percentile(&lat[i], 50.0) as f64 / 1e3;
        win.ack_p99_ms = percentile(&lat[i], 99.0) as f64 / 1e3;
        win.rows_per_s = rows[i] as f64 / (win.end_s - win.start_s).max(1e-9);
    }
    out
}
