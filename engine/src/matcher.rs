//! Label matchers: `=`, `!=`, `=~`, `!~` with Prometheus semantics.

use std::fmt;

use regex::Regex;

use crate::error::{Error, Result};
use crate::model::Labels;

/// How a matcher compares a label's value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MatchOp {
    /// `=`: equal.
    Equal,
    /// `!=`: not equal.
    NotEqual,
    /// `=~`: the whole value matches the regular expression.
    Regex,
    /// `!~`: the whole value does not match the regular expression.
    NotRegex,
}

impl MatchOp {
    /// The operator as written in a selector.
    pub fn as_str(self) -> &'static str {
        match self {
            MatchOp::Equal => "=",
            MatchOp::NotEqual => "!=",
            MatchOp::Regex => "=~",
            MatchOp::NotRegex => "!~",
        }
    }
}

/// One label matcher. A missing label has the value `""`, so `job=""` selects series without
/// `job`, and `job!=""` series with it. Regular expressions are anchored at both ends.
#[derive(Clone, Debug)]
pub struct LabelMatcher {
    name: String,
    op: MatchOp,
    value: String,
    regex: Option<Regex>,
}

impl LabelMatcher {
    /// Builds a matcher; fails on an invalid regular expression.
    pub fn new(name: impl Into<String>, op: MatchOp, value: impl Into<String>) -> Result<Self> {
        let name = name.into();
        let value = value.into();
        let regex = match op {
            MatchOp::Regex | MatchOp::NotRegex => Some(
                Regex::new(&format!("^(?:{value})$")).map_err(|e| Error::InvalidMatcher {
                    matcher: format!("{name}{}{value:?}", op.as_str()),
                    reason: e.to_string(),
                })?,
            ),
            _ => None,
        };
        Ok(LabelMatcher {
            name,
            op,
            value,
            regex,
        })
    }

    /// `name = value`.
    pub fn equal(name: impl Into<String>, value: impl Into<String>) -> Self {
        LabelMatcher {
            name: name.into(),
            op: MatchOp::Equal,
            value: value.into(),
            regex: None,
        }
    }

    /// The label name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The operator.
    pub fn op(&self) -> MatchOp {
        self.op
    }

    /// The value or pattern.
    pub fn value(&self) -> &str {
        &self.value
    }

    /// Whether a label value (`""` when absent) satisfies the matcher.
    pub fn matches(&self, value: &str) -> bool {
        match self.op {
            MatchOp::Equal => value == self.value,
            MatchOp::NotEqual => value != self.value,
            MatchOp::Regex => self.regex.as_ref().is_some_and(|r| r.is_match(value)),
            MatchOp::NotRegex => !self.regex.as_ref().is_some_and(|r| r.is_match(value)),
        }
    }

    /// Whether a series satisfies the matcher.
    pub fn matches_labels(&self, labels: &Labels) -> bool {
        self.matches(labels.get(&self.name).unwrap_or(""))
    }
}

impl fmt::Display for LabelMatcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        crate::model::write_label_name(f, &self.name)?;
        write!(f, "{}{:?}", self.op.as_str(), self.value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prometheus_semantics() {
        let l = Labels::new([("job", "api"), ("env", "prod")]).unwrap();
        assert!(LabelMatcher::equal("job", "api").matches_labels(&l));
        assert!(LabelMatcher::equal("missing", "").matches_labels(&l));
        assert!(
            !LabelMatcher::new("job", MatchOp::NotEqual, "api")
                .unwrap()
                .matches_labels(&l)
        );
        assert!(
            LabelMatcher::new("job", MatchOp::Regex, "a.i")
                .unwrap()
                .matches_labels(&l)
        );
        assert!(
            !LabelMatcher::new("job", MatchOp::Regex, "a")
                .unwrap()
                .matches_labels(&l)
        );
        assert!(
            LabelMatcher::new("job", MatchOp::NotRegex, "x|y")
                .unwrap()
                .matches_labels(&l)
        );
        assert!(
            LabelMatcher::new("missing", MatchOp::Regex, ".*")
                .unwrap()
                .matches_labels(&l)
        );
        let err = LabelMatcher::new("job", MatchOp::Regex, "(").unwrap_err();
        assert!(
            err.to_string().contains("invalid matcher job=~\"(\""),
            "{err}"
        );
    }
}
