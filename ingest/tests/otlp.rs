//! OTLP profiles against pprof, differentially: the same profile written as an OTLP request
//! (request-wide dictionary, stack table, index 0 the zero value) and as a pprof profile gives
//! the same samples, series, stacks and symbols. Plus OTLP's own rules: the type's name from
//! the period type, attributes as labels, out-of-range indices refused.

mod common;

use common::{FUNCTIONS, THREADS, TIME, TestSample, attribute, otlp_request, rows, set_types};
use proptest::prelude::*;
use strata_engine::SampleBatch;
use strata_ingest::{DeltaTracker, PprofBuilder, ProfileSource, normalize, otlp_export};
use strata_proto::otlp::collector::profiles::v1development::ExportProfilesServiceRequest;

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
    req.resource_profiles[0]
        .resource
        .as_mut()
        .unwrap()
        .attributes = vec![attribute("host.name", "a"), attribute("host_name", "b")];
    set_types(&mut req, 0, ("inuse_space", "bytes"), ("space", "bytes"));
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
