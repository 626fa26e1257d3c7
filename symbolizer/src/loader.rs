//! [`Loader`]: finds the debug info of a build id, in order — the supplied file, the
//! build-id debug directories, the binary itself, debuginfod — and parses it ([`Loaded`]).

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::address::LoadSegments;
use crate::build_id::BuildId;
use crate::config::SymbolizerConfig;
use crate::debug_object::DebugObject;
use crate::debuginfod::DebuginfodFetcher;
use crate::error::{Error, Result};
use crate::object_ref::{DebugFile, ObjectRef};
use crate::status::{DebugInfoSource, DebugInfoStatus};

/// Distinguishes loads, so addresses cached from replaced debug info are never served.
static NEXT_LOAD_ID: AtomicU64 = AtomicU64::new(1);

/// The outcome of looking for a build id's debug info.
pub(crate) struct Loaded {
    /// Unique per load: the address cache's key with the address.
    pub(crate) id: u64,
    /// Found (where, what), missing or failed (why).
    pub(crate) status: DebugInfoStatus,
    /// The parsed debug info, when found.
    pub(crate) object: Option<DebugObject>,
    /// `PT_LOAD` headers of the file found (empty when none was).
    pub(crate) segments: LoadSegments,
}

/// Looks for debug info as configured.
pub(crate) struct Loader {
    pub(crate) config: SymbolizerConfig,
    pub(crate) fetcher: Option<Arc<dyn DebuginfodFetcher>>,
}

/// What the search has seen so far, for the final status.
#[derive(Default)]
struct Search {
    /// The first file with symbols but no lines, kept while a better one is looked for.
    names_only: Option<(DebugInfoSource, DebugObject, LoadSegments)>,
    /// Files found without any symbols: (what, whether it is a Go binary).
    stripped: Vec<(String, bool)>,
    /// Files that could not be read or parsed.
    failures: Vec<String>,
    /// Binaries found with another build id.
    mismatched: Vec<String>,
    /// Places looked in, for the "missing" reason.
    looked: Vec<String>,
}

impl Loader {
    pub(crate) fn load(&self, object: &ObjectRef) -> Loaded {
        let id = NEXT_LOAD_ID.fetch_add(1, Ordering::Relaxed);
        if object.build_id.is_empty() {
            return missing(
                id,
                "no build id (anonymous memory, [vdso], or a file that could not be read as ELF): nothing to look up".into(),
            );
        }
        let mut search = Search::default();
        if let Some(file) = &object.supplied {
            let what = match file {
                DebugFile::Bytes(_) => "the supplied debug file".to_owned(),
                DebugFile::Path(p) => format!("the supplied debug file {}", p.display()),
            };
            let bytes = match file {
                DebugFile::Bytes(b) => Ok(b.clone()),
                DebugFile::Path(p) => self.read(p).map(|v| Arc::new(v) as _),
            };
            if let Some(l) = self.consider(id, &mut search, &what, DebugInfoSource::Supplied, bytes)
            {
                return l;
            }
        }
        if let Some((dir, file)) = build_id_path(&object.build_id) {
            for root in &self.config.debug_dirs {
                let path = root.join(".build-id").join(dir).join(&file);
                let source = DebugInfoSource::BuildIdDir { path: path.clone() };
                if let Some(l) = self.local_file(id, &mut search, &path, source, &object.build_id) {
                    return l;
                }
            }
        }
        if self.config.read_binaries {
            for path in &object.paths {
                let source = DebugInfoSource::Binary { path: path.clone() };
                if let Some(l) = self.local_file(id, &mut search, path, source, &object.build_id) {
                    return l;
                }
            }
        }
        if let Some(fetcher) = &self.fetcher {
            search.looked.push("debuginfod".into());
            match fetcher.fetch(&object.build_id) {
                Ok(Some(fetched)) => {
                    let bytes = match fetched.file {
                        DebugFile::Bytes(b) => Ok(b),
                        DebugFile::Path(p) => self.read(&p).map(|v| Arc::new(v) as _),
                    };
                    let what = fetched.url.clone();
                    let source = DebugInfoSource::Debuginfod { url: fetched.url };
                    if let Some(l) = self.consider(id, &mut search, &what, source, bytes) {
                        return l;
                    }
                }
                Ok(None) => {}
                Err(e) => search.failures.push(e.to_string()),
            }
        }
        finish(id, &object.build_id, search)
    }

    /// A file on this host that must have `build_id`, when it exists. The build id is read
    /// first (headers and notes only), so a large file of another build is not read whole.
    fn local_file(
        &self,
        id: u64,
        search: &mut Search,
        path: &Path,
        source: DebugInfoSource,
        build_id: &str,
    ) -> Option<Loaded> {
        search.looked.push(path.display().to_string());
        let what = path.display().to_string();
        let file = match std::fs::File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
            Err(e) => {
                search.failures.push(Error::io(path, e).to_string());
                return None;
            }
        };
        if let Some(actual) = BuildId::of(&object::ReadCache::new(file))
            && actual.id != build_id
        {
            search.mismatched.push(format!(
                "{what} has build id {} (replaced since it was profiled?)",
                actual.id
            ));
            return None;
        }
        let bytes = self.read(path).map(|v| Arc::new(v) as _);
        self.consider(id, search, &what, source, bytes)
    }

    fn read(&self, path: &Path) -> Result<Vec<u8>> {
        let size = std::fs::metadata(path)
            .map_err(|e| Error::io(path, e))?
            .len();
        if size > self.config.max_file_bytes {
            return Err(Error::TooLarge {
                what: path.display().to_string(),
                size,
                limit: self.config.max_file_bytes,
            });
        }
        std::fs::read(path).map_err(|e| Error::io(path, e))
    }

    /// Parses one candidate file. `Some` when it has line info (the search ends), `None` to
    /// go on looking.
    fn consider(
        &self,
        id: u64,
        search: &mut Search,
        what: &str,
        source: DebugInfoSource,
        bytes: Result<crate::object_ref::SharedBytes>,
    ) -> Option<Loaded> {
        let bytes = match bytes {
            Ok(b) => b,
            Err(e) => {
                search.failures.push(e.to_string());
                return None;
            }
        };
        let data: &[u8] = (*bytes).as_ref();
        if data.len() as u64 > self.config.max_file_bytes {
            search.failures.push(
                Error::TooLarge {
                    what: what.to_owned(),
                    size: data.len() as u64,
                    limit: self.config.max_file_bytes,
                }
                .to_string(),
            );
            return None;
        }
        let object = match DebugObject::parse(data, what, self.config.max_file_bytes) {
            Ok(o) => o,
            Err(e) => {
                search.failures.push(e.to_string());
                return None;
            }
        };
        let segments = LoadSegments::parse(data).unwrap_or_default();
        let content = object.content;
        if content.has_lines() {
            return Some(Loaded {
                id,
                status: DebugInfoStatus::Found { source, content },
                object: Some(object),
                segments,
            });
        }
        if content.has_any() {
            if search.names_only.is_none() {
                search.names_only = Some((source, object, segments));
            }
        } else {
            search.stripped.push((what.to_owned(), object.is_go));
        }
        None
    }
}

/// `ab/cdef….debug` for a GNU build id (hex, at least two bytes); `None` for other ids.
fn build_id_path(build_id: &str) -> Option<(&str, String)> {
    let hex = build_id.len() > 2
        && build_id.len().is_multiple_of(2)
        && build_id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    hex.then(|| (&build_id[..2], format!("{}.debug", &build_id[2..])))
}

fn missing(id: u64, reason: String) -> Loaded {
    Loaded {
        id,
        status: DebugInfoStatus::Missing { reason },
        object: None,
        segments: LoadSegments::default(),
    }
}

/// The status when no file with line info was found.
fn finish(id: u64, build_id: &str, search: Search) -> Loaded {
    if let Some((source, object, segments)) = search.names_only {
        let content = object.content;
        return Loaded {
            id,
            status: DebugInfoStatus::Found { source, content },
            object: Some(object),
            segments,
        };
    }
    if let Some((what, is_go)) = search.stripped.first() {
        let reason = if *is_go {
            format!(
                "binary stripped (Go -ldflags '-s -w'): upload its debug info with `strata debuginfo upload`, or build without -s ({what} has no symbols and no readable pclntab)"
            )
        } else {
            format!(
                "no symbols: stripped with `strip`; upload the file produced by `objcopy --only-keep-debug` with `strata debuginfo upload` ({what} has no symbol table and no DWARF)"
            )
        };
        return missing(id, reason);
    }
    if !search.failures.is_empty() {
        return Loaded {
            id,
            status: DebugInfoStatus::Failed {
                reason: search.failures.join("; "),
            },
            object: None,
            segments: LoadSegments::default(),
        };
    }
    let mut looked = if search.looked.is_empty() {
        "nothing to look in (no binary path, no debug directory)".to_owned()
    } else {
        format!("looked in {}", search.looked.join(", "))
    };
    for m in &search.mismatched {
        looked.push_str("; ");
        looked.push_str(m);
    }
    missing(
        id,
        format!(
            "no debug info for build id {build_id}: none uploaded, {looked}; upload the binary or its debug file (`objcopy --only-keep-debug`) with `strata debuginfo upload`"
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_id_dir_layout() {
        assert_eq!(
            build_id_path("c89b11207f6479603b0d49bf291c092c2b719293"),
            Some((
                "c8",
                "9b11207f6479603b0d49bf291c092c2b719293.debug".to_owned()
            ))
        );
        assert_eq!(
            build_id_path("foh3mEXu7BLZjsN9pOwG/kATcXlYVCDEFouRMQed_"),
            None
        );
        assert_eq!(build_id_path("ab"), None);
    }
}
