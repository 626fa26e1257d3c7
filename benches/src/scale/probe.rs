//! Query latency probes over the HTTP/JSON API (`server/src/query_http.rs`), at a checkpoint
//! whose simulated "now" is the end of the data pushed so far.

use std::time::Instant;

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
    let path = format!(
        "/api/v1/query?mode=merge&report=top&query={PROFILE_TYPE}&start={}&end={}",
        ms(start_ns),
        ms(end_ns)
    );
    total(&server.get_json(&path).await?)
}

fn total(v: &serde_json::Value) -> Result<f64, Error> {
    v["meta"]["total"]
        .as_f64()
        .ok_or_else(|| Error::Http("/api/v1/query".into(), format!("no meta.total in {v}")))
}

async fn run(server: &Server, query: &str, now_ns: i64) -> Result<f64, Error> {
    let from = |hours: i64| ms(now_ns - hours * HOUR_NS);
    let now = ms(now_ns);
    // The UI's request: a flame graph pruned to 20,000 nodes.
    let merge = |start: i64| {
        format!(
            "/api/v1/query?mode=merge&report=flamegraph&max_nodes=20000&query={PROFILE_TYPE}&start={start}&end={now}"
        )
    };
    Ok(match query {
        "label_values" => {
            let path = format!("/api/v1/labels/pod/values?start={}&end={now}", from(24));
            server.get_json(&path).await?.as_array().map_or(0, Vec::len) as f64
        }
        "range_1h" => {
            let path = format!(
                "/api/v1/query_range?query={PROFILE_TYPE}&start={}&end={now}&step=1m&sum_by=namespace",
                from(1)
            );
            let v = server.get_json(&path).await?;
            v["series"].as_array().map_or(0, |s| {
                s.iter()
                    .map(|s| s["points"].as_array().map_or(0, Vec::len))
                    .sum::<usize>()
            }) as f64
        }
        "merge_1h" => total(&server.get_json(&merge(from(1))).await?)?,
        "merge_24h" => total(&server.get_json(&merge(from(24))).await?)?,
        "diff_1h" => {
            let path = format!(
                "/api/v1/query?mode=diff&report=flamegraph&max_nodes=20000&query={PROFILE_TYPE}&start={}&end={now}&base_query={PROFILE_TYPE}&base_start={}&base_end={}",
                from(1),
                from(2),
                from(1)
            );
            total(&server.get_json(&path).await?)?
        }
        other => return Err(Error::Server(format!("unknown probe {other}"))),
    })
}
