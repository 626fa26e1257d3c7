//! The series index: label name -> label value -> roaring bitmap of series ordinals.
//!
//! The head keeps one over its series; every block stores one in `index.bin`. Label names,
//! label values and series selection by matchers come from here, never from samples.

use std::collections::BTreeMap;

use roaring::RoaringBitmap;

use crate::matcher::{LabelMatcher, MatchOp};
use crate::model::Labels;

/// Postings of one index.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct SeriesIndex {
    postings: BTreeMap<String, BTreeMap<String, RoaringBitmap>>,
    all: RoaringBitmap,
}

impl SeriesIndex {
    /// Adds series `ord` with `labels`.
    pub fn add(&mut self, ord: u32, labels: &Labels) {
        self.all.insert(ord);
        for l in labels.iter() {
            self.postings
                .entry(l.name.clone())
                .or_default()
                .entry(l.value.clone())
                .or_default()
                .insert(ord);
        }
    }

    /// Series carrying label `name` with any value.
    fn with_name(&self, name: &str) -> RoaringBitmap {
        self.postings
            .get(name)
            .map(|values| values.values().fold(RoaringBitmap::new(), |acc, b| acc | b))
            .unwrap_or_default()
    }

    /// Series whose value of the matcher's label satisfies it (Prometheus semantics: a missing
    /// label has the value "").
    fn select_one(&self, m: &LabelMatcher) -> RoaringBitmap {
        let values = self.postings.get(m.name());
        let mut out = RoaringBitmap::new();
        if m.op() == MatchOp::Equal && !m.value().is_empty() {
            // Fast path: a single posting list.
            return values
                .and_then(|v| v.get(m.value()))
                .cloned()
                .unwrap_or_default();
        }
        if let Some(values) = values {
            for (v, b) in values {
                if m.matches(v) {
                    out |= b;
                }
            }
        }
        if m.matches("") {
            out |= &self.all - self.with_name(m.name());
        }
        out
    }

    /// Series satisfying every matcher.
    pub fn select(&self, matchers: &[LabelMatcher]) -> RoaringBitmap {
        let mut out = self.all.clone();
        // Most selective first: equality matchers.
        let mut ordered: Vec<&LabelMatcher> = matchers.iter().collect();
        ordered.sort_by_key(|m| m.op() != MatchOp::Equal || m.value().is_empty());
        for m in ordered {
            if out.is_empty() {
                break;
            }
            out &= self.select_one(m);
        }
        out
    }

    /// Label names present on any series in `within`, sorted.
    pub fn label_names(&self, within: &RoaringBitmap) -> Vec<String> {
        self.postings
            .iter()
            .filter(|(_, values)| values.values().any(|b| !b.is_disjoint(within)))
            .map(|(n, _)| n.clone())
            .collect()
    }

    /// Values of label `name` on series in `within`, sorted.
    pub fn label_values(&self, name: &str, within: &RoaringBitmap) -> Vec<String> {
        self.postings
            .get(name)
            .map(|values| {
                values
                    .iter()
                    .filter(|(_, b)| !b.is_disjoint(within))
                    .map(|(v, _)| v.clone())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Approximate heap bytes held.
    pub fn heap_bytes(&self) -> usize {
        self.postings
            .iter()
            .map(|(n, vs)| {
                64 + n.len()
                    + vs.iter()
                        .map(|(v, b)| 64 + v.len() + b.serialized_size())
                        .sum::<usize>()
            })
            .sum::<usize>()
            + self.all.serialized_size()
    }

    /// The postings, for serialization.
    pub fn postings(&self) -> &BTreeMap<String, BTreeMap<String, RoaringBitmap>> {
        &self.postings
    }

    /// Rebuilds from serialized postings and the set of all ordinals.
    pub fn from_parts(
        postings: BTreeMap<String, BTreeMap<String, RoaringBitmap>>,
        all: RoaringBitmap,
    ) -> Self {
        SeriesIndex { postings, all }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selects_like_a_label_scan() {
        let series = [
            Labels::new([("job", "api"), ("env", "prod")]).unwrap(),
            Labels::new([("job", "api"), ("env", "dev")]).unwrap(),
            Labels::new([("job", "db")]).unwrap(),
        ];
        let mut idx = SeriesIndex::default();
        for (i, s) in series.iter().enumerate() {
            idx.add(i as u32, s);
        }
        let cases = [
            vec![LabelMatcher::equal("job", "api")],
            vec![LabelMatcher::equal("env", "")],
            vec![LabelMatcher::new("env", MatchOp::NotEqual, "prod").unwrap()],
            vec![LabelMatcher::new("env", MatchOp::Regex, "p.*|").unwrap()],
            vec![
                LabelMatcher::new("job", MatchOp::NotRegex, "a.*").unwrap(),
                LabelMatcher::equal("env", ""),
            ],
        ];
        for ms in cases {
            let expected: Vec<u32> = series
                .iter()
                .enumerate()
                .filter(|(_, s)| ms.iter().all(|m| m.matches_labels(s)))
                .map(|(i, _)| i as u32)
                .collect();
            assert_eq!(
                idx.select(&ms).iter().collect::<Vec<_>>(),
                expected,
                "{ms:?}"
            );
        }
        let prod = idx.select(&[LabelMatcher::equal("env", "prod")]);
        assert_eq!(idx.label_names(&prod), vec!["env", "job"]);
        assert_eq!(idx.label_values("job", &idx.select(&[])), vec!["api", "db"]);
    }
}
