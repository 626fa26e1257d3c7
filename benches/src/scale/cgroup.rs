//! A memory cgroup for the server under test, so a memory limit is enforced by the kernel
//! (going over it means reclaim, then an OOM kill) rather than only observed.
//!
//! Works with cgroup v2 (`memory.max`, `memory.current`, `memory.peak`, `memory.events`) and
//! with the v1 memory controller of a hybrid hierarchy (`memory.limit_in_bytes`,
//! `memory.usage_in_bytes`, `memory.max_usage_in_bytes`, `memory.oom_control`). Needs root
//! (or a delegated subtree). The cgroup is created as a child of the harness's own memory
//! cgroup on v1, so whatever limits and accounting contain the harness still contain the
//! server, and of the hierarchy's root on v2 (where a cgroup holding processes cannot also
//! have children with controllers). It is removed on drop, once the server has exited.

use std::path::{Path, PathBuf};

use super::Error;

/// Which cgroup interface.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Version {
    /// The unified hierarchy.
    V2,
    /// The v1 memory controller.
    V1,
}

/// A memory cgroup with a limit.
#[derive(Debug)]
pub struct Cgroup {
    path: PathBuf,
    version: Version,
}

/// Where the memory controller is: (version, mount point).
fn memory_mount() -> Option<(Version, PathBuf)> {
    let root = Path::new("/sys/fs/cgroup");
    let has_memory = |dir: &Path| {
        std::fs::read_to_string(dir.join("cgroup.controllers"))
            .is_ok_and(|c| c.split_whitespace().any(|w| w == "memory"))
    };
    if has_memory(root) {
        return Some((Version::V2, root.to_owned()));
    }
    let v1 = root.join("memory");
    if v1.join("memory.limit_in_bytes").is_file() {
        return Some((Version::V1, v1));
    }
    let unified = root.join("unified");
    if has_memory(&unified) {
        return Some((Version::V2, unified));
    }
    None
}

/// Whether a memory cgroup can be created here: a memory controller is mounted and this
/// process may write to it (root, or a delegated subtree).
pub fn available() -> bool {
    match memory_mount() {
        Some((Version::V1, mount)) => {
            let own = mount.join(own_v1_memory_cgroup().unwrap_or_default());
            writable(&own)
        }
        Some((Version::V2, mount)) => writable(&mount),
        None => false,
    }
}

fn writable(dir: &Path) -> bool {
    let probe = dir.join(format!("strata-bench-probe-{}", std::process::id()));
    std::fs::create_dir(&probe).is_ok() && std::fs::remove_dir(&probe).is_ok()
}

/// The v1 memory cgroup this process is in (relative path), from `/proc/self/cgroup`.
fn own_v1_memory_cgroup() -> Option<String> {
    let text = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    text.lines().find_map(|l| {
        let mut parts = l.splitn(3, ':');
        let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        controllers
            .split(',')
            .any(|c| c == "memory")
            .then(|| path.trim_start_matches('/').to_owned())
    })
}

fn read_u64(path: &Path) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// The value of `key` in a flat-keyed file (`memory.stat`, `memory.events`, `oom_control`).
fn keyed(path: &Path, key: &str) -> Option<u64> {
    let text = std::fs::read_to_string(path).ok()?;
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok()).flatten()
    })
}

impl Cgroup {
    /// Creates `strata-bench-<pid>` (under `parent`, a directory of the memory hierarchy, if
    /// given) with a memory limit of `limit_bytes` (swap included where the kernel accounts
    /// it, so the limit cannot be dodged by swapping).
    pub fn create(limit_bytes: u64, parent: Option<&Path>) -> Result<Cgroup, Error> {
        let (version, mount) = memory_mount().ok_or_else(|| {
            Error::Server("no cgroup memory controller under /sys/fs/cgroup".into())
        })?;
        let parent = match (parent, version) {
            (Some(p), _) => p.to_owned(),
            (None, Version::V1) => mount.join(own_v1_memory_cgroup().unwrap_or_default()),
            (None, Version::V2) => mount.clone(),
        };
        let path = parent.join(format!("strata-bench-{}", std::process::id()));
        let io = |what: &str, e| Error::io(format!("{what} {}", path.display()), e);
        if version == Version::V2 {
            let control = parent.join("cgroup.subtree_control");
            let enabled = std::fs::read_to_string(&control).unwrap_or_default();
            if !enabled.split_whitespace().any(|w| w == "memory") {
                std::fs::write(&control, "+memory").map_err(|e| {
                    Error::io(format!("enabling memory in {}", control.display()), e)
                })?;
            }
        }
        std::fs::create_dir(&path).map_err(|e| io("creating the cgroup", e))?;
        let cgroup = Cgroup { path, version };
        let limit = limit_bytes.to_string();
        match version {
            Version::V2 => {
                cgroup.write("memory.max", &limit)?;
                // No swapping out of the limit (absent without swap accounting).
                let _ = cgroup.write("memory.swap.max", "0");
            }
            Version::V1 => {
                cgroup.write("memory.limit_in_bytes", &limit)?;
                let _ = cgroup.write("memory.memsw.limit_in_bytes", &limit);
            }
        }
        Ok(cgroup)
    }

    fn write(&self, file: &str, value: &str) -> Result<(), Error> {
        std::fs::write(self.path.join(file), value)
            .map_err(|e| Error::io(format!("writing {value} to {file}"), e))
    }

    /// The cgroup's directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// v1 or v2.
    pub fn version(&self) -> Version {
        self.version
    }

    /// The file a process is moved in by writing its pid.
    pub fn procs_file(&self) -> PathBuf {
        self.path.join("cgroup.procs")
    }

    /// Moves process `pid` (all its threads) into the cgroup.
    pub fn add(&self, pid: u32) -> Result<(), Error> {
        self.write("cgroup.procs", &pid.to_string())
    }

    /// The limit as the kernel holds it (rounded to pages).
    pub fn limit(&self) -> Option<u64> {
        match self.version {
            Version::V2 => read_u64(&self.path.join("memory.max")),
            Version::V1 => read_u64(&self.path.join("memory.limit_in_bytes")),
        }
    }

    /// Memory charged now: anonymous memory, page cache (the WAL and blocks the server wrote,
    /// reclaimable), kernel memory.
    pub fn current(&self) -> Option<u64> {
        match self.version {
            Version::V2 => read_u64(&self.path.join("memory.current")),
            Version::V1 => read_u64(&self.path.join("memory.usage_in_bytes")),
        }
    }

    /// The highest [`Cgroup::current`] since creation (`None` on v2 kernels before 5.19).
    pub fn peak(&self) -> Option<u64> {
        match self.version {
            Version::V2 => read_u64(&self.path.join("memory.peak")),
            Version::V1 => read_u64(&self.path.join("memory.max_usage_in_bytes")),
        }
    }

    /// Anonymous memory charged now (the heap: what the server itself holds, without page
    /// cache).
    pub fn anon(&self) -> Option<u64> {
        let stat = self.path.join("memory.stat");
        match self.version {
            Version::V2 => keyed(&stat, "anon"),
            Version::V1 => keyed(&stat, "rss"),
        }
    }

    /// Processes of the cgroup the kernel's OOM killer killed.
    pub fn oom_kills(&self) -> Option<u64> {
        match self.version {
            Version::V2 => keyed(&self.path.join("memory.events"), "oom_kill"),
            Version::V1 => keyed(&self.path.join("memory.oom_control"), "oom_kill"),
        }
    }

    /// Times the limit was hit (reclaim or OOM): v2 `memory.events` `max`, v1 `failcnt`.
    pub fn limit_hits(&self) -> Option<u64> {
        match self.version {
            Version::V2 => keyed(&self.path.join("memory.events"), "max"),
            Version::V1 => read_u64(&self.path.join("memory.failcnt")),
        }
    }
}

impl Drop for Cgroup {
    /// Removes the directory; retried for a moment, as the kernel may still be tearing down
    /// an exited server. Left behind (with a message) if a process is still inside.
    fn drop(&mut self) {
        for _ in 0..50 {
            if std::fs::remove_dir(&self.path).is_ok() || !self.path.exists() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        eprintln!(
            "strata-bench: could not remove the cgroup {}",
            self.path.display()
        );
    }
}
