//! Criterion benchmarks of `strata-engine` on realistic CPU profiles (see `strata_benches`).
//!
//! - `append`: `Engine::append` throughput in samples/s, WAL fsync `never` and `always`; one
//!   appender on a current-thread runtime, and 8 appends in flight as tasks on a multi-thread
//!   runtime with a worker per core. No background maintenance; the head never flushes.
//! - `flush`: flushing a head of ~1M samples to a block.
//! - `scan`: one series' samples over a time range, from the head and from flushed blocks.
//!
//! Before the groups, `report` ingests 3M samples and prints the head's memory per sample, the
//! block's disk bytes per sample, the symbols' share of the block, and append throughput per
//! CPU-second; then again (1/6 the size) with values above 2^31 ns. `STRATA_BENCH_REPORT_SAMPLES=0` skips it; any other number sets
//! its size. Run with `cargo bench -p strata-benches` (see `benches/README.md`).

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, SamplingMode, Throughput};
use futures::StreamExt;
use strata_benches::{
    Workload, WorkloadConfig, cpu_profile_type, process_cpu_time, realistic_batches,
    series_matchers, total_samples,
};
use strata_engine::{Engine, EngineConfig, FsyncPolicy, SampleBatch, ScanRequest, TimeRange};
use tempfile::TempDir;
use tokio::runtime::Runtime;

/// Appends in flight in the concurrent append benchmarks.
const CONCURRENCY: usize = 8;

/// A current-thread runtime: the benchmarked work runs on this thread, plus the engine's own
/// WAL writer thread and (for flush) the blocking pool.
fn runtime() -> Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// An engine in a fresh temporary directory.
struct Fixture {
    engine: Engine,
    dir: TempDir,
}

impl Fixture {
    async fn open(fsync: FsyncPolicy) -> Fixture {
        let dir = tempfile::Builder::new()
            .prefix("strata-bench-")
            .tempdir()
            .expect("tempdir");
        let mut config = EngineConfig::new(dir.path());
        config.background = false;
        config.wal.fsync = fsync;
        config.head.max_bytes = 64 << 30; // the head never flushes on its own
        let engine = Engine::open(config).await.expect("open engine");
        Fixture { engine, dir }
    }

    async fn append_all(&self, batches: &[SampleBatch]) {
        for b in batches {
            self.engine.append(b).await.expect("append");
        }
    }

    async fn close(self) {
        self.engine.close().await.expect("close engine");
        drop(self.dir);
    }
}

/// Whether the binary runs as a benchmark (`cargo bench`) rather than as a smoke test
/// (`cargo test --benches`), in which case every data set is scaled down.
fn bench_mode() -> bool {
    std::env::args().any(|a| a == "--bench")
}

fn scaled(n: usize) -> usize {
    if bench_mode() { n } else { (n / 50).max(5_000) }
}

fn append(c: &mut Criterion, rt: &Runtime) {
    // Batches of 1,000-2,000 samples (one profile each), cycling through the 100 series.
    let cfg = WorkloadConfig {
        min_samples: 1_000,
        ..WorkloadConfig::default()
    };
    let set = Arc::new(realistic_batches(&cfg, scaled(60_000)));
    println!(
        "append: {} batches, {} samples per iteration",
        set.len(),
        total_samples(&set)
    );
    // Concurrent appends run as tasks on a runtime with one worker per core, so encoding can
    // proceed on both cores while the WAL thread writes.
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    let mt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let mut g = c.benchmark_group("append");
    g.sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    // One iteration appends the whole set, so the samples per iteration are fixed.
    g.throughput(Throughput::Elements(total_samples(&set)));
    for (name, fsync) in [
        ("never", FsyncPolicy::Never),
        ("always", FsyncPolicy::Always),
    ] {
        for concurrency in [1, CONCURRENCY] {
            let runtime = if concurrency == 1 { rt } else { &mt };
            // One engine per benchmark; its head grows across iterations (it never flushes).
            let fixture = runtime.block_on(Fixture::open(fsync));
            let engine = &fixture.engine;
            let set = &set;
            let id = format!("fsync_{name}/{concurrency}_in_flight");
            g.bench_function(id, |b| {
                b.to_async(runtime).iter_custom(move |iters| async move {
                    let start = Instant::now();
                    for _ in 0..iters {
                        if concurrency == 1 {
                            for batch in set.iter() {
                                engine.append(batch).await.expect("append");
                            }
                        } else {
                            futures::stream::iter(0..set.len())
                                .map(|i| {
                                    let (engine, set) = (engine.clone(), set.clone());
                                    tokio::spawn(async move { engine.append(&set[i]).await })
                                })
                                .buffer_unordered(concurrency)
                                .for_each(|r| async move { r.expect("task").expect("append") })
                                .await;
                        }
                    }
                    start.elapsed()
                })
            });
            runtime.block_on(fixture.close());
        }
    }
    g.finish();
}

fn flush(c: &mut Criterion, rt: &Runtime) {
    let set = realistic_batches(&WorkloadConfig::default(), scaled(1_000_000));
    let set = &set;
    let mut g = c.benchmark_group("flush");
    // Every iteration fills a fresh head first (untimed), so keep the count at the minimum.
    g.sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_millis(1))
        .measurement_time(Duration::from_secs(10));
    g.throughput(Throughput::Elements(total_samples(set)));
    g.bench_function("head_1M_samples", |b| {
        b.to_async(rt).iter_custom(move |iters| async move {
            let mut timed = Duration::ZERO;
            for _ in 0..iters {
                let fx = Fixture::open(FsyncPolicy::Never).await;
                fx.append_all(set).await;
                let start = Instant::now();
                let meta = fx.engine.flush().await.expect("flush").expect("a block");
                timed += start.elapsed();
                assert_eq!(meta.num_samples, total_samples(set));
                fx.close().await;
            }
            timed
        })
    });
    g.finish();
}

/// Rounds of profiles in the scan data set, and how many go into each flushed block.
const SCAN_ROUNDS: u64 = 40;
const ROUNDS_PER_BLOCK: u64 = 10;

/// Fills an engine with `SCAN_ROUNDS` rounds of 20 series (~1M samples; ~50K per series),
/// flushing every `ROUNDS_PER_BLOCK` rounds if `blocks`.
async fn scan_fixture(cfg: &WorkloadConfig, blocks: bool) -> (Fixture, Workload) {
    let fx = Fixture::open(FsyncPolicy::Never).await;
    let mut w = Workload::new(cfg.clone());
    let rounds = if bench_mode() { SCAN_ROUNDS } else { 4 };
    while w.rounds() < rounds {
        let before = w.rounds();
        fx.engine.append(&w.next_batch()).await.expect("append");
        if blocks && w.rounds() != before && w.rounds().is_multiple_of(ROUNDS_PER_BLOCK.min(rounds))
        {
            fx.engine.flush().await.expect("flush");
        }
    }
    (fx, w)
}

async fn scan_rows(engine: &Engine, req: &ScanRequest) -> u64 {
    let out = engine.scan(req.clone()).await.expect("scan");
    let batches = out.collect().await.expect("scan stream");
    batches.iter().map(|b| b.num_rows() as u64).sum()
}

fn scan(c: &mut Criterion, rt: &Runtime) {
    let cfg = WorkloadConfig {
        series: 20,
        jobs: 5,
        seed: 7,
        ..WorkloadConfig::default()
    };
    let rounds = if bench_mode() { SCAN_ROUNDS } else { 4 };
    let (head, w) = rt.block_on(scan_fixture(&cfg, false));
    let (blocks, _) = rt.block_on(scan_fixture(&cfg, true));
    let head_stats = head.engine.stats();
    let block_stats = blocks.engine.stats();
    assert_eq!(block_stats.head.samples, 0, "everything flushed");
    assert_eq!(
        head_stats.head.samples, block_stats.block_samples,
        "same data in both"
    );
    // Series 3, rounds 10..30 of 40 (the middle half): two of the four blocks.
    let req = ScanRequest {
        profile_type: cpu_profile_type(),
        matchers: series_matchers(3, cfg.jobs),
        range: w.rounds_range(rounds / 4, rounds * 3 / 4),
    };
    let rows = rt.block_on(scan_rows(&head.engine, &req));
    let rows_blocks = rt.block_on(scan_rows(&blocks.engine, &req));
    assert_eq!(
        rows, rows_blocks,
        "head and blocks must return the same samples"
    );
    assert!(rows > 0);
    println!(
        "scan: {} samples in {} series; one series over {} of {} rounds = {rows} samples \
         ({} blocks)",
        head_stats.head.samples,
        cfg.series,
        rounds / 2,
        rounds,
        block_stats.blocks,
    );

    let mut g = c.benchmark_group("scan");
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    g.throughput(Throughput::Elements(rows));
    for (id, fx) in [("one_series/head", &head), ("one_series/blocks", &blocks)] {
        let req = &req;
        g.bench_function(id, |b| {
            b.to_async(rt).iter_custom(|iters| async move {
                let start = Instant::now();
                for _ in 0..iters {
                    black_box(scan_rows(&fx.engine, req).await);
                }
                start.elapsed()
            })
        });
    }
    g.finish();
    rt.block_on(head.close());
    rt.block_on(blocks.close());
}

/// Ingests `samples` samples of the workload `cfg` describes (fsync `never`, one appender),
/// then flushes them into one block, printing rates and sizes.
fn report(rt: &Runtime, title: &str, cfg: &WorkloadConfig, samples: u64) {
    println!(
        "== report: {title}: {samples} samples, {} series, {} distinct stacks, values up to {} ticks ==",
        cfg.series, cfg.stacks, cfg.max_ticks
    );
    rt.block_on(async {
        let fx = Fixture::open(FsyncPolicy::Never).await;
        let mut w = Workload::new(cfg.clone());
        let p = w.program();
        println!(
            "program: {} mappings, {} functions, {} locations, {} stacks (mean depth {:.1})",
            p.mappings.len(),
            p.functions.len(),
            p.locations.len(),
            p.stacks.len(),
            p.stacks.iter().map(Vec::len).sum::<usize>() as f64 / p.stacks.len() as f64,
        );
        let ingested = ingest_timed(&fx, &mut w, samples).await;
        print_ingest(&fx, &w, &ingested);
        flush_and_print(&fx).await;
        // A full-range scan of one series finds its samples in the block.
        let all = ScanRequest {
            profile_type: cpu_profile_type(),
            matchers: series_matchers(0, cfg.jobs),
            range: TimeRange::ALL,
        };
        assert!(scan_rows(&fx.engine, &all).await > 0);
        fx.close().await;
    });
    println!();
}

/// What [`ingest_timed`] appended and how long the appends took.
struct Ingested {
    appended: u64,
    batches: u64,
    /// Symbols carried by the batches: mappings, functions, locations, stacks.
    symbols: [u64; 4],
    wall: Duration,
    /// Process CPU time (all threads) during the appends.
    cpu: Duration,
}

/// Appends at least `samples` samples of `w` (at least one chunk) to `fx`, timing only the
/// appends: a chunk of 64 batches is generated, then appended.
async fn ingest_timed(fx: &Fixture, w: &mut Workload, samples: u64) -> Ingested {
    let mut out = Ingested {
        appended: 0,
        batches: 0,
        symbols: [0; 4],
        wall: Duration::ZERO,
        cpu: Duration::ZERO,
    };
    while out.batches == 0 || out.appended < samples {
        let chunk: Vec<SampleBatch> = (0..64).map(|_| w.next_batch()).collect();
        let (cpu0, t0) = (process_cpu_time(), Instant::now());
        fx.append_all(&chunk).await;
        out.wall += t0.elapsed();
        if let (Some(a), Some(b)) = (cpu0, process_cpu_time()) {
            out.cpu += b - a;
        }
        for b in &chunk {
            let sym = b.symbols();
            for (acc, n) in out.symbols.iter_mut().zip([
                sym.mappings.len(),
                sym.functions.len(),
                sym.locations.len(),
                sym.stacks.len(),
            ]) {
                *acc += n as u64;
            }
        }
        out.appended += total_samples(&chunk);
        out.batches += chunk.len() as u64;
    }
    out
}

/// Prints the ingest rates and the head's and the WAL's sizes.
fn print_ingest(fx: &Fixture, w: &Workload, i: &Ingested) {
    let (appended, batches, symbols) = (i.appended, i.batches, &i.symbols);
    let s = fx.engine.stats();
    let h = s.head;
    let per = |bytes: u64, n: u64| bytes as f64 / n as f64;
    println!(
        "ingest: {appended} samples in {batches} batches ({:.0} samples/batch), {} rounds; \
         per batch {:.0} mappings, {:.0} functions, {:.0} locations, {:.0} stacks",
        per(appended, batches),
        w.rounds(),
        per(symbols[0], batches),
        per(symbols[1], batches),
        per(symbols[2], batches),
        per(symbols[3], batches),
    );
    println!(
        "append (fsync never, 1 appender): {:.3} M samples/s wall, {:.3} M samples per \
         CPU-second ({:.2} s wall, {:.2} s CPU incl. the WAL thread)",
        appended as f64 / i.wall.as_secs_f64() / 1e6,
        appended as f64 / i.cpu.as_secs_f64() / 1e6,
        i.wall.as_secs_f64(),
        i.cpu.as_secs_f64(),
    );
    println!(
        "head: {} samples, {} series, {} stacks; sample_bytes {} ({:.2} B/sample), \
         other_bytes {} ({:.2} B/sample), total {:.2} B/sample",
        h.samples,
        h.series,
        h.stacks,
        h.sample_bytes,
        per(h.sample_bytes, h.samples),
        h.other_bytes,
        per(h.other_bytes, h.samples),
        per(h.sample_bytes + h.other_bytes, h.samples),
    );
    println!(
        "wal: {} bytes ({:.1} B/sample)",
        s.wal_bytes,
        per(s.wal_bytes, h.samples)
    );
}

/// Flushes the head into one block and prints the flush rate and the block's sizes, file by
/// file.
async fn flush_and_print(fx: &Fixture) {
    let per = |bytes: u64, n: u64| bytes as f64 / n as f64;
    let t0 = Instant::now();
    let meta = fx.engine.flush().await.expect("flush").expect("a block");
    let flush_time = t0.elapsed();
    let s = fx.engine.stats();
    println!(
        "flush: {:.3} s ({:.2} M samples/s)",
        flush_time.as_secs_f64(),
        s.block_samples as f64 / flush_time.as_secs_f64() / 1e6
    );
    println!(
        "block: {} samples, {} bytes total ({:.2} B/sample); samples.parquet {} bytes \
         ({:.3} B/sample); everything else {:.1} % of the block",
        s.block_samples,
        s.block_bytes,
        per(s.block_bytes, s.block_samples),
        s.block_sample_bytes,
        per(s.block_sample_bytes, s.block_samples),
        100.0 * (s.block_bytes - s.block_sample_bytes) as f64 / s.block_bytes as f64,
    );
    for (file, bytes) in &meta.files {
        println!(
            "  {file:<18} {bytes:>12} bytes  {:>5.1} %  {:.3} B/sample",
            100.0 * *bytes as f64 / s.block_bytes as f64,
            per(*bytes, s.block_samples)
        );
    }
}

fn main() {
    let rt = runtime();
    let report_samples = match std::env::var("STRATA_BENCH_REPORT_SAMPLES") {
        Ok(v) => v.parse().expect("STRATA_BENCH_REPORT_SAMPLES is a number"),
        Err(_) => scaled(3_000_000) as u64,
    };
    if report_samples > 0 {
        let cfg = WorkloadConfig::default();
        report(&rt, "default workload", &cfg, report_samples);
        // Hot stacks worth more than 2^31 ns (2.1 s of CPU in one 10 s profile) in every
        // series: the head keeps such a series' values as i64.
        let hot = WorkloadConfig {
            max_ticks: 1_000,
            ..cfg
        };
        report(&rt, "large values", &hot, report_samples / 6);
    }
    let mut c = Criterion::default().configure_from_args();
    append(&mut c, &rt);
    flush(&mut c, &rt);
    scan(&mut c, &rt);
    c.final_summary();
}
