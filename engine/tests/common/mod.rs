//! Helpers shared by the engine's integration tests: a tiny batch DSL and a naive model.
#![allow(dead_code)]

pub mod s3;
pub mod store;

use std::collections::BTreeMap;

use strata_engine::{
    Engine, EngineConfig, Function, LabelMatcher, Labels, Line, Location, Mapping, ProfileType,
    SampleBatch, SampleBatchBuilder, SampleRow, ScanRequest, StackId, TimeRange,
};

/// The profile types tests use.
pub fn profile_types() -> Vec<ProfileType> {
    vec![
        "process_cpu:cpu:nanoseconds:cpu:nanoseconds:delta"
            .parse()
            .unwrap(),
        "memory:inuse_space:bytes:space:bytes".parse().unwrap(),
    ]
}

/// One sample as tests describe it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Row {
    pub pt: usize,
    pub labels: Vec<(String, String)>,
    pub ts: i64,
    /// Picks one of a few fixed stacks.
    pub stack: u8,
    pub value: i64,
}

/// The locations of test stack `k`: a chain of `k % 4 + 1` frames; even frames are
/// address-keyed (mapping + address), odd ones identified by their lines.
pub fn stack_of(b: &mut SampleBatchBuilder, k: u8) -> strata_engine::StackRef {
    let m = b.mapping(Mapping {
        build_id: "deadbeef".into(),
        filename: "/usr/bin/app".into(),
        memory_start: 0x1000,
        memory_limit: 0x9000,
        file_offset: 0,
    });
    let mut locs = Vec::new();
    for depth in 0..(k % 4 + 1) {
        let f = b.function(Function {
            name: format!("fn_{k}_{depth}"),
            system_name: format!("_Z{k}{depth}"),
            filename: "app.c".into(),
            start_line: depth as i64,
        });
        let loc = if depth % 2 == 0 {
            Location {
                mapping_id: m,
                address: 0x1000 + (k as u64) * 64 + depth as u64,
                lines: vec![Line {
                    function_id: f,
                    line: 10,
                }],
            }
        } else {
            Location {
                lines: vec![Line {
                    function_id: f,
                    line: 20 + k as i64,
                }],
                ..Default::default()
            }
        };
        locs.push(b.location(loc));
    }
    b.stack(&locs)
}

pub fn stack_id_of(k: u8) -> StackId {
    let mut b = SampleBatchBuilder::new();
    let r = stack_of(&mut b, k);
    b.stack_id(r)
}

pub fn batch(rows: &[Row]) -> SampleBatch {
    let types = profile_types();
    let mut b = SampleBatchBuilder::new();
    for r in rows {
        let pt = b.profile_type(&types[r.pt]);
        let series = b.series(Labels::new(r.labels.clone()).unwrap());
        let stack = stack_of(&mut b, r.stack);
        b.sample(SampleRow {
            profile_type: pt,
            series,
            timestamp_ns: r.ts,
            duration_ns: 10,
            period: 10,
            stack,
            value: r.value,
        });
    }
    b.build().unwrap()
}

/// A sample as read back: (labels rendered, timestamp, stack id, value).
pub type Seen = (String, i64, u64, i64);

pub async fn scan_all(
    engine: &Engine,
    pt: &ProfileType,
    matchers: Vec<LabelMatcher>,
    range: TimeRange,
) -> Vec<Seen> {
    let out = engine
        .scan(ScanRequest {
            profile_type: pt.clone(),
            matchers,
            range,
        })
        .await
        .unwrap();
    let series = out.series.clone();
    let mut rows = Vec::new();
    for b in out.collect().await.unwrap() {
        use arrow::array::AsArray;
        use arrow::datatypes::{Int64Type, UInt64Type};
        let sid = b.column(0).as_primitive::<UInt64Type>();
        let ts = b.column(1).as_primitive::<Int64Type>();
        let st = b.column(4).as_primitive::<UInt64Type>();
        let v = b.column(5).as_primitive::<Int64Type>();
        for i in 0..b.num_rows() {
            let labels = series
                .get(&strata_engine::SeriesId(sid.value(i)))
                .expect("series labels returned");
            rows.push((labels.to_string(), ts.value(i), st.value(i), v.value(i)));
        }
    }
    rows.sort();
    rows
}

/// What the naive model says the scan returns.
pub fn model_scan(
    model: &[Row],
    pt: usize,
    matchers: &[LabelMatcher],
    range: TimeRange,
) -> Vec<Seen> {
    let mut rows: Vec<Seen> = model
        .iter()
        .filter(|r| r.pt == pt && range.contains(r.ts))
        .filter_map(|r| {
            let labels = Labels::new(r.labels.clone()).unwrap();
            matchers
                .iter()
                .all(|m| m.matches_labels(&labels))
                .then(|| (labels.to_string(), r.ts, stack_id_of(r.stack).0, r.value))
        })
        .collect();
    rows.sort();
    rows
}

/// Label names the model holds for series matching `matchers`.
pub fn model_label_names(model: &[Row], matchers: &[LabelMatcher]) -> Vec<String> {
    let mut out: BTreeMap<String, ()> = BTreeMap::new();
    for r in model {
        let labels = Labels::new(r.labels.clone()).unwrap();
        if matchers.iter().all(|m| m.matches_labels(&labels)) {
            for l in labels.iter() {
                out.insert(l.name.clone(), ());
            }
        }
    }
    out.into_keys().collect()
}

/// A config for tests: no background task, small row groups.
pub fn test_config(dir: &std::path::Path) -> EngineConfig {
    let mut c = EngineConfig::new(dir);
    c.background = false;
    c.block.row_group_rows = 8;
    c.block.page_rows = 2;
    c
}
