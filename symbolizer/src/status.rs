//! [`DebugInfoStatus`]: per build id, whether debug info was found, where, and what it holds
//! — or why not, naming the fix.

use std::path::PathBuf;

/// Where the debug info of a build id came from.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum DebugInfoSource {
    /// [`crate::ObjectRef::supplied`] (e.g. an uploaded file).
    Supplied,
    /// `<debug dir>/.build-id/xx/rest.debug`.
    BuildIdDir {
        /// The file read.
        path: PathBuf,
    },
    /// The binary itself, at one of [`crate::ObjectRef::paths`] (its build id checked).
    Binary {
        /// The file read.
        path: PathBuf,
    },
    /// A debuginfod server.
    Debuginfod {
        /// The URL the file was fetched from.
        url: String,
    },
}

/// What a found file holds for symbolization.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SymbolContent {
    /// DWARF line and function info (file, line, inlined frames).
    pub dwarf: bool,
    /// An ELF symbol table (`.symtab` or `.dynsym`): function names only.
    pub symtab: bool,
    /// Go's `.gopclntab`: function, file and line, even in a binary stripped with `-s -w`.
    pub go_pclntab: bool,
}

impl SymbolContent {
    /// Whether files and lines are known (DWARF or pclntab), not just names.
    pub fn has_lines(&self) -> bool {
        self.dwarf || self.go_pclntab
    }

    /// Whether anything at all can be named.
    pub fn has_any(&self) -> bool {
        self.dwarf || self.symtab || self.go_pclntab
    }
}

/// Whether a build id can be symbolized. The reasons are written for a person and name the
/// fix, e.g. `no symbols: stripped with `strip`; upload the file produced by
/// `objcopy --only-keep-debug``.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum DebugInfoStatus {
    /// Debug info was found; addresses are symbolized from it.
    Found {
        /// Where from.
        source: DebugInfoSource,
        /// What it holds.
        content: SymbolContent,
    },
    /// No usable debug info: none was found, or what was found is stripped.
    Missing {
        /// Why, and what to do about it.
        reason: String,
    },
    /// Debug info was found but could not be read (malformed, too large, I/O error).
    Failed {
        /// What failed, and on which file.
        reason: String,
    },
}

impl DebugInfoStatus {
    /// Whether addresses can be symbolized.
    pub fn is_found(&self) -> bool {
        matches!(self, DebugInfoStatus::Found { .. })
    }
}
