//! Filters DataFusion hands a table, turned into what the engine's scan takes.
//!
//! Pushed down exactly: `profile_type = '<type>'` and comparisons of `time` with a timestamp
//! literal (the engine filters rows by both). Pushed down inexactly (DataFusion re-checks):
//! `label = 'v'`, `label != 'v'`, `label ~ 're'`, `label !~ 're'` on label columns, since SQL's
//! NULL for a missing label and an unanchored `~` differ from selector semantics.
//!
//! The tables that read samples ([`SamplesTable`](super::SamplesTable) and, through the
//! [`StackSumsRule`](super::StackSumsRule), [`StackSumsTable`](super::StackSumsTable)) share
//! one path from filters to engine requests: [`narrow`] then [`Pushdown::requests`].

use datafusion::common::ScalarValue;
use datafusion::logical_expr::{BinaryExpr, Expr, Operator, TableProviderFilterPushDown};
use strata_engine::{Engine, LabelMatcher, MatchOp, ProfileType, ScanRequest, TimeRange};

/// A label column of a table: its column name and the label it shows.
#[derive(Clone, Debug)]
pub(crate) struct LabelColumn {
    pub column: String,
    pub label: String,
}

/// The part of a scan the engine can do.
#[derive(Clone, Debug)]
pub(crate) struct Pushdown {
    pub profile_type: Option<ProfileType>,
    pub range: TimeRange,
    pub matchers: Vec<LabelMatcher>,
}

impl Pushdown {
    /// The engine scan requests that read exactly the selected samples: one per profile type,
    /// every stored type (over the range) when the pushdown names none.
    pub async fn requests(&self, engine: &Engine) -> strata_engine::Result<Vec<ScanRequest>> {
        let types = match &self.profile_type {
            Some(pt) => vec![pt.clone()],
            None => engine.profile_types(self.range).await?,
        };
        Ok(types
            .into_iter()
            .map(|profile_type| ScanRequest {
                profile_type,
                matchers: self.matchers.clone(),
                range: self.range,
            })
            .collect())
    }
}

/// One recognised filter.
enum Pushed {
    ProfileType(ProfileType),
    /// `[start, end)` to intersect with.
    Time(TimeRange),
    Matcher(LabelMatcher),
}

/// `column <op> literal` (or the mirror), with the operator as seen from the column.
fn column_op_literal(expr: &Expr) -> Option<(&str, Operator, &ScalarValue)> {
    let Expr::BinaryExpr(BinaryExpr { left, op, right }) = expr else {
        return None;
    };
    match (left.as_ref(), right.as_ref()) {
        (Expr::Column(c), Expr::Literal(v, _)) => Some((c.name.as_str(), *op, v)),
        (Expr::Literal(v, _), Expr::Column(c)) => Some((c.name.as_str(), op.swap()?, v)),
        _ => None,
    }
}

fn time_literal(v: &ScalarValue) -> Option<i64> {
    match v {
        ScalarValue::TimestampNanosecond(Some(t), _) => Some(*t),
        ScalarValue::TimestampMicrosecond(Some(t), _) => t.checked_mul(1_000),
        ScalarValue::TimestampMillisecond(Some(t), _) => t.checked_mul(1_000_000),
        ScalarValue::TimestampSecond(Some(t), _) => t.checked_mul(1_000_000_000),
        _ => None,
    }
}

fn recognise(
    expr: &Expr,
    label_columns: &[LabelColumn],
) -> Option<(Pushed, TableProviderFilterPushDown)> {
    let (column, op, value) = column_op_literal(expr)?;
    use TableProviderFilterPushDown::{Exact, Inexact};
    if column == "profile_type" {
        let (ScalarValue::Utf8(Some(s)) | ScalarValue::Utf8View(Some(s))) = value else {
            return None;
        };
        return match op {
            Operator::Eq => Some((Pushed::ProfileType(s.parse().ok()?), Exact)),
            _ => None,
        };
    }
    if column == "time" {
        let t = time_literal(value)?;
        let range = match op {
            Operator::Eq => TimeRange::new(t, t.checked_add(1)?),
            Operator::Gt => TimeRange::new(t.checked_add(1)?, i64::MAX),
            Operator::GtEq => TimeRange::new(t, i64::MAX),
            Operator::Lt => TimeRange::new(i64::MIN, t),
            Operator::LtEq => TimeRange::new(i64::MIN, t.checked_add(1)?),
            _ => return None,
        };
        return Some((Pushed::Time(range), Exact));
    }
    let column = label_columns
        .iter()
        .find(|l| l.column == column)?
        .label
        .as_str();
    let (ScalarValue::Utf8(Some(s)) | ScalarValue::Utf8View(Some(s))) = value else {
        return None;
    };
    let matcher = match op {
        Operator::Eq if !s.is_empty() => LabelMatcher::equal(column, s.as_str()),
        Operator::NotEq => LabelMatcher::new(column, MatchOp::NotEqual, s.as_str()).ok()?,
        // SQL's `~` is unanchored; selector regexes are anchored.
        Operator::RegexMatch => {
            LabelMatcher::new(column, MatchOp::Regex, format!(".*(?:{s}).*")).ok()?
        }
        Operator::RegexNotMatch => {
            LabelMatcher::new(column, MatchOp::NotRegex, format!(".*(?:{s}).*")).ok()?
        }
        _ => return None,
    };
    Some((Pushed::Matcher(matcher), Inexact))
}

/// How each filter is pushed down.
pub(crate) fn support(
    filters: &[&Expr],
    label_columns: &[LabelColumn],
) -> Vec<TableProviderFilterPushDown> {
    filters
        .iter()
        .map(|f| {
            recognise(f, label_columns)
                .map(|(_, how)| how)
                .unwrap_or(TableProviderFilterPushDown::Unsupported)
        })
        .collect()
}

/// Narrows `base` by the recognised filters. `None` when they cannot all hold (two different
/// profile types, an empty range).
pub(crate) fn narrow(
    base: &Pushdown,
    filters: &[Expr],
    label_columns: &[LabelColumn],
) -> Option<Pushdown> {
    let mut out = base.clone();
    for f in filters {
        match recognise(f, label_columns) {
            Some((Pushed::ProfileType(pt), _)) => match &out.profile_type {
                Some(have) if *have != pt => return None,
                _ => out.profile_type = Some(pt),
            },
            Some((Pushed::Time(r), _)) => {
                out.range = TimeRange::new(out.range.start.max(r.start), out.range.end.min(r.end));
            }
            Some((Pushed::Matcher(m), _)) => out.matchers.push(m),
            None => {}
        }
    }
    (out.range.start < out.range.end).then_some(out)
}
