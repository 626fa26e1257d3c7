//! The HTTP/JSON query API, for the UI and for curl:
//!
//! | route | answer |
//! |---|---|
//! | `GET /api/v1/profile_types?start=&end=` | profile types with data |
//! | `GET /api/v1/labels?query=&start=&end=` | label names (of a selector's series, if given) |
//! | `GET /api/v1/labels/{name}/values?query=&start=&end=` | label values |
//! | `GET /api/v1/complete?query=&cursor=` | autocomplete: context, prefix and suggestions |
//! | `GET /api/v1/query_range?query=&start=&end=&step=&sum_by=&aggregation=` | series of points |
//! | `GET /api/v1/query?query=&start=&end=` (or `time=`) `&report=` | a profile report |
//! | `POST /api/v1/sql` (body: one statement) | `{columns, rows}` |
//!
//! `/api/v1/query` takes `mode=merge|single|diff` (diff adds `base_query`, `base_start`,
//! `base_end` or `base_time`, and `diff=absolute|relative`), `report=flamegraph|top|callgraph|pprof|folded|llvm-sample|pgo-go`,
//! `group_by=function_name|binary|filename|labels.<name>` (comma separated), `keep=`/`drop=`
//! (stacks with a frame whose function contains the text; `re:` prefix for a regex), `hide=`
//! (frames), `min_fraction=`, `max_nodes=`. Times: `now`, `now-1h`, RFC 3339, or Unix s/ms/ns.
//! Errors are `{"error": "..."}` with 400 (the request's fault) or 500.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Extension, Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use strata_query::report::{CallGraph, FlameGraph, FlameGraphOptions};
use strata_query::{
    CompletionContext, FrameField, FrameMatcher, FrameProfile, Grouping, ProfileQuery,
    RangeAggregation, RangeQuery, StackFilter, complete, report,
};

use super::request::{self, ProfileRequest, Side, bad};
use crate::state::{App, RequestTenant};
use crate::status::ServerError;

type Answer = Result<Response, ServerError>;

#[derive(Deserialize, Default)]
pub(crate) struct Scope {
    query: Option<String>,
    start: Option<String>,
    end: Option<String>,
}

fn scope_range(s: &Scope) -> Result<strata_engine::TimeRange, ServerError> {
    let start = s
        .start
        .as_deref()
        .map(|t| request::parse_time(t, "start"))
        .transpose()?
        .unwrap_or(i64::MIN);
    let end = s
        .end
        .as_deref()
        .map(|t| request::parse_time(t, "end"))
        .transpose()?
        .unwrap_or(i64::MAX);
    Ok(strata_engine::TimeRange::new(start, end))
}

pub(crate) async fn profile_types(
    Extension(tenant): Extension<RequestTenant>,
    Query(s): Query<Scope>,
) -> Answer {
    let types = tenant
        .store
        .engine
        .profile_types(scope_range(&s)?)
        .await
        .map_err(ServerError::from)?;
    let out: Vec<Value> = types
        .into_iter()
        .map(|t| {
            json!({
                "id": t.to_string(),
                "name": t.name,
                "sample_type": t.sample_type,
                "sample_unit": t.sample_unit,
                "period_type": t.period_type,
                "period_unit": t.period_unit,
                "delta": t.delta,
            })
        })
        .collect();
    Ok(Json(out).into_response())
}

fn scope_selector(
    s: &Scope,
) -> Result<
    (
        Option<strata_engine::ProfileType>,
        Vec<strata_engine::LabelMatcher>,
    ),
    ServerError,
> {
    let matches: Vec<String> = s.query.iter().cloned().collect();
    request::scope(None, &matches)
}

pub(crate) async fn labels(
    Extension(tenant): Extension<RequestTenant>,
    Query(s): Query<Scope>,
) -> Answer {
    let (pt, matchers) = scope_selector(&s)?;
    let names = tenant
        .store
        .engine
        .label_names(pt.as_ref(), &matchers, scope_range(&s)?)
        .await
        .map_err(ServerError::from)?;
    Ok(Json(names).into_response())
}

pub(crate) async fn values(
    Extension(tenant): Extension<RequestTenant>,
    Path(name): Path<String>,
    Query(s): Query<Scope>,
) -> Answer {
    let (pt, matchers) = scope_selector(&s)?;
    let values = tenant
        .store
        .engine
        .label_values(&name, pt.as_ref(), &matchers, scope_range(&s)?)
        .await
        .map_err(ServerError::from)?;
    Ok(Json(values).into_response())
}

#[derive(Deserialize)]
pub(crate) struct CompleteParams {
    query: String,
    /// Byte offset of the cursor; default the end.
    cursor: Option<usize>,
    start: Option<String>,
    end: Option<String>,
}

/// Suggestions for the query bar: profile types, label names, operators or label values that
/// start with what is typed, from the store.
pub(crate) async fn completion(
    Extension(tenant): Extension<RequestTenant>,
    Query(p): Query<CompleteParams>,
) -> Answer {
    let c = complete(&p.query, p.cursor.unwrap_or(p.query.len()));
    let range = scope_range(&Scope {
        query: None,
        start: p.start.clone(),
        end: p.end.clone(),
    })?;
    // The profile type typed so far, if it parses.
    let typed_type = p
        .query
        .split('{')
        .next()
        .and_then(|t| t.trim().parse::<strata_engine::ProfileType>().ok());
    let internal = |e: strata_engine::Error| ServerError::from(e);
    let (context, suggestions): (Value, Vec<String>) = match &c.context {
        CompletionContext::ProfileType => (
            json!({"kind": "profile_type"}),
            tenant
                .store
                .engine
                .profile_types(range)
                .await
                .map_err(internal)?
                .into_iter()
                .map(|t| t.to_string())
                .collect(),
        ),
        CompletionContext::LabelName => (
            json!({"kind": "label_name"}),
            tenant
                .store
                .engine
                .label_names(typed_type.as_ref(), &[], range)
                .await
                .map_err(internal)?
                .into_iter()
                .map(|name| {
                    // As a selector takes it: UTF-8 names quoted.
                    let mut out = String::new();
                    let _ = strata_engine::write_label_name(&mut out, &name);
                    out
                })
                .collect(),
        ),
        CompletionContext::Operator { label } => (
            json!({"kind": "operator", "label": label}),
            strata_query::OPERATORS
                .iter()
                .map(|s| s.to_string())
                .collect(),
        ),
        CompletionContext::LabelValue { label, op } => (
            json!({"kind": "label_value", "label": label, "operator": op.as_str()}),
            tenant
                .store
                .engine
                .label_values(label, typed_type.as_ref(), &[], range)
                .await
                .map_err(internal)?,
        ),
        CompletionContext::Separator => (
            json!({"kind": "separator"}),
            vec![",".to_owned(), "}".to_owned()],
        ),
        _ => (json!({"kind": "nothing"}), vec![]),
    };
    let suggestions: Vec<String> = suggestions
        .into_iter()
        .filter(|s| s.starts_with(&c.prefix))
        .collect();
    Ok(Json(json!({
        "context": context,
        "prefix": c.prefix,
        "start": c.start,
        "suggestions": suggestions,
    }))
    .into_response())
}

#[derive(Deserialize)]
pub(crate) struct RangeParams {
    query: String,
    start: String,
    end: String,
    /// Bucket width (`15s`, `1m`, seconds); absent: one point per stored profile.
    step: Option<String>,
    /// Comma-separated labels to sum by.
    sum_by: Option<String>,
    /// `sum`, `last` or `mean`; default by type.
    aggregation: Option<String>,
}

pub(crate) async fn query_range(
    State(app): State<Arc<App>>,
    Extension(tenant): Extension<RequestTenant>,
    Query(p): Query<RangeParams>,
) -> Answer {
    let start = request::parse_time(&p.start, "start")?;
    let end = request::parse_time(&p.end, "end")?;
    request::range(&app, start, end)?;
    let step_ns = match p.step.as_deref().filter(|s| !s.is_empty()) {
        Some(s) => request::parse_duration(s, "step")?.as_nanos() as i64,
        None => 1,
    };
    let aggregation = match p.aggregation.as_deref() {
        None | Some("") => None,
        Some("sum") => Some(RangeAggregation::Sum),
        Some("last") => Some(RangeAggregation::Last),
        Some("mean") => Some(RangeAggregation::Mean),
        Some(other) => {
            return Err(bad(format!(
                "aggregation {other:?}: expected sum, last or mean"
            )));
        }
    };
    let selector = request::selector(&p.query)?;
    let series = tenant
        .store
        .query
        .range(&RangeQuery {
            selector,
            start_ns: start,
            end_ns: end,
            step_ns,
            sum_by: p.sum_by.as_deref().map(split_list),
            aggregation,
        })
        .await?;
    let out: Vec<Value> = series
        .into_iter()
        .map(|s| {
            json!({
                "labels": s.labels.into_iter().map(|(k, v)| (k, Value::String(v))).collect::<serde_json::Map<String, Value>>(),
                "points": s.points,
            })
        })
        .collect();
    Ok(Json(json!({ "series": out })).into_response())
}

fn split_list(s: &str) -> Vec<String> {
    s.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

#[derive(Deserialize, Default)]
pub(crate) struct ProfileParams {
    mode: Option<String>,
    query: String,
    start: Option<String>,
    end: Option<String>,
    time: Option<String>,
    base_query: Option<String>,
    base_start: Option<String>,
    base_end: Option<String>,
    base_time: Option<String>,
    report: Option<String>,
    group_by: Option<String>,
    keep: Option<String>,
    drop: Option<String>,
    hide: Option<String>,
    min_fraction: Option<f64>,
    max_nodes: Option<usize>,
    /// For a diff: `absolute` (default) or `relative`.
    diff: Option<String>,
}

fn side(
    app: &App,
    query: &str,
    start: Option<&str>,
    end: Option<&str>,
    time: Option<&str>,
) -> Result<Side, ServerError> {
    let selector = request::selector(query)?;
    match (time, start, end) {
        (Some(t), _, _) => Ok(Side::Single(selector, request::parse_time(t, "time")?)),
        (None, Some(s), Some(e)) => Ok(Side::Merge(ProfileQuery::new(
            selector,
            request::range(
                app,
                request::parse_time(s, "start")?,
                request::parse_time(e, "end")?,
            )?,
        ))),
        _ => Err(bad("give start and end (merge) or time (single)")),
    }
}

/// `re:<regex>` or a substring, on function names.
fn frame_matcher(text: &str) -> Result<FrameMatcher, ServerError> {
    Ok(match text.strip_prefix("re:") {
        Some(re) => FrameMatcher::regex(FrameField::Function, re)?,
        None => FrameMatcher::contains(FrameField::Function, text),
    })
}

fn profile_request(app: &App, p: &ProfileParams) -> Result<ProfileRequest, ServerError> {
    let mode = p
        .mode
        .as_deref()
        .unwrap_or(if p.time.is_some() { "single" } else { "merge" });
    let side_ = side(
        app,
        &p.query,
        p.start.as_deref(),
        p.end.as_deref(),
        p.time.as_deref(),
    )?;
    let base = match mode {
        "merge" | "single" => None,
        "diff" => Some(side(
            app,
            p.base_query.as_deref().unwrap_or(&p.query),
            p.base_start.as_deref(),
            p.base_end.as_deref(),
            p.base_time.as_deref(),
        )?),
        other => {
            return Err(bad(format!(
                "mode {other:?}: expected merge, single or diff"
            )));
        }
    };
    let fields = p.group_by.as_deref().map(split_list).unwrap_or_default();
    let (grouping, group_by_labels) = request::group_by(&fields)?;
    let mut filters = strata_query::Filters {
        grouping,
        ..Default::default()
    };
    if let Some(k) = p.keep.as_deref().filter(|s| !s.is_empty()) {
        filters.stacks.push(StackFilter::Keep(frame_matcher(k)?));
    }
    if let Some(d) = p.drop.as_deref().filter(|s| !s.is_empty()) {
        filters.stacks.push(StackFilter::Drop(frame_matcher(d)?));
    }
    if let Some(h) = p.hide.as_deref().filter(|s| !s.is_empty()) {
        filters.hide_frames.push(frame_matcher(h)?);
    }
    let relative = match p.diff.as_deref() {
        None | Some("") | Some("absolute") => false,
        Some("relative") => true,
        Some(other) => {
            return Err(bad(format!(
                "diff {other:?}: expected absolute or relative"
            )));
        }
    };
    Ok(ProfileRequest {
        side: side_,
        base,
        filters,
        group_by_labels,
        relative,
    })
}

fn attachment(bytes: Vec<u8>, content_type: &'static str, filename: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CONTENT_DISPOSITION, filename),
        ],
        bytes,
    )
        .into_response()
}

/// The JSON of a frame list: each frame with its display name.
fn frames_json(p: &FrameProfile) -> Vec<Value> {
    p.frames
        .iter()
        .map(|f| {
            json!({
                "name": f.display_name(),
                "function": f.function,
                "system_name": f.system_name,
                "file": f.file,
                "line": f.line,
                "binary": f.binary,
                "build_id": f.build_id,
                "address": format!("{:#x}", f.address),
                "is_label": f.is_label,
                "symbolized": !f.function.is_empty() || f.is_label,
            })
        })
        .collect()
}

pub(crate) async fn query(
    State(app): State<Arc<App>>,
    Extension(tenant): Extension<RequestTenant>,
    Query(p): Query<ProfileParams>,
) -> Answer {
    let mut req = profile_request(&app, &p)?;
    let report_name = p.report.as_deref().unwrap_or("flamegraph");
    if report_name == "pgo-go" || report_name == "llvm-sample" {
        // Compilers want lines.
        req.filters.grouping = Grouping::Line;
    }
    let prof = request::run(&app, &tenant.store, &req).await?;
    let header = json!({
        "profile_type": prof.profile_type.to_string(),
        "unit": prof.profile_type.sample_unit,
        "total": prof.total(),
        "base_total": prof.base_total(),
        "filtered": prof.filtered,
        "diff": prof.diff,
    });
    Ok(match report_name {
        "flamegraph" => {
            let fg = FlameGraph::build(
                &prof,
                &FlameGraphOptions {
                    min_fraction: p.min_fraction.unwrap_or(0.0),
                    max_nodes: p.max_nodes.unwrap_or(0),
                },
            );
            Json(json!({
                "meta": header,
                "frames": frames_json(&prof),
                "nodes": fg.nodes,
                "height": fg.height,
                "pruned_nodes": fg.pruned_nodes,
            }))
            .into_response()
        }
        "top" => Json(json!({
            "meta": header,
            "frames": frames_json(&prof),
            "rows": report::top(&prof),
        }))
        .into_response(),
        "callgraph" => {
            let g = CallGraph::build(&prof);
            Json(json!({
                "meta": header,
                "frames": frames_json(&prof),
                "nodes": g.nodes,
                "edges": g.edges,
            }))
            .into_response()
        }
        "pprof" | "pgo-go" => attachment(
            report::pprof(&prof),
            "application/octet-stream",
            "attachment; filename=\"profile.pb.gz\"",
        ),
        "folded" => attachment(
            report::folded(&prof).into_bytes(),
            "text/plain; charset=utf-8",
            "inline",
        ),
        "llvm-sample" => attachment(
            report::llvm_sample(&prof).into_bytes(),
            "text/plain; charset=utf-8",
            "attachment; filename=\"profile.prof\"",
        ),
        other => {
            return Err(bad(format!(
                "report {other:?}: expected flamegraph, top, callgraph, pprof, folded, llvm-sample or pgo-go"
            )));
        }
    })
}

/// One SQL statement; the answer is `{columns: [{name, type}], rows: [[...]]}`.
pub(crate) async fn sql(Extension(tenant): Extension<RequestTenant>, body: String) -> Answer {
    let (schema, batches) = tenant.store.query.sql(&body).await?;
    let columns: Vec<Value> = schema
        .fields()
        .iter()
        .map(|f| json!({"name": f.name(), "type": f.data_type().to_string()}))
        .collect();
    let mut rows = Vec::new();
    for b in &batches {
        let formatters = b
            .columns()
            .iter()
            .map(|c| {
                arrow::util::display::ArrayFormatter::try_new(
                    c.as_ref(),
                    &arrow::util::display::FormatOptions::default(),
                )
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(ServerError::internal)?;
        for r in 0..b.num_rows() {
            rows.push(Value::Array(
                b.columns()
                    .iter()
                    .zip(&formatters)
                    .map(|(c, f)| cell(c.as_ref(), r, f))
                    .collect(),
            ));
        }
    }
    Ok(Json(json!({"columns": columns, "rows": rows})).into_response())
}

/// A cell as JSON: numbers and booleans as such, null as null, everything else as its text.
fn cell(a: &dyn arrow::array::Array, r: usize, f: &arrow::util::display::ArrayFormatter) -> Value {
    use arrow::datatypes::DataType as T;
    if a.is_null(r) {
        return Value::Null;
    }
    let text = f.value(r).to_string();
    match a.data_type() {
        T::Int8 | T::Int16 | T::Int32 | T::Int64 | T::UInt8 | T::UInt16 | T::UInt32 | T::UInt64 => {
            text.parse::<serde_json::Number>()
                .map_or(Value::String(text), Value::Number)
        }
        T::Float16 | T::Float32 | T::Float64 => text
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map_or(Value::String(text), Value::Number),
        T::Boolean => Value::Bool(text == "true"),
        _ => Value::String(text),
    }
}
