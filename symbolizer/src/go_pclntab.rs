//! [`GoPclntab`]: function, file and line from Go's `.gopclntab`, the table the Go runtime
//! itself symbolizes with, kept even by `go build -ldflags='-s -w'` (which drops the symbol
//! table and DWARF).
//!
//! Read are the layouts of Go 1.16-1.17 (magic `0xfffffffa`), 1.18-1.19 (`0xfffffff0`) and
//! 1.20 and later (`0xfffffff1`); older binaries (`0xfffffffb`) get no pclntab. From Go 1.18
//! on, frames are expanded into inlined calls through the inline trees ([`InlineTree`]), as
//! the Go runtime does: innermost the inlined function with the instruction's file and line,
//! then each caller with the line of its call. Without the trees (Go 1.16-1.17, or
//! `moduledata` not found) an address in inlined code is named after the function it was
//! inlined into, with the inlined code's file and line — what `go tool addr2line` prints.

mod inline_tree;

use object::{Object, ObjectSection};

use self::inline_tree::InlineTree;
use crate::debug_object::section_data;

use crate::demangle::demangle;
use crate::frame::Frame;

/// `PCDATA_InlTreeIndex`: the pc-value table of the inline tree index at each pc.
const PCDATA_INL_TREE_INDEX: u32 = 2;
/// `FUNCDATA_InlTree`: the funcdata slot of the inline tree.
const FUNCDATA_INL_TREE: u8 = 3;
/// Frames kept per address at most.
const MAX_INLINE_DEPTH: usize = 256;

const GO116_MAGIC: u32 = 0xffff_fffa;
const GO118_MAGIC: u32 = 0xffff_fff0;
const GO120_MAGIC: u32 = 0xffff_fff1;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Version {
    Go116,
    Go118,
    Go120,
}

/// A parsed `.gopclntab` (its bytes copied out of the file).
pub(crate) struct GoPclntab {
    data: Vec<u8>,
    version: Version,
    little_endian: bool,
    /// Instruction size quantum (1 on x86, 4 on arm64).
    quantum: u64,
    ptr_size: usize,
    nfunc: usize,
    /// Added to function entry offsets (Go 1.18+).
    text_start: u64,
    funcname_offset: usize,
    cu_offset: usize,
    filetab_offset: usize,
    pctab_offset: usize,
    /// Start of the function table (`functab`).
    pcln_offset: usize,
    /// Inline trees, when found.
    inline: Option<InlineTree>,
}

/// A function's entry in the table.
struct Func {
    /// Offset of the `_func` record in `data`.
    offset: usize,
    entry: u64,
}

impl GoPclntab {
    /// The file's pclntab; `None` when it has none or of an unknown layout.
    pub(crate) fn read(file: &object::File<'_>, limit: u64) -> Option<Self> {
        let section = file.section_by_name(".gopclntab")?;
        let data = section_data(&section, limit)?.into_owned();
        let mut table = Self::parse(data, file.is_little_endian())?;
        if table.version != Version::Go116 {
            table.inline = InlineTree::find(
                file,
                section.address(),
                table.funcname_offset as u64,
                table.version == Version::Go120,
                limit,
            );
        }
        Some(table)
    }

    fn parse(data: Vec<u8>, little_endian: bool) -> Option<Self> {
        let mut table = GoPclntab {
            data,
            version: Version::Go120,
            little_endian,
            quantum: 1,
            ptr_size: 8,
            nfunc: 0,
            text_start: 0,
            funcname_offset: 0,
            cu_offset: 0,
            filetab_offset: 0,
            pctab_offset: 0,
            pcln_offset: 0,
            inline: None,
        };
        table.version = match table.u32(0)? {
            GO116_MAGIC => Version::Go116,
            GO118_MAGIC => Version::Go118,
            GO120_MAGIC => Version::Go120,
            _ => return None,
        };
        let (quantum, ptr_size) = (*table.data.get(6)?, *table.data.get(7)?);
        if table.data.get(4..6)? != [0, 0]
            || !matches!(quantum, 1 | 2 | 4)
            || !matches!(ptr_size, 4 | 8)
        {
            return None;
        }
        table.quantum = quantum.into();
        table.ptr_size = ptr_size.into();
        let word = |i: usize| table.word(8 + i * table.ptr_size);
        let nfunc = usize::try_from(word(0)?).ok()?;
        let (text_start, field) = match table.version {
            Version::Go116 => (0, 2),
            _ => (word(2)?, 3),
        };
        let offset = |i: usize| usize::try_from(word(field + i)?).ok();
        let offsets = [offset(0)?, offset(1)?, offset(2)?, offset(3)?, offset(4)?];
        table.nfunc = nfunc;
        table.text_start = text_start;
        [
            table.funcname_offset,
            table.cu_offset,
            table.filetab_offset,
            table.pctab_offset,
            table.pcln_offset,
        ] = offsets;
        // The function table must hold nfunc + 1 entries.
        let entry_size = table.functab_entry_size();
        let end = table
            .nfunc
            .checked_add(1)?
            .checked_mul(entry_size)?
            .checked_add(table.pcln_offset)?;
        (table.nfunc > 0 && end <= table.data.len()).then_some(table)
    }

    fn functab_entry_size(&self) -> usize {
        match self.version {
            Version::Go116 => 2 * self.ptr_size,
            _ => 8,
        }
    }

    /// The frames of `address`, innermost first: the inlined calls at it (when the inline
    /// trees are known), then its function, each with its file and line.
    pub(crate) fn frames(&self, address: u64) -> Vec<Frame> {
        let Some(func) = self.find_func(address) else {
            return Vec::new();
        };
        let mut frames = Vec::new();
        let mut pc = address;
        let tree = self.inline.as_ref().zip(self.inline_tree_offset(&func));
        // Each step moves to the call site in the caller; bounded against cyclic trees.
        for _ in 0..MAX_INLINE_DEPTH {
            let call = tree.and_then(|(inline, offset)| {
                let index =
                    self.pc_value(self.pcdata(&func, PCDATA_INL_TREE_INDEX)?, func.entry, pc)?;
                if index < 0 {
                    return None;
                }
                inline.call(offset, index)
            });
            let Some(call) = call else {
                frames.extend(self.frame(&func, pc, None));
                break;
            };
            let Some(frame) = self.frame(&func, pc, Some((call.name_offset, call.start_line)))
            else {
                break;
            };
            frames.push(frame);
            pc = func.entry.wrapping_add(u64::from(call.parent_pc));
        }
        frames
    }

    /// The frame at `pc` of `func`, or of the inlined function `(name offset, start line)`.
    fn frame(&self, func: &Func, pc: u64, inlined: Option<(u32, i32)>) -> Option<Frame> {
        let (name_offset, start_line) = match inlined {
            Some((name, start)) => (name as usize, start),
            None => (
                usize::try_from(self.func_i32(func, 1)?).ok()?,
                match self.version {
                    Version::Go120 => self.func_i32(func, 9).unwrap_or(0),
                    _ => 0,
                },
            ),
        };
        let name = self.c_string(self.funcname_offset.checked_add(name_offset)?)?;
        let system_name = name.to_owned();
        let pcfile = self.func_u32(func, 5)?;
        let pcln = self.func_u32(func, 6)?;
        let line = self
            .pc_value(pcln, func.entry, pc)
            .filter(|l| *l > 0)
            .unwrap_or(0);
        let file = self
            .pc_value(pcfile, func.entry, pc)
            .and_then(|fileno| self.file_name(func, fileno))
            .unwrap_or_default();
        Some(Frame {
            function: demangle(&system_name),
            system_name,
            file: file.to_owned(),
            line: u32::try_from(line).unwrap_or(0),
            start_line: u32::try_from(start_line).unwrap_or(0),
        })
    }

    /// Size of the fixed part of a `_func` record (Go 1.18+), after which come the pcdata
    /// and funcdata offsets; its last byte is `nfuncdata`.
    fn func_header_size(&self) -> usize {
        match self.version {
            Version::Go120 => 44,
            _ => 40,
        }
    }

    /// The pc-value table offset of pcdata `index` of `func`.
    fn pcdata(&self, func: &Func, index: u32) -> Option<u32> {
        let npcdata = self.func_u32(func, 7)?;
        if index >= npcdata {
            return None;
        }
        let at = func
            .offset
            .checked_add(self.func_header_size() + 4 * index as usize)?;
        self.u32(at).filter(|&t| t != 0)
    }

    /// The funcdata offset (from `go:func.*`) of `func`'s inline tree.
    fn inline_tree_offset(&self, func: &Func) -> Option<u32> {
        let header = self.func_header_size();
        let nfuncdata = *self.data.get(func.offset.checked_add(header - 1)?)?;
        if FUNCDATA_INL_TREE >= nfuncdata {
            return None;
        }
        let npcdata = self.func_u32(func, 7)? as usize;
        let at = func
            .offset
            .checked_add(header)?
            .checked_add(npcdata.checked_mul(4)?)?
            .checked_add(4 * FUNCDATA_INL_TREE as usize)?;
        self.u32(at).filter(|&o| o != u32::MAX)
    }

    /// The function whose code holds `address`, by binary search of the function table.
    fn find_func(&self, address: u64) -> Option<Func> {
        let entry = |i: usize| self.functab_entry(i).map(|(entry, _)| entry);
        if address < entry(0)? || address >= entry(self.nfunc)? {
            return None;
        }
        // The last function whose entry is at or below the address.
        let (mut lo, mut hi) = (0, self.nfunc);
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if entry(mid)? <= address {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        let (entry, func_offset) = self.functab_entry(lo)?;
        let offset = self
            .pcln_offset
            .checked_add(usize::try_from(func_offset).ok()?)?;
        Some(Func { offset, entry })
    }

    /// (entry address, `_func` offset from the function table) of entry `i`.
    fn functab_entry(&self, i: usize) -> Option<(u64, u64)> {
        let at = self
            .pcln_offset
            .checked_add(i.checked_mul(self.functab_entry_size())?)?;
        match self.version {
            Version::Go116 => Some((self.word(at)?, self.word(at + self.ptr_size)?)),
            _ => Some((
                self.text_start.checked_add(self.u32(at)?.into())?,
                self.u32(at + 4)?.into(),
            )),
        }
    }

    /// Offset of 4-byte field `index` of a `_func` record (after the entry, which is a
    /// pointer in Go 1.16 and a u32 offset since 1.18).
    fn func_field(&self, func: &Func, index: usize) -> Option<usize> {
        let entry_size = match self.version {
            Version::Go116 => self.ptr_size,
            _ => 4,
        };
        func.offset.checked_add(entry_size + (index - 1) * 4)
    }

    /// Field `index` (1: nameoff, 5: pcfile, 6: pcln, 8: cuOffset, 9: startLine in 1.20+).
    fn func_u32(&self, func: &Func, index: usize) -> Option<u32> {
        self.u32(self.func_field(func, index)?)
    }

    fn func_i32(&self, func: &Func, index: usize) -> Option<i32> {
        self.func_u32(func, index).map(|v| v as i32)
    }

    /// The file name of file number `fileno` of the function's compilation unit.
    fn file_name(&self, func: &Func, fileno: i64) -> Option<&str> {
        let cu = self.func_u32(func, 8)? as usize;
        let index = cu.checked_add(usize::try_from(fileno).ok()?)?;
        let file_offset = self.u32(self.cu_offset.checked_add(index.checked_mul(4)?)?)?;
        if file_offset == u32::MAX {
            return None;
        }
        self.c_string(self.filetab_offset.checked_add(file_offset as usize)?)
    }

    /// The value of a pc-value table (`pcfile`, `pcln`) at `target`: pairs of a zig-zag
    /// value delta and a pc delta (in quanta), from value -1 at the entry.
    fn pc_value(&self, table: u32, entry: u64, target: u64) -> Option<i64> {
        if table == 0 {
            return None;
        }
        let mut at = self.pctab_offset.checked_add(table as usize)?;
        let (mut value, mut pc) = (-1i64, entry);
        let mut first = true;
        loop {
            let (uvdelta, n) = self.uvarint(at)?;
            at += n;
            if uvdelta == 0 && !first {
                return None;
            }
            let delta = if uvdelta & 1 != 0 {
                !((uvdelta >> 1) as i64)
            } else {
                (uvdelta >> 1) as i64
            };
            value = value.wrapping_add(delta);
            let (pcdelta, n) = self.uvarint(at)?;
            at += n;
            pc = pc.checked_add(pcdelta.checked_mul(self.quantum)?)?;
            if target < pc {
                return Some(value);
            }
            first = false;
        }
    }

    fn uvarint(&self, at: usize) -> Option<(u64, usize)> {
        let mut value = 0u64;
        for (i, &b) in self.data.get(at..)?.iter().take(10).enumerate() {
            value |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Some((value, i + 1));
            }
        }
        None
    }

    fn c_string(&self, at: usize) -> Option<&str> {
        let bytes = self.data.get(at..)?;
        let end = bytes.iter().position(|&b| b == 0)?;
        std::str::from_utf8(&bytes[..end]).ok()
    }

    fn u32(&self, at: usize) -> Option<u32> {
        let b: [u8; 4] = self.data.get(at..at.checked_add(4)?)?.try_into().ok()?;
        Some(if self.little_endian {
            u32::from_le_bytes(b)
        } else {
            u32::from_be_bytes(b)
        })
    }

    fn word(&self, at: usize) -> Option<u64> {
        if self.ptr_size == 4 {
            return self.u32(at).map(u64::from);
        }
        let b: [u8; 8] = self.data.get(at..at.checked_add(8)?)?.try_into().ok()?;
        Some(if self.little_endian {
            u64::from_le_bytes(b)
        } else {
            u64::from_be_bytes(b)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_and_truncated_headers_are_rejected() {
        assert!(GoPclntab::parse(vec![], true).is_none());
        assert!(GoPclntab::parse(vec![0xf1, 0xff, 0xff, 0xff, 0, 0, 1, 8], true).is_none());
        let mut header = vec![0xf1, 0xff, 0xff, 0xff, 0, 0, 1, 8];
        header.extend([0xffu8; 64]);
        assert!(GoPclntab::parse(header, true).is_none());
    }
}
