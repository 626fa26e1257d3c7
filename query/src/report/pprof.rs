//! pprof export: the profile as `perftools.profiles.Profile`, gzipped, for `go tool pprof`
//! (and, for CPU profiles at line grouping, `go build -pgo`).

use std::io::Write;

use prost::Message;
use rustc_hash::FxHashMap;
use strata_proto::pprof as pb;

use crate::frames::FrameProfile;

/// A string table under construction.
struct Strings {
    table: Vec<String>,
    index: FxHashMap<String, i64>,
}

impl Strings {
    fn new() -> Self {
        let mut s = Strings {
            table: Vec::new(),
            index: FxHashMap::default(),
        };
        s.id("");
        s
    }

    fn id(&mut self, v: &str) -> i64 {
        if let Some(&i) = self.index.get(v) {
            return i;
        }
        let i = self.table.len() as i64;
        self.table.push(v.to_owned());
        self.index.insert(v.to_owned(), i);
        i
    }
}

/// The profile as a pprof message: one sample type (the profile type's), one location per
/// frame, a mapping per binary. Label-group frames become sample labels. For a diff each
/// sample's value is `value - base`.
pub fn pprof_profile(p: &FrameProfile) -> pb::Profile {
    let mut s = Strings::new();
    let pt = &p.profile_type;
    let sample_type = vec![pb::ValueType {
        r#type: s.id(&pt.sample_type),
        unit: s.id(&pt.sample_unit),
    }];
    let period_type = Some(pb::ValueType {
        r#type: s.id(&pt.period_type),
        unit: s.id(&pt.period_unit),
    });
    let mut mappings: Vec<pb::Mapping> = Vec::new();
    let mut mapping_ids: FxHashMap<(&str, &str), u64> = FxHashMap::default();
    let mut functions: Vec<pb::Function> = Vec::new();
    let mut function_ids: FxHashMap<(&str, &str, &str, i64), u64> = FxHashMap::default();
    // Location of each code frame (0 for label frames).
    let mut location_of = vec![0u64; p.frames.len()];
    let mut locations = Vec::new();
    for (i, f) in p.frames.iter().enumerate() {
        if f.is_label {
            continue;
        }
        let mapping_id = if f.binary.is_empty() && f.build_id.is_empty() {
            0
        } else {
            let next = mappings.len() as u64 + 1;
            let id = *mapping_ids
                .entry((f.binary.as_str(), f.build_id.as_str()))
                .or_insert(next);
            if id == next {
                mappings.push(pb::Mapping {
                    id,
                    filename: s.id(&f.binary),
                    build_id: s.id(&f.build_id),
                    has_functions: true,
                    has_filenames: true,
                    has_line_numbers: true,
                    ..Default::default()
                });
            }
            id
        };
        let line = if f.function.is_empty() {
            Vec::new()
        } else {
            let next = functions.len() as u64 + 1;
            let id = *function_ids
                .entry((
                    f.function.as_str(),
                    f.system_name.as_str(),
                    f.file.as_str(),
                    f.start_line,
                ))
                .or_insert(next);
            if id == next {
                let system_name = if f.system_name.is_empty() {
                    &f.function
                } else {
                    &f.system_name
                };
                functions.push(pb::Function {
                    id,
                    name: s.id(&f.function),
                    system_name: s.id(system_name),
                    filename: s.id(&f.file),
                    start_line: f.start_line,
                });
            }
            vec![pb::Line {
                function_id: id,
                line: f.line,
                column: 0,
            }]
        };
        let id = locations.len() as u64 + 1;
        locations.push(pb::Location {
            id,
            mapping_id,
            address: f.address,
            line,
            is_folded: false,
        });
        location_of[i] = id;
    }
    let mut samples = Vec::with_capacity(p.stacks.len());
    for st in &p.stacks {
        let v = st.value - st.base;
        if v == 0 {
            continue;
        }
        let mut location_id = Vec::with_capacity(st.frames.len());
        let mut label = Vec::new();
        for &f in &st.frames {
            let frame = &p.frames[f as usize];
            if frame.is_label {
                let (k, val) = frame.function.split_once('=').unwrap_or((&frame.function, ""));
                label.push(pb::Label {
                    key: s.id(k),
                    str: s.id(val),
                    ..Default::default()
                });
            } else {
                location_id.push(location_of[f as usize]);
            }
        }
        samples.push(pb::Sample {
            location_id,
            value: vec![v],
            label,
        });
    }
    let finite = p.range.start > i64::MIN && p.range.end < i64::MAX;
    pb::Profile {
        sample_type,
        sample: samples,
        mapping: mappings,
        location: locations,
        function: functions,
        string_table: std::mem::take(&mut s.table),
        time_nanos: if finite { p.range.start } else { 0 },
        duration_nanos: if finite {
            p.range.end.saturating_sub(p.range.start)
        } else {
            0
        },
        period_type,
        period: p.period,
        ..Default::default()
    }
}

/// The gzipped pprof bytes of [`pprof_profile`].
pub fn pprof(p: &FrameProfile) -> Vec<u8> {
    let raw = pprof_profile(p).encode_to_vec();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&raw).expect("writing to a Vec cannot fail");
    gz.finish().expect("writing to a Vec cannot fail")
}
