//! [`Interpreter`]: a CPython binary (`python3.X` or `libpython3.X.so`) as the BPF walker needs
//! it — where `_PyRuntime` and `_PyEval_EvalFrameDefault` are, and the struct offsets of its
//! version ([`PyOffsets`]) — and [`PythonProcesses`], which writes one `py_procs` entry per
//! Python process for `bpf/unwind.bpf.h`.

use std::collections::HashMap;
use std::sync::Arc;

use aya::maps::{HashMap as BpfHashMap, MapData};
use object::{Object, ObjectSymbol, ReadRef};

use crate::process::{MapEntry, ProcessInfo};

/// How the walker knows the last Python frame of one `_PyEval_EvalFrameDefault` call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntryMark {
    /// 3.11: the frame's `is_entry` byte is set (the frame is emitted, then the call ends).
    IsEntry = 0,
    /// 3.12+: a shim frame whose `owner` byte is `FRAME_OWNED_BY_CSTACK` (3) ends the call
    /// (the shim is not emitted).
    OwnerCstack = 1,
}

/// Offsets into CPython's runtime structures, per minor version (x86_64).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PyOffsets {
    /// `_PyRuntimeState.interpreters.head`.
    pub interp_head: u32,
    /// `PyInterpreterState.threads.head`.
    pub interp_threads_head: u32,
    /// `PyThreadState.next`.
    pub tstate_next: u32,
    /// `PyThreadState.native_thread_id`.
    pub tstate_native_tid: u32,
    /// `PyThreadState.cframe` (3.11, 3.12) or `current_frame` (3.13).
    pub tstate_frame: u32,
    /// `_PyCFrame.current_frame`, or [`PyOffsets::NONE`] when `tstate_frame` is the frame.
    pub cframe_current: u32,
    /// `_PyInterpreterFrame.f_code` (`f_executable` in 3.13).
    pub frame_code: u32,
    /// `_PyInterpreterFrame.previous`.
    pub frame_previous: u32,
    /// `_PyInterpreterFrame.prev_instr` (`instr_ptr` in 3.13).
    pub frame_instr: u32,
    /// `_PyInterpreterFrame.is_entry` (3.11) or `owner` (3.12+).
    pub frame_entry: u32,
    /// How the entry frame is marked.
    pub entry_mark: EntryMark,
    /// `PyCodeObject.co_firstlineno`.
    pub code_firstlineno: u32,
    /// `PyCodeObject.co_filename`.
    pub code_filename: u32,
    /// `PyCodeObject.co_qualname`.
    pub code_qualname: u32,
    /// `PyCodeObject.co_linetable`.
    pub code_linetable: u32,
    /// Where a compact ASCII `str`'s characters start (`sizeof(PyASCIIObject)`).
    pub str_ascii_data: u32,
    /// Where a compact non-ASCII `str`'s characters start
    /// (`sizeof(PyCompactUnicodeObject)`).
    pub str_compact_data: u32,
}

impl PyOffsets {
    /// "No such field".
    pub const NONE: u32 = u32::MAX;

    /// The offsets of CPython `3.minor`: 3.11 (checked against Debian bookworm's 3.11.2 by
    /// the tests), 3.12 and 3.13 (checked by hand against pyenv builds of 3.12.1 and 3.13.0
    /// with a shared libpython: `STRATA_TEST_PYTHON=…/python3.13 cargo test -p
    /// strata-collector-ebpf --test python`).
    pub fn for_version(minor: u8) -> Option<PyOffsets> {
        match minor {
            11 => Some(PyOffsets {
                interp_head: 0x28,
                interp_threads_head: 0x10,
                tstate_next: 0x8,
                tstate_native_tid: 0xa0,
                tstate_frame: 0x38,
                cframe_current: 0x8,
                frame_code: 0x20,
                frame_previous: 0x30,
                frame_instr: 0x38,
                frame_entry: 0x44,
                entry_mark: EntryMark::IsEntry,
                code_firstlineno: 0x48,
                code_filename: 0x70,
                code_qualname: 0x80,
                code_linetable: 0x88,
                str_ascii_data: 0x30,
                str_compact_data: 0x48,
            }),
            12 => Some(PyOffsets {
                interp_head: 0x28,
                interp_threads_head: 0x48,
                tstate_next: 0x8,
                tstate_native_tid: 0x90,
                tstate_frame: 0x38,
                cframe_current: 0x0,
                frame_code: 0x0,
                frame_previous: 0x8,
                frame_instr: 0x38,
                frame_entry: 0x46,
                entry_mark: EntryMark::OwnerCstack,
                code_firstlineno: 0x44,
                code_filename: 0x70,
                code_qualname: 0x80,
                code_linetable: 0x88,
                str_ascii_data: 0x28,
                str_compact_data: 0x38,
            }),
            // As 3.13.0's own `_Py_DebugOffsets` (at the start of `_PyRuntime`) gives them: the
            // current frame sits in the thread state, the cframe is gone.
            13 => Some(PyOffsets {
                interp_head: 0x278,
                interp_threads_head: 0x1cb0,
                tstate_next: 0x8,
                tstate_native_tid: 0xa0,
                tstate_frame: 0x48,
                cframe_current: PyOffsets::NONE,
                frame_code: 0x0,
                frame_previous: 0x8,
                frame_instr: 0x38,
                frame_entry: 0x46,
                entry_mark: EntryMark::OwnerCstack,
                code_firstlineno: 0x44,
                code_filename: 0x70,
                code_qualname: 0x80,
                code_linetable: 0x88,
                str_ascii_data: 0x28,
                str_compact_data: 0x38,
            }),
            _ => None,
        }
    }
}

/// A CPython binary's layout (file virtual addresses).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Interpreter {
    /// `3.minor`.
    pub minor: u8,
    /// `_PyRuntime`.
    pub runtime: u64,
    /// `_PyEval_EvalFrameDefault`: start and size.
    pub eval: (u64, u64),
    /// `PyCode_Type.tp_basicsize`: where a code object's bytecode starts.
    pub code_adaptive: u64,
    /// The version's offsets.
    pub offsets: PyOffsets,
}

/// Whether a mapped file's name is a CPython interpreter or library (`python3.11`,
/// `libpython3.11.so.1.0`).
pub fn is_python_path(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    let rest = name
        .strip_prefix("libpython3.")
        .or_else(|| name.strip_prefix("python3."));
    rest.is_some_and(|r| r.starts_with(|c: char| c.is_ascii_digit()))
}

/// Reads a CPython binary's symbols and version; `None` when it is not one this walker knows
/// (no `_PyRuntime`, an unknown version).
pub fn detect<'d, R: ReadRef<'d>>(data: R) -> Option<Interpreter> {
    let file = object::File::parse(data).ok()?;
    let mut runtime = None;
    let mut eval = None;
    let mut version = None;
    let mut code_type = None;
    for sym in file.dynamic_symbols().chain(file.symbols()) {
        match sym.name().unwrap_or("") {
            "_PyRuntime" => runtime = Some(sym.address()),
            "_PyEval_EvalFrameDefault" => eval = Some((sym.address(), sym.size())),
            "Py_Version" => version = Some(sym.address()),
            "PyCode_Type" => code_type = Some(sym.address()),
            _ => {}
        }
    }
    let segments = strata_symbolizer::LoadSegments::parse_from(data).ok()?;
    let read_u64 = |vaddr: u64| -> Option<u64> {
        let seg = segments
            .0
            .iter()
            .find(|s| s.vaddr <= vaddr && vaddr + 8 <= s.vaddr + s.file_size)?;
        let bytes = data.read_bytes_at(vaddr - seg.vaddr + seg.offset, 8).ok()?;
        Some(u64::from_le_bytes(bytes.try_into().ok()?))
    };
    // Py_Version: 0xMMmmppRS (3.11.2 final = 0x030b02f0).
    let hex = read_u64(version?)? as u32;
    let (major, minor) = ((hex >> 24) as u8, (hex >> 16) as u8);
    if major != 3 {
        return None;
    }
    let offsets = PyOffsets::for_version(minor)?;
    // PyTypeObject.tp_basicsize is at 0x20 (after ob_refcnt, ob_type, ob_size, tp_name).
    let code_adaptive = read_u64(code_type? + 0x20)?;
    Some(Interpreter {
        minor,
        runtime: runtime?,
        eval: eval?,
        code_adaptive,
        offsets,
    })
}

/// Bytes of one `struct py_proc` (`bpf/unwind.bpf.h`).
pub const PY_PROC_BYTES: usize = 3 * 8 + 16 * 4;

/// The BPF map of Python processes and the interpreters found so far.
pub struct PythonProcesses {
    map: BpfHashMap<MapData, u32, [u8; PY_PROC_BYTES]>,
    /// By build id: the interpreter, or `None` for a Python-named file that is not one.
    interpreters: HashMap<String, Option<Arc<Interpreter>>>,
    /// Loaded pids and their interpreter's version.
    processes: HashMap<u32, Arc<Interpreter>>,
}

impl std::fmt::Debug for PythonProcesses {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PythonProcesses")
            .field("processes", &self.processes.len())
            .finish_non_exhaustive()
    }
}

impl PythonProcesses {
    /// Wraps the `py_procs` map.
    pub(crate) fn new(map: BpfHashMap<MapData, u32, [u8; PY_PROC_BYTES]>) -> Self {
        PythonProcesses {
            map,
            interpreters: HashMap::new(),
            processes: HashMap::new(),
        }
    }

    /// The interpreter of a loaded process.
    pub fn interpreter(&self, pid: u32) -> Option<&Arc<Interpreter>> {
        self.processes.get(&pid)
    }

    /// Finds the CPython interpreter among `info`'s mappings and, when there is one, tells the
    /// BPF walker where its runtime and eval loop are in this process.
    pub fn load_process(&mut self, info: &ProcessInfo) {
        self.forget_process(info.pid);
        let Some((m, interp)) = info
            .maps
            .iter()
            .find_map(|m| Some((m, self.interpreter_of(info.pid, m)?)))
        else {
            return;
        };
        let Some(start_vaddr) = m
            .elf
            .as_ref()
            .and_then(|e| e.mapping_start_vaddr(m.offset, m.end - m.start))
        else {
            return;
        };
        let bias = m.start.wrapping_sub(start_vaddr);
        let o = &interp.offsets;
        let mut v = Vec::with_capacity(PY_PROC_BYTES);
        v.extend(interp.runtime.wrapping_add(bias).to_le_bytes());
        v.extend(interp.eval.0.wrapping_add(bias).to_le_bytes());
        v.extend(
            (interp.eval.0 + interp.eval.1)
                .wrapping_add(bias)
                .to_le_bytes(),
        );
        for x in [
            o.interp_head,
            o.interp_threads_head,
            o.tstate_next,
            o.tstate_native_tid,
            o.tstate_frame,
            o.cframe_current,
            o.frame_code,
            o.frame_previous,
            o.frame_instr,
            o.frame_entry,
            o.entry_mark as u32,
            interp.code_adaptive as u32,
            0,
            0,
            0,
            0,
        ] {
            v.extend(x.to_le_bytes());
        }
        let value: [u8; PY_PROC_BYTES] = v.try_into().expect("sized");
        match self.map.insert(info.pid, value, 0) {
            Ok(()) => {
                self.processes.insert(info.pid, interp);
            }
            Err(e) => tracing::debug!(pid = info.pid, error = %e, "cannot load the Python process"),
        }
    }

    /// Forgets a process.
    pub fn forget_process(&mut self, pid: u32) {
        if self.processes.remove(&pid).is_some() {
            let _ = self.map.remove(&pid);
        }
    }

    /// Pids loaded.
    pub fn processes(&self) -> impl Iterator<Item = u32> + '_ {
        self.processes.keys().copied()
    }

    fn interpreter_of(&mut self, pid: u32, m: &MapEntry) -> Option<Arc<Interpreter>> {
        if !is_python_path(&m.path) {
            return None;
        }
        let elf = m.elf.as_ref()?;
        if let Some(known) = self.interpreters.get(&elf.build_id) {
            return known.clone();
        }
        let file = std::fs::File::open(format!("/proc/{pid}/root{}", m.path))
            .or_else(|_| std::fs::File::open(&m.path))
            .ok();
        let found = file
            .and_then(|f| detect(&object::ReadCache::new(f)))
            .map(Arc::new);
        if found.is_none() {
            tracing::debug!(path = %m.path, "not a CPython this collector knows");
        }
        self.interpreters
            .insert(elf.build_id.clone(), found.clone());
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_paths() {
        assert!(is_python_path("/usr/bin/python3.11"));
        assert!(is_python_path(
            "/usr/lib/x86_64-linux-gnu/libpython3.12.so.1.0"
        ));
        assert!(!is_python_path("/usr/bin/python3"));
        assert!(!is_python_path(
            "/usr/lib/python3.11/lib-dynload/_json.cpython-311.so"
        ));
    }

    #[test]
    fn debian_python311_is_detected() {
        let Ok(f) = std::fs::File::open("/usr/bin/python3.11") else {
            return; // checked by the server's Python test, which needs it
        };
        let interp = detect(&object::ReadCache::new(f)).expect("CPython 3.11");
        assert_eq!(interp.minor, 11);
        assert_eq!(interp.code_adaptive, 0xb8);
        assert!(interp.runtime > 0 && interp.eval.1 > 10_000);
    }
}
