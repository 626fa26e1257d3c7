//! [`SymbolizerConfig`]: where debug info is looked for and how much is cached.

use std::path::PathBuf;
use std::time::Duration;

use crate::error::{Error, Result};

/// Configuration of a [`crate::Symbolizer`]. Every field has a default (below), so `{}` in
/// YAML or `SymbolizerConfig::default()` is a working config.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SymbolizerConfig {
    /// Roots of build-id debug directories, tried in order: a build id `abcdef…` is looked up
    /// as `<root>/.build-id/ab/cdef….debug` (GNU build ids only). Default `["/usr/lib/debug"]`
    /// (where Debian's `-dbgsym` and Fedora's `-debuginfo` packages install).
    pub debug_dirs: Vec<PathBuf>,
    /// Whether the mapped binary itself ([`crate::ObjectRef::paths`]) is read, after checking
    /// its build id. Default `true`.
    pub read_binaries: bool,
    /// debuginfod servers, tried in order after everything local, as
    /// `GET <url>/buildid/<build id>/debuginfo`. Default empty (no network). Used by
    /// [`crate::Symbolizer::new`] through the built-in blocking client (cargo feature
    /// `debuginfod-http`); callers with their own client pass a
    /// [`crate::DebuginfodFetcher`] to [`crate::Symbolizer::with_fetcher`] instead.
    pub debuginfod_urls: Vec<String>,
    /// Timeout of one debuginfod request, whole body included. Default `30s`.
    #[serde(with = "humantime_serde")]
    pub debuginfod_timeout: Duration,
    /// Parsed objects (symbol tables, DWARF indexes, pclntab) kept, least recently used
    /// dropped first; a build id whose debug info is missing also takes a slot, so it is not
    /// looked for again on every call. Default 64.
    pub max_objects: usize,
    /// Symbolized addresses kept, keyed by (build id, address). Default 1,000,000.
    pub max_addresses: usize,
    /// Files (binaries, debug files, debuginfod answers) larger than this are not read.
    /// Default 4 GiB.
    pub max_file_bytes: u64,
}

impl Default for SymbolizerConfig {
    fn default() -> Self {
        SymbolizerConfig {
            debug_dirs: vec![PathBuf::from("/usr/lib/debug")],
            read_binaries: true,
            debuginfod_urls: Vec::new(),
            debuginfod_timeout: Duration::from_secs(30),
            max_objects: 64,
            max_addresses: 1_000_000,
            max_file_bytes: 4 << 30,
        }
    }
}

impl SymbolizerConfig {
    /// Checks the fields: caches hold at least one entry, the timeout is not zero, and each
    /// debuginfod URL is `http://` or `https://`.
    pub fn validate(&self) -> Result<()> {
        let bad = |field, reason: &str| {
            Err(Error::Config {
                field,
                reason: reason.to_owned(),
            })
        };
        if self.max_objects == 0 {
            return bad("max_objects", "must be at least 1");
        }
        if self.max_addresses == 0 {
            return bad("max_addresses", "must be at least 1");
        }
        if self.max_file_bytes == 0 {
            return bad("max_file_bytes", "must be at least 1");
        }
        if self.debuginfod_timeout.is_zero() {
            return bad("debuginfod_timeout", "must not be zero");
        }
        for url in &self.debuginfod_urls {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(Error::Config {
                    field: "debuginfod_urls",
                    reason: format!("{url:?} is not an http:// or https:// URL"),
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_yaml_is_the_default_and_valid() {
        let c: SymbolizerConfig = serde_json::from_str("{}").unwrap();
        assert_eq!(c, SymbolizerConfig::default());
        c.validate().unwrap();
    }

    #[test]
    fn validate_names_the_field() {
        let c = SymbolizerConfig {
            max_objects: 0,
            ..Default::default()
        };
        let err = c.validate().unwrap_err();
        assert!(
            matches!(
                err,
                Error::Config {
                    field: "max_objects",
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(err.to_string().contains("max_objects"), "{err}");
        let c = SymbolizerConfig {
            debuginfod_urls: vec!["ftp://x".into()],
            ..Default::default()
        };
        let err = c.validate().unwrap_err();
        assert!(
            matches!(
                err,
                Error::Config {
                    field: "debuginfod_urls",
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(err.to_string().contains("ftp://x"), "{err}");
    }
}
