//! A store with synthetic profiles for the query tests: stacks are lists of function names
//! (leaf first), each function in `app.go` of `/bin/app`.
#![allow(dead_code)]

pub mod golden;

use std::collections::BTreeMap;

use strata_engine::{
    Engine, EngineConfig, Function, Labels, Line, Location, Mapping, ProfileType, SampleBatch,
    SampleBatchBuilder, SampleRow,
};

pub const CPU: &str = "process_cpu:cpu:nanoseconds:cpu:nanoseconds:delta";
pub const HEAP: &str = "memory:inuse_space:bytes:space:bytes";

/// An open engine in a temporary directory (no background tasks).
pub struct Store {
    pub dir: tempfile::TempDir,
    pub engine: Engine,
}

pub async fn store() -> Store {
    let dir = tempfile::tempdir().unwrap();
    let mut c = EngineConfig::new(dir.path());
    c.background = false;
    let engine = Engine::open(c).await.unwrap();
    Store { dir, engine }
}

/// One profile: a type, series labels, a timestamp and (stack, value) pairs.
#[derive(Clone, Debug)]
pub struct Profile {
    pub profile_type: String,
    pub labels: Vec<(String, String)>,
    pub timestamp_ns: i64,
    /// 10 s unless a test sets it.
    pub duration_ns: i64,
    pub samples: Vec<(Vec<String>, i64)>,
}

impl Profile {
    pub fn new(pt: &str, labels: &[(&str, &str)], ts: i64, samples: &[(&[&str], i64)]) -> Self {
        Profile {
            profile_type: pt.to_owned(),
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            timestamp_ns: ts,
            duration_ns: 10_000_000_000,
            samples: samples
                .iter()
                .map(|(s, v)| (s.iter().map(|f| f.to_string()).collect(), *v))
                .collect(),
        }
    }
}

/// The profiles as one engine batch.
pub fn batch(profiles: &[Profile]) -> SampleBatch {
    let mut b = SampleBatchBuilder::new();
    let mapping = b.mapping(Mapping {
        build_id: "app-build-id".into(),
        filename: "/bin/app".into(),
        memory_start: 0x1000,
        memory_limit: 0x100000,
        file_offset: 0,
    });
    let mut locs = BTreeMap::new();
    for p in profiles {
        let pt: ProfileType = p.profile_type.parse().unwrap();
        let ptr = b.profile_type(&pt);
        let series = b.series(Labels::new(p.labels.clone()).unwrap());
        for (stack, value) in &p.samples {
            let ids: Vec<_> = stack
                .iter()
                .map(|name| {
                    *locs.entry(name.clone()).or_insert_with(|| {
                        let f = b.function(Function {
                            name: name.clone(),
                            system_name: name.clone(),
                            filename: "app.go".into(),
                            start_line: 10,
                        });
                        // A distinct address per function.
                        let address = 0x1000
                            + name
                                .bytes()
                                .fold(0u64, |h, c| h.wrapping_mul(31) + c as u64)
                                % 0xf000;
                        b.location(Location {
                            mapping_id: mapping,
                            address,
                            lines: vec![Line {
                                function_id: f,
                                line: 12,
                            }],
                        })
                    })
                })
                .collect();
            let stack = b.stack(&ids);
            b.sample(SampleRow {
                profile_type: ptr,
                series,
                timestamp_ns: p.timestamp_ns,
                duration_ns: p.duration_ns,
                period: 10_000_000,
                stack,
                value: *value,
            });
        }
    }
    b.build().unwrap()
}

pub async fn append(engine: &Engine, profiles: &[Profile]) {
    engine.append(&batch(profiles)).await.unwrap();
}

pub fn sel(s: &str) -> strata_query::Selector {
    strata_query::parse_selector(s).unwrap()
}
