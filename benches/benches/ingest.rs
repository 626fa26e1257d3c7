//! End-to-end ingest of real Go profiles — decode (gunzip + protobuf) → normalize (with
//! server-side deltas) → WAL → head — against `go tool pprof -proto` parsing and merging the
//! same files, timed side by side in one run.
//!
//! The profiles come from `benches/goprof` (a Go program with thousands of distinct stacks),
//! built and run once with the system's `go` into Cargo's target tmp dir. Both sides get the
//! same number of copies of each file; rates are pprof samples (sample records) per
//! CPU-second of every thread of the process (ours: the appending thread and the WAL thread;
//! Go's: its GC and runtime threads too), which is what "per core" means here.
//!
//! `STRATA_BENCH_INGEST_SAMPLES` (default 2,000,000) sets how many samples each side ingests
//! per file kind.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use strata_benches::process_cpu_time;
use strata_engine::{Engine, EngineConfig, SampleBatchBuilder};
use strata_ingest::{
    DecodeLimits, DeltaTracker, ProfileSource, decode_pprof, normalize_with_deltas,
};

/// The Go generator's profiles, made once into Cargo's target tmp dir.
fn go_profiles() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("goprof");
    strata_benches::goprof::profiles(&dir, 10).expect("Go profiles")
}

struct Measured {
    samples: u64,
    wall: Duration,
    cpu: Duration,
}

impl Measured {
    fn per_cpu_second(&self) -> f64 {
        self.samples as f64 / self.cpu.as_secs_f64()
    }
}

/// Ours: `copies` pushes of `bytes`, one at a time, as the server stores a push (default
/// engine config: WAL fsync `always`), spread over 20 series, 10 s apart.
fn strata_ingest(bytes: &[u8], name: &str, copies: usize) -> (Measured, u64) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::Builder::new()
        .prefix("strata-bench-ingest-")
        .tempdir()
        .unwrap();
    rt.block_on(async {
        let mut config = EngineConfig::new(dir.path());
        config.background = false;
        config.head.max_bytes = 64 << 30;
        let engine = Engine::open(config).await.unwrap();
        let limits = DecodeLimits::default();
        let mut deltas = DeltaTracker::new(100_000);
        let (mut samples, mut rows) = (0u64, 0u64);
        // Wall time per phase: decode, normalize (+ build), append.
        let mut phases = [Duration::ZERO; 3];
        let (cpu0, t0) = (process_cpu_time().unwrap(), Instant::now());
        for i in 0..copies {
            let t = Instant::now();
            let mut profile = decode_pprof(bytes, &limits).unwrap();
            phases[0] += t.elapsed();
            let t = Instant::now();
            profile.time_nanos += (i / 20) as i64 * 10_000_000_000;
            let source = ProfileSource {
                name: name.to_owned(),
                labels: vec![
                    ("job".to_owned(), "bench".to_owned()),
                    ("instance".to_owned(), format!("host-{}", i % 20)),
                ],
                delta: None,
                default_time_ns: 0,
            };
            let mut b = SampleBatchBuilder::new();
            normalize_with_deltas(&profile, &source, &mut deltas, &mut b).unwrap();
            let batch = b.build().unwrap();
            phases[1] += t.elapsed();
            samples += profile.sample.len() as u64;
            rows += batch.num_samples() as u64;
            let t = Instant::now();
            engine.append(&batch).await.unwrap();
            phases[2] += t.elapsed();
        }
        let m = Measured {
            samples,
            wall: t0.elapsed(),
            cpu: process_cpu_time().unwrap() - cpu0,
        };
        engine.close().await.unwrap();
        let total: f64 = phases.iter().map(Duration::as_secs_f64).sum();
        println!(
            "  strata wall by phase: decode {:.0} %, normalize + build {:.0} %, append (WAL + head) {:.0} %",
            100.0 * phases[0].as_secs_f64() / total,
            100.0 * phases[1].as_secs_f64() / total,
            100.0 * phases[2].as_secs_f64() / total,
        );
        (m, rows)
    })
}

/// Go's: `go tool pprof -proto` of `copies` copies of `file`, merged into one profile written
/// to /dev/null.
fn go_merge(file: &Path, copies: usize, samples_per_copy: u64) -> Measured {
    let files = vec![file.to_owned(); copies];
    let m = strata_benches::goprof::merge(&files).expect("go tool pprof");
    Measured {
        samples: samples_per_copy * copies as u64,
        wall: m.wall,
        cpu: m.cpu,
    }
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` does not: then a quick smoke run.
    let bench = std::env::args().any(|a| a == "--bench");
    let target: u64 = match std::env::var("STRATA_BENCH_INGEST_SAMPLES") {
        Ok(v) => v.parse().expect("STRATA_BENCH_INGEST_SAMPLES is a number"),
        Err(_) if bench => 2_000_000,
        Err(_) => 20_000,
    };
    let dir = go_profiles();
    println!("== ingest: real Go profiles from benches/goprof, {target} samples per kind ==");
    for (kind, name) in [("cpu", "process_cpu"), ("heap", "memory")] {
        let file = dir.join(format!("{kind}.pb.gz"));
        let bytes = std::fs::read(&file).unwrap();
        let profile = decode_pprof(&bytes, &DecodeLimits::default()).unwrap();
        {
            let n = 20;
            let t = Instant::now();
            for _ in 0..n {
                std::hint::black_box(
                    strata_ingest::decompress(&bytes, &DecodeLimits::default()).unwrap(),
                );
            }
            let gunzip = t.elapsed() / n;
            let raw = strata_ingest::decompress(&bytes, &DecodeLimits::default()).unwrap();
            let t = Instant::now();
            for _ in 0..n {
                std::hint::black_box(decode_pprof(&raw, &DecodeLimits::default()).unwrap());
            }
            println!(
                "{kind}: gunzip {:?}, protobuf decode {:?} per copy ({} bytes raw)",
                gunzip,
                t.elapsed() / n,
                raw.len()
            );
        }
        let per_copy = profile.sample.len() as u64;
        let copies = target.div_ceil(per_copy).max(1) as usize;
        println!(
            "{kind}: {} bytes gzipped, {per_copy} samples x {} values, {} locations, {} functions; {copies} copies",
            bytes.len(),
            profile.sample_type.len(),
            profile.location.len(),
            profile.function.len(),
        );
        let (ours, rows) = strata_ingest(&bytes, name, copies);
        let go = go_merge(&file, copies, per_copy);
        for (who, m) in [("strata", &ours), ("go tool pprof -proto", &go)] {
            println!(
                "  {who:<22} {:>9} samples  {:>7.3} s wall  {:>7.3} s CPU  {:>6.3} M samples/CPU-s  {:>6.3} M samples/s wall",
                m.samples,
                m.wall.as_secs_f64(),
                m.cpu.as_secs_f64(),
                m.per_cpu_second() / 1e6,
                m.samples as f64 / m.wall.as_secs_f64() / 1e6,
            );
        }
        println!(
            "  strata stored {rows} rows ({:.2} per sample: one per non-zero value, plus deltas); ratio strata/go per CPU-s: {:.1}x",
            rows as f64 / ours.samples as f64,
            ours.per_cpu_second() / go.per_cpu_second()
        );
    }
}
