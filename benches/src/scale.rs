//! The scale harness behind `strata-bench`: a simulated fleet ([`fleet`]) pushed through
//! Parca `WriteRaw` into a real `strata server` ([`server`], [`push`]), with query probes at
//! checkpoints as data grows ([`probe`]), a JSON and markdown [`report`] and SVG charts
//! ([`plot`]).
//!
//! Time is compressed: the fleet's profiles carry simulated timestamps, `rounds` intervals
//! spread evenly over `span` of simulated time (each round is one interval of every node; when
//! the span is longer than the rounds fill, the intervals in between are skipped), and pushed
//! as fast as the server acknowledges ([`Rate::Max`]) or at a multiple of real time.
//!
//! [`sustained`] is another mode: consecutive intervals pushed for a wall-clock duration
//! into a server held to a memory limit; [`cluster`] pushes the same fleet into a cluster of
//! ingesters, queriers and a compactor sharing one S3 bucket.

pub mod cgroup;
pub mod cluster;
pub mod fleet;
pub mod plot;
pub mod pprof;
pub mod probe;
pub mod push;
pub mod report;
pub mod server;
pub mod sustained;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

pub use fleet::{Fleet, FleetConfig, Generated};
pub use push::{Rate, Timeline};
pub use report::Report;
pub use server::Server;

/// What went wrong.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file or process operation.
    #[error("{0}: {1}")]
    Io(String, #[source] std::io::Error),
    /// The server could not be started or reached.
    #[error("server: {0}")]
    Server(String),
    /// A call of the server's HTTP API (named by the first field) failed or answered
    /// unexpectedly (an answer missing a field is an error, not a 0).
    #[error("{0}: {1}")]
    Api(String, #[source] strata_server::client::ClientError),
    /// A chart could not be drawn.
    #[error("plot {0}: {1}")]
    Plot(String, String),
    /// A call of the cluster's bucket (named by the first field) failed.
    #[error("{0}: {1}")]
    Bucket(String, #[source] object_store::Error),
}

impl Error {
    fn io(what: impl Into<String>, e: std::io::Error) -> Error {
        Error::Io(what.into(), e)
    }
}

/// A run's settings.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ScaleConfig {
    /// The fleet.
    pub fleet: FleetConfig,
    /// Rounds (intervals of every node) to push.
    pub rounds: u64,
    /// Simulated time the rounds are spread over (ns); at least `rounds x interval`.
    pub span_ns: i64,
    /// Checkpoints (query probes, memory and disk) spread over the rounds; the last is at the
    /// end.
    pub checkpoints: u64,
    /// Runs of each probe per checkpoint.
    pub query_repeats: usize,
    /// Push pacing.
    pub rate: Rate,
    /// `WriteRaw` calls in flight.
    pub concurrency: usize,
    /// At the end, wait up to this long (s) for the head to be flushed before sizing the
    /// data directory.
    pub flush_wait_s: u64,
    /// Build each part's requests before it is pushed (see [`push::PushOptions`]).
    #[serde(default)]
    pub pregenerate: bool,
}

/// Named sizes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Preset {
    /// 5 nodes x 4 processes, 6 rounds over 2 h: the test's run (seconds).
    Tiny,
    /// 20 nodes x 10 processes, 48 rounds over 24 h.
    Small,
    /// `n` nodes x 10 processes over 24 h, the rounds scaled so a release build on 2 cores
    /// takes minutes.
    Nodes(usize),
}

impl Preset {
    /// The settings of this preset.
    pub fn config(self) -> ScaleConfig {
        let hour = 3_600_000_000_000i64;
        let (nodes, processes, rounds, span_ns, checkpoints) = match self {
            Preset::Tiny => (5, 4, 6, 2 * hour, 2),
            Preset::Small => (20, 10, 48, 24 * hour, 4),
            // About 25 M rows a run at the default shape (~350 rows per node and round).
            Preset::Nodes(n) => (
                n,
                10,
                (60_000 / n.max(1) as u64).clamp(8, 720),
                24 * hour,
                6,
            ),
        };
        ScaleConfig {
            fleet: FleetConfig {
                nodes,
                processes,
                ..FleetConfig::default()
            },
            rounds,
            span_ns,
            checkpoints,
            query_repeats: 3,
            rate: Rate::Max,
            concurrency: 8,
            flush_wait_s: 60,
            pregenerate: false,
        }
    }
}

/// Where the server is.
pub enum Target {
    /// Spawn this `strata` binary on a temporary data directory (under the given parent).
    Spawn(PathBuf, Option<PathBuf>),
    /// Use the server at this URL.
    Url(String),
}

/// Runs the benchmark: pushes `cfg.rounds` rounds with checkpoints, verifies and measures.
/// `progress` (if given) is advanced by sample rows acknowledged.
pub async fn run(
    cfg: &ScaleConfig,
    target: &Target,
    progress: Option<&indicatif::ProgressBar>,
) -> Result<Report, Error> {
    let mut server = match target {
        Target::Spawn(bin, parent) => Server::spawn(bin, parent.as_deref()).await?,
        Target::Url(url) => Server::connect(url).await?,
    };
    let timeline = timeline(cfg);
    let counters = Arc::new(push::Progress::default());
    let started = Instant::now();

    // Server memory, sampled every 250 ms while pushing.
    let rss_sampler = RssSampler::start(&server, counters.clone(), started);
    let ticker = progress.map(|bar| show_progress(bar.clone(), counters.clone()));
    let Pushed {
        generated,
        acked,
        mut latencies,
        mut verification,
        checkpoints,
        push_wall,
        server_cpu,
    } = push_with_checkpoints(cfg, &server, timeline, counters).await?;
    let rss = rss_sampler.finish().await;
    if let Some(t) = ticker {
        t.abort();
    }
    let end = timeline.round_end(cfg.rounds.max(1) - 1);
    verification.merged_total = probe::merge_total(&server, timeline.start_ns, end + 1).await?;

    // Sizes: once the head has been flushed (it is flushed by age), or at the deadline.
    let (head_flushed, metrics) = wait_for_flush(&server, cfg.flush_wait_s).await?;
    let block_rows = server::metric(&metrics, "strata_block_samples").unwrap_or(0.0);
    let block_bytes = server::metric(&metrics, "strata_block_bytes").unwrap_or(0.0);
    let rss_final = server.rss_bytes().await.unwrap_or(0);
    server.stop();
    let disk = server.disk_bytes();

    latencies.sort_unstable();
    let pct = |p| report::percentile(&latencies, p) as f64 / 1e3;
    let secs = push_wall.as_secs_f64().max(1e-9);
    let last = checkpoints.last();
    let query_ms = |q: &str| {
        last.and_then(|c: &report::Checkpoint| c.queries.iter().find(|t| t.query == q))
            .map_or(0.0, |t| t.median_ms)
    };
    let simulated_s = (end - timeline.start_ns) as f64 / 1e9;
    // Real time: the fleet makes a round's rows every interval.
    let rows_per_interval = generated.rows as f64 / cfg.rounds.max(1) as f64;
    let interval = cfg.fleet.interval_ns;
    let summary = report::Summary {
        ingest_rows_per_s: acked.rows as f64 / secs,
        ingest_values_per_s: acked.value as f64 / secs,
        realtime_factor: acked.rows as f64 / secs / (rows_per_interval / (interval as f64 / 1e9)),
        ack_p50_ms: pct(50.0),
        ack_p99_ms: pct(99.0),
        ack_max_ms: latencies.last().map_or(0.0, |&v| v as f64 / 1e3),
        rss_peak_bytes: rss
            .iter()
            .map(|p| p.rss_bytes)
            .chain(checkpoints.iter().filter_map(|c| c.rss_bytes))
            .chain([rss_final])
            .max()
            .unwrap_or(0),
        disk_bytes_per_row: disk.map(|d| d as f64 / acked.rows.max(1) as f64),
        block_bytes_per_row: (block_rows > 0.0).then(|| block_bytes / block_rows),
        head_flushed,
        merge_1h_ms: query_ms("merge_1h"),
        merge_24h_ms: query_ms("merge_24h"),
        server_cpu_s: server_cpu.map(|d| d.as_secs_f64()),
        server_us_per_row: server_cpu.map(|d| d.as_secs_f64() * 1e6 / acked.rows.max(1) as f64),
    };
    Ok(Report {
        config: cfg.clone(),
        generated,
        acked,
        push_wall_s: secs,
        simulated_s,
        summary,
        verification,
        checkpoints,
        rss,
    })
}

/// `cfg.rounds` rounds spread over `cfg.span_ns`, the data ending a minute before the wall
/// clock's now, on an interval boundary.
fn timeline(cfg: &ScaleConfig) -> Timeline {
    let interval = cfg.fleet.interval_ns;
    let gap_ns = (cfg.span_ns / cfg.rounds.max(1) as i64).max(interval);
    let now_ns = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64);
    let end_ns = (now_ns - 60_000_000_000) / interval * interval;
    Timeline {
        start_ns: end_ns - cfg.rounds as i64 * gap_ns,
        gap_ns,
    }
}

/// A task sampling the server's RSS every 250 ms until [`RssSampler::finish`].
struct RssSampler {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<Vec<report::RssPoint>>,
}

impl RssSampler {
    fn start(server: &Server, counters: Arc<push::Progress>, started: Instant) -> RssSampler {
        let stop = Arc::new(AtomicBool::new(false));
        let pid = server.pid();
        let url = server.url.clone();
        let task = tokio::spawn(sample_rss(stop.clone(), counters, pid, url, started));
        RssSampler { stop, task }
    }

    /// Stops sampling and returns the samples.
    async fn finish(self) -> Vec<report::RssPoint> {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.unwrap_or_default()
    }
}

/// The sampling loop of [`RssSampler`]: the spawned server's `/proc` status, or a running
/// server's RSS as it reports it.
async fn sample_rss(
    stop: Arc<AtomicBool>,
    counters: Arc<push::Progress>,
    pid: Option<u32>,
    url: String,
    started: Instant,
) -> Vec<report::RssPoint> {
    let probe = match pid {
        Some(_) => None,
        None => Server::connect(&url).await.ok(),
    };
    let mut points = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        let rss = match (pid, &probe) {
            (Some(pid), _) => server::rss_of(pid),
            (None, Some(s)) => s.rss_bytes().await,
            _ => None,
        };
        if let Some(rss_bytes) = rss {
            points.push(report::RssPoint {
                elapsed_s: started.elapsed().as_secs_f64(),
                rows: counters.rows.load(Ordering::Relaxed),
                rss_bytes,
            });
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    points
}

/// A task showing acknowledged rows on `bar` every 200 ms, until aborted.
fn show_progress(
    bar: indicatif::ProgressBar,
    counters: Arc<push::Progress>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            bar.set_position(counters.rows.load(Ordering::Relaxed));
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
}

/// What the pushes of all checkpoints did.
struct Pushed {
    generated: Generated,
    acked: Generated,
    /// Per acknowledged call (us), unsorted.
    latencies: Vec<u64>,
    /// Failed requests and the first error; `merged_total` not yet known.
    verification: report::Verification,
    checkpoints: Vec<report::Checkpoint>,
    /// Wall time spent pushing, checkpoints' probes not included.
    push_wall: Duration,
    /// The spawned server's CPU time (every thread, user + system) while pushing.
    server_cpu: Option<Duration>,
}

/// Pushes `cfg.rounds` rounds in `cfg.checkpoints` parts, probing the server after each.
async fn push_with_checkpoints(
    cfg: &ScaleConfig,
    server: &Server,
    timeline: Timeline,
    counters: Arc<push::Progress>,
) -> Result<Pushed, Error> {
    let mut fleet = Fleet::new(cfg.fleet.clone());
    let mut pushed = Pushed {
        generated: Generated::default(),
        acked: Generated::default(),
        latencies: Vec::new(),
        verification: report::Verification::default(),
        checkpoints: Vec::new(),
        push_wall: Duration::ZERO,
        server_cpu: None,
    };
    let n_checkpoints = cfg.checkpoints.clamp(1, cfg.rounds.max(1));
    let mut done = 0u64;
    for k in 1..=n_checkpoints {
        let upto = cfg.rounds * k / n_checkpoints;
        let cpu_before = server.pid().and_then(server::cpu_of);
        let (f, outcome) = push::push_rounds(
            std::slice::from_ref(&server.url),
            fleet,
            done..upto,
            timeline,
            push::PushOptions {
                rate: cfg.rate,
                concurrency: cfg.concurrency,
                pregenerate: cfg.pregenerate,
            },
            counters.clone(),
        )
        .await?;
        if let (Some(a), Some(b)) = (cpu_before, server.pid().and_then(server::cpu_of)) {
            *pushed.server_cpu.get_or_insert(Duration::ZERO) += (b.0 + b.1) - (a.0 + a.1);
        }
        fleet = f;
        pushed.generated.add(&outcome.generated);
        pushed.acked.add(&outcome.acked);
        pushed.latencies.extend(outcome.latencies_us);
        let verification = &mut pushed.verification;
        verification.failed_requests += outcome.failed;
        if verification.first_error.is_none() {
            verification.first_error = outcome.first_error;
        }
        pushed.push_wall += outcome.wall;
        let now = if upto == 0 {
            timeline.start_ns
        } else {
            timeline.round_end(upto - 1)
        };
        let metrics = server.metrics().await?;
        let m = |name| server::metric(&metrics, name).map(|v| v as u64);
        pushed.checkpoints.push(report::Checkpoint {
            rounds: upto,
            rows: pushed.acked.rows,
            simulated_s: (now - timeline.start_ns) as f64 / 1e9,
            ingest_rows_per_s: outcome.acked.rows as f64 / outcome.wall.as_secs_f64().max(1e-9),
            rss_bytes: server.rss_bytes().await,
            disk_bytes: server.disk_bytes(),
            block_samples: m("strata_block_samples"),
            block_bytes: m("strata_block_bytes"),
            queries: probe::probe(server, now, cfg.query_repeats).await?,
        });
        done = upto;
    }
    Ok(pushed)
}

/// Waits up to `wait_s` seconds for the head to be flushed (it is flushed by age); returns
/// whether it was, and the server's last metrics.
async fn wait_for_flush(server: &Server, wait_s: u64) -> Result<(bool, Vec<(String, f64)>), Error> {
    let deadline = Instant::now() + Duration::from_secs(wait_s);
    let mut metrics = server.metrics().await?;
    loop {
        if server::metric(&metrics, "strata_head_samples") == Some(0.0) {
            return Ok((true, metrics));
        }
        if Instant::now() >= deadline {
            return Ok((false, metrics));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        metrics = server.metrics().await?;
    }
}
