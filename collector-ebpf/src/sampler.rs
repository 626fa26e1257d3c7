//! [`Sampler`]: reads the samples from the kernel (ring buffer or counts map), resolves user addresses against the sampled
//! processes' mappings while they are alive, names the Kubernetes containers among them,
//! aggregates per (process, stack) and closes each interval into [`IntervalProfiles`].
//! [`spawn`] runs it on its own thread.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rustc_hash::FxHashMap;
use strata_symbolizer::Kallsyms;

use crate::bpf::{BpfProfiler, MAP_MAX_ENTRIES, OffCpuSettings, UnwindLimits};
use crate::config::{SamplerConfig, Transport};
use crate::elf::ElfCache;
use crate::error::Result;
use crate::event::{FLAG_OFF_CPU, RawSample};
use crate::kubernetes::KubernetesResolver;
use crate::process::{MapEntry, ProcessInfo, start_time};
use crate::profile::{Frame, FrameMapping, IntervalProfiles, ProcessProfile};
use crate::python::{PythonCode, PythonFrameRef, PythonProcesses};
use crate::unwind::{TableLoader, UnwindStats, UnwindTables};

/// Counters about the collector itself, shared with whoever exports metrics.
#[derive(Debug, Default)]
pub struct SamplerStats {
    /// Samples received from the kernel.
    pub samples: AtomicU64,
    /// Records read from the kernel: one per sample from the ring buffer, one per distinct
    /// (process, stacks) per poll from the counts map.
    pub records: AtomicU64,
    /// Samples the kernel side dropped (ring buffer or counts map full).
    pub drops: AtomicU64,
    /// Processes whose state is held.
    pub processes: AtomicU64,
    /// ELF files cached.
    pub elf_files: AtomicU64,
    /// Intervals closed.
    pub intervals: AtomicU64,
    /// Blocks the off-CPU program sampled (stacks taken at the switch-out).
    pub off_cpu_sampled: AtomicU64,
    /// Off-CPU records received (sampled blocks of at least `min_block`).
    pub off_cpu_records: AtomicU64,
    /// Off-CPU records the kernel side lost.
    pub off_cpu_drops: AtomicU64,
    /// The CFI unwinder's tables and walks.
    pub unwind: Arc<UnwindStats>,
}

/// A process as sampled in this interval: its `/proc` snapshot (kept until the interval is
/// closed even if the process exits) under a generation that changes on exec.
type ProcKey = (u32, u32);

#[derive(Hash, PartialEq, Eq)]
struct StackKey {
    proc: ProcKey,
    /// An off-CPU stack (value: blocked nanoseconds), else a CPU one (value: samples).
    off_cpu: bool,
    user: Box<[u64]>,
    kernel: Box<[u64]>,
}

struct Tracked {
    generation: u32,
    info: Arc<ProcessInfo>,
}

/// The userspace half of the collector.
pub struct Sampler {
    config: SamplerConfig,
    bpf: BpfProfiler,
    kernel_symbols: Kallsyms,
    kernel_mapping: Arc<FrameMapping>,
    elfs: ElfCache,
    kubernetes: KubernetesResolver,
    /// The CFI unwinder's maps, filled on their own thread (`None` when `unwind_cfi` is off).
    tables: Option<TableLoader>,
    /// The Python processes the walker knows (with the unwinder).
    python: Option<PythonProcesses>,
    /// Code objects of the Python frames sampled this interval.
    python_code: PythonCode,
    processes: HashMap<u32, Tracked>,
    snapshots: FxHashMap<ProcKey, Arc<ProcessInfo>>,
    counts: FxHashMap<StackKey, u64>,
    interval_start: SystemTime,
    stats: Arc<SamplerStats>,
    last_drops: u64,
}

impl std::fmt::Debug for Sampler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sampler")
            .field("config", &self.config)
            .field("processes", &self.processes.len())
            .finish_non_exhaustive()
    }
}

impl Sampler {
    /// Validates the config, loads and attaches the BPF program and reads `/proc/kallsyms`.
    /// Fails with [`Error::Bpf`](crate::Error::Bpf) when the kernel refuses BPF.
    pub fn start(config: SamplerConfig) -> Result<Sampler> {
        config.validate()?;
        let self_pid = if config.exclude_self {
            std::process::id()
        } else {
            0
        };
        let limits = config
            .unwind_cfi
            .then(|| UnwindLimits::of(config.unwind_table_max_bytes, config.unwind_max_processes));
        let off_cpu = config.off_cpu.enabled.then_some(OffCpuSettings {
            sample_ratio: config.off_cpu.sample_ratio,
            min_block_ns: config.off_cpu.min_block.as_nanos() as u64,
        });
        let mut bpf = BpfProfiler::load(
            config.frequency_hz,
            self_pid,
            config.transport,
            limits,
            off_cpu,
        )?;
        let stats: Arc<SamplerStats> = Arc::default();
        let (tables, python) = match (bpf.take_unwind_maps(), limits) {
            (Some((chunks, procs, py)), Some(l)) => (
                Some(
                    TableLoader::spawn(UnwindTables::new(
                        chunks,
                        procs,
                        l.chunks,
                        l.processes,
                        stats.unwind.clone(),
                    ))
                    .map_err(|e| crate::Error::io("a thread for the unwind tables", e))?,
                ),
                Some(PythonProcesses::new(py)),
            ),
            _ => (None, None),
        };
        if config.transport == Transport::Map {
            let per_poll =
                bpf.cpus() as f64 * config.frequency_hz as f64 * config.poll_interval.as_secs_f64();
            if per_poll > f64::from(MAP_MAX_ENTRIES) {
                tracing::warn!(
                    per_poll,
                    entries = MAP_MAX_ENTRIES,
                    "a poll interval may see more distinct stacks than the counts map holds; drops are counted"
                );
            }
        }
        let kernel_symbols = Kallsyms::load(Kallsyms::PROC).unwrap_or_default();
        if kernel_symbols.is_empty() {
            tracing::warn!("no kernel symbols readable in /proc/kallsyms");
        }
        let elfs = ElfCache::new(config.symbolize_user);
        let kubernetes = KubernetesResolver::new(&config.run_root, &config.docker_root);
        Ok(Sampler {
            config,
            bpf,
            kernel_symbols,
            kernel_mapping: Arc::new(FrameMapping {
                filename: "[kernel.kallsyms]".into(),
                build_id: String::new(),
                memory_start: 0,
                memory_limit: u64::MAX,
                file_offset: 0,
            }),
            elfs,
            kubernetes,
            tables,
            python,
            python_code: PythonCode::default(),
            processes: HashMap::new(),
            snapshots: FxHashMap::default(),
            counts: FxHashMap::default(),
            interval_start: SystemTime::now(),
            stats,
            last_drops: 0,
        })
    }

    /// The shared counters.
    pub fn stats(&self) -> Arc<SamplerStats> {
        self.stats.clone()
    }

    /// The configuration.
    pub fn config(&self) -> &SamplerConfig {
        &self.config
    }

    /// Reads the samples gathered in the kernel since the last poll into the current interval;
    /// returns the number of samples. New processes' `/proc` state is read here, while they are
    /// (most likely) alive.
    pub fn poll(&mut self) -> usize {
        let mut raw = Vec::new();
        let records = self.bpf.drain(|s, count| raw.push((s, count)));
        let mut n = 0;
        let mut reread: HashSet<u32> = HashSet::new();
        let ratio = self.config.off_cpu.sample_ratio;
        for (s, count) in raw {
            if s.flags & FLAG_OFF_CPU != 0 {
                self.stats.off_cpu_records.fetch_add(1, Ordering::Relaxed);
                // Each sampled block stands for 1 / ratio blocks.
                let value = (s.off_cpu_ns as f64 / ratio).round() as u64;
                self.add(s, value, true, &mut reread);
            } else {
                n += count;
                self.add(s, count, false, &mut reread);
            }
        }
        self.stats.samples.fetch_add(n, Ordering::Relaxed);
        self.stats
            .records
            .fetch_add(records as u64, Ordering::Relaxed);
        if let Ok(c) = self.bpf.counters() {
            let new = c.drops.saturating_sub(self.last_drops);
            self.last_drops = c.drops;
            self.stats.drops.fetch_add(new, Ordering::Relaxed);
            for (stat, n) in self.stats.unwind.stops.iter().zip(c.unwind_stops) {
                stat.store(n, Ordering::Relaxed);
            }
            self.stats
                .off_cpu_sampled
                .store(c.off_cpu_sampled, Ordering::Relaxed);
            self.stats
                .off_cpu_drops
                .store(c.off_cpu_drops, Ordering::Relaxed);
        }
        n as usize
    }

    fn add(&mut self, s: RawSample, value: u64, off_cpu: bool, reread: &mut HashSet<u32>) {
        let stale = match self.processes.get(&s.pid) {
            None => true,
            // An exec changes comm; a user address outside every known mapping means new
            // mappings (dlopen, exec keeping comm): read /proc again, once per poll.
            Some(t) => {
                !reread.contains(&s.pid)
                    && (t.info.comm != s.comm
                        || s.user_stack
                            .iter()
                            .filter(|&&a| PythonFrameRef::decode(a).is_none())
                            .take(1)
                            .any(|&a| t.info.mapping(a).is_none()))
            }
        };
        if stale {
            reread.insert(s.pid);
            let generation = self
                .processes
                .get(&s.pid)
                .map_or(0, |t| t.generation.wrapping_add(1));
            let mut info =
                ProcessInfo::read(s.pid, &s.comm, &mut self.elfs).unwrap_or_else(|| ProcessInfo {
                    pid: s.pid,
                    comm: s.comm.clone(),
                    executable: String::new(),
                    cgroup: String::new(),
                    container: Default::default(),
                    kubernetes: None,
                    maps: Vec::new(),
                    start_time: 0,
                });
            info.kubernetes = self.kubernetes.resolve(&info.container);
            if let Some(python) = &mut self.python
                && !info.maps.is_empty()
            {
                python.load_process(&info);
            }
            let info = Arc::new(info);
            if let Some(tables) = &self.tables
                && !info.maps.is_empty()
            {
                tables.load(info.clone());
            }
            self.processes.insert(s.pid, Tracked { generation, info });
        }
        // Python frames are named now, while their code objects are alive.
        if let Some(interp) = self.python.as_ref().and_then(|p| p.interpreter(s.pid)) {
            for f in s
                .user_stack
                .iter()
                .filter_map(|&e| PythonFrameRef::decode(e))
            {
                self.python_code.get(s.pid, f.code, &interp.offsets);
            }
        }
        let t = &self.processes[&s.pid];
        let proc = (s.pid, t.generation);
        self.snapshots.entry(proc).or_insert_with(|| t.info.clone());
        *self
            .counts
            .entry(StackKey {
                proc,
                off_cpu,
                user: s.user_stack.into_boxed_slice(),
                kernel: s.kernel_stack.into_boxed_slice(),
            })
            .or_default() += value;
    }

    /// Closes the interval: symbolizes and groups its samples per process, then forgets the
    /// processes that were not sampled in it or have exited.
    pub fn finish_interval(&mut self) -> IntervalProfiles {
        let now = SystemTime::now();
        let duration = now
            .duration_since(self.interval_start)
            .unwrap_or(Duration::ZERO);
        self.interval_start = now;
        let (processes, off_cpu) = self.symbolize_counts();
        self.python_code.clear();
        self.forget_unsampled();
        IntervalProfiles {
            timestamp_ns: now
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as i64),
            duration_ns: duration.as_nanos() as i64,
            period_ns: self.config.period_ns(),
            processes,
            off_cpu,
        }
    }

    /// Takes the interval's counted stacks, symbolized and grouped per process (sorted by
    /// pid): the CPU profiles and the off-CPU ones. One [`FrameMapping`] is shared by all
    /// frames of a mapping of a process.
    fn symbolize_counts(&mut self) -> (Vec<ProcessProfile>, Vec<ProcessProfile>) {
        let mut by_proc: FxHashMap<(ProcKey, bool), ProcessProfile> = FxHashMap::default();
        let mut mappings: FxHashMap<(ProcKey, u64), Arc<FrameMapping>> = FxHashMap::default();
        let counts = std::mem::take(&mut self.counts);
        for (key, count) in counts {
            let info = &self.snapshots[&key.proc];
            let mut frames = Vec::with_capacity(key.kernel.len() + key.user.len());
            frames.extend(key.kernel.iter().enumerate().map(|(i, &addr)| {
                Frame {
                    address: addr,
                    kernel: true,
                    mapping: Some(self.kernel_mapping.clone()),
                    function: self
                        .kernel_symbols
                        .lookup(symbolized_address(i, addr))
                        .map(|s| Arc::from(s.name)),
                    ..Default::default()
                }
            }));
            let python = self.python.as_ref().and_then(|p| p.interpreter(info.pid));
            let code = &mut self.python_code;
            frames.extend(key.user.iter().enumerate().map(|(i, &addr)| {
                if let Some(f) = PythonFrameRef::decode(addr) {
                    return python_frame(info.pid, f, python.map(|p| &p.offsets), code);
                }
                user_frame(info, addr, symbolized_address(i, addr), |m| {
                    mappings
                        .entry((key.proc, m.start))
                        .or_insert_with(|| Arc::new(frame_mapping(m)))
                        .clone()
                })
            }));
            by_proc
                .entry((key.proc, key.off_cpu))
                .or_insert_with(|| ProcessProfile {
                    pid: info.pid,
                    labels: labels(info),
                    stacks: Vec::new(),
                })
                .stacks
                .push((frames, count));
        }
        let (mut cpu, mut off_cpu) = (Vec::new(), Vec::new());
        for ((_, off), p) in by_proc {
            match off {
                false => cpu.push(p),
                true => off_cpu.push(p),
            }
        }
        cpu.sort_by_key(|p| p.pid);
        off_cpu.sort_by_key(|p| p.pid);
        (cpu, off_cpu)
    }

    /// Forgets the processes not sampled in this interval and those that have exited (or
    /// whose pid was reused), the Kubernetes names and ELF files none of the remaining ones
    /// use; updates the stats.
    fn forget_unsampled(&mut self) {
        let sampled: HashSet<u32> = self.snapshots.keys().map(|k| k.0).collect();
        self.snapshots.clear();
        let mut gone = Vec::new();
        self.processes.retain(|pid, t| {
            let keep =
                sampled.contains(pid) && start_time(*pid).is_some_and(|st| st == t.info.start_time);
            if !keep {
                gone.push(*pid);
            }
            keep
        });
        let containers: HashSet<&str> = self
            .processes
            .values()
            .filter_map(|t| t.info.container.container_id.as_deref())
            .collect();
        self.kubernetes.retain(|id| containers.contains(id));
        for pid in gone {
            if let Some(tables) = &self.tables {
                tables.forget(pid);
            }
            if let Some(python) = &mut self.python {
                python.forget_process(pid);
            }
        }
        self.elfs.prune();
        self.stats
            .processes
            .store(self.processes.len() as u64, Ordering::Relaxed);
        self.stats
            .elf_files
            .store(self.elfs.len() as u64, Ordering::Relaxed);
        self.stats.intervals.fetch_add(1, Ordering::Relaxed);
    }

    /// Polls every `poll_interval` and hands each closed interval to `emit` until `stop` is
    /// set; the last, partial interval is emitted too.
    pub fn run(&mut self, stop: &AtomicBool, mut emit: impl FnMut(IntervalProfiles)) {
        let mut next_close = Instant::now() + self.config.interval;
        while !stop.load(Ordering::Relaxed) {
            std::thread::sleep(self.config.poll_interval);
            self.poll();
            if Instant::now() >= next_close {
                next_close += self.config.interval;
                emit(self.finish_interval());
            }
        }
        self.poll();
        emit(self.finish_interval());
    }
}

/// The address to symbolize for frame `i` of a stack: the leaf's own, and one byte before
/// each return address (inside the call, not at the instruction after it).
fn symbolized_address(i: usize, addr: u64) -> u64 {
    if i == 0 { addr } else { addr.saturating_sub(1) }
}

/// The frame of user address `addr` (symbolized at `lookup`) in process `info`, with its
/// mapping as `mapping` shares it out and the function from the mapped file's symbols.
fn user_frame(
    info: &ProcessInfo,
    addr: u64,
    lookup: u64,
    mapping: impl FnOnce(&MapEntry) -> Arc<FrameMapping>,
) -> Frame {
    let m = info.mapping(lookup);
    Frame {
        address: addr,
        kernel: false,
        mapping: m.map(mapping),
        function: m.and_then(|m| {
            let elf = m.elf.as_ref()?;
            elf.symbolize_offset(m.file_offset(lookup)).map(Arc::from)
        }),
        ..Default::default()
    }
}

/// A Python frame: its code object's qualified name, file and line (read when sampled);
/// `<python code 0x…>` when the code object could not be read.
fn python_frame(
    pid: u32,
    f: PythonFrameRef,
    offsets: Option<&crate::python::PyOffsets>,
    code: &mut PythonCode,
) -> Frame {
    let info = offsets.and_then(|o| code.get(pid, f.code, o));
    match info {
        Some(c) => Frame {
            address: f.code,
            function: Some(c.qualname.clone()),
            file: Some(c.filename.clone()),
            line: c.line(f.index),
            start_line: c.first_line,
            ..Default::default()
        },
        None => Frame {
            address: f.code,
            function: Some(Arc::from(format!("<python code {:#x}>", f.code))),
            ..Default::default()
        },
    }
}

/// What a profile records of a mapping.
fn frame_mapping(m: &MapEntry) -> FrameMapping {
    FrameMapping {
        filename: m.path.clone(),
        build_id: m
            .elf
            .as_ref()
            .map(|e| e.build_id.clone())
            .unwrap_or_default(),
        memory_start: m.start,
        memory_limit: m.end,
        file_offset: m.offset,
    }
}

fn labels(info: &ProcessInfo) -> Vec<(String, String)> {
    let mut l = vec![
        ("pid".to_owned(), info.pid.to_string()),
        ("comm".to_owned(), info.comm.clone()),
        ("executable".to_owned(), info.executable.clone()),
        ("cgroup".to_owned(), info.cgroup.clone()),
    ];
    if let Some(id) = &info.container.container_id {
        l.push(("container_id".to_owned(), id.clone()));
    }
    if let Some(uid) = &info.container.pod_uid {
        l.push(("pod_uid".to_owned(), uid.clone()));
    }
    if let Some(k8s) = &info.kubernetes {
        l.push(("namespace".to_owned(), k8s.namespace.clone()));
        l.push(("pod".to_owned(), k8s.pod.clone()));
        if let Some(container) = &k8s.container {
            l.push(("container".to_owned(), container.clone()));
        }
    }
    l.retain(|(_, v)| !v.is_empty());
    l
}

/// A sampler running on its own thread; dropping the handle stops it (after emitting the last
/// partial interval).
#[derive(Debug)]
pub struct SamplerHandle {
    stop: Arc<AtomicBool>,
    stats: Arc<SamplerStats>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl SamplerHandle {
    /// The sampler's counters.
    pub fn stats(&self) -> &Arc<SamplerStats> {
        &self.stats
    }

    /// Stops the sampler and waits for its thread.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for SamplerHandle {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Starts a [`Sampler`] on a thread of its own, handing every interval to `emit` (called on
/// that thread). Returns once the BPF program is attached, or with the kernel's refusal.
pub fn spawn(
    config: SamplerConfig,
    emit: impl FnMut(IntervalProfiles) + Send + 'static,
) -> Result<SamplerHandle> {
    let (tx, rx) = std::sync::mpsc::channel();
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = stop.clone();
    let thread = std::thread::Builder::new()
        .name("strata-collector".into())
        .spawn(move || match Sampler::start(config) {
            Ok(mut s) => {
                let _ = tx.send(Ok(s.stats()));
                s.run(&stop2, emit);
            }
            Err(e) => {
                let _ = tx.send(Err(e));
            }
        })
        .map_err(|e| crate::Error::io("spawning the collector thread", e))?;
    match rx.recv() {
        Ok(Ok(stats)) => Ok(SamplerHandle {
            stop,
            stats,
            thread: Some(thread),
        }),
        Ok(Err(e)) => {
            let _ = thread.join();
            Err(e)
        }
        Err(_) => {
            let _ = thread.join();
            Err(crate::Error::io(
                "the collector thread",
                std::io::Error::other("exited before starting"),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroup::parse_cgroup_path;

    const ID: &str = "3f4a1b2c3d4e5f60718293a4b5c6d7e8f0112233445566778899aabbccddeeff";
    const SANDBOX: &str = "0000000000000000000000000000000000000000000000000000000000000002";
    const UID: &str = "0a1b2c3d-4e5f-6789-abcd-ef0123456789";

    fn process(pid: u32, cgroup: &str, resolver: &mut KubernetesResolver) -> ProcessInfo {
        let container = parse_cgroup_path(cgroup);
        let kubernetes = resolver.resolve(&container);
        ProcessInfo {
            pid,
            comm: "app".into(),
            executable: "/app".into(),
            cgroup: cgroup.into(),
            container,
            kubernetes,
            maps: Vec::new(),
            start_time: 1,
        }
    }

    #[test]
    fn kubernetes_names_reach_the_sample_labels() {
        let dir = tempfile::tempdir().unwrap();
        let run = dir.path().join("run");
        let task = run.join("containerd/io.containerd.runtime.v2.task/k8s.io");
        for (id, annotations) in [
            (
                ID,
                r#"{"io.kubernetes.cri.container-type":"container","io.kubernetes.cri.sandbox-namespace":"shop","io.kubernetes.cri.sandbox-name":"web-0","io.kubernetes.cri.container-name":"app"}"#,
            ),
            (
                SANDBOX,
                r#"{"io.kubernetes.cri.container-type":"sandbox","io.kubernetes.cri.sandbox-namespace":"shop","io.kubernetes.cri.sandbox-name":"web-0"}"#,
            ),
        ] {
            std::fs::create_dir_all(task.join(id)).unwrap();
            std::fs::write(
                task.join(id).join("config.json"),
                format!(r#"{{"annotations":{annotations}}}"#),
            )
            .unwrap();
        }
        let mut resolver = KubernetesResolver::new(&run, dir.path().join("docker"));
        let pod_slice = format!(
            "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{}.slice",
            UID.replace('-', "_")
        );
        let infos = [
            process(
                1,
                &format!("{pod_slice}/cri-containerd-{ID}.scope"),
                &mut resolver,
            ),
            process(
                2,
                &format!("{pod_slice}/cri-containerd-{SANDBOX}.scope"),
                &mut resolver,
            ),
            // A container of no pod (no state in the k8s.io namespace), and a host process.
            process(
                3,
                &format!("/system.slice/docker-{}.scope", "ab".repeat(32)),
                &mut resolver,
            ),
            process(4, "/system.slice/sshd.service", &mut resolver),
        ];
        assert_eq!(resolver.len(), 3, "one entry per container id");

        let l = labels(&infos[0]);
        let get = |l: &[(String, String)], k: &str| {
            l.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
        };
        assert_eq!(get(&l, "container_id").as_deref(), Some(ID));
        assert_eq!(get(&l, "pod_uid").as_deref(), Some(UID));
        assert_eq!(get(&l, "namespace").as_deref(), Some("shop"));
        assert_eq!(get(&l, "pod").as_deref(), Some("web-0"));
        assert_eq!(get(&l, "container").as_deref(), Some("app"));
        let l = labels(&infos[1]);
        assert_eq!(get(&l, "pod").as_deref(), Some("web-0"));
        assert_eq!(
            get(&l, "container"),
            None,
            "a sandbox has no container name"
        );
        for info in &infos[2..] {
            let l = labels(info);
            for k in ["namespace", "pod", "container"] {
                assert_eq!(get(&l, k), None, "pid {}: {k}", info.pid);
            }
        }

        // The labels become the series of the engine batch.
        let frame = Frame {
            address: 0x1000,
            kernel: false,
            mapping: None,
            function: None,
            ..Default::default()
        };
        let profiles = IntervalProfiles {
            timestamp_ns: 1_700_000_000_000_000_000,
            duration_ns: 10_000_000_000,
            period_ns: 52_631_578,
            processes: infos
                .iter()
                .map(|info| ProcessProfile {
                    pid: info.pid,
                    labels: labels(info),
                    stacks: vec![(vec![frame.clone()], 1)],
                })
                .collect(),
            off_cpu: Vec::new(),
        };
        let batch = profiles.to_batch().unwrap();
        let series = batch.series();
        assert_eq!(series.len(), 4);
        let of = |pid: &str| {
            series
                .iter()
                .find(|s| s.get("pid") == Some(pid))
                .expect("series of the pid")
        };
        assert_eq!(of("1").get("namespace"), Some("shop"));
        assert_eq!(of("1").get("pod"), Some("web-0"));
        assert_eq!(of("1").get("container"), Some("app"));
        assert_eq!(of("1").get("container_id"), Some(ID));
        assert_eq!(of("2").get("container"), None);
        assert_eq!(of("3").get("namespace"), None);
        assert_eq!(of("4").get("pod"), None);
    }
}
