//! [`IntervalProfiles`]: what the sampler produces per interval — one profile per process,
//! stacks of resolved frames with sample counts — and its engine form ([`IntervalProfiles::to_batch`]).

use std::sync::Arc;

use strata_engine::{
    Function, Labels, Line, Location, Mapping, MappingId, ProfileType, SampleBatch,
    SampleBatchBuilder, SampleRow,
};

use crate::error::Result;

/// The profile type of the collector's samples, as Parca's agent names it.
pub const PROFILE_TYPE: &str = "parca_agent:samples:count:cpu:nanoseconds:delta";

/// The profile type of the collector's off-CPU time (nanoseconds threads spent blocked, by
/// the stack at which they blocked), as Parca's agent names it.
pub const OFF_CPU_PROFILE_TYPE: &str = "parca_agent:off_cpu:nanoseconds:off_cpu:nanoseconds:delta";

/// The object a frame's address belongs to.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct FrameMapping {
    /// Path of the file (`[kernel.kallsyms]` for the kernel, `[vdso]`, or empty for anonymous
    /// memory such as JIT code).
    pub filename: String,
    /// Build id of the file ([`crate::ElfInfo::build_id`]: GNU in hex, else Go, else a file
    /// hash); empty when unknown (unreadable file, anonymous memory, kernel).
    pub build_id: String,
    /// First mapped address.
    pub memory_start: u64,
    /// End of the mapping (exclusive).
    pub memory_limit: u64,
    /// File offset of `memory_start`.
    pub file_offset: u64,
}

/// One frame of a stack.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Frame {
    /// The instruction pointer (leaf) or return address (callers), as sampled.
    pub address: u64,
    /// Whether this is a kernel frame.
    pub kernel: bool,
    /// The mapping, when the address fell in a known one.
    pub mapping: Option<Arc<FrameMapping>>,
    /// The function name, when symbolized locally (kallsyms, ELF symbol table, a Python code
    /// object's qualified name).
    pub function: Option<Arc<str>>,
    /// The source file, when known here (Python frames).
    pub file: Option<Arc<str>>,
    /// The source line (0: unknown).
    pub line: u32,
    /// The function's first line (0: unknown).
    pub start_line: u32,
}

/// One process's samples in an interval.
#[derive(Clone, Debug, Default)]
pub struct ProcessProfile {
    /// The process id.
    pub pid: u32,
    /// Labels: `pid`, `comm`, `executable`, `cgroup`, `container_id`, `pod_uid`, and for
    /// containers of Kubernetes pods `namespace`, `pod`, `container` (none for a pod's sandbox)
    /// (empty values are left out).
    pub labels: Vec<(String, String)>,
    /// Stacks, leaf first (kernel frames, then user frames), with their sample counts.
    pub stacks: Vec<(Vec<Frame>, u64)>,
}

impl ProcessProfile {
    /// Total samples.
    pub fn total(&self) -> u64 {
        self.stacks.iter().map(|s| s.1).sum()
    }

    /// The value of label `name`.
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|l| l.0 == name)
            .map(|l| l.1.as_str())
    }
}

/// Every process's profile of one interval.
#[derive(Clone, Debug, Default)]
pub struct IntervalProfiles {
    /// End of the interval, nanoseconds since the Unix epoch.
    pub timestamp_ns: i64,
    /// Length of the interval in nanoseconds.
    pub duration_ns: i64,
    /// Nanoseconds of CPU one sample stands for (1e9 / frequency).
    pub period_ns: i64,
    /// The CPU profiles (values: samples).
    pub processes: Vec<ProcessProfile>,
    /// The off-CPU profiles (values: estimated blocked nanoseconds).
    pub off_cpu: Vec<ProcessProfile>,
}

impl IntervalProfiles {
    /// Total samples over all processes.
    pub fn total_samples(&self) -> u64 {
        self.processes.iter().map(ProcessProfile::total).sum()
    }

    /// Whether the interval holds no profile.
    pub fn is_empty(&self) -> bool {
        self.processes.is_empty() && self.off_cpu.is_empty()
    }

    /// The interval as one engine batch: profile type [`PROFILE_TYPE`] (value = sample count)
    /// and [`OFF_CPU_PROFILE_TYPE`] (value = blocked nanoseconds), a series per process.
    /// Kernel frames carry a `[kernel.kallsyms]` mapping; user frames not symbolized here keep
    /// mapping + address for the server to symbolize.
    pub fn to_batch(&self) -> Result<SampleBatch> {
        let mut b = SampleBatchBuilder::new();
        for (kind, profiles, period) in [
            (PROFILE_TYPE, &self.processes, self.period_ns),
            (OFF_CPU_PROFILE_TYPE, &self.off_cpu, 1),
        ] {
            if profiles.is_empty() {
                continue;
            }
            let pt = b.profile_type(&kind.parse::<ProfileType>()?);
            for p in profiles {
                let series = b.series(Labels::new(p.labels.iter().cloned())?);
                for (frames, value) in &p.stacks {
                    let locs: Vec<_> = frames.iter().map(|f| location(&mut b, f)).collect();
                    let stack = b.stack(&locs);
                    b.sample(SampleRow {
                        profile_type: pt,
                        series,
                        timestamp_ns: self.timestamp_ns,
                        duration_ns: self.duration_ns,
                        period,
                        stack,
                        value: *value as i64,
                    });
                }
            }
        }
        Ok(b.build()?)
    }
}

fn location(b: &mut SampleBatchBuilder, f: &Frame) -> strata_engine::LocationId {
    let mapping_id = match &f.mapping {
        Some(m) => b.mapping(Mapping {
            build_id: m.build_id.clone(),
            filename: m.filename.clone(),
            memory_start: m.memory_start,
            memory_limit: m.memory_limit,
            file_offset: m.file_offset,
        }),
        None => MappingId::NONE,
    };
    let lines = match &f.function {
        Some(name) => {
            let function_id = b.function(Function {
                name: strata_symbolizer::demangle(name),
                system_name: name.to_string(),
                filename: f.file.as_deref().unwrap_or("").to_owned(),
                start_line: i64::from(f.start_line),
            });
            vec![Line {
                function_id,
                line: i64::from(f.line),
            }]
        }
        None => Vec::new(),
    };
    b.location(Location {
        mapping_id,
        address: f.address,
        lines,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_has_one_series_per_process_and_counts_as_values() {
        let m = Arc::new(FrameMapping {
            filename: "/bin/app".into(),
            build_id: "abcd".into(),
            memory_start: 0x1000,
            memory_limit: 0x2000,
            file_offset: 0,
        });
        let frame = |addr, name: Option<&str>| Frame {
            address: addr,
            kernel: false,
            mapping: Some(m.clone()),
            function: name.map(Arc::from),
            ..Default::default()
        };
        let p = |pid: u32| ProcessProfile {
            pid,
            labels: vec![
                ("pid".into(), pid.to_string()),
                ("comm".into(), "app".into()),
                ("container_id".into(), String::new()),
            ],
            stacks: vec![
                (
                    vec![frame(0x1100, Some("leaf")), frame(0x1200, Some("main"))],
                    3,
                ),
                (vec![frame(0x1300, None)], 2),
            ],
        };
        let profiles = IntervalProfiles {
            timestamp_ns: 1_700_000_000_000_000_000,
            duration_ns: 10_000_000_000,
            period_ns: 52_631_578,
            processes: vec![p(1), p(2)],
            off_cpu: Vec::new(),
        };
        assert_eq!(profiles.total_samples(), 10);
        let batch = profiles.to_batch().unwrap();
        assert_eq!(batch.num_samples(), 4);
        assert_eq!(batch.series().len(), 2);
        assert_eq!(batch.series()[0].get("comm"), Some("app"));
        assert_eq!(batch.series()[0].get("container_id"), None);
        assert_eq!(batch.profile_types()[0].to_string(), PROFILE_TYPE);
        assert_eq!(batch.symbols().mappings.len(), 1);
        assert_eq!(batch.symbols().functions.len(), 2);
        assert_eq!(batch.symbols().stacks.len(), 2);
    }
}
