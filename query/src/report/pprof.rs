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
    // A location per run of frames that came from one location (inlined frames and the
    // frame they were inlined into), so `go tool pprof` still sees them as inlined.
    let mut locations: Vec<pb::Location> = Vec::new();
    let mut location_ids: FxHashMap<Vec<u32>, u64> = FxHashMap::default();
    let mut samples = Vec::with_capacity(p.stacks.len());
    let mut run: Vec<u32> = Vec::new();
    for st in &p.stacks {
        let v = st.value - st.base;
        if v == 0 {
            continue;
        }
        let mut location_id = Vec::with_capacity(st.frames.len());
        let mut label = Vec::new();
        for (i, &id) in st.frames.iter().enumerate() {
            let frame = &p.frames[id as usize];
            if frame.is_label {
                let (k, val) = frame
                    .function
                    .split_once('=')
                    .unwrap_or((&frame.function, ""));
                label.push(pb::Label {
                    key: s.id(k),
                    str: s.id(val),
                    ..Default::default()
                });
                continue;
            }
            run.push(id);
            let next_is_code = st
                .frames
                .get(i + 1)
                .is_some_and(|&n| !p.frames[n as usize].is_label);
            if frame.inlined && next_is_code {
                continue;
            }
            let next = locations.len() as u64 + 1;
            let loc = *location_ids.entry(run.clone()).or_insert(next);
            if loc == next {
                let outer = &p.frames[*run.last().expect("a run has a frame") as usize];
                let mapping_id = if outer.binary.is_empty() && outer.build_id.is_empty() {
                    0
                } else {
                    let next = mappings.len() as u64 + 1;
                    let id = *mapping_ids
                        .entry((outer.binary.as_str(), outer.build_id.as_str()))
                        .or_insert(next);
                    if id == next {
                        mappings.push(pb::Mapping {
                            id,
                            filename: s.id(&outer.binary),
                            build_id: s.id(&outer.build_id),
                            has_functions: true,
                            has_filenames: true,
                            has_line_numbers: true,
                            has_inline_frames: true,
                            ..Default::default()
                        });
                    }
                    id
                };
                let mut line = Vec::with_capacity(run.len());
                for &fid in &run {
                    let f = &p.frames[fid as usize];
                    if f.function.is_empty() {
                        continue;
                    }
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
                    line.push(pb::Line {
                        function_id: id,
                        line: f.line,
                        column: 0,
                    });
                }
                locations.push(pb::Location {
                    id: loc,
                    mapping_id,
                    address: outer.address,
                    line,
                    is_folded: false,
                });
            }
            run.clear();
            location_id.push(loc);
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
