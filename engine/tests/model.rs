//! Property test: any sequence of appends, flushes, reopens (WAL replay) and compactions, read
//! back with any matcher and time range, equals a naive in-test model.

mod common;

use common::*;
use proptest::prelude::*;
use std::collections::BTreeMap;

use arrow::array::AsArray;
use arrow::datatypes::{Int64Type, UInt64Type};
use futures::TryStreamExt;
use strata_engine::{Engine, LabelMatcher, MatchOp, ScanRequest, TimeRange};

#[derive(Clone, Debug)]
enum Op {
    Append(Vec<Row>),
    Flush,
    Reopen,
    Compact,
}

fn row() -> impl Strategy<Value = Row> {
    (
        0usize..2,
        0u8..3,
        prop::option::of(0u8..2),
        0i64..100,
        0u8..6,
        1i64..1_000_000,
    )
        .prop_map(|(pt, job, env, ts, stack, value)| {
            let mut labels = vec![("job".to_string(), format!("j{job}"))];
            if let Some(e) = env {
                labels.push(("env".into(), format!("e{e}")));
            }
            Row {
                pt,
                labels,
                ts,
                stack,
                value,
            }
        })
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        5 => prop::collection::vec(row(), 1..30).prop_map(Op::Append),
        2 => Just(Op::Flush),
        1 => Just(Op::Reopen),
        1 => Just(Op::Compact),
    ]
}

fn matchers() -> impl Strategy<Value = Vec<LabelMatcher>> {
    let one = prop_oneof![
        (0u8..4).prop_map(|j| LabelMatcher::equal("job", format!("j{j}"))),
        (0u8..3)
            .prop_map(|j| LabelMatcher::new("job", MatchOp::NotEqual, format!("j{j}")).unwrap()),
        Just(LabelMatcher::new("job", MatchOp::Regex, "j[01]").unwrap()),
        Just(LabelMatcher::new("env", MatchOp::NotRegex, "e0").unwrap()),
        Just(LabelMatcher::equal("env", "")),
        Just(LabelMatcher::new("env", MatchOp::NotEqual, "").unwrap()),
    ];
    prop::collection::vec(one, 0..3)
}

fn query() -> impl Strategy<Value = (usize, Vec<LabelMatcher>, TimeRange)> {
    (
        0usize..2,
        matchers(),
        prop_oneof![
            Just(TimeRange::ALL),
            (0i64..100, 0i64..100).prop_map(|(a, b)| TimeRange::new(a.min(b), a.max(b) + 1))
        ],
    )
}

async fn check(ops: Vec<Op>, queries: Vec<(usize, Vec<LabelMatcher>, TimeRange)>) {
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(dir.path());
    config.compaction.max_sources = 3;
    config.compaction.merge_chunk_rows = 4; // many chunks per merge
    // Stacks resolved through the symbol cache in half of the cases, read filtered from the
    // blocks in the other half.
    if ops.len().is_multiple_of(2) {
        config.block.symbol_cache_bytes = 0;
    }
    let mut engine = Engine::open(config.clone()).await.unwrap();
    let mut model: Vec<Row> = Vec::new();
    for op in ops {
        match op {
            Op::Append(rows) => {
                engine.append(&batch(&rows)).await.unwrap();
                model.extend(rows);
            }
            Op::Flush => {
                engine.flush().await.unwrap();
            }
            Op::Reopen => {
                engine.close().await.unwrap();
                drop(engine);
                engine = Engine::open(config.clone()).await.unwrap();
                assert!(engine.open_report().replay.damage.is_empty());
            }
            Op::Compact => while engine.compact().await.unwrap().is_some() {},
        }
    }
    let types = profile_types();
    for (pt, ms, range) in queries {
        let got = scan_all(&engine, &types[pt], ms.clone(), range).await;
        let want = model_scan(&model, pt, &ms, range);
        assert_eq!(got, want, "scan of {} {:?} {:?}", types[pt], ms, range);
        // The same rows as independent parts, projected to (stack_id, value).
        let req = ScanRequest {
            profile_type: types[pt].clone(),
            matchers: ms.clone(),
            range,
        };
        let parts = engine.scan_parts(&req, Some(&[4, 5])).await.unwrap();
        let mut by_stack: BTreeMap<u64, i64> = BTreeMap::new();
        // The same parts summed per stack (on dictionary indexes where a row group is whole).
        let mut summed: BTreeMap<u64, i64> = BTreeMap::new();
        for part in parts.parts.clone() {
            let b = part.stack_sums().await.unwrap();
            assert_eq!(b.schema(), strata_engine::stack_sums_schema());
            let st = b.column(0).as_primitive::<UInt64Type>();
            let v = b.column(1).as_primitive::<Int64Type>();
            let p = b.column(2).as_primitive::<Int64Type>();
            let mut seen = std::collections::BTreeSet::new();
            for i in 0..b.num_rows() {
                assert!(seen.insert(st.value(i)), "stack twice in one part's sums");
                assert_eq!(p.value(i), 10, "the period every test row has");
                *summed.entry(st.value(i)).or_default() += v.value(i);
            }
        }
        for part in parts.parts {
            for b in part.batches().try_collect::<Vec<_>>().await.unwrap() {
                assert_eq!(b.num_columns(), 2);
                let st = b.column(0).as_primitive::<UInt64Type>();
                let v = b.column(1).as_primitive::<Int64Type>();
                for i in 0..b.num_rows() {
                    *by_stack.entry(st.value(i)).or_default() += v.value(i);
                }
            }
        }
        let mut want_by_stack: BTreeMap<u64, i64> = BTreeMap::new();
        for (_, _, stack, value) in &want {
            *want_by_stack.entry(*stack).or_default() += value;
        }
        assert_eq!(
            by_stack, want_by_stack,
            "projected parts of {} {:?} {:?}",
            types[pt], ms, range
        );
        assert_eq!(
            summed, want_by_stack,
            "stack sums of {} {:?} {:?}",
            types[pt], ms, range
        );
        let names = engine.label_names(None, &ms, TimeRange::ALL).await.unwrap();
        assert_eq!(
            names,
            model_label_names(&model, &ms),
            "label names for {ms:?}"
        );
    }
    // Every stack the model holds resolves to its locations and symbols.
    let ids: Vec<_> = (0..6u8)
        .filter(|k| model.iter().any(|r| r.stack == *k))
        .map(stack_id_of)
        .collect();
    let resolved = engine.resolve_stacks(&ids).await.unwrap();
    for (k, id) in (0..6u8)
        .filter(|k| model.iter().any(|r| r.stack == *k))
        .zip(&ids)
    {
        let locs = &resolved.stacks[id];
        assert_eq!(locs.len(), (k % 4 + 1) as usize);
        for l in locs {
            let loc = &resolved.locations[l];
            assert!(loc.is_symbolized());
            assert!(resolved.functions.contains_key(&loc.lines[0].function_id));
        }
    }
    engine.close().await.unwrap();
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]
    #[test]
    fn engine_equals_model(ops in prop::collection::vec(op(), 1..12), queries in prop::collection::vec(query(), 1..6)) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(check(ops, queries));
    }
}
