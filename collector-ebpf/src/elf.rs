//! [`ElfInfo`]: build id, loadable segments and function symbols of a mapped ELF file, read
//! once per file and shared per build id ([`ElfCache`]).
//!
//! The build id is [`strata_symbolizer::BuildId`]'s (its module doc gives the rules: the GNU
//! note in hex, else the Go note's text, else a hash of the file's first and last 4 KiB and
//! length), so the symbolizer matches an uploaded file with the mappings of the profiles by
//! the same rules.

use std::collections::HashMap;
use std::sync::Arc;

use object::ReadRef;
use strata_symbolizer::{BuildId, BuildIdKind, LoadSegments, SymbolTable};

/// Files larger than this are not read (build id and symbols stay unknown).
const MAX_ELF_BYTES: u64 = 1 << 30;

/// What the collector keeps of one ELF file.
#[derive(Debug, Default)]
pub struct ElfInfo {
    /// The file's [`BuildId`] (module doc): the GNU build id in hex, else the Go build id,
    /// else a hash of the file's first and last 4 KiB and length; empty only when reading the
    /// file failed.
    pub build_id: String,
    /// Which of the three `build_id` is; `None` when `build_id` is empty.
    pub build_id_kind: Option<BuildIdKind>,
    /// `PT_LOAD` segments.
    segments: LoadSegments,
    /// Function symbols; read on first use.
    symbols: std::sync::OnceLock<SymbolTable>,
    /// Paths to read the symbols from (through `/proc/<pid>/root`, then the plain path).
    paths: Vec<String>,
}

impl ElfInfo {
    /// Parses an ELF file (its bytes, or a [`object::ReadCache`] over the file so only the
    /// headers, notes, the first and last 4 KiB and symbol tables are read); `None` when it is
    /// not ELF.
    pub fn parse<'d, R: ReadRef<'d>>(data: R, with_symbols: bool) -> Option<ElfInfo> {
        let file = object::File::parse(data).ok()?;
        let (build_id, build_id_kind) = match BuildId::of_parsed(&file, data) {
            Some(BuildId { id, kind }) => (id, Some(kind)),
            None => (String::new(), None),
        };
        let segments = LoadSegments::parse_from(data).unwrap_or_default();
        let symbols = std::sync::OnceLock::new();
        if with_symbols {
            let _ = symbols.set(SymbolTable::read(&file));
        }
        Some(ElfInfo {
            build_id,
            build_id_kind,
            segments,
            symbols,
            paths: Vec::new(),
        })
    }

    fn symbols(&self) -> &SymbolTable {
        self.symbols.get_or_init(|| {
            self.paths
                .iter()
                .find_map(|p| {
                    let file = open_file(p)?;
                    if let Some(table) = SymbolTable::read_elf64_file(&file) {
                        return Some(table);
                    }
                    let cache = object::ReadCache::new(file);
                    let file = object::File::parse(&cache).ok()?;
                    Some(SymbolTable::read(&file))
                })
                .unwrap_or_default()
        })
    }

    /// Whether the file has function symbols.
    pub fn has_symbols(&self) -> bool {
        !self.symbols().is_empty()
    }

    /// The virtual address a mapping of file bytes `[offset, offset + len)` gives its first
    /// byte ([`LoadSegments::mapping_start_vaddr`]).
    pub fn mapping_start_vaddr(&self, offset: u64, len: u64) -> Option<u64> {
        self.segments.mapping_start_vaddr(offset, len)
    }

    /// The virtual address (as in the symbol table) of a file offset.
    pub fn offset_to_vaddr(&self, offset: u64) -> Option<u64> {
        self.segments.offset_to_vaddr(offset)
    }

    /// The function at a file offset (its raw name).
    pub fn symbolize_offset(&self, offset: u64) -> Option<std::borrow::Cow<'_, str>> {
        self.symbols().lookup(self.offset_to_vaddr(offset)?)
    }
}

/// ELF files by (device, inode), sharing one [`ElfInfo`] per GNU or Go build id (not per
/// file hash: two files whose first and last 4 KiB and length agree get the same
/// [`BuildIdKind::FileHash`] id but keep their own segments and symbols). Entries no mapping
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
                let _ = info.symbols.set(SymbolTable::default());
            }
            info
        });
        let info = info.map(|info| {
            if !matches!(info.build_id_kind, Some(BuildIdKind::Gnu | BuildIdKind::Go)) {
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
        let want = BuildId::of(&*data).unwrap();
        assert_eq!(elf.build_id, want.id);
        assert_eq!(elf.build_id_kind, Some(want.kind));
        // Read through the cache (a `ReadCache` over the open file), the id is the same.
        let path = exe.to_str().unwrap();
        let cached = ElfCache::new(false).get((0, 0), path, path).unwrap();
        assert_eq!(cached.build_id, elf.build_id);
        assert_eq!(cached.build_id_kind, elf.build_id_kind);
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
