//! [`Program`]: the generated symbols every profile of a workload shares (mappings, functions,
//! locations) and its pool of stacks.

use std::collections::HashSet;

use strata_engine::{Function, FunctionId, Line, Location, LocationId, Mapping, MappingId};

use crate::{WorkloadConfig, XorShift, Zipf};

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
