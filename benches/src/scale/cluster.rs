//! Scale-out on one machine (`strata-bench --ingesters N --queriers M`): the fleet pushed into
//! a cluster sharing one S3 bucket — a local `moto_server` ([`Moto`]), `N` `strata server
//! --target ingester` processes (node `k` pushes to ingester `k % N`), `M` queriers and one
//! compactor, each its own process on its own 127.0.0.x address — measuring, per ingester, the
//! server CPU per stored row (`/proc/<pid>/stat`), the bucket's bytes (listed through
//! `object_store`), and the 1 h / 24 h merges through one querier and through all of them at
//! once, before the ingesters flush their heads (`POST /ingester/flush`) and after.

use std::fmt::Write;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::TryStreamExt;
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::{ObjectStore, ObjectStoreExt};

use super::fleet::{Fleet, Generated};
use super::report::{self, Verification, si};
use super::server::{self, Server};
use super::{Error, ScaleConfig, probe, push};

mod markdown;
pub use markdown::markdown;

/// The bucket the cluster shares, and the prefix its store is under.
const BUCKET: &str = "strata-bench";
const PREFIX: &str = "fleet";

/// The merges timed through the queriers (see [`probe::QUERIES`]).
const MERGES: [&str; 2] = ["merge_1h", "merge_24h"];

/// How long past `shared.flushed_head_retention` to wait after the flush for the ingesters
/// to drop the flushed heads they keep.
const HEADS_EXPIRY_MARGIN: Duration = Duration::from_secs(60);

/// How many of each role, and how long ingesters keep flushed heads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ClusterSetup {
    /// `--target ingester` processes; the fleet's pushes are spread over them.
    pub ingesters: usize,
    /// `--target querier` processes.
    pub queriers: usize,
    /// `engine.shared.flushed_head_retention` (s); `catalog_refresh` is half of it, at most
    /// 5 s (its default).
    pub flushed_head_retention_s: u64,
}

impl ClusterSetup {
    /// `ingesters` and `queriers` with the engine's default retention of flushed heads (2 m).
    pub fn new(ingesters: usize, queriers: usize) -> ClusterSetup {
        ClusterSetup {
            ingesters,
            queriers,
            flushed_head_retention_s: 120,
        }
    }

    /// At least one of each, and every process on its own 127.0.0.x address (2-254).
    pub fn check(&self) -> Result<(), String> {
        if self.ingesters == 0 || self.queriers == 0 {
            return Err("a cluster needs at least one ingester and one querier".into());
        }
        if self.ingesters + self.queriers + 1 > 253 {
            return Err("at most 252 ingesters and queriers (one 127.0.0.x address each)".into());
        }
        if self.flushed_head_retention_s < 2 {
            return Err("flushed heads must be kept at least 2 s".into());
        }
        Ok(())
    }
}

/// A `moto_server` (PyPI `moto[server]`) on 127.0.0.1 holding [`BUCKET`]; killed on drop.
pub struct Moto {
    child: Child,
    /// Its port.
    pub port: u16,
}

impl Moto {
    /// Starts `moto_server` on a free port and creates [`BUCKET`] in it (S3 CreateBucket: a
    /// plain `PUT /<bucket>`, which moto takes unsigned).
    pub async fn start() -> Result<Moto, Error> {
        let port = free_port("127.0.0.1")?;
        let child = Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| Error::io("starting moto_server (pip install 'moto[server]')", e))?;
        let mut moto = Moto { child, port };
        let create = format!("{}/{BUCKET}", moto.endpoint());
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            match http.put(&create).send().await {
                Ok(r) if r.status().is_success() => return Ok(moto),
                Ok(r) => {
                    return Err(Error::Server(format!(
                        "moto_server: creating bucket {BUCKET}: {}",
                        r.status()
                    )));
                }
                Err(e) => {
                    if let Ok(Some(status)) = moto.child.try_wait() {
                        return Err(Error::Server(format!("moto_server exited ({status})")));
                    }
                    if Instant::now() > deadline {
                        return Err(Error::Server(format!(
                            "moto_server on port {port} not answering after 60 s: {e}"
                        )));
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The `engine.storage.options` of a store in this server (`object_store`'s S3 keys).
    fn options(&self) -> [(&'static str, String); 5] {
        [
            ("aws_endpoint", self.endpoint()),
            ("aws_allow_http", "true".into()),
            ("aws_access_key_id", "bench".into()),
            ("aws_secret_access_key", "bench".into()),
            ("aws_region", "us-east-1".into()),
        ]
    }

    /// A client of [`BUCKET`], built from the same options the cluster is given.
    pub fn bucket(&self) -> Result<Arc<dyn ObjectStore>, Error> {
        let mut builder = AmazonS3Builder::new().with_bucket_name(BUCKET);
        for (key, value) in self.options() {
            let key: AmazonS3ConfigKey = key
                .parse()
                .map_err(|e| Error::Bucket(format!("option {key}"), e))?;
            builder = builder.with_config(key, value);
        }
        let store = builder
            .build()
            .map_err(|e| Error::Bucket(format!("a client of {}", self.endpoint()), e))?;
        Ok(Arc::new(store))
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A free port on `ip` (the listener is closed again, so a server can take it).
fn free_port(ip: &str) -> Result<u16, Error> {
    TcpListener::bind((ip, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| Error::io(format!("finding a free port on {ip}"), e))
}

/// The config every member reads: the bucket in `moto`, every ingester and querier (merges
/// split across the queriers), the heads flushed by age as the single server's are
/// (`server::SERVER_CONFIG`), the flushed heads kept as `setup` says, no scraping of itself.
fn config_yaml(
    moto: &Moto,
    ingesters: &[String],
    queriers: &[String],
    setup: &ClusterSetup,
) -> String {
    let mut options = String::new();
    for (key, value) in moto.options() {
        let _ = writeln!(options, "      {key}: \"{value}\"");
    }
    let urls = |addrs: &[String]| -> String {
        addrs
            .iter()
            .map(|a| format!("\"http://{a}\""))
            .collect::<Vec<_>>()
            .join(", ")
    };
    format!(
        "engine:
  storage:
    url: s3://{BUCKET}/{PREFIX}
    options:
{options}  head:
    max_age: 20s
  shared: {{flushed_head_retention: {retention}s, catalog_refresh: {refresh}s, deletion_delay: 5m}}
scrape_configs: []
cluster:
  ingesters: [{}]
  queriers: [{}]
",
        urls(ingesters),
        urls(queriers),
        retention = setup.flushed_head_retention_s,
        refresh = (setup.flushed_head_retention_s / 2).min(5),
    )
}

/// How long after the flush the ingesters should have dropped the flushed heads they keep.
fn heads_expiry_wait(setup: &ClusterSetup) -> Duration {
    Duration::from_secs(setup.flushed_head_retention_s) + HEADS_EXPIRY_MARGIN
}

/// The cluster's processes.
struct Cluster {
    moto: Moto,
    ingesters: Vec<Server>,
    queriers: Vec<Server>,
    compactor: Server,
}

impl Cluster {
    /// Starts moto, then the ingesters on 127.0.0.2, .3, …, the queriers on the next
    /// addresses and the compactor on the one after.
    async fn start(
        binary: &Path,
        parent: Option<&Path>,
        setup: ClusterSetup,
    ) -> Result<Cluster, Error> {
        let moto = Moto::start().await?;
        let ip = |k: usize| format!("127.0.0.{}", 2 + k);
        // Every member's config names the ingesters and queriers, so their ports are chosen
        // first.
        let pick = |k: usize| Ok(format!("{}:{}", ip(k), free_port(&ip(k))?));
        let addrs = (0..setup.ingesters)
            .map(pick)
            .collect::<Result<Vec<_>, Error>>()?;
        let querier_addrs = (setup.ingesters..setup.ingesters + setup.queriers)
            .map(pick)
            .collect::<Result<Vec<_>, Error>>()?;
        let yaml = config_yaml(&moto, &addrs, &querier_addrs, &setup);
        let mut ingesters = Vec::new();
        for (i, addr) in addrs.iter().enumerate() {
            let id = format!("ingester-{i}");
            let args = ["--target", "ingester", "--ingester-id", &id];
            ingesters.push(Server::spawn_member(binary, parent, &yaml, addr, &args).await?);
        }
        let mut queriers = Vec::new();
        for listen in &querier_addrs {
            let args = ["--target", "querier"];
            queriers.push(Server::spawn_member(binary, parent, &yaml, listen, &args).await?);
        }
        let listen = format!("{}:0", ip(setup.ingesters + setup.queriers));
        let args = ["--target", "compactor"];
        let compactor = Server::spawn_member(binary, parent, &yaml, &listen, &args).await?;
        Ok(Cluster {
            moto,
            ingesters,
            queriers,
            compactor,
        })
    }

    /// Every `strata` process: the ingesters, the queriers, the compactor.
    fn servers(&mut self) -> impl Iterator<Item = &mut Server> {
        let compactor = std::iter::once(&mut self.compactor);
        self.ingesters
            .iter_mut()
            .chain(&mut self.queriers)
            .chain(compactor)
    }

    /// Every `strata` process with its name (`ingester-0`, `querier-1`, `compactor`), in
    /// [`Cluster::servers`]' order.
    fn members(&self) -> Vec<(String, &Server)> {
        let ingesters = self.ingesters.iter().enumerate();
        let queriers = self.queriers.iter().enumerate();
        ingesters
            .map(|(i, s)| (format!("ingester-{i}"), s))
            .chain(queriers.map(|(i, s)| (format!("querier-{i}"), s)))
            .chain([("compactor".to_owned(), &self.compactor)])
            .collect()
    }

    /// CPU time (user + system, every thread) of every member in [`Cluster::members`]'
    /// order, then moto's.
    fn cpu(&self) -> Vec<Duration> {
        let of = |pid: Option<u32>| {
            pid.and_then(server::cpu_of)
                .map_or(Duration::ZERO, |(user, system)| user + system)
        };
        let mut all: Vec<Duration> = self.members().iter().map(|(_, s)| of(s.pid())).collect();
        all.push(of(Some(self.moto.pid())));
        all
    }

    /// The queriers' indices in [`Cluster::cpu`]'s order (the compactor and moto follow).
    fn querier_range(&self) -> std::ops::Range<usize> {
        self.ingesters.len()..self.ingesters.len() + self.queriers.len()
    }

    /// `strata_head_samples`, summed over the ingesters.
    async fn head_rows(&self) -> Result<u64, Error> {
        let mut rows = 0.0;
        for i in &self.ingesters {
            rows += server::metric(&i.metrics().await?, "strata_head_samples").unwrap_or(0.0);
        }
        Ok(rows as u64)
    }

    /// Waits until no ingester holds a head (`strata_head_samples` 0 on all), or `deadline`;
    /// whether they got there.
    async fn wait_for_no_heads(&self, deadline: Instant) -> Result<bool, Error> {
        loop {
            if self.head_rows().await? == 0 {
                return Ok(true);
            }
            if Instant::now() >= deadline {
                return Ok(false);
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }

    /// `POST /ingester/flush` to every ingester; the rows the blocks written hold.
    async fn flush(&self) -> Result<u64, Error> {
        let mut rows = 0;
        for i in &self.ingesters {
            let body = i
                .api()
                .post_bytes("/ingester/flush", Vec::new())
                .await
                .map_err(|e| Error::Api(format!("{}/ingester/flush", i.url), e))?;
            let answer: serde_json::Value = serde_json::from_slice(&body)
                .map_err(|e| Error::Server(format!("{}/ingester/flush answered {e}", i.url)))?;
            rows += answer["blocks"]
                .as_array()
                .map_or(0, |b| b.iter().filter_map(|b| b["samples"].as_u64()).sum());
        }
        Ok(rows)
    }

    /// The members that have exited, and how.
    fn exited(&mut self) -> Vec<String> {
        let names: Vec<String> = self.members().into_iter().map(|(n, _)| n).collect();
        names
            .into_iter()
            .zip(self.servers())
            .filter_map(|(name, s)| {
                let status = s.exit_status()?;
                Some(format!("{name} ({}) exited: {status}", s.url))
            })
            .collect()
    }

    /// SIGTERM to every member, then moto goes with the cluster.
    fn stop(mut self) {
        self.servers().for_each(Server::stop);
    }
}

/// One `strata` process of the cluster.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Member {
    /// `ingester-0`, `querier-1`, `compactor`.
    pub name: String,
    /// `http://127.0.0.x:port`.
    pub url: String,
    /// Sample rows it acknowledged (ingesters).
    pub rows: u64,
    /// Its CPU time (s) while the fleet was pushed.
    pub cpu_push_s: f64,
    /// That per row it acknowledged (us; ingesters).
    pub us_per_row: Option<f64>,
    /// Its CPU time (s) during the ingesters' flush.
    pub cpu_flush_s: f64,
    /// Its CPU time (s) from the first push to the end.
    pub cpu_total_s: f64,
    /// Its peak resident memory (`VmHWM`, bytes).
    pub rss_peak_bytes: Option<u64>,
}

/// What the bucket held after the flush.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct BucketUsage {
    /// Objects listed.
    pub objects: u64,
    /// Their bytes.
    pub bytes: u64,
    /// Blocks the catalog lists.
    pub live_blocks: usize,
    /// Bytes of the objects under those blocks' prefixes.
    pub live_block_bytes: u64,
    /// Sample rows in those blocks (the catalog's `num_samples`).
    pub live_rows: u64,
    /// Blocks compacted away whose files wait for `shared.deletion_delay`.
    pub tombstoned_blocks: usize,
}

/// One merge timed through some queriers.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct MergeTiming {
    /// `merge_1h` or `merge_24h` (see [`probe::QUERIES`]).
    pub query: String,
    /// When: `heads` (before the flush: the blocks so far and every head, the ones flushed
    /// and kept for `shared.flushed_head_retention` included), `flushed` (right after the
    /// flush: blocks, while the ingesters still scan the flushed heads they keep) or `blocks`
    /// (once those expired: blocks only).
    pub stage: String,
    /// Queriers answering at once, each the same merge.
    pub queriers: usize,
    /// Merges timed.
    pub runs: usize,
    /// Median latency (ms).
    pub median_ms: f64,
    /// Slowest (ms).
    pub max_ms: f64,
    /// Merges answered per second of wall time.
    pub merges_per_s: f64,
    /// CPU of the queriers per merge (ms).
    pub querier_cpu_ms: f64,
    /// CPU of the ingesters per merge (ms): their heads' part.
    pub ingester_cpu_ms: f64,
    /// CPU of the compactor per merge (ms): not the merge's, but it shares the cores.
    #[serde(default)]
    pub compactor_cpu_ms: f64,
    /// CPU of `moto_server` per merge (ms): the S3 API serving the blocks' files.
    #[serde(default)]
    pub s3_cpu_ms: f64,
    /// The merged total (each run's answer; all equal).
    pub total: f64,
}

/// Everything a cluster run measured.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct ClusterReport {
    /// The fleet's settings (`checkpoints` is not used: queries run at the end).
    pub config: ScaleConfig,
    /// The cluster.
    pub setup: ClusterSetup,
    /// Pushed.
    pub generated: Generated,
    /// Acknowledged.
    pub acked: Generated,
    /// Wall time spent pushing (s).
    pub push_wall_s: f64,
    /// Simulated time covered (s).
    pub simulated_s: f64,
    /// Rows acknowledged per second of pushing.
    pub ingest_rows_per_s: f64,
    /// That over the rate the fleet makes rows in real time.
    pub realtime_factor: f64,
    /// `WriteRaw` acknowledgement latency, median and 99th percentile (ms).
    pub ack_p50_ms: f64,
    /// 99th percentile (ms).
    pub ack_p99_ms: f64,
    /// The `strata` processes, then `moto_server`.
    pub members: Vec<Member>,
    /// Rows the explicit flush wrote into blocks (the rows only the heads held).
    pub flushed_rows: u64,
    /// Seconds from the flush until the ingesters held no head (the flushed heads they keep
    /// expired), or `None` if they still held some [`HEADS_EXPIRY_MARGIN`] past the
    /// retention.
    pub heads_expired_after_s: Option<f64>,
    /// The bucket after the flush.
    pub bucket: BucketUsage,
    /// Merge latencies.
    pub merges: Vec<MergeTiming>,
    /// Failed pushes; `merged_total` is querier 0's merge of everything after the flush.
    pub verification: Verification,
    /// Every querier's merge of everything after the flush, and querier 0's before it.
    pub querier_totals: Vec<(String, f64)>,
    /// What went wrong (a member that exited, a total that differs); empty when all is well.
    pub problems: Vec<String>,
}

/// Runs the fleet `cfg` into a cluster of `setup` started from `binary` (data directories
/// under `parent`); `progress` (if given) is advanced by rows acknowledged.
pub async fn run(
    cfg: &ScaleConfig,
    setup: ClusterSetup,
    binary: &Path,
    parent: Option<&Path>,
    progress: Option<&indicatif::ProgressBar>,
) -> Result<ClusterReport, Error> {
    setup.check().map_err(Error::Server)?;
    let mut cluster = Cluster::start(binary, parent, setup).await?;
    let timeline = super::timeline(cfg);
    let counters = Arc::new(push::Progress::default());
    let ticker = progress.map(|bar| super::show_progress(bar.clone(), counters.clone()));
    let targets: Vec<String> = cluster.ingesters.iter().map(|s| s.url.clone()).collect();
    let cpu_start = cluster.cpu();
    let (_, outcome) = push::push_rounds(
        &targets,
        Fleet::new(cfg.fleet.clone()),
        0..cfg.rounds,
        timeline,
        push::PushOptions {
            rate: cfg.rate,
            concurrency: cfg.concurrency,
            pregenerate: cfg.pregenerate,
        },
        counters,
    )
    .await?;
    let cpu_pushed = cluster.cpu();
    if let Some(t) = ticker {
        t.abort();
    }
    let (start_ns, now_ns) = (timeline.start_ns, timeline.round_end(cfg.rounds.max(1) - 1));
    let mut problems = Vec::new();
    let mut totals = Vec::new();
    let mut merges = Vec::new();

    let repeats = cfg.query_repeats;
    // Before the flush: what only the heads hold comes from the ingesters. The verification
    // merge is also the querier's warm-up.
    let q0 = &cluster.queriers[0];
    totals.push((
        "querier-0, before the flush".to_owned(),
        probe::merge_total(q0, start_ns, now_ns + 1).await?,
    ));
    for query in MERGES {
        merges.push(time_merges(&cluster, 1, query, "heads", now_ns, repeats).await?);
    }

    let cpu_before_flush = cluster.cpu();
    let flushed_rows = cluster.flush().await?;
    let cpu_flushed = cluster.cpu();
    let flushed_at = Instant::now();
    let bucket = bucket_usage(&cluster.moto).await?;

    // Right after: every row is in a committed block (every query re-reads the catalog
    // first), but the ingesters still scan the flushed heads they keep.
    for (i, q) in cluster.queriers.iter().enumerate() {
        let total = probe::merge_total(q, start_ns, now_ns + 1).await?;
        totals.push((format!("querier-{i}"), total));
    }
    let merged_total = totals[1].1;
    for query in MERGES {
        merges.push(time_merges(&cluster, 1, query, "flushed", now_ns, repeats).await?);
    }

    // Blocks only, once those heads expired: through one querier, then all at once.
    let heads_expired_after_s = cluster
        .wait_for_no_heads(flushed_at + heads_expiry_wait(&setup))
        .await?
        .then(|| flushed_at.elapsed().as_secs_f64());
    let mut sizes = vec![1];
    if setup.queriers > 1 {
        sizes.push(setup.queriers);
    }
    for n in sizes {
        for query in MERGES {
            merges.push(time_merges(&cluster, n, query, "blocks", now_ns, repeats).await?);
        }
    }
    let cpu_end = cluster.cpu();

    // Checks.
    problems.extend(cluster.exited());
    for (name, total) in &totals {
        if *total != outcome.acked.value as f64 {
            problems.push(format!(
                "{name}: merged total {total} vs {} acknowledged",
                outcome.acked.value
            ));
        }
    }
    if bucket.live_rows != outcome.acked.rows {
        problems.push(format!(
            "the catalog's blocks hold {} rows, {} were acknowledged",
            bucket.live_rows, outcome.acked.rows
        ));
    }

    let mut members = Vec::new();
    let names = cluster
        .members()
        .into_iter()
        .map(|(name, s)| (name, s.url.clone(), s.pid()))
        .chain([(
            "moto_server".to_owned(),
            cluster.moto.endpoint(),
            Some(cluster.moto.pid()),
        )]);
    let secs = |a: &[Duration], b: &[Duration], k: usize| b[k].saturating_sub(a[k]).as_secs_f64();
    for (k, (name, url, pid)) in names.enumerate() {
        let rows = outcome
            .acked_by_target
            .get(k)
            .filter(|_| k < setup.ingesters)
            .map_or(0, |g| g.rows);
        let cpu_push_s = secs(&cpu_start, &cpu_pushed, k);
        members.push(Member {
            name,
            url,
            rows,
            cpu_push_s,
            us_per_row: (rows > 0).then(|| cpu_push_s * 1e6 / rows as f64),
            cpu_flush_s: secs(&cpu_before_flush, &cpu_flushed, k),
            cpu_total_s: secs(&cpu_start, &cpu_end, k),
            rss_peak_bytes: pid.and_then(server::hwm_of),
        });
    }
    cluster.stop();

    let mut latencies = outcome.latencies_us;
    latencies.sort_unstable();
    let wall = outcome.wall.as_secs_f64().max(1e-9);
    let rows_per_interval = outcome.generated.rows as f64 / cfg.rounds.max(1) as f64;
    let interval_s = cfg.fleet.interval_ns as f64 / 1e9;
    Ok(ClusterReport {
        config: cfg.clone(),
        setup,
        generated: outcome.generated,
        acked: outcome.acked,
        push_wall_s: wall,
        simulated_s: (now_ns - start_ns) as f64 / 1e9,
        ingest_rows_per_s: outcome.acked.rows as f64 / wall,
        realtime_factor: outcome.acked.rows as f64 / wall / (rows_per_interval / interval_s),
        ack_p50_ms: report::percentile(&latencies, 50.0) as f64 / 1e3,
        ack_p99_ms: report::percentile(&latencies, 99.0) as f64 / 1e3,
        members,
        flushed_rows,
        heads_expired_after_s,
        bucket,
        merges,
        verification: Verification {
            failed_requests: outcome.failed,
            first_error: outcome.first_error,
            merged_total,
        },
        querier_totals: totals,
        problems,
    })
}

/// `repeats` rounds of `query` through the first `n` queriers, all of them at once in each
/// round, with the CPU the queriers and the ingesters spent.
async fn time_merges(
    cluster: &Cluster,
    n: usize,
    query: &str,
    stage: &str,
    now_ns: i64,
    repeats: usize,
) -> Result<MergeTiming, Error> {
    let queriers = &cluster.queriers[..n];
    let before = cluster.cpu();
    let started = Instant::now();
    let mut times = Vec::new();
    let mut total = 0.0;
    for _ in 0..repeats.max(1) {
        let runs = futures::future::try_join_all(queriers.iter().map(async |q| {
            let t = Instant::now();
            let answer = probe::run(q, query, now_ns).await?;
            Ok::<_, Error>((t.elapsed().as_secs_f64() * 1e3, answer))
        }))
        .await?;
        for (ms, answer) in runs {
            times.push(ms);
            total = answer;
        }
    }
    let wall = started.elapsed().as_secs_f64();
    let after = cluster.cpu();
    let runs = times.len();
    let spent = |range: std::ops::Range<usize>| {
        range
            .map(|k| after[k].saturating_sub(before[k]).as_secs_f64() * 1e3)
            .sum::<f64>()
            / runs as f64
    };
    times.sort_by(f64::total_cmp);
    Ok(MergeTiming {
        query: query.to_owned(),
        stage: stage.to_owned(),
        queriers: n,
        runs,
        median_ms: times[times.len() / 2],
        max_ms: times[times.len() - 1],
        merges_per_s: runs as f64 / wall.max(1e-9),
        querier_cpu_ms: spent(cluster.querier_range()),
        ingester_cpu_ms: spent(0..cluster.ingesters.len()),
        compactor_cpu_ms: spent(cluster.querier_range().end..cluster.querier_range().end + 1),
        s3_cpu_ms: spent(cluster.querier_range().end + 1..after.len()),
        total,
    })
}

/// Lists the bucket and reads its catalog (`catalog/manifest.json`).
async fn bucket_usage(moto: &Moto) -> Result<BucketUsage, Error> {
    let store = moto.bucket()?;
    let prefix = object_store::path::Path::from(PREFIX);
    let objects: Vec<_> = store
        .list(Some(&prefix))
        .try_collect()
        .await
        .map_err(|e| Error::Bucket(format!("listing s3://{BUCKET}/{PREFIX}"), e))?;
    let manifest_path = object_store::path::Path::from(format!("{PREFIX}/catalog/manifest.json"));
    let manifest = store
        .get(&manifest_path)
        .await
        .map_err(|e| Error::Bucket(format!("reading {manifest_path}"), e))?
        .bytes()
        .await
        .map_err(|e| Error::Bucket(format!("reading {manifest_path}"), e))?;
    let manifest: strata_engine::Manifest = serde_json::from_slice(&manifest)
        .map_err(|e| Error::Server(format!("{manifest_path}: {e}")))?;
    let block_of = |path: &str| {
        let mut parts = path.split('/').skip_while(|p| *p != "blocks").skip(1);
        parts.next().map(str::to_owned)
    };
    let live_block_bytes = objects
        .iter()
        .filter(|o| block_of(o.location.as_ref()).is_some_and(|b| manifest.blocks.contains_key(&b)))
        .map(|o| o.size)
        .sum();
    Ok(BucketUsage {
        objects: objects.len() as u64,
        bytes: objects.iter().map(|o| o.size).sum(),
        live_blocks: manifest.blocks.len(),
        live_block_bytes,
        live_rows: manifest.blocks.values().map(|b| b.num_samples).sum(),
        tombstoned_blocks: manifest.tombstones.len(),
    })
}
