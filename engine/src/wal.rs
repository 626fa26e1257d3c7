//! The write-ahead log: every append is framed (length + CRC-32C), group-committed by a writer
//! thread and synced per [`FsyncPolicy`](crate::FsyncPolicy) before `append` returns; on open
//! the segments not yet covered by a block are replayed.

mod codec;
mod segment;
mod writer;

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread::JoinHandle;

use parking_lot::Mutex;
use tokio::sync::oneshot;
use tracing::warn;

pub(crate) use codec::{Elision, decode_batch, encode_batch};
pub use segment::{WalDamage, WalDamageKind};

use crate::batch::SampleBatch;
use crate::config::WalConfig;
use crate::error::{Error, Result};
use segment::{list_segments, quarantine, rewrite_segment, scan_segment, segment_path, sync_dir};
use writer::{Command, Writer};

/// What replaying the WAL on open found.
#[derive(Clone, Debug, Default)]
pub struct ReplayReport {
    /// Segments read.
    pub segments: usize,
    /// Records applied to the head.
    pub records: u64,
    /// Samples applied to the head.
    pub samples: u64,
    /// Segments skipped because a block already holds their data.
    pub skipped_segments: usize,
    /// Damaged stretches cut out (and quarantined where they held data).
    pub damage: Vec<WalDamage>,
    /// Stacks whose samples were replayed but whose definition was in a damaged record: their
    /// samples are kept, and the stack resolves again once it is appended anew or found in a
    /// block (stack IDs are content-addressed).
    pub undefined_stacks: u64,
}

/// The open write-ahead log.
pub(crate) struct Wal {
    tx: Mutex<Option<mpsc::Sender<Command>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
    dir: PathBuf,
}

impl Wal {
    /// Replays segments numbered `>= covered_below` through `apply`, deletes older ones, and
    /// opens a fresh segment for writing.
    pub fn open(
        dir: &Path,
        config: &WalConfig,
        covered_below: u64,
        apply: &mut dyn FnMut(SampleBatch) -> Result<()>,
    ) -> Result<(Wal, ReplayReport)> {
        fs::create_dir_all(dir).map_err(Error::io(dir))?;
        let mut report = ReplayReport::default();
        let segments = list_segments(dir)?;
        let mut next = covered_below.max(1);
        for &n in &segments {
            next = next.max(n + 1);
            if n < covered_below {
                let path = segment_path(dir, n);
                fs::remove_file(&path).map_err(Error::io(&path))?;
                report.skipped_segments += 1;
                continue;
            }
            replay_segment(dir, n, apply, &mut report)?;
        }
        sync_dir(dir)?;
        // Remove leftovers of an interrupted segment rewrite.
        for entry in fs::read_dir(dir).map_err(Error::io(dir))?.flatten() {
            if entry.file_name().to_string_lossy().ends_with(".wal.tmp") {
                let _ = fs::remove_file(entry.path());
            }
        }
        let writer = Writer::new(dir.to_path_buf(), config.clone(), next)?;
        let (tx, rx) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("strata-wal".into())
            .spawn(move || writer.run(rx))
            .map_err(Error::io(dir))?;
        Ok((
            Wal {
                tx: Mutex::new(Some(tx)),
                thread: Mutex::new(Some(thread)),
                dir: dir.to_path_buf(),
            },
            report,
        ))
    }

    fn send(&self, cmd: Command) -> Result<()> {
        self.tx
            .lock()
            .as_ref()
            .and_then(|tx| tx.send(cmd).ok())
            .ok_or_else(|| Error::WalUnavailable {
                reason: "the WAL is closed".into(),
            })
    }

    /// Hands a record to the writer; resolves when it is durable.
    pub fn append(&self, payload: Vec<u8>) -> Result<oneshot::Receiver<Result<()>>> {
        let (done, rx) = oneshot::channel();
        self.send(Command::Append { payload, done })?;
        Ok(rx)
    }

    /// Starts a new segment; returns its number. Every record handed over before belongs to a
    /// lower-numbered segment.
    pub async fn rotate(&self) -> Result<u64> {
        let (done, rx) = oneshot::channel();
        self.send(Command::Rotate { done })?;
        rx.await.map_err(|_| Error::WalUnavailable {
            reason: "writer thread stopped".into(),
        })?
    }

    /// Fsyncs everything written so far.
    pub async fn sync(&self) -> Result<()> {
        let (done, rx) = oneshot::channel();
        self.send(Command::Sync { done })?;
        rx.await.map_err(|_| Error::WalUnavailable {
            reason: "writer thread stopped".into(),
        })?
    }

    /// Deletes every segment numbered below `n` (their data is in blocks).
    pub fn delete_below(&self, n: u64) -> Result<()> {
        for s in list_segments(&self.dir)? {
            if s < n {
                let path = segment_path(&self.dir, s);
                fs::remove_file(&path).map_err(Error::io(&path))?;
            }
        }
        sync_dir(&self.dir)
    }

    /// Total bytes of the segments on disk.
    pub fn disk_bytes(&self) -> u64 {
        list_segments(&self.dir)
            .unwrap_or_default()
            .into_iter()
            .filter_map(|n| fs::metadata(segment_path(&self.dir, n)).ok())
            .map(|m| m.len())
            .sum()
    }

    /// Stops the writer thread after it syncs.
    pub fn close(&self) {
        self.tx.lock().take();
        if let Some(t) = self.thread.lock().take() {
            let _ = t.join();
        }
    }
}

impl Drop for Wal {
    fn drop(&mut self) {
        self.close();
    }
}

fn replay_segment(
    dir: &Path,
    n: u64,
    apply: &mut dyn FnMut(SampleBatch) -> Result<()>,
    report: &mut ReplayReport,
) -> Result<()> {
    let path = segment_path(dir, n);
    let buf = fs::read(&path).map_err(Error::io(&path))?;
    let mut decode_ok = |p: &[u8]| decode_batch(p).map(|_| ());
    let (records, damage) = scan_segment(&buf, &mut decode_ok);
    report.segments += 1;
    for r in &records {
        let batch = decode_batch(&buf[r.start..r.end]).expect("validated by scan_segment");
        let samples = batch.num_samples() as u64;
        if let Err(e) = apply(batch) {
            warn!(segment = %path.display(), error = %e, "WAL record could not be applied to the head");
            continue;
        }
        report.records += 1;
        report.samples += samples;
    }
    if damage.is_empty() {
        return Ok(());
    }
    for (start, end, kind, reason) in damage {
        let bytes = &buf[start..end];
        let quarantined_to = if bytes.iter().any(|&b| b != 0) {
            Some(quarantine(dir, n, start, bytes)?)
        } else {
            None
        };
        warn!(
            segment = %path.display(), offset = start, bytes = end - start, ?kind, %reason,
            quarantined_to = ?quarantined_to, "WAL damage cut out during replay"
        );
        report.damage.push(WalDamage {
            segment: path.clone(),
            offset: start as u64,
            bytes: (end - start) as u64,
            kind,
            reason,
            quarantined_to,
        });
    }
    rewrite_segment(dir, n, &buf, &records)
}
