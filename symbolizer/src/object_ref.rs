//! [`ObjectRef`]: which object to symbolize and where its debug info may be; [`DebugFile`]:
//! a debug file the caller already has.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The bytes of a file the caller holds: a `Vec`, a memory map, a buffer from an object
/// store.
pub type SharedBytes = Arc<dyn AsRef<[u8]> + Send + Sync>;

/// A debug file supplied by the caller for one build id (e.g. one uploaded with
/// `strata debuginfo upload`): the binary itself, or the file `objcopy --only-keep-debug`
/// writes. Its build id is not checked: the caller vouches for it.
#[derive(Clone)]
pub enum DebugFile {
    /// The file's bytes.
    Bytes(SharedBytes),
    /// A local path to read.
    Path(PathBuf),
}

impl DebugFile {
    /// The file from its bytes.
    pub fn from_bytes(bytes: impl Into<Vec<u8>>) -> Self {
        DebugFile::Bytes(Arc::new(bytes.into()))
    }

    /// The file at a local path (read when the build id is first symbolized).
    pub fn from_path(path: impl Into<PathBuf>) -> Self {
        DebugFile::Path(path.into())
    }
}

impl fmt::Debug for DebugFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DebugFile::Bytes(b) => write!(f, "DebugFile::Bytes({} bytes)", (**b).as_ref().len()),
            DebugFile::Path(p) => write!(f, "DebugFile::Path({})", p.display()),
        }
    }
}

/// One object (executable or shared library) to symbolize, by build id.
#[derive(Clone, Debug, Default)]
pub struct ObjectRef {
    /// The build id as the collector formats it (README, "build id"): GNU in lowercase hex,
    /// Go's as `go tool buildid` prints it, or the file hash. Required: everything is cached
    /// under it.
    pub build_id: String,
    /// Where the binary may be read, tried in order after the supplied file and the debug
    /// directories; each is used only if its build id equals `build_id`. For a process in a
    /// container pass `/proc/<pid>/root/<path>` first ([`ObjectRef::with_process_path`]).
    pub paths: Vec<PathBuf>,
    /// A debug file the caller has for this build id, tried first.
    pub supplied: Option<DebugFile>,
}

impl ObjectRef {
    /// An object known by its build id only.
    pub fn new(build_id: impl Into<String>) -> Self {
        ObjectRef {
            build_id: build_id.into(),
            ..Default::default()
        }
    }

    /// Adds a path the binary may be read from.
    pub fn with_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.paths.push(path.into());
        self
    }

    /// Adds the mapped path as process `pid` sees it: `/proc/<pid>/root/<path>` (the file
    /// inside the process's mount namespace, e.g. a container's), then `path` itself.
    pub fn with_process_path(mut self, pid: u32, path: impl AsRef<Path>) -> Self {
        let path = path.as_ref();
        let relative = path.strip_prefix("/").unwrap_or(path);
        self.paths.push(
            Path::new("/proc")
                .join(pid.to_string())
                .join("root")
                .join(relative),
        );
        self.paths.push(path.to_path_buf());
        self
    }

    /// Sets the supplied debug file.
    pub fn with_supplied(mut self, file: DebugFile) -> Self {
        self.supplied = Some(file);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn process_path_goes_through_proc_root_first() {
        let o = ObjectRef::new("ab").with_process_path(42, "/usr/bin/app");
        assert_eq!(
            o.paths,
            [
                PathBuf::from("/proc/42/root/usr/bin/app"),
                PathBuf::from("/usr/bin/app")
            ]
        );
    }
}
