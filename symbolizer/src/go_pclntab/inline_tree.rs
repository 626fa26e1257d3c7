//! [`InlineTree`]: Go's inline trees (`FUNCDATA_InlTree`), which live in `go:func.*` (found
//! through the runtime's `moduledata`), not in the pclntab itself.
//!
//! `moduledata` starts with a pointer to the pclntab header followed by the `funcnametab`
//! slice; it is found by searching `.noptrdata` for those two words, and its `gofunc` field
//! (the base of funcdata offsets) read at its index for the Go version. Go 1.18-1.19 and 1.20+
//! are read; Go 1.16-1.17 (absolute funcdata pointers) are not.

use object::{Object, ObjectSection};

use crate::debug_object::section_data;

/// Index of `moduledata.gofunc` in pointer-size words, Go 1.18-1.19 (1.20 added
/// `covctrs, ecovctrs` before it).
const GOFUNC_WORD_GO118: usize = 38;
const GOFUNC_WORD_GO120: usize = 40;

/// One inlined call (`runtime.inlinedCall`).
pub(crate) struct InlinedCall {
    /// Offset of the called function's name in `funcnametab`.
    pub(crate) name_offset: u32,
    /// Offset from the function's entry of an instruction whose position is the call site.
    pub(crate) parent_pc: u32,
    /// The called function's first line (Go 1.20+), else 0.
    pub(crate) start_line: i32,
}

/// The bytes of `go:func.*` onward, where funcdata offsets point.
pub(crate) struct InlineTree {
    gofunc: Vec<u8>,
    little_endian: bool,
    go120: bool,
}

impl InlineTree {
    /// The inline tree data of a Go 1.18+ binary whose `.gopclntab` is at `pclntab_address`
    /// with its function names at `funcname_offset`; `None` when `moduledata` is not found.
    pub(crate) fn find(
        file: &object::File<'_>,
        pclntab_address: u64,
        funcname_offset: u64,
        go120: bool,
        limit: u64,
    ) -> Option<Self> {
        let little_endian = file.is_little_endian();
        let word = |b: &[u8]| -> Option<u64> {
            let b: [u8; 8] = b.get(..8)?.try_into().ok()?;
            Some(if little_endian {
                u64::from_le_bytes(b)
            } else {
                u64::from_be_bytes(b)
            })
        };
        if !file.is_64() {
            return None;
        }
        let noptrdata = file.section_by_name(".noptrdata")?;
        let data = section_data(&noptrdata, limit)?;
        let gofunc_word = if go120 {
            GOFUNC_WORD_GO120
        } else {
            GOFUNC_WORD_GO118
        };
        let gofunc = (0..data.len().saturating_sub(8 * (gofunc_word + 1)))
            .step_by(8)
            .find(|&at| {
                word(&data[at..]) == Some(pclntab_address)
                    && word(&data[at + 8..]) == pclntab_address.checked_add(funcname_offset)
            })
            .and_then(|at| word(&data[at + 8 * gofunc_word..]))?;
        let section = file.sections().find(|s| {
            s.address() <= gofunc && gofunc - s.address() < s.size() && s.file_range().is_some()
        })?;
        let bytes = section_data(&section, limit)?;
        let start = usize::try_from(gofunc - section.address()).ok()?;
        Some(InlineTree {
            gofunc: bytes.get(start..)?.to_vec(),
            little_endian,
            go120,
        })
    }

    /// Entry `index` of the tree at funcdata offset `tree`.
    pub(crate) fn call(&self, tree: u32, index: i64) -> Option<InlinedCall> {
        let size = if self.go120 { 16 } else { 20 };
        let at = usize::try_from(tree)
            .ok()?
            .checked_add(usize::try_from(index).ok()?.checked_mul(size)?)?;
        let field = |offset: usize| -> Option<u32> {
            let b: [u8; 4] = self
                .gofunc
                .get(at + offset..at + offset + 4)?
                .try_into()
                .ok()?;
            Some(if self.little_endian {
                u32::from_le_bytes(b)
            } else {
                u32::from_be_bytes(b)
            })
        };
        Some(if self.go120 {
            // funcID u8, _ [3]byte, nameOff int32, parentPc int32, startLine int32
            InlinedCall {
                name_offset: field(4)?,
                parent_pc: field(8)?,
                start_line: field(12)? as i32,
            }
        } else {
            // parent int16, funcID u8, _ byte, file int32, line int32, func_ int32, parentPc int32
            InlinedCall {
                name_offset: field(12)?,
                parent_pc: field(16)?,
                start_line: 0,
            }
        })
    }
}
