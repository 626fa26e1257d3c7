//! A pprof profile as an OTLP `ExportProfilesServiceRequest` (profiles v1development), the way
//! an OpenTelemetry exporter sends it: one dictionary (strings, mappings, functions, locations,
//! stacks), one OTLP profile per pprof sample type, the series labels as resource attributes.

use std::collections::HashMap;

use strata_proto::otlp::collector::profiles::v1development::ExportProfilesServiceRequest;
use strata_proto::otlp::common::v1::{AnyValue, KeyValue, any_value};
use strata_proto::otlp::profiles::v1development as otlp;
use strata_proto::otlp::resource::v1::Resource;
use strata_proto::pprof;

/// Index of `id` in a pprof table keyed by id (OTLP tables are indexed, entry 0 being none).
fn positions(ids: impl Iterator<Item = u64>) -> HashMap<u64, i32> {
    ids.enumerate().map(|(i, id)| (id, i as i32 + 1)).collect()
}

/// `profile` (decoded pprof) under the resource attributes `labels`.
pub fn export_request(
    profile: &pprof::Profile,
    labels: &[(String, String)],
) -> ExportProfilesServiceRequest {
    let mut strings = profile.string_table.clone();
    if strings.is_empty() {
        strings.push(String::new());
    }
    let s = |i: i64| i32::try_from(i).unwrap_or(0);
    let mappings = positions(profile.mapping.iter().map(|m| m.id));
    let functions = positions(profile.function.iter().map(|f| f.id));
    let locations = positions(profile.location.iter().map(|l| l.id));
    let mut dict = otlp::ProfilesDictionary {
        string_table: strings,
        mapping_table: vec![otlp::Mapping::default()],
        function_table: vec![otlp::Function::default()],
        location_table: vec![otlp::Location::default()],
        stack_table: vec![otlp::Stack::default()],
        attribute_table: vec![otlp::KeyValueAndUnit::default()],
        ..Default::default()
    };
    dict.mapping_table
        .extend(profile.mapping.iter().map(|m| otlp::Mapping {
            memory_start: m.memory_start,
            memory_limit: m.memory_limit,
            file_offset: m.file_offset,
            filename_strindex: s(m.filename),
            attribute_indices: vec![],
        }));
    dict.function_table
        .extend(profile.function.iter().map(|f| otlp::Function {
            name_strindex: s(f.name),
            system_name_strindex: s(f.system_name),
            filename_strindex: s(f.filename),
            start_line: f.start_line,
        }));
    dict.location_table.extend(profile.location.iter().map(|l| {
        otlp::Location {
            mapping_index: mappings.get(&l.mapping_id).copied().unwrap_or(0),
            address: l.address,
            lines: l
                .line
                .iter()
                .map(|line| otlp::Line {
                    function_index: functions.get(&line.function_id).copied().unwrap_or(0),
                    line: line.line,
                    column: 0,
                })
                .collect(),
            attribute_indices: vec![],
        }
    }));
    dict.stack_table.extend(profile.sample.iter().map(|sample| {
        otlp::Stack {
            location_indices: sample
                .location_id
                .iter()
                .map(|id| locations.get(id).copied().unwrap_or(0))
                .collect(),
        }
    }));
    let period_type = profile.period_type.unwrap_or_default();
    let profiles = profile
        .sample_type
        .iter()
        .enumerate()
        .map(|(t, st)| otlp::Profile {
            sample_type: Some(otlp::ValueType {
                type_strindex: s(st.r#type),
                unit_strindex: s(st.unit),
            }),
            period_type: Some(otlp::ValueType {
                type_strindex: s(period_type.r#type),
                unit_strindex: s(period_type.unit),
            }),
            period: profile.period,
            time_unix_nano: profile.time_nanos as u64,
            duration_nano: profile.duration_nanos as u64,
            samples: profile
                .sample
                .iter()
                .enumerate()
                .filter(|(_, sample)| sample.value.get(t).is_some_and(|&v| v != 0))
                .map(|(n, sample)| otlp::Sample {
                    stack_index: n as i32 + 1,
                    values: vec![sample.value[t]],
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        })
        .collect();
    let attributes = labels
        .iter()
        .map(|(k, v)| KeyValue {
            key: k.clone(),
            value: Some(AnyValue {
                value: Some(any_value::Value::StringValue(v.clone())),
            }),
            ..Default::default()
        })
        .collect();
    ExportProfilesServiceRequest {
        resource_profiles: vec![otlp::ResourceProfiles {
            resource: Some(Resource {
                attributes,
                ..Default::default()
            }),
            scope_profiles: vec![otlp::ScopeProfiles {
                profiles,
                ..Default::default()
            }],
            ..Default::default()
        }],
        dictionary: Some(dict),
    }
}
