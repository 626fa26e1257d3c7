//! Series: sorted label sets.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::id::{IdHasher, SeriesId, tag};
use crate::error::{Error, Result};

/// One `name="value"` pair of a series.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Label {
    /// The label name, e.g. `job`.
    pub name: String,
    /// The label value, e.g. `api`.
    pub value: String,
}

/// A series: a label set sorted by name with unique names and no empty values.
///
/// As in Prometheus, a label with an empty value is the same as no label, so such pairs are
/// dropped on construction.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "Vec<Label>", into = "Vec<Label>")]
pub struct Labels(Vec<Label>);

impl Labels {
    /// Builds a label set from pairs in any order; fails on an empty or duplicated name.
    ///
    /// A name is any non-empty UTF-8 string, as in Prometheus 3: OpenTelemetry's dotted names
    /// (`otel.scope.name`, `service.name`) are stored as they are. Names outside the classic
    /// `[a-zA-Z_][a-zA-Z0-9_]*` ([`is_legacy_label_name`]) are written quoted in selectors
    /// and in this type's `Display` (`{"otel.scope.name"="x"}`).
    pub fn new<I, N, V>(pairs: I) -> Result<Self>
    where
        I: IntoIterator<Item = (N, V)>,
        N: Into<String>,
        V: Into<String>,
    {
        let mut labels: Vec<Label> = pairs
            .into_iter()
            .map(|(n, v)| Label {
                name: n.into(),
                value: v.into(),
            })
            .filter(|l| !l.value.is_empty())
            .collect();
        labels.sort();
        for l in &labels {
            if !is_valid_label_name(&l.name) {
                return Err(Error::InvalidLabels {
                    labels: render(&labels),
                    reason: "a label name must not be empty".to_owned(),
                });
            }
        }
        if let Some(w) = labels.windows(2).find(|w| w[0].name == w[1].name) {
            return Err(Error::InvalidLabels {
                labels: render(&labels),
                reason: format!("label name {:?} appears more than once", w[0].name),
            });
        }
        Ok(Labels(labels))
    }

    /// The pairs, sorted by name.
    pub fn iter(&self) -> impl Iterator<Item = &Label> {
        self.0.iter()
    }

    /// Number of labels.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are no labels.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The value of label `name`, if present.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .binary_search_by(|l| l.name.as_str().cmp(name))
            .ok()
            .map(|i| self.0[i].value.as_str())
    }

    /// The content-addressed series ID.
    pub fn id(&self) -> SeriesId {
        let mut h = IdHasher::new(tag::SERIES);
        h.u64(self.0.len() as u64);
        for l in &self.0 {
            h.str(&l.name).str(&l.value);
        }
        SeriesId(h.finish())
    }

    /// Approximate heap bytes held.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.0.capacity() * std::mem::size_of::<Label>()
            + self
                .0
                .iter()
                .map(|l| l.name.capacity() + l.value.capacity())
                .sum::<usize>()
    }
}

/// Whether `name` is a valid label name: any non-empty UTF-8 string (Prometheus 3's rule).
pub fn is_valid_label_name(name: &str) -> bool {
    !name.is_empty()
}

/// Whether `name` is a classic Prometheus label name, `[a-zA-Z_][a-zA-Z0-9_]*`, which
/// selectors may write unquoted.
pub fn is_legacy_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Writes a label name as a selector reads it: as is when it is a legacy name, else quoted
/// (`"otel.scope.name"`, with `\\`, `\"`, `\n` and `\t` escaped).
pub fn write_label_name(f: &mut impl fmt::Write, name: &str) -> fmt::Result {
    if is_legacy_label_name(name) {
        return f.write_str(name);
    }
    f.write_char('"')?;
    write_escaped(f, name)?;
    f.write_char('"')
}

/// Writes `s` with the escapes a selector's string knows (`\\`, `\"`, `\n`, `\t`).
pub fn write_escaped(f: &mut impl fmt::Write, s: &str) -> fmt::Result {
    for c in s.chars() {
        match c {
            '\\' => f.write_str("\\\\")?,
            '"' => f.write_str("\\\"")?,
            '\n' => f.write_str("\\n")?,
            '\t' => f.write_str("\\t")?,
            c => f.write_char(c)?,
        }
    }
    Ok(())
}

fn render(labels: &[Label]) -> String {
    Labels(labels.to_vec()).to_string()
}

impl fmt::Display for Labels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("{")?;
        for (i, l) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write_label_name(f, &l.name)?;
            write!(f, "={:?}", l.value)?;
        }
        f.write_str("}")
    }
}

impl TryFrom<Vec<Label>> for Labels {
    type Error = Error;
    fn try_from(v: Vec<Label>) -> Result<Self> {
        Labels::new(v.into_iter().map(|l| (l.name, l.value)))
    }
}

impl From<Labels> for Vec<Label> {
    fn from(l: Labels) -> Self {
        l.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorted_and_content_addressed() {
        let a = Labels::new([("job", "api"), ("instance", "h:1")]).unwrap();
        let b = Labels::new([("instance", "h:1"), ("job", "api"), ("empty", "")]).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.id(), b.id());
        assert_eq!(a.get("job"), Some("api"));
        assert_eq!(a.get("empty"), None);
        assert_eq!(a.to_string(), r#"{instance="h:1", job="api"}"#);
        assert_ne!(a.id(), Labels::new([("job", "api")]).unwrap().id());
    }

    #[test]
    fn rejects_duplicates_and_bad_names() {
        let reason = |pairs: &[(&str, &str)]| match Labels::new(pairs.iter().copied()) {
            Err(Error::InvalidLabels { reason, .. }) => reason,
            other => panic!("expected InvalidLabels for {pairs:?}, got {other:?}"),
        };
        assert!(reason(&[("a", "1"), ("a", "2")]).contains("more than once"));
        assert!(reason(&[("", "1")]).contains("must not be empty"));
        // UTF-8 names, as Prometheus 3 and OpenTelemetry have them; quoted when displayed.
        let otel = Labels::new([("otel.scope.name", "x"), ("job", "a"), ("1a", "b")]).unwrap();
        assert_eq!(otel.get("otel.scope.name"), Some("x"));
        assert_eq!(
            otel.to_string(),
            r#"{"1a"="b", job="a", "otel.scope.name"="x"}"#
        );
        assert!(is_legacy_label_name("job_1") && !is_legacy_label_name("a-b"));
    }
}
