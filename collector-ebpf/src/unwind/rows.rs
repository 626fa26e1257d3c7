//! [`UnwindRow`] and [`compile_cfi`]: the call frame information of an x86_64 ELF file
//! (`.eh_frame`, and `.debug_frame` where `.eh_frame` leaves a gap) compiled into a sorted
//! table of compact rows the BPF unwinder searches by pc.
//!
//! A row says, from its pc up to the next row's, how to find the caller's frame: where the
//! canonical frame address (CFA) is (rsp or rbp plus an offset, a PLT stub's rule, the word
//! at rsp/rbp plus an offset, or a signal frame's saved registers), and where the caller's
//! rbp was saved. The return address is always at CFA − 8 on x86_64; an FDE that says
//! otherwise compiles to [`CfaRule::Unsupported`] (the unwinder stops there, counted).
//! What the unwinder cannot do is never guessed: it becomes a stop with a reason.
//!
//! The row layout (8 bytes, little endian) is shared with `bpf/unwind.bpf.h`
//! (`struct unwind_row`): `u32 pc` (offset from the table's base address), `u8 kinds` (CFA
//! kind in the low nibble, rbp kind in the high one), `i8 rbp_offset` (in units of 8),
//! `u16 cfa_offset` (kind-dependent) — see [`UnwindRow::to_bytes`].

use std::collections::HashMap;

use gimli::{
    BaseAddresses, CieOrFde, DebugFrame, EhFrame, LittleEndian, Register, RegisterRule,
    UnwindContext, UnwindSection,
};
use object::{Object, ObjectSection, ReadRef};

use crate::error::{Error, Result};

/// x86_64 DWARF register numbers.
const RBP: Register = Register(6);
const RSP: Register = Register(7);
const RA: Register = Register(16);

/// How the caller's CFA is found.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CfaRule {
    /// No call frame information covers this pc (a gap between FDEs, or past the last one):
    /// the unwinder stops ("no_cfi").
    NoCoverage,
    /// CFA = rsp + offset.
    Rsp(u16),
    /// CFA = rbp + offset.
    Rbp(u16),
    /// A PLT stub: CFA = rsp + `base`, + 8 more when `(rip & 15) >= threshold` (the two
    /// expressions glibc's linker writes for `.plt` and `.plt.sec`).
    Plt {
        /// The rsp offset before the push.
        base: u8,
        /// The low pc nibble from which the stub has pushed.
        threshold: u8,
    },
    /// CFA = the word at rsp + offset.
    DerefRsp(i16),
    /// CFA = the word at rbp + offset (functions that realign the stack).
    DerefRbp(i16),
    /// A signal trampoline (`__restore_rt`): the interrupted registers are in the
    /// `ucontext_t` at rsp.
    Signal,
    /// The return address is undefined: the outermost frame (`_start`, a thread's start).
    Outermost,
    /// Call frame information the unwinder cannot follow (another CFA register, an
    /// expression, an offset out of range, the return address elsewhere than CFA − 8).
    Unsupported,
}

/// Where the caller's rbp is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RbpRule {
    /// The callee did not change it.
    Unchanged,
    /// Saved at CFA + 8 × the value.
    AtCfa(i8),
    /// Saved somewhere the unwinder cannot read it: later frames that need rbp stop.
    Lost,
}

/// One row: from `pc` (in the file's virtual addresses) to the next row's pc.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct UnwindRow {
    /// How the CFA is found.
    pub cfa: CfaRule,
    /// Where rbp was saved.
    pub rbp: RbpRule,
}

/// `cfa_kind` values of `struct unwind_row` (`bpf/unwind.bpf.h` has the same).
mod kind {
    pub const NO_COVERAGE: u8 = 0;
    pub const RSP: u8 = 1;
    pub const RBP: u8 = 2;
    pub const PLT: u8 = 3;
    pub const DEREF_RSP: u8 = 4;
    pub const DEREF_RBP: u8 = 5;
    pub const SIGNAL: u8 = 6;
    pub const OUTERMOST: u8 = 7;
    pub const UNSUPPORTED: u8 = 8;
    pub const RBP_UNCHANGED: u8 = 0;
    pub const RBP_AT_CFA: u8 = 1;
    pub const RBP_LOST: u8 = 2;
}

impl UnwindRow {
    /// Bytes of one row in the BPF tables.
    pub const SIZE: usize = 8;

    /// The row of a pc no FDE covers.
    pub const NO_COVERAGE: UnwindRow = UnwindRow {
        cfa: CfaRule::NoCoverage,
        rbp: RbpRule::Unchanged,
    };

    /// The 8 bytes of `struct unwind_row` for a row at `pc_offset` from the table's base:
    /// `u32 pc_offset | u8 cfa_kind + (rbp_kind << 4) | i8 rbp_offset / 8 | u16 cfa_offset`
    /// (a PLT row packs `base | threshold << 8`, a deref row an `i16`).
    pub fn to_bytes(&self, pc_offset: u32) -> [u8; 8] {
        let (cfa_kind, cfa_offset): (u8, u16) = match self.cfa {
            CfaRule::NoCoverage => (kind::NO_COVERAGE, 0),
            CfaRule::Rsp(o) => (kind::RSP, o),
            CfaRule::Rbp(o) => (kind::RBP, o),
            CfaRule::Plt { base, threshold } => {
                (kind::PLT, u16::from(base) | (u16::from(threshold) << 8))
            }
            CfaRule::DerefRsp(o) => (kind::DEREF_RSP, o as u16),
            CfaRule::DerefRbp(o) => (kind::DEREF_RBP, o as u16),
            CfaRule::Signal => (kind::SIGNAL, 0),
            CfaRule::Outermost => (kind::OUTERMOST, 0),
            CfaRule::Unsupported => (kind::UNSUPPORTED, 0),
        };
        let (rbp_kind, rbp_offset): (u8, i8) = match self.rbp {
            RbpRule::Unchanged => (kind::RBP_UNCHANGED, 0),
            RbpRule::AtCfa(o) => (kind::RBP_AT_CFA, o),
            RbpRule::Lost => (kind::RBP_LOST, 0),
        };
        let mut out = [0u8; 8];
        out[..4].copy_from_slice(&pc_offset.to_le_bytes());
        out[4] = cfa_kind | (rbp_kind << 4);
        out[5] = rbp_offset as u8;
        out[6..].copy_from_slice(&cfa_offset.to_le_bytes());
        out
    }

    /// Decodes [`UnwindRow::to_bytes`]: the pc offset and the row.
    pub fn from_bytes(b: [u8; 8]) -> (u32, UnwindRow) {
        let pc = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        let off = u16::from_le_bytes([b[6], b[7]]);
        let cfa = match b[4] & 15 {
            kind::RSP => CfaRule::Rsp(off),
            kind::RBP => CfaRule::Rbp(off),
            kind::PLT => CfaRule::Plt {
                base: off as u8,
                threshold: (off >> 8) as u8,
            },
            kind::DEREF_RSP => CfaRule::DerefRsp(off as i16),
            kind::DEREF_RBP => CfaRule::DerefRbp(off as i16),
            kind::SIGNAL => CfaRule::Signal,
            kind::OUTERMOST => CfaRule::Outermost,
            kind::UNSUPPORTED => CfaRule::Unsupported,
            _ => CfaRule::NoCoverage,
        };
        let rbp = match b[4] >> 4 {
            kind::RBP_AT_CFA => RbpRule::AtCfa(b[5] as i8),
            kind::RBP_LOST => RbpRule::Lost,
            _ => RbpRule::Unchanged,
        };
        (pc, UnwindRow { cfa, rbp })
    }
}

/// Which section a CFI blob is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CfiSection {
    /// `.eh_frame` (pc-relative pointers; `address` is the section's virtual address).
    EhFrame,
    /// `.debug_frame` (absolute addresses).
    DebugFrame,
}

/// One section of call frame information to compile.
#[derive(Clone, Copy, Debug)]
pub struct CfiInput<'a> {
    /// The section's bytes.
    pub data: &'a [u8],
    /// Which section it is.
    pub section: CfiSection,
    /// The section's virtual address (for `.eh_frame`'s pc-relative pointers).
    pub address: u64,
    /// The `.text` section's address (for text-relative pointers; rarely used).
    pub text_address: u64,
}

/// Rows per block of [`UnwindRows`]' storage: a multiple of the BPF chunk (64 rows), 64 KiB,
/// so a large file's rows grow block by block (never copied into a bigger buffer).
const BLOCK_ROWS: usize = 8192;

/// The compiled rows of a file: sorted by pc, each row holding until the next one's pc; the
/// last row is always [`UnwindRow::NO_COVERAGE`] (past the last FDE). Stored as the BPF
/// tables hold them ([`UnwindRow::to_bytes`], 8 bytes a row, pcs as offsets from
/// [`UnwindRows::base`]); strictly increasing pcs, no two consecutive rows equal.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UnwindRows {
    base: u64,
    len: usize,
    /// Blocks of [`BLOCK_ROWS`] packed rows; the last one filled up to `len`.
    blocks: Vec<Box<[u64]>>,
}

impl UnwindRows {
    /// The row in force at `pc`: the last row whose pc is ≤ `pc` (none before the first).
    pub fn lookup(&self, pc: u64) -> Option<UnwindRow> {
        let offset = u32::try_from(pc.checked_sub(self.base)?).unwrap_or(u32::MAX);
        // Binary search: the number of rows whose pc offset is ≤ `offset`.
        let (mut lo, mut hi) = (0usize, self.len);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if self.packed(mid) as u32 <= offset {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo.checked_sub(1).map(|i| self.row(i).1)
    }

    /// The virtual address of pc offset 0 (the first row's pc).
    pub fn base(&self) -> u64 {
        self.base
    }

    /// Row `i`: its pc and what it says.
    pub fn row(&self, i: usize) -> (u64, UnwindRow) {
        let (offset, row) = UnwindRow::from_bytes(self.packed(i).to_le_bytes());
        (self.base + u64::from(offset), row)
    }

    /// Every row with its pc, in pc order.
    pub fn iter(&self) -> impl Iterator<Item = (u64, UnwindRow)> + '_ {
        (0..self.len).map(|i| self.row(i))
    }

    /// The rows as the BPF tables hold them, in pieces of a multiple of 64 rows (each
    /// [`u64`] is [`UnwindRow::to_bytes`] read little endian).
    pub fn packed_slices(&self) -> impl Iterator<Item = &[u64]> + '_ {
        self.blocks.iter().enumerate().map(|(i, b)| {
            let filled = (self.len - i * BLOCK_ROWS).min(BLOCK_ROWS);
            &b[..filled]
        })
    }

    fn packed(&self, i: usize) -> u64 {
        self.blocks[i / BLOCK_ROWS][i % BLOCK_ROWS]
    }

    fn push_packed(&mut self, row: u64) {
        if self.len == self.blocks.len() * BLOCK_ROWS {
            self.blocks.push(vec![0; BLOCK_ROWS].into_boxed_slice());
        }
        self.blocks[self.len / BLOCK_ROWS][self.len % BLOCK_ROWS] = row;
        self.len += 1;
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there is no row (a file without call frame information).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes the rows take in the BPF tables.
    pub fn bytes(&self) -> usize {
        self.len * UnwindRow::SIZE
    }
}

/// Where compiled rows go, in pc order, packed ([`UnwindRow::to_bytes`] read little
/// endian, pcs as offsets from [`Compiled::base`]): an [`UnwindRows`] in memory, or the BPF
/// tables directly.
pub trait RowSink {
    /// Takes the next row; an error stops the compile (e.g. the room ran out).
    fn push(&mut self, packed: u64) -> Result<()>;
}

impl RowSink for UnwindRows {
    fn push(&mut self, packed: u64) -> Result<()> {
        self.push_packed(packed);
        Ok(())
    }
}

/// What a compile into a [`RowSink`] wrote.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Compiled {
    /// The virtual address of pc offset 0 (the first row's pc).
    pub base: u64,
    /// Rows written.
    pub rows: usize,
}

/// Appends rows in pc order to a [`RowSink`], merging as the unwinder wants them: a row at
/// the same pc as the previous one replaces it (the previous one covered nothing), a row
/// equal to the one in force is skipped. The last row is held back until the next one
/// shows whether it stands.
struct RowWriter<'s> {
    sink: &'s mut dyn RowSink,
    compiled: Compiled,
    pending: Option<(u64, UnwindRow)>,
    /// The last row written.
    last: Option<UnwindRow>,
}

impl<'s> RowWriter<'s> {
    fn new(base: u64, sink: &'s mut dyn RowSink) -> Self {
        RowWriter {
            sink,
            compiled: Compiled { base, rows: 0 },
            pending: None,
            last: None,
        }
    }

    fn push(&mut self, pc: u64, row: UnwindRow) -> Result<()> {
        if self.pending.is_some_and(|(p, _)| p == pc) {
            self.pending = None;
        }
        if self.pending.map(|(_, r)| r).or(self.last) == Some(row) {
            return Ok(());
        }
        self.flush()?;
        self.pending = Some((pc, row));
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        let Some((pc, row)) = self.pending.take() else {
            return Ok(());
        };
        let base = self.compiled.base;
        let offset = pc
            .checked_sub(base)
            .and_then(|o| u32::try_from(o).ok())
            .ok_or_else(|| Error::Cfi {
                what: "place the rows".into(),
                reason: format!("pc {pc:#x} is not within 4 GiB above the first FDE at {base:#x}"),
            })?;
        self.sink.push(u64::from_le_bytes(row.to_bytes(offset)))?;
        self.compiled.rows += 1;
        self.last = Some(row);
        Ok(())
    }

    fn finish(mut self) -> Result<Compiled> {
        self.flush()?;
        Ok(self.compiled)
    }
}

/// Compiles the call frame information of an ELF file's bytes: `.eh_frame`, with
/// `.debug_frame`'s FDEs filling what `.eh_frame` does not cover. A file with neither gives
/// no rows (the unwinder walks its frames by frame pointers).
pub fn compile_elf<'d, R: ReadRef<'d>>(data: R) -> Result<UnwindRows> {
    let mut rows = UnwindRows::default();
    rows.base = compile_elf_into(data, &mut rows)?.base;
    Ok(rows)
}

/// [`compile_elf`] into a [`RowSink`].
pub fn compile_elf_into<'d, R: ReadRef<'d>>(data: R, sink: &mut dyn RowSink) -> Result<Compiled> {
    let file = object::File::parse(data).map_err(|e| Error::Cfi {
        what: "parse the ELF file".into(),
        reason: e.to_string(),
    })?;
    let text_address = file.section_by_name(".text").map_or(0, |s| s.address());
    let mut inputs = Vec::new();
    let mut owned = Vec::new();
    for (name, section) in [
        (".eh_frame", CfiSection::EhFrame),
        (".debug_frame", CfiSection::DebugFrame),
    ] {
        if let Some(s) = file.section_by_name(name) {
            let bytes = s.uncompressed_data().map_err(|e| Error::Cfi {
                what: format!("read {name}"),
                reason: e.to_string(),
            })?;
            // Borrowed from the reader when the section is not compressed: no copy.
            owned.push((bytes, section, s.address()));
        }
    }
    for (bytes, section, address) in &owned {
        inputs.push(CfiInput {
            data: bytes,
            section: *section,
            address: *address,
            text_address,
        });
    }
    compile_cfi_into(&inputs, sink)
}

/// Bytes of call frame information (`.eh_frame` + `.debug_frame`) in an ELF file: what
/// compiling it costs, about 1 µs per 16 bytes.
pub fn cfi_bytes<'d, R: ReadRef<'d>>(data: R) -> u64 {
    let Ok(file) = object::File::parse(data) else {
        return 0;
    };
    [".eh_frame", ".debug_frame"]
        .iter()
        .filter_map(|n| file.section_by_name(n))
        .map(|s| s.size())
        .sum()
}

/// One FDE as the compiler's index holds it (24 bytes; the rows are evaluated later, in
/// address order, so no file's rows are ever held but in their final form).
struct FdeRef {
    start: u64,
    end: u64,
    /// The FDE's offset in its section.
    offset: u32,
    /// Index of the input (earlier inputs win where FDEs overlap).
    priority: u8,
}

/// An input section ready to read.
enum Section<'a> {
    Eh(EhFrame<Slice<'a>>, BaseAddresses),
    Debug(DebugFrame<Slice<'a>>, BaseAddresses),
}

type Slice<'a> = gimli::EndianSlice<'a, LittleEndian>;
type Cie<'a> = gimli::CommonInformationEntry<Slice<'a>>;

/// Compiles CFI sections into rows. Where FDEs overlap, the earlier input's (then the earlier
/// FDE's) rows win; between FDEs the rows say [`CfaRule::NoCoverage`].
///
/// Two passes over the FDEs: the first indexes them (address range and offset), the second
/// evaluates them in address order straight into the packed rows, so the memory a large
/// file takes is its index (24 bytes an FDE) and its final rows (8 bytes a row; none with
/// [`compile_cfi_into`] writing to the BPF tables).
pub fn compile_cfi(inputs: &[CfiInput<'_>]) -> Result<UnwindRows> {
    let mut rows = UnwindRows::default();
    rows.base = compile_cfi_into(inputs, &mut rows)?.base;
    Ok(rows)
}

/// [`compile_cfi`] into a [`RowSink`].
pub fn compile_cfi_into(inputs: &[CfiInput<'_>], sink: &mut dyn RowSink) -> Result<Compiled> {
    let sections: Vec<Section<'_>> = inputs
        .iter()
        .map(|input| match input.section {
            CfiSection::EhFrame => {
                let mut s = EhFrame::new(input.data, LittleEndian);
                s.set_address_size(8);
                let bases = BaseAddresses::default()
                    .set_eh_frame(input.address)
                    .set_text(input.text_address);
                Section::Eh(s, bases)
            }
            CfiSection::DebugFrame => {
                let mut s = DebugFrame::new(input.data, LittleEndian);
                s.set_address_size(8);
                Section::Debug(s, BaseAddresses::default().set_text(input.text_address))
            }
        })
        .collect();
    let mut cies: Vec<HashMap<usize, Cie<'_>>> = vec![HashMap::new(); sections.len()];
    let mut fdes = Vec::new();
    for (priority, section) in sections.iter().enumerate().take(usize::from(u8::MAX)) {
        let cies = &mut cies[priority];
        match section {
            Section::Eh(s, bases) => index_fdes(s, bases, priority as u8, cies, &mut fdes),
            Section::Debug(s, bases) => index_fdes(s, bases, priority as u8, cies, &mut fdes),
        }
    }
    fdes.sort_unstable_by_key(|f| (f.start, f.priority, f.offset));
    let Some(first) = fdes.first() else {
        return Ok(Compiled::default());
    };
    let mut out = RowWriter::new(first.start, sink);
    let mut ctx = UnwindContext::new();
    let mut covered_to = 0u64;
    for fde in &fdes {
        if fde.start < covered_to {
            continue; // overlaps an FDE already taken
        }
        if covered_to != 0 && fde.start > covered_to {
            out.push(covered_to, UnwindRow::NO_COVERAGE)?;
        }
        let cies = &mut cies[usize::from(fde.priority)];
        match &sections[usize::from(fde.priority)] {
            Section::Eh(s, bases) => emit_fde(s, bases, fde, cies, &mut ctx, &mut out)?,
            Section::Debug(s, bases) => emit_fde(s, bases, fde, cies, &mut ctx, &mut out)?,
        }
        covered_to = fde.end;
    }
    out.push(covered_to, UnwindRow::NO_COVERAGE)?;
    out.finish()
}

fn cfi_error(what: &str, e: gimli::Error) -> Error {
    Error::Cfi {
        what: what.to_owned(),
        reason: e.to_string(),
    }
}

/// The CIE at `offset`, parsed once per section.
fn cached_cie<'a, S>(
    cies: &mut HashMap<usize, Cie<'a>>,
    section: &S,
    bases: &BaseAddresses,
    offset: S::Offset,
) -> gimli::Result<Cie<'a>>
where
    S: UnwindSection<Slice<'a>>,
{
    let key: usize = gimli::UnwindOffset::into(offset);
    if let Some(cie) = cies.get(&key) {
        return Ok(cie.clone());
    }
    let cie = section.cie_from_offset(bases, offset)?;
    cies.insert(key, cie.clone());
    Ok(cie)
}

/// The first pass: every FDE's address range and offset.
fn index_fdes<'a, S>(
    section: &S,
    bases: &BaseAddresses,
    priority: u8,
    cies: &mut HashMap<usize, Cie<'a>>,
    fdes: &mut Vec<FdeRef>,
) where
    S: UnwindSection<Slice<'a>>,
{
    let mut entries = section.entries(bases);
    loop {
        let entry = match entries.next() {
            Ok(Some(e)) => e,
            Ok(None) => break,
            // A malformed entry ends the walk: what came before stands.
            Err(e) => {
                tracing::debug!(error = %e, "call frame information cut short");
                break;
            }
        };
        let CieOrFde::Fde(partial) = entry else {
            continue;
        };
        let Ok(fde) = partial.parse(|s, b, o| cached_cie(cies, s, b, o)) else {
            continue;
        };
        let (start, end) = (
            fde.initial_address(),
            fde.initial_address().wrapping_add(fde.len()),
        );
        let Ok(offset) = u32::try_from(fde.offset()) else {
            continue;
        };
        if fde.len() == 0 || end < start {
            continue;
        }
        fdes.push(FdeRef {
            start,
            end,
            offset,
            priority,
        });
    }
}

/// The second pass, for one FDE: its rows, evaluated, into `out`.
fn emit_fde<'a, S>(
    section: &S,
    bases: &BaseAddresses,
    fde_ref: &FdeRef,
    cies: &mut HashMap<usize, Cie<'a>>,
    ctx: &mut UnwindContext<usize>,
    out: &mut RowWriter<'_>,
) -> Result<()>
where
    S: UnwindSection<Slice<'a>>,
{
    let offset = S::Offset::from(fde_ref.offset as usize);
    let fde = section
        .fde_from_offset(bases, offset, |s, b, o| cached_cie(cies, s, b, o))
        .map_err(|e| cfi_error("re-read an FDE", e))?;
    let (start, end) = (fde_ref.start, fde_ref.end);
    let signal = fde.cie().is_signal_trampoline();
    let mut table = fde
        .rows(section, bases, ctx)
        .map_err(|e| cfi_error("evaluate an FDE", e))?;
    let mut last_pc = None;
    loop {
        match table.next_row() {
            Ok(Some(row)) => {
                let r = if signal {
                    UnwindRow {
                        cfa: CfaRule::Signal,
                        rbp: RbpRule::Unchanged,
                    }
                } else {
                    classify(section, row)
                };
                last_pc = Some(row.start_address());
                out.push(row.start_address(), r)?;
            }
            Ok(None) => return Ok(()),
            Err(e) => {
                // Rows up to the bad instruction stand; the rest of the FDE is covered by an
                // unsupported row.
                tracing::debug!(error = %e, start, "FDE instructions cut short");
                let at = last_pc.map_or(start, |pc| pc + 1).min(end);
                let unsupported = UnwindRow {
                    cfa: CfaRule::Unsupported,
                    rbp: RbpRule::Lost,
                };
                return out.push(at, unsupported);
            }
        }
    }
}

/// The row gimli's evaluated row stands for.
pub fn classify<'a, S>(section: &S, row: &gimli::UnwindTableRow<usize>) -> UnwindRow
where
    S: UnwindSection<gimli::EndianSlice<'a, LittleEndian>>,
{
    let unsupported = UnwindRow {
        cfa: CfaRule::Unsupported,
        rbp: RbpRule::Lost,
    };
    let rbp = match row.register(RBP) {
        None | Some(RegisterRule::Undefined | RegisterRule::SameValue) => RbpRule::Unchanged,
        Some(RegisterRule::Offset(o)) if o % 8 == 0 && (-1024..=1016).contains(&o) => {
            RbpRule::AtCfa((o / 8) as i8)
        }
        _ => RbpRule::Lost,
    };
    match row.register(RA) {
        Some(RegisterRule::Undefined) => {
            return UnwindRow {
                cfa: CfaRule::Outermost,
                rbp,
            };
        }
        Some(RegisterRule::Offset(-8)) => {}
        _ => return unsupported,
    }
    let cfa = match row.cfa() {
        gimli::CfaRule::RegisterAndOffset { register, offset } => {
            match (u16::try_from(*offset), *register) {
                (Ok(o), RSP) => CfaRule::Rsp(o),
                (Ok(o), RBP) => CfaRule::Rbp(o),
                _ => CfaRule::Unsupported,
            }
        }
        gimli::CfaRule::Expression(e) => match e.get(section) {
            Ok(expr) => classify_expression(expr.0.slice()),
            Err(_) => CfaRule::Unsupported,
        },
    };
    if cfa == CfaRule::Unsupported {
        return unsupported;
    }
    UnwindRow { cfa, rbp }
}

const DW_OP_BREG6: u8 = 0x76;
const DW_OP_BREG7: u8 = 0x77;
const DW_OP_BREG16: u8 = 0x80;
const DW_OP_DEREF: u8 = 0x06;
const DW_OP_LIT0: u8 = 0x30;

/// The CFA expressions the unwinder follows: glibc's two PLT stub rules and
/// `DW_OP_breg{6,7} off; DW_OP_deref`.
fn classify_expression(bytes: &[u8]) -> CfaRule {
    let mut r = gimli::EndianSlice::new(bytes, LittleEndian);
    use gimli::Reader;
    let Ok(op) = r.read_u8() else {
        return CfaRule::Unsupported;
    };
    let Ok(off) = r.read_sleb128() else {
        return CfaRule::Unsupported;
    };
    let rest = r.slice();
    match (op, rest) {
        (DW_OP_BREG6 | DW_OP_BREG7, [DW_OP_DEREF]) => match i16::try_from(off) {
            Ok(o) if op == DW_OP_BREG6 => CfaRule::DerefRbp(o),
            Ok(o) => CfaRule::DerefRsp(o),
            Err(_) => CfaRule::Unsupported,
        },
        // breg7 base; breg16 0; lit15; and; litN; ge; lit3; shl; plus
        (DW_OP_BREG7, [DW_OP_BREG16, 0, 0x3f, 0x1a, lit, 0x2a, 0x33, 0x24, 0x22])
            if (DW_OP_LIT0..DW_OP_LIT0 + 16).contains(lit) =>
        {
            match u8::try_from(off) {
                Ok(base) => CfaRule::Plt {
                    base,
                    threshold: lit - DW_OP_LIT0,
                },
                Err(_) => CfaRule::Unsupported,
            }
        }
        _ => CfaRule::Unsupported,
    }
}
