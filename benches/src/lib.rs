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

pub mod scale;

use std::collections::HashSet;
use std::time::Duration;

use strata_engine::{
    Function, FunctionId, LabelMatcher, Labels, Line, Location, LocationId, Mapping, MappingId,
    ProfileType, SampleBatch, SampleBatchBuilder, SampleRow, TimeRange,
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
const CRATES: &[&str] = &[
    "app",
    "tokio",
    "hyper",
    "h2",
    "serde_json",
    "prost",
    "tonic",
    "std",
    "core",
    "alloc",
    "regex",
    "rustls",
    "ring",
    "bytes",
    "tracing",
    "parking_lot",
    "sqlx",
    "reqwest",
];
const MODULES: &[&str] = &[
    "runtime", "task", "io", "codec", "server", "client", "proto", "buf", "sync", "net", "de",
    "ser", "handler", "pool", "cache", "store", "conn", "frame", "hash", "fmt",
];
const TYPES: &[&str] = &[
    "Worker",
    "Scheduler",
    "Conn",
    "Decoder",
    "Encoder",
    "Router",
    "Service",
    "Request",
    "Response",
    "Buffer",
    "Parser",
    "Inner",
    "Handle",
    "State",
    "Builder",
    "Table",
    "Stream",
    "Session",
    "Reader",
    "Writer",
];
const METHODS: &[&str] = &[
    "poll",
    "run",
    "call",
    "decode",
    "encode",
    "parse",
    "read",
    "write",
    "flush",
    "handle",
    "process",
    "next",
    "push",
    "get",
    "insert",
    "drop",
    "clone",
    "fmt",
    "from",
    "visit_map",
    "poll_ready",
    "serialize",
    "deserialize",
    "lookup",
    "try_recv",
];
const LIBS: &[&str] = &[
    "/usr/lib/x86_64-linux-gnu/libc.so.6",
    "/usr/lib/x86_64-linux-gnu/libm.so.6",
    "/usr/lib/x86_64-linux-gnu/libssl.so.3",
    "/usr/lib/x86_64-linux-gnu/libcrypto.so.3",
    "/usr/lib/x86_64-linux-gnu/libz.so.1",
    "/usr/lib/x86_64-linux-gnu/libstdc++.so.6",
    "/usr/lib/x86_64-linux-gnu/libgcc_s.so.1",
    "[vdso]",
];

/// The symbols shared by every profile: mappings, functions, locations and the stack pool.
#[derive(Clone, Debug)]
pub struct Program {
    /// Mappings; the first is the main binary.
    pub mappings: Vec<Mapping>,
    /// Functions.
    pub functions: Vec<Function>,
    /// Locations, each keyed by mapping and address, with lines.
    pub locations: Vec<Location>,
    /// For every location, the index of its mapping in `mappings`.
    pub location_mapping: Vec<usize>,
    /// For every location, the indexes of its lines' functions in `functions`.
    pub location_functions: Vec<Vec<usize>>,
    /// The stack pool: indexes into `locations`, leaf first. All distinct.
    pub stacks: Vec<Vec<u32>>,
    /// The stack pool as location IDs, leaf first.
    pub stack_location_ids: Vec<Vec<LocationId>>,
}

fn hex(rng: &mut XorShift, chars: usize) -> String {
    let mut s = String::with_capacity(chars);
    while s.len() < chars {
        s.push_str(&format!("{:016x}", rng.next_u64()));
    }
    s.truncate(chars);
    s
}

/// Rust legacy mangling of a path: `_ZN` + length-prefixed segments + hash + `E`.
fn mangle(segments: &[&str], rng: &mut XorShift) -> String {
    let mut s = String::from("_ZN");
    for seg in segments {
        let seg = seg.replace(['{', '}'], "$");
        s.push_str(&format!("{}{}", seg.len(), seg));
    }
    s.push_str(&format!("17h{}E", hex(rng, 16)));
    s
}

impl Program {
    /// Generates the program described by `cfg` (its `mappings`, `functions`, `stacks`,
    /// `min_depth`, `max_depth` and `seed`).
    pub fn generate(cfg: &WorkloadConfig) -> Program {
        assert!(cfg.mappings >= 1 && cfg.functions >= 1 && cfg.stacks >= 1);
        assert!(1 <= cfg.min_depth && cfg.min_depth <= cfg.max_depth);
        let mut rng = XorShift::new(cfg.seed ^ 0x005E_ED0F_C0DE);
        let mappings = generate_mappings(cfg.mappings, &mut rng);
        let functions = generate_functions(cfg, &mappings, &mut rng);
        let mapping_ids: Vec<MappingId> = mappings.iter().map(Mapping::id).collect();
        let locations = generate_locations(&functions, &mapping_ids, &mut rng);
        let stacks = generate_stacks(cfg, locations.locations.len(), &mut rng);
        let location_ids: Vec<LocationId> = locations.locations.iter().map(Location::id).collect();
        let stack_location_ids = stacks
            .iter()
            .map(|s| s.iter().map(|&l| location_ids[l as usize]).collect())
            .collect();
        Program {
            mappings,
            functions: functions.functions,
            locations: locations.locations,
            location_mapping: locations.mapping,
            location_functions: locations.functions,
            stacks,
            stack_location_ids,
        }
    }
}

/// Mappings: the main binary, then shared libraries.
fn generate_mappings(count: usize, rng: &mut XorShift) -> Vec<Mapping> {
    let mut mappings = Vec::with_capacity(count);
    let mut start = 0x5555_5555_0000u64;
    for i in 0..count {
        let filename = match i {
            0 => "/app/bin/server".to_string(),
            i if i - 1 < LIBS.len() => LIBS[i - 1].to_string(),
            i => format!("/usr/lib/x86_64-linux-gnu/libext{i}.so.1"),
        };
        let size = if i == 0 {
            0x0400_0000
        } else {
            0x0020_0000 + rng.below(0x0100_0000)
        };
        let build_id = if filename == "[vdso]" {
            String::new()
        } else {
            hex(rng, 40)
        };
        mappings.push(Mapping {
            build_id,
            filename,
            memory_start: start,
            memory_limit: start + size,
            file_offset: if i == 0 { 0 } else { 0x1000 * rng.below(16) },
        });
        start = if i == 0 {
            0x7f00_0000_0000
        } else {
            start + size + 0x0010_0000
        };
    }
    mappings
}

/// The generated functions, each with its mapping and address.
struct GeneratedFunctions {
    functions: Vec<Function>,
    /// Their IDs.
    ids: Vec<FunctionId>,
    /// Index of each function's mapping.
    mapping: Vec<usize>,
    /// Each function's start address in its mapping.
    addr: Vec<u64>,
}

/// Functions, most in the main binary; each gets an address range in its mapping.
fn generate_functions(
    cfg: &WorkloadConfig,
    mappings: &[Mapping],
    rng: &mut XorShift,
) -> GeneratedFunctions {
    let mapping_of_fn = Zipf::new(cfg.mappings, 1.6);
    let mut functions = Vec::with_capacity(cfg.functions);
    let mut fn_mapping = Vec::with_capacity(cfg.functions);
    let mut fn_addr = Vec::with_capacity(cfg.functions);
    let mut next_addr: Vec<u64> = mappings.iter().map(|m| m.memory_start + 0x1000).collect();
    let mut names = HashSet::new();
    for i in 0..cfg.functions {
        functions.push(generate_function(i, &mut names, rng));
        let mi = mapping_of_fn.sample(rng);
        fn_mapping.push(mi);
        fn_addr.push(next_addr[mi]);
        next_addr[mi] += 0x40 + 0x10 * rng.below(0x100);
    }
    GeneratedFunctions {
        ids: functions.iter().map(Function::id).collect(),
        functions,
        mapping: fn_mapping,
        addr: fn_addr,
    }
}

/// Function `i`: a Rust-like path not in `names` yet (added to it), its mangled name, a
/// file and a start line.
fn generate_function(i: usize, names: &mut HashSet<String>, rng: &mut XorShift) -> Function {
    let (c, m, t, f) = (
        *rng.pick(CRATES),
        *rng.pick(MODULES),
        *rng.pick(TYPES),
        *rng.pick(METHODS),
    );
    let mut name = format!("{c}::{m}::{t}::{f}");
    let mut segments = vec![c, m, t, f];
    if !names.insert(name.clone()) {
        name.push_str("::{{closure}}");
        segments.push("{{closure}}");
        if !names.insert(name.clone()) {
            name = format!("{c}::{m}::{t}<T{i}>::{f}");
            names.insert(name.clone());
        }
    }
    let system_name = mangle(&segments, rng);
    let filename = match c {
        "std" | "core" | "alloc" => {
            format!("/rustc/90b35a6239c3d8bdabc530a6a0816f7ff89a0aaf/library/{c}/src/{m}/mod.rs")
        }
        "app" => format!("src/{m}/{}.rs", t.to_lowercase()),
        _ => format!("/cargo/registry/src/index.crates.io/{c}-1.0.0/src/{m}.rs"),
    };
    let start_line = rng.range(1, 3_000) as i64;
    Function {
        name,
        system_name,
        filename,
        start_line,
    }
}

/// The generated locations, with their mappings' and functions' indexes.
struct GeneratedLocations {
    locations: Vec<Location>,
    /// Index of each location's mapping.
    mapping: Vec<usize>,
    /// Indexes of each location's lines' functions.
    functions: Vec<Vec<usize>>,
}

/// Locations: 1-3 call sites per function, 15 % with an inlined callee in front.
fn generate_locations(
    functions: &GeneratedFunctions,
    mapping_ids: &[MappingId],
    rng: &mut XorShift,
) -> GeneratedLocations {
    let (function_ids, n) = (&functions.ids, functions.functions.len());
    let mut out = GeneratedLocations {
        locations: Vec::new(),
        mapping: Vec::new(),
        functions: Vec::new(),
    };
    for fi in 0..n {
        let sites = rng.range(1, 3);
        let mut offset = 0x8;
        for _ in 0..sites {
            offset += 0x4 * rng.range(1, 24);
            let outer = Line {
                function_id: function_ids[fi],
                line: functions.functions[fi].start_line + rng.range(1, 80) as i64,
            };
            let mut lines = vec![outer];
            let mut fns = vec![fi];
            if rng.chance(0.15) {
                let g = rng.below(n as u64) as usize;
                let inner = Line {
                    function_id: function_ids[g],
                    line: functions.functions[g].start_line + rng.range(1, 30) as i64,
                };
                lines.insert(0, inner);
                fns.insert(0, g);
            }
            out.locations.push(Location {
                mapping_id: mapping_ids[functions.mapping[fi]],
                address: functions.addr[fi] + offset,
                lines,
            });
            out.mapping.push(functions.mapping[fi]);
            out.functions.push(fns);
        }
    }
    out
}

/// The stack pool over `n_locations` locations: `cfg.stacks` distinct stacks, built root
/// first as paths of a call tree, then reversed (leaf first).
fn generate_stacks(cfg: &WorkloadConfig, n_locations: usize, rng: &mut XorShift) -> Vec<Vec<u32>> {
    let frame = Zipf::new(n_locations, 1.0);
    let roots: Vec<Vec<u32>> = (0..6)
        .map(|_| {
            (0..rng.range(3, 6))
                .map(|_| rng.below(n_locations as u64) as u32)
                .collect()
        })
        .collect();
    let mut stacks: Vec<Vec<u32>> = Vec::with_capacity(cfg.stacks);
    let mut seen = HashSet::with_capacity(cfg.stacks);
    let mut attempts = 0usize;
    while stacks.len() < cfg.stacks {
        attempts += 1;
        assert!(
            attempts < cfg.stacks * 100 + 1_000,
            "cannot build {} distinct stacks",
            cfg.stacks
        );
        let depth = rng.range(cfg.min_depth as u64, cfg.max_depth as u64) as usize;
        let cap = (depth - 1).max(1); // leave room for at least one new frame
        let mut path: Vec<u32> = if !stacks.is_empty() && rng.chance(0.8) {
            // A sibling: share a root-side prefix of an earlier stack.
            let parent = rng.pick(&stacks);
            let keep = rng.range(1, parent.len().min(cap) as u64) as usize;
            parent.iter().rev().take(keep).copied().collect()
        } else {
            rng.pick(&roots).clone()
        };
        path.truncate(cap);
        while path.len() < depth {
            path.push(frame.sample(rng) as u32);
        }
        path.reverse();
        if seen.insert(path.clone()) {
            stacks.push(path);
        }
    }
    stacks
}

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
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let after_name = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // Fields 14 and 15 of proc(5) (utime, stime); `fields[0]` is field 3.
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 10))
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
