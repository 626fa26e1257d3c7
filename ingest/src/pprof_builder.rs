//! [`PprofBuilder`]: builds pprof profiles from function-name stacks, interning strings,
//! functions and locations — for tests, fixtures and exporters.

use std::collections::HashMap;

use prost::Message;
use strata_proto::pprof::{Function, Label, Line, Location, Profile, Sample, ValueType};

/// Builds a pprof [`Profile`].
///
/// ```
/// use strata_ingest::PprofBuilder;
/// let mut b = PprofBuilder::new(&[("samples", "count"), ("cpu", "nanoseconds")], ("cpu", "nanoseconds"), 10_000_000);
/// b.sample(&["work", "main"], &[3, 30_000_000], &[("span", "checkout")]);
/// let profile = b.build();
/// assert_eq!(profile.sample.len(), 1);
/// assert_eq!(profile.location.len(), 2);
/// ```
#[derive(Debug, Default)]
pub struct PprofBuilder {
    profile: Profile,
    strings: HashMap<String, i64>,
    functions: HashMap<String, u64>,
}

impl PprofBuilder {
    /// A profile with these sample types, period type and period.
    pub fn new(sample_types: &[(&str, &str)], period_type: (&str, &str), period: i64) -> Self {
        let mut b = PprofBuilder::default();
        b.string("");
        b.profile.sample_type = sample_types
            .iter()
            .map(|(t, u)| ValueType {
                r#type: b.string(t),
                unit: b.string(u),
            })
            .collect();
        b.profile.period_type = Some(ValueType {
            r#type: b.string(period_type.0),
            unit: b.string(period_type.1),
        });
        b.profile.period = period;
        b
    }

    /// Sets when the profile was taken (ns since the epoch) and how long it covers.
    pub fn time(&mut self, time_nanos: i64, duration_nanos: i64) -> &mut Self {
        self.profile.time_nanos = time_nanos;
        self.profile.duration_nanos = duration_nanos;
        self
    }

    fn string(&mut self, s: &str) -> i64 {
        if let Some(&i) = self.strings.get(s) {
            return i;
        }
        let i = self.profile.string_table.len() as i64;
        self.profile.string_table.push(s.to_owned());
        self.strings.insert(s.to_owned(), i);
        i
    }

    /// The location of function `name` (one location per function, no address).
    fn location(&mut self, name: &str) -> u64 {
        if let Some(&id) = self.functions.get(name) {
            return id;
        }
        let id = self.profile.function.len() as u64 + 1;
        let name_index = self.string(name);
        self.profile.function.push(Function {
            id,
            name: name_index,
            system_name: name_index,
            ..Default::default()
        });
        self.profile.location.push(Location {
            id,
            line: vec![Line {
                function_id: id,
                line: 0,
                column: 0,
            }],
            ..Default::default()
        });
        self.functions.insert(name.to_owned(), id);
        id
    }

    /// Adds a sample: a stack of function names (leaf first), one value per sample type, and
    /// string labels.
    pub fn sample(&mut self, stack: &[&str], values: &[i64], labels: &[(&str, &str)]) -> &mut Self {
        let location_id = stack.iter().map(|f| self.location(f)).collect();
        let label = labels
            .iter()
            .map(|(k, v)| Label {
                key: self.string(k),
                str: self.string(v),
                ..Default::default()
            })
            .collect();
        self.profile.sample.push(Sample {
            location_id,
            value: values.to_vec(),
            label,
        });
        self
    }

    /// The profile.
    pub fn build(&self) -> Profile {
        self.profile.clone()
    }

    /// The profile, encoded (not gzipped).
    pub fn encode(&self) -> Vec<u8> {
        self.profile.encode_to_vec()
    }
}
