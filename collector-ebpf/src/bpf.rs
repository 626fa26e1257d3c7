//! [`BpfProfiler`]: the compiled BPF program (`bpf/profiler.bpf.o`, committed), loaded with aya
//! and attached to a cpu-clock perf event on every online CPU.

use aya::maps::{MapData, PerCpuArray, RingBuf};
use aya::programs::PerfEvent;
use aya::programs::perf_event::{PerfEventConfig, PerfEventScope, SamplePolicy, SoftwareEvent};
use aya::{Btf, Ebpf, EbpfLoader};

use crate::error::{Error, Result};
use crate::event::RawSample;

/// The compiled BPF object (`bpf/profiler.bpf.o`, rebuilt by `bpf/build.sh`).
pub static PROFILER_OBJECT: &[u8] = aya::include_bytes_aligned!("../bpf/profiler.bpf.o");

const PROGRAM: &str = "profile_cpu";
const RING: &str = "samples";
const COUNTERS: &str = "counters";
const COUNTER_SAMPLES: u32 = 0;
const COUNTER_DROPS: u32 = 1;

/// Kernel-side counters, summed over CPUs since the program was loaded.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KernelCounters {
    /// Samples the program saw (idle and the collector itself excluded).
    pub samples: u64,
    /// Samples lost because the ring buffer was full.
    pub drops: u64,
}

/// The loaded and attached BPF program. Dropping it detaches everything.
pub struct BpfProfiler {
    // Held for its links: dropping `Ebpf` detaches the program.
    _ebpf: Ebpf,
    ring: RingBuf<MapData>,
    counters: PerCpuArray<MapData, u64>,
    cpus: usize,
}

impl std::fmt::Debug for BpfProfiler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BpfProfiler")
            .field("cpus", &self.cpus)
            .finish_non_exhaustive()
    }
}

impl BpfProfiler {
    /// Loads the program (CO-RE against the running kernel's BTF) and attaches it to a
    /// software cpu-clock event sampling at `frequency_hz` on every online CPU. `exclude_pid`
    /// (when non-zero) is left out of the samples.
    pub fn load(frequency_hz: u64, exclude_pid: u32) -> Result<Self> {
        let btf = Btf::from_sys_fs().map_err(|e| Error::bpf("read /sys/kernel/btf/vmlinux", e))?;
        let mut ebpf = EbpfLoader::new()
            .btf(Some(&btf))
            .override_global("self_pid", &exclude_pid, true)
            .load(PROFILER_OBJECT)
            .map_err(|e| Error::bpf("load", e))?;
        let cpus = aya::util::online_cpus().map_err(|(what, e)| Error::bpf(what, e))?;
        {
            let program: &mut PerfEvent = ebpf
                .program_mut(PROGRAM)
                .ok_or(Error::MissingObject {
                    kind: "program",
                    name: PROGRAM,
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
        let ring = RingBuf::try_from(ebpf.take_map(RING).ok_or(Error::MissingObject {
            kind: "map",
            name: RING,
        })?)
        .map_err(|e| Error::bpf("ring buffer", e))?;
        let counters =
            PerCpuArray::try_from(ebpf.take_map(COUNTERS).ok_or(Error::MissingObject {
                kind: "map",
                name: COUNTERS,
            })?)
            .map_err(|e| Error::bpf("counters", e))?;
        tracing::info!(cpus = cpus.len(), frequency_hz, "eBPF profiler attached");
        Ok(BpfProfiler {
            _ebpf: ebpf,
            ring,
            counters,
            cpus: cpus.len(),
        })
    }

    /// Number of CPUs sampled.
    pub fn cpus(&self) -> usize {
        self.cpus
    }

    /// Hands every record in the ring buffer to `f`; returns how many there were. Records of
    /// an unexpected size are skipped (and not counted).
    pub fn drain(&mut self, mut f: impl FnMut(RawSample)) -> usize {
        let mut n = 0;
        while let Some(item) = self.ring.next() {
            if let Some(s) = RawSample::parse(&item) {
                f(s);
                n += 1;
            }
        }
        n
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
        Ok(KernelCounters {
            samples: sum(COUNTER_SAMPLES)?,
            drops: sum(COUNTER_DROPS)?,
        })
    }
}
