//! [`DebugObject`]: the parsed symbol sources of one ELF file — DWARF, Go's pclntab, the
//! symbol tables — and the lookup that tries them in that order.

use std::borrow::Cow;

use object::{Object, ObjectSection};

use crate::demangle::demangle;
use crate::dwarf::Dwarf;
use crate::error::{Error, Result};
use crate::frame::Frame;
use crate::go_pclntab::GoPclntab;
use crate::status::SymbolContent;
use crate::symtab::SymbolTable;

/// What one ELF file offers for symbolization, parsed and owned (the file's bytes are not
/// kept).
pub(crate) struct DebugObject {
    /// Which sources it has.
    pub(crate) content: SymbolContent,
    /// Whether it is a Go binary (for the "stripped" reason).
    pub(crate) is_go: bool,
    dwarf: Option<Dwarf>,
    go: Option<GoPclntab>,
    symtab: SymbolTable,
}

impl DebugObject {
    /// Parses an ELF file; `what` names it in errors. No section is decompressed to more
    /// than `max_section_bytes`. Malformed DWARF is an error; a missing or unreadable pclntab
    /// or symbol table only leaves that source out.
    pub(crate) fn parse(data: &[u8], what: &str, max_section_bytes: u64) -> Result<Self> {
        let not_elf = |reason: String| Error::NotElf {
            what: what.to_owned(),
            reason,
        };
        let file = object::File::parse(data).map_err(|e| not_elf(e.to_string()))?;
        if file.format() != object::BinaryFormat::Elf {
            return Err(not_elf(format!("a {:?} file", file.format())));
        }
        let dwarf = Dwarf::load(&file, what, max_section_bytes)?;
        let go = GoPclntab::read(&file, max_section_bytes);
        let symtab = SymbolTable::read(&file);
        let is_go = [".gopclntab", ".note.go.buildid", ".go.buildinfo"]
            .iter()
            .any(|name| file.section_by_name(name).is_some());
        Ok(DebugObject {
            content: SymbolContent {
                dwarf: dwarf.is_some(),
                symtab: !symtab.is_empty(),
                go_pclntab: go.is_some(),
            },
            is_go,
            dwarf,
            go,
            symtab,
        })
    }

    /// The frames of an ELF virtual address, innermost first; empty when unknown.
    pub(crate) fn frames(&self, address: u64) -> Vec<Frame> {
        if let Some(dwarf) = &self.dwarf {
            let mut frames = dwarf.frames(address);
            if !frames.is_empty() {
                // Code a unit's line table covers without a function entry (assembly):
                // name it from the symbol table.
                if let Some(last) = frames.last_mut()
                    && last.system_name.is_empty()
                    && let Some(raw) = self.symtab.lookup(address)
                {
                    last.function = demangle(&raw);
                    last.system_name = raw.into_owned();
                }
                return frames;
            }
        }
        if let Some(go) = &self.go {
            let frames = go.frames(address);
            if !frames.is_empty() {
                return frames;
            }
        }
        self.symtab.frames(address)
    }
}

/// A section's contents, decompressed (`SHF_COMPRESSED` or `.zdebug_`); `None` when they
/// cannot be read or would decompress to more than `limit` bytes.
pub(crate) fn section_data<'d>(
    section: &object::Section<'d, '_>,
    limit: u64,
) -> Option<Cow<'d, [u8]>> {
    let compressed = section.compressed_data().ok()?;
    if compressed.uncompressed_size > limit {
        return None;
    }
    compressed.decompress().ok()
}
