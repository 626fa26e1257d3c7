//! WAL segment files: naming, framing and replay with torn-tail truncation and quarantine of
//! corrupt records.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// First bytes of every segment file.
pub(crate) const SEGMENT_MAGIC: &[u8; 8] = b"STRWAL01";
/// Bytes of a record header: payload length (u32 LE) and CRC-32C of the payload (u32 LE).
pub(crate) const RECORD_HEADER: usize = 8;
/// The first bytes of every record payload: kind (sample batch) and version.
const RECORD_PREFIX: [u8; 2] = [super::codec::KIND_SAMPLE_BATCH, super::codec::BATCH_VERSION];

/// The file name of segment `n`.
pub(crate) fn segment_path(dir: &Path, n: u64) -> PathBuf {
    dir.join(format!("{n:020}.wal"))
}

/// Segment numbers present in `dir`, ascending.
pub(crate) fn list_segments(dir: &Path) -> Result<Vec<u64>> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).map_err(Error::io(dir))? {
        let entry = entry.map_err(Error::io(dir))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if let Some(n) = name
            .strip_suffix(".wal")
            .and_then(|s| s.parse::<u64>().ok())
        {
            out.push(n);
        }
    }
    out.sort_unstable();
    Ok(out)
}

/// Frames one record into `out`.
pub(crate) fn frame_record(payload: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32c::crc32c(payload).to_le_bytes());
    out.extend_from_slice(payload);
}

/// Creates segment `n` with its header, durably (file and directory synced).
pub(crate) fn create_segment(dir: &Path, n: u64) -> Result<File> {
    let path = segment_path(dir, n);
    let mut f = OpenOptions::new()
        .create_new(true)
        .append(true)
        .open(&path)
        .map_err(Error::io(&path))?;
    let ready = f
        .write_all(SEGMENT_MAGIC)
        .and_then(|()| f.sync_all())
        .map_err(Error::io(&path))
        .and_then(|()| sync_dir(dir));
    if let Err(e) = ready {
        // Leave no half-made segment behind, so a later rotation can try the same number.
        let _ = std::fs::remove_file(&path);
        return Err(e);
    }
    Ok(f)
}

/// Fsyncs a directory so that created or removed entries are durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(Error::io(dir))
}

/// What replay found wrong in a segment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WalDamageKind {
    /// The segment ended inside a record: the usual trace of a crash mid-write.
    TornTail,
    /// A complete record failed its checksum or could not be decoded.
    CorruptRecord,
    /// The segment does not start with the segment magic.
    BadHeader,
}

/// One damaged stretch of a WAL segment, cut out during replay.
#[derive(Clone, Debug)]
pub struct WalDamage {
    /// The segment file.
    pub segment: PathBuf,
    /// Offset of the first bad byte.
    pub offset: u64,
    /// How many bytes were cut out.
    pub bytes: u64,
    /// What was wrong.
    pub kind: WalDamageKind,
    /// Why, in words.
    pub reason: String,
    /// Where the cut bytes were saved, if anywhere.
    pub quarantined_to: Option<PathBuf>,
}

/// A damaged stretch found by [`scan_segment`]: start, end, kind, reason.
pub(crate) type DamagedSpan = (usize, usize, WalDamageKind, String);

/// A record found by [`scan_segment`]: its payload's byte range in the segment.
pub(crate) struct RecordSpan {
    pub start: usize,
    pub end: usize,
}

/// Checks the frame at `pos`: `Ok(Some(end))` for a complete record with a good checksum,
/// `Ok(None)` if the data ends inside the frame, `Err(reason)` if it is complete but bad.
///
/// A payload must begin with the record kind and version bytes; checking them before the CRC
/// keeps resynchronization after damage cheap (almost no offset gets as far as a checksum).
fn check_frame(buf: &[u8], pos: usize) -> std::result::Result<Option<usize>, String> {
    if buf.len() - pos < RECORD_HEADER {
        return Ok(None);
    }
    let len = u32::from_le_bytes(buf[pos..pos + 4].try_into().expect("4 bytes")) as usize;
    let crc = u32::from_le_bytes(buf[pos + 4..pos + 8].try_into().expect("4 bytes"));
    let end = pos + RECORD_HEADER + len;
    if end > buf.len() {
        return Ok(None);
    }
    let payload = &buf[pos + RECORD_HEADER..end];
    if !payload.starts_with(&RECORD_PREFIX) {
        return Err("record does not start with the payload kind and version".into());
    }
    if crc32c::crc32c(payload) != crc {
        return Err("checksum mismatch".into());
    }
    Ok(Some(end))
}

/// Splits a segment's bytes into good records and damaged stretches. `valid` decides whether a
/// checksummed payload also decodes. After a bad record, the scan resynchronizes at the next
/// offset holding a complete, checksummed, decodable record.
pub(crate) fn scan_segment(
    buf: &[u8],
    valid: &mut dyn FnMut(&[u8]) -> std::result::Result<(), String>,
) -> (Vec<RecordSpan>, Vec<DamagedSpan>) {
    let mut records = Vec::new();
    let mut damage = Vec::new();
    if buf.len() < SEGMENT_MAGIC.len() || &buf[..SEGMENT_MAGIC.len()] != SEGMENT_MAGIC {
        if !buf.is_empty() {
            damage.push((
                0,
                buf.len(),
                WalDamageKind::BadHeader,
                "missing segment magic".into(),
            ));
        }
        return (records, damage);
    }
    let mut pos = SEGMENT_MAGIC.len();
    let good_at = |p: usize, valid: &mut dyn FnMut(&[u8]) -> std::result::Result<(), String>| {
        match check_frame(buf, p) {
            Ok(Some(end)) => match valid(&buf[p + RECORD_HEADER..end]) {
                Ok(()) => Ok(Some(end)),
                Err(e) => Err(format!("undecodable record: {e}")),
            },
            other => other,
        }
    };
    while pos < buf.len() {
        match good_at(pos, valid) {
            Ok(Some(end)) => {
                records.push(RecordSpan {
                    start: pos + RECORD_HEADER,
                    end,
                });
                pos = end;
            }
            result => {
                let incomplete = matches!(result, Ok(None));
                let reason = match result {
                    Err(reason) => reason,
                    _ => "segment ends inside a record (or a damaged length points past it)".into(),
                };
                // Look for the next good record after the bad one.
                let next = (pos + 1..buf.len()).find(|&p| matches!(good_at(p, valid), Ok(Some(_))));
                let end = next.unwrap_or(buf.len());
                let kind = if next.is_none() && (incomplete || buf[pos..].iter().all(|&b| b == 0)) {
                    WalDamageKind::TornTail
                } else {
                    WalDamageKind::CorruptRecord
                };
                damage.push((pos, end, kind, reason));
                pos = end;
            }
        }
    }
    (records, damage)
}

/// Saves bytes cut from a segment under `<wal>/quarantine/`.
pub(crate) fn quarantine(dir: &Path, segment: u64, offset: usize, bytes: &[u8]) -> Result<PathBuf> {
    let qdir = dir.join("quarantine");
    fs::create_dir_all(&qdir).map_err(Error::io(&qdir))?;
    let path = qdir.join(format!("{segment:020}-{offset}.bin"));
    fs::write(&path, bytes).map_err(Error::io(&path))?;
    Ok(path)
}

/// Rewrites a segment to hold only the given records (used after damage was cut out).
pub(crate) fn rewrite_segment(
    dir: &Path,
    n: u64,
    buf: &[u8],
    records: &[RecordSpan],
) -> Result<()> {
    let path = segment_path(dir, n);
    let tmp = dir.join(format!("{n:020}.wal.tmp"));
    let mut out = Vec::with_capacity(buf.len());
    out.extend_from_slice(SEGMENT_MAGIC);
    for r in records {
        out.extend_from_slice(&buf[r.start - RECORD_HEADER..r.end]);
    }
    let mut f = File::create(&tmp).map_err(Error::io(&tmp))?;
    f.write_all(&out).map_err(Error::io(&tmp))?;
    f.sync_all().map_err(Error::io(&tmp))?;
    fs::rename(&tmp, &path).map_err(Error::io(&path))?;
    sync_dir(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A payload as records carry them: kind and version bytes, then `body`.
    fn payload(body: &[u8]) -> Vec<u8> {
        let mut p = RECORD_PREFIX.to_vec();
        p.extend_from_slice(body);
        p
    }

    fn seg(records: &[&[u8]]) -> Vec<u8> {
        let mut buf = SEGMENT_MAGIC.to_vec();
        for r in records {
            frame_record(&payload(r), &mut buf);
        }
        buf
    }

    fn ok(_: &[u8]) -> std::result::Result<(), String> {
        Ok(())
    }

    #[test]
    fn finds_records_and_torn_tail() {
        let mut buf = seg(&[b"one", b"two"]);
        let full = buf.len();
        frame_record(&payload(b"three"), &mut buf);
        buf.truncate(buf.len() - 2);
        let (records, damage) = scan_segment(&buf, &mut ok);
        assert_eq!(records.len(), 2);
        assert_eq!(&buf[records[1].start + 2..records[1].end], b"two");
        assert_eq!(damage.len(), 1);
        assert_eq!(damage[0].0, full);
        assert_eq!(damage[0].2, WalDamageKind::TornTail);
    }

    #[test]
    fn resyncs_after_a_corrupt_record() {
        let mut buf = seg(&[b"alpha", b"bravo", b"charlie"]);
        // Flip a payload byte of "bravo".
        let at = SEGMENT_MAGIC.len() + RECORD_HEADER + 7 + RECORD_HEADER + 3;
        buf[at] ^= 0xff;
        let (records, damage) = scan_segment(&buf, &mut ok);
        let payloads: Vec<&[u8]> = records.iter().map(|r| &buf[r.start + 2..r.end]).collect();
        assert_eq!(payloads, vec![&b"alpha"[..], &b"charlie"[..]]);
        assert_eq!(damage.len(), 1);
        assert_eq!(damage[0].2, WalDamageKind::CorruptRecord);
    }

    #[test]
    fn a_damaged_length_does_not_cut_the_records_after_it() {
        let mut buf = seg(&[b"alpha", b"bravo", b"charlie"]);
        // The second record's length now points past the end of the segment.
        let at = SEGMENT_MAGIC.len() + RECORD_HEADER + 7;
        buf[at + 3] = 0x7f;
        let (records, damage) = scan_segment(&buf, &mut ok);
        let payloads: Vec<&[u8]> = records.iter().map(|r| &buf[r.start + 2..r.end]).collect();
        assert_eq!(payloads, vec![&b"alpha"[..], &b"charlie"[..]]);
        assert_eq!(damage.len(), 1);
        assert_eq!(damage[0].2, WalDamageKind::CorruptRecord);
    }

    #[test]
    fn bad_header_is_damage() {
        let (records, damage) = scan_segment(b"garbage!garbage", &mut ok);
        assert!(records.is_empty());
        assert_eq!(damage[0].2, WalDamageKind::BadHeader);
    }
}
