//! What the query front ends (Parca's gRPC `QueryService`, the HTTP/JSON API, the CLI through
//! that API) share: time parsing, the profile selection of a request, filters and grouping,
//! and running a request within the query limits.

use std::time::{Duration, UNIX_EPOCH};

use strata_engine::{TimeRange, now_ns};
use strata_query::{
    Filters, FrameProfile, Grouping, MergedProfile, ProfileQuery, Selector, parse_selector,
};

use crate::limits::Limit;
use crate::state::App;
use crate::status::ServerError;
use crate::tenants::TenantStore;

/// A bad request (400 / `INVALID_ARGUMENT`).
pub(crate) fn bad(message: impl Into<String>) -> ServerError {
    ServerError::InvalidArgument(message.into())
}

/// A time: `now`, `now-<duration>` (`now-1h`, `now-90s`), RFC 3339, or a number since the epoch
/// (up to 10 digits seconds, 13 milliseconds, 16 microseconds, else nanoseconds).
pub(crate) fn parse_time(text: &str, what: &str) -> Result<i64, ServerError> {
    let t = text.trim();
    let fail = |why: String| bad(format!("{what} {t:?}: {why}"));
    if let Some(rest) = t.strip_prefix("now") {
        let now = now_ns();
        let rest = rest.trim();
        if rest.is_empty() {
            return Ok(now);
        }
        let (sign, dur) = match rest.split_at(1) {
            ("-", d) => (-1i64, d),
            ("+", d) => (1, d),
            _ => {
                return Err(fail(
                    "expected now, now-<duration> or now+<duration>".into(),
                ));
            }
        };
        let d = humantime::parse_duration(dur.trim()).map_err(|e| fail(e.to_string()))?;
        return Ok(now + sign * d.as_nanos() as i64);
    }
    if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
        let n: i64 = t
            .parse()
            .map_err(|e: std::num::ParseIntError| fail(e.to_string()))?;
        let scale = match t.len() {
            0..=10 => 1_000_000_000,
            11..=13 => 1_000_000,
            14..=16 => 1_000,
            _ => 1,
        };
        return n
            .checked_mul(scale)
            .ok_or_else(|| fail("out of range".into()));
    }
    let st = humantime::parse_rfc3339_weak(t).map_err(|e| {
        fail(format!(
            "{e} (use now, now-1h, RFC 3339 or a Unix time in s/ms/ns)"
        ))
    })?;
    Ok(st
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64))
}

/// A duration: `15s`, `1m`, or a number of seconds.
pub(crate) fn parse_duration(text: &str, what: &str) -> Result<Duration, ServerError> {
    let t = text.trim();
    if let Ok(s) = t.parse::<f64>()
        && s.is_finite()
        && s > 0.0
    {
        return Ok(Duration::from_secs_f64(s));
    }
    humantime::parse_duration(t).map_err(|e| bad(format!("{what} {t:?}: {e}")))
}

pub(crate) fn selector(query: &str) -> Result<Selector, ServerError> {
    parse_selector(query).map_err(|e| bad(format!("query {query:?}: {e}")))
}

/// `[start, end)` that must not be empty nor longer than `query.max_range`.
pub(crate) fn range(app: &App, start: i64, end: i64) -> Result<TimeRange, ServerError> {
    if start >= end {
        return Err(bad(format!(
            "empty time range: start {start} is not before end {end}"
        )));
    }
    let max = app.query_limits.max_range;
    let length = end.saturating_sub(start) as u128;
    if length > max.as_nanos() {
        return Err(app.refused(ServerError::limit(
            Limit::QueryRange,
            Some((length / 1_000_000_000) as u64),
            max.as_secs(),
            format!(
                "limit exceeded: the time range is {}, the maximum is {} (query.max_range)",
                humantime::format_duration(std::time::Duration::from_secs(
                    (length / 1_000_000_000) as u64
                )),
                humantime::format_duration(max)
            ),
        )));
    }
    Ok(TimeRange::new(start, end))
}

/// One side of a query: a merge over a range or the profile at one time.
#[derive(Clone, Debug)]
pub(crate) enum Side {
    /// Everything in a range.
    Merge(ProfileQuery),
    /// The profile(s) at exactly this timestamp.
    Single(Selector, i64),
}

impl Side {
    fn group_by(&mut self, labels: &[String]) {
        if let Side::Merge(q) = self {
            q.group_by = labels.to_vec();
        }
    }
}

/// A profile request: one side, or a diff of two.
#[derive(Clone, Debug)]
pub(crate) struct ProfileRequest {
    /// The profile (the compared side for a diff).
    pub side: Side,
    /// The base of a diff.
    pub base: Option<Side>,
    /// Stack and frame filters, grouping.
    pub filters: Filters,
    /// Labels to group by (root nodes).
    pub group_by_labels: Vec<String>,
    /// For a diff: compare shares (the base scaled to the compared total) rather than amounts.
    pub relative: bool,
}

async fn run_side(store: &TenantStore, side: &Side) -> Result<MergedProfile, ServerError> {
    Ok(match side {
        Side::Merge(q) => store.query.merge(q).await?,
        Side::Single(s, t) => store.query.single(s, *t).await?,
    })
}

/// Runs a request over `store` into a filtered frame profile of at most
/// `query.max_result_nodes` stacks.
pub(crate) async fn run(
    app: &App,
    store: &TenantStore,
    req: &ProfileRequest,
) -> Result<FrameProfile, ServerError> {
    let mut side = req.side.clone();
    side.group_by(&req.group_by_labels);
    let merged = match &req.base {
        None => run_side(store, &side).await?,
        Some(base) => {
            let mut base = base.clone();
            base.group_by(&req.group_by_labels);
            let (b, c) = futures::try_join!(run_side(store, &base), run_side(store, &side))?;
            if b.profile_type != c.profile_type {
                return Err(bad(format!(
                    "a diff compares one profile type: {} vs {}",
                    b.profile_type, c.profile_type
                )));
            }
            let mut d = c.diff_against(b);
            if req.relative {
                d.normalize_base();
            }
            d
        }
    };
    let profile = FrameProfile::resolve(&merged).filter(&req.filters);
    let max = app.query_limits.max_result_nodes;
    if profile.stacks.len() as u64 > max {
        let stacks = profile.stacks.len() as u64;
        return Err(app.refused(ServerError::limit(
            Limit::QueryResultNodes,
            Some(stacks),
            max,
            format!(
                "limit exceeded: the result has {stacks} stacks, the maximum is {max} (query.max_result_nodes); narrow the selector or the time range, or filter"
            ),
        )));
    }
    Ok(profile)
}

/// Parca's `group_by` fields: `function_name`, `binary` (or `mapping_filename`),
/// `filename`/`line` (per line), `labels.<name>`. Returns the grouping and the labels.
pub(crate) fn group_by(fields: &[String]) -> Result<(Grouping, Vec<String>), ServerError> {
    let mut grouping = Grouping::Function;
    let mut labels = Vec::new();
    for f in fields {
        match f.as_str() {
            "" | "function_name" | "function" => grouping = Grouping::Function,
            "binary" | "mapping_filename" => grouping = Grouping::Binary,
            "filename" | "line" | "location_address" => grouping = Grouping::Line,
            other => match other.strip_prefix("labels.") {
                Some(l) if !l.is_empty() => labels.push(l.to_owned()),
                _ => {
                    return Err(bad(format!(
                        "group by {other:?}: expected function_name, binary, filename or labels.<name>"
                    )));
                }
            },
        }
    }
    Ok((grouping, labels))
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
    ServerError,
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
        let s = selector(m)?;
        pt.get_or_insert(s.profile_type);
        matchers.extend(s.matchers);
    }
    Ok((pt, matchers))
}
