//! [`Frame`]: one function and source line of a symbolized address.

use std::sync::Arc;

/// The frames of one address, innermost first: the function the instruction is in (possibly
/// inlined), then the functions it was inlined into, the outermost (the real, out-of-line
/// function) last; pprof's and `strata_engine::Location::lines`' order. Empty when the address
/// could not be symbolized.
pub type Frames = Arc<[Frame]>;

/// One function and source line of a symbolized address.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Frame {
    /// The function name, demangled (C++ with its parameters, as `c++filt` prints it; Rust
    /// legacy and v0 without the hash, as `rustc-demangle`'s `{:#}` prints it); the raw name
    /// when it is not mangled.
    pub function: String,
    /// The name as the object has it (the mangled linkage name when there is one).
    pub system_name: String,
    /// The source file, a full path when the debug info has one; empty when unknown.
    pub file: String,
    /// The source line; 0 when unknown.
    pub line: u32,
    /// The line the function starts on; 0 when unknown (only Go's pclntab of Go 1.20 and
    /// later records it).
    pub start_line: u32,
}

impl Frame {
    /// A frame naming only a function (no file or line), e.g. from a symbol table.
    pub fn function_only(function: String, system_name: String) -> Self {
        Frame {
            function,
            system_name,
            file: String::new(),
            line: 0,
            start_line: 0,
        }
    }
}
