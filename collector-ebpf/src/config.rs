//! [`SamplerConfig`]: how often to sample, how long an interval is, how samples reach userspace
//! ([`Transport`]), where container runtimes keep the state that names Kubernetes pods.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// How samples get from the BPF program to userspace. Both yield the same profiles.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Transport {
    /// One record per sample through a BPF ring buffer, drained every poll (no wake-ups).
    #[default]
    RingBuffer,
    /// Counted in the kernel per (process, cgroup, comm, user stack, kernel stack) in a hash
    /// map of [`MAP_MAX_ENTRIES`](crate::MAP_MAX_ENTRIES) entries (two, swapped every poll);
    /// every entry is read and deleted each poll. Needs Linux 6.1 or later.
    Map,
}

impl Transport {
    /// Both transports.
    pub const ALL: [Transport; 2] = [Transport::RingBuffer, Transport::Map];

    /// The config-file spelling: `ring_buffer` or `map`.
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::RingBuffer => "ring_buffer",
            Transport::Map => "map",
        }
    }
}

impl std::fmt::Display for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Transport {
    type Err = String;

    /// Parses `ring_buffer` (or `ring-buffer`) and `map`.
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "ring_buffer" | "ring-buffer" => Ok(Transport::RingBuffer),
            "map" => Ok(Transport::Map),
            _ => Err(format!("unknown transport {s:?} (ring_buffer or map)")),
        }
    }
}

/// Off-CPU profiling: the time threads spend blocked (sleep, I/O, locks), with the stacks at
/// which they blocked, as profile type
/// [`OFF_CPU_PROFILE_TYPE`](crate::OFF_CPU_PROFILE_TYPE). Each block is sampled with
/// probability `sample_ratio` and reported when it lasted at least `min_block`; values are
/// the blocked nanoseconds divided by `sample_ratio`, so totals estimate the real blocked time
/// of blocks of at least `min_block`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OffCpuConfig {
    /// Whether to profile off-CPU time (needs Linux 5.18+). Default true.
    pub enabled: bool,
    /// Shorter blocks are not reported. Default 1 ms.
    #[serde(with = "humantime_serde")]
    pub min_block: Duration,
    /// The share of blocks whose stacks are taken, in (0, 1]: bounds the cost on a busy host,
    /// where threads block hundreds of thousands of times a second. Default 0.05.
    pub sample_ratio: f64,
}

impl Default for OffCpuConfig {
    fn default() -> Self {
        OffCpuConfig {
            enabled: true,
            min_block: Duration::from_millis(1),
            sample_ratio: 0.05,
        }
    }
}

impl OffCpuConfig {
    /// Checks the ranges.
    pub fn validate(&self) -> Result<()> {
        if !(self.sample_ratio > 0.0 && self.sample_ratio <= 1.0) {
            return Err(Error::Config {
                field: "off_cpu.sample_ratio",
                reason: format!("{} is outside (0, 1]", self.sample_ratio),
            });
        }
        if self.min_block > Duration::from_secs(60) {
            return Err(Error::Config {
                field: "off_cpu.min_block",
                reason: format!("{:?} is longer than 60s", self.min_block),
            });
        }
        Ok(())
    }
}

/// Configuration of the [`Sampler`](crate::Sampler).
///
/// Defaults: 19 Hz per CPU (a prime, so sampling does not run in lock step with 10 ms timers),
/// one profile per process every 10 s, samples through the ring buffer (the cheaper transport
/// as measured, see `benches/README.md`), drained every 100 ms, container runtime state under
/// `/run` and `/var/lib/docker`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SamplerConfig {
    /// Samples per second per CPU (1..=10_000). Default 19.
    pub frequency_hz: u64,
    /// Length of one profiling interval: one profile per process per interval. Default 10 s.
    #[serde(with = "humantime_serde")]
    pub interval: Duration,
    /// How often samples are read from the kernel (and new processes' maps read). Default
    /// 100 ms.
    #[serde(with = "humantime_serde")]
    pub poll_interval: Duration,
    /// How samples reach userspace: `ring_buffer` (default, the cheaper one as measured in
    /// `benches/README.md`) or `map` (counted in the kernel). With `map`, one poll interval
    /// must not hold more samples per CPU than the map has entries
    /// (`frequency_hz` x `poll_interval` <= 16,384).
    pub transport: Transport,
    /// Symbolize user frames from the ELF symbol tables of readable binaries. Default true.
    pub symbolize_user: bool,
    /// Leave the collector's own process out of the profiles. Default true.
    pub exclude_self: bool,
    /// Walk user stacks with each binary's call frame information (`.eh_frame`,
    /// `.debug_frame`) in the kernel, so code built without frame pointers unwinds; binaries
    /// without it are walked by frame pointers. When false, the kernel's frame-pointer walk
    /// is used for everything. Default true.
    pub unwind_cfi: bool,
    /// BPF map memory reserved for unwind rows (8 bytes per row, shared by build id across
    /// processes): bounds what the tables cost. Files that do not fit are walked by frame
    /// pointers (counted). 64 KiB ..= 2 GiB; default 64 MiB (8 M rows: Debian's libc is 24 k,
    /// python3.11 60 k).
    pub unwind_table_max_bytes: u64,
    /// Processes whose mappings the unwinder holds at once (10 KiB of kernel memory each,
    /// allocated as processes are sampled); beyond it, processes are walked by frame
    /// pointers. 1 ..= 65536; default 4096.
    pub unwind_max_processes: u32,
    /// Off-CPU profiling ([`OffCpuConfig`]): enabled, blocks of 1 ms and more, 5 % of them.
    pub off_cpu: OffCpuConfig,
    /// Where containerd and CRI-O keep their runtime state, read for the `namespace`, `pod`
    /// and `container` labels of Kubernetes containers:
    /// `<run_root>/containerd/io.containerd.runtime.v2.task/k8s.io/<id>/config.json` and
    /// `<run_root>/containers/storage/overlay-containers/<id>/userdata/config.json`. Set it to
    /// the host's `/run` as mounted into the collector's container (e.g. `/host/run`). An
    /// absolute path; default `/run`.
    pub run_root: PathBuf,
    /// Docker's data root, read for the same labels of containers that cri-dockerd created:
    /// `<docker_root>/containers/<id>/config.v2.json`. An absolute path; default
    /// `/var/lib/docker`.
    pub docker_root: PathBuf,
}

impl Default for SamplerConfig {
    fn default() -> Self {
        SamplerConfig {
            frequency_hz: 19,
            interval: Duration::from_secs(10),
            poll_interval: Duration::from_millis(100),
            transport: Transport::default(),
            symbolize_user: true,
            exclude_self: true,
            unwind_cfi: true,
            unwind_table_max_bytes: 64 << 20,
            unwind_max_processes: 4096,
            off_cpu: OffCpuConfig::default(),
            run_root: PathBuf::from("/run"),
            docker_root: PathBuf::from("/var/lib/docker"),
        }
    }
}

impl SamplerConfig {
    /// Checks every field's range.
    pub fn validate(&self) -> Result<()> {
        if !(1..=10_000).contains(&self.frequency_hz) {
            return Err(Error::Config {
                field: "frequency_hz",
                reason: format!("{} is outside 1..=10000", self.frequency_hz),
            });
        }
        if self.interval < Duration::from_millis(100) {
            return Err(Error::Config {
                field: "interval",
                reason: format!("{:?} is shorter than 100ms", self.interval),
            });
        }
        if self.poll_interval.is_zero() || self.poll_interval > self.interval {
            return Err(Error::Config {
                field: "poll_interval",
                reason: format!(
                    "{:?} must be non-zero and at most the interval ({:?})",
                    self.poll_interval, self.interval
                ),
            });
        }
        if !((64 << 10)..=(2 << 30)).contains(&self.unwind_table_max_bytes) {
            return Err(Error::Config {
                field: "unwind_table_max_bytes",
                reason: format!(
                    "{} is outside 65536..=2147483648",
                    self.unwind_table_max_bytes
                ),
            });
        }
        self.off_cpu.validate()?;
        if !(1..=65_536).contains(&self.unwind_max_processes) {
            return Err(Error::Config {
                field: "unwind_max_processes",
                reason: format!("{} is outside 1..=65536", self.unwind_max_processes),
            });
        }
        if self.transport == Transport::Map {
            let per_poll = self.frequency_hz as f64 * self.poll_interval.as_secs_f64();
            if per_poll > f64::from(crate::MAP_MAX_ENTRIES) {
                return Err(Error::Config {
                    field: "poll_interval",
                    reason: format!(
                        "{:?} at {} Hz is {per_poll:.0} samples per CPU per poll, more than the {} entries of the counts map (transport: map)",
                        self.poll_interval,
                        self.frequency_hz,
                        crate::MAP_MAX_ENTRIES
                    ),
                });
            }
        }
        for (field, path) in [
            ("run_root", &self.run_root),
            ("docker_root", &self.docker_root),
        ] {
            if !path.is_absolute() {
                return Err(Error::Config {
                    field,
                    reason: format!("{} is not an absolute path", path.display()),
                });
            }
        }
        Ok(())
    }

    /// The sampling period in nanoseconds (what one sample stands for).
    pub fn period_ns(&self) -> i64 {
        (1_000_000_000 / self.frequency_hz.max(1)) as i64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_documented_values() {
        let c = SamplerConfig::default();
        c.validate().unwrap();
        assert_eq!(c.frequency_hz, 19);
        assert_eq!(c.interval, Duration::from_secs(10));
        assert_eq!(c.period_ns(), 52_631_578);
        assert_eq!(c.run_root, PathBuf::from("/run"));
        assert_eq!(c.docker_root, PathBuf::from("/var/lib/docker"));
        assert_eq!(c.transport, Transport::RingBuffer);
    }

    #[test]
    fn transport_is_spelled_in_snake_case_and_checked_against_the_map_size() {
        let c: SamplerConfig = serde_json::from_str(r#"{"transport": "map"}"#).unwrap();
        assert_eq!(c.transport, Transport::Map);
        c.validate().unwrap();
        let c: SamplerConfig = serde_json::from_str(r#"{"transport": "ring_buffer"}"#).unwrap();
        assert_eq!(c.transport, Transport::RingBuffer);
        let err = serde_json::from_str::<SamplerConfig>(r#"{"transport": "perf"}"#).unwrap_err();
        assert!(err.to_string().contains("unknown variant `perf`"), "{err}");
        for t in Transport::ALL {
            assert_eq!(t.as_str().parse::<Transport>(), Ok(t));
            assert_eq!(serde_json::to_string(&t).unwrap(), format!("\"{t}\""));
        }
        assert_eq!(
            "ring-buffer".parse::<Transport>(),
            Ok(Transport::RingBuffer)
        );
        assert_eq!(
            "ring".parse::<Transport>(),
            Err(r#"unknown transport "ring" (ring_buffer or map)"#.to_owned())
        );
        // 10 kHz for 2 s between polls: 20,000 samples of one CPU may not fit 16,384 entries.
        let bad = SamplerConfig {
            transport: Transport::Map,
            frequency_hz: 10_000,
            interval: Duration::from_secs(10),
            poll_interval: Duration::from_secs(2),
            ..Default::default()
        };
        assert_rejects(&bad, "poll_interval");
        SamplerConfig {
            transport: Transport::RingBuffer,
            ..bad
        }
        .validate()
        .unwrap();
    }

    #[test]
    fn runtime_roots_default_when_absent_and_must_be_absolute() {
        let c: SamplerConfig =
            serde_json::from_str(r#"{"frequency_hz": 99, "run_root": "/host/run"}"#).unwrap();
        assert_eq!(c.run_root, PathBuf::from("/host/run"));
        assert_eq!(c.docker_root, PathBuf::from("/var/lib/docker"));
        c.validate().unwrap();
        let bad = SamplerConfig {
            run_root: PathBuf::from("run"),
            ..Default::default()
        };
        assert_rejects(&bad, "run_root");
        let bad = SamplerConfig {
            docker_root: PathBuf::new(),
            ..Default::default()
        };
        assert_rejects(&bad, "docker_root");
    }

    /// `config` fails validation with an [`Error::Config`] of `field`, named in the message.
    fn assert_rejects(config: &SamplerConfig, field: &str) {
        let err = config.validate().unwrap_err();
        assert!(
            matches!(err, Error::Config { field: f, .. } if f == field),
            "{field}: {err:?}"
        );
        assert!(err.to_string().contains(field), "{field}: {err}");
    }

    #[test]
    fn validate_rejects_out_of_range() {
        let bad = SamplerConfig {
            frequency_hz: 0,
            ..Default::default()
        };
        assert_rejects(&bad, "frequency_hz");
        let bad = SamplerConfig {
            interval: Duration::from_millis(10),
            ..Default::default()
        };
        assert_rejects(&bad, "interval");
        let bad = SamplerConfig {
            poll_interval: Duration::from_secs(60),
            ..Default::default()
        };
        assert_rejects(&bad, "poll_interval");
    }
}
