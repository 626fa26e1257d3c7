//! Pushing rounds of the fleet through `WriteRaw` over gRPC: a generator thread builds each
//! node's request (paced, unless the rate is `max`) and `concurrency` tasks send them on one
//! HTTP/2 connection per target, timing every call from send to acknowledgement. With several
//! targets (a cluster's ingesters), node `k` pushes to target `k % targets`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use strata_proto::parca::WriteRawRequest;
use strata_proto::parca::profile_store_service_client::ProfileStoreServiceClient;
use tonic::transport::Channel;

use super::Error;
use super::fleet::{Fleet, Generated};
use super::pprof::PprofEncoder;

/// How fast to push.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Rate {
    /// As fast as the server acknowledges.
    Max,
    /// This many times real time: a round (one interval of every node) takes
    /// `interval / factor` of wall time, each node pushing at its own phase within it.
    Realtime(f64),
}

/// Simulated time: round `r`'s interval ends at `start_ns + (r + 1) * gap_ns`.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Timeline {
    /// Simulated start (ns since the epoch).
    pub start_ns: i64,
    /// Simulated time between two rounds (the interval, or more when rounds are spread
    /// over a longer span than they fill).
    pub gap_ns: i64,
}

impl Timeline {
    /// End of round `round`'s interval.
    pub fn round_end(&self, round: u64) -> i64 {
        self.start_ns + (round as i64 + 1) * self.gap_ns
    }
}

/// How a push goes.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PushOptions {
    /// Pacing.
    pub rate: Rate,
    /// `WriteRaw` calls in flight.
    pub concurrency: usize,
    /// Make the requests before they are pushed (in parts of at most [`MAX_READY`]), so the
    /// server does not share the cores with the fleet's generator while it is timed (finite
    /// pushes only).
    pub pregenerate: bool,
}

/// Counters shared with whoever shows progress.
#[derive(Default)]
pub struct Progress {
    /// Requests acknowledged.
    pub requests: AtomicU64,
    /// Sample rows acknowledged.
    pub rows: AtomicU64,
    /// Requests that failed.
    pub failed: AtomicU64,
    /// Set to end a push early: the generator stops making requests and the ones already
    /// made are still sent (the sustained mode's deadline, or the server gone).
    pub stop: AtomicBool,
}

/// What a push of some rounds did.
#[derive(Debug, Default)]
pub struct PushOutcome {
    /// Everything generated.
    pub generated: Generated,
    /// Everything acknowledged.
    pub acked: Generated,
    /// What each target acknowledged, in the order the targets were given.
    pub acked_by_target: Vec<Generated>,
    /// Calls that failed (with the first error).
    pub failed: u64,
    /// The first failure.
    pub first_error: Option<String>,
    /// Per acknowledged call: microseconds from send to answer.
    pub latencies_us: Vec<u64>,
    /// Per acknowledged call, in the order of `latencies_us`: when the answer came,
    /// milliseconds since the push started.
    pub acked_at_ms: Vec<u64>,
    /// Per failed call: when, milliseconds since the push started.
    pub failed_at_ms: Vec<u64>,
    /// Wall time.
    pub wall: Duration,
}

/// Requests pregenerated at a time: a node's request is up to about 1.3 MB (ten uncompressed
/// pprof bodies), so a part stays within a few GB whatever the fleet.
const MAX_READY: u64 = 2_000;

/// One node's request of a round: the node, the request, what it holds.
type NodeRequest = (usize, WriteRawRequest, Generated);

/// Where a part's requests come from.
enum Part {
    /// Generated while they are pushed.
    Generate(std::ops::Range<u64>),
    /// Made before; `first` is the first one's index among the push's requests (round-major).
    Ready {
        requests: Vec<NodeRequest>,
        first: u64,
    },
}

/// Pushes rounds `rounds` of `fleet` to the gRPC endpoints `targets` (node `k` to
/// `targets[k % targets.len()]`) and returns the fleet with the outcome. With
/// `how.pregenerate`, requests are made in parts of at most [`MAX_READY`] before each part is
/// pushed; the outcome's wall time is the pushing only.
pub async fn push_rounds(
    targets: &[String],
    fleet: Fleet,
    rounds: std::ops::Range<u64>,
    timeline: Timeline,
    how: PushOptions,
    progress: Arc<Progress>,
) -> Result<(Fleet, PushOutcome), Error> {
    if !how.pregenerate {
        let part = Part::Generate(rounds);
        return push_part(targets, fleet, part, timeline, how, progress).await;
    }
    let nodes = fleet.config().nodes.max(1) as u64;
    let total = rounds
        .end
        .saturating_sub(rounds.start)
        .saturating_mul(nodes);
    let (mut fleet, mut outcome, mut first) = (fleet, PushOutcome::default(), 0u64);
    while first < total && !progress.stop.load(Ordering::Relaxed) {
        let n = (total - first).min(MAX_READY);
        let start = rounds.start;
        let (f, requests) = tokio::task::spawn_blocking(move || {
            pregenerate(fleet, start, first..first + n, timeline)
        })
        .await
        .map_err(|e| Error::Server(format!("pregenerating: {e}")))?;
        let part = Part::Ready { requests, first };
        let (f, o) = push_part(targets, f, part, timeline, how, progress.clone()).await?;
        fleet = f;
        outcome.absorb(o);
        first += n;
    }
    Ok((fleet, outcome))
}

impl PushOutcome {
    /// Adds a later part's outcome; its times continue this one's.
    fn absorb(&mut self, o: PushOutcome) {
        let offset_ms = self.wall.as_millis() as u64;
        self.generated.add(&o.generated);
        self.acked.add(&o.acked);
        add_each(&mut self.acked_by_target, &o.acked_by_target);
        self.failed += o.failed;
        if self.first_error.is_none() {
            self.first_error = o.first_error;
        }
        self.latencies_us.extend(o.latencies_us);
        self.acked_at_ms
            .extend(o.acked_at_ms.iter().map(|t| t + offset_ms));
        self.failed_at_ms
            .extend(o.failed_at_ms.iter().map(|t| t + offset_ms));
        self.wall += o.wall;
    }
}

/// Adds `from` to `into` element by element, growing `into` as needed.
fn add_each(into: &mut Vec<Generated>, from: &[Generated]) {
    if into.len() < from.len() {
        into.resize_with(from.len(), Generated::default);
    }
    for (a, b) in into.iter_mut().zip(from) {
        a.add(b);
    }
}

/// Pushes one part's requests, timing it.
async fn push_part(
    targets: &[String],
    fleet: Fleet,
    part: Part,
    timeline: Timeline,
    how: PushOptions,
    progress: Arc<Progress>,
) -> Result<(Fleet, PushOutcome), Error> {
    let (rate, concurrency) = (how.rate, how.concurrency.max(1));
    if targets.is_empty() {
        return Err(Error::Server("no target to push to".into()));
    }
    let clients = futures::future::try_join_all(targets.iter().map(|url| connect(url))).await?;
    let (tx, rx) = tokio::sync::mpsc::channel::<NodeRequest>(concurrency * 2);
    let started = Instant::now();
    let producer = {
        let stop = progress.clone();
        std::thread::spawn(move || match part {
            Part::Ready { requests, first } => {
                let nodes = fleet.config().nodes;
                let interval_ns = fleet.config().interval_ns;
                let pace = Pacing {
                    nodes,
                    interval_ns,
                    rate,
                    started,
                    first,
                };
                let generated = send_ready(requests, pace, &stop.stop, tx);
                (fleet, generated)
            }
            Part::Generate(rounds) => {
                generate(fleet, rounds, timeline, rate, started, &stop.stop, tx)
            }
        })
    };
    let rx = Arc::new(tokio::sync::Mutex::new(rx));
    let workers: Vec<_> = (0..concurrency)
        .map(|_| tokio::spawn(send(rx.clone(), clients.clone(), progress.clone(), started)))
        .collect();
    let mut outcome = PushOutcome::default();
    for w in workers {
        let o = w
            .await
            .map_err(|e| Error::Server(format!("push task: {e}")))?;
        outcome.acked.add(&o.acked);
        add_each(&mut outcome.acked_by_target, &o.acked_by_target);
        outcome.failed += o.failed;
        if outcome.first_error.is_none() {
            outcome.first_error = o.first_error;
        }
        outcome.latencies_us.extend(o.latencies_us);
        outcome.acked_at_ms.extend(o.acked_at_ms);
        outcome.failed_at_ms.extend(o.failed_at_ms);
    }
    let (fleet, generated) = producer
        .join()
        .map_err(|_| Error::Server("the generator thread panicked".into()))?;
    outcome.generated = generated;
    outcome.wall = started.elapsed();
    Ok((fleet, outcome))
}

/// A `WriteRaw` client on one HTTP/2 connection to `url`.
async fn connect(url: &str) -> Result<ProfileStoreServiceClient<Channel>, Error> {
    let channel = Channel::from_shared(url.to_owned())
        .map_err(|e| Error::Server(format!("{url}: {e}")))?
        .connect()
        .await
        .map_err(|e| Error::Server(format!("connecting to {url}: {e}")))?;
    Ok(ProfileStoreServiceClient::new(channel)
        .max_decoding_message_size(64 << 20)
        .max_encoding_message_size(256 << 20))
}

/// The generator thread: builds every node's request of `rounds` into `tx`, each node at its
/// phase of the round when the rate is real time, until the rounds are done, `stop` is set
/// or the senders are gone. Returns the fleet and what it generated.
fn generate(
    mut fleet: Fleet,
    rounds: std::ops::Range<u64>,
    timeline: Timeline,
    rate: Rate,
    started: Instant,
    stop: &AtomicBool,
    tx: tokio::sync::mpsc::Sender<NodeRequest>,
) -> (Fleet, Generated) {
    let mut generated = Generated::default();
    let nodes = fleet.config().nodes;
    let interval_ns = fleet.config().interval_ns;
    let program = fleet.program().clone();
    let mut encoder = PprofEncoder::new(&program);
    for (i, round) in rounds.enumerate() {
        for node in 0..nodes {
            if let Rate::Realtime(factor) = rate {
                let phase = (i as f64 + node as f64 / nodes as f64) * interval_ns as f64;
                let due = started + Duration::from_nanos((phase / factor) as u64);
                wait_until(due, stop);
            }
            if stop.load(Ordering::Relaxed) {
                return (fleet, generated);
            }
            let (req, g) = fleet.request(&mut encoder, node, round, timeline.round_end(round));
            generated.add(&g);
            if tx.blocking_send((node, req, g)).is_err() {
                return (fleet, generated);
            }
        }
    }
    (fleet, generated)
}

/// Requests `which` (indices among the push's requests, round-major from round
/// `first_round`), made in order before they are pushed.
fn pregenerate(
    mut fleet: Fleet,
    first_round: u64,
    which: std::ops::Range<u64>,
    timeline: Timeline,
) -> (Fleet, Vec<NodeRequest>) {
    let nodes = fleet.config().nodes.max(1) as u64;
    let program = fleet.program().clone();
    let mut encoder = PprofEncoder::new(&program);
    let mut out = Vec::with_capacity(which.end.saturating_sub(which.start) as usize);
    for k in which {
        let (round, node) = (first_round + k / nodes, (k % nodes) as usize);
        let (req, g) = fleet.request(&mut encoder, node, round, timeline.round_end(round));
        out.push((node, req, g));
    }
    (fleet, out)
}

/// How pregenerated requests are paced: request `k` of a push (round-major) is due at its
/// node's phase of its round, counted from the part's first request when the part started.
struct Pacing {
    nodes: usize,
    interval_ns: i64,
    rate: Rate,
    started: Instant,
    first: u64,
}

impl Pacing {
    fn phase_ns(&self, k: u64) -> f64 {
        let nodes = self.nodes.max(1) as u64;
        (((k / nodes) as f64) + (k % nodes) as f64 / nodes as f64) * self.interval_ns as f64
    }
}

/// The producer of pregenerated requests: sends them in order (paced when the rate is real
/// time) until done, stopped or the senders are gone.
fn send_ready(
    ready: Vec<NodeRequest>,
    pace: Pacing,
    stop: &AtomicBool,
    tx: tokio::sync::mpsc::Sender<NodeRequest>,
) -> Generated {
    let mut generated = Generated::default();
    for (i, (node, req, g)) in ready.into_iter().enumerate() {
        if let Rate::Realtime(factor) = pace.rate {
            let k = pace.first + i as u64;
            let ahead = (pace.phase_ns(k) - pace.phase_ns(pace.first)) / factor;
            wait_until(pace.started + Duration::from_nanos(ahead as u64), stop);
        }
        if stop.load(Ordering::Relaxed) {
            break;
        }
        generated.add(&g);
        if tx.blocking_send((node, req, g)).is_err() {
            break;
        }
    }
    generated
}

/// Sleeps until `due`, in slices, so a stop is seen while waiting.
fn wait_until(due: Instant, stop: &AtomicBool) {
    loop {
        let now = Instant::now();
        if due <= now || stop.load(Ordering::Relaxed) {
            break;
        }
        std::thread::sleep((due - now).min(Duration::from_millis(100)));
    }
}

/// One sender task: sends requests from `rx` until it is closed, each to its node's client
/// (`clients[node % clients.len()]`), timing each call.
async fn send(
    rx: Arc<tokio::sync::Mutex<tokio::sync::mpsc::Receiver<NodeRequest>>>,
    mut clients: Vec<ProfileStoreServiceClient<Channel>>,
    progress: Arc<Progress>,
    started: Instant,
) -> PushOutcome {
    let mut out = PushOutcome {
        acked_by_target: vec![Generated::default(); clients.len()],
        ..PushOutcome::default()
    };
    loop {
        let next = rx.lock().await.recv().await;
        let Some((node, req, g)) = next else { break };
        let target = node % clients.len();
        let t = Instant::now();
        match clients[target].write_raw(req).await {
            Ok(_) => {
                out.latencies_us.push(t.elapsed().as_micros() as u64);
                out.acked_at_ms.push(started.elapsed().as_millis() as u64);
                out.acked.add(&g);
                out.acked_by_target[target].add(&g);
                progress.requests.fetch_add(1, Ordering::Relaxed);
                progress.rows.fetch_add(g.rows, Ordering::Relaxed);
            }
            Err(e) => {
                out.failed += 1;
                out.failed_at_ms.push(started.elapsed().as_millis() as u64);
                progress.failed.fetch_add(1, Ordering::Relaxed);
                out.first_error.get_or_insert_with(|| e.to_string());
            }
        }
    }
    out
}
