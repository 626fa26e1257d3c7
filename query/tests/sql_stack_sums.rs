//! SQL's per-stack sums over `samples` read the engine's stack sums (`StackSumsRule`): which
//! queries are rewritten (`EXPLAIN` shows the `stack_sums` scan) and which keep the samples
//! scan, and that rewritten results equal sums of the raw rows — over flushed blocks and head
//! data, with and without filters, in examples and a property test.

mod common;

use std::collections::BTreeMap;
use std::time::Instant;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{Int64Type, UInt64Type};
use common::*;
use proptest::prelude::*;
use strata_engine::{ScanRequest, TimeRange};
use strata_query::QueryEngine;
use strata_query::table::STACK_SUMS_SCAN;

/// Profiles of two types and three series over `1_000..=4_000`, some flushed to blocks (two
/// flushes, so two blocks) and some left in the head.
async fn fixture() -> (Store, QueryEngine) {
    let s = store().await;
    let main: &[&str] = &["main"];
    let work: &[&str] = &["work", "handle", "main"];
    let gc: &[&str] = &["gc", "main"];
    let query: &[&str] = &["query", "main"];
    append(
        &s.engine,
        &[
            Profile::new(CPU, &[("job", "api")], 1_000, &[(work, 50), (gc, 10)]),
            Profile::new(CPU, &[("job", "db")], 1_000, &[(query, 40), (main, 1)]),
            Profile::new(HEAP, &[("job", "api")], 1_000, &[(work, 100), (gc, 7)]),
        ],
    )
    .await;
    s.engine.flush().await.unwrap();
    append(
        &s.engine,
        &[
            Profile::new(CPU, &[("job", "api")], 2_000, &[(work, 5), (query, 3)]),
            Profile::new(HEAP, &[("job", "web")], 2_000, &[(gc, 1_000)]),
        ],
    )
    .await;
    s.engine.flush().await.unwrap();
    // Head data.
    append(
        &s.engine,
        &[
            Profile::new(CPU, &[("job", "api")], 3_000, &[(work, 8), (gc, 2)]),
            Profile::new(CPU, &[("job", "web")], 4_000, &[(main, 9)]),
            Profile::new(HEAP, &[("job", "db")], 3_000, &[(query, 11)]),
        ],
    )
    .await;
    let q = QueryEngine::new(s.engine.clone());
    (s, q)
}

/// The text of `EXPLAIN sql` (logical and physical plans).
async fn explain(q: &QueryEngine, sql: &str) -> String {
    let (_, b) = q.sql(&format!("EXPLAIN {sql}")).await.unwrap();
    let mut out = String::new();
    for b in &b {
        let (kind, plan) = (
            b.column(0).as_string::<i32>(),
            b.column(1).as_string::<i32>(),
        );
        for r in 0..b.num_rows() {
            out.push_str(&format!("{}:\n{}\n", kind.value(r), plan.value(r)));
        }
    }
    out
}

fn reads_stack_sums(plan: &str) -> bool {
    plan.contains(&format!("TableScan: {STACK_SUMS_SCAN}"))
}

fn reads_samples(plan: &str) -> bool {
    plan.contains("TableScan: samples")
}

/// Filters every `WHERE` clause below is tried with; all are pushed down exactly.
fn exact_filters() -> Vec<String> {
    vec![
        String::new(),
        format!("WHERE profile_type = '{CPU}'"),
        format!("WHERE profile_type = '{HEAP}'"),
        "WHERE time >= to_timestamp_nanos(2000)".into(),
        format!(
            "WHERE profile_type = '{CPU}' AND time >= to_timestamp_nanos(1500) \
             AND time < to_timestamp_nanos(4000)"
        ),
        "WHERE time > to_timestamp_nanos(1000) AND time <= to_timestamp_nanos(3000)".into(),
        "WHERE time = to_timestamp_nanos(3000)".into(),
        // Nothing can match: an empty scan (DataFusion does not see it, the pushdown does).
        "WHERE time < to_timestamp_nanos(1000) AND time >= to_timestamp_nanos(2000)".into(),
        "WHERE time < to_timestamp_nanos(0)".into(),
    ]
}

#[tokio::test]
async fn per_stack_sums_read_the_stack_sums_scan() {
    let (_s, q) = fixture().await;
    let mut queries = Vec::new();
    for w in exact_filters() {
        queries.push(format!(
            "SELECT stack_id, sum(value) FROM samples {w} GROUP BY stack_id"
        ));
        queries.push(format!(
            "SELECT stack_id, sum(value) AS v, max(period) AS p FROM samples {w} \
             GROUP BY stack_id ORDER BY v DESC LIMIT 3"
        ));
    }
    queries.extend([
        // A table alias, qualified columns.
        "SELECT s.stack_id, sum(s.value) FROM samples s GROUP BY s.stack_id".to_owned(),
        // No grouping at all: the total.
        "SELECT sum(value) FROM samples".to_owned(),
        // No aggregates at all: the stacks present.
        "SELECT DISTINCT stack_id FROM samples".to_owned(),
        format!("SELECT stack_id FROM samples WHERE profile_type = '{HEAP}' GROUP BY stack_id"),
        // Expressions over the aggregate, HAVING, and the stack sums joined with stacks.
        "SELECT stack_id, sum(value) * 2 FROM samples GROUP BY stack_id HAVING sum(value) > 10"
            .to_owned(),
        "SELECT st.stack_id, x.v FROM (SELECT stack_id, sum(value) AS v FROM samples \
         GROUP BY stack_id) x JOIN stacks st ON st.stack_id = x.stack_id"
            .to_owned(),
    ]);
    for sql in &queries {
        let plan = explain(&q, sql).await;
        assert!(reads_stack_sums(&plan), "{sql}\n{plan}");
        assert!(!reads_samples(&plan), "{sql}\n{plan}");
    }
}

#[tokio::test]
async fn other_aggregates_keep_the_samples_scan() {
    let (_s, q) = fixture().await;
    for sql in [
        "SELECT stack_id, series_id, sum(value) FROM samples GROUP BY stack_id, series_id",
        "SELECT stack_id, sum(duration_ns) FROM samples GROUP BY stack_id",
        "SELECT stack_id, sum(value), count(*) FROM samples GROUP BY stack_id",
        "SELECT stack_id, count(value) FROM samples GROUP BY stack_id",
        "SELECT stack_id, avg(value) FROM samples GROUP BY stack_id",
        "SELECT stack_id, min(period) FROM samples GROUP BY stack_id",
        "SELECT stack_id, max(value) FROM samples GROUP BY stack_id",
        "SELECT stack_id, sum(DISTINCT value) FROM samples GROUP BY stack_id",
        "SELECT stack_id, sum(value) FILTER (WHERE value > 5) FROM samples GROUP BY stack_id",
        "SELECT stack_id, sum(value + 1) FROM samples GROUP BY stack_id",
        "SELECT stack_id + 1, sum(value) FROM samples GROUP BY stack_id + 1",
        "SELECT job, sum(value) FROM samples GROUP BY job",
        "SELECT profile_type, stack_id, sum(value) FROM samples GROUP BY profile_type, stack_id",
        "SELECT stack_id, sum(value) FROM samples GROUP BY ROLLUP (stack_id)",
        // A label filter is inexact (SQL re-checks it); a filter on values is not pushed.
        "SELECT stack_id, sum(value) FROM samples WHERE job = 'api' GROUP BY stack_id",
        "SELECT stack_id, sum(value) FROM samples WHERE value > 5 GROUP BY stack_id",
        "SELECT stack_id, sum(value) FROM samples WHERE profile_type LIKE 'process%' \
         GROUP BY stack_id",
        "SELECT stack_id, sum(value) FROM samples WHERE time <> to_timestamp_nanos(1000) \
         GROUP BY stack_id",
        // Not directly over the table.
        "SELECT stack_id, sum(value) FROM (SELECT * FROM samples LIMIT 5) GROUP BY stack_id",
        "SELECT stack_id, sum(value) FROM (SELECT stack_id, value FROM samples \
         UNION ALL SELECT stack_id, value FROM samples) GROUP BY stack_id",
        // No aggregate.
        "SELECT stack_id, value FROM samples",
    ] {
        let plan = explain(&q, sql).await;
        assert!(!reads_stack_sums(&plan), "{sql}\n{plan}");
        assert!(reads_samples(&plan), "{sql}\n{plan}");
    }
}

/// `(stack_id, value, period)` rows as stack_id -> (wrapping sum of values, largest period).
fn fold(rows: impl IntoIterator<Item = (u64, i64, i64)>) -> BTreeMap<u64, (i64, i64)> {
    let mut out: BTreeMap<u64, (i64, i64)> = BTreeMap::new();
    for (stack, value, period) in rows {
        let e = out.entry(stack).or_insert((0, i64::MIN));
        e.0 = e.0.wrapping_add(value);
        e.1 = e.1.max(period);
    }
    out
}

/// Rows of batches whose first three columns are `stack_id`, `value`, `period`.
fn triples(batches: &[RecordBatch]) -> Vec<(u64, i64, i64)> {
    let mut out = Vec::new();
    for b in batches {
        let stacks = b.column(0).as_primitive::<UInt64Type>();
        let values = b.column(1).as_primitive::<Int64Type>();
        let periods = b.column(2).as_primitive::<Int64Type>();
        for r in 0..b.num_rows() {
            out.push((stacks.value(r), values.value(r), periods.value(r)));
        }
    }
    out
}

/// `SELECT stack_id, sum(value), max(period) … GROUP BY stack_id` (checked to be rewritten)
/// and the same fold of `SELECT stack_id, value, period …` rows.
async fn rewritten_and_naive(
    q: &QueryEngine,
    filter: &str,
) -> (BTreeMap<u64, (i64, i64)>, BTreeMap<u64, (i64, i64)>) {
    let sql =
        format!("SELECT stack_id, sum(value), max(period) FROM samples {filter} GROUP BY stack_id");
    assert!(reads_stack_sums(&explain(q, &sql).await), "{sql}");
    let (_, b) = q.sql(&sql).await.unwrap();
    let got: BTreeMap<u64, (i64, i64)> = triples(&b)
        .into_iter()
        .map(|(s, v, p)| (s, (v, p)))
        .collect();
    assert_eq!(
        got.len(),
        b.iter().map(|b| b.num_rows()).sum::<usize>(),
        "one row per stack: {sql}"
    );
    let (_, rows) = q
        .sql(&format!(
            "SELECT stack_id, value, period FROM samples {filter}"
        ))
        .await
        .unwrap();
    (got, fold(triples(&rows)))
}

#[tokio::test]
async fn rewritten_sums_equal_sums_of_raw_rows() {
    let (s, q) = fixture().await;
    assert_eq!(s.engine.blocks().len(), 2);
    for filter in exact_filters() {
        let (got, want) = rewritten_and_naive(&q, &filter).await;
        assert_eq!(got, want, "{filter}");
        // The stacks present, from the same sums.
        let sql = format!("SELECT DISTINCT stack_id FROM samples {filter}");
        assert!(reads_stack_sums(&explain(&q, &sql).await), "{sql}");
        let (_, b) = q.sql(&sql).await.unwrap();
        let mut stacks: Vec<u64> = b
            .iter()
            .flat_map(|b| b.column(0).as_primitive::<UInt64Type>().values().to_vec())
            .collect();
        stacks.sort_unstable();
        assert_eq!(stacks, want.keys().copied().collect::<Vec<_>>(), "{sql}");
    }
    // And against the engine's own scan, outside SQL: the CPU samples in [1500, 4000).
    let (got, _) = rewritten_and_naive(&q, &exact_filters()[4]).await;
    let out = s
        .engine
        .scan(ScanRequest {
            profile_type: CPU.parse().unwrap(),
            matchers: Vec::new(),
            range: TimeRange::new(1_500, 4_000),
        })
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    let mut rows = Vec::new();
    for b in &out {
        let stacks = b.column(4).as_primitive::<UInt64Type>();
        let values = b.column(5).as_primitive::<Int64Type>();
        let periods = b.column(3).as_primitive::<Int64Type>();
        for r in 0..b.num_rows() {
            rows.push((stacks.value(r), values.value(r), periods.value(r)));
        }
    }
    assert_eq!(got, fold(rows));
    assert_eq!(got.values().map(|(v, _)| v).sum::<i64>(), 5 + 3 + 8 + 2);
    // The total, ungrouped.
    let (_, b) = q.sql("SELECT sum(value) FROM samples").await.unwrap();
    assert_eq!(
        b[0].column(0).as_primitive::<Int64Type>().value(0),
        50 + 10 + 40 + 1 + 100 + 7 + 5 + 3 + 1_000 + 8 + 2 + 9 + 11
    );
    // An empty selection sums to NULL, as over raw rows.
    let (_, b) = q
        .sql("SELECT sum(value) FROM samples WHERE time < to_timestamp_nanos(0)")
        .await
        .unwrap();
    assert!(b[0].column(0).is_null(0));
}

fn arb_profile() -> impl Strategy<Value = Profile> {
    let stack = prop::collection::vec(prop::sample::select(vec!["main", "a", "b", "c"]), 1..4);
    let value = prop_oneof![
        8 => 1i64..1_000,
        1 => Just(i64::MAX / 2),
    ];
    (
        prop::sample::select(vec![CPU, HEAP]),
        prop::sample::select(vec!["api", "db", "web"]),
        0i64..100,
        prop::collection::vec((stack, value), 1..8),
    )
        .prop_map(|(pt, job, ts, samples)| Profile {
            profile_type: pt.to_owned(),
            labels: vec![("job".into(), job.into())],
            timestamp_ns: ts,
            duration_ns: 10_000_000_000,
            samples: samples
                .into_iter()
                .map(|(s, v)| (s.into_iter().map(String::from).collect(), v))
                .collect(),
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]
    /// Random profiles, some in blocks and some in the head, under random exact filters.
    #[test]
    fn rewritten_sums_equal_sums_of_raw_rows_for_any_data(
        profiles in prop::collection::vec(arb_profile(), 1..12),
        flush_after in prop::collection::vec(0usize..12, 0..3),
        pt in prop::option::of(prop::sample::select(vec![CPU, HEAP])),
        start in prop::option::of(0i64..100),
        end in prop::option::of(0i64..110),
    ) {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let s = store().await;
            for (i, p) in profiles.iter().enumerate() {
                append(&s.engine, std::slice::from_ref(p)).await;
                if flush_after.contains(&i) {
                    s.engine.flush().await.unwrap();
                }
            }
            let q = QueryEngine::new(s.engine.clone());
            let mut filters = Vec::new();
            if let Some(pt) = pt {
                filters.push(format!("profile_type = '{pt}'"));
            }
            if let Some(t) = start {
                filters.push(format!("time >= to_timestamp_nanos({t})"));
            }
            if let Some(t) = end {
                filters.push(format!("time < to_timestamp_nanos({t})"));
            }
            let filter = if filters.is_empty() {
                String::new()
            } else {
                format!("WHERE {}", filters.join(" AND "))
            };
            let (got, want) = rewritten_and_naive(&q, &filter).await;
            prop_assert_eq!(got, want, "{}", filter);
            Ok(())
        })?;
    }
}

/// Timing, not a test: `SELECT stack_id, sum(value) FROM samples GROUP BY stack_id` over
/// `STRATA_BENCH_ROWS` (default 2 M) flushed rows, with and without the rule. Run with
/// `cargo test -p strata-query --test sql_stack_sums -- --ignored --nocapture`, best with the
/// workspace crates optimized (`--config 'profile.dev.package.strata-engine.opt-level=3'`, the
/// same for `strata-query`): a debug engine sums far slower than the optimized dependencies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "timing, run by hand"]
async fn time_stack_sums_rule() {
    let rows: usize = std::env::var("STRATA_BENCH_ROWS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2_000_000);
    let s = store().await;
    // 2 000 distinct stacks of depth 4 over 50 functions, 20 series, 1 000 samples a profile,
    // a block per 500 000 rows.
    let names: Vec<String> = (0..50).map(|i| format!("fn{i}")).collect();
    let stacks: Vec<Vec<&str>> = (0..2_000usize)
        .map(|i| {
            [i % 50, i / 50, (i * 7 + 3) % 50, 49 - i / 50]
                .iter()
                .map(|&n| names[n].as_str())
                .collect()
        })
        .collect();
    let jobs: Vec<String> = (0..20).map(|i| format!("job{i}")).collect();
    let started = Instant::now();
    let per_profile = 1_000;
    let mut profiles = Vec::new();
    for p in 0..rows / per_profile {
        let samples: Vec<(&[&str], i64)> = (0..per_profile)
            .map(|i| {
                let k = (p * 7_919 + i * 104_729) % stacks.len();
                (stacks[k].as_slice(), (i % 97) as i64 + 1)
            })
            .collect();
        profiles.push(Profile::new(
            CPU,
            &[("job", jobs[p % jobs.len()].as_str())],
            1_000_000 + p as i64,
            &samples,
        ));
        if profiles.len() == 100 {
            append(&s.engine, &profiles).await;
            profiles.clear();
        }
        if (p + 1) % 500 == 0 {
            s.engine.flush().await.unwrap();
        }
    }
    if !profiles.is_empty() {
        append(&s.engine, &profiles).await;
    }
    s.engine.flush().await.unwrap();
    eprintln!(
        "loaded {rows} rows in {:?} ({} blocks)",
        started.elapsed(),
        s.engine.blocks().len()
    );
    let q = QueryEngine::new(s.engine.clone());
    let sql = "SELECT stack_id, sum(value) FROM samples GROUP BY stack_id";
    for rule in [false, true] {
        let ctx = q.sql_session().await.unwrap();
        if !rule {
            assert!(ctx.remove_optimizer_rule("strata_stack_sums"));
        }
        let mut times = Vec::new();
        let mut out = 0;
        for _ in 0..7 {
            let t = Instant::now();
            let b = ctx.sql(sql).await.unwrap().collect().await.unwrap();
            times.push(t.elapsed());
            out = b.iter().map(|b| b.num_rows()).sum::<usize>();
        }
        times.sort();
        eprintln!(
            "rule {}: median {:?}, min {:?} ({out} stacks)",
            if rule { "on " } else { "off" },
            times[times.len() / 2],
            times[0]
        );
    }
}
