//! Helpers shared by the ingest tests: a batch's rows and its readable rendering (for golden
//! files), an OTLP request and a Go CPU profile as fixtures.
#![allow(dead_code)]

#[path = "../../../query/tests/common/golden.rs"]
pub mod golden;

use std::collections::HashMap;
use std::fmt::Write;
use std::hash::Hash;

use arrow::array::{Array, AsArray};
use arrow::datatypes::{Int64Type, UInt64Type};
use strata_engine::{SampleBatch, StackId};
use strata_proto::otlp::collector::profiles::v1development::ExportProfilesServiceRequest;
use strata_proto::otlp::common::v1::{AnyValue, KeyValue, any_value};
use strata_proto::otlp::profiles::v1development as p;
use strata_proto::otlp::resource::v1::Resource;
use strata_proto::pprof::{Function, Label, Line, Location, Mapping, Profile, Sample, ValueType};

pub type Row = (String, Vec<(String, String)>, i64, i64, i64, u64, i64);

/// Every sample of a batch, sorted: (type, labels, time, duration, period, stack id, value).
pub fn rows(batch: &SampleBatch) -> Vec<Row> {
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

pub fn string_value(s: &str) -> Option<AnyValue> {
    Some(AnyValue {
        value: Some(any_value::Value::StringValue(s.to_owned())),
    })
}

/// A resource attribute with a string value.
pub fn attribute(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: string_value(value),
        key_strindex: 0,
    }
}

/// A sample: stack (function indices into `FUNCTIONS`, leaf first), value, thread label.
pub type TestSample = (Vec<usize>, i64, Option<usize>);

pub const FUNCTIONS: [&str; 6] = ["main", "serve", "handle", "parse", "hash", "alloc"];
pub const THREADS: [&str; 2] = ["worker-1", "worker-2"];
pub const TIME: i64 = 1_700_000_000_000_000_000;

/// The samples as one OTLP request: one resource (`service.name` = `svc`), one CPU profile.
pub fn otlp_request(samples: &[TestSample]) -> ExportProfilesServiceRequest {
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
                attributes: vec![attribute("service.name", "svc")],
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

/// Sets profile `i`'s sample and period types (`(type, unit)`), adding their strings to the
/// request's dictionary.
pub fn set_types(
    req: &mut ExportProfilesServiceRequest,
    i: usize,
    sample: (&str, &str),
    period: (&str, &str),
) {
    let strings = &mut req.dictionary.as_mut().unwrap().string_table;
    let mut s = |x: &str| {
        strings.iter().position(|y| y == x).unwrap_or_else(|| {
            strings.push(x.to_owned());
            strings.len() - 1
        }) as i32
    };
    let (sample_type, period_type) = (
        p::ValueType {
            type_strindex: s(sample.0),
            unit_strindex: s(sample.1),
        },
        p::ValueType {
            type_strindex: s(period.0),
            unit_strindex: s(period.1),
        },
    );
    let profile = &mut req.resource_profiles[0].scope_profiles[0].profiles[i];
    profile.sample_type = Some(sample_type);
    profile.period_type = Some(period_type);
}

/// A Go-like CPU profile: two sample types, three stacks, pprof labels.
pub fn go_cpu_profile() -> Profile {
    let strings: Vec<String> = [
        "",
        "samples",
        "count",
        "cpu",
        "nanoseconds",
        "main",
        "work",
        "/app/main.go",
        "/app/bin",
        "abc123",
        "job",
        "handler",
        "span",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let s = |x: &str| strings.iter().position(|y| y == x).unwrap() as i64;
    let label = |k: &str, v: &str| Label {
        key: s(k),
        str: s(v),
        ..Default::default()
    };
    Profile {
        sample_type: vec![
            ValueType {
                r#type: s("samples"),
                unit: s("count"),
            },
            ValueType {
                r#type: s("cpu"),
                unit: s("nanoseconds"),
            },
        ],
        period_type: Some(ValueType {
            r#type: s("cpu"),
            unit: s("nanoseconds"),
        }),
        period: 10_000_000,
        time_nanos: 1_700_000_000_000_000_000,
        duration_nanos: 10_000_000_000,
        mapping: vec![Mapping {
            id: 1,
            memory_start: 0x1000,
            memory_limit: 0x9000,
            filename: s("/app/bin"),
            build_id: s("abc123"),
            ..Default::default()
        }],
        function: vec![
            Function {
                id: 1,
                name: s("main"),
                system_name: s("main"),
                filename: s("/app/main.go"),
                start_line: 3,
            },
            Function {
                id: 2,
                name: s("work"),
                system_name: s("work"),
                filename: s("/app/main.go"),
                start_line: 9,
            },
        ],
        location: vec![
            Location {
                id: 10,
                mapping_id: 1,
                address: 0x1100,
                line: vec![Line {
                    function_id: 1,
                    line: 5,
                    column: 0,
                }],
                ..Default::default()
            },
            Location {
                id: 20,
                mapping_id: 1,
                address: 0x1200,
                line: vec![Line {
                    function_id: 2,
                    line: 11,
                    column: 0,
                }],
                ..Default::default()
            },
        ],
        sample: vec![
            Sample {
                location_id: vec![20, 10],
                value: vec![3, 30_000_000],
                label: vec![label("job", "handler")],
            },
            Sample {
                location_id: vec![10],
                value: vec![1, 10_000_000],
                label: vec![label("span", "handler")],
            },
            Sample {
                location_id: vec![10],
                value: vec![0, 0],
                label: vec![],
            },
            Sample {
                location_id: vec![20],
                value: vec![2, 0],
                label: vec![],
            },
        ],
        string_table: strings.clone(),
        ..Default::default()
    }
}

/// Each id's position in `ids`.
fn positions<K: Hash + Eq>(ids: impl Iterator<Item = K>) -> HashMap<K, usize> {
    ids.enumerate().map(|(i, id)| (id, i)).collect()
}

/// A batch as readable text: every sample row (sorted; labels sorted) with its stack spelled
/// out leaf first, then the mapping, function and location tables.
pub fn render(batch: &SampleBatch) -> String {
    let sy = batch.symbols();
    let mapping_index = positions(sy.mappings.iter().map(|m| m.id()));
    let function_index = positions(sy.functions.iter().map(|f| f.id()));
    let location_index = positions(sy.locations.iter().map(|l| l.id()));
    let stack_index = positions(batch.stack_ids().iter().copied());
    // A location as function names (inlined first), or its address when unsymbolized.
    let spell = |l: &strata_engine::Location| -> String {
        if l.lines.is_empty() {
            return format!("{:#x}", l.address);
        }
        let names: Vec<&str> = l
            .lines
            .iter()
            .map(|line| {
                sy.functions[function_index[&line.function_id]]
                    .name
                    .as_str()
            })
            .collect();
        names.join(" (inlined into) ")
    };
    let mut out = String::new();
    writeln!(
        out,
        "# samples: type {{labels}} time, duration, period, value; stack leaf first"
    )
    .unwrap();
    // Rows by type, labels, time and stack as spelled (stack ids are hashes).
    let mut samples: Vec<_> = rows(batch)
        .into_iter()
        .map(|(ty, labels, time, duration, period, stack, value)| {
            let labels: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
            let frames: Vec<String> = sy.stacks[stack_index[&StackId(stack)]]
                .iter()
                .map(|l| spell(&sy.locations[location_index[l]]))
                .collect();
            (ty, labels, time, frames, duration, period, value)
        })
        .collect();
    samples.sort();
    for (ty, labels, time, frames, duration, period, value) in samples {
        writeln!(
            out,
            "{ty} {{{}}} time={time} duration={duration} period={period} value={value}\n    {}",
            labels.join(", "),
            frames.join(", ")
        )
        .unwrap();
    }
    writeln!(
        out,
        "\n# mappings: build id, file, memory start..limit, file offset"
    )
    .unwrap();
    for (i, m) in sy.mappings.iter().enumerate() {
        writeln!(
            out,
            "m{i} build_id={:?} file={:?} memory={:#x}..{:#x} offset={:#x}",
            m.build_id, m.filename, m.memory_start, m.memory_limit, m.file_offset
        )
        .unwrap();
    }
    writeln!(out, "\n# functions: name, system name, file, start line").unwrap();
    for (i, f) in sy.functions.iter().enumerate() {
        writeln!(
            out,
            "f{i} {:?} system_name={:?} file={:?} start_line={}",
            f.name, f.system_name, f.filename, f.start_line
        )
        .unwrap();
    }
    writeln!(
        out,
        "\n# locations: mapping, address, lines (function:line, inlined first)"
    )
    .unwrap();
    for (i, l) in sy.locations.iter().enumerate() {
        let mapping = match mapping_index.get(&l.mapping_id) {
            Some(m) => format!("m{m}"),
            None => "-".to_owned(),
        };
        let lines: Vec<String> = l
            .lines
            .iter()
            .map(|line| format!("f{}:{}", function_index[&line.function_id], line.line))
            .collect();
        writeln!(
            out,
            "l{i} mapping={mapping} address={:#x} lines=[{}]",
            l.address,
            lines.join(", ")
        )
        .unwrap();
    }
    out
}
