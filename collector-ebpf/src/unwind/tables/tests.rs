//! The tables against real BPF maps (the profiler's own, loaded into this kernel) and real
//! processes: rows written straight into the map read back equal to [`compile_elf`]'s, a
//! file too large for the room is refused with its run given back, unused files are evicted,
//! and the free runs and placed files always add up to the capacity.
//!
//! Needs root (or CAP_BPF + CAP_PERFMON); `STRATA_SKIP_EBPF=1` skips.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::*;
use crate::bpf::{BpfProfiler, UnwindLimits};
use crate::config::Transport;
use crate::elf::ElfCache;

/// The profiler (held: its maps live with it) and tables of `chunks` chunks.
fn tables(chunks: u32) -> Option<(BpfProfiler, UnwindTables)> {
    let limits = UnwindLimits {
        chunks,
        processes: 8,
    };
    let mut profiler = match BpfProfiler::load(19, 0, Transport::RingBuffer, Some(limits), None) {
        Ok(p) => p,
        Err(e) if std::env::var("STRATA_SKIP_EBPF").as_deref() == Ok("1") => {
            eprintln!("skipped (STRATA_SKIP_EBPF=1): {e}");
            return None;
        }
        Err(e) => panic!("BPF refused ({e}); STRATA_SKIP_EBPF=1 skips"),
    };
    let (chunk_map, procs, _) = profiler.take_unwind_maps().expect("unwind maps");
    let stats = Arc::new(UnwindStats::default());
    let tables = UnwindTables::new(chunk_map, procs, chunks, 8, stats);
    Some((profiler, tables))
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A process of `program` (sleeping) and what the tables need of it.
fn process(program: &str, args: &[&str]) -> (Killed, ProcessInfo) {
    let child = Killed(
        Command::new(program)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{program}: {e}")),
    );
    let pid = child.0.id();
    let mut elfs = ElfCache::new(false);
    // Its libraries are mapped once the dynamic loader has run.
    for _ in 0..200 {
        std::thread::sleep(std::time::Duration::from_millis(10));
        let info = ProcessInfo::read(pid, "test", &mut elfs).expect("process info");
        if info.maps.iter().any(|m| m.path.contains("libc.so")) {
            return (child, info);
        }
    }
    panic!("{program} did not map libc");
}

/// Every placed file's rows, read back from the map, equal `compile_elf` of its file; free
/// runs and placed files add up to the capacity without overlapping.
fn check(tables: &UnwindTables, info: &ProcessInfo) {
    let mut runs: Vec<(u32, u32)> = tables.free.iter().map(|(s, l)| (*s, *l)).collect();
    runs.extend(
        tables
            .files
            .values()
            .filter_map(|f| f.placed)
            .map(|p| (p.first_chunk, p.chunks)),
    );
    runs.sort();
    let mut next = 0;
    for (start, len) in runs {
        assert_eq!(start, next, "runs overlap or leave a hole");
        next = start + len;
    }
    assert_eq!(next, tables.capacity_chunks);
    for m in &info.maps {
        let Some(elf) = m.elf.as_ref().filter(|e| !e.build_id.is_empty()) else {
            continue;
        };
        let Some(FileEntry {
            placed: Some(p), ..
        }) = tables.files.get(&elf.build_id)
        else {
            continue;
        };
        let want = compile_elf(&*std::fs::read(&m.path).unwrap()).unwrap();
        assert_eq!(
            (p.rows as usize, p.base),
            (want.len(), want.base()),
            "{}",
            m.path
        );
        let want: Vec<u64> = want.packed_slices().flatten().copied().collect();
        for (i, rows) in want.chunks(CHUNK_ROWS).enumerate() {
            let chunk = tables.chunks.get(&(p.first_chunk + i as u32), 0).unwrap();
            for (j, row) in rows.iter().enumerate() {
                let got = u64::from_le_bytes(chunk[j * 8..j * 8 + 8].try_into().unwrap());
                assert_eq!(got, *row, "{} row {}", m.path, i * CHUNK_ROWS + j);
            }
        }
    }
}

fn placed(tables: &UnwindTables, info: &ProcessInfo, file: &str) -> Option<Placed> {
    let m = info.maps.iter().find(|m| m.path.ends_with(file))?;
    tables.files.get(&m.elf.as_ref()?.build_id)?.placed
}

fn libc_chunks() -> u32 {
    let libc = std::fs::read("/lib/x86_64-linux-gnu/libc.so.6").unwrap();
    compile_elf(&*libc).unwrap().len().div_ceil(CHUNK_ROWS) as u32
}

#[test]
fn rows_written_in_place_read_back_and_runs_add_up() {
    let Some((_profiler, mut tables)) = tables(4096) else {
        return;
    };
    let (_sleep, info) = process("sleep", &["30"]);
    assert!(!tables.load_process(&info, Load::Full));
    assert!(placed(&tables, &info, "libc.so.6").is_some());
    assert!(placed(&tables, &info, "/sleep").is_some());
    assert_eq!(tables.stats.files_refused.load(Ordering::Relaxed), 0);
    check(&tables, &info);
}

#[test]
fn a_file_larger_than_the_room_is_refused_and_its_run_given_back() {
    let room = libc_chunks() - 1;
    let Some((_profiler, mut tables)) = tables(room) else {
        return;
    };
    let (_sleep, info) = process("sleep", &["30"]);
    tables.load_process(&info, Load::Full);
    assert!(placed(&tables, &info, "libc.so.6").is_none());
    assert!(placed(&tables, &info, "/sleep").is_some());
    assert_eq!(tables.stats.files_refused.load(Ordering::Relaxed), 1);
    check(&tables, &info);
}

#[test]
fn files_no_process_uses_are_evicted_for_a_new_one() {
    // Room for libc and the small files beside it, not for Debian's python3.11 (about a
    // thousand chunks, libpython linked in).
    let room = 2 * libc_chunks();
    let Some((_profiler, mut tables)) = tables(room) else {
        return;
    };
    let (_sleep, first) = process("sleep", &["30"]);
    tables.load_process(&first, Load::Full);
    assert!(placed(&tables, &first, "libc.so.6").is_some());
    tables.forget_process(first.pid);
    // Python's interpreter (about a thousand chunks) does not fit even in the whole room:
    // making room for it evicts the unused files, then it is refused; the files it maps
    // after it (libc again among them) are placed anew.
    let (_python, python) = process(
        "/usr/bin/python3.11",
        &["-c", "import time; time.sleep(30)"],
    );
    tables.load_process(&python, Load::Full);
    check(&tables, &python);
    assert!(tables.stats.files_evicted.load(Ordering::Relaxed) >= 1);
    assert_eq!(tables.stats.files_refused.load(Ordering::Relaxed), 1);
    assert!(placed(&tables, &python, "python3.11").is_none());
    assert!(placed(&tables, &python, "libc.so.6").is_some());
}
