//! Strata symbolizer: (build id, address) -> frames — function, file, line and the chain of
//! inlined callers. A pure library: it knows no store, starts no runtime and sets up no
//! logging.
//!
//! # Entry points
//! - [`Symbolizer::new`]`(`[`SymbolizerConfig`]`)`, then
//!   [`Symbolizer::symbolize`]`(&`[`ObjectRef`]`, &[elf_vaddr]) -> `[`SymbolizedBatch`]
//!   (`status` + one [`Frames`] per address, innermost first) or
//!   [`Symbolizer::symbolize_runtime`] with a process's addresses and their
//!   [`MappingInfo`]. `Symbolizer` is `Send + Sync`; share it across a thread pool.
//! - [`elf_address`]: a runtime address to the ELF virtual address, through the object's
//!   [`LoadSegments`] (PIE and fixed-address, unaligned segment offsets).
//! - [`Kallsyms`]: kernel addresses through `/proc/kallsyms`-format text.
//! - [`DebuginfodFetcher`]: plug in how debug files are fetched by build id;
//!   [`HttpDebuginfod`] is a blocking client for debuginfod servers.
//! - [`BuildId::of`]: a file's build id by the collector's rules.
//! - [`SymbolTable`]: function names from an ELF file's `.symtab` and `.dynsym` alone.
//!
//! # Where debug info comes from
//! For each build id, in order ([`DebugInfoSource`]): the file the caller supplies
//! ([`ObjectRef::supplied`], e.g. an upload); `<debug dir>/.build-id/xx/rest.debug`; the
//! binary itself at [`ObjectRef::paths`] (e.g. `/proc/<pid>/root/<path>`), used only when its
//! build id matches; the [`DebuginfodFetcher`]. The first file with line info wins; one with
//! only a symbol table is used when nothing better turns up. The result is a
//! [`DebugInfoStatus`]: `Found`, or `Missing` / `Failed` with a reason naming the fix.
//!
//! # How an address is symbolized
//! DWARF first (through `addr2line`: file, line, inlined frames, as binutils' `addr2line -i`
//! reports them), then Go's `.gopclntab` (function, file, line and, from Go 1.18 on, inlined
//! frames through the inline trees, also in binaries built with `-ldflags '-s -w'`), then
//! `.symtab`/`.dynsym` (function only). Names
//! are demangled (C++, Rust legacy and v0) with the raw name kept in [`Frame::system_name`].
//! Results are cached per (build id, address), parsed objects per build id, both bounded.
#![deny(missing_docs)]

mod address;
mod build_id;
mod cache;
mod config;
mod debug_object;
mod debuginfod;
mod demangle;
mod dwarf;
mod error;
mod frame;
mod go_pclntab;
mod kallsyms;
mod loader;
mod object_ref;
mod status;
mod symbolizer;
mod symtab;

pub use address::{LoadSegment, LoadSegments, MappingInfo, elf_address};
pub use build_id::{BuildId, BuildIdKind};
pub use config::SymbolizerConfig;
#[cfg(feature = "debuginfod-http")]
pub use debuginfod::HttpDebuginfod;
pub use debuginfod::{DebuginfodFetcher, Fetched};
pub use demangle::demangle;
pub use error::{Error, Result};
pub use frame::{Frame, Frames};
pub use kallsyms::{Kallsyms, KernelSymbol};
pub use object_ref::{DebugFile, ObjectRef, SharedBytes};
pub use status::{DebugInfoSource, DebugInfoStatus, SymbolContent};
pub use symbolizer::{SymbolizedBatch, Symbolizer, SymbolizerStats};
pub use symtab::SymbolTable;

#[cfg(test)]
mod tests {
    #[test]
    fn symbolizer_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<crate::Symbolizer>();
    }
}
