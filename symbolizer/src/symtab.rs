//! [`SymbolTable`]: function symbols of `.symtab` and `.dynsym`, for addresses DWARF does not
//! cover (or files without it). The collector (`strata-collector-ebpf`) names user frames
//! with it when it symbolizes on the host.

use object::{Object, ObjectSymbol, ReadRef, SymbolKind};

use crate::demangle::demangle;
use crate::frame::Frame;

/// Bytes of a symbol or string table read at once by [`SymbolTable::read_elf64_file`].
const WINDOW: u64 = 1 << 20;

/// The function symbols of an ELF file, sorted by address, with their raw (mangled) names.
/// One name per address: a sized one over an unsized one, then a global one over a local
/// one, then the first by name.
#[derive(Clone, Debug, Default)]
pub struct SymbolTable {
    /// (address, size, raw name).
    symbols: Vec<(u64, u64, Box<str>)>,
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

    /// [`SymbolTable::read`] of a 64-bit little-endian ELF file on disk, reading each symbol
    /// and string table section in one piece (a [`object::ReadCache`] reads every name
    /// apart: hundreds of thousands of reads, and as many cached buffers, for a large Rust
    /// binary); `None` for other files or when a read fails.
    pub fn read_elf64_file(file: &std::fs::File) -> Option<Self> {
        Self::read_elf64_file_windowed(file, WINDOW)
    }

    /// [`SymbolTable::read_elf64_file`] through windows of `window_bytes`.
    fn read_elf64_file_windowed(file: &std::fs::File, window_bytes: u64) -> Option<Self> {
        use object::elf::{FileHeader64, SHN_UNDEF, STB_LOCAL, STT_FUNC, STT_GNU_IFUNC};
        use object::read::elf::{FileHeader, SectionHeader, Sym};
        use object::{LittleEndian, SectionIndex};
        use std::os::unix::fs::FileExt;
        let read_at = |offset: u64, size: u64| -> Option<Vec<u8>> {
            let mut buf = vec![0u8; usize::try_from(size).ok()?];
            file.read_exact_at(&mut buf, offset).ok()?;
            Some(buf)
        };
        let len = file.metadata().ok()?.len();
        let head = read_at(0, 64.min(len))?;
        let header = FileHeader64::<LittleEndian>::parse(&*head).ok()?;
        let endian = LittleEndian;
        if !header.is_little_endian() {
            return None;
        }
        let (shoff, shnum) = (header.e_shoff(endian), u64::from(header.e_shnum(endian)));
        let table = read_at(shoff, shnum * 64)?;
        let sections: &[object::elf::SectionHeader64<LittleEndian>] =
            object::pod::slice_from_all_bytes(&table).ok()?;
        let mut symbols = Vec::new();
        for kind in [object::elf::SHT_SYMTAB, object::elf::SHT_DYNSYM] {
            let Some(section) = sections.iter().find(|s| s.sh_type(endian) == kind) else {
                continue;
            };
            let strings = sections.get(SectionIndex(section.sh_link(endian) as usize).0)?;
            // The function symbols first (name offset, address, size, global), read a window
            // of entries at a time; then their names, in name-offset order, through a window
            // of the string table: neither section is ever held whole.
            let mut functions: Vec<(u32, u64, u64, bool)> = Vec::new();
            let (offset, size) = (section.sh_offset(endian), section.sh_size(endian));
            let mut at = 0u64;
            while at + 24 <= size {
                let n = ((size - at) / 24).min((window_bytes / 24).max(1));
                let bytes = read_at(offset + at, n * 24)?;
                let syms: &[object::elf::Sym64<LittleEndian>] =
                    object::pod::slice_from_bytes(&bytes, n as usize).ok()?.0;
                for sym in syms {
                    let kind = sym.st_type();
                    if (kind == STT_FUNC || kind == STT_GNU_IFUNC)
                        && sym.st_shndx(endian) != SHN_UNDEF
                        && sym.st_value(endian) != 0
                    {
                        functions.push((
                            sym.st_name(endian),
                            sym.st_value(endian),
                            sym.st_size(endian),
                            sym.st_bind() != STB_LOCAL,
                        ));
                    }
                }
                at += n * 24;
            }
            functions.sort_unstable_by_key(|f| f.0);
            let (str_offset, str_size) = (strings.sh_offset(endian), strings.sh_size(endian));
            let (mut window, mut window_start) = (Vec::new(), 0u64);
            for (name_at, address, size, global) in functions {
                let name_at = u64::from(name_at);
                if name_at >= str_size {
                    continue;
                }
                let in_window = |w: &[u8], start: u64| {
                    name_at >= start
                        && w.get((name_at - start) as usize..)
                            .is_some_and(|rest| rest.contains(&0))
                };
                if window.is_empty() || !in_window(&window, window_start) {
                    window_start = name_at;
                    window = read_at(str_offset + name_at, window_bytes.min(str_size - name_at))?;
                    if !window.contains(&0) {
                        continue; // a name longer than the window: not one worth keeping
                    }
                }
                let rest = &window[(name_at - window_start) as usize..];
                let end = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
                let Ok(name) = std::str::from_utf8(&rest[..end]) else {
                    continue;
                };
                if !name.is_empty() {
                    symbols.push((address, size, global, Box::from(name)));
                }
            }
        }
        Some(Self::from_symbols(symbols))
    }

    fn from_symbols(mut symbols: Vec<(u64, u64, bool, Box<str>)>) -> Self {
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
        SymbolTable { symbols }
    }

    /// Whether there are no function symbols (e.g. a stripped file).
    pub fn is_empty(&self) -> bool {
        self.symbols.is_empty()
    }

    /// The raw name of the function holding `address` (a link-time virtual address): the
    /// closest symbol at or below it, within its size when it has one.
    pub fn lookup(&self, address: u64) -> Option<&str> {
        let i = self
            .symbols
            .partition_point(|s| s.0 <= address)
            .checked_sub(1)?;
        let (start, size, name) = &self.symbols[i];
        (*size == 0 || address - start < *size).then_some(&**name)
    }

    /// One frame naming the function, or none.
    pub(crate) fn frames(&self, address: u64) -> Vec<Frame> {
        self.lookup(address)
            .map(|raw| Frame::function_only(demangle(raw), raw.to_owned()))
            .into_iter()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The one-piece reader gives the same table as `read` through `object` (on libc, with
    /// .dynsym only, and on this test binary, with a large .symtab).
    #[test]
    fn elf64_file_reader_agrees_with_object() {
        let exe = std::env::current_exe().unwrap();
        for path in [
            std::path::Path::new("/lib/x86_64-linux-gnu/libc.so.6"),
            &exe,
        ] {
            let Ok(file) = std::fs::File::open(path) else {
                continue;
            };
            let data = std::fs::read(path).unwrap();
            let parsed = object::File::parse(&*data).unwrap();
            let slow = SymbolTable::read(&parsed);
            assert!(!slow.symbols.is_empty(), "{}", path.display());
            // The default window, and a small one that makes the names cross many refills
            // (every name here is shorter than it).
            for window in [WINDOW, 4096] {
                let fast = SymbolTable::read_elf64_file_windowed(&file, window).expect("ELF64");
                assert_eq!(fast.symbols, slow.symbols, "{} by {window}", path.display());
            }
        }
    }
}
