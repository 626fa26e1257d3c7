//! Profile types: `name:sample_type:sample_unit:period_type:period_unit[:delta]`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// What a sample's value measures, named as Parca names it, e.g.
/// `process_cpu:cpu:nanoseconds:cpu:nanoseconds:delta` or `memory:inuse_space:bytes:space:bytes`.
///
/// `delta` types hold per-interval values that are summed over time; the others are gauges or
/// cumulative counters read at a point in time.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ProfileType {
    /// The profile's name, e.g. `process_cpu` or `memory`.
    pub name: String,
    /// The sample type, e.g. `cpu` or `alloc_space`.
    pub sample_type: String,
    /// The sample unit, e.g. `nanoseconds` or `bytes`.
    pub sample_unit: String,
    /// The period type, e.g. `cpu` or `space`.
    pub period_type: String,
    /// The period unit, e.g. `nanoseconds` or `bytes`.
    pub period_unit: String,
    /// Whether values are per-interval deltas.
    pub delta: bool,
}

impl ProfileType {
    /// Builds a profile type from its five parts, checking that none is empty or holds `:`.
    pub fn new(
        name: &str,
        sample_type: &str,
        sample_unit: &str,
        period_type: &str,
        period_unit: &str,
        delta: bool,
    ) -> Result<Self> {
        let pt = ProfileType {
            name: name.to_owned(),
            sample_type: sample_type.to_owned(),
            sample_unit: sample_unit.to_owned(),
            period_type: period_type.to_owned(),
            period_unit: period_unit.to_owned(),
            delta,
        };
        pt.validate()?;
        Ok(pt)
    }

    fn validate(&self) -> Result<()> {
        for part in [
            &self.name,
            &self.sample_type,
            &self.sample_unit,
            &self.period_type,
            &self.period_unit,
        ] {
            if part.is_empty() || part.contains(':') || part.contains(char::is_whitespace) {
                return Err(Error::InvalidProfileType {
                    input: self.to_string(),
                    reason:
                        "each of the five parts must be non-empty and hold no ':' or whitespace"
                            .into(),
                });
            }
        }
        Ok(())
    }
}

impl fmt::Display for ProfileType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}:{}:{}",
            self.name, self.sample_type, self.sample_unit, self.period_type, self.period_unit
        )?;
        if self.delta {
            f.write_str(":delta")?;
        }
        Ok(())
    }
}

impl FromStr for ProfileType {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let parts: Vec<&str> = s.split(':').collect();
        let delta = match parts.len() {
            5 => false,
            6 if parts[5] == "delta" => true,
            _ => {
                return Err(Error::InvalidProfileType {
                    input: s.to_owned(),
                    reason: "expected name:sample_type:sample_unit:period_type:period_unit[:delta]"
                        .into(),
                });
            }
        };
        let pt = ProfileType::new(parts[0], parts[1], parts[2], parts[3], parts[4], delta)
            .map_err(|_| Error::InvalidProfileType {
                input: s.to_owned(),
                reason: "each of the five parts must be non-empty and hold no whitespace".into(),
            })?;
        Ok(pt)
    }
}

impl TryFrom<String> for ProfileType {
    type Error = Error;
    fn try_from(s: String) -> Result<Self> {
        s.parse()
    }
}

impl From<ProfileType> for String {
    fn from(pt: ProfileType) -> String {
        pt.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_parca_names() {
        for s in [
            "process_cpu:cpu:nanoseconds:cpu:nanoseconds:delta",
            "memory:inuse_space:bytes:space:bytes",
        ] {
            let pt: ProfileType = s.parse().unwrap();
            assert_eq!(pt.to_string(), s);
        }
        let pt: ProfileType = "memory:alloc_space:bytes:space:bytes:delta"
            .parse()
            .unwrap();
        assert!(pt.delta);
        assert_eq!(pt.sample_type, "alloc_space");
    }

    #[test]
    fn rejects_malformed_names() {
        for s in [
            "",
            "a:b:c:d",
            "a:b:c:d:e:f",
            "a::c:d:e",
            "a:b:c:d:e:delta:x",
            "a b:b:c:d:e",
        ] {
            let err = s.parse::<ProfileType>().unwrap_err();
            assert!(err.to_string().contains("profile type"), "{s}: {err}");
        }
    }
}
