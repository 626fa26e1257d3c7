//! The operators against naive folds: merge (property test over random profiles, with some in
//! blocks and some in the head), group by, diff, single, range bucketing, filters.

mod common;

use std::collections::BTreeMap;

use common::*;
use proptest::prelude::*;
use strata_engine::{LabelMatcher, TimeRange};
use strata_query::{
    Error, Filters, FrameField, FrameMatcher, FrameProfile, Grouping, ProfileQuery, QueryEngine,
    RangeAggregation, RangeQuery, StackFilter, report,
};

/// Folded stacks (root;…;leaf -> value) of a profile, as the report gives them.
fn folded_map(p: &FrameProfile) -> BTreeMap<String, i64> {
    report::folded(p)
        .lines()
        .map(|l| {
            let (s, v) = l.rsplit_once(' ').unwrap();
            (s.to_owned(), v.parse().unwrap())
        })
        .collect()
}

/// The naive fold: every sample of matching profiles, summed per stack.
fn naive(
    profiles: &[Profile],
    pt: &str,
    job: Option<&str>,
    range: TimeRange,
) -> BTreeMap<String, i64> {
    let mut out = BTreeMap::new();
    for p in profiles {
        if p.profile_type != pt
            || !range.contains(p.timestamp_ns)
            || job.is_some_and(|j| !p.labels.iter().any(|(k, v)| k == "job" && v == j))
        {
            continue;
        }
        for (stack, v) in &p.samples {
            let key = stack.iter().rev().cloned().collect::<Vec<_>>().join(";");
            *out.entry(key).or_default() += v;
        }
    }
    out.retain(|_, v| *v != 0);
    out
}

fn arb_profile() -> impl Strategy<Value = Profile> {
    let stack = prop::collection::vec(prop::sample::select(vec!["main", "a", "b", "c", "d"]), 1..5);
    (
        prop::sample::select(vec![CPU, HEAP]),
        prop::sample::select(vec!["api", "db", "web"]),
        0i64..100,
        prop::collection::vec((stack, 1i64..1000), 1..8),
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
    #[test]
    fn merge_equals_naive_fold(
        profiles in prop::collection::vec(arb_profile(), 1..12),
        flush_after in 0usize..12,
        start in 0i64..60,
        len in 1i64..80,
        job in prop::option::of(prop::sample::select(vec!["api", "db", "web"])),
    ) {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        rt.block_on(async {
            let s = store().await;
            for (i, p) in profiles.iter().enumerate() {
                append(&s.engine, std::slice::from_ref(p)).await;
                if i == flush_after {
                    s.engine.flush().await.unwrap();
                }
            }
            let q = QueryEngine::new(s.engine.clone());
            let range = TimeRange::new(start, start + len);
            for pt in [CPU, HEAP] {
                let selector = match job {
                    Some(j) => sel(&format!("{pt}{{job=\"{j}\"}}")),
                    None => sel(pt),
                };
                let merged = q.merge(&ProfileQuery::new(selector, range)).await.unwrap();
                let got = folded_map(&FrameProfile::resolve(&merged));
                prop_assert_eq!(got, naive(&profiles, pt, job, range));
            }
            Ok(())
        })?;
    }
}

fn sample_profiles() -> Vec<Profile> {
    vec![
        Profile::new(
            CPU,
            &[("job", "api"), ("instance", "a:1")],
            10,
            &[(&["work", "handle", "main"], 50), (&["gc", "main"], 10)],
        ),
        Profile::new(
            CPU,
            &[("job", "api"), ("instance", "b:1")],
            20,
            &[
                (&["work", "handle", "main"], 30),
                (&["parse", "handle", "main"], 20),
            ],
        ),
        Profile::new(
            CPU,
            &[("job", "db"), ("instance", "c:1")],
            30,
            &[(&["query", "main"], 40)],
        ),
        Profile::new(
            HEAP,
            &[("job", "api"), ("instance", "a:1")],
            10,
            &[(&["alloc", "main"], 100)],
        ),
        Profile::new(
            HEAP,
            &[("job", "api"), ("instance", "a:1")],
            15,
            &[(&["alloc", "main"], 300)],
        ),
        Profile::new(
            HEAP,
            &[("job", "api"), ("instance", "a:1")],
            25,
            &[(&["alloc", "main"], 200)],
        ),
    ]
}

#[tokio::test]
async fn group_by_diff_single_and_filters() {
    let s = store().await;
    append(&s.engine, &sample_profiles()).await;
    let q = QueryEngine::new(s.engine.clone());
    let all = TimeRange::new(0, 100);

    // Group by job: label frames at the root.
    let mut grouped = ProfileQuery::new(sel(CPU), all);
    grouped.group_by = vec!["job".into()];
    let m = q.merge(&grouped).await.unwrap();
    assert_eq!(m.groups.len(), 2);
    let f = folded_map(&FrameProfile::resolve(&m));
    assert_eq!(f["job=api;main;handle;work"], 80);
    assert_eq!(f["job=db;main;query"], 40);

    // Single profile at a timestamp.
    let single = q.single(&sel(CPU), 20).await.unwrap();
    assert_eq!(single.total(), 50);

    // Diff: instance b (compare) against instance a (base), different ranges.
    let base = ProfileQuery::new(
        sel(&format!("{CPU}{{instance=\"a:1\"}}")),
        TimeRange::new(0, 15),
    );
    let compare = ProfileQuery::new(
        sel(&format!("{CPU}{{instance=~\"b.*\"}}")),
        TimeRange::new(15, 100),
    );
    let d = q.diff(&base, &compare).await.unwrap();
    assert!(d.diff);
    assert_eq!((d.total(), d.base_total()), (50, 60));
    let fp = FrameProfile::resolve(&d);
    let top = report::top(&fp);
    let row = |name: &str| {
        top.iter()
            .find(|r| fp.frames[r.frame as usize].function == name)
            .unwrap()
            .clone()
    };
    assert_eq!((row("work").flat, row("work").base_flat), (30, 50));
    assert_eq!((row("gc").flat, row("gc").base_flat), (0, 10));
    assert_eq!((row("parse").flat, row("parse").base_flat), (20, 0));
    // Mismatched types are refused.
    let err = q
        .diff(&base, &ProfileQuery::new(sel(HEAP), all))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::InvalidQuery(m) if m.contains("a diff compares one profile type")),
        "{err}"
    );

    // Stack filters: keep stacks through `handle`, drop those with `parse`; hide `handle`.
    let m = q.merge(&ProfileQuery::new(sel(CPU), all)).await.unwrap();
    let filters = Filters {
        stacks: vec![
            StackFilter::Keep(FrameMatcher::contains(FrameField::Function, "handle")),
            StackFilter::Drop(FrameMatcher::regex(FrameField::Function, "^pa").unwrap()),
        ],
        hide_frames: vec![FrameMatcher::contains(FrameField::Function, "handle")],
        grouping: Grouping::Function,
    };
    let filtered = FrameProfile::resolve(&m).filter(&filters);
    assert_eq!(
        folded_map(&filtered),
        BTreeMap::from([("main;work".to_owned(), 80)])
    );
    assert_eq!(filtered.filtered, 150 - 80);
    let err = FrameMatcher::regex(FrameField::Function, "(").unwrap_err();
    assert!(
        matches!(&err, Error::InvalidFilter { filter, .. } if filter == "("),
        "{err}"
    );

    // Group by binary: one node for the whole stack.
    let by_binary = FrameProfile::resolve(&m).filter(&Filters {
        grouping: Grouping::Binary,
        ..Filters::default()
    });
    assert_eq!(
        folded_map(&by_binary),
        BTreeMap::from([("/bin/app".to_owned(), 150)])
    );

    // Matchers select series; an empty range is refused.
    let db = q
        .merge(&ProfileQuery::new(
            sel(&format!("{CPU}{{job!=\"api\"}}")),
            all,
        ))
        .await
        .unwrap();
    assert_eq!(db.total(), 40);
    let err = q
        .merge(&ProfileQuery::new(sel(CPU), TimeRange::new(5, 5)))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::InvalidQuery(m) if m.contains("empty time range")),
        "{err}"
    );
    let _ = LabelMatcher::equal("job", "api");
}

#[tokio::test]
async fn range_buckets_sum_deltas_and_take_last_or_mean_of_gauges() {
    let s = store().await;
    append(&s.engine, &sample_profiles()).await;
    s.engine.flush().await.unwrap();
    let q = QueryEngine::new(s.engine.clone());
    let range = |selector: &str, sum_by: Option<Vec<String>>, aggregation| RangeQuery {
        selector: sel(selector),
        start_ns: 0,
        end_ns: 40,
        step_ns: 20,
        sum_by,
        aggregation,
    };
    // CPU per series, 20 ns buckets: a:1 has 60 at t=10 -> bucket 0; b:1 50 at 20 -> bucket 1.
    let per_series = q.range(&range(CPU, None, None)).await.unwrap();
    assert_eq!(per_series.len(), 3);
    let a = per_series
        .iter()
        .find(|s| s.labels.contains(&("instance".into(), "a:1".into())))
        .unwrap();
    assert_eq!(a.points.len(), 1);
    assert_eq!((a.points[0].timestamp_ns, a.points[0].value), (0, 60.0));
    // Profiles of 10 s in a 20 ns bucket: per second over the profile duration.
    assert_eq!(a.points[0].value_per_second, 60.0 / 10.0);
    // Profiles without a duration: a rate over a bucket of a second or more, none (0) under.
    let instant = {
        let mut p = Profile::new(CPU, &[("job", "instant")], 1_000, &[(&["main"], 40)]);
        p.duration_ns = 0;
        p
    };
    append(&s.engine, &[instant]).await;
    for (step_ns, rate) in [(1, 0.0), (2_000_000_000, 20.0)] {
        let q = RangeQuery {
            step_ns,
            end_ns: 2_000_000_000,
            ..range(&format!("{CPU}{{job=\"instant\"}}"), None, None)
        };
        let series = QueryEngine::new(s.engine.clone()).range(&q).await.unwrap();
        assert_eq!(series[0].points[0].value, 40.0);
        assert_eq!(
            series[0].points[0].value_per_second, rate,
            "step {step_ns} ns"
        );
    }
    // sum by job: api has 60 in bucket 0 and 50 in bucket 1; db 40 in bucket 1.
    let by_job = q
        .range(&range(CPU, Some(vec!["job".into()]), None))
        .await
        .unwrap();
    type Line = (Vec<(String, String)>, Vec<(i64, f64)>);
    let values: Vec<Line> = by_job
        .iter()
        .map(|s| {
            (
                s.labels.clone(),
                s.points.iter().map(|p| (p.timestamp_ns, p.value)).collect(),
            )
        })
        .collect();
    assert_eq!(
        values,
        vec![
            (
                vec![("job".into(), "api".into())],
                vec![(0, 60.0), (20, 50.0)]
            ),
            (vec![("job".into(), "db".into())], vec![(20, 40.0)]),
        ]
    );
    // Heap (a gauge): the last snapshot per bucket by default, or the mean; never the sum.
    let last = q.range(&range(HEAP, Some(vec![]), None)).await.unwrap();
    let points: Vec<(i64, f64)> = last[0]
        .points
        .iter()
        .map(|p| (p.timestamp_ns, p.value))
        .collect();
    assert_eq!(points, vec![(0, 300.0), (20, 200.0)]);
    let mean = q
        .range(&range(HEAP, Some(vec![]), Some(RangeAggregation::Mean)))
        .await
        .unwrap();
    assert_eq!(mean[0].points[0].value, 200.0);
    assert_eq!(mean[0].points[0].profiles, 2);
    // Bad arguments are refused.
    let mut bad = range(CPU, None, None);
    bad.step_ns = 0;
    let err = q.range(&bad).await.unwrap_err();
    assert!(
        matches!(&err, Error::InvalidQuery(m) if m.contains("step must be positive")),
        "{err}"
    );
}
