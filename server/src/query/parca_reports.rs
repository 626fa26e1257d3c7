//! Parca's reports from a frame profile: the TOP table, the call graph and the flame graph in
//! Parca's table form, with each frame's Parca metadata.

use strata_proto::parca::metastore::v1alpha1 as meta;
use strata_proto::parca::query::v1alpha1 as pb;
use strata_query::FrameProfile;
use strata_query::report::{self, CallGraph, FlameGraph, FlameGraphOptions};

/// The Parca metadata of a frame.
fn frame_meta(
    f: &strata_query::Frame,
) -> (meta::Location, meta::Mapping, meta::Function, meta::Line) {
    // An unsymbolized frame is named as the UI shows it, `<binary> 0x<address>`, so that
    // Parca's TOP table and call graph never show an empty name.
    let function = meta::Function {
        start_line: f.start_line,
        name: f.display_name(),
        system_name: f.system_name.clone(),
        filename: f.file.clone(),
        ..Default::default()
    };
    let mapping = meta::Mapping {
        file: f.binary.clone(),
        build_id: f.build_id.clone(),
        has_functions: !f.function.is_empty(),
        ..Default::default()
    };
    let line = meta::Line {
        line: f.line,
        ..Default::default()
    };
    let location = meta::Location {
        address: f.address,
        lines: if f.function.is_empty() {
            vec![]
        } else {
            vec![line.clone()]
        },
        ..Default::default()
    };
    (location, mapping, function, line)
}

pub(crate) fn top(p: &FrameProfile) -> pb::Top {
    let rows = report::top(p);
    pb::Top {
        reported: rows.len() as i32,
        total: rows.len() as i32,
        unit: p.profile_type.sample_unit.clone(),
        list: rows
            .into_iter()
            .map(|r| {
                let (location, mapping, function, line) = frame_meta(&p.frames[r.frame as usize]);
                pb::TopNode {
                    meta: Some(pb::TopNodeMeta {
                        location: Some(location),
                        mapping: Some(mapping),
                        function: Some(function),
                        line: Some(line),
                    }),
                    cumulative: r.cumulative,
                    flat: r.flat,
                    diff: if p.diff {
                        r.cumulative - r.base_cumulative
                    } else {
                        0
                    },
                }
            })
            .collect(),
    }
}

pub(crate) fn callgraph(p: &FrameProfile) -> pb::Callgraph {
    let g = CallGraph::build(p);
    pb::Callgraph {
        cumulative: g.total,
        nodes: g
            .nodes
            .iter()
            .enumerate()
            .map(|(i, n)| {
                let (location, mapping, function, line) = frame_meta(&p.frames[n.frame as usize]);
                pb::CallgraphNode {
                    id: i.to_string(),
                    meta: Some(pb::CallgraphNodeMeta {
                        location: Some(location),
                        mapping: Some(mapping),
                        function: Some(function),
                        line: Some(line),
                    }),
                    cumulative: n.cumulative,
                    flat: n.flat,
                }
            })
            .collect(),
        edges: g
            .edges
            .iter()
            .enumerate()
            .map(|(i, e)| pb::CallgraphEdge {
                id: i.to_string(),
                source: e.source.to_string(),
                target: e.target.to_string(),
                cumulative: e.cumulative,
                is_collapsed: false,
            })
            .collect(),
    }
}

/// The flame graph in Parca's table form: nodes carry their metadata and 1-based indexes into
/// the `locations` table (0 = none), whose functions and mappings sit in their own tables with
/// names in `string_table`.
pub(crate) fn flamegraph(p: &FrameProfile, threshold_percent: f32) -> pb::Flamegraph {
    let fg = FlameGraph::build(
        p,
        &FlameGraphOptions {
            min_fraction: f64::from(threshold_percent.max(0.0)) / 100.0,
            max_nodes: 0,
        },
    );
    let mut strings = vec![String::new()];
    let mut string_index = std::collections::HashMap::new();
    let mut intern = |s: &str| -> u32 {
        *string_index.entry(s.to_owned()).or_insert_with(|| {
            strings.push(s.to_owned());
            (strings.len() - 1) as u32
        })
    };
    let mut locations = Vec::with_capacity(fg.frames.len());
    let mut functions = Vec::with_capacity(fg.frames.len());
    let mut mappings = Vec::with_capacity(fg.frames.len());
    for f in &fg.frames {
        let (mut location, mut mapping, mut function, line) = frame_meta(f);
        function.name_string_index = intern(&f.display_name());
        function.system_name_string_index = intern(&f.system_name);
        function.filename_string_index = intern(&f.file);
        mapping.file_string_index = intern(&f.binary);
        mapping.build_id_string_index = intern(&f.build_id);
        functions.push(function);
        mappings.push(mapping);
        location.mapping_index = mappings.len() as u32;
        location.lines = vec![meta::Line {
            function_index: functions.len() as u32,
            ..line
        }];
        locations.push(location);
    }
    fn node(
        fg: &FlameGraph,
        i: u32,
        diff: bool,
        locations: &[meta::Location],
        mappings: &[meta::Mapping],
        functions: &[meta::Function],
    ) -> pb::FlamegraphNode {
        let n = &fg.nodes[i as usize];
        let f = n.frame as usize;
        pb::FlamegraphNode {
            meta: Some(pb::FlamegraphNodeMeta {
                location: Some(locations[f].clone()),
                mapping: Some(mappings[f].clone()),
                function: Some(functions[f].clone()),
                line: locations[f].lines.first().cloned(),
                location_index: f as u32 + 1,
                line_index: 0,
            }),
            cumulative: n.cumulative,
            diff: if diff {
                n.cumulative - n.base_cumulative
            } else {
                0
            },
            children: n
                .children
                .iter()
                .map(|&c| node(fg, c, diff, locations, mappings, functions))
                .collect(),
        }
    }
    let root = &fg.nodes[0];
    let pruned: i64 = fg.nodes.iter().map(|n| n.pruned).sum();
    pb::Flamegraph {
        root: Some(pb::FlamegraphRootNode {
            cumulative: root.cumulative,
            diff: if fg.diff {
                root.cumulative - root.base_cumulative
            } else {
                0
            },
            children: root
                .children
                .iter()
                .map(|&c| node(&fg, c, fg.diff, &locations, &mappings, &functions))
                .collect(),
        }),
        total: fg.total,
        unit: p.profile_type.sample_unit.clone(),
        height: fg.height as i32,
        string_table: strings,
        locations,
        mapping: mappings,
        function: functions,
        untrimmed_total: fg.total,
        trimmed: pruned,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unsymbolized_frame_is_named_by_its_binary_and_address() {
        let frame = strata_query::Frame {
            binary: "/usr/local/bin/app".into(),
            build_id: "abcd".into(),
            address: 0x401a2c,
            ..Default::default()
        };
        let (location, mapping, function, _) = frame_meta(&frame);
        assert_eq!(function.name, "app 0x401a2c");
        assert!(!mapping.has_functions);
        assert_eq!(location.address, 0x401a2c);
        let symbolized = strata_query::Frame {
            function: "main".into(),
            ..frame
        };
        assert_eq!(frame_meta(&symbolized).2.name, "main");
    }
}
