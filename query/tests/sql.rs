//! SQL over the engine's tables: label columns, pushed-down filters (the plan shows them at the
//! scan), the symbol tables, the `merge(...)` table function, and clear errors.

mod common;

use arrow::array::{AsArray, RecordBatch};
use arrow::datatypes::{Int64Type, UInt64Type};
use common::*;
use strata_query::QueryEngine;

async fn fixture() -> (Store, QueryEngine) {
    let s = store().await;
    append(
        &s.engine,
        &[
            Profile::new(
                CPU,
                &[("job", "api"), ("value", "x")],
                1_000,
                &[(&["work", "handle", "main"], 50), (&["gc", "main"], 10)],
            ),
            Profile::new(CPU, &[("job", "db")], 2_000, &[(&["query", "main"], 40)]),
            Profile::new(HEAP, &[("job", "api")], 1_000, &[(&["alloc", "main"], 100)]),
        ],
    )
    .await;
    s.engine.flush().await.unwrap();
    let q = QueryEngine::new(s.engine.clone());
    (s, q)
}

/// All rows as strings, for easy comparison.
fn rows(batches: &[RecordBatch]) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    for b in batches {
        for r in 0..b.num_rows() {
            out.push(
                b.columns()
                    .iter()
                    .map(|c| {
                        arrow::util::display::ArrayFormatter::try_new(
                            c.as_ref(),
                            &Default::default(),
                        )
                        .unwrap()
                        .value(r)
                        .to_string()
                    })
                    .collect(),
            );
        }
    }
    out
}

#[tokio::test]
async fn samples_table_with_label_columns_and_pushdown() {
    let (_s, q) = fixture().await;
    let (_, b) = q
        .sql(&format!(
            "SELECT job, sum(value) AS v FROM samples WHERE profile_type = '{CPU}' GROUP BY job ORDER BY job"
        ))
        .await
        .unwrap();
    assert_eq!(rows(&b), [["api", "60"], ["db", "40"]]);
    // A label named like a fixed column is `label_<name>`.
    let (_, b) = q
        .sql("SELECT DISTINCT label_value FROM samples WHERE label_value IS NOT NULL")
        .await
        .unwrap();
    assert_eq!(rows(&b), [["x"]]);
    // Time, type and label filters reach the scan (the plan shows them pushed down).
    let sql = format!(
        "SELECT sum(value) FROM samples WHERE profile_type = '{CPU}' AND job ~ 'ap' \
         AND time >= to_timestamp_nanos(500) AND time < to_timestamp_nanos(1500)"
    );
    let (_, b) = q.sql(&sql).await.unwrap();
    assert_eq!(rows(&b), [["60"]]);
    let (_, plan) = q.sql(&format!("EXPLAIN {sql}")).await.unwrap();
    let plan = rows(&plan).concat().join("\n");
    assert!(
        plan.contains("full_filters=[") || plan.contains("partial_filters=["),
        "{plan}"
    );
    assert!(plan.contains("profile_type ="), "{plan}");
    // Every profile type when none is given.
    let (_, b) = q
        .sql("SELECT profile_type, count(*) FROM samples GROUP BY profile_type ORDER BY 1")
        .await
        .unwrap();
    assert_eq!(rows(&b).len(), 2);
}

#[tokio::test]
async fn symbol_tables_and_merge_function() {
    let (_s, q) = fixture().await;
    let (_, b) = q
        .sql("SELECT name FROM functions ORDER BY name")
        .await
        .unwrap();
    assert_eq!(
        rows(&b).concat(),
        ["alloc", "gc", "handle", "main", "query", "work"]
    );
    let (_, b) = q.sql("SELECT count(*) FROM stacks").await.unwrap();
    assert_eq!(rows(&b), [["4"]]);
    let (_, b) = q
        .sql("SELECT f.name, l.line FROM locations l JOIN functions f ON l.function_id = f.function_id WHERE f.name = 'work'")
        .await
        .unwrap();
    assert_eq!(rows(&b), [["work", "12"]]);
    let (_, b) = q
        .sql("SELECT DISTINCT filename, build_id FROM mappings")
        .await
        .unwrap();
    assert_eq!(rows(&b), [["/bin/app", "app-build-id"]]);
    // One stack's locations, by ID.
    let (_, b) = q.sql("SELECT stack_id FROM stacks LIMIT 1").await.unwrap();
    let id = b[0].column(0).as_primitive::<UInt64Type>().value(0);
    let (_, b) = q
        .sql(&format!(
            "SELECT location_ids FROM stacks WHERE stack_id = {id}"
        ))
        .await
        .unwrap();
    assert_eq!(b.iter().map(|b| b.num_rows()).sum::<usize>(), 1);

    // merge(): the merged profile as rows.
    let (schema, b) = q
        .sql(&format!(
            "SELECT stack, value FROM merge('{CPU}{{job=\"api\"}}', to_timestamp_nanos(0), to_timestamp_nanos(10000)) ORDER BY value DESC"
        ))
        .await
        .unwrap();
    assert_eq!(schema.field(0).name(), "stack");
    assert_eq!(rows(&b), [["main;handle;work", "50"], ["main;gc", "10"]]);
    let total: i64 = b
        .iter()
        .map(|b| {
            b.column(1)
                .as_primitive::<Int64Type>()
                .values()
                .iter()
                .sum::<i64>()
        })
        .sum();
    assert_eq!(total, 60);
    let (_, b) = q
        .sql(&format!(
            "SELECT count(*) FROM merge('{CPU}', now() - interval '1 hour', now())"
        ))
        .await
        .unwrap();
    assert_eq!(rows(&b), [["0"]]);
}

#[tokio::test]
async fn errors_say_what_is_wrong() {
    let (_s, q) = fixture().await;
    for (sql, says) in [
        ("SELECT nope FROM samples", "nope"),
        ("SELECT * FROM nowhere", "nowhere"),
        ("SELECT * FROM merge('cpu{', 0, 1)", "selector column"),
        ("SELECT * FROM merge('x', 0)", "three arguments"),
        (
            &format!("SELECT * FROM merge('{CPU}', 'a', 1)"),
            "start must be a timestamp",
        ),
    ] {
        let err = q.sql(sql).await.unwrap_err().to_string();
        assert!(err.contains(says), "{sql}: {err}");
    }
}
