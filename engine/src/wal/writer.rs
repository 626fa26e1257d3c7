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
    /// The current segment may end in bytes of a failed write that could not be cut off, or
    /// an fsync of it failed (its unsynced pages are in doubt): the next group starts a new
    /// segment instead of appending to it.
    needs_new_segment: bool,
    buf: Vec<u8>,
    pending: Vec<oneshot::Sender<Result<()>>>,
    /// Tests: the next write or sync fails as a full disk would.
    #[cfg(test)]
    fault: Option<tests::Fault>,
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
            needs_new_segment: false,
            buf: Vec::new(),
            pending: Vec::new(),
            #[cfg(test)]
            fault: None,
        })
    }

    fn path(&self) -> PathBuf {
        segment_path(&self.dir, self.segment)
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
                        if let Err(e) = self.sync() {
                            tracing::warn!(error = %e, "periodic WAL sync failed; the next write starts a new segment");
                        }
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
    ///
    /// A failed group (e.g. the disk is full) is refused as a whole and leaves no trace: its
    /// bytes are cut off the segment again (or, if that fails too, the next group goes to a
    /// new segment, so a partial record is only ever a segment's torn tail, which replay cuts
    /// off). The writer keeps taking appends, so writes succeed again once the cause is gone.
    fn commit_group(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let result = self.write_group();
        self.buf.clear();
        if let Err(e) = &result {
            tracing::warn!(error = %e, records = self.pending.len(), "WAL write failed; the appends are refused");
        }
        for done in self.pending.drain(..) {
            let _ = done.send(match &result {
                Ok(()) => Ok(()),
                Err(e) => Err(refusal(e)),
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

    fn write_group(&mut self) -> Result<()> {
        if self.needs_new_segment {
            self.open_next()?;
        }
        let start = self.segment_bytes;
        let path = self.path();
        if let Err(e) = self.write_buf() {
            self.cut_back(start);
            return Err(Error::io(&path)(e));
        }
        self.segment_bytes += self.buf.len() as u64;
        self.unsynced = true;
        let synced = match self.config.fsync {
            FsyncPolicy::Always => self.sync(),
            FsyncPolicy::Periodic if self.last_sync.elapsed() >= self.config.sync_interval => {
                self.sync()
            }
            _ => Ok(()),
        };
        if synced.is_err() {
            self.cut_back(start);
        }
        synced
    }

    #[cfg(not(test))]
    fn write_buf(&mut self) -> std::io::Result<()> {
        self.file.write_all(&self.buf)
    }

    #[cfg(not(test))]
    fn sync_file(&mut self) -> std::io::Result<()> {
        self.file.sync_data()
    }

    /// Cuts a failed group's bytes (possibly a partial record) off the segment; if that fails,
    /// the segment is left behind with them as its torn tail.
    fn cut_back(&mut self, len: u64) {
        match self.file.set_len(len) {
            Ok(()) => self.segment_bytes = len,
            Err(e) => {
                tracing::warn!(segment = %self.path().display(), error = %e, "cannot cut a failed write off the WAL segment; the next write starts a new segment");
                self.needs_new_segment = true;
            }
        }
    }

    fn sync(&mut self) -> Result<()> {
        if self.unsynced {
            let path = self.path();
            if let Err(e) = self.sync_file() {
                // A failed fsync leaves the segment's unsynced pages in doubt (the kernel may
                // have dropped them, and a second fsync would not say so): write on in a new
                // segment, and do not retry this one (the periodic timer would spin on it).
                self.needs_new_segment = true;
                self.unsynced = false;
                self.last_sync = Instant::now();
                return Err(Error::io(&path)(e));
            }
            self.unsynced = false;
        }
        self.last_sync = Instant::now();
        Ok(())
    }

    fn rotate(&mut self) -> Result<u64> {
        if !self.needs_new_segment {
            self.sync()?;
        }
        self.open_next()
    }

    /// Starts segment `n+1` (the current one is closed, never appended to again).
    fn open_next(&mut self) -> Result<u64> {
        let next = self.segment + 1;
        self.file = create_segment(&self.dir, next)?;
        self.segment = next;
        self.segment_bytes = super::segment::SEGMENT_MAGIC.len() as u64;
        self.unsynced = false;
        self.needs_new_segment = false;
        Ok(next)
    }
}

/// The error an appender of a failed group gets: `DiskFull` when the disk (or quota) is full,
/// else `WalUnavailable` with the cause.
fn refusal(e: &Error) -> Error {
    match e {
        Error::Io { path, source } if crate::error::is_disk_full(source) => Error::DiskFull {
            path: path.clone(),
            reason: source.to_string(),
        },
        other => Error::WalUnavailable {
            reason: other.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wal::segment::{list_segments, scan_segment};

    /// A failure the writer's next write or sync meets.
    #[derive(Clone, Copy, Debug)]
    pub(crate) enum Fault {
        /// The write stores this many bytes, then fails with `ENOSPC`.
        Write(usize),
        /// The fsync fails with `ENOSPC`.
        Sync,
    }

    fn full() -> std::io::Error {
        std::io::Error::from(std::io::ErrorKind::StorageFull)
    }

    impl Writer {
        pub(super) fn write_buf(&mut self) -> std::io::Result<()> {
            match self.fault {
                Some(Fault::Write(n)) => {
                    self.fault = None;
                    self.file.write_all(&self.buf[..n.min(self.buf.len())])?;
                    Err(full())
                }
                _ => self.file.write_all(&self.buf),
            }
        }

        pub(super) fn sync_file(&mut self) -> std::io::Result<()> {
            if let Some(Fault::Sync) = self.fault {
                self.fault = None;
                return Err(full());
            }
            self.file.sync_data()
        }
    }

    /// A payload as records carry them (kind and version bytes first).
    fn payload(body: &str) -> Vec<u8> {
        let mut p = vec![
            crate::wal::codec::KIND_SAMPLE_BATCH,
            crate::wal::codec::BATCH_VERSION,
        ];
        p.extend_from_slice(body.as_bytes());
        p
    }

    /// Appends one record as a group; its outcome.
    fn append(w: &mut Writer, body: &str) -> Result<()> {
        let (done, mut rx) = oneshot::channel();
        w.handle(Command::Append {
            payload: payload(body),
            done,
        });
        w.commit_group();
        rx.try_recv().expect("answered")
    }

    /// Every segment's records (payload bodies) and whether it had damage.
    fn segments(dir: &std::path::Path) -> Vec<(u64, Vec<String>, bool)> {
        list_segments(dir)
            .unwrap()
            .into_iter()
            .map(|n| {
                let buf = std::fs::read(segment_path(dir, n)).unwrap();
                let (records, damage) = scan_segment(&buf, &mut |_| Ok(()));
                let bodies = records
                    .iter()
                    .map(|r| String::from_utf8(buf[r.start + 2..r.end].to_vec()).unwrap())
                    .collect();
                (n, bodies, !damage.is_empty())
            })
            .collect()
    }

    fn writer(dir: &std::path::Path) -> Writer {
        Writer::new(dir.to_path_buf(), WalConfig::default(), 1).unwrap()
    }

    fn assert_disk_full(r: Result<()>) {
        match r {
            Err(e @ Error::DiskFull { .. }) => {
                assert!(e.to_string().contains("no space left"), "{e}");
                assert!(e.to_string().contains(".wal"), "{e}");
            }
            other => panic!("expected DiskFull, got {other:?}"),
        }
    }

    #[test]
    fn a_partial_write_on_a_full_disk_is_cut_off_and_writing_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = writer(dir.path());
        append(&mut w, "one").unwrap();
        w.fault = Some(Fault::Write(5)); // half a header on disk, then ENOSPC
        assert_disk_full(append(&mut w, "lost"));
        append(&mut w, "two").unwrap();
        assert_eq!(
            segments(dir.path()),
            vec![(1, vec!["one".to_string(), "two".to_string()], false)]
        );
    }

    #[test]
    fn a_failed_fsync_refuses_the_group_and_moves_to_a_new_segment() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = writer(dir.path());
        append(&mut w, "one").unwrap();
        w.fault = Some(Fault::Sync);
        assert_disk_full(append(&mut w, "doubtful"));
        append(&mut w, "two").unwrap();
        assert_eq!(
            segments(dir.path()),
            vec![
                (1, vec!["one".to_string()], false),
                (2, vec!["two".to_string()], false)
            ]
        );
    }

    #[test]
    fn a_failed_write_that_cannot_be_cut_off_leaves_a_torn_tail_and_a_new_segment() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = writer(dir.path());
        append(&mut w, "one").unwrap();
        // Segment 1 grows a partial record that cannot be cut off: /dev/full refuses every
        // write (ENOSPC) and cannot be truncated.
        let mut torn = w.file.try_clone().unwrap();
        torn.write_all(&[9, 0, 0]).unwrap();
        w.file = std::fs::OpenOptions::new()
            .append(true)
            .open("/dev/full")
            .unwrap();
        assert_disk_full(append(&mut w, "lost"));
        append(&mut w, "two").unwrap();
        assert_eq!(
            segments(dir.path()),
            vec![
                (1, vec!["one".to_string()], true),
                (2, vec!["two".to_string()], false)
            ]
        );
    }

    #[test]
    fn a_failed_periodic_sync_is_not_retried_on_the_same_segment() {
        let dir = tempfile::tempdir().unwrap();
        let config = WalConfig {
            fsync: FsyncPolicy::Periodic,
            sync_interval: std::time::Duration::from_secs(3600),
            ..WalConfig::default()
        };
        let mut w = Writer::new(dir.path().to_path_buf(), config, 1).unwrap();
        append(&mut w, "one").unwrap(); // acknowledged unsynced
        w.fault = Some(Fault::Sync);
        assert!(matches!(w.sync(), Err(Error::Io { .. })));
        // Nothing left to sync here: the idle timer does not spin on the failed segment.
        assert!(!w.unsynced);
        assert!(w.sync().is_ok());
        append(&mut w, "two").unwrap();
        assert_eq!(
            segments(dir.path()),
            vec![
                (1, vec!["one".to_string()], false),
                (2, vec!["two".to_string()], false)
            ]
        );
    }

    #[test]
    fn a_rotation_whose_fsync_fails_is_refused_and_the_next_group_takes_a_new_segment() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = writer(dir.path());
        append(&mut w, "one").unwrap();
        w.unsynced = true;
        w.fault = Some(Fault::Sync);
        assert!(matches!(w.rotate(), Err(Error::Io { .. })));
        append(&mut w, "two").unwrap();
        assert_eq!(
            segments(dir.path()),
            vec![
                (1, vec!["one".to_string()], false),
                (2, vec!["two".to_string()], false)
            ]
        );
    }
}
