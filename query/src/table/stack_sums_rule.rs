//! [`StackSumsRule`]: SQL's per-stack sums over `samples` read [`StackSumsTable`] instead.
//!
//! `SELECT stack_id, sum(value) FROM samples [WHERE …] GROUP BY stack_id` aggregates every
//! sample row in DataFusion. The engine can sum values per stack within each scan part on the
//! blocks' Parquet dictionary encoding ([`strata_engine::ScanPart::stack_sums`]), and summing
//! those partial sums per stack gives the same result (both sums wrap on overflow, like
//! DataFusion's `sum` of Int64), so this logical optimizer rule swaps the scan when nothing
//! else above it sees rows.

use std::sync::Arc;

use datafusion::catalog::default_table_source::{provider_as_source, source_as_provider};
use datafusion::common::Result as DfResult;
use datafusion::common::tree_node::Transformed;
use datafusion::datasource::TableProvider;
use datafusion::functions_aggregate::min_max::max_udaf;
use datafusion::functions_aggregate::sum::sum_udaf;
use datafusion::logical_expr::expr::AggregateFunction;
use datafusion::logical_expr::{
    Aggregate, Expr, LogicalPlan, SubqueryAlias, TableProviderFilterPushDown, TableScan,
    TableScanBuilder,
};
use datafusion::optimizer::{ApplyOrder, OptimizerConfig, OptimizerRule};

use super::{SamplesTable, StackSumsTable};

/// The name of the scan that replaces `samples` (shown by `EXPLAIN`).
pub const STACK_SUMS_SCAN: &str = "stack_sums";

/// Rewrites per-stack sums over the `samples` table to read the engine's per-part stack sums
/// ([`StackSumsTable`]). Register it with `SessionContext::add_optimizer_rule`. It rewrites an
/// `Aggregate` when:
///
/// - its input is a `TableScan` of a [`SamplesTable`] (possibly under table aliases,
///   `FROM samples s`) with no row limit;
/// - it groups by nothing but the `stack_id` column (or by nothing: `SELECT sum(value)`);
/// - its aggregates are only DataFusion's own `sum(value)` and `max(period)` (aliased or not),
///   none `DISTINCT`, ordered or with a `FILTER`, or there are none (`SELECT DISTINCT
///   stack_id`: a part's sums hold exactly the stacks of its rows). Anything that sees rows
///   (`count(*)`, `avg`, `min`) or other columns (`sum(duration_ns)`) would change;
/// - the scan's every filter is pushed down exactly (`profile_type = '…'`, comparisons of
///   `time`), so no filter is left to see rows; label filters are inexact and keep the plan.
///
/// The scan is replaced by a scan named [`STACK_SUMS_SCAN`] of a [`StackSumsTable`] over the
/// engine requests the samples scan would have made for the same filters, under an alias with
/// the old table name so that every column reference above stays valid: `EXPLAIN` shows
/// `TableScan: stack_sums`.
#[derive(Debug, Default, Clone, Copy)]
pub struct StackSumsRule;

impl OptimizerRule for StackSumsRule {
    fn name(&self) -> &str {
        "strata_stack_sums"
    }

    fn apply_order(&self) -> Option<ApplyOrder> {
        Some(ApplyOrder::BottomUp)
    }

    fn rewrite(
        &self,
        plan: LogicalPlan,
        _config: &dyn OptimizerConfig,
    ) -> DfResult<Transformed<LogicalPlan>> {
        let LogicalPlan::Aggregate(aggregate) = &plan else {
            return Ok(Transformed::no(plan));
        };
        match rewrite(aggregate)? {
            Some(rewritten) => Ok(Transformed::yes(rewritten)),
            None => Ok(Transformed::no(plan)),
        }
    }
}

/// A column of [`strata_engine::stack_sums_schema`] an aggregate reads (its index).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Needed {
    StackId = 0,
    Value = 1,
    Period = 2,
}

/// The aggregate over stack sums, or `None` when `aggregate` does not qualify.
fn rewrite(aggregate: &Aggregate) -> DfResult<Option<LogicalPlan>> {
    let mut needed = Vec::new();
    for e in &aggregate.group_expr {
        match e {
            Expr::Column(c) if c.name == "stack_id" => needed.push(Needed::StackId),
            _ => return Ok(None),
        }
    }
    for e in &aggregate.aggr_expr {
        match summable(e) {
            Some(n) => needed.push(n),
            None => return Ok(None),
        }
    }
    let Some((aliases, scan)) = aliased_scan(&aggregate.input) else {
        return Ok(None);
    };
    if scan.fetch.is_some() {
        return Ok(None);
    }
    let provider = source_as_provider(&scan.source)?;
    let Some(samples) = provider.downcast_ref::<SamplesTable>() else {
        return Ok(None);
    };
    let filters: Vec<&Expr> = scan.filters.iter().collect();
    let exact = samples
        .supports_filters_pushdown(&filters)?
        .iter()
        .all(|how| matches!(how, TableProviderFilterPushDown::Exact));
    if !exact {
        return Ok(None);
    }
    let table =
        StackSumsTable::from_pushdown(samples.engine().clone(), samples.pushdown(&scan.filters));
    needed.sort_unstable();
    needed.dedup();
    let projection: Vec<usize> = needed.into_iter().map(|n| n as usize).collect();
    let sums = TableScanBuilder::new(STACK_SUMS_SCAN, provider_as_source(Arc::new(table)))
        .with_projection(Some(projection))
        .build()?;
    // The old name first, then the query's own aliases from the innermost out.
    let mut input = LogicalPlan::SubqueryAlias(SubqueryAlias::try_new(
        Arc::new(LogicalPlan::TableScan(sums)),
        scan.table_name.clone(),
    )?);
    for alias in aliases.into_iter().rev() {
        input = LogicalPlan::SubqueryAlias(SubqueryAlias::try_new(
            Arc::new(input),
            alias.alias.clone(),
        )?);
    }
    Ok(Some(LogicalPlan::Aggregate(Aggregate::try_new(
        Arc::new(input),
        aggregate.group_expr.clone(),
        aggregate.aggr_expr.clone(),
    )?)))
}

/// The stack sums column `e` reads if it is `sum(value)` or `max(period)` (DataFusion's own
/// functions, plain: no `DISTINCT`, `FILTER`, `ORDER BY` or null treatment), maybe aliased.
fn summable(e: &Expr) -> Option<Needed> {
    let e = match e {
        Expr::Alias(a) => a.expr.as_ref(),
        e => e,
    };
    let Expr::AggregateFunction(AggregateFunction { func, params }) = e else {
        return None;
    };
    if params.distinct
        || params.filter.is_some()
        || !params.order_by.is_empty()
        || params.null_treatment.is_some()
    {
        return None;
    }
    let [Expr::Column(arg)] = params.args.as_slice() else {
        return None;
    };
    if **func == *sum_udaf() && arg.name == "value" {
        Some(Needed::Value)
    } else if **func == *max_udaf() && arg.name == "period" {
        Some(Needed::Period)
    } else {
        None
    }
}

/// `plan` as a table scan under zero or more aliases (outermost first).
fn aliased_scan(plan: &LogicalPlan) -> Option<(Vec<&SubqueryAlias>, &TableScan)> {
    let mut aliases = Vec::new();
    let mut plan = plan;
    loop {
        match plan {
            LogicalPlan::SubqueryAlias(a) => {
                aliases.push(a);
                plan = &a.input;
            }
            LogicalPlan::TableScan(scan) => return Some((aliases, scan)),
            _ => return None,
        }
    }
}
