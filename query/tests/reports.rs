//! Golden files for every report over one fixed profile (and a diff). Re-bless with
//! `STRATA_BLESS=1 cargo test -p strata-query --test reports`.

mod common;

use common::golden::check;
use common::*;
use strata_engine::TimeRange;
use strata_query::report::{self, CallGraph, FlameGraph, FlameGraphOptions};
use strata_query::{FrameProfile, ProfileQuery, QueryEngine};

fn profiles() -> Vec<Profile> {
    vec![
        Profile::new(
            CPU,
            &[("job", "api")],
            10,
            &[
                (&["work", "handle", "main"], 500),
                (&["work", "work", "handle", "main"], 100),
                (&["parse", "handle", "main"], 200),
                (&["gc", "main"], 150),
                (&["tiny", "main"], 1),
            ],
        ),
        Profile::new(
            CPU,
            &[("job", "api")],
            20,
            &[
                (&["work", "handle", "main"], 300),
                (&["query", "main"], 400),
            ],
        ),
    ]
}

async fn fixture() -> (Store, QueryEngine) {
    let s = store().await;
    append(&s.engine, &profiles()).await;
    let q = QueryEngine::new(s.engine.clone());
    (s, q)
}

#[tokio::test]
async fn reports_match_golden_files() {
    let (_s, q) = fixture().await;
    let m = q
        .merge(&ProfileQuery::new(sel(CPU), TimeRange::new(0, 100)))
        .await
        .unwrap();
    let p = FrameProfile::resolve(&m);

    let fg = FlameGraph::build(&p, &FlameGraphOptions::default());
    check(
        "flamegraph.json",
        &serde_json::to_string_pretty(&fg).unwrap(),
    );
    // Pruned: nodes under 1 % and at most 5 nodes; the pruned mass stays in `pruned`.
    let pruned = FlameGraph::build(
        &p,
        &FlameGraphOptions {
            min_fraction: 0.01,
            max_nodes: 5,
        },
    );
    assert_eq!(pruned.nodes.len(), 5);
    for n in &pruned.nodes {
        let children: i64 = n
            .children
            .iter()
            .map(|&c| pruned.nodes[c as usize].cumulative)
            .sum();
        assert_eq!(n.cumulative, n.flat + children + n.pruned);
    }
    check(
        "flamegraph_pruned.json",
        &serde_json::to_string_pretty(&pruned).unwrap(),
    );

    let top: Vec<_> = report::top(&p)
        .into_iter()
        .map(|r| {
            format!(
                "{:>6} {:>6}  {}",
                r.flat, r.cumulative, p.frames[r.frame as usize].function
            )
        })
        .collect();
    check("top.txt", &(top.join("\n") + "\n"));
    check(
        "callgraph.json",
        &serde_json::to_string_pretty(&CallGraph::build(&p)).unwrap(),
    );
    check("folded.txt", &report::folded(&p));
    check("llvm_sample.txt", &report::llvm_sample(&p));
    check("pprof.txt", &format!("{:#?}\n", report::pprof_profile(&p)));

    // A diff: the second profile against the first.
    let d = q
        .diff(
            &ProfileQuery::new(sel(CPU), TimeRange::new(0, 15)),
            &ProfileQuery::new(sel(CPU), TimeRange::new(15, 100)),
        )
        .await
        .unwrap();
    let dp = FrameProfile::resolve(&d);
    check(
        "flamegraph_diff.json",
        &serde_json::to_string_pretty(&FlameGraph::build(&dp, &FlameGraphOptions::default()))
            .unwrap(),
    );
    check("folded_diff.txt", &report::folded(&dp));
}
