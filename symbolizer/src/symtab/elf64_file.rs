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

/// The bit of [`InFileSymbol::name_at`] marking a global symbol while the table is built.
const GLOBAL: u64 = 1 << 63;

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
        // (symbol table, its string table) of .symtab and .dynsym.
        let tables: Vec<_> = [object::elf::SHT_SYMTAB, object::elf::SHT_DYNSYM]
            .into_iter()
            .filter_map(|kind| sections.iter().find(|s| s.sh_type(endian) == kind))
            .map(|s| Some((s, sections.get(s.sh_link(endian) as usize)?)))
            .collect::<Option<_>>()?;
        let string_bytes: u64 = tables.iter().map(|t| t.1.sh_size(endian)).sum();
        let in_file = string_bytes > in_file_over;
        // Names in the file: the symbols straight into their final form (sorted and
        // deduplicated in place). Names in memory: per table, then the names read.
        let mut in_file_symbols: Vec<InFileSymbol> = Vec::new();
        let mut per_table = Vec::new();
        for (section, strings) in tables {
            let (str_offset, str_size) = (strings.sh_offset(endian), strings.sh_size(endian));
            let mut functions: Vec<RawSymbol> = Vec::new();
            let (offset, size) = (section.sh_offset(endian), section.sh_size(endian));
            // The function symbols, a window of entries at a time.
            let mut at = 0u64;
            while at + 24 <= size {
                let n = ((size - at) / 24).min((window_bytes / 24).max(1));
                let bytes = read_at(offset + at, n * 24)?;
                let syms: &[object::elf::Sym64<LittleEndian>] =
                    object::pod::slice_from_bytes(&bytes, n as usize).ok()?.0;
                for sym in syms {
                    let kind = sym.st_type();
                    let name = sym.st_name(endian);
                    if (kind == STT_FUNC || kind == STT_GNU_IFUNC)
                        && sym.st_shndx(endian) != SHN_UNDEF
                        && sym.st_value(endian) != 0
                        && name != 0
                    {
                        let (address, size) = (sym.st_value(endian), sym.st_size(endian));
                        let global = sym.st_bind() != STB_LOCAL;
                        if !in_file {
                            functions.push((name, address, size, global));
                        } else if u64::from(name) < str_size {
                            let name_at = str_offset + u64::from(name);
                            in_file_symbols.push(InFileSymbol {
                                address,
                                size,
                                name_at: name_at | if global { GLOBAL } else { 0 },
                            });
                        }
                    }
                }
                at += n * 24;
            }
            per_table.push((functions, str_offset, str_size));
        }
        if in_file {
            let bounds = per_table.iter().map(|t| (t.1, t.1 + t.2)).collect();
            return Some(Self::names_in_file(
                file,
                in_file_symbols,
                bounds,
                window_bytes,
            ));
        }
        let mut symbols = Vec::new();
        for (mut functions, str_offset, str_size) in per_table {
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

    /// A table whose names stay in `file`, from its function symbols (`name_at` with the
    /// [`GLOBAL`] bit): one symbol per address chosen as [`SymbolTable::from_symbols`] does
    /// (sized, then global, then the least name), reading names only to break ties; sorted
    /// and deduplicated in place.
    fn names_in_file(
        file: &File,
        mut symbols: Vec<InFileSymbol>,
        tables: Vec<(u64, u64)>,
        window: u64,
    ) -> Self {
        let Ok(handle) = file.try_clone() else {
            return SymbolTable::default();
        };
        let rank = |s: &InFileSymbol| (s.size != 0, s.name_at & GLOBAL != 0);
        symbols.sort_unstable_by(|a, b| {
            a.address
                .cmp(&b.address)
                .then(rank(b).cmp(&rank(a)))
                .then((a.name_at & !GLOBAL).cmp(&(b.name_at & !GLOBAL)))
        });
        let mut names = InFileNames {
            file: Arc::new(handle),
            symbols: Vec::new(),
            tables,
        };
        let mut kept = 0;
        let mut i = 0;
        while i < symbols.len() {
            let address = symbols[i].address;
            let end = i + symbols[i..].partition_point(|s| s.address == address);
            // The first run of equal rank whose name reads; in a run of several, the least
            // name.
            let mut run_start = i;
            while run_start < end {
                let first = symbols[run_start];
                let run = symbols[run_start..end].partition_point(|s| rank(s) == rank(&first));
                let candidates = &symbols[run_start..run_start + run];
                let chosen = if run == 1 {
                    Some(first)
                } else {
                    candidates
                        .iter()
                        .filter_map(|s| {
                            let at = s.name_at & !GLOBAL;
                            read_name(&names.file, at, names.limit(at).min(window)).map(|n| (n, *s))
                        })
                        .min_by(|a, b| a.0.cmp(&b.0))
                        .map(|(_, s)| s)
                };
                if let Some(mut s) = chosen {
                    s.name_at &= !GLOBAL;
                    symbols[kept] = s;
                    kept += 1;
                    break;
                }
                run_start += run;
            }
            i = end;
        }
        symbols.truncate(kept);
        symbols.shrink_to_fit();
        names.symbols = symbols;
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
