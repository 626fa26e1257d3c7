//! [`ProcessInfo`]: what `/proc/<pid>` says about a sampled process — executable mappings,
//! executable path, cgroup — read once when the process is first sampled (and again after an
//! exec), plus the Kubernetes names of its container.

use std::sync::Arc;

use crate::cgroup::{ContainerInfo, parse_cgroup_path};
use crate::elf::{ElfCache, ElfInfo};
use crate::kubernetes::KubernetesNames;

/// One executable mapping of `/proc/<pid>/maps`.
#[derive(Clone, Debug)]
pub struct MapEntry {
    /// First address.
    pub start: u64,
    /// End address (exclusive).
    pub end: u64,
    /// File offset of `start`.
    pub offset: u64,
    /// Device and inode of the file (0 for anonymous mappings).
    pub dev_inode: (u64, u64),
    /// The path, or a pseudo name (`[vdso]`), or empty for anonymous memory (JIT code).
    pub path: String,
    /// The ELF file, when it could be read.
    pub elf: Option<Arc<ElfInfo>>,
}

impl MapEntry {
    /// The file offset of `addr`, which must be inside the mapping.
    pub fn file_offset(&self, addr: u64) -> u64 {
        addr - self.start + self.offset
    }
}

/// Parses the executable mappings of `/proc/<pid>/maps` text (without reading any ELF file).
pub fn parse_maps(text: &str) -> Vec<MapEntry> {
    let mut out = Vec::new();
    for line in text.lines() {
        let mut it = line.splitn(6, ' ');
        let (Some(range), Some(perms), Some(off), Some(dev), Some(inode)) =
            (it.next(), it.next(), it.next(), it.next(), it.next())
        else {
            continue;
        };
        if perms.as_bytes().get(2) != Some(&b'x') {
            continue;
        }
        let path = it.next().unwrap_or("").trim_start().to_owned();
        let Some((s, e)) = range.split_once('-') else {
            continue;
        };
        let (Ok(start), Ok(end), Ok(offset)) = (
            u64::from_str_radix(s, 16),
            u64::from_str_radix(e, 16),
            u64::from_str_radix(off, 16),
        ) else {
            continue;
        };
        let dev = dev
            .split_once(':')
            .and_then(|(ma, mi)| {
                Some((u64::from_str_radix(ma, 16).ok()? << 32) | u64::from_str_radix(mi, 16).ok()?)
            })
            .unwrap_or(0);
        let inode = inode.parse().unwrap_or(0);
        out.push(MapEntry {
            start,
            end,
            offset,
            dev_inode: (dev, inode),
            path,
            elf: None,
        });
    }
    out.sort_by_key(|m| m.start);
    out
}

/// A sampled process as `/proc` described it.
#[derive(Debug)]
pub struct ProcessInfo {
    /// The pid.
    pub pid: u32,
    /// Command name (from the sample; `/proc/<pid>/comm` may differ per thread).
    pub comm: String,
    /// `/proc/<pid>/exe`, when readable.
    pub executable: String,
    /// The cgroup v2 path, when readable.
    pub cgroup: String,
    /// What the cgroup path says about a container.
    pub container: ContainerInfo,
    /// The Kubernetes names of that container, when it belongs to a pod (not read by
    /// [`ProcessInfo::read`]: the sampler fills it from its
    /// [`KubernetesResolver`](crate::KubernetesResolver)).
    pub kubernetes: Option<Arc<KubernetesNames>>,
    /// Executable mappings, sorted by address.
    pub maps: Vec<MapEntry>,
    /// Process start time (`/proc/<pid>/stat` field 22), to tell a reused pid apart.
    pub start_time: u64,
}

impl ProcessInfo {
    /// Reads `/proc/<pid>`; `None` when the process has gone. ELF files of the mappings are
    /// opened through `/proc/<pid>/root` (so container files resolve) and cached in `elfs`.
    pub fn read(pid: u32, comm: &str, elfs: &mut ElfCache) -> Option<ProcessInfo> {
        let dir = format!("/proc/{pid}");
        let maps_text = std::fs::read_to_string(format!("{dir}/maps")).ok()?;
        let mut maps = parse_maps(&maps_text);
        for m in &mut maps {
            if m.path.starts_with('/') && m.dev_inode.1 != 0 {
                m.elf = elfs.get(m.dev_inode, &format!("{dir}/root{}", m.path), &m.path);
            }
        }
        let executable = std::fs::read_link(format!("{dir}/exe"))
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default();
        let cgroup = std::fs::read_to_string(format!("{dir}/cgroup"))
            .ok()
            .and_then(|t| {
                t.lines()
                    .find_map(|l| l.strip_prefix("0::").map(str::to_owned))
            })
            .unwrap_or_default();
        let container = parse_cgroup_path(&cgroup);
        Some(ProcessInfo {
            pid,
            comm: comm.to_owned(),
            executable,
            cgroup,
            container,
            kubernetes: None,
            maps,
            start_time: start_time(pid).unwrap_or(0),
        })
    }

    /// The mapping containing `addr`.
    pub fn mapping(&self, addr: u64) -> Option<&MapEntry> {
        let i = self.maps.partition_point(|m| m.start <= addr);
        let m = self.maps.get(i.checked_sub(1)?)?;
        (addr < m.end).then_some(m)
    }
}

/// Start time of `pid` in clock ticks since boot, `None` when it has gone.
pub fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The comm field may hold spaces and parentheses: fields resume after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split(' ').nth(19)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_executable_mappings_only() {
        let text = "\
55d0c0a00000-55d0c0a01000 r--p 00000000 fd:01 1234 /usr/bin/app
55d0c0a01000-55d0c0a05000 r-xp 00001000 fd:01 1234 /usr/bin/app
7f0000000000-7f0000100000 rw-p 00000000 00:00 0
7f1000000000-7f1000020000 r-xp 00028000 fd:01 99 /usr/lib/x86_64-linux-gnu/libc.so.6
7ffd00000000-7ffd00002000 r-xp 00000000 00:00 0                          [vdso]
7f2000000000-7f2000001000 r-xp 00000000 00:00 0
";
        let maps = parse_maps(text);
        assert_eq!(maps.len(), 4);
        assert_eq!(maps[0].path, "/usr/bin/app");
        assert_eq!(maps[0].offset, 0x1000);
        assert_eq!(maps[0].dev_inode, ((0xfd << 32) | 1, 1234));
        assert_eq!(maps[0].file_offset(0x55d0c0a01234), 0x1234);
        assert_eq!(maps[3].path, "[vdso]");
        assert_eq!(maps[2].path, "");
    }

    #[test]
    fn reads_this_process() {
        let mut elfs = ElfCache::new(true);
        let me = ProcessInfo::read(std::process::id(), "test", &mut elfs).unwrap();
        let exe = std::env::current_exe().unwrap();
        assert_eq!(me.executable, exe.to_string_lossy());
        // This function's address is in a mapping of the test binary, which has a build id.
        let addr = reads_this_process as *const () as usize as u64;
        let m = me.mapping(addr).expect("mapping of own code");
        assert_eq!(m.path, me.executable);
        let elf = m.elf.as_ref().expect("readable ELF");
        assert!(!elf.build_id.is_empty());
        assert!(me.start_time > 0);
    }
}
