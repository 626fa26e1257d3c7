//! [`SymbolizerSettings`]: the `symbolizer:` section of the server config.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::error::{Error, Result};

/// Background symbolization and debug info uploads. Every field has a default (below), so an
/// absent section or `symbolizer: {}` is a working setup.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SymbolizerSettings {
    /// Whether addresses stored without symbols are symbolized in the background. Uploads are
    /// accepted either way. Default: `true`.
    pub enabled: bool,
    /// Roots of build-id debug directories, tried in order after an uploaded file: build id
    /// `abcdef…` is read from `<root>/.build-id/ab/cdef….debug`. Default: `["/usr/lib/debug"]`.
    pub debug_dirs: Vec<PathBuf>,
    /// Whether the binary at a mapping's path is read (used only if its build id matches).
    /// Default: `true`.
    pub read_binaries: bool,
    /// debuginfod servers, asked in order when nothing local has a build id's debug info
    /// (`GET <url>/buildid/<id>/debuginfo`). Default: none (no network).
    pub debuginfod_urls: Vec<String>,
    /// Timeout of one debuginfod request. Default: `30s`.
    #[serde(with = "humantime_serde")]
    pub debuginfod_timeout: Duration,
    /// Jobs waiting for the workers: the new unsymbolized locations of one push, a sweep, an
    /// upload. When full, a push's locations are left to the next sweep. Default: 1,024.
    pub queue_size: usize,
    /// Build ids symbolized at once, each on a thread of the blocking pool (queries never wait
    /// for them). Default: 2.
    pub workers: usize,
    /// Parsed debug info files kept in memory, least recently used dropped first (a build id
    /// without debug info also takes one). Default: 64.
    pub cache_objects: usize,
    /// Symbolized addresses kept in memory, by (build id, address). Default: 1,000,000.
    pub cache_addresses: usize,
    /// How often the heads and newly written blocks are swept for locations without symbols
    /// (those a push did not hand over directly: the collector's, a full queue's, the WAL's
    /// after a restart). Default: `30s`.
    #[serde(with = "humantime_serde")]
    pub sweep_interval: Duration,
    /// How long a build id found missing or failed stays so before it is looked for again
    /// (e.g. a `-dbgsym` package installed since). An upload for it retries at once.
    /// Default: `10m`.
    #[serde(with = "humantime_serde")]
    pub retry_after: Duration,
    /// Largest debug info file accepted by `DebuginfoService/Upload` (held in memory while it
    /// is checked). Default: 1 GiB.
    pub max_upload_bytes: u64,
    /// An upload initiated but not marked finished within this is stale: another may start.
    /// Default: `15m`.
    #[serde(with = "humantime_serde")]
    pub upload_timeout: Duration,
    /// Local directory where uploaded files are copied from the object store to be read.
    /// Default: `<data dir>/debuginfo-cache`.
    pub cache_dir: Option<PathBuf>,
}

impl Default for SymbolizerSettings {
    fn default() -> Self {
        SymbolizerSettings {
            enabled: true,
            debug_dirs: vec![PathBuf::from("/usr/lib/debug")],
            read_binaries: true,
            debuginfod_urls: Vec::new(),
            debuginfod_timeout: Duration::from_secs(30),
            queue_size: 1024,
            workers: 2,
            cache_objects: 64,
            cache_addresses: 1_000_000,
            sweep_interval: Duration::from_secs(30),
            retry_after: Duration::from_secs(600),
            max_upload_bytes: 1 << 30,
            upload_timeout: Duration::from_secs(900),
            cache_dir: None,
        }
    }
}

impl SymbolizerSettings {
    /// Checks every field; the error names the first bad one.
    pub fn validate(&self) -> Result<()> {
        let positive = |field: &'static str, v: u64| {
            if v == 0 {
                Err(Error::Config {
                    field,
                    reason: "must be greater than 0".into(),
                })
            } else {
                Ok(())
            }
        };
        positive("symbolizer.queue_size", self.queue_size as u64)?;
        positive("symbolizer.workers", self.workers as u64)?;
        positive("symbolizer.cache_objects", self.cache_objects as u64)?;
        positive("symbolizer.cache_addresses", self.cache_addresses as u64)?;
        positive(
            "symbolizer.sweep_interval",
            self.sweep_interval.as_millis() as u64,
        )?;
        positive(
            "symbolizer.retry_after",
            self.retry_after.as_millis() as u64,
        )?;
        positive("symbolizer.max_upload_bytes", self.max_upload_bytes)?;
        positive(
            "symbolizer.upload_timeout",
            self.upload_timeout.as_millis() as u64,
        )?;
        self.library().validate()?;
        Ok(())
    }

    /// The symbolizer library's config.
    pub(crate) fn library(&self) -> strata_symbolizer::SymbolizerConfig {
        strata_symbolizer::SymbolizerConfig {
            debug_dirs: self.debug_dirs.clone(),
            read_binaries: self.read_binaries,
            debuginfod_urls: self.debuginfod_urls.clone(),
            debuginfod_timeout: self.debuginfod_timeout,
            max_objects: self.cache_objects,
            max_addresses: self.cache_addresses,
            ..Default::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_section_is_the_valid_default() {
        let s: SymbolizerSettings = serde_yaml::from_str("{}").unwrap();
        assert_eq!(s, SymbolizerSettings::default());
        s.validate().unwrap();
        let s: SymbolizerSettings = serde_yaml::from_str(
            "workers: 4\nsweep_interval: 5s\ndebuginfod_urls: [https://debuginfod.debian.net]",
        )
        .unwrap();
        assert_eq!(s.workers, 4);
        assert_eq!(s.sweep_interval, Duration::from_secs(5));
        s.validate().unwrap();
    }

    #[test]
    fn validate_names_the_bad_field() {
        let err = |s: SymbolizerSettings| s.validate().unwrap_err().to_string();
        assert!(
            err(SymbolizerSettings {
                workers: 0,
                ..Default::default()
            })
            .contains("symbolizer.workers")
        );
        assert!(
            err(SymbolizerSettings {
                debuginfod_urls: vec!["ftp://x".into()],
                ..Default::default()
            })
            .contains("ftp://x")
        );
        let e = serde_yaml::from_str::<SymbolizerSettings>("worker: 3").unwrap_err();
        assert!(e.to_string().contains("unknown field `worker`"), "{e}");
    }
}
