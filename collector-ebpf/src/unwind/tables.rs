//! [`UnwindTables`]: the unwind rows of every mapped file and the mappings of every sampled
//! process, as the BPF unwinder reads them (`unwind_chunks` and `proc_unwind` in
//! `bpf/unwind.bpf.h`).
//!
//! Rows are compiled once per file (by build id) and shared by every process that maps it.
//! They live in one BPF array of 64-row chunks whose size is the configured budget
//! (`unwind_table_max_bytes`); each file takes one contiguous run of chunks (first fit). When
//! the budget is full, files no process uses any more are evicted (least recently used
//! first); a file that still does not fit is unwound by frame pointers and counted as
//! refused.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use aya::maps::{Array, HashMap as BpfHashMap, MapData};

use crate::process::{MapEntry, ProcessInfo};
use crate::unwind::UnwindStats;
use object::ReadRef;

use crate::error::{Error, Result};
use crate::unwind::rows::{
    RowSink, UnwindRow, UnwindRows, cfi_bytes, compile_elf, compile_elf_into,
};

/// Rows per element of `unwind_chunks` (`UNWIND_CHUNK_ROWS`).
pub const CHUNK_ROWS: usize = 64;
/// Bytes of one element of `unwind_chunks`.
pub const CHUNK_BYTES: usize = CHUNK_ROWS * UnwindRow::SIZE;
/// Mappings one process's entry holds (`MAX_PROC_MAPPINGS`); beyond them (by address) the
/// unwinder stops with "no mapping".
pub const MAX_PROC_MAPPINGS: usize = 256;
/// Bytes of one `struct proc_mapping`.
const MAPPING_BYTES: usize = 40;
/// Bytes of one `proc_unwind` value: what each sampled process costs in the kernel.
pub const PROC_UNWIND_BYTES: usize = 8 + MAX_PROC_MAPPINGS * MAPPING_BYTES;
/// Rows of the largest table the BPF search can walk (`MAX_ROW_SEARCH` steps).
pub const MAX_FILE_ROWS: usize = 1 << 24;
/// Files with more call frame information than this (a compiler's or browser's shared
/// library: seconds to compile) are left to frame pointers in a quick load
/// ([`Load::Quick`]) and compiled in a full one.
pub const LARGE_CFI_BYTES: u64 = 2 << 20;

/// How much of a process to load.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Load {
    /// Every file of the process compiled.
    Full,
    /// Files already loaded and small ones; large ones are walked by frame pointers until a
    /// full load.
    Quick,
}

/// What a mapping's file is to the tables.
enum FileOf {
    /// Loaded (with or without rows) under this key.
    Loaded(String),
    /// Large and not loaded: left to a full load.
    Deferred,
    /// Memory the unwinder stops at (anonymous / JIT code, unreadable files).
    Stop,
}

/// `struct proc_mapping.kind`.
const MAPPING_CFI: u32 = 0;
const MAPPING_FP: u32 = 1;
const MAPPING_JIT: u32 = 2;

type ChunkMap = Array<MapData, [u8; CHUNK_BYTES]>;
type ProcMap = BpfHashMap<MapData, u32, [u8; PROC_UNWIND_BYTES]>;

/// Where a file's rows are in `unwind_chunks`.
#[derive(Clone, Copy, Debug)]
struct Placed {
    first_chunk: u32,
    chunks: u32,
    rows: u32,
    /// The virtual address of row offset 0.
    base: u64,
}

/// One file as the tables know it.
#[derive(Debug)]
struct FileEntry {
    /// `None`: no call frame information, or refused for lack of room (frame pointers).
    placed: Option<Placed>,
    /// Processes whose entry refers to it.
    users: u32,
    /// When a process last loaded it (a counter).
    last_used: u64,
}

/// The BPF maps of the unwinder and what userspace knows of their contents.
pub struct UnwindTables {
    chunks: ChunkMap,
    procs: ProcMap,
    capacity_chunks: u32,
    max_processes: u32,
    /// Free runs of chunks: first chunk → length.
    free: BTreeMap<u32, u32>,
    files: HashMap<String, FileEntry>,
    /// The file keys each loaded process refers to.
    processes: HashMap<u32, Vec<String>>,
    /// The vDSO's ELF image (the same in every process of this kernel), read once.
    vdso: Option<Option<Arc<Vec<u8>>>>,
    clock: u64,
    stats: Arc<UnwindStats>,
}

impl std::fmt::Debug for UnwindTables {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UnwindTables")
            .field("capacity_chunks", &self.capacity_chunks)
            .field("files", &self.files.len())
            .field("processes", &self.processes.len())
            .finish_non_exhaustive()
    }
}

impl UnwindTables {
    /// Wraps the two maps: `chunks` with `capacity_chunks` elements, `procs` with room for
    /// `max_processes` entries.
    pub(crate) fn new(
        chunks: ChunkMap,
        procs: ProcMap,
        capacity_chunks: u32,
        max_processes: u32,
        stats: Arc<UnwindStats>,
    ) -> Self {
        let mut free = BTreeMap::new();
        if capacity_chunks > 0 {
            free.insert(0, capacity_chunks);
        }
        stats.capacity_bytes.store(
            u64::from(capacity_chunks) * CHUNK_BYTES as u64,
            Ordering::Relaxed,
        );
        UnwindTables {
            chunks,
            procs,
            capacity_chunks,
            max_processes,
            free,
            files: HashMap::new(),
            processes: HashMap::new(),
            vdso: None,
            clock: 0,
            stats,
        }
    }

    /// Loads the rows of every file `info` maps (those not loaded yet; with [`Load::Quick`]
    /// the small ones) and writes its mappings for the unwinder, replacing what an earlier load
    /// of the same pid wrote. Returns whether a large file was left for a full load.
    pub fn load_process(&mut self, info: &ProcessInfo, load: Load) -> bool {
        self.forget_process(info.pid);
        if self.processes.len() >= self.max_processes as usize {
            self.stats.processes_refused.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        let mut deferred = false;
        self.clock += 1;
        let mut value = vec![0u8; PROC_UNWIND_BYTES];
        let mut keys = Vec::new();
        let mut count = 0usize;
        for m in info.maps.iter().take(MAX_PROC_MAPPINGS) {
            let (kind, placed) = match self.file_of(info.pid, m, load) {
                FileOf::Deferred => {
                    deferred = true;
                    (MAPPING_FP, None)
                }
                FileOf::Loaded(key) => {
                    let entry = self.files.get_mut(&key).expect("just loaded");
                    entry.users += 1;
                    entry.last_used = self.clock;
                    let placed = entry.placed;
                    keys.push(key);
                    match placed {
                        Some(p) => (MAPPING_CFI, Some(p)),
                        None => (MAPPING_FP, None),
                    }
                }
                FileOf::Stop => (MAPPING_JIT, None),
            };
            let mut rel_base = 0u64;
            let (mut first_row, mut rows) = (0u32, 0u32);
            if let Some(p) = placed {
                // A pc's file virtual address is pc - start + vaddr(start's offset).
                let Some(vaddr) = start_vaddr(m, self.vdso_image()) else {
                    continue;
                };
                rel_base = m.start.wrapping_sub(vaddr).wrapping_add(p.base);
                first_row = p.first_chunk * CHUNK_ROWS as u32;
                rows = p.rows;
            }
            let o = 8 + count * MAPPING_BYTES;
            let mut put = |at: usize, bytes: &[u8]| {
                value[o + at..o + at + bytes.len()].copy_from_slice(bytes);
            };
            put(0, &m.start.to_le_bytes());
            put(8, &m.end.to_le_bytes());
            put(16, &rel_base.to_le_bytes());
            put(24, &first_row.to_le_bytes());
            put(28, &rows.to_le_bytes());
            put(32, &kind.to_le_bytes());
            count += 1;
        }
        value[..4].copy_from_slice(&(count as u32).to_le_bytes());
        let value: [u8; PROC_UNWIND_BYTES] = value.try_into().expect("sized");
        if let Err(e) = self.procs.insert(info.pid, value, 0) {
            tracing::debug!(pid = info.pid, error = %e, "cannot write the process's unwind mappings");
            self.release(&keys);
            self.stats.processes_refused.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        self.processes.insert(info.pid, keys);
        self.update_stats();
        deferred
    }

    /// Removes a process's mappings (it exited or is no longer sampled); its files stay loaded
    /// until their room is needed.
    pub fn forget_process(&mut self, pid: u32) {
        if let Some(keys) = self.processes.remove(&pid) {
            let _ = self.procs.remove(&pid);
            self.release(&keys);
            self.update_stats();
        }
    }

    /// Pids with mappings loaded.
    pub fn processes(&self) -> impl Iterator<Item = u32> + '_ {
        self.processes.keys().copied()
    }

    fn release(&mut self, keys: &[String]) {
        for k in keys {
            if let Some(e) = self.files.get_mut(k) {
                e.users = e.users.saturating_sub(1);
            }
        }
    }

    fn update_stats(&self) {
        let s = &self.stats;
        s.processes
            .store(self.processes.len() as u64, Ordering::Relaxed);
        s.process_bytes.store(
            (self.processes.len() * PROC_UNWIND_BYTES) as u64,
            Ordering::Relaxed,
        );
        let placed = self.files.values().filter_map(|f| f.placed);
        let (mut files, mut rows) = (0u64, 0u64);
        for p in placed {
            files += 1;
            rows += u64::from(p.rows);
        }
        s.files.store(files, Ordering::Relaxed);
        s.table_bytes
            .store(rows * UnwindRow::SIZE as u64, Ordering::Relaxed);
    }

    fn vdso_image(&mut self) -> Option<&[u8]> {
        self.vdso
            .get_or_insert_with(|| read_own_vdso().map(Arc::new))
            .as_deref()
            .map(|v| v.as_slice())
    }

    /// Mapping `m`'s file, loaded (compiled and placed) if it was not (unless large and the
    /// load quick).
    fn file_of(&mut self, pid: u32, m: &MapEntry, load: Load) -> FileOf {
        let key = if m.path == "[vdso]" {
            "[vdso]".to_owned()
        } else {
            match m.elf.as_ref() {
                Some(elf) if !elf.build_id.is_empty() => elf.build_id.clone(),
                _ => return FileOf::Stop,
            }
        };
        if self.files.contains_key(&key) {
            return FileOf::Loaded(key);
        }
        let (placed, rows) = if key == "[vdso]" {
            match self.vdso_image().map(compile_elf) {
                Some(Ok(rows)) => (self.place(&rows), rows.len()),
                Some(Err(e)) => {
                    tracing::debug!(error = %e, "no unwind rows for the vDSO");
                    (None, 0)
                }
                None => return FileOf::Stop,
            }
        } else {
            let Some(file) = open_file(pid, &m.path) else {
                return FileOf::Stop;
            };
            let data = object::ReadCache::new(file);
            if load == Load::Quick && cfi_bytes(&data) > LARGE_CFI_BYTES {
                return FileOf::Deferred;
            }
            self.compile_into_tables(&data, &m.path)
        };
        if placed.is_none() && rows > 0 {
            self.stats.files_refused.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(path = %m.path, rows, "no room for the unwind rows");
        }
        self.files.insert(
            key.clone(),
            FileEntry {
                placed,
                users: 0,
                last_used: self.clock,
            },
        );
        FileOf::Loaded(key)
    }

    /// Compiles a file's rows straight into the largest free run of chunks (no copy of them in
    /// memory: a large binary has millions), then frees the run's unused tail. When the run
    /// is too small, compiles into memory and places the rows as [`UnwindTables::place`]
    /// does, evicting unused files. Returns where the rows are and how many there are.
    fn compile_into_tables<'d, R: ReadRef<'d>>(
        &mut self,
        data: R,
        path: &str,
    ) -> (Option<Placed>, usize) {
        let largest = self.free.iter().max_by_key(|(_, len)| **len);
        if let Some((&start, &len)) = largest {
            self.free.remove(&start);
            let mut writer = ChunkWriter::new(&mut self.chunks, start, len);
            let written =
                compile_elf_into(data, &mut writer).and_then(|c| Ok((c, writer.finish()?)));
            match written {
                Ok((compiled, used)) => {
                    if used < len {
                        self.free_run(start + used, len - used);
                    }
                    let placed = (compiled.rows > 0).then_some(Placed {
                        first_chunk: start,
                        chunks: used,
                        rows: compiled.rows as u32,
                        base: compiled.base,
                    });
                    return (placed, compiled.rows);
                }
                Err(Error::UnwindTableFull { .. }) => self.free_run(start, len),
                Err(e) => {
                    self.free_run(start, len);
                    tracing::debug!(path, error = %e, "no unwind rows");
                    return (None, 0);
                }
            }
        }
        match compile_elf(data) {
            Ok(rows) => (self.place(&rows), rows.len()),
            Err(e) => {
                tracing::debug!(path, error = %e, "no unwind rows");
                (None, 0)
            }
        }
    }

    /// Writes `rows` into a free run of chunks (evicting unused files when needed).
    fn place(&mut self, rows: &UnwindRows) -> Option<Placed> {
        if rows.is_empty() || rows.len() > MAX_FILE_ROWS {
            return None;
        }
        let chunks = rows.len().div_ceil(CHUNK_ROWS) as u32;
        let first_chunk = match self.allocate(chunks) {
            Some(c) => c,
            None => {
                self.evict_unused(chunks);
                self.allocate(chunks)?
            }
        };
        let mut writer = ChunkWriter::new(&mut self.chunks, first_chunk, chunks);
        let written = rows
            .packed_slices()
            .flatten()
            .try_for_each(|&row| writer.push(row))
            .and_then(|()| writer.finish());
        if let Err(e) = written {
            tracing::warn!(error = %e, "cannot write unwind rows");
            self.free_run(first_chunk, chunks);
            return None;
        }
        Some(Placed {
            first_chunk,
            chunks,
            rows: rows.len() as u32,
            base: rows.base(),
        })
    }

    fn allocate(&mut self, chunks: u32) -> Option<u32> {
        let (&start, &len) = self.free.iter().find(|(_, len)| **len >= chunks)?;
        self.free.remove(&start);
        if len > chunks {
            self.free.insert(start + chunks, len - chunks);
        }
        Some(start)
    }

    fn free_run(&mut self, start: u32, len: u32) {
        let (mut start, mut len) = (start, len);
        if let Some((&s, &l)) = self.free.range(..start).next_back()
            && s + l == start
        {
            self.free.remove(&s);
            start = s;
            len += l;
        }
        if let Some(&l) = self.free.get(&(start + len)) {
            self.free.remove(&(start + len));
            len += l;
        }
        self.free.insert(start, len);
    }

    /// Evicts files no process uses, least recently used first, until a run of `chunks` is
    /// free or none is left to evict.
    fn evict_unused(&mut self, chunks: u32) {
        let mut unused: Vec<(u64, String)> = self
            .files
            .iter()
            .filter(|(_, f)| f.users == 0)
            .map(|(k, f)| (f.last_used, k.clone()))
            .collect();
        unused.sort();
        for (_, key) in unused {
            if self.free.values().any(|&l| l >= chunks) {
                return;
            }
            if let Some(FileEntry {
                placed: Some(p), ..
            }) = self.files.remove(&key)
            {
                self.free_run(p.first_chunk, p.chunks);
                self.stats.files_evicted.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// Rows written straight into a reserved run of `unwind_chunks`, a chunk at a time.
struct ChunkWriter<'m> {
    chunks: &'m mut ChunkMap,
    first_chunk: u32,
    /// Chunks in the run.
    capacity: u32,
    /// The chunk being filled.
    chunk: [u8; CHUNK_BYTES],
    /// Rows written so far.
    rows: usize,
}

impl<'m> ChunkWriter<'m> {
    /// A writer of the `capacity` chunks from `first_chunk`.
    fn new(chunks: &'m mut ChunkMap, first_chunk: u32, capacity: u32) -> Self {
        ChunkWriter {
            chunks,
            first_chunk,
            capacity,
            chunk: [0; CHUNK_BYTES],
            rows: 0,
        }
    }

    /// Writes the chunk holding row `rows - 1`.
    fn write(&mut self) -> Result<()> {
        let index = self.first_chunk + ((self.rows - 1) / CHUNK_ROWS) as u32;
        self.chunks
            .set(index, self.chunk, 0)
            .map_err(|e| Error::bpf("write unwind rows", e))?;
        self.chunk.fill(0);
        Ok(())
    }

    /// Writes the last, partly filled chunk; returns the chunks used.
    fn finish(&mut self) -> Result<u32> {
        if !self.rows.is_multiple_of(CHUNK_ROWS) {
            self.write()?;
        }
        Ok(self.rows.div_ceil(CHUNK_ROWS) as u32)
    }
}

impl RowSink for ChunkWriter<'_> {
    fn push(&mut self, packed: u64) -> Result<()> {
        if self.rows >= MAX_FILE_ROWS || self.rows / CHUNK_ROWS >= self.capacity as usize {
            return Err(Error::UnwindTableFull { rows: self.rows });
        }
        let j = self.rows % CHUNK_ROWS;
        self.chunk[j * UnwindRow::SIZE..(j + 1) * UnwindRow::SIZE]
            .copy_from_slice(&packed.to_le_bytes());
        self.rows += 1;
        if j == CHUNK_ROWS - 1 {
            self.write()?;
        }
        Ok(())
    }
}

/// The file virtual address of mapping `m`'s first byte.
fn start_vaddr(m: &MapEntry, vdso: Option<&[u8]>) -> Option<u64> {
    let len = m.end - m.start;
    if m.path == "[vdso]" {
        let segments = strata_symbolizer::LoadSegments::parse_from(vdso?).ok()?;
        return segments.mapping_start_vaddr(m.offset, len);
    }
    m.elf.as_ref()?.mapping_start_vaddr(m.offset, len)
}

/// A mapped file, through `/proc/<pid>/root` (containers) or else the plain path.
fn open_file(pid: u32, path: &str) -> Option<std::fs::File> {
    if !path.starts_with('/') {
        return None;
    }
    std::fs::File::open(format!("/proc/{pid}/root{path}"))
        .or_else(|_| std::fs::File::open(path))
        .ok()
}

/// This process's vDSO image (`[vdso]` in `/proc/self/maps`, read from `/proc/self/mem`):
/// the kernel maps the same one into every process.
fn read_own_vdso() -> Option<Vec<u8>> {
    use std::os::unix::fs::FileExt;
    let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
    let line = maps.lines().find(|l| l.ends_with("[vdso]"))?;
    let (range, _) = line.split_once(' ')?;
    let (s, e) = range.split_once('-')?;
    let (start, end) = (
        u64::from_str_radix(s, 16).ok()?,
        u64::from_str_radix(e, 16).ok()?,
    );
    let mem = std::fs::File::open("/proc/self/mem").ok()?;
    let mut buf = vec![0u8; (end - start) as usize];
    mem.read_exact_at(&mut buf, start).ok()?;
    Some(buf)
}

#[cfg(test)]
mod tests;
