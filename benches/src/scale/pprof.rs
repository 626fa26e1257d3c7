//! One process's interval as a pprof profile, from the workload's [`Program`]: the samples'
//! stacks with only the locations, functions and mappings they use, as an agent sends it
//! (sample type `samples/count`, period type `cpu/nanoseconds`).

use std::collections::HashMap;

use strata_proto::pprof as pb;

use crate::Program;

/// Builds pprof profiles over one [`Program`], reusing its scratch marks between profiles.
pub struct PprofEncoder<'p> {
    program: &'p Program,
    /// Per program location / function / mapping: the pprof id given in the current profile
    /// (`0`: not yet), valid while the matching `epoch` entry is the current profile's.
    location_id: Vec<(u64, u64)>,
    function_id: Vec<(u64, u64)>,
    mapping_id: Vec<(u64, u64)>,
    epoch: u64,
}

/// What one profile covers.
#[derive(Clone, Copy, Debug)]
pub struct ProfileWindow {
    /// Start of the interval (ns since the epoch).
    pub time_nanos: i64,
    /// Its length (ns).
    pub duration_nanos: i64,
    /// Sampling period (ns), e.g. 1/19 s.
    pub period: i64,
}

impl<'p> PprofEncoder<'p> {
    /// An encoder over `program`.
    pub fn new(program: &'p Program) -> Self {
        PprofEncoder {
            program,
            location_id: vec![(u64::MAX, 0); program.locations.len()],
            function_id: vec![(u64::MAX, 0); program.functions.len()],
            mapping_id: vec![(u64::MAX, 0); program.mappings.len()],
            epoch: 0,
        }
    }

    /// The profile of `samples`: (index into the program's stack pool, count).
    pub fn encode(&mut self, window: ProfileWindow, samples: &[(u32, u32)]) -> pb::Profile {
        self.epoch += 1;
        let epoch = self.epoch;
        let p = self.program;
        let mut strings = Strings::default();
        let mut out = pb::Profile {
            sample_type: vec![pb::ValueType {
                r#type: strings.id("samples"),
                unit: strings.id("count"),
            }],
            period_type: Some(pb::ValueType {
                r#type: strings.id("cpu"),
                unit: strings.id("nanoseconds"),
            }),
            period: window.period,
            time_nanos: window.time_nanos,
            duration_nanos: window.duration_nanos,
            ..Default::default()
        };
        for &(stack, count) in samples {
            let frames = &p.stacks[stack as usize];
            let mut ids = Vec::with_capacity(frames.len());
            for &l in frames {
                let l = l as usize;
                if self.location_id[l].0 != epoch {
                    let m = p.location_mapping[l];
                    if self.mapping_id[m].0 != epoch {
                        let mapping = &p.mappings[m];
                        let id = out.mapping.len() as u64 + 1;
                        out.mapping.push(pb::Mapping {
                            id,
                            memory_start: mapping.memory_start,
                            memory_limit: mapping.memory_limit,
                            file_offset: mapping.file_offset,
                            filename: strings.id(&mapping.filename),
                            build_id: strings.id(&mapping.build_id),
                            has_functions: true,
                            ..Default::default()
                        });
                        self.mapping_id[m] = (epoch, id);
                    }
                    let mut lines = Vec::with_capacity(p.location_functions[l].len());
                    for (&f, line) in p.location_functions[l].iter().zip(&p.locations[l].lines) {
                        if self.function_id[f].0 != epoch {
                            let function = &p.functions[f];
                            let id = out.function.len() as u64 + 1;
                            out.function.push(pb::Function {
                                id,
                                name: strings.id(&function.name),
                                system_name: strings.id(&function.system_name),
                                filename: strings.id(&function.filename),
                                start_line: function.start_line,
                            });
                            self.function_id[f] = (epoch, id);
                        }
                        lines.push(pb::Line {
                            function_id: self.function_id[f].1,
                            line: line.line,
                            ..Default::default()
                        });
                    }
                    let id = out.location.len() as u64 + 1;
                    out.location.push(pb::Location {
                        id,
                        mapping_id: self.mapping_id[m].1,
                        address: p.locations[l].address,
                        line: lines,
                        ..Default::default()
                    });
                    self.location_id[l] = (epoch, id);
                }
                ids.push(self.location_id[l].1);
            }
            out.sample.push(pb::Sample {
                location_id: ids,
                value: vec![i64::from(count)],
                ..Default::default()
            });
        }
        out.string_table = strings.table;
        out
    }
}

/// A pprof string table under construction (index 0 is the empty string).
struct Strings {
    table: Vec<String>,
    index: HashMap<String, i64>,
}

impl Default for Strings {
    fn default() -> Self {
        Strings {
            table: vec![String::new()],
            index: HashMap::from([(String::new(), 0)]),
        }
    }
}

impl Strings {
    fn id(&mut self, s: &str) -> i64 {
        if let Some(&i) = self.index.get(s) {
            return i;
        }
        let i = self.table.len() as i64;
        self.table.push(s.to_owned());
        self.index.insert(s.to_owned(), i);
        i
    }
}
