//! pprof export: the profile as `perftools.profiles.Profile`, gzipped, for `go tool pprof`
//! (and, for CPU profiles at line grouping, `go build -pgo`).

use std::io::Write;

use prost::Message;
use rustc_hash::FxHashMap;
use strata_proto::pprof as pb;

use crate::frames::{Frame, FrameProfile, FrameStack};

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

/// The mapping, function and location tables of a pprof message under construction, each
/// entry added once (ids are positions + 1).
struct Tables<'p> {
    frames: &'p [Frame],
    strings: Strings,
    mappings: Vec<pb::Mapping>,
    mapping_ids: FxHashMap<(&'p str, &'p str), u64>,
    functions: Vec<pb::Function>,
    function_ids: FxHashMap<(&'p str, &'p str, &'p str, i64), u64>,
    // A location per run of frames that came from one location (inlined frames and the
    // frame they were inlined into), so `go tool pprof` still sees them as inlined.
    locations: Vec<pb::Location>,
    location_ids: FxHashMap<Vec<u32>, u64>,
}

impl<'p> Tables<'p> {
    fn new(frames: &'p [Frame], strings: Strings) -> Self {
        Tables {
            frames,
            strings,
            mappings: Vec::new(),
            mapping_ids: FxHashMap::default(),
            functions: Vec::new(),
            function_ids: FxHashMap::default(),
            locations: Vec::new(),
            location_ids: FxHashMap::default(),
        }
    }

    /// The sample of `st` (`None` when its value is 0): its locations, and its label-group
    /// frames as labels.
    fn sample(&mut self, st: &FrameStack) -> Option<pb::Sample> {
        let v = st.value - st.base;
        if v == 0 {
            return None;
        }
        let frames = self.frames;
        let mut location_id = Vec::with_capacity(st.frames.len());
        let mut label = Vec::new();
        let mut run: Vec<u32> = Vec::new();
        for (i, &id) in st.frames.iter().enumerate() {
            let frame = &frames[id as usize];
            if frame.is_label {
                let (k, val) = frame
                    .function
                    .split_once('=')
                    .unwrap_or((&frame.function, ""));
                label.push(pb::Label {
                    key: self.strings.id(k),
                    str: self.strings.id(val),
                    ..Default::default()
                });
                continue;
            }
            run.push(id);
            let next_is_code = st
                .frames
                .get(i + 1)
                .is_some_and(|&n| !frames[n as usize].is_label);
            if frame.inlined && next_is_code {
                continue;
            }
            location_id.push(self.location(&run));
            run.clear();
        }
        Some(pb::Sample {
            location_id,
            value: vec![v],
            label,
        })
    }

    /// The location of a run of frames (inlined ones, then the one they were inlined into).
    fn location(&mut self, run: &[u32]) -> u64 {
        let next = self.locations.len() as u64 + 1;
        let loc = *self.location_ids.entry(run.to_vec()).or_insert(next);
        if loc != next {
            return loc;
        }
        let frames = self.frames;
        let outer = &frames[*run.last().expect("a run has a frame") as usize];
        let mapping_id = self.mapping(outer);
        let line = run
            .iter()
            .map(|&fid| &frames[fid as usize])
            .filter(|f| !f.function.is_empty())
            .map(|f| pb::Line {
                function_id: self.function(f),
                line: f.line,
                column: 0,
            })
            .collect();
        self.locations.push(pb::Location {
            id: loc,
            mapping_id,
            address: outer.address,
            line,
            is_folded: false,
        });
        loc
    }

    /// The mapping of `frame`'s binary (0 when it has none).
    fn mapping(&mut self, frame: &'p Frame) -> u64 {
        if frame.binary.is_empty() && frame.build_id.is_empty() {
            return 0;
        }
        let next = self.mappings.len() as u64 + 1;
        let id = *self
            .mapping_ids
            .entry((frame.binary.as_str(), frame.build_id.as_str()))
            .or_insert(next);
        if id == next {
            self.mappings.push(pb::Mapping {
                id,
                filename: self.strings.id(&frame.binary),
                build_id: self.strings.id(&frame.build_id),
                has_functions: true,
                has_filenames: true,
                has_line_numbers: true,
                has_inline_frames: true,
                ..Default::default()
            });
        }
        id
    }

    /// The function of `frame` (its system name defaults to its name).
    fn function(&mut self, f: &'p Frame) -> u64 {
        let next = self.functions.len() as u64 + 1;
        let id = *self
            .function_ids
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
            self.functions.push(pb::Function {
                id,
                name: self.strings.id(&f.function),
                system_name: self.strings.id(system_name),
                filename: self.strings.id(&f.file),
                start_line: f.start_line,
            });
        }
        id
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
    let mut t = Tables::new(&p.frames, s);
    let samples = p.stacks.iter().filter_map(|st| t.sample(st)).collect();
    let finite = p.range.start > i64::MIN && p.range.end < i64::MAX;
    pb::Profile {
        sample_type,
        sample: samples,
        mapping: t.mappings,
        location: t.locations,
        function: t.functions,
        string_table: t.strings.table,
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
