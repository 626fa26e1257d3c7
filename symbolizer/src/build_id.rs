//! [`BuildId`]: an ELF file's build id by the collector's rules (README, "build id"). The
//! collector (`strata-collector-ebpf`) labels each mapping with it and the symbolizer applies
//! it to a file found on disk or uploaded, to match the file with the mappings of the
//! profiles.
//!
//! Every readable ELF file gets a non-empty build id, the first of these that applies
//! ([`BuildIdKind`]):
//!
//! 1. **GNU** — the `NT_GNU_BUILD_ID` note (name `GNU`, type 3, in `.note.gnu.build-id`):
//!    its bytes in lowercase hex, e.g. `c89b11207f6479603b0d49bf291c092c2b719293` (40 digits
//!    for the usual SHA-1 id; the length is whatever the linker wrote).
//! 2. **Go** — the Go build id note (name `Go`, type 4, in `.note.go.buildid`, written by the
//!    Go linker; `go build` writes no GNU note): its text as is, exactly what
//!    `go tool buildid <file>` prints, e.g.
//!    `foh3mEXu7BLZjsN9pOwG/kATcXlYVCDEFouRMQed_/WwRFB1hPo9LBkekthSPG/x8hMC8emW2cCjXD0_1aY`
//!    (`/`-separated, never plain hex). Used only when there is no GNU note (a Go binary
//!    linked externally, e.g. with cgo, gets a GNU note from the external linker) and only
//!    when the note is UTF-8. It is looked for in the `PT_NOTE` segments, then in the
//!    `SHT_NOTE` sections (a file whose section headers were removed still has it).
//! 3. **File hash** — neither note: the OpenTelemetry profiling `htlhash`, SHA-256 over the
//!    first 4,096 bytes of the file, its last 4,096 bytes (the two overlap, unpadded, in a
//!    file under 8 KiB; the whole file for both in one under 4 KiB) and its length as a
//!    big-endian u64, truncated to the first 16 bytes, in lowercase hex (32 digits), e.g.
//!    `600dcafe4a110000f2bf38c493f5fb92`. It depends on the file's bytes, so a separate
//!    debug file (`objcopy --only-keep-debug`) does not match it: upload the mapped file
//!    itself.
//!
//! The OpenTelemetry eBPF profiler reports the same three values (GNU in hex, Go as text,
//! `htlhash`); Parca's agent before it fell back to the Go build id too (hex-encoding it)
//! and to an xxHash of the whole `.text` section, read in full; the `htlhash` reads 8 KiB
//! whatever the file's size.

use object::elf::{ELF_NOTE_GO, NT_GO_BUILD_ID};
use object::read::elf::{ElfFile, FileHeader, Note, ProgramHeader as _, SectionHeader as _};
use object::{Object, ReadRef};

/// Bytes hashed at each end of a file for a [`BuildIdKind::FileHash`] id.
const FILE_HASH_EDGE_BYTES: u64 = 4096;

/// Which rule gave a [`BuildId`] (the module doc gives the formats).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
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
    /// The build id of an ELF file (its bytes, or an [`object::ReadCache`] over it, so only
    /// the headers, the notes and the first and last 4 KiB are read); `None` when it is not
    /// ELF.
    pub fn of<'d, R: ReadRef<'d>>(data: R) -> Option<BuildId> {
        Self::of_parsed(&object::File::parse(data).ok()?, data)
    }

    /// The build id of `file`, already parsed from `data` (for a caller that reads more of
    /// the file than its id); `None` when `data` cannot be read for the file hash.
    pub fn of_parsed<'d, R: ReadRef<'d>>(file: &object::File<'d, R>, data: R) -> Option<BuildId> {
        if let Some(gnu) = file.build_id().ok().flatten().filter(|b| !b.is_empty()) {
            return Some(BuildId {
                id: hex(gnu),
                kind: BuildIdKind::Gnu,
            });
        }
        let go = match file {
            object::File::Elf32(f) => go_note(f),
            object::File::Elf64(f) => go_note(f),
            _ => None,
        };
        if let Some(id) = go {
            return Some(BuildId {
                id: id.to_owned(),
                kind: BuildIdKind::Go,
            });
        }
        Some(BuildId {
            id: file_hash(data)?,
            kind: BuildIdKind::FileHash,
        })
    }
}

/// The text of the first Go build id note (name `Go`, type 4) in a `PT_NOTE` segment or,
/// failing that, an `SHT_NOTE` section; `None` when there is none or it is empty or not UTF-8.
fn go_note<'d, Elf: FileHeader, R: ReadRef<'d>>(file: &ElfFile<'d, Elf, R>) -> Option<&'d str> {
    let (endian, data) = (file.endian(), file.data());
    let is_go =
        |note: &Note<'d, Elf>| note.name() == ELF_NOTE_GO && note.n_type(endian) == NT_GO_BUILD_ID;
    let segments = file
        .elf_program_headers()
        .iter()
        .filter_map(|p| p.notes(endian, data).ok().flatten());
    let sections = file
        .elf_section_table()
        .iter()
        .filter_map(|s| s.notes(endian, data).ok().flatten());
    for mut notes in segments.chain(sections) {
        while let Ok(Some(note)) = notes.next() {
            if is_go(&note) {
                return std::str::from_utf8(note.desc())
                    .ok()
                    .filter(|id| !id.is_empty());
            }
        }
    }
    None
}

/// OpenTelemetry's `htlhash` of a file (its bytes, or an [`object::ReadCache`] over it): the
/// first 16 bytes of `SHA-256(file[..min(4096, len)] ‖ file[len - min(4096, len)..] ‖ u64 len
/// big-endian)` in lowercase hex; `None` when the file cannot be read.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_hash_of_small_and_empty_files() {
        // Under 4 KiB both ends are the whole file; the empty file hashes just its length.
        let small = b"\x7fELF tiny".as_slice();
        let mut input = small.to_vec();
        input.extend_from_slice(small);
        input.extend_from_slice(&(small.len() as u64).to_be_bytes());
        let digest = ring::digest::digest(&ring::digest::SHA256, &input);
        assert_eq!(file_hash(small).unwrap(), hex(&digest.as_ref()[..16]));
        // SHA-256 of eight zero bytes.
        assert_eq!(
            file_hash(&[][..]).unwrap(),
            "af5570f5a1810b7af78caf4bc70a660f"
        );
    }

    #[test]
    fn not_elf_has_no_build_id() {
        assert_eq!(BuildId::of(b"\x7fELF tiny".as_slice()), None);
        assert_eq!(BuildId::of(&[][..]), None);
    }
}
