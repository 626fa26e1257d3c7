//! Python frames as the BPF walker records them ([`PythonFrameRef`]: a code object's address
//! and the instruction index, tagged in the user stack) and what they name ([`CodeInfo`]:
//! qualified name, file, line), read from the process's memory (`/proc/<pid>/mem`) and cached
//! per process ([`PythonCode`]).

use std::collections::HashMap;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use crate::python::interpreter::PyOffsets;

/// Bit 63 of a user-stack entry: a Python frame, not an instruction address.
pub const PY_FRAME_TAG: u64 = 1 << 63;
const CODE_BITS: u32 = 47;

/// A Python frame in a user stack: `PY_FRAME_TAG | index << 47 | code object address`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PythonFrameRef {
    /// The code object's address.
    pub code: u64,
    /// The index (in 2-byte code units) of the instruction running, saturated at 0xffff.
    pub index: u32,
}

impl PythonFrameRef {
    /// Decodes a user-stack entry; `None` for an instruction address.
    pub fn decode(entry: u64) -> Option<PythonFrameRef> {
        (entry & PY_FRAME_TAG != 0).then_some(PythonFrameRef {
            code: entry & ((1 << CODE_BITS) - 1),
            index: ((entry >> CODE_BITS) & 0xffff) as u32,
        })
    }
}

/// What a code object says of itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CodeInfo {
    /// `co_qualname` (`Class.method`, `outer.<locals>.inner`).
    pub qualname: Arc<str>,
    /// `co_filename`.
    pub filename: Arc<str>,
    /// `co_firstlineno`.
    pub first_line: u32,
    /// `co_linetable` (3.11+ location table).
    pub linetable: Vec<u8>,
}

impl CodeInfo {
    /// The source line of instruction `index` (code units), from the location table;
    /// the first line when the table says nothing.
    pub fn line(&self, index: u32) -> u32 {
        line_of(&self.linetable, self.first_line, index).unwrap_or(self.first_line)
    }
}

/// Decodes a 3.11+ location table up to instruction `index`: its line.
pub fn line_of(table: &[u8], first_line: u32, index: u32) -> Option<u32> {
    let mut line = i64::from(first_line);
    let mut at = 0usize; // code units covered so far
    let mut i = 0usize;
    while i < table.len() {
        let head = table[i];
        if head & 0x80 == 0 {
            return None; // not at an entry start: a corrupt table
        }
        let code = (head >> 3) & 15;
        let units = usize::from(head & 7) + 1;
        i += 1;
        let delta = match code {
            15 => 0,
            13 | 14 => {
                let (v, n) = varint(&table[i..])?;
                i += n;
                if code == 14 {
                    // end line delta, start column, end column
                    for _ in 0..3 {
                        i += varint(&table[i..])?.1;
                    }
                }
                if v & 1 == 1 {
                    -((v >> 1) as i64)
                } else {
                    (v >> 1) as i64
                }
            }
            10..=12 => {
                i += 2;
                i64::from(code - 10)
            }
            _ => {
                i += 1;
                0
            }
        };
        line += delta;
        at += units;
        if at > index as usize {
            return u32::try_from(line).ok();
        }
    }
    u32::try_from(line).ok()
}

/// A location-table varint (6 bits per byte, bit 6 continues): (value, bytes read).
fn varint(b: &[u8]) -> Option<(u64, usize)> {
    let mut v = 0u64;
    for (n, &byte) in b.iter().enumerate().take(10) {
        v |= u64::from(byte & 63) << (6 * n);
        if byte & 64 == 0 {
            return Some((v, n + 1));
        }
    }
    None
}

/// Code objects read from processes' memory, by (pid, address). Entries of a process go with
/// it ([`PythonCode::forget_process`]); the cache is cleared each interval
/// ([`PythonCode::clear`]) so a freed and reused address is not named after its old owner
/// for long.
#[derive(Debug, Default)]
pub struct PythonCode {
    cache: HashMap<(u32, u64), Option<Arc<CodeInfo>>>,
}

/// Longest name or file name read.
const MAX_STR: usize = 1024;
/// Longest location table read.
const MAX_LINETABLE: usize = 64 * 1024;

impl PythonCode {
    /// The code object at `code` in process `pid` (read now if it was not).
    pub fn get(&mut self, pid: u32, code: u64, o: &PyOffsets) -> Option<Arc<CodeInfo>> {
        self.cache
            .entry((pid, code))
            .or_insert_with(|| read_code(pid, code, o).map(Arc::new))
            .clone()
    }

    /// Forgets a process's code objects.
    pub fn forget_process(&mut self, pid: u32) {
        self.cache.retain(|(p, _), _| *p != pid);
    }

    /// Forgets everything.
    pub fn clear(&mut self) {
        self.cache.clear();
    }
}

fn read_code(pid: u32, code: u64, o: &PyOffsets) -> Option<CodeInfo> {
    let mem = std::fs::File::open(format!("/proc/{pid}/mem")).ok()?;
    let word = |addr: u64| -> Option<u64> {
        let mut b = [0u8; 8];
        mem.read_exact_at(&mut b, addr).ok()?;
        Some(u64::from_le_bytes(b))
    };
    let first_line = word(code + u64::from(o.code_firstlineno))? as u32;
    let qualname = read_str(&mem, word(code + u64::from(o.code_qualname))?, o)?;
    let filename = read_str(&mem, word(code + u64::from(o.code_filename))?, o)?;
    let table = word(code + u64::from(o.code_linetable))?;
    // bytes: ob_size at 0x10, ob_sval at 0x20.
    let len = (word(table + 0x10)? as usize).min(MAX_LINETABLE);
    let mut linetable = vec![0u8; len];
    mem.read_exact_at(&mut linetable, table + 0x20).ok()?;
    Some(CodeInfo {
        qualname: qualname.into(),
        filename: filename.into(),
        first_line,
        linetable,
    })
}

/// A `str` object's text: compact ASCII or compact UCS-1/2/4 (where the characters start
/// depends on the version: [`PyOffsets::str_ascii_data`], [`PyOffsets::str_compact_data`]).
fn read_str(mem: &std::fs::File, obj: u64, o: &PyOffsets) -> Option<String> {
    let mut head = [0u8; 0x28];
    mem.read_exact_at(&mut head, obj).ok()?;
    let length = (u64::from_le_bytes(head[0x10..0x18].try_into().ok()?) as usize).min(MAX_STR);
    let state = u32::from_le_bytes(head[0x20..0x24].try_into().ok()?);
    // state: interned:2, kind:3, compact:1, ascii:1
    let (kind, compact, ascii) = ((state >> 2) & 7, state >> 5 & 1, state >> 6 & 1);
    if compact == 0 {
        return None;
    }
    if ascii == 1 {
        let mut b = vec![0u8; length];
        mem.read_exact_at(&mut b, obj + u64::from(o.str_ascii_data))
            .ok()?;
        return String::from_utf8(b).ok();
    }
    let width = match kind {
        1 | 2 | 4 => kind as usize,
        _ => return None,
    };
    let mut b = vec![0u8; length * width];
    mem.read_exact_at(&mut b, obj + u64::from(o.str_compact_data))
        .ok()?;
    Some(
        b.chunks(width)
            .map(|c| {
                let mut v = [0u8; 4];
                v[..width].copy_from_slice(c);
                char::from_u32(u32::from_le_bytes(v)).unwrap_or('\u{fffd}')
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_refs_round_trip() {
        let entry = PY_FRAME_TAG | (123u64 << CODE_BITS) | 0x7f12_3456_7890;
        assert_eq!(
            PythonFrameRef::decode(entry),
            Some(PythonFrameRef {
                code: 0x7f12_3456_7890,
                index: 123
            })
        );
        assert_eq!(PythonFrameRef::decode(0x0040_1000), None);
    }

    #[test]
    fn location_table_lines() {
        // Entries: 2 units no-column line+1 (code 13, delta +1 = svarint 2); 1 unit one-line
        // form +2 (code 12); 3 units short form (same line); 1 unit long form line -2
        // (svarint 5), end line 0, columns 0 0.
        let table = [
            0x80 | (13 << 3) | 1,
            2,
            0x80 | (12 << 3),
            0,
            0,
            0x80 | (3 << 3) | 2,
            0,
            0x80 | (14 << 3),
            5,
            0,
            0,
            0,
        ];
        let line = |i| line_of(&table, 10, i);
        assert_eq!(line(0), Some(11));
        assert_eq!(line(1), Some(11));
        assert_eq!(line(2), Some(13));
        assert_eq!(line(3), Some(13));
        assert_eq!(line(5), Some(13));
        assert_eq!(line(6), Some(11));
    }
}
