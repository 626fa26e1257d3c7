//! CFI unwinding of user stacks: call frame information compiled into compact rows
//! ([`rows`]: [`compile_elf`], [`UnwindRows`]) and loaded, shared by build id, into the BPF
//! maps the in-kernel unwinder reads ([`tables`]: [`UnwindTables`], filled on a thread of its
//! own by [`TableLoader`]), with what it costs and why walks stop counted in [`UnwindStats`].

mod loader;
mod rows;
pub(crate) mod tables;

use std::sync::atomic::AtomicU64;

pub use loader::TableLoader;
pub use rows::{
    CfaRule, CfiInput, CfiSection, RbpRule, UnwindRow, UnwindRows, compile_cfi, compile_elf,
};
pub use tables::UnwindTables;

/// Why a walk with the unwind tables ended, in the order of the BPF program's `STOP_*`
/// counters: the label values of `strata_collector_unwind_stops_total{reason}`.
pub const UNWIND_STOPS: [&str; 9] = [
    "end",
    "no_mapping",
    "jit",
    "no_cfi",
    "unsupported",
    "read_failed",
    "rbp_lost",
    "depth",
    "no_table",
];

/// What the unwind tables cost and do, shared with whoever exports metrics.
#[derive(Debug, Default)]
pub struct UnwindStats {
    /// Bytes of BPF map memory reserved for rows (`unwind_table_max_bytes`).
    pub capacity_bytes: AtomicU64,
    /// Bytes of rows loaded (8 per row).
    pub table_bytes: AtomicU64,
    /// Files whose rows are loaded.
    pub files: AtomicU64,
    /// Files whose rows did not fit the budget (walked by frame pointers).
    pub files_refused: AtomicU64,
    /// Files evicted to make room.
    pub files_evicted: AtomicU64,
    /// Processes whose mappings are loaded.
    pub processes: AtomicU64,
    /// Bytes of kernel memory those processes' entries take.
    pub process_bytes: AtomicU64,
    /// Processes left to frame pointers (the process map was full).
    pub processes_refused: AtomicU64,
    /// Walks that used the tables, by reason they ended ([`UNWIND_STOPS`]).
    pub stops: [AtomicU64; 9],
}
