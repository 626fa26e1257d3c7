//! [`SamplerConfig`]: how often to sample, how long an interval is.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Configuration of the [`Sampler`](crate::Sampler).
///
/// Defaults: 19 Hz per CPU (a prime, so sampling does not run in lock step with 10 ms timers),
/// one profile per process every 10 s, the ring buffer drained every 100 ms.
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
}

impl Default for SamplerConfig {
    fn default() -> Self {
        SamplerConfig {
            frequency_hz: 19,
            interval: Duration::from_secs(10),
            poll_interval: Duration::from_millis(100),
            symbolize_user: true,
            exclude_self: true,
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
