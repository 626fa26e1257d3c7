//! Parca's `parca.query.v1alpha1.QueryService` (native gRPC and gRPC-web under `/api`):
//! ProfileTypes, Labels, Values, QueryRange, and Query in modes SINGLE, MERGE and DIFF with the
//! reports PPROF, TOP, CALLGRAPH and FLAMEGRAPH_TABLE (also for FLAMEGRAPH_UNSPECIFIED).

use std::sync::Arc;

use strata_engine::TimeRange;
use strata_proto::parca::profilestore::v1alpha1::{Label, LabelSet};
use strata_proto::parca::query::v1alpha1 as pb;
use strata_proto::prost_types::Timestamp;
use strata_query::{FrameField, FrameMatcher, ProfileQuery, RangeQuery, StackFilter, report};
use tonic::{Request, Response, Status};

use super::parca_reports::{callgraph, flamegraph, top};
use super::request::{self, ProfileRequest, Side, bad, scope};
use crate::state::App;
use crate::status::ServerError;

/// The QueryService over the app's store.
pub(crate) struct ParcaQuery(pub Arc<App>);

fn ns(t: Option<&Timestamp>, what: &str) -> Result<i64, ServerError> {
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
) -> Result<TimeRange, ServerError> {
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

fn merge_side(app: &App, m: &pb::MergeProfile) -> Result<Side, ServerError> {
    let range = request::range(
        app,
        ns(m.start.as_ref(), "start")?,
        ns(m.end.as_ref(), "end")?,
    )?;
    Ok(Side::Merge(ProfileQuery::new(
        request::selector(&m.query)?,
        range,
    )))
}

fn single_side(s: &pb::SingleProfile) -> Result<Side, ServerError> {
    Ok(Side::Single(
        request::selector(&s.query)?,
        ns(s.time.as_ref(), "time")?,
    ))
}

fn diff_side(
    app: &App,
    s: Option<&pb::ProfileDiffSelection>,
    which: &str,
) -> Result<Side, ServerError> {
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
fn profile_request(app: &App, q: &pb::QueryRequest) -> Result<ProfileRequest, ServerError> {
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
        request::group_by(q.group_by.as_ref().map_or(&[][..], |g| &g.fields))?;
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

#[tonic::async_trait]
impl pb::query_service_server::QueryService for ParcaQuery {
    async fn query_range(
        &self,
        request: Request<pb::QueryRangeRequest>,
    ) -> Result<Response<pb::QueryRangeResponse>, Status> {
        let store = self.0.store_of(request.extensions().get());
        let r = request.into_inner();
        let start = ns(r.start.as_ref(), "start")?;
        let end = ns(r.end.as_ref(), "end")?;
        request::range(&self.0, start, end)?;
        let selector = request::selector(&r.query)?;
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
            .map_err(|e| ServerError::from(e).to_status())?;
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
        let req = profile_request(&self.0, &q)?;
        let p = request::run(&self.0, &store, &req).await?;
        let report = match q.report_type() {
            R::Pprof => Report::Pprof(report::pprof(&p)),
            R::Top => Report::Top(top(&p)),
            R::Callgraph => Report::Callgraph(callgraph(&p)),
            R::FlamegraphTable | R::FlamegraphUnspecified => {
                Report::Flamegraph(flamegraph(&p, q.node_trim_threshold.unwrap_or(0.0)))
            }
            other => {
                return Err(ServerError::Unimplemented(format!(
                    "report type {} is not supported; use PPROF, TOP, CALLGRAPH or FLAMEGRAPH_TABLE",
                    other.as_str_name()
                ))
                .into());
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
        let range = optional_range(r.start.as_ref(), r.end.as_ref())?;
        let types = store
            .engine
            .profile_types(range)
            .await
            .map_err(ServerError::from)?;
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
        let range = optional_range(r.start.as_ref(), r.end.as_ref())?;
        let (pt, matchers) = scope(r.profile_type.as_deref(), &r.r#match)?;
        let label_names = store
            .engine
            .label_names(pt.as_ref(), &matchers, range)
            .await
            .map_err(ServerError::from)?;
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
        let range = optional_range(r.start.as_ref(), r.end.as_ref())?;
        let (pt, matchers) = scope(r.profile_type.as_deref(), &r.r#match)?;
        let label_values = store
            .engine
            .label_values(&r.label_name, pt.as_ref(), &matchers, range)
            .await
            .map_err(ServerError::from)?;
        Ok(Response::new(pb::ValuesResponse {
            label_values,
            warnings: vec![],
        }))
    }

    async fn share_profile(
        &self,
        _request: Request<pb::ShareProfileRequest>,
    ) -> Result<Response<pb::ShareProfileResponse>, Status> {
        Err(ServerError::Unimplemented(
            "sharing to pprof.me is not supported; download the pprof report instead".into(),
        )
        .into())
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
            .map_err(ServerError::from)?;
        Ok(Response::new(pb::HasProfileDataResponse {
            has_data: !types.is_empty(),
        }))
    }
}
