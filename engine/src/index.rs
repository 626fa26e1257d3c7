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
    /// Adds series `ord`; returns about how many heap bytes that added (the same measure as
    /// [`heap_bytes`](Self::heap_bytes), counted on the bitmaps it touched only, so adding
    /// costs the same however many series there are).
    pub fn add(&mut self, ord: u32, labels: &Labels) -> usize {
        let mut grown = 0usize;
        let all_before = self.all.serialized_size();
        self.all.insert(ord);
        grown += self.all.serialized_size().saturating_sub(all_before);
        for l in labels.iter() {
            let values = match self.postings.get_mut(&l.name) {
                Some(v) => v,
                None => {
                    grown += 64 + l.name.len();
                    self.postings.entry(l.name.clone()).or_default()
                }
            };
            match values.get_mut(&l.value) {
                Some(b) => {
                    let before = b.serialized_size();
                    b.insert(ord);
                    grown += b.serialized_size().saturating_sub(before);
                }
                None => {
                    let b: RoaringBitmap = [ord].into_iter().collect();
                    grown += 64 + l.value.len() + b.serialized_size();
                    values.insert(l.value.clone(), b);
                }
            }
        }
        grown
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

    /// Approximate heap bytes held, recounted over every posting (what the growth reported
    /// by [`add`](Self::add) adds up to).
    #[cfg(test)]
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
    fn growth_reported_by_add_sums_to_the_recount() {
        let mut index = SeriesIndex::default();
        // An empty index still holds an empty `all` bitmap.
        let mut grown = SeriesIndex::default().heap_bytes();
        for i in 0..5_000u32 {
            let labels = Labels::new([
                ("node", format!("n{}", i % 97)),
                ("pod", format!("p{i}")),
                ("ns", format!("ns{}", i % 3)),
            ])
            .unwrap();
            grown += index.add(i, &labels);
            if i % 997 == 0 {
                assert_eq!(grown, index.heap_bytes(), "after series {i}");
            }
        }
        assert_eq!(grown, index.heap_bytes());
    }

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
