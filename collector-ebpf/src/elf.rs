//! [`ElfInfo`]: build id, loadable segments and function symbols of a mapped ELF file, read
//! once per file and shared per build id ([`ElfCache`]).

use std::collections::HashMap;
use std::sync::Arc;

use object::elf::PT_LOAD;
use object::read::elf::ProgramHeader as _;
use object::{Object, ObjectSymbol, SymbolKind};

/// Files larger than this are not read (build id and symbols stay unknown).
const MAX_ELF_BYTES: u64 = 1 << 30;

/// What the collector keeps of one ELF file.
#[derive(Debug, Default)]
pub struct ElfInfo {
    /// The GNU build id in hex; empty when the file has none.
    pub build_id: String,
    /// `PT_LOAD` segments: (file offset, file size, virtual address).
    segments: Vec<(u64, u64, u64)>,
    /// Function symbols sorted by address: (address, size, name); read on first use.
    symbols: std::sync::OnceLock<Vec<(u64, u64, Box<str>)>>,
    /// Paths to read the symbols from (through `/proc/<pid>/root`, then the plain path).
    paths: Vec<String>,
}

impl ElfInfo {
    /// Parses an ELF file (its bytes, or a [`object::ReadCache`] over the file so only the
    /// headers, notes and symbol tables are read); `None` when it is not ELF.
    pub fn parse<'d, R: object::ReadRef<'d>>(data: R, with_symbols: bool) -> Option<ElfInfo> {
        let file = object::File::parse(data).ok()?;
        let build_id = file.build_id().ok().flatten().map(hex).unwrap_or_default();
        let segments = segments(data).unwrap_or_default();
        let symbols = std::sync::OnceLock::new();
        if with_symbols {
            let _ = symbols.set(read_symbols(&file));
        }
        Some(ElfInfo {
            build_id,
            segments,
            symbols,
            paths: Vec::new(),
        })
    }

    fn symbols(&self) -> &[(u64, u64, Box<str>)] {
        self.symbols.get_or_init(|| {
            self.paths
                .iter()
                .find_map(|p| {
                    let cache = object::ReadCache::new(open_file(p)?);
                    let file = object::File::parse(&cache).ok()?;
                    Some(read_symbols(&file))
                })
                .unwrap_or_default()
        })
    }
}

fn read_symbols<'d, R: object::ReadRef<'d>>(
    file: &object::File<'d, R>,
) -> Vec<(u64, u64, Box<str>)> {
    let mut symbols: Vec<(u64, u64, Box<str>)> = Vec::new();
    for s in file.symbols().chain(file.dynamic_symbols()) {
        if s.kind() != SymbolKind::Text || s.address() == 0 {
            continue;
        }
        if let Ok(name) = s.name()
            && !name.is_empty()
        {
            symbols.push((s.address(), s.size(), name.into()));
        }
    }
    symbols.sort_unstable_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
    symbols.dedup_by_key(|s| s.0);
    symbols.shrink_to_fit();
    symbols
}

impl ElfInfo {
    /// Whether the file has function symbols.
    pub fn has_symbols(&self) -> bool {
        !self.symbols().is_empty()
    }

    /// The virtual address (as in the symbol table) of a file offset.
    pub fn offset_to_vaddr(&self, offset: u64) -> Option<u64> {
        self.segments
            .iter()
            .find(|(off, size, _)| *off <= offset && offset < off + size)
            .map(|(off, _, vaddr)| offset - off + vaddr)
    }

    /// The function at a file offset.
    pub fn symbolize_offset(&self, offset: u64) -> Option<&str> {
        let vaddr = self.offset_to_vaddr(offset)?;
        let symbols = self.symbols();
        let i = symbols.partition_point(|s| s.0 <= vaddr);
        let (addr, size, name) = symbols.get(i.checked_sub(1)?)?;
        (*size == 0 || vaddr < addr + size).then_some(&**name)
    }
}

fn segments<'d, R: object::ReadRef<'d>>(data: R) -> Option<Vec<(u64, u64, u64)>> {
    use object::read::elf::FileHeader;
    let header = object::elf::FileHeader64::<object::Endianness>::parse(data).ok()?;
    let endian = header.endian().ok()?;
    let phdrs = header.program_headers(endian, data).ok()?;
    Some(
        phdrs
            .iter()
            .filter(|p| p.p_type(endian) == PT_LOAD)
            .map(|p| (p.p_offset(endian), p.p_filesz(endian), p.p_vaddr(endian)))
            .collect(),
    )
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// ELF files by (device, inode), sharing one [`ElfInfo`] per build id. Entries no mapping
/// refers to any more are dropped by [`ElfCache::prune`].
#[derive(Debug, Default)]
pub struct ElfCache {
    by_inode: HashMap<(u64, u64), Option<Arc<ElfInfo>>>,
    by_build_id: HashMap<String, Arc<ElfInfo>>,
    with_symbols: bool,
}

impl ElfCache {
    /// An empty cache; `with_symbols: false` reads build ids only.
    pub fn new(with_symbols: bool) -> Self {
        ElfCache {
            with_symbols,
            ..Default::default()
        }
    }

    /// The ELF file with this device and inode, read from `open_path` (e.g. through
    /// `/proc/<pid>/root`) or else `path`.
    pub fn get(
        &mut self,
        dev_inode: (u64, u64),
        open_path: &str,
        path: &str,
    ) -> Option<Arc<ElfInfo>> {
        if let Some(e) = self.by_inode.get(&dev_inode) {
            return e.clone();
        }
        // Build id and segments now; symbols on first use (only for mappings samples hit).
        let parse = |p: &str| {
            let file = open_file(p)?;
            ElfInfo::parse(&object::ReadCache::new(file), false)
        };
        let info = parse(open_path).or_else(|| parse(path)).map(|mut info| {
            if self.with_symbols {
                info.paths = vec![open_path.to_owned(), path.to_owned()];
            } else {
                let _ = info.symbols.set(Vec::new());
            }
            info
        });
        let info = info.map(|info| {
            if info.build_id.is_empty() {
                return Arc::new(info);
            }
            self.by_build_id
                .entry(info.build_id.clone())
                .or_insert_with(|| Arc::new(info))
                .clone()
        });
        if info.is_none() {
            tracing::debug!(path, "no readable ELF file");
        }
        self.by_inode.insert(dev_inode, info.clone());
        info
    }

    /// Drops the files no one else holds.
    pub fn prune(&mut self) {
        self.by_inode
            .retain(|_, e| e.as_ref().is_some_and(|e| Arc::strong_count(e) > 1));
        self.by_build_id.retain(|_, e| Arc::strong_count(e) > 1);
    }

    /// Number of files cached.
    pub fn len(&self) -> usize {
        self.by_inode.len()
    }

    /// Whether no file is cached.
    pub fn is_empty(&self) -> bool {
        self.by_inode.is_empty()
    }
}

fn open_file(path: &str) -> Option<std::fs::File> {
    let file = std::fs::File::open(path).ok()?;
    let meta = file.metadata().ok()?;
    (meta.is_file() && meta.len() <= MAX_ELF_BYTES).then_some(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symbolizes_this_test_binary() {
        let exe = std::env::current_exe().unwrap();
        let data = std::fs::read(&exe).unwrap();
        let elf = ElfInfo::parse(&*data, true).unwrap();
        assert!(!elf.build_id.is_empty());
        assert!(elf.has_symbols());
        // Find this function's file offset through our own maps and symbolize it.
        let maps = crate::process::parse_maps(&std::fs::read_to_string("/proc/self/maps").unwrap());
        let addr = symbolizes_this_test_binary as *const () as usize as u64;
        let m = maps
            .iter()
            .find(|m| m.start <= addr && addr < m.end)
            .unwrap();
        let name = elf.symbolize_offset(m.file_offset(addr)).unwrap();
        assert!(name.contains("symbolizes_this_test_binary"), "{name}");
    }
}
