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
    /// Builds a label set from pairs in any order; fails on an empty or duplicated name or a
    /// name that is not `[a-zA-Z_][a-zA-Z0-9_]*`.
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
                    reason: format!("label name {:?} is not [a-zA-Z_][a-zA-Z0-9_]*", l.name),
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

/// Whether `name` is a valid label name (Prometheus' rule).
pub fn is_valid_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
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
            write!(f, "{}={:?}", l.name, l.value)?;
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
        for bad in ["1a", "a-b", ""] {
            assert!(
                reason(&[(bad, "1")]).contains("is not [a-zA-Z_]"),
                "{bad:?}"
            );
        }
    }
}
