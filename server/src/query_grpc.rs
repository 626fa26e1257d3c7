//! Parca's `parca.query.v1alpha1.QueryService` (native gRPC and gRPC-web under `/api`):
//! ProfileTypes, Labels, Values, QueryRange, and Query in modes SINGLE, MERGE and DIFF with the
//! reports PPROF, TOP, CALLGRAPH and FLAMEGRAPH_TABLE (also for FLAMEGRAPH_UNSPECIFIED).

use std::sync::Arc;

use strata_engine::TimeRange;
use strata_proto::parca::metastore::v1alpha1 as meta;
use strata_proto::parca::profilestore::v1alpha1::{Label, LabelSet};
use strata_proto::parca::query::v1alpha1 as pb;
use strata_proto::prost_types::Timestamp;
use strata_query::report::{CallGraph, FlameGraph, FlameGraphOptions};
use strata_query::{
    FrameField, FrameMatcher, FrameProfile, ProfileQuery, RangeQuery, StackFilter, report,
};
use tonic::{Request, Response, Status};

use crate::app::App;
use crate::query_api::{self, ProfileRequest, QueryError, Side, bad};

/// The QueryService over the app's store.
pub(crate) struct ParcaQuery(pub Arc<App>);

fn ns(t: Option<&Timestamp>, what: &str) -> Result<i64, QueryError> {
    let t = t.ok_or_else(|| bad(format!("{what} is required")))?;
    (t.seconds as i128 * 1_000_000_000 + t.nanos as i128)
        .try_into()
        .map_err(|_| bad(format!("{what} out of range")))
}

fn timestamp(ns: i64) -> Timestamp {
    Timestamp {
        seconds: ns.div_euclid(1_000_000_000),
        nanos: ns.rem_euclid(1_000_000_000) as i32,
    }
}

/// A range from optional timestamps (absent: unbounded).
fn optional_range(
    start: Option<&Timestamp>,
    end: Option<&Timestamp>,
) -> Result<TimeRange, QueryError> {
    Ok(TimeRange::new(
        start
            .map(|t| ns(Some(t), "start"))
            .transpose()?
            .unwrap_or(i64::MIN),
        end.map(|t| ns(Some(t), "end"))
            .transpose()?
            .unwrap_or(i64::MAX),
    ))
}

fn merge_side(app: &App, m: &pb::MergeProfile) -> Result<Side, QueryError> {
    let range = query_api::range(
        app,
        ns(m.start.as_ref(), "start")?,
        ns(m.end.as_ref(), "end")?,
    )?;
    Ok(Side::Merge(ProfileQuery::new(
        query_api::selector(&m.query)?,
        range,
    )))
}

fn single_side(s: &pb::SingleProfile) -> Result<Side, QueryError> {
    Ok(Side::Single(
        query_api::selector(&s.query)?,
        ns(s.time.as_ref(), "time")?,
    ))
}

fn diff_side(
    app: &App,
    s: Option<&pb::ProfileDiffSelection>,
    which: &str,
) -> Result<Side, QueryError> {
    use pb::profile_diff_selection::Options;
    match s.and_then(|s| s.options.as_ref()) {
        Some(Options::Merge(m)) => merge_side(app, m),
        Some(Options::Single(s)) => single_side(s),
        None => Err(bad(format!("diff selection {which} is missing"))),
    }
}

fn string_matcher(field: FrameField, c: &pb::StringCondition) -> Option<FrameMatcher> {
    use pb::string_condition::Condition as C;
    Some(match c.condition.as_ref()? {
        C::Equal(v) => FrameMatcher::equals(field, v),
        C::NotEqual(v) => FrameMatcher::equals(field, v).negate(),
        C::Contains(v) => FrameMatcher::contains(field, v.clone()),
        C::NotContains(v) => FrameMatcher::contains(field, v.clone()).negate(),
        C::StartsWith(v) => FrameMatcher::starts_with(field, v),
        C::NotStartsWith(v) => FrameMatcher::starts_with(field, v).negate(),
    })
}

fn criteria(c: &pb::FilterCriteria) -> Vec<FrameMatcher> {
    [
        (FrameField::Function, c.function_name.as_ref()),
        (FrameField::SystemName, c.system_name.as_ref()),
        (FrameField::Binary, c.binary.as_ref()),
        (FrameField::File, c.filename.as_ref()),
    ]
    .into_iter()
    .filter_map(|(f, c)| string_matcher(f, c?))
    .collect()
}

/// The request's filters: stack filters keep stacks with a frame meeting the criteria (a
/// function name filter with `exclude` drops them); frame filters keep only frames meeting
/// them (others hidden).
fn profile_request(app: &App, q: &pb::QueryRequest) -> Result<ProfileRequest, QueryError> {
    use pb::query_request::{Mode, Options};
    let relative = matches!(
        q.options.as_ref(),
        Some(Options::Diff(pb::DiffProfile {
            absolute: Some(false),
            ..
        }))
    );
    let (side, base) = match (q.mode(), q.options.as_ref()) {
        (Mode::Merge, Some(Options::Merge(m))) => (merge_side(app, m)?, None),
        (Mode::SingleUnspecified, Some(Options::Single(s))) => (single_side(s)?, None),
        (Mode::Diff, Some(Options::Diff(d))) => (
            diff_side(app, d.b.as_ref(), "b")?,
            Some(diff_side(app, d.a.as_ref(), "a")?),
        ),
        (mode, _) => {
            return Err(bad(format!(
                "mode {} needs its options (merge, single or diff)",
                mode.as_str_name()
            )));
        }
    };
    let (grouping, group_by_labels) =
        query_api::group_by(q.group_by.as_ref().map_or(&[][..], |g| &g.fields))?;
    let mut filters = strata_query::Filters {
        grouping,
        ..Default::default()
    };
    if let Some(f) = q.filter_query.as_deref().filter(|f| !f.is_empty()) {
        filters
            .stacks
            .push(StackFilter::Keep(FrameMatcher::contains(
                FrameField::Function,
                f,
            )));
    }
    for f in &q.filter {
        use pb::filter::Filter as F;
        match f.filter.as_ref() {
            Some(F::StackFilter(s)) => match s.filter.as_ref() {
                Some(pb::stack_filter::Filter::FunctionNameStackFilter(n)) => {
                    let m =
                        FrameMatcher::contains(FrameField::Function, n.function_to_filter.clone());
                    filters.stacks.push(if n.exclude {
                        StackFilter::Drop(m)
                    } else {
                        StackFilter::Keep(m)
                    });
                }
                Some(pb::stack_filter::Filter::Criteria(c)) => {
                    filters
                        .stacks
                        .extend(criteria(c).into_iter().map(StackFilter::Keep));
                }
                None => {}
            },
            Some(F::FrameFilter(fr)) => match fr.filter.as_ref() {
                Some(pb::frame_filter::Filter::BinaryFrameFilter(b)) => {
                    let any = b
                        .include_binaries
                        .iter()
                        .map(|s| regex_escape_alternative(s))
                        .collect::<Vec<_>>()
                        .join("|");
                    let m = FrameMatcher::regex(FrameField::Binary, &format!("(^|/)({any})$"))?;
                    filters.hide_frames.push(m.negate());
                }
                Some(pb::frame_filter::Filter::Criteria(c)) => {
                    filters
                        .hide_frames
                        .extend(criteria(c).into_iter().map(FrameMatcher::negate));
                }
                None => {}
            },
            None => {}
        }
    }
    Ok(ProfileRequest {
        side,
        base,
        filters,
        group_by_labels,
        relative,
    })
}

fn regex_escape_alternative(s: &str) -> String {
    strata_query::FrameMatcher::escape(s)
}

/// The Parca metadata of a frame.
fn frame_meta(
    f: &strata_query::Frame,
) -> (meta::Location, meta::Mapping, meta::Function, meta::Line) {
    let function = meta::Function {
        start_line: f.start_line,
        name: if f.function.is_empty() {
            String::new()
        } else {
            f.function.clone()
        },
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

fn top(p: &FrameProfile) -> pb::Top {
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

fn callgraph(p: &FrameProfile) -> pb::Callgraph {
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
fn flamegraph(p: &FrameProfile, threshold_percent: f32) -> pb::Flamegraph {
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

fn status(e: QueryError) -> Status {
    e.into()
}

#[tonic::async_trait]
impl pb::query_service_server::QueryService for ParcaQuery {
    async fn query_range(
        &self,
        request: Request<pb::QueryRangeRequest>,
    ) -> Result<Response<pb::QueryRangeResponse>, Status> {
        let store = self.0.store_of(request.extensions().get());
        let r = request.into_inner();
        let start = ns(r.start.as_ref(), "start").map_err(status)?;
        let end = ns(r.end.as_ref(), "end").map_err(status)?;
        query_api::range(&self.0, start, end).map_err(status)?;
        let selector = query_api::selector(&r.query).map_err(status)?;
        let step_ns = match &r.step {
            Some(d) if d.seconds > 0 || d.nanos > 0 => {
                d.seconds * 1_000_000_000 + i64::from(d.nanos)
            }
            // No step: one point per stored profile.
            _ => 1,
        };
        let pt = selector.profile_type.clone();
        let series = store
            .query
            .range(&RangeQuery {
                selector,
                start_ns: start,
                end_ns: end,
                step_ns,
                sum_by: (!r.sum_by.is_empty()).then(|| r.sum_by.clone()),
                aggregation: None,
            })
            .await
            .map_err(|e| status(e.into()))?;
        let limit = if r.limit == 0 {
            usize::MAX
        } else {
            r.limit as usize
        };
        Ok(Response::new(pb::QueryRangeResponse {
            series: series
                .into_iter()
                .take(limit)
                .map(|s| pb::MetricsSeries {
                    labelset: Some(LabelSet {
                        labels: s
                            .labels
                            .into_iter()
                            .map(|(name, value)| Label { name, value })
                            .collect(),
                    }),
                    samples: s
                        .points
                        .into_iter()
                        .map(|p| pb::MetricsSample {
                            timestamp: Some(timestamp(p.timestamp_ns)),
                            value: p.value.round() as i64,
                            value_per_second: p.value_per_second,
                            duration: p.duration_ns,
                            count: p.profiles as i32,
                        })
                        .collect(),
                    period_type: Some(pb::ValueType {
                        r#type: pt.period_type.clone(),
                        unit: pt.period_unit.clone(),
                    }),
                    sample_type: Some(pb::ValueType {
                        r#type: pt.sample_type.clone(),
                        unit: pt.sample_unit.clone(),
                    }),
                })
                .collect(),
        }))
    }

    async fn query(
        &self,
        request: Request<pb::QueryRequest>,
    ) -> Result<Response<pb::QueryResponse>, Status> {
        use pb::query_request::ReportType as R;
        use pb::query_response::Report;
        let store = self.0.store_of(request.extensions().get());
        let q = request.into_inner();
        let req = profile_request(&self.0, &q).map_err(status)?;
        let p = query_api::run(&self.0, &store, &req)
            .await
            .map_err(status)?;
        let report = match q.report_type() {
            R::Pprof => Report::Pprof(report::pprof(&p)),
            R::Top => Report::Top(top(&p)),
            R::Callgraph => Report::Callgraph(callgraph(&p)),
            R::FlamegraphTable | R::FlamegraphUnspecified => {
                Report::Flamegraph(flamegraph(&p, q.node_trim_threshold.unwrap_or(0.0)))
            }
            other => {
                return Err(Status::unimplemented(format!(
                    "report type {} is not supported; use PPROF, TOP, CALLGRAPH or FLAMEGRAPH_TABLE",
                    other.as_str_name()
                )));
            }
        };
        Ok(Response::new(pb::QueryResponse {
            report: Some(report),
            total: p.total(),
            filtered: p.filtered,
        }))
    }

    async fn series(
        &self,
        _request: Request<pb::SeriesRequest>,
    ) -> Result<Response<pb::SeriesResponse>, Status> {
        Ok(Response::new(pb::SeriesResponse {}))
    }

    async fn profile_types(
        &self,
        request: Request<pb::ProfileTypesRequest>,
    ) -> Result<Response<pb::ProfileTypesResponse>, Status> {
        let store = self.0.store_of(request.extensions().get());
        let r = request.into_inner();
        let range = optional_range(r.start.as_ref(), r.end.as_ref()).map_err(status)?;
        let types = store
            .engine
            .profile_types(range)
            .await
            .map_err(|e| Status::internal(e.to_string()))?;
        Ok(Response::new(pb::ProfileTypesResponse {
            types: types
                .into_iter()
                .map(|t| pb::ProfileType {
                    name: t.name,
                    sample_type: t.sample_type,
                    sample_unit: t.sample_unit,
                    period_type: t.period_type,
                    period_unit: t.period_unit,
                    delta: t.delta,
                })
                .collect(),
        }))
    }

    async fn labels(
        &self,
        request: Request<pb::LabelsRequest>,
    ) -> Result<Response<pb::LabelsResponse>, Status> {
        let store = self.0.store_of(request.extensions().get());
        let r = request.into_inner();
        let range = optional_range(r.start.as_ref(), r.end.as_ref()).map_err(status)?;
        let (pt, matchers) = scope(r.profile_type.as_deref(), &r.r#match).map_err(status)?;
        let label_names = store
            .engine
            .label_names(pt.as_ref(), &matchers, range)
            .await
            .map_err(|e| Status::internal(e.to_string()))?;
        Ok(Response::new(pb::LabelsResponse {
            label_names,
            warnings: vec![],
        }))
    }

    async fn values(
        &self,
        request: Request<pb::ValuesRequest>,
    ) -> Result<Response<pb::ValuesResponse>, Status> {
        let store = self.0.store_of(request.extensions().get());
        let r = request.into_inner();
        let range = optional_range(r.start.as_ref(), r.end.as_ref()).map_err(status)?;
        let (pt, matchers) = scope(r.profile_type.as_deref(), &r.r#match).map_err(status)?;
        let label_values = store
            .engine
            .label_values(&r.label_name, pt.as_ref(), &matchers, range)
            .await
            .map_err(|e| Status::internal(e.to_string()))?;
        Ok(Response::new(pb::ValuesResponse {
            label_values,
            warnings: vec![],
        }))
    }

    async fn share_profile(
        &self,
        _request: Request<pb::ShareProfileRequest>,
    ) -> Result<Response<pb::ShareProfileResponse>, Status> {
        Err(Status::unimplemented(
            "sharing to pprof.me is not supported; download the pprof report instead",
        ))
    }

    async fn has_profile_data(
        &self,
        request: Request<pb::HasProfileDataRequest>,
    ) -> Result<Response<pb::HasProfileDataResponse>, Status> {
        let store = self.0.store_of(request.extensions().get());
        let types = store
            .engine
            .profile_types(TimeRange::ALL)
            .await
            .map_err(|e| Status::internal(e.to_string()))?;
        Ok(Response::new(pb::HasProfileDataResponse {
            has_data: !types.is_empty(),
        }))
    }
}

/// The profile type and matchers of a Labels/Values request: `profile_type`, and `match`
/// entries that are selectors (a profile type and matchers).
pub(crate) fn scope(
    profile_type: Option<&str>,
    matches: &[String],
) -> Result<
    (
        Option<strata_engine::ProfileType>,
        Vec<strata_engine::LabelMatcher>,
    ),
    QueryError,
> {
    let mut pt = match profile_type.filter(|s| !s.is_empty()) {
        Some(s) => Some(
            s.parse()
                .map_err(|_| bad(format!("profile type {s:?} is not name:sample_type:sample_unit:period_type:period_unit[:delta]")))?,
        ),
        None => None,
    };
    let mut matchers = Vec::new();
    for m in matches.iter().filter(|m| !m.is_empty()) {
        let s = query_api::selector(m)?;
        pt.get_or_insert(s.profile_type);
        matchers.extend(s.matchers);
    }
    Ok((pt, matchers))
}
