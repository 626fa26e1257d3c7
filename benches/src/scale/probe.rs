//! Query latency probes over the HTTP/JSON API (`server/src/query/http.rs`), called through
//! its typed client (`strata_server::client::ApiClient`, so a field the server stops sending
//! fails the probe), at a checkpoint whose simulated "now" is the end of the data pushed so far.

use std::time::Instant;

use strata_server::client::Selection;

use super::Error;
use super::fleet::PROFILE_TYPE;
use super::server::Server;

const HOUR_NS: i64 = 3_600_000_000_000;

/// One query's latency at a checkpoint.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct QueryTiming {
    /// `label_values`, `range_1h`, `merge_1h`, `merge_24h`, `diff_1h`.
    pub query: String,
    /// Median of the runs (ms).
    pub median_ms: f64,
    /// Slowest run (ms); the first run is usually it (cold caches).
    pub max_ms: f64,
    /// What the answer held: values, points or the merged total.
    pub answer: f64,
}

/// The names of the probes, in the order they run.
pub const QUERIES: &[&str] = &[
    "label_values",
    "range_1h",
    "merge_1h",
    "merge_24h",
    "diff_1h",
];

fn ms(ns: i64) -> i64 {
    ns / 1_000_000
}

/// Runs every probe `repeats` times against data ending at `now_ns`.
pub async fn probe(
    server: &Server,
    now_ns: i64,
    repeats: usize,
) -> Result<Vec<QueryTiming>, Error> {
    let mut out = Vec::new();
    for &q in QUERIES {
        let mut times = Vec::with_capacity(repeats);
        let mut answer = 0.0;
        for _ in 0..repeats.max(1) {
            let t = Instant::now();
            answer = run(server, q, now_ns).await?;
            times.push(t.elapsed().as_secs_f64() * 1e3);
        }
        times.sort_by(f64::total_cmp);
        out.push(QueryTiming {
            query: q.to_owned(),
            median_ms: times[times.len() / 2],
            max_ms: times[times.len() - 1],
            answer,
        });
    }
    Ok(out)
}

/// Merged total of everything in `[start_ns, end_ns)`.
pub async fn merge_total(server: &Server, start_ns: i64, end_ns: i64) -> Result<f64, Error> {
    let top = server
        .api()
        .top(
            &selection(start_ns, end_ns),
            &[("mode", "merge".to_owned())],
        )
        .await
        .map_err(|e| Error::Api("merge total".into(), e))?;
    Ok(top.meta.total as f64)
}

/// Everything of [`PROFILE_TYPE`] in `[start_ns, end_ns)`, as the API takes times (ms).
fn selection(start_ns: i64, end_ns: i64) -> Selection {
    Selection {
        query: PROFILE_TYPE.to_owned(),
        start: ms(start_ns).to_string(),
        end: ms(end_ns).to_string(),
    }
}

/// Runs the probe named `query` (one of [`QUERIES`]) once against data ending at `now_ns`;
/// returns what the answer held.
pub async fn run(server: &Server, query: &str, now_ns: i64) -> Result<f64, Error> {
    let api = server.api();
    let from = |hours: i64| now_ns - hours * HOUR_NS;
    // The UI's request: a flame graph pruned to 20,000 nodes.
    let max_nodes = ("max_nodes", "20000".to_owned());
    let merge = async |start_ns: i64| {
        let extra = [("mode", "merge".to_owned()), max_nodes.clone()];
        api.flamegraph(&selection(start_ns, now_ns), &extra).await
    };
    let answer = match query {
        "label_values" => {
            let scope = selection(from(24), now_ns);
            let values = api
                .label_values("pod", &[("start", scope.start), ("end", scope.end)])
                .await;
            values.map(|v| v.len() as f64)
        }
        "range_1h" => {
            let extra = [
                ("step", "1m".to_owned()),
                ("sum_by", "namespace".to_owned()),
            ];
            let range = api.range(&selection(from(1), now_ns), &extra).await;
            range.map(|r| r.series.iter().map(|s| s.points.len()).sum::<usize>() as f64)
        }
        "merge_1h" => merge(from(1)).await.map(|f| f.meta.total as f64),
        "merge_24h" => merge(from(24)).await.map(|f| f.meta.total as f64),
        "diff_1h" => {
            let base = selection(from(2), from(1));
            let extra = [
                ("mode", "diff".to_owned()),
                max_nodes,
                ("base_query", base.query),
                ("base_start", base.start),
                ("base_end", base.end),
            ];
            let diff = api.flamegraph(&selection(from(1), now_ns), &extra).await;
            diff.map(|f| f.meta.total as f64)
        }
        other => return Err(Error::Server(format!("unknown probe {other}"))),
    };
    answer.map_err(|e| Error::Api(query.to_owned(), e))
}
