//! Golden files for the conversions users' tools depend on: one fixed request per push
//! protocol (Pyroscope `Push`, Parca `WriteRaw`, OTLP `Export`) and Pyroscope's legacy
//! `/ingest` (application name + folded stacks), each written as its normalized rows and
//! symbol tables in `tests/golden/<name>.txt`. Re-bless with
//! `STRATA_BLESS=1 cargo test -p strata-ingest --test golden`.
//!
//! Each fixture has several stacks, labels (pprof labels and OTLP attributes with dotted
//! OpenTelemetry names, which ingest sanitizes: `otel.scope.name` -> `otel_scope_name`) and,
//! where the protocol carries them, two profiles of a cumulative type ten seconds apart, so
//! the `:delta` rows of the second appear.

mod common;

use common::golden::check;
use common::{
    FUNCTIONS, TIME, TestSample, attribute, go_cpu_profile, otlp_request, render, set_types,
};
use prost::Message;
use strata_engine::{Labels, ProfileType, SampleBatchBuilder};
use strata_ingest::{
    DecodeLimits, DeltaTracker, PprofBuilder, folded_into, otlp_export, parca_write_raw,
    parse_app_name, parse_folded, pyroscope_push,
};
use strata_proto::parca::{Label, LabelSet, RawProfileSeries, RawSample, WriteRawRequest};
use strata_proto::pyroscope::{push::v1 as push, types::v1 as types};

const SECOND: i64 = 1_000_000_000;

/// A Go CPU profile from a Pyroscope SDK: samples and CPU time, pprof labels (one dotted).
fn cpu_profile() -> Vec<u8> {
    let mut b = PprofBuilder::new(
        &[("samples", "count"), ("cpu", "nanoseconds")],
        ("cpu", "nanoseconds"),
        10_000_000,
    );
    b.time(TIME, 10 * SECOND)
        .sample(
            &["hash", "handle", "serve", "main"],
            &[3, 30_000_000],
            &[("otel.scope.name", "checkout/handler")],
        )
        .sample(
            &["parse", "handle", "serve", "main"],
            &[2, 20_000_000],
            &[("span_name", "GET /cart")],
        )
        .sample(&["serve", "main"], &[1, 10_000_000], &[])
        // All zero: dropped.
        .sample(&["gc", "main"], &[0, 0], &[]);
    b.encode()
}

/// A Go heap profile at `time`: cumulative `alloc_*` totals scaled by `scale`, `inuse_*`
/// gauges. The `main` stack's totals never grow, so it has no delta.
fn heap_profile(time: i64, scale: i64) -> Vec<u8> {
    let mut b = PprofBuilder::new(
        &[
            ("alloc_objects", "count"),
            ("alloc_space", "bytes"),
            ("inuse_objects", "count"),
            ("inuse_space", "bytes"),
        ],
        ("space", "bytes"),
        524_288,
    );
    b.time(time, 0)
        .sample(
            &["newBuffer", "encode", "handle", "main"],
            &[10 * scale, 40_960 * scale, 2, 8_192],
            &[],
        )
        .sample(
            &["parseJSON", "handle", "main"],
            &[5 * scale, 1_024 * scale, 0, 0],
            &[],
        )
        .sample(&["main"], &[1, 512, 1, 512], &[]);
    b.encode()
}

#[test]
fn pyroscope_push_request() {
    let labels = |pairs: &[(&str, &str)]| {
        pairs
            .iter()
            .map(|(n, v)| types::LabelPair {
                name: n.to_string(),
                value: v.to_string(),
            })
            .collect()
    };
    let sample = |raw_profile: Vec<u8>, id: &str| push::RawSample {
        raw_profile,
        id: id.into(),
    };
    // Series labels keep their names as given, OpenTelemetry's dotted ones included (what the
    // Pyroscope SDKs send since 2026: `otel.scope.name`, `process.runtime.name`).
    let req = push::PushRequest {
        series: vec![
            push::RawProfileSeries {
                labels: labels(&[
                    ("__name__", "process_cpu"),
                    ("service_name", "checkout"),
                    ("pyroscope_spy", "gospy"),
                    ("otel.scope.name", "com.grafana.pyroscope/go"),
                    ("process.runtime.name", "go"),
                ]),
                samples: vec![sample(cpu_profile(), "cpu-1")],
                annotations: vec![],
            },
            push::RawProfileSeries {
                labels: labels(&[("__name__", "memory"), ("service_name", "checkout")]),
                samples: vec![
                    sample(heap_profile(TIME, 1), "heap-1"),
                    sample(heap_profile(TIME + 10 * SECOND, 3), "heap-2"),
                ],
                annotations: vec![],
            },
        ],
    };
    let batch = pyroscope_push(
        &req,
        &DecodeLimits::default(),
        0,
        &mut DeltaTracker::new(10),
    )
    .unwrap();
    check("pyroscope_push.txt", &render(&batch));
}

#[test]
fn parca_write_raw_request() {
    let labels = |pairs: &[(&str, &str)]| {
        Some(LabelSet {
            labels: pairs
                .iter()
                .map(|(n, v)| Label {
                    name: n.to_string(),
                    value: v.to_string(),
                })
                .collect(),
        })
    };
    let sample = |raw_profile| RawSample { raw_profile };
    let req = WriteRawRequest {
        series: vec![
            RawProfileSeries {
                labels: labels(&[
                    ("__name__", "process_cpu"),
                    ("job", "api"),
                    ("instance", "10.0.0.7:7070"),
                ]),
                samples: vec![sample(go_cpu_profile().encode_to_vec())],
            },
            RawProfileSeries {
                labels: labels(&[("__name__", "memory"), ("job", "api")]),
                samples: vec![
                    sample(heap_profile(TIME, 1)),
                    sample(heap_profile(TIME + 10 * SECOND, 3)),
                ],
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
    check("parca_write_raw.txt", &render(&batch));
}

#[test]
fn otlp_export_request() {
    // Stacks are indices into FUNCTIONS, leaf first; the last sample is 0 and dropped.
    let samples: Vec<TestSample> = vec![
        (vec![4, 2, 1, 0], 3, Some(0)),
        (vec![3, 2, 1, 0], 2, Some(1)),
        (vec![1, 0], 1, None),
        (vec![5, 4, 2, 1, 0], 0, None),
    ];
    assert_eq!(
        FUNCTIONS,
        ["main", "serve", "handle", "parse", "hash", "alloc"]
    );
    let mut req = otlp_request(&samples);
    req.resource_profiles[0]
        .resource
        .as_mut()
        .unwrap()
        .attributes = vec![
        attribute("service.name", "checkout"),
        attribute("service.version", "1.4.2"),
        attribute("otel.scope.name", "go.opentelemetry.io/ebpf-profiler"),
    ];
    // Two cumulative allocation profiles ten seconds apart, of the same stacks.
    let cpu = req.resource_profiles[0].scope_profiles[0].profiles[0].clone();
    for (time, values) in [
        (TIME, [4_096, 1_024, 512, 0]),
        (TIME + 10 * SECOND, [12_288, 1_024, 2_048, 0]),
    ] {
        let mut alloc = cpu.clone();
        alloc.time_unix_nano = time as u64;
        alloc.duration_nano = 0;
        alloc.period = 524_288;
        for (s, v) in alloc.samples.iter_mut().zip(values) {
            s.values = vec![v];
        }
        let profiles = &mut req.resource_profiles[0].scope_profiles[0].profiles;
        profiles.push(alloc);
        let i = profiles.len() - 1;
        set_types(&mut req, i, ("alloc_space", "bytes"), ("space", "bytes"));
    }
    let batch = otlp_export(&req, 0, &mut DeltaTracker::new(10)).unwrap();
    check("otlp_export.txt", &render(&batch));
}

#[test]
fn pyroscope_app_name_and_folded() {
    // Application names as `/ingest?name=` carries them; labels keep their names as given.
    let mut out = String::from("# application names: service_name, kind, labels\n");
    for name in [
        "checkout.cpu{env=prod,region=eu-west-1}",
        "my.app.alloc_space{otel.scope.name=go.opentelemetry.io/otel, service.name=cart}",
        "plain",
    ] {
        let a = parse_app_name(name).unwrap();
        out += &format!(
            "{name}\n    service_name={:?} kind={:?} labels={:?}\n",
            a.service_name, a.kind, a.labels
        );
    }
    // `/ingest?name=checkout.cpu{env=prod,otel.scope.name=python,region=eu-west-1}&from=…&until=…+10&sampleRate=100`
    // with a folded body, as the server stores it: a CPU profile of the app (`service_name`)
    // and its labels (a dotted name kept as given), one sample every 10 ms.
    let app =
        parse_app_name("checkout.cpu{env=prod,otel.scope.name=python,region=eu-west-1}").unwrap();
    let mut labels = app.labels.clone();
    labels.push(("service_name".into(), app.service_name.clone()));
    let stacks = parse_folded(
        "main;serve;handle;hash 30\nmain;serve;handle;parse 20\nmain;serve 10\nmain;gc 0\n",
    )
    .unwrap();
    let pt = ProfileType::new(
        "process_cpu",
        "samples",
        "count",
        "cpu",
        "nanoseconds",
        true,
    )
    .unwrap();
    let mut b = SampleBatchBuilder::new();
    folded_into(
        &stacks,
        &pt,
        Labels::new(labels).unwrap(),
        TIME,
        10 * SECOND,
        SECOND / 100,
        &mut b,
    );
    out += "\n";
    out += &render(&b.build().unwrap());
    check("pyroscope_folded.txt", &out);
}
