//! [`SamplerConfig`]: how often to sample, how long an interval is, where container runtimes
//! keep the state that names Kubernetes pods.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Configuration of the [`Sampler`](crate::Sampler).
///
/// Defaults: 19 Hz per CPU (a prime, so sampling does not run in lock step with 10 ms timers),
/// one profile per process every 10 s, the ring buffer drained every 100 ms, container runtime
/// state under `/run` and `/var/lib/docker`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SamplerConfig {
    /// Samples per second per CPU (1..=10_000). Default 19.
    pub frequency_hz: u64,
    /// Length of one profiling interval: one profile per process per interval. Default 10 s.
    #[serde(with = "humantime_serde")]
    pub interval: Duration,
    /// How often the ring buffer is drained (and new processes' maps read). Default 100 ms.
    #[serde(with = "humantime_serde")]
    pub poll_interval: Duration,
    /// Symbolize user frames from the ELF symbol tables of readable binaries. Default true.
    pub symbolize_user: bool,
    /// Leave the collector's own process out of the profiles. Default true.
    pub exclude_self: bool,
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
            symbolize_user: true,
            exclude_self: true,
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
        assert!(bad.validate().unwrap_err().to_string().contains("run_root"));
        let bad = SamplerConfig {
            docker_root: PathBuf::new(),
            ..Default::default()
        };
        assert!(
            bad.validate()
                .unwrap_err()
                .to_string()
                .contains("docker_root")
        );
    }

    #[test]
    fn validate_rejects_out_of_range() {
        let bad = SamplerConfig {
            frequency_hz: 0,
            ..Default::default()
        };
        assert!(
            bad.validate()
                .unwrap_err()
                .to_string()
                .contains("frequency_hz")
        );
        let bad = SamplerConfig {
            interval: Duration::from_millis(10),
            ..Default::default()
        };
        assert!(bad.validate().unwrap_err().to_string().contains("interval"));
        let bad = SamplerConfig {
            poll_interval: Duration::from_secs(60),
            ..Default::default()
        };
        assert!(
            bad.validate()
                .unwrap_err()
                .to_string()
                .contains("poll_interval")
        );
    }
}
