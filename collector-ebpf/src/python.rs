//! CPython stacks: the interpreters found among a process's mappings and the offsets the BPF
//! walker needs ([`interpreter`]: [`Interpreter`], [`PythonProcesses`]), and the Python frames
//! it records, named from the process's code objects ([`code`]: [`PythonFrameRef`],
//! [`PythonCode`]).
//!
//! When the native walk reaches `_PyEval_EvalFrameDefault`, the BPF program puts in its place
//! the Python frames that call evaluates (from the thread's current frame, or where the
//! previous eval call stopped, to the call's entry frame), tagged entries of the user stack
//! that userspace turns into frames with the function's qualified name, file and line.

pub(crate) mod code;
pub(crate) mod interpreter;

pub use code::{CodeInfo, PY_FRAME_TAG, PythonCode, PythonFrameRef, line_of};
pub use interpreter::{EntryMark, Interpreter, PyOffsets, PythonProcesses, detect, is_python_path};
