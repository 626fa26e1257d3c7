//! [`QueryEngine`]: the profile operators (merge, single, diff, range) and SQL, as DataFusion
//! plans over the engine's tables.

use std::sync::Arc;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{Int64Type, UInt64Type};
use datafusion::common::Column;
use datafusion::datasource::TableProvider;
use datafusion::functions_aggregate::expr_fn::{max, sum};
use datafusion::logical_expr::Expr;
use datafusion::prelude::SessionContext;
use rustc_hash::FxHashMap;
use strata_engine::{Engine, LabelMatcher, ProfileType, ScanRequest, StackId, TimeRange};

use crate::distributed::Distribution;
use crate::error::{Error, Result};
use crate::language::Selector;
use crate::profile::{MergedProfile, StackValue};
use crate::table::{SamplesTable, Selection, StackSumsTable};

/// A selection of samples: a selector over a time range, optionally grouped by labels.
#[derive(Clone, Debug)]
pub struct ProfileQuery {
    /// Profile type and label matchers.
    pub selector: Selector,
    /// Time range.
    pub range: TimeRange,
    /// Label names to keep apart (each distinct value set becomes a root node).
    pub group_by: Vec<String>,
}

impl ProfileQuery {
    /// `selector` over `range`, not grouped.
    pub fn new(selector: Selector, range: TimeRange) -> Self {
        ProfileQuery {
            selector,
            range,
            group_by: Vec::new(),
        }
    }
}

/// Answers profile queries over an [`Engine`].
#[derive(Clone)]
pub struct QueryEngine {
    engine: Engine,
    /// Set: queries are split across the queriers ([`crate::distributed`]).
    distribution: Option<Arc<Distribution>>,
    /// The tenant header and id the tasks of distributed queries carry.
    tenant: Option<(String, String)>,
}

/// Column holding a label in a table built with [`SamplesTable::with_label_names`].
fn label_column(table: &SamplesTable, label: &str) -> Expr {
    let column = table
        .label_columns()
        .find(|(_, l)| *l == label)
        .map_or(label, |(c, _)| c);
    Expr::Column(Column::new_unqualified(column))
}

pub(crate) fn column(name: &str) -> Expr {
    Expr::Column(Column::new_unqualified(name))
}

impl QueryEngine {
    /// Queries over `engine`.
    pub fn new(engine: Engine) -> Self {
        QueryEngine {
            engine,
            distribution: None,
            tenant: None,
        }
    }

    /// Queries over `engine`, split across the queriers of `distribution`; their tasks carry
    /// `tenant` (header name, id) so each querier reads the same tenant's store.
    pub fn distributed(
        engine: Engine,
        distribution: Arc<Distribution>,
        tenant: Option<(String, String)>,
    ) -> Self {
        QueryEngine {
            engine,
            distribution: Some(distribution),
            tenant,
        }
    }

    /// A session for one query (distributed when this engine is).
    pub(crate) fn session(&self) -> Result<SessionContext> {
        Ok(crate::distributed::session(
            &self.engine,
            self.distribution.as_deref(),
            self.tenant.as_ref(),
        )?)
    }

    /// The engine queried.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// A samples table over one selector and range, with the given label columns.
    pub(crate) fn selection_table(
        &self,
        profile_type: &ProfileType,
        matchers: &[LabelMatcher],
        range: TimeRange,
        labels: Vec<String>,
    ) -> SamplesTable {
        SamplesTable::with_label_names(
            self.engine.clone(),
            Selection {
                profile_type: Some(profile_type.clone()),
                matchers: matchers.to_vec(),
                range,
            },
            labels,
        )
    }

    /// Everything `q` selects, summed per stack (and per `group_by` label values): a
    /// DataFusion aggregation `SUM(value) GROUP BY [labels,] stack_id` over the samples table,
    /// with the selector and range pushed into the engine's scan. Without `group_by` the
    /// aggregation runs over [`StackSumsTable`] instead: each engine scan part arrives already
    /// summed per stack (on the blocks' dictionary encoding), so DataFusion only combines parts.
    pub async fn merge(&self, q: &ProfileQuery) -> Result<MergedProfile> {
        if q.range.start >= q.range.end {
            return Err(Error::InvalidQuery(format!(
                "empty time range: start {} is not before end {}",
                q.range.start, q.range.end
            )));
        }
        let pt = &q.selector.profile_type;
        let (table, mut keys): (Arc<dyn TableProvider>, Vec<Expr>) = if q.group_by.is_empty() {
            // Summed per stack inside each scan part first, on the blocks' encoding.
            let request = ScanRequest {
                profile_type: pt.clone(),
                matchers: q.selector.matchers.clone(),
                range: q.range,
            };
            (
                Arc::new(StackSumsTable::new(self.engine.clone(), request)),
                Vec::new(),
            )
        } else {
            let table = self.selection_table(pt, &q.selector.matchers, q.range, q.group_by.clone());
            let keys = q.group_by.iter().map(|l| label_column(&table, l)).collect();
            (Arc::new(table), keys)
        };
        keys.push(column("stack_id"));
        let df = self.session()?.read_table(table)?.aggregate(
            keys,
            vec![
                sum(column("value")).alias("value"),
                max(column("period")).alias("period"),
            ],
        )?;
        let batches = df.collect().await?;
        self.collect_merged(pt.clone(), q.range, &q.group_by, &batches)
            .await
    }

    /// Turns aggregation output (`[labels…,] stack_id, value, period`) into a profile with
    /// resolved symbols.
    async fn collect_merged(
        &self,
        profile_type: ProfileType,
        range: TimeRange,
        group_by: &[String],
        batches: &[RecordBatch],
    ) -> Result<MergedProfile> {
        let n_labels = group_by.len();
        let mut out = MergedProfile::empty(profile_type, range);
        let mut group_ids: FxHashMap<Vec<Option<String>>, u32> = FxHashMap::default();
        if n_labels > 0 {
            out.groups.clear();
        }
        for b in batches {
            let stacks = b.column(n_labels).as_primitive::<UInt64Type>();
            let values = b.column(n_labels + 1).as_primitive::<Int64Type>();
            let periods = b.column(n_labels + 2).as_primitive::<Int64Type>();
            let labels: Vec<_> = (0..n_labels)
                .map(|i| b.column(i).as_string::<i32>())
                .collect();
            for r in 0..b.num_rows() {
                let value = if values.is_null(r) {
                    0
                } else {
                    values.value(r)
                };
                if value == 0 {
                    continue;
                }
                out.period = out.period.max(periods.value(r));
                let group = if n_labels == 0 {
                    0
                } else {
                    let key: Vec<Option<String>> = labels
                        .iter()
                        .map(|a| (!a.is_null(r)).then(|| a.value(r).to_owned()))
                        .collect();
                    let next = group_ids.len() as u32;
                    *group_ids.entry(key).or_insert(next)
                };
                out.stacks.push(StackValue {
                    stack_id: StackId(stacks.value(r)),
                    group,
                    value,
                    base: 0,
                });
            }
        }
        if n_labels > 0 {
            let mut groups: Vec<(u32, Vec<Option<String>>)> =
                group_ids.into_iter().map(|(k, v)| (v, k)).collect();
            groups.sort();
            out.groups = groups
                .into_iter()
                .map(|(_, key)| {
                    key.into_iter()
                        .enumerate()
                        .filter_map(|(i, v)| v.map(|v| (i, v)))
                        .map(|(i, v)| (group_by[i].clone(), v))
                        .collect()
                })
                .collect();
        }
        out.stacks.sort_by_key(|s| (s.group, s.stack_id));
        let mut ids: Vec<StackId> = out.stacks.iter().map(|s| s.stack_id).collect();
        ids.sort_unstable();
        ids.dedup();
        out.symbols = self.engine.resolve_stacks(&ids).await?;
        Ok(out)
    }

    /// The profile(s) of `selector` at exactly `timestamp_ns`.
    pub async fn single(&self, selector: &Selector, timestamp_ns: i64) -> Result<MergedProfile> {
        let end = timestamp_ns
            .checked_add(1)
            .ok_or_else(|| Error::InvalidQuery(format!("timestamp {timestamp_ns} out of range")))?;
        self.merge(&ProfileQuery::new(
            selector.clone(),
            TimeRange::new(timestamp_ns, end),
        ))
        .await
    }

    /// `compare` minus `base`: each stack's value from `compare` and base value from `base`.
    /// The two may differ in selector and range; their profile types must agree.
    pub async fn diff(&self, base: &ProfileQuery, compare: &ProfileQuery) -> Result<MergedProfile> {
        if base.selector.profile_type != compare.selector.profile_type {
            return Err(Error::InvalidQuery(format!(
                "a diff compares one profile type: {} vs {}",
                base.selector.profile_type, compare.selector.profile_type
            )));
        }
        let (b, c) = futures::try_join!(self.merge(base), self.merge(compare))?;
        Ok(c.diff_against(b))
    }
}
