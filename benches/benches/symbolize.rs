//! Criterion benchmarks of `strata-symbolizer`: addresses symbolized per second on a real,
//! sizeable object — glibc's `libc.so.6` with its DWARF from Debian's `libc6-dbg`
//! (`/usr/lib/debug/.build-id/…`, found by build id as in production) — at 10,000 addresses
//! spread over its exported functions (every function, several offsets each).
//!
//! - `cold`: a new `Symbolizer` per iteration: finding the debug file, parsing it (symbol
//!   tables, DWARF unit index) and the first lookup of every address (`first_lookup`: one
//!   address; `batch`: all 10,000).
//! - `parsed`: the object parsed and cached, addresses not (`max_addresses: 1`): the DWARF
//!   lookups themselves, units parsed lazily on first touch and then kept.
//! - `warm`: every address in the (build id, address) cache.
//!
//! Skipped, with the reason printed, where libc6-dbg is not installed
//! (`apt-get install -y libc6-dbg`). Run with
//! `CARGO_TARGET_DIR=/work/target-bench cargo bench -p strata-benches --bench symbolize`
//! (see `benches/README.md`).

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::Duration;

use criterion::{Criterion, Throughput};
use object::{Object, ObjectSymbol, SymbolKind};
use strata_symbolizer::{BuildId, DebugInfoStatus, ObjectRef, Symbolizer, SymbolizerConfig};

const LIBC: &str = "/lib/x86_64-linux-gnu/libc.so.6";
const ADDRESSES: usize = 10_000;

/// libc's object reference and 10,000 addresses in its functions; `None` without its DWARF.
fn libc_workload() -> Option<(ObjectRef, Vec<u64>)> {
    let path = std::fs::canonicalize(LIBC).ok()?;
    let data = std::fs::read(&path).ok()?;
    let build_id = BuildId::of(&*data)?.id;
    let debug = PathBuf::from(format!(
        "/usr/lib/debug/.build-id/{}/{}.debug",
        &build_id[..2],
        &build_id[2..]
    ));
    if !debug.exists() {
        eprintln!(
            "symbolize bench SKIPPED: no {} (apt-get install -y libc6-dbg)",
            debug.display()
        );
        return None;
    }
    let file = object::File::parse(&*data).ok()?;
    let mut functions: Vec<(u64, u64)> = file
        .dynamic_symbols()
        .filter(|s| s.kind() == SymbolKind::Text && s.size() > 0)
        .map(|s| (s.address(), s.size()))
        .collect();
    functions.sort_unstable();
    functions.dedup();
    // Deterministic offsets (xorshift) into functions taken round-robin.
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let addresses = (0..ADDRESSES)
        .map(|i| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let (start, size) = functions[(i * 7919) % functions.len()];
            start + state % size
        })
        .collect();
    eprintln!(
        "symbolize bench: {} ({} exported functions), DWARF from {} ({} bytes)",
        path.display(),
        functions.len(),
        debug.display(),
        std::fs::metadata(&debug).map(|m| m.len()).unwrap_or(0)
    );
    Some((ObjectRef::new(build_id).with_path(path), addresses))
}

fn symbolizer(max_addresses: usize) -> Symbolizer {
    Symbolizer::new(SymbolizerConfig {
        max_addresses,
        ..Default::default()
    })
    .expect("symbolizer")
}

fn check(object: &ObjectRef, addresses: &[u64]) {
    let batch = symbolizer(ADDRESSES).symbolize(object, addresses);
    assert!(
        matches!(&batch.status, DebugInfoStatus::Found { content, .. } if content.dwarf),
        "{:?}",
        batch.status
    );
    let named = batch.frames.iter().filter(|f| !f.is_empty()).count();
    let with_lines = batch
        .frames
        .iter()
        .filter(|f| f.first().is_some_and(|f| f.line > 0))
        .count();
    let inlined = batch.frames.iter().filter(|f| f.len() > 1).count();
    eprintln!(
        "symbolize bench: of {} addresses {named} named, {with_lines} with a line, {inlined} with inlined frames",
        addresses.len()
    );
}

fn bench(c: &mut Criterion, object: &ObjectRef, addresses: &[u64]) {
    let mut cold = c.benchmark_group("symbolize_cold");
    cold.sample_size(10)
        .measurement_time(Duration::from_secs(20));
    cold.throughput(Throughput::Elements(1));
    cold.bench_function("first_lookup", |b| {
        b.iter(|| black_box(symbolizer(ADDRESSES).symbolize(object, &addresses[..1])))
    });
    cold.throughput(Throughput::Elements(addresses.len() as u64));
    cold.bench_function("batch", |b| {
        b.iter(|| black_box(symbolizer(ADDRESSES).symbolize(object, addresses)))
    });
    cold.finish();

    let mut parsed = c.benchmark_group("symbolize_parsed");
    parsed
        .sample_size(10)
        .measurement_time(Duration::from_secs(10));
    parsed.throughput(Throughput::Elements(addresses.len() as u64));
    let s = symbolizer(1);
    s.symbolize(object, addresses);
    parsed.bench_function("batch", |b| {
        b.iter(|| black_box(s.symbolize(object, addresses)))
    });
    parsed.finish();

    let mut warm = c.benchmark_group("symbolize_warm");
    warm.throughput(Throughput::Elements(addresses.len() as u64));
    let s = symbolizer(ADDRESSES * 2);
    s.symbolize(object, addresses);
    warm.bench_function("batch", |b| {
        b.iter(|| black_box(s.symbolize(object, addresses)))
    });
    warm.finish();
    let stats = s.stats();
    assert!(stats.address_hits > stats.address_misses);
}

fn main() {
    let Some((object, addresses)) = libc_workload() else {
        return;
    };
    assert!(Path::new(LIBC).exists());
    check(&object, &addresses);
    let mut c = Criterion::default().configure_from_args();
    bench(&mut c, &object, &addresses);
    c.final_summary();
}
