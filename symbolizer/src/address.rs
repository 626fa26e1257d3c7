//! Runtime address -> ELF virtual address: [`MappingInfo`] (what a profile records of a
//! mapping), [`LoadSegments`] (the object's `PT_LOAD` program headers) and [`elf_address`].
//!
//! A profile's address is where the instruction was in the process; symbol tables and DWARF
//! speak of the link-time virtual address. The mapping (start, limit, file offset) says which
//! file offset `memory_start` holds, so the address's file offset is
//! `address - memory_start + file_offset`, and the `PT_LOAD` segment holding that offset maps
//! it to `offset - p_offset + p_vaddr`. The same formula serves position-independent objects
//! (loaded anywhere) and fixed-address executables (where it returns the address unchanged),
//! and mappings that start below the segment's unaligned `p_offset` (the kernel maps whole
//! pages).

use object::read::elf::{FileHeader, ProgramHeader};
use object::{FileKind, ReadRef};

use crate::error::{Error, Result};

/// One mapping of a file into a process, as profiles record it (pprof's `Mapping`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct MappingInfo {
    /// First address of the mapping in the process.
    pub memory_start: u64,
    /// First address past the mapping.
    pub memory_limit: u64,
    /// File offset mapped at `memory_start` (page aligned).
    pub file_offset: u64,
}

/// One `PT_LOAD` program header.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LoadSegment {
    /// `p_offset`: where the segment starts in the file.
    pub offset: u64,
    /// `p_filesz`: its size in the file.
    pub file_size: u64,
    /// `p_vaddr`: its link-time virtual address.
    pub vaddr: u64,
    /// `p_memsz`: its size in memory (with `.bss`).
    pub mem_size: u64,
    /// Whether it is executable (`PF_X`).
    pub executable: bool,
}

impl LoadSegment {
    /// Whether the segment's bytes in the file hold file offset `offset`.
    pub fn holds(&self, offset: u64) -> bool {
        self.offset <= offset && offset - self.offset < self.file_size
    }
}

/// The `PT_LOAD` segments of an ELF object. A debug file written by
/// `objcopy --only-keep-debug` keeps the binary's program headers, so either serves.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LoadSegments(pub Vec<LoadSegment>);

impl LoadSegments {
    /// Reads the `PT_LOAD` headers of an ELF file (32 or 64 bit, either byte order).
    pub fn parse(data: &[u8]) -> Result<Self> {
        Self::parse_from(data)
    }

    /// Reads the headers through any [`ReadRef`] (e.g. [`object::ReadCache`] over a file, so
    /// only the headers are read).
    pub fn parse_from<'d, R: ReadRef<'d>>(data: R) -> Result<Self> {
        let not_elf = |reason: String| Error::NotElf {
            what: "object".into(),
            reason,
        };
        match FileKind::parse(data).map_err(|e| not_elf(e.to_string()))? {
            FileKind::Elf32 => {
                Self::parse_elf::<object::elf::FileHeader32<object::Endianness>, R>(data)
            }
            FileKind::Elf64 => {
                Self::parse_elf::<object::elf::FileHeader64<object::Endianness>, R>(data)
            }
            other => return Err(not_elf(format!("a {other:?} file"))),
        }
        .map_err(|e| not_elf(e.to_string()))
    }

    fn parse_elf<'d, Elf: FileHeader<Endian = object::Endianness>, R: ReadRef<'d>>(
        data: R,
    ) -> std::result::Result<Self, object::Error> {
        let header = Elf::parse(data)?;
        let endian = header.endian()?;
        let segments = header
            .program_headers(endian, data)?
            .iter()
            .filter(|p| p.p_type(endian) == object::elf::PT_LOAD)
            .map(|p| LoadSegment {
                offset: p.p_offset(endian).into(),
                file_size: p.p_filesz(endian).into(),
                vaddr: p.p_vaddr(endian).into(),
                mem_size: p.p_memsz(endian).into(),
                executable: p.p_flags(endian) & object::elf::PF_X != 0,
            })
            .collect();
        Ok(LoadSegments(segments))
    }

    /// The virtual address a mapping of file bytes `[offset, offset + len)` gives its first
    /// byte, through the segment the mapping shows most of (an executable one first): a
    /// mapping starts at a page boundary, which may lie in the previous segment's bytes when
    /// the linker does not align segments to pages in the file (lld), so the segment holding
    /// `offset` itself can be the wrong one.
    pub fn mapping_start_vaddr(&self, offset: u64, len: u64) -> Option<u64> {
        let end = offset.saturating_add(len);
        self.0
            .iter()
            .map(|s| {
                let overlap = end
                    .min(s.offset + s.file_size)
                    .saturating_sub(offset.max(s.offset));
                (s, overlap)
            })
            .filter(|(_, overlap)| *overlap > 0)
            .max_by_key(|(s, overlap)| (s.executable, *overlap))
            .map(|(s, _)| offset.wrapping_sub(s.offset).wrapping_add(s.vaddr))
    }

    /// The virtual address of a file offset: through the segment whose file bytes hold it.
    pub fn offset_to_vaddr(&self, offset: u64) -> Option<u64> {
        self.0
            .iter()
            .find(|s| s.holds(offset))
            .map(|s| offset - s.offset + s.vaddr)
    }
}

/// The ELF virtual address of `runtime_address` in a process that mapped the object as
/// `mapping`; `None` when the address is outside the mapping or no `PT_LOAD` segment holds
/// its file offset (e.g. anonymous memory following the file).
pub fn elf_address(
    runtime_address: u64,
    mapping: &MappingInfo,
    segments: &LoadSegments,
) -> Option<u64> {
    if runtime_address < mapping.memory_start
        || (mapping.memory_limit > mapping.memory_start && runtime_address >= mapping.memory_limit)
    {
        return None;
    }
    if segments
        .0
        .iter()
        .any(|s| s.executable && s.file_size == 0 && s.mem_size > 0)
    {
        return debug_file_address(runtime_address - mapping.memory_start, mapping, segments);
    }
    let offset = (runtime_address - mapping.memory_start).checked_add(mapping.file_offset)?;
    // The segment whose file bytes hold the offset; executable segments first, since text is
    // what profiles point into and segments of some linkers share a page.
    let holds = |s: &&LoadSegment| s.holds(offset);
    let segment = segments
        .0
        .iter()
        .filter(|s| s.executable)
        .find(holds)
        .or_else(|| segments.0.iter().find(holds))
        .or_else(|| {
            // Offsets past the file bytes (`.bss`) or in the page below an unaligned
            // segment: the segment the mapping's own offset falls in, page aligned.
            segments.0.iter().find(|s| {
                let aligned = s.offset & !0xfff;
                aligned <= mapping.file_offset
                    && mapping.file_offset < s.offset.saturating_add(s.mem_size.max(s.file_size))
            })
        })?;
    match offset.checked_sub(segment.offset) {
        Some(into) => segment.vaddr.checked_add(into),
        None => segment.vaddr.checked_sub(segment.offset - offset),
    }
}

/// [`elf_address`] through the segments of a debug file (`objcopy --only-keep-debug`), which
/// keep their addresses but not their file offsets (`p_offset` 0, `p_filesz` 0). Each
/// segment's offset is taken to be its page's distance from the first segment's page, as GNU ld
/// and lld lay files out; the mapping (which starts at a segment's first page, as the kernel
/// maps them) is placed at the segment whose offset page is the mapping's offset, else at the
/// executable one.
fn debug_file_address(delta: u64, mapping: &MappingInfo, segments: &LoadSegments) -> Option<u64> {
    let first_page = segments.0.iter().map(|s| s.vaddr & !0xfff).min()?;
    let page_of = |s: &LoadSegment| s.vaddr & !0xfff;
    let segment = segments
        .0
        .iter()
        .find(|s| page_of(s) - first_page == mapping.file_offset)
        .or_else(|| segments.0.iter().find(|s| s.executable))?;
    let vaddr = page_of(segment).checked_add(delta)?;
    segments
        .0
        .iter()
        .any(|s| s.vaddr <= vaddr && vaddr - s.vaddr < s.mem_size)
        .then_some(vaddr)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_file_segments_without_offsets() {
        // `objcopy --only-keep-debug` of a gcc PIE: offsets and file sizes of the code and data
        // segments are gone, addresses kept.
        let debug = |vaddr, mem_size, executable| LoadSegment {
            offset: 0,
            file_size: 0,
            vaddr,
            mem_size,
            executable,
        };
        let segs = LoadSegments(vec![
            LoadSegment {
                file_size: 0x39c,
                ..debug(0, 0x618, false)
            },
            debug(0x1000, 0x19d, true),
            debug(0x2000, 0xf8, false),
            LoadSegment {
                offset: 0xdd0,
                ..debug(0x3dd0, 0x250, false)
            },
        ]);
        // The text segment's own mapping (offset 0x1000), and a mapping of the whole file.
        let text = MappingInfo {
            memory_start: 0x5555_5555_5000,
            memory_limit: 0x5555_5555_6000,
            file_offset: 0x1000,
        };
        assert_eq!(elf_address(0x5555_5555_5139, &text, &segs), Some(0x1139));
        let whole = MappingInfo {
            memory_start: 0x5555_5555_4000,
            memory_limit: 0x5555_5555_9000,
            file_offset: 0,
        };
        assert_eq!(elf_address(0x5555_5555_5139, &whole, &segs), Some(0x1139));
        // Past every segment: none.
        assert_eq!(elf_address(0x5555_5555_8f00, &whole, &segs), None);
        // A non-PIE executable's debug file (first segment at 0x400000).
        let segs = LoadSegments(vec![
            debug(0x40_0000, 0x4d0, false),
            debug(0x40_1000, 0x1a5, true),
        ]);
        let m = MappingInfo {
            memory_start: 0x40_1000,
            memory_limit: 0x40_2000,
            file_offset: 0x1000,
        };
        assert_eq!(elf_address(0x40_1123, &m, &segs), Some(0x40_1123));
    }

    fn seg(offset: u64, size: u64, vaddr: u64, executable: bool) -> LoadSegment {
        LoadSegment {
            offset,
            file_size: size,
            vaddr,
            mem_size: size,
            executable,
        }
    }

    #[test]
    fn pie_text_segment() {
        // A typical PIE: r-- at 0, r-x at 0x1000 (vaddr 0x1000), r-- after.
        let segs = LoadSegments(vec![
            seg(0, 0x638, 0, false),
            seg(0x1000, 0x1d5, 0x1000, true),
            seg(0x2000, 0x100, 0x2000, false),
        ]);
        let m = MappingInfo {
            memory_start: 0x5555_5555_5000,
            memory_limit: 0x5555_5555_6000,
            file_offset: 0x1000,
        };
        assert_eq!(elf_address(0x5555_5555_5139, &m, &segs), Some(0x1139));
        assert_eq!(elf_address(0x5555_5555_4fff, &m, &segs), None);
        assert_eq!(elf_address(0x5555_5555_6000, &m, &segs), None);
    }

    #[test]
    fn non_pie_executable_keeps_its_address() {
        let segs = LoadSegments(vec![
            seg(0, 0x4d0, 0x400000, false),
            seg(0x1000, 0x1a5, 0x401000, true),
        ]);
        let m = MappingInfo {
            memory_start: 0x401000,
            memory_limit: 0x402000,
            file_offset: 0x1000,
        };
        assert_eq!(elf_address(0x401123, &m, &segs), Some(0x401123));
    }

    #[test]
    fn unaligned_segment_offset() {
        // lld-style: r-x segment at file offset 0x1234, vaddr 0x201234; the kernel maps the
        // page from file offset 0x1000.
        let segs = LoadSegments(vec![
            seg(0, 0x1234, 0x200000, false),
            seg(0x1234, 0x5000, 0x201234, true),
        ]);
        let m = MappingInfo {
            memory_start: 0x7f00_0000_1000,
            memory_limit: 0x7f00_0000_7000,
            file_offset: 0x1000,
        };
        assert_eq!(elf_address(0x7f00_0000_1300, &m, &segs), Some(0x201300));
        // The head of the page, before the segment: in the r-- segment's bytes.
        assert_eq!(elf_address(0x7f00_0000_1010, &m, &segs), Some(0x201010));
        // Without that segment, still placed by the executable one's page.
        let text_only = LoadSegments(vec![segs.0[1]]);
        assert_eq!(
            elf_address(0x7f00_0000_1010, &m, &text_only),
            Some(0x201010)
        );
    }
}
