//! Query benchmarks (a report, like `ingest.rs`):
//!
//! 1. **Merge**: `STRATA_BENCH_QUERY_ROWS` (default 10,000,000) samples of the default workload
//!    appended to an engine (`background: false`, fsync never) and flushed every
//!    `STRATA_BENCH_QUERY_BLOCK_ROWS` (default rows / 4) into Parquet blocks, then
//!    `QueryEngine::merge` over all of them (the engine sums each scan part per stack, on the
//!    blocks' dictionary encoding, a DataFusion `SUM(value) GROUP BY stack_id` combines the
//!    parts, then `resolve_stacks`), timed
//!    whole and in parts: the engine scan alone, the engine's per-part stack sums alone, the
//!    aggregation alone (no symbols) over those sums and, for comparison, over the row-by-row
//!    `samples` table, and `resolve_stacks` alone.
//! 2. **Same GROUP BY, other engines, same files**: plain DataFusion (`read_parquet` of the
//!    blocks' `samples.parquet` + SQL) with 2 and 1 partitions, and DuckDB (PyPI `duckdb`, run
//!    by `benches/duckdb_groupby.py`, timed inside Python) with 2 and 1 threads. Skipped with a
//!    message when `python3 -c "import duckdb"` fails.
//! 3. **Flame graph**: a `MergedProfile` of `STRATA_BENCH_QUERY_STACKS` (default 1,000,000)
//!    distinct stacks from the workload generator, then `FrameProfile::resolve`,
//!    `FlameGraph::build` (no pruning, and `min_fraction` 0.0001 / `max_nodes` 100,000) and
//!    `report::top`.
//!
//! Every timing is one untimed warm-up run, then `STRATA_BENCH_QUERY_ITERS` (default 5) runs:
//! median wall time, and process CPU time (all threads, `/proc/self/stat`) per run.
//! `cargo test --benches` (no `--bench` argument) runs a small smoke version.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use datafusion::arrow::array::{AsArray, RecordBatch};
use datafusion::arrow::datatypes::{Int64Type, UInt64Type};
use datafusion::datasource::TableProvider;
use datafusion::functions_aggregate::expr_fn::{max, sum};
use datafusion::prelude::{ParquetReadOptions, SessionConfig, SessionContext, col};
use futures::TryStreamExt;
use strata_benches::{
    CPU_PERIOD_NS, CPU_PROFILE_TYPE, Program, Workload, WorkloadConfig, XorShift, cpu_profile_type,
    process_cpu_time,
};
use strata_engine::{
    Engine, EngineConfig, FsyncPolicy, ScanRequest, StackId, SymbolTables, TimeRange, stack_id,
};
use strata_query::report::{FlameGraph, FlameGraphOptions, top};
use strata_query::table::{SamplesTable, Selection, StackSumsTable};
use strata_query::{
    FrameProfile, MergedProfile, ProfileQuery, QueryEngine, StackValue, parse_selector,
};
use tokio::runtime::Runtime;

/// Target merge throughput, rows per CPU-second.
const MERGE_TARGET: f64 = 6e6;
/// Target flame graph build time for 1 M stacks.
const FLAME_TARGET: Duration = Duration::from_millis(300);

fn env_or(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(v) => v.parse().unwrap_or_else(|_| panic!("{name} is a number")),
        Err(_) => default,
    }
}

/// Timings of repeated runs.
struct Runs {
    walls: Vec<Duration>,
    /// Process CPU time per run (all threads).
    cpu: Duration,
}

impl Runs {
    fn median(&self) -> Duration {
        let mut w = self.walls.clone();
        w.sort();
        w[w.len() / 2]
    }

    fn min(&self) -> Duration {
        *self.walls.iter().min().unwrap()
    }

    /// One line: median and min wall, CPU per run, and rates if `rows` is given.
    fn line(&self, name: &str, rows: Option<u64>) -> String {
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        let mut s = format!(
            "  {name:<50} median {:>8.1} ms  min {:>8.1} ms  CPU {:>8.1} ms/run",
            ms(self.median()),
            ms(self.min()),
            ms(self.cpu),
        );
        if let Some(rows) = rows {
            s.push_str(&format!(
                "  {:>6.2} M rows/s wall",
                rows as f64 / self.median().as_secs_f64() / 1e6
            ));
            if !self.cpu.is_zero() {
                s.push_str(&format!(
                    "  {:>6.2} M rows/CPU-s",
                    rows as f64 / self.cpu.as_secs_f64() / 1e6
                ));
            }
        }
        s
    }
}

/// Runs `f` once untimed, then `iters` times timed. The previous result is dropped outside the
/// wall-clock measurement (but inside the CPU one).
fn measure<T>(iters: usize, mut f: impl FnMut() -> T) -> (Runs, T) {
    let mut out = f();
    let cpu0 = process_cpu_time().unwrap_or_default();
    let mut walls = Vec::with_capacity(iters);
    for _ in 0..iters {
        let t = Instant::now();
        let r = f();
        walls.push(t.elapsed());
        out = r;
    }
    let cpu = process_cpu_time().unwrap_or_default().saturating_sub(cpu0) / iters as u32;
    (Runs { walls, cpu }, out)
}

/// Number of groups and sum of the value column of an aggregation's output.
fn summarize(batches: &[RecordBatch], value_column: usize) -> (u64, i128) {
    let mut groups = 0;
    let mut total = 0i128;
    for b in batches {
        groups += b.num_rows() as u64;
        let v = b.column(value_column);
        // SUM(Int64) is Int64 in DataFusion.
        for x in v.as_primitive::<Int64Type>().iter().flatten() {
            total += i128::from(x);
        }
    }
    (groups, total)
}

/// Appends `rows` samples of the default workload, flushing every `block_rows`.
async fn load(dir: &Path, rows: u64, block_rows: u64) -> (Engine, Workload, u64) {
    let mut config = EngineConfig::new(dir);
    config.background = false;
    config.wal.fsync = FsyncPolicy::Never;
    config.head.max_bytes = 64 << 30;
    let engine = Engine::open(config).await.expect("open engine");
    let mut w = Workload::new(WorkloadConfig::default());
    let (mut loaded, mut pending) = (0u64, 0u64);
    while loaded < rows {
        let b = w.next_batch();
        let n = b.num_samples() as u64;
        engine.append(&b).await.expect("append");
        loaded += n;
        pending += n;
        if pending >= block_rows {
            engine.flush().await.expect("flush");
            pending = 0;
        }
    }
    if pending > 0 {
        engine.flush().await.expect("flush");
    }
    assert_eq!(engine.stats().head.samples, 0, "everything is in blocks");
    (engine, w, loaded)
}

/// `samples.parquet` of every committed block under `data_dir`.
fn sample_files(data_dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(data_dir.join("blocks"))
        .expect("blocks dir")
        .filter_map(|e| {
            let d = e.ok()?.path();
            (d.join("meta.json").exists() && d.join("samples.parquet").exists())
                .then(|| d.join("samples.parquet"))
        })
        .collect();
    out.sort();
    out
}

async fn scan_all(engine: &Engine, range: TimeRange) -> u64 {
    let out = engine.scan(merge_request(range)).await.expect("scan");
    out.batches
        .try_fold(0u64, |n, b| async move { Ok(n + b.num_rows() as u64) })
        .await
        .expect("scan stream")
}

fn merge_request(range: TimeRange) -> ScanRequest {
    ScanRequest {
        profile_type: cpu_profile_type(),
        matchers: Vec::new(),
        range,
    }
}

/// The engine's partial aggregate alone: every scan part summed per stack, in turn.
async fn stack_sums_only(engine: &Engine, range: TimeRange) -> u64 {
    let parts = engine
        .scan_parts(&merge_request(range), None)
        .await
        .expect("parts");
    let mut rows = 0;
    for p in parts.parts {
        rows += p.stack_sums().await.expect("stack sums").num_rows() as u64;
    }
    rows
}

/// `SUM(value), MAX(period) GROUP BY stack_id` in DataFusion over `table`.
async fn aggregate(table: Arc<dyn TableProvider>) -> Vec<RecordBatch> {
    SessionContext::new_with_config(SessionConfig::new().with_information_schema(true))
        .read_table(table)
        .expect("table")
        .aggregate(
            vec![col("stack_id")],
            vec![
                sum(col("value")).alias("value"),
                max(col("period")).alias("period"),
            ],
        )
        .expect("aggregate")
        .collect()
        .await
        .expect("aggregate runs")
}

/// What `QueryEngine::merge` plans, without the symbols: the engine's per-part stack sums,
/// combined by DataFusion's aggregate.
async fn aggregate_only(engine: &Engine, range: TimeRange) -> Vec<RecordBatch> {
    aggregate(Arc::new(StackSumsTable::new(
        engine.clone(),
        merge_request(range),
    )))
    .await
}

/// The same aggregate over the row-by-row `samples` table (every row through DataFusion).
async fn aggregate_rows(engine: &Engine, range: TimeRange) -> Vec<RecordBatch> {
    aggregate(Arc::new(SamplesTable::with_label_names(
        engine.clone(),
        Selection {
            profile_type: Some(cpu_profile_type()),
            matchers: Vec::new(),
            range,
        },
        Vec::new(),
    )))
    .await
}

/// Plain DataFusion over the Parquet files: `read_parquet` + the GROUP BY in SQL.
async fn datafusion_parquet(files: &[String], partitions: usize) -> Vec<RecordBatch> {
    let ctx =
        SessionContext::new_with_config(SessionConfig::new().with_target_partitions(partitions));
    let df = ctx
        .read_parquet(files.to_vec(), ParquetReadOptions::default())
        .await
        .expect("read_parquet");
    ctx.register_table("samples", df.into_view())
        .expect("register");
    ctx.sql("SELECT stack_id, sum(value) AS value FROM samples GROUP BY stack_id")
        .await
        .expect("sql")
        .collect()
        .await
        .expect("query runs")
}

/// DuckDB's result for one thread count.
struct DuckRun {
    threads: u32,
    version: String,
    runs: Runs,
    groups: u64,
    total: i128,
}

fn duckdb_available() -> bool {
    Command::new("python3")
        .args(["-c", "import duckdb"])
        .output()
        .is_ok_and(|o| o.status.success())
}

fn duckdb(glob: &str, iters: usize, threads: &[u32]) -> Vec<DuckRun> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/duckdb_groupby.py");
    let out = Command::new("python3")
        .arg(script)
        .arg(glob)
        .arg(iters.to_string())
        .args(threads.iter().map(u32::to_string))
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "duckdb_groupby.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|line| {
            let field = |k: &str| {
                line.split_whitespace()
                    .find_map(|kv| kv.strip_prefix(k)?.strip_prefix('='))
                    .unwrap_or_else(|| panic!("{k} in {line:?}"))
            };
            DuckRun {
                threads: field("threads").parse().unwrap(),
                version: field("version").to_owned(),
                runs: Runs {
                    walls: field("walls")
                        .split(',')
                        .map(|w| Duration::from_secs_f64(w.parse().unwrap()))
                        .collect(),
                    cpu: Duration::from_secs_f64(field("cpu").parse().unwrap()),
                },
                groups: field("groups").parse().unwrap(),
                total: field("total").parse().unwrap(),
            }
        })
        .collect()
}

/// Whether targets are judged: only in a real run (`cargo bench`), not in the smoke test.
static JUDGE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

fn met(ok: bool) -> &'static str {
    if !JUDGE.load(std::sync::atomic::Ordering::Relaxed) {
        "(smoke run: not judged)"
    } else if ok {
        "met"
    } else {
        "NOT met"
    }
}

fn merge_report(rt: &Runtime, rows: u64, block_rows: u64, iters: usize) {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "== merge: {rows} samples of the default workload, a block every {block_rows} samples, \
         {cores} cores, {iters} timed runs each =="
    );
    let dir = tempfile::Builder::new()
        .prefix("strata-bench-query-")
        .tempdir()
        .unwrap();
    let t = Instant::now();
    let (engine, w, loaded) = rt.block_on(load(dir.path(), rows, block_rows));
    let s = engine.stats();
    println!(
        "load: {loaded} samples, {} rounds of {} series, in {:.1} s; {} blocks, samples.parquet \
         {:.1} MB in total ({:.2} B/sample)",
        w.rounds(),
        w.config().series,
        t.elapsed().as_secs_f64(),
        engine.blocks().len(),
        s.block_sample_bytes as f64 / 1e6,
        s.block_sample_bytes as f64 / loaded as f64,
    );
    let range = w.rounds_range(0, w.rounds() + 1);
    let ours = merge_figures(rt, &engine, range, loaded, iters);

    println!("== the same GROUP BY over the blocks' samples.parquet files ==");
    let files: Vec<String> = sample_files(dir.path())
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    assert_eq!(files.len(), engine.blocks().len());
    let mut plain = Vec::new();
    for partitions in [cores, 1] {
        let (runs, batches) = measure(iters, || {
            rt.block_on(datafusion_parquet(&files, partitions))
        });
        assert_eq!(
            summarize(&batches, 1),
            (ours.groups, ours.total),
            "DataFusion agrees"
        );
        println!(
            "{}",
            runs.line(
                &format!("DataFusion read_parquet + SQL, {partitions} partition(s)"),
                Some(loaded)
            )
        );
        plain.push((partitions, runs));
    }
    if duckdb_available() {
        let glob = format!("{}/blocks/*/samples.parquet", dir.path().display());
        compare_with_duckdb(&glob, cores, iters, &ours, &plain);
    } else {
        println!(
            "  DuckDB comparison skipped: `python3 -c \"import duckdb\"` fails (pip install duckdb)"
        );
    }
    rt.block_on(engine.close()).expect("close");
    println!();
}

/// Strata's side of the merge report: the merge and its parts, timed and printed.
struct MergeFigures {
    /// Rows loaded.
    loaded: u64,
    /// Distinct stacks in the answer.
    groups: u64,
    /// Sum of the values.
    total: i128,
    /// The aggregate of the stack sums, without symbols.
    agg: Runs,
    /// `QueryEngine::merge`.
    merge: Runs,
}

/// Times the engine's scan and stack sums, the aggregates with and without them, symbol
/// resolution and `QueryEngine::merge` over `range`, checks they agree and prints them and
/// the merge's target.
fn merge_figures(
    rt: &Runtime,
    engine: &Engine,
    range: TimeRange,
    loaded: u64,
    iters: usize,
) -> MergeFigures {
    let qe = QueryEngine::new(engine.clone());
    let selector = parse_selector(CPU_PROFILE_TYPE).expect("selector");
    let query = ProfileQuery::new(selector, range);

    let (scan, scanned) = measure(iters, || rt.block_on(scan_all(engine, range)));
    assert_eq!(scanned, loaded, "the scan returns every sample");
    let (sums, _) = measure(iters, || rt.block_on(stack_sums_only(engine, range)));
    let (agg, batches) = measure(iters, || rt.block_on(aggregate_only(engine, range)));
    let (groups, total) = summarize(&batches, 1);
    let (agg_rows, row_batches) = measure(iters, || rt.block_on(aggregate_rows(engine, range)));
    assert_eq!(
        summarize(&row_batches, 1),
        (groups, total),
        "both plans agree"
    );
    let mut ids: Vec<StackId> = batches
        .iter()
        .flat_map(|b| b.column(0).as_primitive::<UInt64Type>().values().to_vec())
        .map(StackId)
        .collect();
    ids.sort_unstable();
    let (resolve, symbols) = measure(iters, || {
        rt.block_on(engine.resolve_stacks(&ids)).expect("resolve")
    });
    assert_eq!(symbols.stacks.len(), ids.len(), "every stack resolves");
    let (merge, merged) = measure(iters, || rt.block_on(qe.merge(&query)).expect("merge"));
    assert_eq!(merged.stacks.len() as u64, groups);
    assert_eq!(i128::from(merged.total()), total);
    println!(
        "result: {groups} stacks, total {total}; symbols: {} locations, {} functions, {} mappings",
        symbols.locations.len(),
        symbols.functions.len(),
        symbols.mappings.len()
    );
    for (runs, name, rows) in [
        (
            &scan,
            "engine.scan (all rows, counted)".to_owned(),
            Some(loaded),
        ),
        (
            &sums,
            "engine stack sums, parts in turn (no DataFusion)".to_owned(),
            Some(loaded),
        ),
        (
            &agg,
            "aggregate of the stack sums (no symbols)".to_owned(),
            Some(loaded),
        ),
        (
            &agg_rows,
            "aggregate over the samples table, row by row".to_owned(),
            Some(loaded),
        ),
        (
            &resolve,
            format!("engine.resolve_stacks ({groups} stacks)"),
            None,
        ),
        (
            &merge,
            "QueryEngine::merge (aggregate + symbols)".to_owned(),
            Some(loaded),
        ),
    ] {
        println!("{}", runs.line(&name, rows));
    }
    let per_cpu = loaded as f64 / merge.cpu.as_secs_f64();
    println!(
        "  merge target >= {:.0} M rows/s/core: {:.2} M rows per CPU-second: {}",
        MERGE_TARGET / 1e6,
        per_cpu / 1e6,
        met(per_cpu >= MERGE_TARGET)
    );
    MergeFigures {
        loaded,
        groups,
        total,
        agg,
        merge,
    }
}

/// DuckDB's GROUP BY over the `glob` files with `cores` threads and 1, checked against and
/// compared with ours and plain DataFusion's (`plain`: with `cores` partitions, then 1).
fn compare_with_duckdb(
    glob: &str,
    cores: usize,
    iters: usize,
    ours: &MergeFigures,
    plain: &[(usize, Runs)],
) {
    let (merge, agg) = (&ours.merge, &ours.agg);
    let threads = [cores as u32, 1];
    let duck = duckdb(glob, iters, &threads);
    for d in &duck {
        assert_eq!(
            (d.groups, d.total),
            (ours.groups, ours.total),
            "DuckDB agrees"
        );
        println!(
            "{}",
            d.runs.line(
                &format!("DuckDB {} read_parquet, {} thread(s)", d.version, d.threads),
                Some(ours.loaded)
            )
        );
    }
    let duck_wall = duck[0].runs.median().as_secs_f64();
    let ratio = |d: Duration| duck_wall / d.as_secs_f64();
    println!(
        "  speed relative to DuckDB ({} threads, wall; > 1 = faster): merge {:.2}x, \
         aggregate without symbols {:.2}x, plain DataFusion ({} partitions) {:.2}x; \
         target >= 1 (merge): {}",
        duck[0].threads,
        ratio(merge.median()),
        ratio(agg.median()),
        plain[0].0,
        ratio(plain[0].1.median()),
        met(ratio(merge.median()) >= 1.0),
    );
    let duck_cpu = duck[0].runs.cpu.as_secs_f64();
    let cpu_ratio = |d: Duration| duck_cpu / d.as_secs_f64();
    println!(
        "  CPU per query relative to DuckDB ({} threads; > 1 = cheaper): merge {:.2}x, \
         aggregate without symbols {:.2}x, plain DataFusion {:.2}x",
        duck[0].threads,
        cpu_ratio(merge.cpu),
        cpu_ratio(agg.cpu),
        cpu_ratio(plain[0].1.cpu),
    );
    let duck1 = duck[1].runs.median().as_secs_f64();
    println!(
        "  1 thread / 1 partition: plain DataFusion {:.2}x DuckDB",
        duck1 / plain[1].1.median().as_secs_f64()
    );
}

/// A merged profile of every stack of `program`, with heavy-tailed values.
fn merged_profile(program: &Program) -> MergedProfile {
    let mut symbols = SymbolTables::default();
    for m in &program.mappings {
        symbols.mappings.insert(m.id(), m.clone());
    }
    for f in &program.functions {
        symbols.functions.insert(f.id(), f.clone());
    }
    for l in &program.locations {
        symbols.locations.insert(l.id(), l.clone());
    }
    let n = program.stack_location_ids.len() as u64;
    let mut rng = XorShift::new(42);
    let mut stacks: Vec<StackValue> = program
        .stack_location_ids
        .iter()
        .map(|locs| {
            let id = stack_id(locs);
            symbols.stacks.insert(id, locs.clone());
            StackValue {
                stack_id: id,
                group: 0,
                // A random Zipf-like rank: a few heavy stacks, most worth 1-2 ticks.
                value: CPU_PERIOD_NS * (1 + 100_000 / (1 + rng.below(n))) as i64,
                base: 0,
            }
        })
        .collect();
    stacks.sort_by_key(|s| s.stack_id);
    let mut p = MergedProfile::empty(cpu_profile_type(), TimeRange::ALL);
    p.stacks = stacks;
    p.symbols = symbols;
    p.period = CPU_PERIOD_NS;
    p
}

fn flame_report(n_stacks: usize, iters: usize) {
    println!("== flame graph: {n_stacks} distinct stacks, {iters} timed runs each ==");
    let t = Instant::now();
    let cfg = WorkloadConfig {
        stacks: n_stacks,
        ..WorkloadConfig::default()
    };
    let program = Program::generate(&cfg);
    let merged = merged_profile(&program);
    let frames_total: usize = program.stacks.iter().map(Vec::len).sum();
    println!(
        "profile: {} stacks (mean depth {:.1} locations), {} locations, {} functions, {} \
         mappings; generated in {:.1} s",
        merged.stacks.len(),
        frames_total as f64 / merged.stacks.len() as f64,
        program.locations.len(),
        program.functions.len(),
        program.mappings.len(),
        t.elapsed().as_secs_f64()
    );
    drop(program);
    let (resolve, fp) = measure(iters, || FrameProfile::resolve(&merged));
    let depth: usize = fp.stacks.iter().map(|s| s.frames.len()).sum();
    println!(
        "{}  ({} frames, mean depth {:.1} frames)",
        resolve.line("FrameProfile::resolve", None),
        fp.frames.len(),
        depth as f64 / fp.stacks.len() as f64
    );
    let (full, g) = measure(iters, || {
        FlameGraph::build(&fp, &FlameGraphOptions::default())
    });
    println!(
        "{}  ({} nodes, height {})",
        full.line("FlameGraph::build, no pruning", None),
        g.nodes.len(),
        g.height
    );
    drop(g);
    let opts = FlameGraphOptions {
        min_fraction: 0.0001,
        max_nodes: 100_000,
    };
    let (pruned, g) = measure(iters, || FlameGraph::build(&fp, &opts));
    println!(
        "{}  ({} nodes kept, {} pruned)",
        pruned.line("FlameGraph::build, min 0.0001, max 100,000 nodes", None),
        g.nodes.len(),
        g.pruned_nodes
    );
    drop(g);
    let (top_runs, rows) = measure(iters, || top(&fp));
    println!(
        "{}  ({} rows)",
        top_runs.line("report::top", None),
        rows.len()
    );
    let scale = 1_000_000.0 / n_stacks as f64;
    for (what, r) in [("no pruning", &full), ("pruned", &pruned)] {
        let d = r.median();
        println!(
            "  flame graph target < {} ms for 1 M stacks, {what}: {:.1} ms{}: {}",
            FLAME_TARGET.as_millis(),
            d.as_secs_f64() * 1e3,
            if n_stacks == 1_000_000 {
                String::new()
            } else {
                format!(
                    " at {n_stacks} stacks (x{scale:.1} = {:.0} ms)",
                    d.as_secs_f64() * 1e3 * scale
                )
            },
            met(d.as_secs_f64() * scale <= FLAME_TARGET.as_secs_f64())
        );
    }
    println!();
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` does not: then a quick smoke run.
    let bench = std::env::args().any(|a| a == "--bench");
    JUDGE.store(bench, std::sync::atomic::Ordering::Relaxed);
    let rows = env_or(
        "STRATA_BENCH_QUERY_ROWS",
        if bench { 10_000_000 } else { 200_000 },
    );
    let block_rows = env_or("STRATA_BENCH_QUERY_BLOCK_ROWS", rows.div_ceil(4));
    let stacks = env_or(
        "STRATA_BENCH_QUERY_STACKS",
        if bench { 1_000_000 } else { 20_000 },
    );
    let iters = env_or("STRATA_BENCH_QUERY_ITERS", if bench { 5 } else { 1 }).max(1) as usize;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    if rows > 0 {
        merge_report(&rt, rows, block_rows, iters);
    }
    if stacks > 0 {
        flame_report(stacks as usize, iters);
    }
}
