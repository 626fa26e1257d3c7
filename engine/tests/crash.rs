//! Crash test: a child process appends and prints each acknowledgement; it is SIGKILLed at
//! random moments while flushes and compactions run; after reopening, every acknowledged sample
//! is present exactly once (and no sample is present twice).

mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use strata_engine::{Engine, EngineConfig, TimeRange};

const DIR_ENV: &str = "STRATA_CRASH_DIR";
const BASE_ENV: &str = "STRATA_CRASH_BASE";

fn crash_config(dir: &std::path::Path) -> EngineConfig {
    let mut c = EngineConfig::new(dir);
    c.head.max_bytes = 32 << 10;
    c.head.max_age = Duration::from_millis(50);
    c.head.check_interval = Duration::from_millis(5);
    c.compaction.interval = Duration::from_millis(20);
    c.compaction.max_sources = 4;
    c.block.row_group_rows = 64;
    c
}

/// Rows of batch `n`: 20 samples whose values are unique ids `base + n*20 + i`.
fn rows(base: i64, n: i64) -> Vec<Row> {
    (0..20)
        .map(|i| Row {
            pt: (i % 2) as usize,
            labels: vec![("job".into(), format!("j{}", i % 3))],
            ts: n * 1000 + i,
            stack: (i % 6) as u8,
            value: base + n * 20 + i,
        })
        .collect()
}

/// The child: appends forever, printing `ACK <n>` after each acknowledged batch.
#[test]
#[ignore = "run by crash_test_sigkill as a child process"]
fn crash_child() {
    let Ok(dir) = std::env::var(DIR_ENV) else {
        return;
    };
    let base: i64 = std::env::var(BASE_ENV).unwrap().parse().unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let engine = Engine::open(crash_config(dir.as_ref())).await.unwrap();
        println!("READY");
        for n in 0.. {
            engine.append(&batch(&rows(base, n))).await.unwrap();
            println!("ACK {n}");
        }
    });
}

#[test]
fn crash_test_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let exe = std::env::current_exe().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut acked: Vec<i64> = Vec::new();
    let mut rng = 0x9e3779b97f4a7c15u64;
    let runs = 24;
    for run in 0..runs {
        let base = run as i64 * 10_000_000;
        let mut child = Command::new(&exe)
            .args([
                "--exact",
                "crash_child",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(DIR_ENV, dir.path().join("store"))
            .env(BASE_ENV, base.to_string())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(logs.join(format!("child-{run}.log"))).unwrap())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        // Wait for the child to be up, then kill it after a random 20-300 ms of appends.
        loop {
            let line = rx
                .recv_timeout(Duration::from_secs(60))
                .unwrap_or_else(|e| {
                    let log = std::fs::read_to_string(logs.join(format!("child-{run}.log")))
                        .unwrap_or_default();
                    panic!("child of run {run} did not start ({e}): {log}")
                });
            if line.ends_with("READY") {
                break;
            }
        }
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let wait = Duration::from_millis(20 + rng % 280);
        let start = Instant::now();
        while start.elapsed() < wait {
            std::thread::sleep(Duration::from_millis(1));
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        reader.join().unwrap();
        let mut last = None;
        for line in rx.try_iter() {
            if let Some(n) = line.strip_prefix("ACK ") {
                last = Some(n.parse::<i64>().unwrap());
            }
        }
        if let Some(last) = last {
            for n in 0..=last {
                acked.extend(rows(base, n).iter().map(|r| r.value));
            }
        }

        // Reopen and check: every acknowledged sample exactly once, nothing twice.
        rt.block_on(async {
            let mut config = crash_config(&dir.path().join("store"));
            config.background = false;
            let engine = Engine::open(config).await.unwrap();
            let mut counts: HashMap<i64, usize> = HashMap::new();
            for pt in profile_types() {
                for (_, _, _, v) in scan_all(&engine, &pt, vec![], TimeRange::ALL).await {
                    *counts.entry(v).or_default() += 1;
                }
            }
            let dupes: Vec<_> = counts.iter().filter(|(_, c)| **c > 1).collect();
            assert!(dupes.is_empty(), "run {run}: samples present more than once: {dupes:?}");
            let missing: Vec<_> = acked.iter().filter(|v| !counts.contains_key(v)).collect();
            assert!(missing.is_empty(), "run {run}: {} acknowledged samples lost, e.g. {:?}", missing.len(), &missing[..missing.len().min(5)]);
            eprintln!(
                "run {run}: killed after {wait:?}; {} acknowledged, {} present, {} blocks, replay {:?} damage {}",
                acked.len(),
                counts.len(),
                engine.blocks().len(),
                engine.open_report().replay.records,
                engine.open_report().replay.damage.len()
            );
            engine.close().await.unwrap();
        });
    }
    assert!(
        acked.len() > 1000,
        "the children acknowledged too little to mean anything: {}",
        acked.len()
    );
}
