//! [`SymbolTable`]: function symbols of `.symtab` and `.dynsym`, for addresses DWARF does not
//! cover (or files without it). The collector (`strata-collector-ebpf`) names user frames
//! with it when it symbolizes on the host.

use std::borrow::Cow;

use object::{Object, ObjectSymbol, ReadRef, SymbolKind};

use crate::demangle::demangle;
use crate::frame::Frame;

mod elf64_file;

use elf64_file::InFileNames;

/// The function symbols of an ELF file, sorted by address, with their raw (mangled) names.
/// One name per address: a sized one over an unsized one, then a global one over a local
/// one, then the first by name.
///
/// A large table read by [`SymbolTable::read_elf64_file`] keeps its names in the file (read
/// when looked up) rather than in memory: a big unstripped binary has tens of MB of names.
#[derive(Clone, Debug, Default)]
pub struct SymbolTable {
    /// (address, size, raw name).
    symbols: Vec<(u64, u64, Box<str>)>,
    /// The names of a large table, left in its file.
    in_file: Option<InFileNames>,
}

impl SymbolTable {
    /// The text symbols of `.symtab` and `.dynsym` of a parsed file (its bytes, or an
    /// [`object::ReadCache`] over it); undefined symbols and those at address 0 are skipped.
    pub fn read<'d, R: ReadRef<'d>>(file: &object::File<'d, R>) -> Self {
        let symbols: Vec<(u64, u64, bool, Box<str>)> = file
            .symbols()
            .chain(file.dynamic_symbols())
            .filter(|s| s.kind() == SymbolKind::Text && s.address() != 0 && !s.is_undefined())
            .filter_map(|s| {
                let name = s.name().ok().filter(|n| !n.is_empty())?;
                Some((s.address(), s.size(), s.is_global(), name.into()))
            })
            .collect();
        Self::from_symbols(symbols)
    }

    pub(crate) fn from_symbols(mut symbols: Vec<(u64, u64, bool, Box<str>)>) -> Self {
        // Per address: sized first, then global first (dedup keeps the first).
        symbols.sort_unstable_by(|a, b| {
            a.0.cmp(&b.0)
                .then((b.1 != 0).cmp(&(a.1 != 0)))
                .then(b.2.cmp(&a.2))
                .then(a.3.cmp(&b.3))
        });
        symbols.dedup_by_key(|s| s.0);
        let mut symbols: Vec<_> = symbols.into_iter().map(|s| (s.0, s.1, s.3)).collect();
        // Tables live as long as their object (the collector keeps one per mapped file).
        symbols.shrink_to_fit();
        SymbolTable {
            symbols,
            in_file: None,
        }
    }

    /// Whether there are no function symbols (e.g. a stripped file).
    pub fn is_empty(&self) -> bool {
        self.symbols.is_empty() && self.in_file.as_ref().is_none_or(|f| f.is_empty())
    }

    /// The raw name of the function holding `address` (a link-time virtual address): the
    /// closest symbol at or below it, within its size when it has one.
    pub fn lookup(&self, address: u64) -> Option<Cow<'_, str>> {
        if let Some(names) = &self.in_file {
            return names.lookup(address).map(Cow::Owned);
        }
        let i = self
            .symbols
            .partition_point(|s| s.0 <= address)
            .checked_sub(1)?;
        let (start, size, name) = &self.symbols[i];
        (*size == 0 || address - start < *size).then_some(Cow::Borrowed(&**name))
    }

    /// One frame naming the function, or none.
    pub(crate) fn frames(&self, address: u64) -> Vec<Frame> {
        self.lookup(address)
            .map(|raw| Frame::function_only(demangle(&raw), raw.into_owned()))
            .into_iter()
            .collect()
    }
}
