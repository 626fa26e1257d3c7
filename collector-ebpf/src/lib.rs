//! Strata's eBPF collector: whole-host CPU profiling with user and kernel stacks and container
//! labels.
//!
//! - [`spawn`] a [`Sampler`] (config: [`SamplerConfig`]) on its own thread; every interval it
//!   hands over [`IntervalProfiles`] — one [`ProcessProfile`] per process, stacks of
//!   [`Frame`]s with sample counts — which [`IntervalProfiles::to_batch`] turns into an engine
//!   batch of type [`PROFILE_TYPE`]. [`SamplerStats`] counts samples and drops.
//! - [`BpfProfiler`]: the C program `bpf/profiler.bpf.c` (compiled object committed as
//!   [`PROFILER_OBJECT`], rebuilt by `bpf/build.sh`), loaded with aya and attached to a
//!   cpu-clock perf event on every online CPU; samples ([`RawSample`]) reach userspace through
//!   a BPF ring buffer or are counted in the kernel in a hash map ([`Transport`]).
//! - User stacks without frame pointers: each mapped file's `.eh_frame` / `.debug_frame` is
//!   compiled into [`UnwindRows`] ([`compile_elf`]) and loaded, shared by build id, into the
//!   maps the BPF program walks stacks with ([`UnwindTables`]; costs and stop reasons in
//!   [`UnwindStats`]).
//! - Address resolution: `/proc/<pid>/maps` ([`ProcessInfo`]), ELF build ids
//!   ([`strata_symbolizer::BuildId`]: GNU, else Go, else a file hash) and symbol tables
//!   ([`ElfInfo`]), kernel symbols ([`strata_symbolizer::Kallsyms`] over `/proc/kallsyms`),
//!   container ids from cgroup paths ([`parse_cgroup_path`]), Kubernetes namespace, pod and
//!   container names from the container runtime's state on disk ([`KubernetesResolver`]).
#![deny(missing_docs)]

mod bpf;
mod cgroup;
mod config;
mod elf;
mod error;
mod event;
mod kubernetes;
mod process;
mod profile;
mod python;
mod sampler;
mod unwind;

pub use bpf::{
    BpfProfiler, KernelCounters, MAP_MAX_ENTRIES, OffCpuSettings, PROFILER_OBJECT, UnwindLimits,
};
pub use cgroup::{ContainerInfo, parse_cgroup_path};
pub use config::{OffCpuConfig, SamplerConfig, Transport};
pub use elf::{ElfCache, ElfInfo};
pub use error::{Error, Result};
pub use event::{FLAG_CFI, FLAG_OFF_CPU, FLAG_USER_REGS, MAX_STACK_DEPTH, RawSample};
pub use kubernetes::{KubernetesNames, KubernetesResolver, MAX_CACHED_CONTAINERS};
pub use process::{MapEntry, ProcessInfo, parse_maps};
pub use profile::{
    Frame, FrameMapping, IntervalProfiles, OFF_CPU_PROFILE_TYPE, PROFILE_TYPE, ProcessProfile,
};
pub use python::{
    CodeInfo, EntryMark, Interpreter, PY_FRAME_TAG, PyOffsets, PythonCode, PythonFrameRef,
    PythonProcesses, detect as detect_python, is_python_path, line_of,
};
pub use sampler::{Sampler, SamplerHandle, SamplerStats, spawn};
pub use unwind::{
    CfaRule, CfiInput, CfiSection, RbpRule, UNWIND_STOPS, UnwindRow, UnwindRows, UnwindStats,
    UnwindTables, compile_cfi, compile_elf,
};
