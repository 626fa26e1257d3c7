//! The WAL writer thread: group commit of concurrent appends, fsync policy, segment rotation.

use std::fs::File;
use std::io::Write;
use std::path::PathBuf;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::Instant;

use tokio::sync::oneshot;

use super::segment::{create_segment, frame_record, segment_path};
use crate::config::{FsyncPolicy, WalConfig};
use crate::error::{Error, Result};

/// A request to the writer thread.
pub(crate) enum Command {
    /// Write a record; answered once it is durable under the fsync policy.
    Append {
        payload: Vec<u8>,
        done: oneshot::Sender<Result<()>>,
    },
    /// Close the current segment and start a new one; answered with the new segment number.
    Rotate { done: oneshot::Sender<Result<u64>> },
    /// Fsync now.
    Sync { done: oneshot::Sender<Result<()>> },
}

pub(crate) struct Writer {
    dir: PathBuf,
    config: WalConfig,
    segment: u64,
    file: File,
    segment_bytes: u64,
    unsynced: bool,
    last_sync: Instant,
    failed: Option<String>,
    buf: Vec<u8>,
    pending: Vec<oneshot::Sender<Result<()>>>,
}

impl Writer {
    pub fn new(dir: PathBuf, config: WalConfig, segment: u64) -> Result<Writer> {
        let file = create_segment(&dir, segment)?;
        Ok(Writer {
            dir,
            config,
            segment,
            file,
            segment_bytes: super::segment::SEGMENT_MAGIC.len() as u64,
            unsynced: false,
            last_sync: Instant::now(),
            failed: None,
            buf: Vec::new(),
            pending: Vec::new(),
        })
    }

    fn path(&self) -> PathBuf {
        segment_path(&self.dir, self.segment)
    }

    fn unavailable(&self) -> Error {
        Error::WalUnavailable {
            reason: self.failed.clone().unwrap_or_default(),
        }
    }

    /// Runs until every sender is dropped; syncs before returning.
    pub fn run(mut self, rx: Receiver<Command>) {
        loop {
            let first = if self.config.fsync == FsyncPolicy::Periodic && self.unsynced {
                let wait = self
                    .config
                    .sync_interval
                    .saturating_sub(self.last_sync.elapsed());
                match rx.recv_timeout(wait) {
                    Ok(c) => Some(c),
                    Err(RecvTimeoutError::Timeout) => {
                        let _ = self.sync();
                        continue;
                    }
                    Err(RecvTimeoutError::Disconnected) => None,
                }
            } else {
                rx.recv().ok()
            };
            let Some(first) = first else { break };
            self.handle(first);
            // Group commit: take whatever else is already queued, up to the byte budget.
            while (self.buf.len() as u64) < self.config.group_commit_bytes {
                match rx.try_recv() {
                    Ok(c) => self.handle(c),
                    Err(_) => break,
                }
            }
            self.commit_group();
        }
        self.commit_group();
        let _ = self.sync();
    }

    fn handle(&mut self, cmd: Command) {
        match cmd {
            Command::Append { payload, done } => {
                if self.failed.is_some() {
                    let _ = done.send(Err(self.unavailable()));
                    return;
                }
                frame_record(&payload, &mut self.buf);
                self.pending.push(done);
            }
            Command::Rotate { done } => {
                self.commit_group();
                let _ = done.send(self.rotate());
            }
            Command::Sync { done } => {
                self.commit_group();
                let _ = done.send(self.sync());
            }
        }
    }

    /// Writes the buffered records, syncs per policy, answers their appenders.
    fn commit_group(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let result = self
            .write_buffered()
            .and_then(|()| match self.config.fsync {
                FsyncPolicy::Always => self.sync(),
                FsyncPolicy::Periodic if self.last_sync.elapsed() >= self.config.sync_interval => {
                    self.sync()
                }
                _ => Ok(()),
            });
        if let Err(e) = &result {
            self.failed = Some(e.to_string());
        }
        for done in self.pending.drain(..) {
            let _ = done.send(match &result {
                Ok(()) => Ok(()),
                Err(_) => Err(Error::WalUnavailable {
                    reason: self.failed.clone().unwrap_or_default(),
                }),
            });
        }
        if result.is_ok()
            && self.segment_bytes >= self.config.segment_bytes
            && let Err(e) = self.rotate()
        {
            // The current segment is intact; keep writing to it and try again next group.
            tracing::warn!(error = %e, "WAL segment rotation failed; the segment grows past wal.segment_bytes");
        }
    }

    fn write_buffered(&mut self) -> Result<()> {
        let path = self.path();
        self.file.write_all(&self.buf).map_err(Error::io(&path))?;
        self.segment_bytes += self.buf.len() as u64;
        self.unsynced = true;
        self.buf.clear();
        Ok(())
    }

    fn sync(&mut self) -> Result<()> {
        if let Some(_reason) = &self.failed {
            return Err(self.unavailable());
        }
        if self.unsynced {
            let path = self.path();
            self.file.sync_data().map_err(Error::io(&path))?;
            self.unsynced = false;
        }
        self.last_sync = Instant::now();
        Ok(())
    }

    fn rotate(&mut self) -> Result<u64> {
        if self.failed.is_some() {
            return Err(self.unavailable());
        }
        if let Err(e) = self.sync() {
            // A failed fsync leaves durability unknown: stop taking writes.
            self.failed = Some(e.to_string());
            return Err(e);
        }
        let next = self.segment + 1;
        self.file = create_segment(&self.dir, next)?;
        self.segment = next;
        self.segment_bytes = super::segment::SEGMENT_MAGIC.len() as u64;
        Ok(next)
    }
}
