//! Criterion benchmarks of `strata-engine` on realistic CPU profiles (see `strata_benches`).
//!
//! - `append`: `Engine::append` throughput in samples/s, WAL fsync `never` and `always`, one
//!   appender and 8 concurrent appenders, no background maintenance, a head that never flushes.
//! - `flush`: flushing a head of ~1M samples to a block.
//! - `scan`: one series' samples over a time range, from the head and from flushed blocks.
//!
//! Before the groups, `report` ingests a few million samples and prints the head's memory per
//! sample, the block's disk bytes per sample, the symbols' share of the block, and append
//! throughput per CPU-second. `STRATA_BENCH_REPORT_SAMPLES=0` skips it; any other number sets
//! its size. Run with `cargo bench -p strata-benches` (see `benches/README.md`).

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, SamplingMode, Throughput};
use futures::StreamExt;
use strata_benches::{
    Workload, WorkloadConfig, cpu_profile_type, realistic_batches, series_matchers, total_samples,
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
    let set = realistic_batches(&WorkloadConfig::default(), scaled(60_000));
    let set = &set;
    let mut g = c.benchmark_group("append");
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    // One iteration appends the whole set (~48 profiles of 500-2000 samples each, cycling
    // through the 100 series), so the samples per iteration are fixed.
    g.throughput(Throughput::Elements(total_samples(set)));
    for (name, fsync) in [
        ("never", FsyncPolicy::Never),
        ("always", FsyncPolicy::Always),
    ] {
        for concurrency in [1, CONCURRENCY] {
            // One engine per benchmark; its head grows across iterations (it never flushes).
            let fixture = rt.block_on(Fixture::open(fsync));
            let fx = &fixture;
            let id = format!("fsync_{name}/{concurrency}_in_flight");
            g.bench_function(id, |b| {
                b.to_async(rt).iter_custom(move |iters| async move {
                    let start = Instant::now();
                    for _ in 0..iters {
                        if concurrency == 1 {
                            fx.append_all(set).await;
                        } else {
                            futures::stream::iter(set)
                                .for_each_concurrent(concurrency, |batch| async move {
                                    fx.engine.append(batch).await.expect("append");
                                })
                                .await;
                        }
                    }
                    start.elapsed()
                })
            });
            rt.block_on(fixture.close());
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
        if blocks && w.rounds() != before && w.rounds() % ROUNDS_PER_BLOCK.min(rounds) == 0 {
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

/// User plus system CPU time of the whole process (every thread) so far, from
/// `/proc/self/stat` (clock ticks of 1/100 s, Linux's `USER_HZ`).
fn process_cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let after_name = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // Fields 14 and 15 of proc(5) (utime, stime); `fields[0]` is field 3.
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 10))
}

/// Resident set size of the process, from `/proc/self/status`.
fn rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Ingests `samples` samples of the default workload (100 series, 10 jobs, 4,000 stacks),
/// then flushes them into one block, printing sizes and rates.
fn report(rt: &Runtime, samples: u64) {
    let cfg = WorkloadConfig::default();
    println!(
        "== size report: {samples} samples, {} series, {} distinct stacks ==",
        cfg.series, cfg.stacks
    );
    rt.block_on(async {
        let fx = Fixture::open(FsyncPolicy::Never).await;
        let mut w = Workload::new(cfg.clone());
        let (mut appended, mut batches) = (0u64, 0u64);
        let (mut wall, mut cpu) = (Duration::ZERO, Duration::ZERO);
        let rss_before = rss_bytes();
        // Generate a chunk, then append it, so only the appends are timed.
        while appended < samples {
            let chunk: Vec<SampleBatch> = (0..64).map(|_| w.next_batch()).collect();
            let (cpu0, t0) = (process_cpu_time(), Instant::now());
            fx.append_all(&chunk).await;
            wall += t0.elapsed();
            if let (Some(a), Some(b)) = (cpu0, process_cpu_time()) {
                cpu += b - a;
            }
            appended += total_samples(&chunk);
            batches += chunk.len() as u64;
        }
        let rss_after = rss_bytes();
        let s = fx.engine.stats();
        let h = s.head;
        let per = |bytes: u64, n: u64| bytes as f64 / n as f64;
        println!(
            "ingest: {appended} samples in {batches} batches ({:.0} samples/batch), {} rounds",
            per(appended, batches),
            w.rounds()
        );
        println!(
            "append (fsync never, 1 appender): {:.2} M samples/s wall, {:.2} M samples per CPU-second \
             ({:.2} s wall, {:.2} s CPU incl. the WAL thread)",
            appended as f64 / wall.as_secs_f64() / 1e6,
            appended as f64 / cpu.as_secs_f64() / 1e6,
            wall.as_secs_f64(),
            cpu.as_secs_f64(),
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
        if let (Some(a), Some(b)) = (rss_before, rss_after) {
            println!(
                "process RSS grew {:.1} MiB during ingest ({:.2} B/sample; allocator slack and \
                 freed batches included, indicative only)",
                b.saturating_sub(a) as f64 / (1 << 20) as f64,
                per(b.saturating_sub(a), h.samples),
            );
        }
        println!("wal: {} bytes ({:.1} B/sample)", s.wal_bytes, per(s.wal_bytes, h.samples));

        let t0 = Instant::now();
        let meta = fx.engine.flush().await.expect("flush").expect("a block");
        let flush_time = t0.elapsed();
        let s = fx.engine.stats();
        println!(
            "flush: {:.2} s ({:.2} M samples/s)",
            flush_time.as_secs_f64(),
            s.block_samples as f64 / flush_time.as_secs_f64() / 1e6
        );
        println!(
            "block: {} samples, {} bytes total ({:.2} B/sample); samples.parquet {} bytes \
             ({:.3} B/sample); symbols+index {:.1} % of the block",
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
        // A block's time span contains every sample, and a full-range scan returns them all.
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

fn main() {
    let rt = runtime();
    let report_samples = match std::env::var("STRATA_BENCH_REPORT_SAMPLES") {
        Ok(v) => v.parse().expect("STRATA_BENCH_REPORT_SAMPLES is a number"),
        Err(_) => scaled(3_000_000) as u64,
    };
    if report_samples > 0 {
        report(&rt, report_samples);
    }
    let mut c = Criterion::default().configure_from_args();
    append(&mut c, &rt);
    flush(&mut c, &rt);
    scan(&mut c, &rt);
    c.final_summary();
}
