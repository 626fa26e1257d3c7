//! Strata symbolizer: build id + address -> frames (function, file, line, inlined callers).
//!
//! A pure library that knows no store. Filled by a later issue; what will live here:
//! - `elf`: reading symbol tables and DWARF line programs from ELF objects;
//! - `demangle`: Rust and C++ name demangling;
//! - `cache`: per build id symbol caches.
#![deny(missing_docs)]
