//! OTLP profiles against pprof, differentially: the same profile written as an OTLP request
//! (request-wide dictionary, stack table, index 0 the zero value) and as a pprof profile gives
//! the same samples, series, stacks and symbols. Plus OTLP's own rules: the type's name from
//! the period type, attributes as labels, out-of-range indices refused.

use arrow::array::{Array, AsArray};
use arrow::datatypes::{Int64Type, UInt64Type};
use proptest::prelude::*;
use strata_engine::SampleBatch;
use strata_ingest::{DeltaTracker, PprofBuilder, ProfileSource, normalize, otlp_export};
use strata_proto::otlp::collector::profiles::v1development::ExportProfilesServiceRequest;
use strata_proto::otlp::common::v1::{AnyValue, KeyValue, any_value};
use strata_proto::otlp::profiles::v1development as p;
use strata_proto::otlp::resource::v1::Resource;

type Row = (String, Vec<(String, String)>, i64, i64, i64, u64, i64);

/// Every sample of a batch, sorted: (type, labels, time, duration, period, stack id, value).
fn rows(batch: &SampleBatch) -> Vec<Row> {
    let rb = batch.to_record_batch().unwrap();
    let types = rb.column(0).as_string::<i32>();
    let labels = rb.column(1).as_map();
    let int = |i: usize| rb.column(i).as_primitive::<Int64Type>().clone();
    let (ts, dur, period, value) = (int(2), int(3), int(4), int(6));
    let stack = rb.column(5).as_primitive::<UInt64Type>();
    let mut out: Vec<Row> = (0..rb.num_rows())
        .map(|i| {
            let entry = labels.value(i);
            let (k, v) = (
                entry.column(0).as_string::<i32>(),
                entry.column(1).as_string::<i32>(),
            );
            let mut l: Vec<_> = (0..k.len())
                .map(|j| (k.value(j).to_owned(), v.value(j).to_owned()))
                .collect();
            l.sort();
            (
                types.value(i).to_owned(),
                l,
                ts.value(i),
                dur.value(i),
                period.value(i),
                stack.value(i),
                value.value(i),
            )
        })
        .collect();
    out.sort();
    out
}

fn string_value(s: &str) -> Option<AnyValue> {
    Some(AnyValue {
        value: Some(any_value::Value::StringValue(s.to_owned())),
    })
}

/// A sample: stack (function indices into `FUNCTIONS`, leaf first), value, thread label.
type TestSample = (Vec<usize>, i64, Option<usize>);

const FUNCTIONS: [&str; 6] = ["main", "serve", "handle", "parse", "hash", "alloc"];
const THREADS: [&str; 2] = ["worker-1", "worker-2"];
const TIME: i64 = 1_700_000_000_000_000_000;

/// The samples as one OTLP request: one resource (`service.name` = `svc`), one CPU profile.
fn otlp_request(samples: &[TestSample]) -> ExportProfilesServiceRequest {
    let mut strings: Vec<String> = vec!["".into()];
    let mut s = |x: &str| {
        strings.iter().position(|y| y == x).unwrap_or_else(|| {
            strings.push(x.to_owned());
            strings.len() - 1
        }) as i32
    };
    let mut d = p::ProfilesDictionary {
        mapping_table: vec![p::Mapping::default()],
        location_table: vec![p::Location::default()],
        function_table: vec![p::Function::default()],
        attribute_table: vec![p::KeyValueAndUnit::default()],
        stack_table: vec![p::Stack::default()],
        ..Default::default()
    };
    for name in FUNCTIONS {
        let n = s(name);
        d.function_table.push(p::Function {
            name_strindex: n,
            system_name_strindex: n,
            ..Default::default()
        });
        d.location_table.push(p::Location {
            lines: vec![p::Line {
                function_index: d.function_table.len() as i32 - 1,
                ..Default::default()
            }],
            ..Default::default()
        });
    }
    for t in THREADS {
        d.attribute_table.push(p::KeyValueAndUnit {
            key_strindex: s("thread.name"),
            value: string_value(t),
            unit_strindex: 0,
        });
    }
    let mut profile = p::Profile {
        sample_type: Some(p::ValueType {
            type_strindex: s("samples"),
            unit_strindex: s("count"),
        }),
        period_type: Some(p::ValueType {
            type_strindex: s("cpu"),
            unit_strindex: s("nanoseconds"),
        }),
        period: 10_000_000,
        time_unix_nano: TIME as u64,
        duration_nano: 10_000_000_000,
        ..Default::default()
    };
    for (stack, value, thread) in samples {
        d.stack_table.push(p::Stack {
            location_indices: stack.iter().map(|&f| f as i32 + 1).collect(),
        });
        profile.samples.push(p::Sample {
            stack_index: d.stack_table.len() as i32 - 1,
            attribute_indices: thread.iter().map(|&t| t as i32 + 1).collect(),
            values: vec![*value],
            ..Default::default()
        });
    }
    d.string_table = strings;
    ExportProfilesServiceRequest {
        resource_profiles: vec![p::ResourceProfiles {
            resource: Some(Resource {
                attributes: vec![KeyValue {
                    key: "service.name".into(),
                    value: string_value("svc"),
                    key_strindex: 0,
                }],
                ..Default::default()
            }),
            scope_profiles: vec![p::ScopeProfiles {
                profiles: vec![profile],
                ..Default::default()
            }],
            schema_url: String::new(),
        }],
        dictionary: Some(d),
    }
}

/// The same samples as a pprof profile pushed with `__name__` = `process_cpu`.
fn pprof_batch(samples: &[TestSample]) -> SampleBatch {
    let mut b = PprofBuilder::new(&[("samples", "count")], ("cpu", "nanoseconds"), 10_000_000);
    b.time(TIME, 10_000_000_000);
    for (stack, value, thread) in samples {
        let names: Vec<&str> = stack.iter().map(|&f| FUNCTIONS[f]).collect();
        let labels: Vec<(&str, &str)> = thread
            .iter()
            .map(|&t| ("thread_name", THREADS[t]))
            .collect();
        b.sample(&names, &[*value], &labels);
    }
    let source = ProfileSource::from_labels(
        [
            ("__name__".to_owned(), "process_cpu".to_owned()),
            ("service_name".to_owned(), "svc".to_owned()),
        ],
        0,
    )
    .unwrap();
    normalize(&b.build(), &source).unwrap()
}

fn samples() -> impl Strategy<Value = Vec<TestSample>> {
    proptest::collection::vec(
        (
            proptest::collection::vec(0..FUNCTIONS.len(), 1..6),
            0i64..5,
            proptest::option::of(0..THREADS.len()),
        ),
        0..30,
    )
}

proptest! {
    #[test]
    fn otlp_and_pprof_of_the_same_profile_store_the_same(samples in samples()) {
        let otlp = otlp_export(&otlp_request(&samples), 0, &mut DeltaTracker::new(8)).unwrap();
        let pprof = pprof_batch(&samples);
        prop_assert_eq!(rows(&otlp), rows(&pprof));
        let mut a = otlp.stack_ids().to_vec();
        let mut b = pprof.stack_ids().to_vec();
        a.sort();
        a.dedup();
        b.sort();
        b.dedup();
        prop_assert!(b.iter().all(|id| a.contains(id)), "every stored stack is defined");
    }
}

#[test]
fn names_labels_and_errors() {
    let samples: Vec<TestSample> = vec![(vec![4, 0], 2, Some(0))];
    let batch = otlp_export(&otlp_request(&samples), 0, &mut DeltaTracker::new(8)).unwrap();
    let r = rows(&batch);
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].0, "process_cpu:samples:count:cpu:nanoseconds:delta");
    assert_eq!(
        r[0].1,
        [
            ("service_name".to_owned(), "svc".to_owned()),
            ("thread_name".to_owned(), "worker-1".to_owned())
        ]
    );

    // No service.name: `unknown_service`, as OpenTelemetry SDKs default it; a heap profile is
    // named `memory`; keys that sanitize alike keep the first.
    let mut req = otlp_request(&samples);
    let rp = &mut req.resource_profiles[0];
    rp.resource.as_mut().unwrap().attributes = vec![
        KeyValue {
            key: "host.name".into(),
            value: string_value("a"),
            key_strindex: 0,
        },
        KeyValue {
            key: "host_name".into(),
            value: string_value("b"),
            key_strindex: 0,
        },
    ];
    let d = req.dictionary.as_mut().unwrap();
    d.string_table.extend([
        "inuse_space".to_owned(),
        "bytes".to_owned(),
        "space".to_owned(),
    ]);
    let n = d.string_table.len() as i32;
    let profile = &mut rp.scope_profiles[0].profiles[0];
    profile.sample_type = Some(p::ValueType {
        type_strindex: n - 3,
        unit_strindex: n - 2,
    });
    profile.period_type = Some(p::ValueType {
        type_strindex: n - 1,
        unit_strindex: n - 2,
    });
    let r = rows(&otlp_export(&req, 0, &mut DeltaTracker::new(8)).unwrap());
    assert_eq!(r[0].0, "memory:inuse_space:bytes:space:bytes");
    assert_eq!(
        r[0].1,
        [
            ("host_name".to_owned(), "a".to_owned()),
            ("service_name".to_owned(), "unknown_service".to_owned()),
            ("thread_name".to_owned(), "worker-1".to_owned())
        ]
    );

    // Out-of-range indices are refused with what referred where.
    for (edit, says) in [
        (
            Box::new(|r: &mut ExportProfilesServiceRequest| {
                r.resource_profiles[0].scope_profiles[0].profiles[0].samples[0].stack_index = 7
            }) as Box<dyn Fn(&mut ExportProfilesServiceRequest)>,
            "sample 0's stack refers to entry 7",
        ),
        (
            Box::new(|r: &mut ExportProfilesServiceRequest| {
                r.dictionary.as_mut().unwrap().stack_table[1].location_indices[0] = 99
            }),
            "refers to entry 99",
        ),
        (
            Box::new(|r: &mut ExportProfilesServiceRequest| {
                r.dictionary.as_mut().unwrap().function_table[1].name_strindex = -1
            }),
            "a function's name refers to entry -1",
        ),
        (
            Box::new(|r: &mut ExportProfilesServiceRequest| {
                r.resource_profiles[0].scope_profiles[0].profiles[0].samples[0].attribute_indices =
                    vec![40]
            }),
            "an attribute index refers to entry 40",
        ),
    ] {
        let mut req = otlp_request(&samples);
        edit(&mut req);
        let err = otlp_export(&req, 0, &mut DeltaTracker::new(8))
            .unwrap_err()
            .to_string();
        assert!(err.contains(says), "{err}");
    }
}
