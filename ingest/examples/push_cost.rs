//! CPU per stored row of the push path inside one process, without a server: each pprof file
//! given on the command line decoded (gunzip + protobuf), normalized into a batch and
//! appended to a fresh engine (WAL fsync `never`), round robin, as a `WriteRaw` push is.
//! A quick check while optimizing; the end-to-end figure is `strata-bench doors`.
//!
//! ```sh
//! cargo run --release -p strata-ingest --example push_cost -- 3000 a.pb.gz b.pb.gz
//! ```

use std::time::Instant;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use strata_engine::{Engine, EngineConfig, SampleBatchBuilder};
use strata_ingest::{
    DecodeLimits, DeltaTracker, ProfileSource, decode_pprof, normalize_with_deltas,
};

/// User + system CPU of this process, from `/proc/self/stat` (10 ms ticks).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("/proc/self/stat");
    let fields: Vec<&str> = stat[stat.rfind(')').expect("stat") + 1..]
        .split_whitespace()
        .collect();
    let ticks: u64 =
        fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime");
    ticks as f64 / 100.0
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mut args = std::env::args().skip(1);
    let pushes: usize = args
        .next()
        .and_then(|a| a.parse().ok())
        .expect("usage: push_cost PUSHES FILE...");
    let files: Vec<Vec<u8>> = args
        .map(|f| std::fs::read(&f).expect("a pprof file"))
        .collect();
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = EngineConfig::new(dir.path());
    config.background = false;
    config.head.max_bytes = 64 << 30;
    config.wal.fsync = strata_engine::FsyncPolicy::Never;
    let engine = Engine::open(config).await.expect("engine");
    let limits = DecodeLimits::default();
    let mut deltas = DeltaTracker::new(100_000);
    let (mut rows, mut phases) = (0u64, [0f64; 3]);
    let (cpu0, t0) = (cpu_seconds(), Instant::now());
    for i in 0..pushes {
        let raw = &files[i % files.len()];
        let t = Instant::now();
        let profile = decode_pprof(raw, &limits).expect("decode");
        phases[0] += t.elapsed().as_secs_f64();
        let t = Instant::now();
        let source = ProfileSource {
            name: "process_cpu".into(),
            labels: vec![
                ("job".into(), "bench".into()),
                ("instance".into(), format!("host-{}", i % 200)),
            ],
            delta: None,
            default_time_ns: 0,
        };
        let mut b = SampleBatchBuilder::new();
        normalize_with_deltas(&profile, &source, &mut deltas, &mut b).expect("normalize");
        let batch = b.build().expect("build");
        phases[1] += t.elapsed().as_secs_f64();
        rows += batch.num_samples() as u64;
        let t = Instant::now();
        engine.append(&batch).await.expect("append");
        phases[2] += t.elapsed().as_secs_f64();
    }
    let (cpu, wall) = (cpu_seconds() - cpu0, t0.elapsed().as_secs_f64());
    engine.close().await.expect("close");
    println!(
        "{pushes} pushes, {rows} rows: {cpu:.2} s CPU ({wall:.2} s wall) = {:.3} us CPU per row; wall: decode {:.3} us, normalize+build {:.3} us, append {:.3} us per row",
        cpu * 1e6 / rows as f64,
        phases[0] * 1e6 / rows as f64,
        phases[1] * 1e6 / rows as f64,
        phases[2] * 1e6 / rows as f64,
    );
}
