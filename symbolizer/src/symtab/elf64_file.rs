//! [`SymbolTable::read_elf64_file`]: the function symbols of a 64-bit little-endian ELF file
//! on disk, read through a window (neither the symbol table nor the string table is ever
//! held whole); a large table's names stay in the file ([`InFileNames`]) and are read when
//! looked up.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use object::LittleEndian;
use object::elf::{FileHeader64, SHN_UNDEF, STB_LOCAL, STT_FUNC, STT_GNU_IFUNC};
use object::read::elf::{FileHeader, SectionHeader, Sym};

use super::SymbolTable;

/// Bytes of a symbol or string table read at once; names longer than this are skipped.
const WINDOW: u64 = 1 << 20;
/// String tables larger than this (together) keep their names in the file: a large Rust
/// binary has 30 MB of them, a distribution's shared library a few hundred kB.
const IN_FILE_NAMES_OVER: u64 = 4 << 20;

/// A function symbol whose name is in the file.
#[derive(Clone, Copy, Debug)]
struct InFileSymbol {
    address: u64,
    size: u64,
    /// File offset of the name.
    name_at: u64,
}

/// The symbols of a large table, their names left in the file (24 bytes a symbol).
#[derive(Clone, Debug)]
pub(super) struct InFileNames {
    file: Arc<File>,
    /// Sorted by address, one per address.
    symbols: Vec<InFileSymbol>,
    /// The string tables' `[start, end)` file offsets: a name ends within its table.
    tables: Vec<(u64, u64)>,
}

impl InFileNames {
    pub(super) fn is_empty(&self) -> bool {
        self.symbols.is_empty()
    }

    /// [`SymbolTable::lookup`]: the name read from the file.
    pub(super) fn lookup(&self, address: u64) -> Option<String> {
        let i = self
            .symbols
            .partition_point(|s| s.address <= address)
            .checked_sub(1)?;
        let s = self.symbols[i];
        if s.size != 0 && address - s.address >= s.size {
            return None;
        }
        read_name(&self.file, s.name_at, self.limit(s.name_at))
    }

    /// Bytes a name at `at` may take: to its table's end, at most [`WINDOW`].
    fn limit(&self, at: u64) -> u64 {
        let end = self
            .tables
            .iter()
            .find(|(s, e)| (*s..*e).contains(&at))
            .map_or(at, |t| t.1);
        (end - at).min(WINDOW)
    }
}

/// The NUL-terminated name at file offset `at`, read in growing pieces of at most `limit`
/// bytes; `None` when it is longer, empty, not UTF-8, or the read fails.
fn read_name(file: &File, at: u64, limit: u64) -> Option<String> {
    let mut len = 256.min(limit);
    loop {
        let mut buf = vec![0u8; usize::try_from(len).ok()?];
        file.read_exact_at(&mut buf, at).ok()?;
        if let Some(end) = buf.iter().position(|&b| b == 0) {
            buf.truncate(end);
            return String::from_utf8(buf).ok().filter(|n| !n.is_empty());
        }
        if len >= limit {
            return None;
        }
        len = (len * 16).min(limit);
    }
}

/// A function symbol as read: (name offset in its string table, address, size, global).
type RawSymbol = (u32, u64, u64, bool);

impl SymbolTable {
    /// [`SymbolTable::read`] of a 64-bit little-endian ELF file on disk, reading the symbol
    /// and string tables through a 1 MiB window (a [`object::ReadCache`] reads every name
    /// apart: hundreds of thousands of reads, and as many cached buffers, for a large Rust
    /// binary); when the string tables are larger than 4 MiB the names stay in the file and
    /// [`SymbolTable::lookup`] reads them. `None` for other files or when a read fails.
    pub fn read_elf64_file(file: &File) -> Option<Self> {
        Self::read_elf64_file_with(file, WINDOW, IN_FILE_NAMES_OVER)
    }

    /// [`SymbolTable::read_elf64_file`] through windows of `window_bytes`, names left in
    /// the file when the string tables have more than `in_file_over` bytes.
    fn read_elf64_file_with(file: &File, window_bytes: u64, in_file_over: u64) -> Option<Self> {
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
        // (function symbols, string table offset and size) of .symtab and .dynsym.
        let mut tables = Vec::new();
        for kind in [object::elf::SHT_SYMTAB, object::elf::SHT_DYNSYM] {
            let Some(section) = sections.iter().find(|s| s.sh_type(endian) == kind) else {
                continue;
            };
            let strings = sections.get(section.sh_link(endian) as usize)?;
            // The function symbols, a window of entries at a time.
            let mut functions: Vec<RawSymbol> = Vec::new();
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
                        && sym.st_name(endian) != 0
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
            tables.push((
                functions,
                strings.sh_offset(endian),
                strings.sh_size(endian),
            ));
        }
        let string_bytes: u64 = tables.iter().map(|t| t.2).sum();
        if string_bytes > in_file_over {
            return Some(Self::names_in_file(file, tables, window_bytes));
        }
        let mut symbols = Vec::new();
        for (mut functions, str_offset, str_size) in tables {
            // Names in name-offset order, through a window of the string table.
            functions.sort_unstable_by_key(|f| f.0);
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

    /// A table whose names stay in `file`: one symbol per address chosen as
    /// [`SymbolTable::from_symbols`] does (sized, then global, then the first name), reading
    /// names only to break ties.
    fn names_in_file(file: &File, tables: Vec<(Vec<RawSymbol>, u64, u64)>, window: u64) -> Self {
        let Ok(handle) = file.try_clone() else {
            return SymbolTable::default();
        };
        let file = Arc::new(handle);
        let mut raw: Vec<(u64, u64, bool, u64)> = Vec::new();
        let mut bounds = Vec::new();
        for (functions, str_offset, str_size) in tables {
            bounds.push((str_offset, str_offset + str_size));
            raw.extend(
                functions
                    .into_iter()
                    .filter(|f| u64::from(f.0) < str_size)
                    .map(|(n, a, s, g)| (a, s, g, str_offset + u64::from(n))),
            );
        }
        raw.sort_unstable_by(|a, b| {
            a.0.cmp(&b.0)
                .then((b.1 != 0).cmp(&(a.1 != 0)))
                .then(b.2.cmp(&a.2))
                .then(a.3.cmp(&b.3))
        });
        let mut names = InFileNames {
            file,
            symbols: Vec::new(),
            tables: bounds,
        };
        let mut i = 0;
        while i < raw.len() {
            let address = raw[i].0;
            let group = raw[i..].partition_point(|r| r.0 == address);
            let group = &raw[i..i + group];
            i += group.len();
            // The first run of equal rank whose name reads; in a run of several, the least
            // name (as `from_symbols` orders them).
            let mut rest = group;
            while let Some(first) = rest.first() {
                let run = rest.partition_point(|r| (r.1 != 0, r.2) == (first.1 != 0, first.2));
                let chosen = if run == 1 {
                    Some(first.3)
                } else {
                    rest[..run]
                        .iter()
                        .filter_map(|r| {
                            let limit = names.limit(r.3).min(window);
                            read_name(&names.file, r.3, limit).map(|n| (n, r.3))
                        })
                        .min()
                        .map(|(_, at)| at)
                };
                if let Some(name_at) = chosen {
                    let size = rest[..run]
                        .iter()
                        .find(|r| r.3 == name_at)
                        .map_or(0, |r| r.1);
                    names.symbols.push(InFileSymbol {
                        address,
                        size,
                        name_at,
                    });
                    break;
                }
                rest = &rest[run..];
            }
        }
        names.symbols.shrink_to_fit();
        SymbolTable {
            symbols: Vec::new(),
            in_file: Some(names),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The windowed reader gives the same table as `read` through `object` (on libc, with
    /// .dynsym only, and on this test binary, with a large .symtab), with names in memory
    /// and with names left in the file.
    #[test]
    fn elf64_file_reader_agrees_with_object() {
        let exe = std::env::current_exe().unwrap();
        for path in [
            std::path::Path::new("/lib/x86_64-linux-gnu/libc.so.6"),
            &exe,
        ] {
            let Ok(file) = File::open(path) else {
                continue;
            };
            let data = std::fs::read(path).unwrap();
            let parsed = object::File::parse(&*data).unwrap();
            let slow = SymbolTable::read(&parsed);
            assert!(!slow.symbols.is_empty(), "{}", path.display());
            // The default window, and a small one that makes the names cross many refills
            // (every name here is shorter than it).
            for window in [WINDOW, 4096] {
                let fast = SymbolTable::read_elf64_file_with(&file, window, u64::MAX).unwrap();
                assert!(fast.in_file.is_none());
                assert_eq!(fast.symbols, slow.symbols, "{} by {window}", path.display());
                let lazy = SymbolTable::read_elf64_file_with(&file, window, 0).unwrap();
                let in_file = lazy.in_file.as_ref().expect("names in the file");
                assert_eq!(in_file.symbols.len(), slow.symbols.len());
                // Every symbol's start, last byte and one past its end name the same.
                for (address, size, _) in &slow.symbols {
                    for a in [*address, address + size.saturating_sub(1), address + size] {
                        assert_eq!(lazy.lookup(a), slow.lookup(a), "{a:#x} by {window}");
                    }
                }
            }
        }
    }
}
