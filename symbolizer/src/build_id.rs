//! [`BuildId`]: an ELF file's build id by the collector's rules (README, "build id"): the GNU
//! note in lowercase hex, else the Go build id note as text, else the OpenTelemetry `htlhash`
//! of the file. Used to check that a binary found on disk is the one profiled.

use object::read::elf::{ElfFile, FileHeader, SectionHeader as _};
use object::{Object, ReadRef};

/// Bytes hashed at each end of a file for a [`BuildIdKind::FileHash`] id.
const FILE_HASH_EDGE_BYTES: u64 = 4096;

/// Which rule gave a [`BuildId`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BuildIdKind {
    /// `NT_GNU_BUILD_ID`, in lowercase hex.
    Gnu,
    /// The Go build id note (name `Go`, type 4), as `go tool buildid` prints it.
    Go,
    /// Neither note: the `htlhash` of the file.
    FileHash,
}

/// An ELF file's build id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BuildId {
    /// The id as profiles carry it.
    pub id: String,
    /// Which rule gave it.
    pub kind: BuildIdKind,
}

impl BuildId {
    /// The build id of an ELF file (its bytes, or an [`object::ReadCache`] over it); `None`
    /// when it is not ELF.
    pub fn of<'d, R: ReadRef<'d>>(data: R) -> Option<BuildId> {
        let file = object::File::parse(data).ok()?;
        if let Some(gnu) = file.build_id().ok().flatten().filter(|b| !b.is_empty()) {
            return Some(BuildId {
                id: hex(gnu),
                kind: BuildIdKind::Gnu,
            });
        }
        let go = match &file {
            object::File::Elf32(f) => go_note(f),
            object::File::Elf64(f) => go_note(f),
            _ => None,
        };
        if let Some(id) = go {
            return Some(BuildId {
                id,
                kind: BuildIdKind::Go,
            });
        }
        Some(BuildId {
            id: file_hash(data)?,
            kind: BuildIdKind::FileHash,
        })
    }
}

/// The Go build id note's text, from any note section.
fn go_note<'d, Elf: FileHeader, R: ReadRef<'d>>(file: &ElfFile<'d, Elf, R>) -> Option<String> {
    let endian = file.endian();
    for section in file.elf_section_table().iter() {
        let Ok(Some(mut notes)) = section.notes(endian, file.data()) else {
            continue;
        };
        while let Ok(Some(note)) = notes.next() {
            if note.name() == object::elf::ELF_NOTE_GO
                && note.n_type(endian) == object::elf::NT_GO_BUILD_ID
            {
                return std::str::from_utf8(note.desc())
                    .ok()
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned);
            }
        }
    }
    None
}

/// OpenTelemetry's `htlhash`: the first 16 bytes of SHA-256(first 4 KiB ‖ last 4 KiB ‖
/// length as big-endian u64), in lowercase hex.
fn file_hash<'d, R: ReadRef<'d>>(data: R) -> Option<String> {
    let len = data.len().ok()?;
    let edge = len.min(FILE_HASH_EDGE_BYTES);
    let mut sha = ring::digest::Context::new(&ring::digest::SHA256);
    sha.update(data.read_bytes_at(0, edge).ok()?);
    sha.update(data.read_bytes_at(len - edge, edge).ok()?);
    sha.update(&len.to_be_bytes());
    Some(hex(&sha.finish().as_ref()[..16]))
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}
