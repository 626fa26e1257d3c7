//! # Strata benchmark workloads
//!
//! Deterministic generators of [`SampleBatch`]es that look like real CPU profiles, shared by
//! the Criterion benchmarks (`benches/engine.rs`) and anything else that needs a realistic load.
//!
//! The model:
//!
//! - A **program**: a few mappings (a main binary and shared libraries, each with a build id),
//!   a few thousand functions with Rust-like names, mangled system names and file names, and
//!   address-keyed locations (mapping + address, 1-3 call sites per function, some with an
//!   inlined frame). Functions are assigned to mappings Zipf-style (most code is in the binary).
//! - A **stack pool** of a few thousand distinct stacks, depth 10-40. Stacks grow like a call
//!   tree: most copy a root-side prefix of an earlier stack and extend it with frames drawn
//!   Zipf-style from the locations, so hot functions recur in many stacks.
//! - **Series**: labels `job` and `instance`; instances of one job share that job's hot stacks.
//! - A **profile** is one series at one timestamp (pushed every `interval_ns`, duration
//!   `interval_ns`, period 10 ms): 500-2000 samples, one per distinct stack, stacks drawn
//!   Zipf-style from the pool; a sample's value is CPU nanoseconds, a small number of 10 ms
//!   ticks (how often its stack was drawn, capped at `max_ticks`).
//!
//! Everything derives from [`WorkloadConfig::seed`] through a xorshift generator, so the same
//! config always yields the same batches.
//!
//! ```
//! use strata_benches::{WorkloadConfig, realistic_batches};
//! let cfg = WorkloadConfig { series: 4, ..WorkloadConfig::default() };
//! let batches = realistic_batches(&cfg, 5_000);
//! assert!(batches.iter().map(|b| b.num_samples()).sum::<usize>() >= 5_000);
//! assert_eq!(batches, realistic_batches(&cfg, 5_000)); // deterministic
//! ```
#![deny(missing_docs)]

pub mod doors;
pub mod goprof;
mod program;
pub mod scale;

pub use program::Program;

use std::time::Duration;

use strata_engine::{
    LabelMatcher, Labels, ProfileType, SampleBatch, SampleBatchBuilder, SampleRow, TimeRange,
};

/// The CPU profile type every generated sample has.
pub const CPU_PROFILE_TYPE: &str = "process_cpu:cpu:nanoseconds:cpu:nanoseconds:delta";

/// CPU sampling period: 10 ms (100 Hz), in nanoseconds. Every value is a multiple of it.
pub const CPU_PERIOD_NS: i64 = 10_000_000;

/// [`CPU_PROFILE_TYPE`], parsed.
pub fn cpu_profile_type() -> ProfileType {
    CPU_PROFILE_TYPE.parse().expect("a valid profile type")
}

/// A small deterministic xorshift64* random number generator.
#[derive(Clone, Debug)]
pub struct XorShift(u64);

impl XorShift {
    /// A generator seeded with `seed` (any value; 0 is remapped).
    pub fn new(seed: u64) -> Self {
        // SplitMix64 step so nearby seeds give unrelated streams.
        let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        XorShift(if z == 0 { 0x2545_F491_4F6C_DD1D } else { z })
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A uniform value in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        // In u128 so that a large `n` cannot overflow (same values as the u64 form below 2^32).
        (((self.next_u64() >> 32) as u128 * n as u128) >> 32) as u64
    }

    /// A uniform value in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }

    /// A uniform value in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// `true` with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    /// A random element of `items`.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

/// Draws ranks `0..n` with probability proportional to `1 / (rank + 1)^s`.
#[derive(Clone, Debug)]
pub struct Zipf {
    cdf: Vec<f64>,
}

impl Zipf {
    /// A Zipf distribution over `n > 0` ranks with exponent `s`.
    pub fn new(n: usize, s: f64) -> Self {
        assert!(n > 0, "Zipf over no ranks");
        let mut cdf = Vec::with_capacity(n);
        let mut acc = 0.0;
        for r in 0..n {
            acc += 1.0 / ((r + 1) as f64).powf(s);
            cdf.push(acc);
        }
        for c in &mut cdf {
            *c /= acc;
        }
        Zipf { cdf }
    }

    /// One rank.
    pub fn sample(&self, rng: &mut XorShift) -> usize {
        let u = rng.unit();
        self.cdf
            .partition_point(|&c| c <= u)
            .min(self.cdf.len() - 1)
    }
}

/// Shape of a generated workload. [`Default`] is a mid-sized production-like setup.
#[derive(Clone, Debug, PartialEq)]
pub struct WorkloadConfig {
    /// Number of series (distinct `job`/`instance` pairs). Default: 100.
    pub series: usize,
    /// Number of distinct `job` values; instances are spread over them. Default: 10.
    pub jobs: usize,
    /// Mappings (binaries and libraries). Default: 12.
    pub mappings: usize,
    /// Functions. Default: 3,000.
    pub functions: usize,
    /// Distinct stacks in the pool. Default: 4,000.
    pub stacks: usize,
    /// Shallowest stack. Default: 10.
    pub min_depth: usize,
    /// Deepest stack. Default: 40.
    pub max_depth: usize,
    /// Fewest samples (distinct stacks) in one profile. Default: 500.
    pub min_samples: usize,
    /// Most samples in one profile. Default: 2,000.
    pub max_samples: usize,
    /// Most 10 ms ticks in one sample's value. Default: 50 (values stay far below 2^31).
    pub max_ticks: u64,
    /// Profiles per batch (consecutive profiles in push order). Default: 1.
    pub profiles_per_batch: usize,
    /// Time between two profiles of a series, also each profile's duration. Default: 10 s.
    pub interval_ns: i64,
    /// Timestamp of the first round of profiles. Default: 2024-01-01T00:00:00Z.
    pub start_ns: i64,
    /// Seed of everything. Default: 1.
    pub seed: u64,
}

impl Default for WorkloadConfig {
    fn default() -> Self {
        WorkloadConfig {
            series: 100,
            jobs: 10,
            mappings: 12,
            functions: 3_000,
            stacks: 4_000,
            min_depth: 10,
            max_depth: 40,
            min_samples: 500,
            max_samples: 2_000,
            max_ticks: 50,
            profiles_per_batch: 1,
            interval_ns: 10_000_000_000,
            start_ns: 1_704_067_200_000_000_000,
            seed: 1,
        }
    }
}

const JOBS: &[&str] = &[
    "api-gateway",
    "checkout",
    "payments",
    "search",
    "inventory",
    "auth",
    "recommendations",
    "frontend",
    "ledger",
    "notifier",
    "ingest",
    "billing",
];

/// The labels of series `i` of a workload with `jobs` jobs.
pub fn series_labels(i: usize, jobs: usize) -> Labels {
    let j = i % jobs.max(1);
    let job = match JOBS.get(j) {
        Some(name) => name.to_string(),
        None => format!("service-{j}"),
    };
    let n = i / jobs.max(1);
    let instance = format!("10.{}.{}.{}:8080", 1 + j % 200, n / 250, 1 + n % 250);
    Labels::new([("job", job), ("instance", instance)]).expect("valid labels")
}

/// Matchers selecting exactly series `i` of a workload with `jobs` jobs.
pub fn series_matchers(i: usize, jobs: usize) -> Vec<LabelMatcher> {
    series_labels(i, jobs)
        .iter()
        .map(|l| LabelMatcher::equal(l.name.clone(), l.value.clone()))
        .collect()
}

/// An endless, deterministic stream of CPU profile batches: round after round, every series
/// pushes one profile per round.
#[derive(Clone, Debug)]
pub struct Workload {
    cfg: WorkloadConfig,
    program: Program,
    series: Vec<Labels>,
    /// Per-series push offset within the interval (ns).
    offsets: Vec<i64>,
    stack_rank: Zipf,
    rng: XorShift,
    profile_type: ProfileType,
    round: u64,
    next_series: usize,
    /// Per-batch "already added" marks (stamped with the batch number).
    location_mark: Vec<u64>,
    function_mark: Vec<u64>,
    mapping_mark: Vec<u64>,
    batches: u64,
    hits: Vec<u32>,
}

impl Workload {
    /// A workload as described by `cfg`.
    pub fn new(cfg: WorkloadConfig) -> Workload {
        assert!(cfg.series >= 1 && cfg.jobs >= 1 && cfg.profiles_per_batch >= 1);
        assert!(1 <= cfg.min_samples && cfg.min_samples <= cfg.max_samples);
        assert!(
            cfg.max_samples <= cfg.stacks,
            "a profile holds distinct stacks from the pool"
        );
        assert!(cfg.interval_ns > 0 && cfg.max_ticks >= 1);
        let program = Program::generate(&cfg);
        let mut rng = XorShift::new(cfg.seed);
        let series = (0..cfg.series)
            .map(|i| series_labels(i, cfg.jobs))
            .collect();
        let offsets = (0..cfg.series)
            .map(|_| rng.below(cfg.interval_ns as u64) as i64)
            .collect();
        Workload {
            stack_rank: Zipf::new(cfg.stacks, 1.0),
            location_mark: vec![u64::MAX; program.locations.len()],
            function_mark: vec![u64::MAX; program.functions.len()],
            mapping_mark: vec![u64::MAX; program.mappings.len()],
            hits: vec![0; program.stacks.len()],
            profile_type: cpu_profile_type(),
            program,
            series,
            offsets,
            rng,
            round: 0,
            next_series: 0,
            batches: 0,
            cfg,
        }
    }

    /// The config.
    pub fn config(&self) -> &WorkloadConfig {
        &self.cfg
    }

    /// The shared symbols and stack pool.
    pub fn program(&self) -> &Program {
        &self.program
    }

    /// The labels of every series, in series order.
    pub fn series(&self) -> &[Labels] {
        &self.series
    }

    /// Rounds completed so far (every series pushed once per round).
    pub fn rounds(&self) -> u64 {
        self.round
    }

    /// The time range holding the profiles of rounds `first..last`.
    pub fn rounds_range(&self, first: u64, last: u64) -> TimeRange {
        let t = |r: u64| self.cfg.start_ns + r as i64 * self.cfg.interval_ns;
        // Per-round jitter is below 50 ms in either direction.
        TimeRange::new(t(first) - 50_000_000, t(last) - 50_000_000)
    }

    /// The next batch: `profiles_per_batch` profiles in push order.
    pub fn next_batch(&mut self) -> SampleBatch {
        let mut b = SampleBatchBuilder::new();
        let pt = b.profile_type(&self.profile_type);
        let epoch = self.batches;
        self.batches += 1;
        for _ in 0..self.cfg.profiles_per_batch {
            self.add_profile(&mut b, pt, epoch);
        }
        b.build().expect("generated batches are consistent")
    }

    fn add_profile(
        &mut self,
        b: &mut SampleBatchBuilder,
        pt: strata_engine::ProfileTypeRef,
        epoch: u64,
    ) {
        let s = self.next_series;
        let round = self.round;
        self.next_series += 1;
        if self.next_series == self.cfg.series {
            self.next_series = 0;
            self.round += 1;
        }
        let cfg = &self.cfg;
        let rng = &mut self.rng;
        let series = b.series(self.series[s].clone());
        let jitter = rng.below(100_000_000) as i64 - 50_000_000;
        let ts = cfg.start_ns + round as i64 * cfg.interval_ns + self.offsets[s] + jitter;
        let ts = ts.min(cfg.start_ns + (round as i64 + 1) * cfg.interval_ns - 50_000_001);

        // Draw stacks Zipf-style (each job has its own hot set) until the profile has
        // `want` distinct ones; a stack's value is how often it was drawn, in 10 ms ticks.
        let job = s % cfg.jobs;
        let rotate = job * cfg.stacks / cfg.jobs;
        let want = rng.range(cfg.min_samples as u64, cfg.max_samples as u64) as usize;
        let mut chosen: Vec<usize> = Vec::with_capacity(want);
        let max_draws = want * 200;
        let mut draws = 0;
        while chosen.len() < want && draws < max_draws {
            draws += 1;
            let st = (self.stack_rank.sample(rng) + rotate) % cfg.stacks;
            if self.hits[st] == 0 {
                chosen.push(st);
            }
            self.hits[st] += 1;
        }
        let p = &self.program;
        for &st in &chosen {
            for &l in &p.stacks[st] {
                let l = l as usize;
                if self.location_mark[l] == epoch {
                    continue;
                }
                self.location_mark[l] = epoch;
                let m = p.location_mapping[l];
                if self.mapping_mark[m] != epoch {
                    self.mapping_mark[m] = epoch;
                    b.mapping(p.mappings[m].clone());
                }
                for &f in &p.location_functions[l] {
                    if self.function_mark[f] != epoch {
                        self.function_mark[f] = epoch;
                        b.function(p.functions[f].clone());
                    }
                }
                b.location(p.locations[l].clone());
            }
            let stack = b.stack(&p.stack_location_ids[st]);
            let ticks = u64::from(self.hits[st]).min(cfg.max_ticks) as i64;
            self.hits[st] = 0;
            b.sample(SampleRow {
                profile_type: pt,
                series,
                timestamp_ns: ts,
                duration_ns: cfg.interval_ns,
                period: CPU_PERIOD_NS,
                stack,
                value: ticks * CPU_PERIOD_NS,
            });
        }
        debug_assert!(self.hits.iter().all(|&h| h == 0));
    }
}

impl Iterator for Workload {
    type Item = SampleBatch;

    fn next(&mut self) -> Option<SampleBatch> {
        Some(self.next_batch())
    }
}

/// Batches of the workload `cfg` describes, from its start, until they hold at least
/// `min_samples` samples in total.
pub fn realistic_batches(cfg: &WorkloadConfig, min_samples: usize) -> Vec<SampleBatch> {
    let mut w = Workload::new(cfg.clone());
    let mut out = Vec::new();
    let mut total = 0;
    while total < min_samples {
        let b = w.next_batch();
        total += b.num_samples();
        out.push(b);
    }
    out
}

/// Total samples in `batches`.
pub fn total_samples(batches: &[SampleBatch]) -> u64 {
    batches.iter().map(|b| b.num_samples() as u64).sum()
}

/// User plus system CPU time of the whole process (every thread) so far, from
/// `/proc/self/stat` (clock ticks of 1/100 s, Linux's `USER_HZ`).
pub fn process_cpu_time() -> Option<Duration> {
    cpu_time_of("self")
}

/// User + system CPU time of every thread of process `pid` (`self` or a number), from
/// `/proc/<pid>/stat` (10 ms ticks).
pub fn cpu_time_of(pid: &str) -> Option<Duration> {
    let (user, system) = user_system_time_of(pid)?;
    Some(user + system)
}

/// User and system CPU time of every thread of process `pid` (`self` or a number), apart.
pub fn user_system_time_of(pid: &str) -> Option<(Duration, Duration)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_name = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // Fields 14 and 15 of proc(5) (utime, stime); `fields[0]` is field 3.
    let ticks = |i: usize| -> Option<Duration> {
        Some(Duration::from_millis(
            fields.get(i)?.parse::<u64>().ok()? * 10,
        ))
    };
    Some((ticks(11)?, ticks(12)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profiles_look_like_cpu_profiles() {
        let cfg = WorkloadConfig {
            series: 3,
            jobs: 2,
            ..WorkloadConfig::default()
        };
        let mut w = Workload::new(cfg.clone());
        let p = w.program().clone();
        assert_eq!(p.stacks.len(), cfg.stacks);
        assert!(
            p.stacks
                .iter()
                .all(|s| (cfg.min_depth..=cfg.max_depth).contains(&s.len()))
        );
        assert!(
            p.locations
                .iter()
                .all(|l| l.is_address_keyed() && l.is_symbolized())
        );
        for _ in 0..6 {
            let b = w.next_batch();
            assert!((cfg.min_samples..=cfg.max_samples).contains(&b.num_samples()));
            assert_eq!(b.series().len(), 1);
            assert_eq!(
                b.symbols().stacks.len(),
                b.num_samples(),
                "one sample per distinct stack"
            );
        }
        assert_eq!(w.rounds(), 2);
    }
}
