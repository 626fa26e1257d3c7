//! [`BpfProfiler`]: the compiled BPF program (`bpf/profiler.bpf.o`, committed), loaded with aya
//! and attached to a cpu-clock perf event on every online CPU, with the samples read back
//! through the configured [`Transport`]: the ring buffer, or the in-kernel counts maps.

use std::time::{Duration, Instant};

use aya::maps::{Array, HashMap, MapData, PerCpuArray, RingBuf};
use aya::programs::perf_event::{PerfEventConfig, PerfEventScope, SamplePolicy, SoftwareEvent};
use aya::programs::{BtfTracePoint, PerfEvent};
use aya::{Btf, Ebpf, EbpfLoader};

use crate::config::Transport;
use crate::error::{Error, Result};
use crate::event::RawSample;
use crate::python::interpreter::PY_PROC_BYTES;
use crate::unwind::UNWIND_STOPS;
use crate::unwind::tables::{CHUNK_BYTES, PROC_UNWIND_BYTES};

/// The compiled BPF object (`bpf/profiler.bpf.o`, rebuilt by `bpf/build.sh`).
pub static PROFILER_OBJECT: &[u8] = aya::include_bytes_aligned!("../bpf/profiler.bpf.o");

/// Entries of each counts map of the `map` transport (`MAP_MAX_ENTRIES` in
/// `bpf/profiler.bpf.c`): distinct (process, stacks) keys one poll can hold; beyond that,
/// samples are dropped (and counted).
pub const MAP_MAX_ENTRIES: u32 = 16_384;

const PROGRAM_RING: &str = "profile_cpu";
const PROGRAM_MAP: &str = "profile_cpu_map";
const RING: &str = "samples";
const COUNTS: [&str; 2] = ["counts_0", "counts_1"];
const ACTIVE: &str = "active";
const COUNTERS: &str = "counters";
const COUNTER_SAMPLES: u32 = 0;
const COUNTER_DROPS: u32 = 1;
const COUNTER_SETTLED: u32 = 2;
/// The first of the per-reason counters of walks with the unwind tables
/// (`COUNTER_UNWIND_FIRST`, in the order of [`UNWIND_STOPS`]).
const COUNTER_UNWIND_FIRST: u32 = 3;
const COUNTER_OFF_CPU_SAMPLED: u32 = COUNTER_UNWIND_FIRST + UNWIND_STOPS.len() as u32;
const COUNTER_OFF_CPU_DROPS: u32 = COUNTER_OFF_CPU_SAMPLED + 1;
const PROGRAM_OFF_CPU: &str = "off_cpu_switch";
const OFF_CPU_RING: &str = "off_cpu_samples";
/// The off-CPU ring's size when off-CPU profiling is off.
const UNUSED_OFF_CPU_RING_BYTES: u32 = 4096;
const UNWIND_CHUNKS: &str = "unwind_chunks";
const PROC_UNWIND: &str = "proc_unwind";
const PY_PROCS: &str = "py_procs";
/// The ring buffer's size when the `map` transport leaves it unused (a power of two and a
/// multiple of the page size).
const UNUSED_RING_BYTES: u32 = 64 * 1024;
/// The CPU ring buffer holds this many seconds of samples at the sampling rate on every CPU
/// (ten polls at the default 100 ms): room for a slow poll, without paying for more. Its
/// pages are mapped into the collector (twice, for records that wrap), so they count in its
/// RSS once written.
const RING_SECONDS: u64 = 1;
/// Off-CPU records a second per CPU the off-CPU ring holds (blocks of at least `min_block`,
/// after `sample_ratio`; beyond it records are dropped and counted).
const OFF_CPU_RECORDS_PER_CPU: u64 = 128;
/// Smallest and largest ring buffer.
const RING_BYTES: (u64, u64) = (256 << 10, 16 << 20);

/// A ring buffer's size for `records_per_second`: a power of two between the bounds of
/// [`RING_BYTES`].
fn ring_bytes(records_per_second: u64) -> u32 {
    let want = records_per_second.saturating_mul(RawSample::SIZE as u64 * RING_SECONDS);
    want.min(RING_BYTES.1).next_power_of_two().max(RING_BYTES.0) as u32
}

/// How long a poll of the `map` transport waits for programs still writing the map it is about
/// to read (they run for microseconds).
const SETTLE_TIMEOUT: Duration = Duration::from_millis(50);

type CountsKey = [u8; RawSample::KEY_SIZE];
type CountsMap = HashMap<MapData, CountsKey, u64>;

/// Where the samples come from.
enum Source {
    Ring(RingBuf<MapData>),
    Map {
        /// `counts_0` and `counts_1`.
        counts: [CountsMap; 2],
        /// Which one the program writes (mirrors the `active` map).
        active: u32,
        active_map: Array<MapData, u32>,
    },
}

/// Kernel-side counters, summed over CPUs since the program was loaded.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KernelCounters {
    /// Samples the program saw (idle and the collector itself excluded).
    pub samples: u64,
    /// Samples lost because the ring buffer (or the counts map) was full.
    pub drops: u64,
    /// Walks with the unwind tables, by why they ended ([`UNWIND_STOPS`]).
    pub unwind_stops: [u64; UNWIND_STOPS.len()],
    /// Blocks whose stacks the off-CPU program took.
    pub off_cpu_sampled: u64,
    /// Off-CPU records lost (ring buffer or task storage full).
    pub off_cpu_drops: u64,
}

/// How the off-CPU program samples blocks.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct OffCpuSettings {
    /// The share of blocks sampled, in (0, 1].
    pub sample_ratio: f64,
    /// Shorter blocks are not reported.
    pub min_block_ns: u64,
}

/// The sizes of the unwinder's maps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnwindLimits {
    /// Elements (64 rows each) of `unwind_chunks`.
    pub chunks: u32,
    /// Entries of `proc_unwind`.
    pub processes: u32,
}

impl UnwindLimits {
    /// The limits of a byte budget for rows and a number of processes.
    pub fn of(table_max_bytes: u64, processes: u32) -> Self {
        UnwindLimits {
            chunks: (table_max_bytes / CHUNK_BYTES as u64).clamp(1, u64::from(u32::MAX)) as u32,
            processes,
        }
    }
}

/// The unwinder's maps, taken from the loaded object by [`BpfProfiler::take_unwind_maps`]:
/// rows, process mappings, Python processes.
pub(crate) type UnwindMaps = (
    Array<MapData, [u8; CHUNK_BYTES]>,
    HashMap<MapData, u32, [u8; PROC_UNWIND_BYTES]>,
    HashMap<MapData, u32, [u8; PY_PROC_BYTES]>,
);

fn take_map(ebpf: &mut Ebpf, name: &'static str) -> Result<aya::maps::Map> {
    ebpf.take_map(name)
        .ok_or(Error::MissingObject { kind: "map", name })
}

/// The loaded and attached BPF program. Dropping it detaches everything.
pub struct BpfProfiler {
    // Held for its links: dropping `Ebpf` detaches the program.
    _ebpf: Ebpf,
    source: Source,
    transport: Transport,
    counters: PerCpuArray<MapData, u64>,
    cpus: usize,
    unwind_maps: Option<UnwindMaps>,
    /// Off-CPU records, when off-CPU profiling is on.
    off_cpu_ring: Option<RingBuf<MapData>>,
}

impl std::fmt::Debug for BpfProfiler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BpfProfiler")
            .field("cpus", &self.cpus)
            .field("transport", &self.transport)
            .finish_non_exhaustive()
    }
}

impl BpfProfiler {
    /// Loads the program of `transport` (CO-RE against the running kernel's BTF) and attaches
    /// it to a software cpu-clock event sampling at `frequency_hz` on every online CPU.
    /// `exclude_pid` (when non-zero) is left out of the samples. `unwind` sizes the CFI
    /// unwinder's maps; without it they are minimal and stay empty (frame pointers only).
    pub fn load(
        frequency_hz: u64,
        exclude_pid: u32,
        transport: Transport,
        unwind: Option<UnwindLimits>,
        off_cpu: Option<OffCpuSettings>,
    ) -> Result<Self> {
        let btf = Btf::from_sys_fs().map_err(|e| Error::bpf("read /sys/kernel/btf/vmlinux", e))?;
        let cpus = aya::util::online_cpus().map_err(|(what, e)| Error::bpf(what, e))?;
        let n_cpus = cpus.len() as u64;
        let mut loader = EbpfLoader::new();
        loader
            .btf(Some(&btf))
            // The off-CPU program's task storage: created by the kernel, used by BPF only.
            .allow_unsupported_maps()
            .override_global("self_pid", &exclude_pid, true);
        let (threshold, min_block_ns) = match off_cpu {
            Some(o) => {
                loader.map_max_entries(OFF_CPU_RING, ring_bytes(n_cpus * OFF_CPU_RECORDS_PER_CPU));
                ((o.sample_ratio * 4_294_967_296.0) as u64, o.min_block_ns)
            }
            None => {
                loader.map_max_entries(OFF_CPU_RING, UNUSED_OFF_CPU_RING_BYTES);
                (0, 0)
            }
        };
        loader
            .override_global("off_cpu_threshold", &threshold, true)
            .override_global("off_cpu_min_block_ns", &min_block_ns, true);
        let limits = unwind.unwrap_or(UnwindLimits {
            chunks: 1,
            processes: 1,
        });
        loader
            .map_max_entries(UNWIND_CHUNKS, limits.chunks)
            .map_max_entries(PROC_UNWIND, limits.processes)
            .map_max_entries(PY_PROCS, limits.processes);
        // Every map of the object is created; shrink those the other transport uses.
        let program_name = match transport {
            Transport::RingBuffer => {
                for name in COUNTS {
                    loader.map_max_entries(name, 1);
                }
                loader.map_max_entries(RING, ring_bytes(n_cpus * frequency_hz));
                PROGRAM_RING
            }
            Transport::Map => {
                loader.map_max_entries(RING, UNUSED_RING_BYTES);
                PROGRAM_MAP
            }
        };
        let mut ebpf = loader
            .load(PROFILER_OBJECT)
            .map_err(|e| Error::bpf("load", e))?;
        {
            let program: &mut PerfEvent = ebpf
                .program_mut(program_name)
                .ok_or(Error::MissingObject {
                    kind: "program",
                    name: program_name,
                })?
                .try_into()
                .map_err(|e| Error::bpf("program type", e))?;
            program.load().map_err(|e| Error::bpf("verify", e))?;
            for &cpu in &cpus {
                program
                    .attach(
                        PerfEventConfig::Software(SoftwareEvent::CpuClock),
                        PerfEventScope::AllProcessesOneCpu { cpu },
                        SamplePolicy::Frequency(frequency_hz),
                        false,
                    )
                    .map_err(|e| Error::bpf(format!("attach to cpu {cpu}"), e))?;
            }
        }
        let off_cpu_ring = match off_cpu {
            None => None,
            Some(_) => {
                let program: &mut BtfTracePoint = ebpf
                    .program_mut(PROGRAM_OFF_CPU)
                    .ok_or(Error::MissingObject {
                        kind: "program",
                        name: PROGRAM_OFF_CPU,
                    })?
                    .try_into()
                    .map_err(|e| Error::bpf("program type", e))?;
                program
                    .load("sched_switch", &btf)
                    .map_err(|e| Error::bpf("verify the off-CPU program", e))?;
                program
                    .attach()
                    .map_err(|e| Error::bpf("attach to sched_switch", e))?;
                Some(
                    RingBuf::try_from(take_map(&mut ebpf, OFF_CPU_RING)?)
                        .map_err(|e| Error::bpf(OFF_CPU_RING, e))?,
                )
            }
        };
        let source = match transport {
            Transport::RingBuffer => Source::Ring(
                RingBuf::try_from(take_map(&mut ebpf, RING)?)
                    .map_err(|e| Error::bpf("ring buffer", e))?,
            ),
            Transport::Map => {
                let mut open = |name: &'static str| -> Result<CountsMap> {
                    CountsMap::try_from(take_map(&mut ebpf, name)?).map_err(|e| Error::bpf(name, e))
                };
                let counts = [open(COUNTS[0])?, open(COUNTS[1])?];
                let active_map = Array::try_from(take_map(&mut ebpf, ACTIVE)?)
                    .map_err(|e| Error::bpf(ACTIVE, e))?;
                Source::Map {
                    counts,
                    active: 0,
                    active_map,
                }
            }
        };
        let counters = PerCpuArray::try_from(take_map(&mut ebpf, COUNTERS)?)
            .map_err(|e| Error::bpf("counters", e))?;
        tracing::info!(
            cpus = cpus.len(),
            frequency_hz,
            %transport,
            "eBPF profiler attached"
        );
        let unwind_maps = match unwind {
            None => None,
            Some(_) => Some((
                Array::try_from(take_map(&mut ebpf, UNWIND_CHUNKS)?)
                    .map_err(|e| Error::bpf(UNWIND_CHUNKS, e))?,
                HashMap::try_from(take_map(&mut ebpf, PROC_UNWIND)?)
                    .map_err(|e| Error::bpf(PROC_UNWIND, e))?,
                HashMap::try_from(take_map(&mut ebpf, PY_PROCS)?)
                    .map_err(|e| Error::bpf(PY_PROCS, e))?,
            )),
        };
        Ok(BpfProfiler {
            off_cpu_ring,
            unwind_maps,
            _ebpf: ebpf,
            source,
            transport,
            counters,
            cpus: cpus.len(),
        })
    }

    /// The unwinder's maps (once; `None` when loaded without [`UnwindLimits`]).
    pub(crate) fn take_unwind_maps(&mut self) -> Option<UnwindMaps> {
        self.unwind_maps.take()
    }

    /// Number of CPUs sampled.
    pub fn cpus(&self) -> usize {
        self.cpus
    }

    /// The transport the samples come through.
    pub fn transport(&self) -> Transport {
        self.transport
    }

    /// Hands every sample gathered since the last call to `f` with the number of samples it
    /// stands for, and returns the number of CPU sample records read (off-CPU records are
    /// handed over too, uncounted): from the ring buffer one record per sample (count 1); from
    /// the counts map one per distinct key, with its count. Records of an unexpected size are
    /// skipped (and not counted).
    ///
    /// With the `map` transport this flips the `active` map, waits until the programs that
    /// may still write the other one are done, then reads and deletes every entry of it.
    pub fn drain(&mut self, mut f: impl FnMut(RawSample, u64)) -> usize {
        let mut n = 0;
        // Off-CPU records are handed over too but not counted here (the sampler counts them
        // apart): the count is of CPU sample records.
        if let Some(ring) = &mut self.off_cpu_ring {
            while let Some(item) = ring.next() {
                if let Some(s) = RawSample::parse(&item) {
                    f(s, 1);
                }
            }
        }
        match &mut self.source {
            Source::Ring(ring) => {
                while let Some(item) = ring.next() {
                    if let Some(s) = RawSample::parse(&item) {
                        f(s, 1);
                        n += 1;
                    }
                }
            }
            Source::Map {
                counts,
                active,
                active_map,
            } => {
                let old = *active;
                if let Err(e) = active_map.set(0, 1 - old, 0) {
                    tracing::warn!(error = %e, "cannot flip the active counts map");
                    return 0;
                }
                *active = 1 - old;
                settle(&self.counters);
                let map = &mut counts[old as usize];
                let mut entries = Vec::new();
                for entry in map.iter() {
                    match entry {
                        Ok(kv) => entries.push(kv),
                        Err(e) => {
                            tracing::warn!(error = %e, "reading the counts map");
                            break;
                        }
                    }
                }
                for (key, count) in entries {
                    if let Err(e) = map.remove(&key) {
                        tracing::warn!(error = %e, "deleting from the counts map");
                    }
                    if let Some(s) = RawSample::parse_key(&key) {
                        f(s, count);
                        n += 1;
                    }
                }
            }
        }
        n
    }

    /// The number of entries of each counts map as the kernel created it (`map` transport),
    /// [`MAP_MAX_ENTRIES`] unless the object and this crate disagree.
    pub fn map_capacity(&self) -> Option<u32> {
        match &self.source {
            Source::Ring(_) => None,
            Source::Map { counts, .. } => {
                use aya::maps::IterableMap;
                counts[0].map().info().ok().map(|i| i.max_entries())
            }
        }
    }

    /// The kernel-side counters, summed over CPUs.
    pub fn counters(&self) -> Result<KernelCounters> {
        let sum = |i: u32| -> Result<u64> {
            let v = self
                .counters
                .get(&i, 0)
                .map_err(|e| Error::bpf("read counters", e))?;
            Ok(v.iter().sum())
        };
        let mut unwind_stops = [0u64; UNWIND_STOPS.len()];
        for (i, n) in unwind_stops.iter_mut().enumerate() {
            *n = sum(COUNTER_UNWIND_FIRST + i as u32)?;
        }
        Ok(KernelCounters {
            samples: sum(COUNTER_SAMPLES)?,
            drops: sum(COUNTER_DROPS)?,
            unwind_stops,
            off_cpu_sampled: sum(COUNTER_OFF_CPU_SAMPLED)?,
            off_cpu_drops: sum(COUNTER_OFF_CPU_DROPS)?,
        })
    }
}

/// Waits until, on every CPU, the map program has finished as many samples
/// (`COUNTER_SETTLED`) as had started (`COUNTER_SAMPLES`) when called: those are the only ones
/// that may have read the old value of `active`. Both counters are bumped with locked adds
/// (entered before `active` is read, settled after the map is written), and the flip before
/// this call went through the `bpf()` syscall, so a program that started after the snapshot
/// sees the new value.
fn settle(counters: &PerCpuArray<MapData, u64>) {
    let Ok(entered) = counters.get(&COUNTER_SAMPLES, 0) else {
        return;
    };
    let start = Instant::now();
    loop {
        let Ok(settled) = counters.get(&COUNTER_SETTLED, 0) else {
            return;
        };
        if entered.iter().zip(settled.iter()).all(|(e, s)| s >= e) {
            return;
        }
        if start.elapsed() > SETTLE_TIMEOUT {
            tracing::warn!("map programs still running after {SETTLE_TIMEOUT:?}; reading anyway");
            return;
        }
        std::thread::sleep(Duration::from_micros(50));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ring_sizes_follow_the_sample_rate_within_bounds() {
        // 2 CPUs at 19 Hz: the smallest ring.
        assert_eq!(ring_bytes(2 * 19), 256 << 10);
        // 2 CPUs at 999 Hz: a second of records, rounded up to a power of two.
        let at_999 = ring_bytes(2 * 999);
        assert!(u64::from(at_999) >= 2 * 999 * RawSample::SIZE as u64);
        assert!(at_999.is_power_of_two());
        // 128 CPUs at 99 Hz: capped.
        assert_eq!(ring_bytes(128 * 99), 16 << 20);
        assert_eq!(ring_bytes(u64::MAX), 16 << 20);
    }
}
