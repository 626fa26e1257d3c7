//! A fleet of simulated nodes, each running a few processes profiled at 19 Hz per core, as
//! `WriteRaw` requests: one request per node per interval, a series per process (what
//! `strata agent` and Parca's agent send).
//!
//! The model, deterministic from [`FleetConfig::seed`]:
//!
//! - One [`Program`] (the workload generator's mappings, functions, locations and a pool of
//!   distinct stacks, depth 10-40) shared by every application; each of the `apps`
//!   applications has its own hot set (the pool rotated by an offset), and the hot sets drift by
//!   [`FleetConfig::drift`] stacks a round, so new stacks keep appearing; a further
//!   [`FleetConfig::tail`] of draws are uniform over the pool (rare stacks).
//! - A node has `cores` CPUs, a fixed utilisation in `utilization`, and `processes` process
//!   slots; each interval it takes `cores x hz x interval x utilisation` samples (±20 %), each
//!   from a slot drawn Zipf-style (a few processes use most CPU) and a stack drawn Zipf-style
//!   from that slot's application's hot set. A sample row is one distinct stack of one process
//!   in one interval; its value is how many samples hit it.
//! - Labels: `node`, `namespace`, `pod`, `container`, `comm`, `pid`, plus
//!   `__name__="parca_agent"` (type `parca_agent:samples:count:cpu:nanoseconds:delta`).
//! - Churn: the last [`FleetConfig::short_lived`] share of a node's slots run short-lived
//!   processes (1-6 intervals, then a new pid and pod); the others restart with probability
//!   [`FleetConfig::restart`] per interval.

use prost::Message;
use strata_proto::parca::{Label, LabelSet, RawProfileSeries, RawSample, WriteRawRequest};

use super::pprof::{PprofEncoder, ProfileWindow};
use crate::{JOBS, Program, WorkloadConfig, XorShift, Zipf};

/// The `__name__` the agents push under.
pub const PROFILE_NAME: &str = "parca_agent";
/// The profile type the pushed series are stored as.
pub const PROFILE_TYPE: &str = "parca_agent:samples:count:cpu:nanoseconds:delta";

const NAMESPACES: &[&str] = &["default", "shop", "platform", "data", "kube-system"];

/// Shape of the simulated fleet.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FleetConfig {
    /// Simulated nodes (one `WriteRaw` each per interval).
    pub nodes: usize,
    /// Process slots per node.
    pub processes: usize,
    /// CPUs per node.
    pub cores: usize,
    /// Sampling frequency per CPU.
    pub hz: u32,
    /// Profile interval (ns): each node pushes once per interval.
    pub interval_ns: i64,
    /// Least and most busy a node is (share of its CPUs).
    pub utilization: (f64, f64),
    /// Distinct stacks in the shared pool.
    pub stacks: usize,
    /// Functions in the shared program.
    pub functions: usize,
    /// Distinct applications (each with its own hot stacks).
    pub apps: usize,
    /// How far each application's hot set moves per interval (stacks).
    pub drift: usize,
    /// Share of draws uniform over the whole pool.
    pub tail: f64,
    /// Share of each node's slots running short-lived processes.
    pub short_lived: f64,
    /// Per-interval restart probability of a long-lived process.
    pub restart: f64,
    /// Seed of everything.
    pub seed: u64,
}

impl Default for FleetConfig {
    fn default() -> Self {
        FleetConfig {
            nodes: 100,
            processes: 10,
            cores: 8,
            hz: 19,
            interval_ns: 10_000_000_000,
            utilization: (0.1, 0.6),
            stacks: 20_000,
            functions: 5_000,
            apps: 12,
            drift: 2,
            tail: 0.02,
            short_lived: 0.2,
            restart: 0.002,
            seed: 1,
        }
    }
}

struct Process {
    app: usize,
    pid: u32,
    pod: String,
    /// Round after which a short-lived process exits (`u64::MAX`: long-lived).
    exits_after: u64,
}

struct Node {
    name: String,
    rng: XorShift,
    utilization: f64,
    next_pid: u32,
    slots: Vec<Process>,
}

/// Per-round counts of what was generated.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Generated {
    /// `WriteRaw` requests.
    pub requests: u64,
    /// Series (process profiles).
    pub profiles: u64,
    /// Sample rows (distinct stacks per process profile).
    pub rows: u64,
    /// Sum of the sample values (CPU samples taken at `hz`).
    pub value: u64,
}

impl Generated {
    /// Adds `other`.
    pub fn add(&mut self, other: &Generated) {
        self.requests += other.requests;
        self.profiles += other.profiles;
        self.rows += other.rows;
        self.value += other.value;
    }
}

/// The fleet: yields each node's request for a round, in node order.
pub struct Fleet {
    cfg: FleetConfig,
    program: Program,
    stack_rank: Zipf,
    slot_rank: Zipf,
    app_offsets: Vec<usize>,
    nodes: Vec<Node>,
    /// Scratch: per pool stack, per slot, hits in the current node's interval.
    hits: Vec<Vec<(u32, u32)>>,
}

fn app_of(rng: &mut XorShift, apps: usize) -> usize {
    rng.below(apps as u64) as usize
}

/// The name of application `app`: the workload's job names, then `service-N`.
fn app_name(app: usize) -> String {
    JOBS.get(app)
        .map_or_else(|| format!("service-{app}"), |s| (*s).to_owned())
}

impl Fleet {
    /// The fleet `cfg` describes.
    pub fn new(cfg: FleetConfig) -> Fleet {
        assert!(cfg.nodes >= 1 && cfg.processes >= 1 && cfg.cores >= 1 && cfg.hz >= 1);
        assert!(cfg.apps >= 1 && cfg.interval_ns > 0);
        let program = Program::generate(&WorkloadConfig {
            stacks: cfg.stacks,
            functions: cfg.functions,
            seed: cfg.seed,
            ..WorkloadConfig::default()
        });
        let mut rng = XorShift::new(cfg.seed ^ 0xF1EE7);
        let app_offsets = (0..cfg.apps)
            .map(|_| rng.below(cfg.stacks as u64) as usize)
            .collect();
        let nodes = (0..cfg.nodes)
            .map(|i| {
                let mut rng = XorShift::new(cfg.seed.wrapping_mul(0x1_0000_0001) ^ i as u64);
                let (lo, hi) = cfg.utilization;
                let utilization = lo + (hi - lo) * rng.unit();
                let mut node = Node {
                    name: format!("node-{i:05}"),
                    utilization,
                    next_pid: 1_000 + rng.below(30_000) as u32,
                    slots: Vec::with_capacity(cfg.processes),
                    rng,
                };
                for s in 0..cfg.processes {
                    let app = app_of(&mut node.rng, cfg.apps);
                    let p = spawn(&mut node, &cfg, s, app, 0);
                    node.slots.push(p);
                }
                node
            })
            .collect();
        Fleet {
            stack_rank: Zipf::new(cfg.stacks, 1.1),
            slot_rank: Zipf::new(cfg.processes, 1.0),
            hits: vec![Vec::new(); cfg.processes],
            app_offsets,
            nodes,
            program,
            cfg,
        }
    }

    /// The config.
    pub fn config(&self) -> &FleetConfig {
        &self.cfg
    }

    /// The shared program (symbols and stack pool).
    pub fn program(&self) -> &Program {
        &self.program
    }

    /// Node `node`'s request for round `round` (its interval ends at `end_ns`), and what it
    /// holds. Rounds of one node must come in order; nodes are independent.
    pub fn request(
        &mut self,
        encoder: &mut PprofEncoder<'_>,
        node: usize,
        round: u64,
        end_ns: i64,
    ) -> (WriteRawRequest, Generated) {
        let cfg = &self.cfg;
        let n = &mut self.nodes[node];
        let interval_s = cfg.interval_ns as f64 / 1e9;
        let busy = n.utilization * (0.8 + 0.4 * n.rng.unit());
        let ticks = (cfg.cores as f64 * f64::from(cfg.hz) * interval_s * busy).round() as u64;
        let drift = round as usize * cfg.drift;
        for _ in 0..ticks {
            let slot = self.slot_rank.sample(&mut n.rng);
            let stack = if n.rng.chance(cfg.tail) {
                n.rng.below(cfg.stacks as u64) as usize
            } else {
                let app = n.slots[slot].app;
                (self.stack_rank.sample(&mut n.rng) + self.app_offsets[app] + drift) % cfg.stacks
            };
            self.hits[slot].push((stack as u32, 1));
        }
        let window = ProfileWindow {
            time_nanos: end_ns - cfg.interval_ns,
            duration_nanos: cfg.interval_ns,
            period: 1_000_000_000 / i64::from(cfg.hz),
        };
        let mut generated = Generated {
            requests: 1,
            ..Generated::default()
        };
        let mut series = Vec::new();
        for (slot, hits) in self.hits.iter_mut().enumerate() {
            if hits.is_empty() {
                continue;
            }
            hits.sort_unstable();
            hits.dedup_by(|b, a| {
                let same = a.0 == b.0;
                if same {
                    a.1 += b.1;
                }
                same
            });
            let p = &n.slots[slot];
            generated.profiles += 1;
            generated.rows += hits.len() as u64;
            generated.value += hits.iter().map(|h| u64::from(h.1)).sum::<u64>();
            let app = app_name(p.app);
            let labels = [
                ("__name__", PROFILE_NAME.to_owned()),
                ("node", n.name.clone()),
                ("namespace", NAMESPACES[p.app % NAMESPACES.len()].to_owned()),
                ("pod", p.pod.clone()),
                ("container", app.clone()),
                ("comm", app.chars().take(15).collect()),
                ("pid", p.pid.to_string()),
            ]
            .into_iter()
            .map(|(name, value)| Label {
                name: name.to_owned(),
                value,
            })
            .collect();
            series.push(RawProfileSeries {
                labels: Some(LabelSet { labels }),
                samples: vec![RawSample {
                    raw_profile: encoder.encode(window, hits).encode_to_vec(),
                }],
            });
            hits.clear();
        }
        // Churn.
        for s in 0..n.slots.len() {
            let exits = if n.slots[s].exits_after == u64::MAX {
                n.rng.chance(cfg.restart)
            } else {
                round >= n.slots[s].exits_after
            };
            if exits {
                let app = n.slots[s].app;
                n.slots[s] = spawn(n, cfg, s, app, round + 1);
            }
        }
        let request = WriteRawRequest {
            series,
            ..Default::default()
        };
        (request, generated)
    }
}

/// A new process in slot `slot` of `node`, starting at round `round`.
fn spawn(node: &mut Node, cfg: &FleetConfig, slot: usize, app: usize, round: u64) -> Process {
    let short = (slot as f64) >= cfg.processes as f64 * (1.0 - cfg.short_lived);
    let pid = node.next_pid;
    node.next_pid += 1 + node.rng.below(50) as u32;
    let exits_after = if short {
        round + node.rng.range(0, 5)
    } else {
        u64::MAX
    };
    let pod = format!(
        "{}-{:08x}-{:05x}",
        app_name(app),
        node.rng.next_u64() as u32,
        node.rng.below(1 << 20)
    );
    Process {
        app,
        pid,
        pod,
        exits_after,
    }
}
