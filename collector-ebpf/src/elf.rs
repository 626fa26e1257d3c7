//! [`ElfInfo`]: build id, loadable segments and function symbols of a mapped ELF file, read
//! once per file and shared per build id ([`ElfCache`]).
//!
//! # Build ids
//!
//! Every readable ELF file gets a non-empty build id, the first of these that applies
//! ([`BuildIdKind`]); the symbolizer applies the same rules to an uploaded file
//! ([`ElfInfo::parse`]) to match it with the mappings of the profiles:
//!
//! 1. **GNU** — the `NT_GNU_BUILD_ID` note (name `GNU`, type 3, in `.note.gnu.build-id`):
//!    its bytes in lowercase hex, e.g. `c89b11207f6479603b0d49bf291c092c2b719293` (40 digits
//!    for the usual SHA-1 id; the length is whatever the linker wrote).
//! 2. **Go** — the Go build id note (name `Go`, type 4, in `.note.go.buildid`, written by the
//!    Go linker; `go build` writes no GNU note): its text as is, exactly what
//!    `go tool buildid <file>` prints, e.g.
//!    `foh3mEXu7BLZjsN9pOwG/kATcXlYVCDEFouRMQed_/WwRFB1hPo9LBkekthSPG/x8hMC8emW2cCjXD0_1aY`
//!    (`/`-separated, never plain hex). Used only when there is no GNU note (a Go binary
//!    linked externally, e.g. with cgo, gets a GNU note from the external linker) and only
//!    when the note is UTF-8.
//! 3. **File hash** — neither note: the OpenTelemetry profiling `htlhash`, SHA-256 over the
//!    first 4,096 bytes of the file, its last 4,096 bytes (the two overlap, unpadded, in a
//!    file under 8 KiB; the whole file for both in one under 4 KiB) and its length as a
//!    big-endian u64, truncated to the first 16 bytes, in lowercase hex (32 digits), e.g.
//!    `600dcafe4a110000f2bf38c493f5fb92`. It depends on the file's bytes, so a separate
//!    debug file (`objcopy --only-keep-debug`) does not match it: upload the mapped file
//!    itself.
//!
//! The OpenTelemetry eBPF profiler reports the same three values (GNU in hex, Go as text,
//! `htlhash`); Parca's agent before it fell back to the Go build id too (hex-encoding it)
//! and to an xxHash of the whole `.text` section, read in full; the `htlhash` reads 8 KiB
//! whatever the file's size.

use std::collections::HashMap;
use std::sync::Arc;

use object::elf::{ELF_NOTE_GO, NT_GO_BUILD_ID, PT_LOAD};
use object::read::elf::{ElfFile, FileHeader, ProgramHeader as _, SectionHeader as _};
use object::{Object, ObjectSymbol, ReadRef, SymbolKind};

/// Files larger than this are not read (build id and symbols stay unknown).
const MAX_ELF_BYTES: u64 = 1 << 30;

/// Bytes hashed at each end of a file for a [`BuildIdKind::FileHash`] id.
const FILE_HASH_EDGE_BYTES: u64 = 4096;

/// Which rule formed an [`ElfInfo::build_id`] (the module doc gives the formats).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BuildIdKind {
    /// The GNU build id note, in lowercase hex.
    Gnu,
    /// The Go build id note, as `go tool buildid` prints it.
    Go,
    /// No build id note: [`file_hash_id`] of the file.
    FileHash,
}

/// What the collector keeps of one ELF file.
#[derive(Debug, Default)]
pub struct ElfInfo {
    /// The file's id (module doc): the GNU build id in hex, else the Go build id, else a
    /// hash of the file's first and last 4 KiB and length; empty only when reading the file
    /// failed.
    pub build_id: String,
    /// Which of the three `build_id` is; `None` when `build_id` is empty.
    pub build_id_kind: Option<BuildIdKind>,
    /// `PT_LOAD` segments: (file offset, file size, virtual address).
    segments: Vec<(u64, u64, u64)>,
    /// Function symbols sorted by address: (address, size, name); read on first use.
    symbols: std::sync::OnceLock<Vec<(u64, u64, Box<str>)>>,
    /// Paths to read the symbols from (through `/proc/<pid>/root`, then the plain path).
    paths: Vec<String>,
}

impl ElfInfo {
    /// Parses an ELF file (its bytes, or a [`object::ReadCache`] over the file so only the
    /// headers, notes, the first and last 4 KiB and symbol tables are read); `None` when it is
    /// not ELF.
    pub fn parse<'d, R: ReadRef<'d>>(data: R, with_symbols: bool) -> Option<ElfInfo> {
        let file = object::File::parse(data).ok()?;
        let (build_id, build_id_kind) = match build_id(&file, data) {
            Some((id, kind)) => (id, Some(kind)),
            None => (String::new(), None),
        };
        let segments = segments(data).unwrap_or_default();
        let symbols = std::sync::OnceLock::new();
        if with_symbols {
            let _ = symbols.set(read_symbols(&file));
        }
        Some(ElfInfo {
            build_id,
            build_id_kind,
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

fn read_symbols<'d, R: ReadRef<'d>>(file: &object::File<'d, R>) -> Vec<(u64, u64, Box<str>)> {
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

fn segments<'d, R: ReadRef<'d>>(data: R) -> Option<Vec<(u64, u64, u64)>> {
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

/// The id of a parsed ELF file and its kind, by the rules of the module doc.
fn build_id<'d, R: ReadRef<'d>>(
    file: &object::File<'d, R>,
    data: R,
) -> Option<(String, BuildIdKind)> {
    if let Some(id) = file.build_id().ok().flatten().filter(|id| !id.is_empty()) {
        return Some((hex(id), BuildIdKind::Gnu));
    }
    let go = match file {
        object::File::Elf32(f) => go_build_id(f),
        object::File::Elf64(f) => go_build_id(f),
        _ => None,
    };
    if let Some(id) = go {
        return Some((id.to_owned(), BuildIdKind::Go));
    }
    file_hash_id(data).map(|id| (id, BuildIdKind::FileHash))
}

/// The text of the first Go build id note (name `Go`, type 4) in a `PT_NOTE` segment or,
/// failing that, an `SHT_NOTE` section; `None` when there is none or it is empty or not UTF-8.
fn go_build_id<'d, Elf: FileHeader, R: ReadRef<'d>>(file: &ElfFile<'d, Elf, R>) -> Option<&'d str> {
    let (endian, data) = (file.endian(), file.data());
    let is_go = |note: &object::read::elf::Note<'d, Elf>| {
        note.name() == ELF_NOTE_GO && note.n_type(endian) == NT_GO_BUILD_ID
    };
    let segments = file
        .elf_program_headers()
        .iter()
        .filter_map(|p| p.notes(endian, data).ok().flatten());
    let sections = file
        .elf_section_table()
        .iter()
        .filter_map(|s| s.notes(endian, data).ok().flatten());
    for mut notes in segments.chain(sections) {
        while let Ok(Some(note)) = notes.next() {
            if is_go(&note) {
                return std::str::from_utf8(note.desc())
                    .ok()
                    .filter(|id| !id.is_empty());
            }
        }
    }
    None
}

/// The [`BuildIdKind::FileHash`] id of a file (its bytes, or a [`object::ReadCache`] over
/// it): the OpenTelemetry profiling `htlhash`, the first 16 bytes of
/// `SHA-256(file[..min(4096, len)] ‖ file[len - min(4096, len)..] ‖ u64 len big-endian)` in
/// lowercase hex; `None` when the file cannot be read.
pub fn file_hash_id<'d, R: ReadRef<'d>>(data: R) -> Option<String> {
    let len = data.len().ok()?;
    let edge = len.min(FILE_HASH_EDGE_BYTES);
    let head = data.read_bytes_at(0, edge).ok()?;
    let tail = data.read_bytes_at(len - edge, edge).ok()?;
    let mut sha = ring::digest::Context::new(&ring::digest::SHA256);
    sha.update(head);
    sha.update(tail);
    sha.update(&len.to_be_bytes());
    Some(hex(&sha.finish().as_ref()[..16]))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
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
                let _ = info.symbols.set(Vec::new());
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
    use std::path::{Path, PathBuf};
    use std::process::Command;

    /// Runs a tool; `None` (with a message) when it is not installed.
    fn run(cmd: &mut Command, what: &str) -> Option<std::process::Output> {
        match cmd.output() {
            Ok(out) => {
                assert!(
                    out.status.success(),
                    "{what}: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
                Some(out)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                eprintln!("SKIPPED: {what} needs a tool that is not installed: {e}");
                None
            }
            Err(e) => panic!("{what}: {e}"),
        }
    }

    /// Parses a file both ways the collector does: from its bytes, and through a
    /// [`ElfCache`] (a [`object::ReadCache`] over the open file); both must agree.
    fn parse_file(path: &Path) -> ElfInfo {
        let elf = ElfInfo::parse(&*std::fs::read(path).unwrap(), false).unwrap();
        let path = path.to_str().unwrap();
        let cached = ElfCache::new(false).get((0, 0), path, path).unwrap();
        assert_eq!(cached.build_id, elf.build_id);
        assert_eq!(cached.build_id_kind, elf.build_id_kind);
        elf
    }

    /// The GNU build id that `readelf -n` prints for a file; `None` when there is none.
    fn readelf_gnu_build_id(path: &Path) -> Option<Option<String>> {
        let out = run(Command::new("readelf").arg("-n").arg(path), "readelf -n")?;
        Some(
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .find_map(|l| l.trim().strip_prefix("Build ID: "))
                .map(|id| id.trim().to_owned()),
        )
    }

    #[test]
    fn gnu_build_id_in_hex_as_readelf_prints_it() {
        let exe = std::env::current_exe().unwrap();
        let elf = parse_file(&exe);
        assert_eq!(elf.build_id_kind, Some(BuildIdKind::Gnu));
        assert!(
            elf.build_id.len() >= 16
                && elf
                    .build_id
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
            "{}",
            elf.build_id
        );
        if let Some(readelf) = readelf_gnu_build_id(&exe) {
            assert_eq!(readelf.as_deref(), Some(elf.build_id.as_str()));
        }
    }

    /// `go build` of a tiny program in `dir`; `None` (with a message) when `go` is missing.
    fn build_go(dir: &Path) -> Option<PathBuf> {
        std::fs::write(
            dir.join("main.go"),
            "package main\n\nimport \"fmt\"\n\nfunc main() { fmt.Println(\"hi\") }\n",
        )
        .unwrap();
        let out = dir.join("hello");
        let mut go = Command::new("go");
        go.args(["build", "-o"])
            .arg(&out)
            .arg("main.go")
            .current_dir(dir)
            .env("GOTOOLCHAIN", "local")
            .env("CGO_ENABLED", "0");
        // `go` needs a build cache; use the user's when there is one.
        if ["GOCACHE", "XDG_CACHE_HOME", "HOME"]
            .iter()
            .all(|v| std::env::var_os(v).is_none())
        {
            go.env("GOCACHE", dir.join("gocache"));
        }
        run(&mut go, "go build")?;
        Some(out)
    }

    #[test]
    fn go_binary_gets_the_go_build_id() {
        let dir = tempfile::tempdir().unwrap();
        let Some(exe) = build_go(dir.path()) else {
            return;
        };
        let elf = parse_file(&exe);
        let mut tool = Command::new("go");
        tool.args(["tool", "buildid"]).arg(&exe);
        if std::env::var_os("HOME").is_none() && std::env::var_os("XDG_CACHE_HOME").is_none() {
            tool.env("GOCACHE", dir.path().join("gocache"));
        }
        let want = run(&mut tool, "go tool buildid").unwrap();
        let want = String::from_utf8(want.stdout).unwrap();
        assert_eq!(elf.build_id, want.trim());
        assert_eq!(elf.build_id_kind, Some(BuildIdKind::Go));
        assert!(elf.build_id.contains('/'), "{}", elf.build_id);
        // `go build` writes no GNU build id: the Go one is a fallback, not a choice.
        if let Some(readelf) = readelf_gnu_build_id(&exe) {
            assert_eq!(readelf, None);
        }
        // A Go binary is still symbolized from its own symbol table.
        assert!(
            ElfInfo::parse(&*std::fs::read(&exe).unwrap(), true)
                .unwrap()
                .has_symbols()
        );
    }

    /// The file hash recomputed by `sha256sum` over the bytes the spec names.
    fn sha256sum_file_hash(path: &Path) -> Option<String> {
        use std::io::Write as _;
        let data = std::fs::read(path).unwrap();
        let edge = data.len().min(4096);
        let mut input = data[..edge].to_vec();
        input.extend_from_slice(&data[data.len() - edge..]);
        input.extend_from_slice(&(data.len() as u64).to_be_bytes());
        let mut child = match Command::new("sha256sum")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
        {
            Ok(c) => c,
            Err(e) => {
                eprintln!("SKIPPED: checking the file hash with sha256sum: {e}");
                return None;
            }
        };
        child.stdin.take().unwrap().write_all(&input).unwrap();
        let out = child.wait_with_output().unwrap();
        let digest = String::from_utf8(out.stdout).unwrap();
        Some(digest[..32].to_owned())
    }

    #[test]
    fn binary_without_build_id_gets_the_file_hash() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("hello.c");
        std::fs::write(&src, "int main(void) { return 0; }\n").unwrap();
        let build = |name: &str, extra: &[&str]| {
            let exe = dir.path().join(name);
            let mut clang = Command::new("clang");
            clang
                .args(["-O1", "-Wl,--build-id=none", "-o"])
                .arg(&exe)
                .arg(&src)
                .args(extra);
            run(&mut clang, "clang").map(|_| exe)
        };
        let Some(exe) = build("hello", &[]) else {
            return;
        };
        if let Some(readelf) = readelf_gnu_build_id(&exe) {
            assert_eq!(readelf, None, "clang -Wl,--build-id=none wrote a build id");
        }
        let elf = parse_file(&exe);
        assert_eq!(elf.build_id_kind, Some(BuildIdKind::FileHash));
        assert_eq!(elf.build_id.len(), 32);
        assert_eq!(
            Some(&elf.build_id),
            file_hash_id(&*std::fs::read(&exe).unwrap()).as_ref()
        );
        // Stable: the same file gives the same id again, and so does a copy of it.
        let copy = dir.path().join("copy");
        std::fs::copy(&exe, &copy).unwrap();
        assert_eq!(parse_file(&exe).build_id, elf.build_id);
        assert_eq!(parse_file(&copy).build_id, elf.build_id);
        if let Some(want) = sha256sum_file_hash(&exe) {
            assert_eq!(elf.build_id, want);
        }
        // Another program gets another id.
        let other = build("other", &["-DUNUSED=1", "-g"]).unwrap();
        assert_ne!(parse_file(&other).build_id, elf.build_id);
    }

    #[test]
    fn file_hash_of_small_and_empty_files() {
        // Under 4 KiB both ends are the whole file; the empty file hashes just its length.
        let small = b"\x7fELF tiny".as_slice();
        let mut input = small.to_vec();
        input.extend_from_slice(small);
        input.extend_from_slice(&(small.len() as u64).to_be_bytes());
        let digest = ring::digest::digest(&ring::digest::SHA256, &input);
        assert_eq!(file_hash_id(small).unwrap(), hex(&digest.as_ref()[..16]));
        // SHA-256 of eight zero bytes.
        assert_eq!(
            file_hash_id(&[][..]).unwrap(),
            "af5570f5a1810b7af78caf4bc70a660f"
        );
    }

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
