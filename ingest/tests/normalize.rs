//! Normalizing pprof: profile types named as Parca names them, labels, zero values, stacks.

mod common;

use arrow::array::AsArray;
use common::go_cpu_profile;
use strata_ingest::{ProfileSource, normalize};
use strata_proto::pprof::{Function, Line, Location, Profile, Sample, ValueType};

#[test]
fn go_cpu_profile_normalizes_like_parca() {
    let source = ProfileSource::from_labels(
        [
            ("__name__".to_string(), "process_cpu".to_string()),
            ("job".to_string(), "api".to_string()),
        ],
        0,
    )
    .unwrap();
    let batch = normalize(&go_cpu_profile(), &source).unwrap();
    let types: Vec<String> = batch
        .profile_types()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        types,
        vec![
            "process_cpu:samples:count:cpu:nanoseconds:delta",
            "process_cpu:cpu:nanoseconds:cpu:nanoseconds:delta"
        ]
    );
    let series: Vec<String> = batch.series().iter().map(ToString::to_string).collect();
    assert_eq!(
        series,
        vec![
            r#"{exported_job="handler", job="api"}"#,
            r#"{job="api", span="handler"}"#,
            r#"{job="api"}"#,
        ]
    );
    // Zero values are dropped: 2 + 2 + 0 + 1 samples.
    assert_eq!(batch.num_samples(), 5);
    let rb = batch.to_record_batch().unwrap();
    let values = rb
        .column_by_name("value")
        .unwrap()
        .as_primitive::<arrow::datatypes::Int64Type>();
    let mut v: Vec<i64> = values.values().to_vec();
    v.sort();
    assert_eq!(v, vec![1, 2, 3, 10_000_000, 30_000_000]);
    let ts = rb
        .column_by_name("timestamp_ns")
        .unwrap()
        .as_primitive::<arrow::datatypes::Int64Type>();
    assert!(ts.values().iter().all(|&t| t == 1_700_000_000_000_000_000));
    // Stacks are leaf first and carry symbols.
    let sym = batch.symbols();
    assert_eq!(sym.stacks.len(), 3);
    assert_eq!(sym.functions.len(), 2);
    assert!(sym.locations.iter().all(|l| l.is_symbolized()));
}

#[test]
fn bad_references_and_missing_name_are_clear_errors() {
    let mut p = go_cpu_profile();
    p.sample[0].location_id.push(99);
    let source =
        ProfileSource::from_labels([("__name__".to_string(), "process_cpu".to_string())], 0)
            .unwrap();
    let err = normalize(&p, &source).unwrap_err();
    assert!(err.to_string().contains("unknown location 99"), "{err}");
    let mut p = go_cpu_profile();
    p.function[0].name = 1000;
    let err = normalize(&p, &source).unwrap_err();
    assert!(err.to_string().contains("string 1000"), "{err}");
    let mut p = go_cpu_profile();
    p.sample[1].value.pop();
    let err = normalize(&p, &source).unwrap_err();
    assert!(
        err.to_string().contains("has 1 values for 2 sample types"),
        "{err}"
    );
    let err = ProfileSource::from_labels([("job".to_string(), "x".to_string())], 0).unwrap_err();
    assert!(err.to_string().contains("missing __name__"), "{err}");
}

#[test]
fn tables_without_ids_are_referenced_by_position() {
    // .NET's exporter leaves function ids at 0; locations refer to functions by position + 1.
    let mut p = go_cpu_profile();
    for f in &mut p.function {
        f.id = 0;
    }
    let source =
        ProfileSource::from_labels([("__name__".to_string(), "process_cpu".to_string())], 0)
            .unwrap();
    let batch = normalize(&p, &source).unwrap();
    let names: Vec<&str> = batch
        .symbols()
        .functions
        .iter()
        .map(|f| f.name.as_str())
        .collect();
    assert_eq!(names, vec!["main", "work"]);
    assert_eq!(batch.num_samples(), 5);
}

/// A Go heap profile at `time` whose `alloc_space` total for the one stack is `alloc`.
fn go_heap_profile(time: i64, alloc: i64, inuse: i64) -> Profile {
    let strings: Vec<String> = ["", "alloc_space", "inuse_space", "bytes", "space", "main"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    Profile {
        sample_type: vec![
            ValueType { r#type: 1, unit: 3 },
            ValueType { r#type: 2, unit: 3 },
        ],
        period_type: Some(ValueType { r#type: 4, unit: 3 }),
        period: 524288,
        time_nanos: time,
        function: vec![Function {
            id: 1,
            name: 5,
            ..Default::default()
        }],
        location: vec![Location {
            id: 1,
            line: vec![Line {
                function_id: 1,
                line: 1,
                column: 0,
            }],
            ..Default::default()
        }],
        sample: vec![Sample {
            location_id: vec![1],
            value: vec![alloc, inuse],
            label: vec![],
        }],
        string_table: strings,
        ..Default::default()
    }
}

#[test]
fn cumulative_profiles_also_yield_deltas_with_resets_detected() {
    use strata_engine::SampleBatchBuilder;
    use strata_ingest::{DeltaTracker, normalize_with_deltas};
    let source =
        ProfileSource::from_labels([("__name__".to_string(), "memory".to_string())], 0).unwrap();
    let mut tracker = DeltaTracker::new(1000);
    let delta_rows = |p: &Profile, tracker: &mut DeltaTracker| -> Vec<(String, i64, i64)> {
        let mut b = SampleBatchBuilder::new();
        normalize_with_deltas(p, &source, tracker, &mut b).unwrap();
        let batch = b.build().unwrap();
        let rb = batch.to_record_batch().unwrap();
        let pts = rb
            .column_by_name("profile_type")
            .unwrap()
            .as_string::<i32>();
        let dur = rb
            .column_by_name("duration_ns")
            .unwrap()
            .as_primitive::<arrow::datatypes::Int64Type>();
        let val = rb
            .column_by_name("value")
            .unwrap()
            .as_primitive::<arrow::datatypes::Int64Type>();
        (0..rb.num_rows())
            .filter(|&i| pts.value(i).ends_with(":delta"))
            .map(|i| (pts.value(i).to_string(), dur.value(i), val.value(i)))
            .collect()
    };
    let s = 1_000_000_000i64;
    // First sight: a baseline only.
    assert!(delta_rows(&go_heap_profile(10 * s, 1000, 300), &mut tracker).is_empty());
    // Ten seconds later, 500 more bytes allocated; in-use (a gauge) gets no delta.
    assert_eq!(
        delta_rows(&go_heap_profile(20 * s, 1500, 200), &mut tracker),
        vec![(
            "memory:alloc_space:bytes:space:bytes:delta".to_string(),
            10 * s,
            500
        )]
    );
    // The process restarted: totals went down, the new totals are the increase.
    assert_eq!(
        delta_rows(&go_heap_profile(30 * s, 120, 100), &mut tracker),
        vec![(
            "memory:alloc_space:bytes:space:bytes:delta".to_string(),
            10 * s,
            120
        )]
    );
}
