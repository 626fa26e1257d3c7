//! Push payloads into engine batches: Parca WriteRaw and Pyroscope Push, all or nothing.

use strata_ingest::{
    DecodeLimits, DeltaTracker, Error, PprofBuilder, parca_write_raw, pyroscope_push,
};
use strata_proto::parca::{Label, LabelSet, RawProfileSeries, RawSample, WriteRawRequest};
use strata_proto::pyroscope::{push::v1 as push, types::v1 as types};

fn cpu_profile(samples: i64) -> Vec<u8> {
    let mut b = PprofBuilder::new(
        &[("samples", "count"), ("cpu", "nanoseconds")],
        ("cpu", "nanoseconds"),
        10_000_000,
    );
    b.time(1_700_000_000_000_000_000, 0)
        .sample(&["main"], &[samples, samples * 10_000_000], &[]);
    b.encode()
}

fn labels(pairs: &[(&str, &str)]) -> Option<LabelSet> {
    Some(LabelSet {
        labels: pairs
            .iter()
            .map(|(n, v)| Label {
                name: n.to_string(),
                value: v.to_string(),
            })
            .collect(),
    })
}

#[test]
fn parca_write_raw_becomes_one_batch() {
    let req = WriteRawRequest {
        series: vec![
            RawProfileSeries {
                labels: labels(&[("__name__", "process_cpu"), ("job", "a")]),
                samples: vec![RawSample {
                    raw_profile: cpu_profile(3),
                }],
            },
            RawProfileSeries {
                labels: labels(&[("__name__", "process_cpu"), ("job", "b")]),
                samples: vec![RawSample {
                    raw_profile: cpu_profile(4),
                }],
            },
        ],
        ..Default::default()
    };
    let batch = parca_write_raw(
        &req,
        &DecodeLimits::default(),
        0,
        &mut DeltaTracker::new(10),
    )
    .unwrap();
    assert_eq!(batch.series().len(), 2);
    assert_eq!(batch.num_samples(), 4);
}

#[test]
fn one_bad_profile_refuses_the_whole_request() {
    let mut bad = cpu_profile(1);
    bad.truncate(bad.len() - 4);
    let req = WriteRawRequest {
        series: vec![
            RawProfileSeries {
                labels: labels(&[("__name__", "process_cpu")]),
                samples: vec![RawSample {
                    raw_profile: cpu_profile(3),
                }],
            },
            RawProfileSeries {
                labels: labels(&[("__name__", "process_cpu")]),
                samples: vec![RawSample { raw_profile: bad }],
            },
        ],
        ..Default::default()
    };
    let err = parca_write_raw(
        &req,
        &DecodeLimits::default(),
        0,
        &mut DeltaTracker::new(10),
    )
    .unwrap_err();
    assert!(matches!(err, Error::Protobuf(_)), "{err}");
    let no_name = WriteRawRequest {
        series: vec![RawProfileSeries {
            labels: labels(&[("job", "x")]),
            samples: vec![RawSample {
                raw_profile: cpu_profile(1),
            }],
        }],
        ..Default::default()
    };
    let err = parca_write_raw(
        &no_name,
        &DecodeLimits::default(),
        0,
        &mut DeltaTracker::new(10),
    )
    .unwrap_err();
    assert!(matches!(err, Error::MissingName), "{err}");
}

#[test]
fn pyroscope_push_keeps_service_name() {
    let req = push::PushRequest {
        series: vec![push::RawProfileSeries {
            labels: vec![
                types::LabelPair {
                    name: "__name__".into(),
                    value: "process_cpu".into(),
                },
                types::LabelPair {
                    name: "service_name".into(),
                    value: "checkout".into(),
                },
            ],
            samples: vec![push::RawSample {
                raw_profile: cpu_profile(2),
                id: "1".into(),
            }],
            annotations: vec![],
        }],
    };
    let batch = pyroscope_push(
        &req,
        &DecodeLimits::default(),
        0,
        &mut DeltaTracker::new(10),
    )
    .unwrap();
    assert_eq!(batch.series()[0].get("service_name"), Some("checkout"));
    let types: Vec<String> = batch
        .profile_types()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        types[1],
        "process_cpu:cpu:nanoseconds:cpu:nanoseconds:delta"
    );
}
