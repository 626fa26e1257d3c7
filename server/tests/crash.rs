//! Fault tests of the real `strata` binary.
//!
//! - `sigkill_under_load_loses_no_acknowledged_push`: concurrent Parca `WriteRaw` pushers, each
//!   push a series of its own with a value of its own; the server is SIGKILLed 10–500 ms into the
//!   load and restarted on the same data dir, and every acknowledged push must be there with its
//!   exact value (a push cut off by the kill may or may not be). Runs alternate between the
//!   default config and one that flushes, rotates the WAL and compacts all the time, so kills
//!   land inside flushes (between block write and WAL deletion too). `STRATA_CRASH_RUNS` sets
//!   the number of runs (default 50), `STRATA_CRASH_SEED` the random seed (printed). Every
//!   fourth run also kills a server while it opens the store (5–65 ms after its start).
//! - `disk_full_refuses_writes_keeps_reads_and_recovers` (root: a loop-mounted ext4): writes
//!   are refused with a clear "no space left" status, reads keep working, writes work again once
//!   space is freed, and everything acknowledged survives a restart. Not root, or no loop mount:
//!   the test fails, unless `STRATA_SKIP_ROOT_TESTS=1`.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::strata::Strata;
use parking_lot::Mutex;
use strata_ingest::PprofBuilder;
use strata_proto::parca::profile_store_service_client::ProfileStoreServiceClient;
use strata_proto::parca::{Label, LabelSet, RawProfileSeries, RawSample, WriteRawRequest};

const PT: &str = "process_cpu:cpu:nanoseconds:cpu:nanoseconds:delta";

/// One push: which run and pusher sent it, its sequence number, and its (unique) value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Push {
    run: u32,
    pusher: u32,
    seq: u32,
}

impl Push {
    fn value(&self) -> i64 {
        1 + self.run as i64 * 10_000_000 + self.pusher as i64 * 1_000_000 + self.seq as i64
    }

    /// A `WriteRaw` of one CPU profile: series `{run, pusher, seq}`, one sample of `value()`.
    fn request(&self) -> WriteRawRequest {
        let mut b = PprofBuilder::new(&[("cpu", "nanoseconds")], ("cpu", "nanoseconds"), 1);
        let leaf = format!("work_{}", self.pusher);
        b.time(1_700_000_000_000_000_000 + self.seq as i64 * 1000, 1000)
            .sample(&["main", &leaf], &[self.value()], &[]);
        let label = |name: &str, value: String| Label {
            name: name.into(),
            value,
        };
        WriteRawRequest {
            series: vec![RawProfileSeries {
                labels: Some(LabelSet {
                    labels: vec![
                        label("__name__", "process_cpu".into()),
                        label("run", self.run.to_string()),
                        label("pusher", self.pusher.to_string()),
                        label("seq", self.seq.to_string()),
                    ],
                }),
                samples: vec![RawSample {
                    raw_profile: b.encode(),
                }],
            }],
            ..Default::default()
        }
    }
}

/// What the pushers saw: acknowledged pushes, and pushes whose outcome is unknown (cut off by
/// the kill, or refused).
#[derive(Default)]
struct Outcomes {
    acked: Vec<Push>,
    unknown: Vec<(Push, String)>,
}

/// Pushes `request()`s of run `run` from `pushers` concurrent clients until `stop`.
fn start_pushers(
    addr: std::net::SocketAddr,
    run: u32,
    pushers: u32,
    stop: Arc<AtomicBool>,
    out: Arc<Mutex<Outcomes>>,
) -> Vec<tokio::task::JoinHandle<()>> {
    (0..pushers)
        .map(|pusher| {
            let (stop, out) = (stop.clone(), out.clone());
            tokio::spawn(async move {
                let Ok(mut client) =
                    ProfileStoreServiceClient::connect(format!("http://{addr}")).await
                else {
                    return;
                };
                for seq in 0.. {
                    if stop.load(Ordering::SeqCst) {
                        return;
                    }
                    let push = Push { run, pusher, seq };
                    match client.write_raw(push.request()).await {
                        Ok(_) => out.lock().acked.push(push),
                        Err(status) => {
                            out.lock().unknown.push((push, status.to_string()));
                            // The server is gone (or refusing): this pusher is done.
                            return;
                        }
                    }
                }
            })
        })
        .collect()
}

/// Every stored push, through the server's SQL API: (run, pusher, seq) -> summed value.
async fn stored(addr: std::net::SocketAddr) -> BTreeMap<Push, i64> {
    let sql = format!(
        "SELECT run, pusher, seq, sum(value) AS v FROM samples \
         WHERE profile_type = '{PT}' GROUP BY run, pusher, seq"
    );
    let r = reqwest::Client::new()
        .post(format!("http://{addr}/api/v1/sql"))
        .body(sql)
        .send()
        .await
        .unwrap();
    let status = r.status();
    let body = r.text().await.unwrap();
    if status == 400 && body.contains("run") {
        // No sample stored yet: the table has no `run` column.
        return BTreeMap::new();
    }
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let num = |c: &serde_json::Value| -> u32 { c.as_str().unwrap().parse().unwrap() };
    v["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            let push = Push {
                run: num(&row[0]),
                pusher: num(&row[1]),
                seq: num(&row[2]),
            };
            (push, row[3].as_i64().unwrap())
        })
        .collect()
}

/// Checks the store against what the pushers saw: every acknowledged push present with its
/// exact value, unknown ones absent or exact, nothing else.
fn check(stored: &BTreeMap<Push, i64>, acked: &[Push], unknown: &[Push], when: &str) {
    let mut problems = Vec::new();
    for p in acked {
        match stored.get(p) {
            Some(&v) if v == p.value() => {}
            Some(&v) => problems.push(format!("{p:?}: stored {v}, pushed {}", p.value())),
            None => problems.push(format!("{p:?}: acknowledged, not stored (LOST)")),
        }
    }
    let known: std::collections::BTreeSet<&Push> = acked.iter().chain(unknown).collect();
    for (p, &v) in stored {
        if !known.contains(p) {
            problems.push(format!("{p:?}: stored {v}, never pushed"));
        } else if v != p.value() {
            problems.push(format!("{p:?}: stored {v}, pushed {}", p.value()));
        }
    }
    assert!(
        problems.is_empty(),
        "{when}: {} problem(s), first: {:#?}",
        problems.len(),
        &problems[..problems.len().min(20)]
    );
}

/// xorshift64*: reproducible randomness without a dependency.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n
    }
}

/// A config with no self-scrape and no symbolizer; `flushy` flushes, rotates the WAL and
/// compacts all the time.
fn write_config(path: &Path, flushy: bool) {
    let mut text = String::from("scrape_configs: []\nsymbolizer: {enabled: false}\n");
    if flushy {
        text.push_str(
            "engine:\n  \
               head: {max_bytes: 16384, max_age: 50ms, check_interval: 10ms}\n  \
               wal: {segment_bytes: 8192}\n  \
               compaction: {interval: 50ms, max_sources: 4}\n",
        );
    }
    std::fs::write(path, text).unwrap();
}

/// What a kill left in a data dir: block prefixes without `meta.json` (killed while writing a
/// block), and whether WAL segments that a committed block covers are still there (killed
/// between a block's commit and the WAL's deletion).
fn kill_point(data: &Path) -> (usize, bool) {
    let mut incomplete = 0;
    let mut covered = 0;
    for e in std::fs::read_dir(data.join("blocks"))
        .into_iter()
        .flatten()
        .flatten()
    {
        match std::fs::read(e.path().join("meta.json")) {
            Ok(meta) => {
                let meta: serde_json::Value = serde_json::from_slice(&meta).unwrap();
                covered = covered.max(meta["wal_segment_upto"].as_u64().unwrap());
            }
            // (Deleting a block may leave its directory empty: that is no block.)
            Err(_) if std::fs::read_dir(e.path()).is_ok_and(|mut d| d.next().is_some()) => {
                incomplete += 1
            }
            Err(_) => {}
        }
    }
    let stale_wal = std::fs::read_dir(data.join("wal"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().to_string();
            name.strip_suffix(".wal")?.parse::<u64>().ok()
        })
        .any(|n| n < covered);
    (incomplete, stale_wal)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_under_load_loses_no_acknowledged_push() {
    let runs: u32 = std::env::var("STRATA_CRASH_RUNS")
        .map(|s| s.parse().expect("STRATA_CRASH_RUNS is a number"))
        .unwrap_or(50);
    let seed: u64 = std::env::var("STRATA_CRASH_SEED")
        .map(|s| s.parse().expect("STRATA_CRASH_SEED is a number"))
        .unwrap_or_else(|_| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        });
    eprintln!("crash test: {runs} runs, STRATA_CRASH_SEED={seed}");
    let mut rng = Rng(seed);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (plain, flushy) = (
        dir.path().join("plain.yaml"),
        dir.path().join("flushy.yaml"),
    );
    write_config(&plain, false);
    write_config(&flushy, true);

    let mut acked: Vec<Push> = Vec::new();
    let mut unknown: Vec<Push> = Vec::new();
    let started = Instant::now();
    let (mut mid_block_write, mut before_wal_deletion) = (0, 0);
    for run in 0..runs {
        let config = if run % 2 == 0 { &flushy } else { &plain };
        let t0 = Instant::now();
        if run % 4 == 2 {
            // Killed while opening too: WAL replay (and rewrite of a torn segment), cleanup,
            // and the flush of a replayed head over its budget.
            let mut opening = std::process::Command::new(env!("CARGO_BIN_EXE_strata"))
                .args(["server", "--listen", "127.0.0.1:0", "--no-collector"])
                .arg("--data-dir")
                .arg(&data)
                .arg("--config")
                .arg(config)
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap();
            std::thread::sleep(Duration::from_millis(5 + rng.below(60)));
            opening.kill().unwrap();
            opening.wait().unwrap();
        }
        let strata = Strata::start(&data, Some(config));
        if config == &plain {
            // (With nothing flushing yet:) opening removed what killed writes left.
            assert_eq!(
                kill_point(&data).0,
                0,
                "block writes left behind after open"
            );
        }
        // Recovery of the previous run's kill: everything acknowledged is there.
        let found = stored(strata.addr).await;
        check(&found, &acked, &unknown, &format!("after kill {run}"));
        // Unknown pushes that did not make it are gone for good; the ones that did are now
        // part of the store, and must stay.
        let (landed, gone): (Vec<Push>, Vec<Push>) =
            unknown.drain(..).partition(|p| found.contains_key(p));
        acked.extend(landed);
        drop(gone);

        let stop = Arc::new(AtomicBool::new(false));
        let out = Arc::new(Mutex::new(Outcomes::default()));
        let tasks = start_pushers(strata.addr, run, 4, stop.clone(), out.clone());
        let kill_after = Duration::from_millis(10 + rng.below(491));
        tokio::time::sleep(kill_after).await;
        let mut strata = strata;
        strata.child.kill().unwrap(); // SIGKILL
        strata.child.wait().unwrap();
        let (incomplete, stale_wal) = kill_point(&data);
        mid_block_write += (incomplete > 0) as u32;
        before_wal_deletion += stale_wal as u32;
        stop.store(true, Ordering::SeqCst);
        for t in tasks {
            t.await.unwrap();
        }
        let out = std::mem::take(&mut *out.lock());
        eprintln!(
            "run {run}: {} config, killed after {kill_after:?}{}{}, {} acknowledged, {} cut off, {:?} for the run",
            if run % 2 == 0 { "flushing" } else { "default" },
            if incomplete > 0 {
                " while writing a block"
            } else {
                ""
            },
            if stale_wal {
                " between a block's commit and the WAL's deletion"
            } else {
                ""
            },
            out.acked.len(),
            out.unknown.len(),
            t0.elapsed(),
        );
        acked.extend(out.acked);
        unknown.extend(out.unknown.into_iter().map(|(p, _)| p));
    }
    // The last kill's recovery, with a clean stop and one more restart for good measure.
    let strata = Strata::start(&data, Some(&plain));
    let found = stored(strata.addr).await;
    check(&found, &acked, &unknown, "after the last kill");
    assert!(strata.stop().success());
    let strata = Strata::start(&data, Some(&plain));
    check(
        &stored(strata.addr).await,
        &acked,
        &unknown,
        "after a clean restart",
    );
    assert!(strata.stop().success());
    assert_intact(&data).await;
    eprintln!(
        "crash test: {runs} runs, {} acknowledged pushes all stored; {mid_block_write} kills \
         while a block was being written, {before_wal_deletion} between a block's commit and the \
         WAL's deletion; {:?}",
        acked.len(),
        started.elapsed()
    );
}

/// A small ext4 filesystem in a file, loop-mounted; unmounted (and its file removed) on drop.
struct LoopMount {
    dir: tempfile::TempDir,
    mnt: std::path::PathBuf,
}

impl LoopMount {
    /// Makes and mounts a `mib` MiB ext4 (no blocks reserved for root). Errors say why.
    fn new(mib: u64) -> Result<LoopMount, String> {
        let run = |cmd: &mut std::process::Command| -> Result<(), String> {
            let out = cmd.output().map_err(|e| format!("{cmd:?}: {e}"))?;
            if out.status.success() {
                Ok(())
            } else {
                Err(format!(
                    "{cmd:?}: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                ))
            }
        };
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let img = dir.path().join("fs.img");
        let mnt = dir.path().join("mnt");
        std::fs::create_dir(&mnt).map_err(|e| e.to_string())?;
        std::fs::File::create(&img)
            .and_then(|f| f.set_len(mib << 20))
            .map_err(|e| e.to_string())?;
        run(std::process::Command::new("mkfs.ext4")
            .args(["-q", "-F", "-m", "0"])
            .arg(&img))?;
        run(std::process::Command::new("mount")
            .args(["-o", "loop"])
            .arg(&img)
            .arg(&mnt))?;
        Ok(LoopMount { dir, mnt })
    }
}

impl Drop for LoopMount {
    fn drop(&mut self) {
        let umount = |lazy: bool| {
            let mut cmd = std::process::Command::new("umount");
            if lazy {
                cmd.arg("-l");
            }
            cmd.arg(&self.mnt).status().is_ok_and(|s| s.success())
        };
        if !umount(false) {
            std::thread::sleep(Duration::from_millis(500));
            if !umount(false) {
                umount(true);
            }
        }
        let _ = &self.dir; // removed after this, with the image file
    }
}

/// Root and a loop mount, or why not: the test fails unless `STRATA_SKIP_ROOT_TESTS=1`.
fn loop_mount_or_skip(mib: u64) -> Option<LoopMount> {
    let skip = std::env::var("STRATA_SKIP_ROOT_TESTS").is_ok_and(|v| v == "1");
    let uid = std::process::Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    let why = if uid != "0" {
        format!("it runs as uid {uid:?}, not root")
    } else {
        match LoopMount::new(mib) {
            Ok(m) => return Some(m),
            Err(e) => format!("the loop mount failed: {e}"),
        }
    };
    assert!(
        skip,
        "the disk-full test needs root and a loop-mounted ext4 (mkfs.ext4, mount -o loop): {why}; \
         set STRATA_SKIP_ROOT_TESTS=1 to skip it"
    );
    eprintln!("skipped (STRATA_SKIP_ROOT_TESTS=1): {why}");
    None
}

/// Fills the filesystem holding `path` with a file there: 1 MiB writes, then 4 KiB ones, until
/// `ENOSPC`.
fn fill(path: &Path) {
    use std::io::Write;
    let mut f = std::fs::File::create(path).unwrap();
    for chunk in [1 << 20, 4096, 512] {
        let buf = vec![0xa5u8; chunk];
        loop {
            match f.write_all(&buf) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::StorageFull => break,
                Err(e) => panic!("filling {}: {e}", path.display()),
            }
        }
    }
    let _ = f.sync_all();
}

/// Committed blocks (`blocks/<id>/meta.json`) under a data dir.
fn committed_blocks(data: &Path) -> usize {
    std::fs::read_dir(data.join("blocks"))
        .map(|d| {
            d.flatten()
                .filter(|e| e.path().join("meta.json").exists())
                .count()
        })
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disk_full_refuses_writes_keeps_reads_and_recovers() {
    let Some(fs) = loop_mount_or_skip(48) else {
        return;
    };
    let data = fs.mnt.join("data");
    let config = fs.dir.path().join("config.yaml");
    // Flushes on age, so that flushes also meet the full disk.
    std::fs::write(
        &config,
        "scrape_configs: []\nsymbolizer: {enabled: false}\n\
         engine:\n  head: {max_age: 2s, check_interval: 100ms}\n  compaction: {enabled: false}\n  \
         storage: {flush_backoff_initial: 200ms, flush_backoff_max: 1s}\n",
    )
    .unwrap();
    let mut strata = Strata::start(&data, Some(&config));
    let addr = strata.addr;
    let mut client = ProfileStoreServiceClient::connect(format!("http://{addr}"))
        .await
        .unwrap();
    let mut acked = Vec::new();
    let seq = std::cell::Cell::new(0);
    let next = || {
        seq.set(seq.get() + 1);
        Push {
            run: 0,
            pusher: 0,
            seq: seq.get(),
        }
    };

    // Before: pushes are stored, and flushed into a block.
    for _ in 0..50 {
        let p = next();
        client.write_raw(p.request()).await.unwrap();
        acked.push(p);
    }
    let waited = Instant::now();
    while committed_blocks(&data) == 0 {
        assert!(waited.elapsed() < Duration::from_secs(30), "no flush");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Data in the head when the disk fills up, for the next flush to meet the full disk.
    for _ in 0..5 {
        let p = next();
        client.write_raw(p.request()).await.unwrap();
        acked.push(p);
    }

    // Full: pushes are refused with a status that says so.
    let filler = fs.mnt.join("filler");
    fill(&filler);
    let blocks_when_full = committed_blocks(&data);
    let (refused, status) = loop {
        let p = next();
        match client.write_raw(p.request()).await {
            Ok(_) => acked.push(p),
            Err(status) => break (p, status),
        }
        assert!(seq.get() < 20_000, "pushes still succeed on a full disk");
    };
    eprintln!("refused on a full disk: {status:?}");
    assert!(
        matches!(
            status.code(),
            tonic::Code::ResourceExhausted | tonic::Code::Unavailable
        ),
        "{status:?}"
    );
    assert!(
        status.message().to_lowercase().contains("no space left")
            && status.message().contains(&*data.to_string_lossy()),
        "the refusal names the full disk and the data dir: {status:?}"
    );
    // It stays refused (and stays up) while full; the flushes the maintenance task attempts
    // meanwhile fail too.
    let mut refused = vec![refused];
    for _ in 0..20 {
        let p = next();
        match client.write_raw(p.request()).await {
            Ok(_) => acked.push(p),
            Err(_) => refused.push(p),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Over HTTP (Pyroscope's /ingest): 507 Insufficient Storage, saying why.
    let (code, body) = common::post(
        addr,
        "/ingest?name=diskfull.cpu&format=folded",
        b"main;work 1\n",
    )
    .await;
    assert_eq!(code, 507, "{body}");
    assert!(body.to_lowercase().contains("no space left"), "{body}");
    assert!(
        strata.child.try_wait().unwrap().is_none(),
        "the server exited on a full disk"
    );
    // The flushes attempted meanwhile failed, keeping the head (and WAL) as they were.
    let waited = Instant::now();
    while metric(addr, "strata_flush_failures_total").await == 0 {
        assert!(
            waited.elapsed() < Duration::from_secs(20),
            "no flush was tried on the full disk"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Reads keep working, and show exactly the acknowledged pushes (nothing refused).
    check(&stored(addr).await, &acked, &[], "while the disk is full");
    let (status, body) = common::get(addr, "/api/v1/labels").await;
    assert_eq!(status, 200, "{body}");

    // Space freed: writes succeed again at once, no restart; the head is flushed again.
    std::fs::remove_file(&filler).unwrap();
    let freed = Instant::now();
    let first_ok = loop {
        let p = next();
        match client.write_raw(p.request()).await {
            Ok(_) => {
                acked.push(p);
                break freed.elapsed();
            }
            Err(status) => {
                refused.push(p);
                assert!(
                    freed.elapsed() < Duration::from_secs(10),
                    "writes still refused 10 s after space was freed: {status:?}"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    eprintln!("first write accepted {first_ok:?} after space was freed");
    for _ in 0..50 {
        let p = next();
        client.write_raw(p.request()).await.unwrap();
        acked.push(p);
    }
    while committed_blocks(&data) <= blocks_when_full {
        assert!(
            freed.elapsed() < Duration::from_secs(120),
            "no flush succeeded after space was freed"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    eprintln!(
        "a flush succeeded {:?} after space was freed; {} flushes failed on the full disk",
        freed.elapsed(),
        metric(addr, "strata_flush_failures_total").await
    );
    check(&stored(addr).await, &acked, &[], "after space was freed");

    // And after a restart, everything acknowledged is there (and nothing refused).
    assert!(strata.stop().success());
    strata = Strata::start(&data, Some(&config));
    check(&stored(strata.addr).await, &acked, &[], "after a restart");
    eprintln!(
        "disk full: {} pushes acknowledged, {} refused; all as expected",
        acked.len(),
        refused.len()
    );
    assert!(strata.stop().success());
    assert_intact(&data).await;
}

/// A counter or gauge of `/metrics`.
async fn metric(addr: std::net::SocketAddr, name: &str) -> u64 {
    let (status, body) = common::get(addr, "/metrics").await;
    assert_eq!(status, 200, "{body}");
    body.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in /metrics"))
}

/// After a clean stop: the store opens with no block quarantined and no WAL damage (so no
/// crash or full disk ever left a corrupt block or a record that later ones were written
/// after), and nothing under `quarantine/`.
async fn assert_intact(data: &Path) {
    let engine = common::open_engine(data).await;
    let report = engine.open_report().clone();
    engine.close().await.unwrap();
    assert!(
        report.quarantined_blocks.is_empty(),
        "{:?}",
        report.quarantined_blocks
    );
    assert!(
        report.replay.damage.is_empty(),
        "{:?}",
        report.replay.damage
    );
    assert!(
        !data.join("quarantine").exists(),
        "a block was quarantined at some point"
    );
}
