//! The run's report: what was pushed, how fast, what it cost the server, how queries
//! behaved as data grew; as JSON and as a markdown table.

use std::fmt::Write;

use super::ScaleConfig;
use super::fleet::Generated;
use super::probe::QueryTiming;

/// A point of the server's resident memory.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct RssPoint {
    /// Seconds since the first push.
    pub elapsed_s: f64,
    /// Sample rows acknowledged by then.
    pub rows: u64,
    /// Resident memory (bytes).
    pub rss_bytes: u64,
}

/// The state after some rounds.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Checkpoint {
    /// Rounds pushed so far.
    pub rounds: u64,
    /// Sample rows acknowledged so far.
    pub rows: u64,
    /// Simulated time covered so far (s).
    pub simulated_s: f64,
    /// Rows per second over the rounds since the previous checkpoint.
    pub ingest_rows_per_s: f64,
    /// Server resident memory (bytes).
    pub rss_bytes: Option<u64>,
    /// Data directory size (bytes).
    pub disk_bytes: Option<u64>,
    /// Samples and bytes in committed blocks (`/metrics`).
    pub block_samples: Option<u64>,
    /// Bytes of committed blocks.
    pub block_bytes: Option<u64>,
    /// Query latencies.
    pub queries: Vec<QueryTiming>,
}

/// Headline figures.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct Summary {
    /// Sample rows acknowledged per second of pushing (wall), checkpoints excluded.
    pub ingest_rows_per_s: f64,
    /// CPU samples (sum of values) acknowledged per second.
    pub ingest_values_per_s: f64,
    /// How many times faster than the fleet produces data in real time the server took it.
    pub realtime_factor: f64,
    /// `WriteRaw` acknowledgement latency, median (ms).
    pub ack_p50_ms: f64,
    /// 99th percentile (ms).
    pub ack_p99_ms: f64,
    /// Slowest (ms).
    pub ack_max_ms: f64,
    /// Peak resident memory of the server (bytes).
    pub rss_peak_bytes: u64,
    /// Data directory bytes per sample row at the end (after the head flushed, if it did).
    pub disk_bytes_per_row: Option<f64>,
    /// Block bytes per block sample row (`/metrics`).
    pub block_bytes_per_row: Option<f64>,
    /// Whether the head was flushed (all data in blocks) when the size was taken.
    pub head_flushed: bool,
    /// Merge over the last simulated hour, at the last checkpoint (median ms).
    pub merge_1h_ms: f64,
    /// Merge over the last simulated 24 hours (median ms).
    pub merge_24h_ms: f64,
    /// The server's CPU time (all threads, user + system, from `/proc`) while pushing, for a
    /// server the harness spawned.
    #[serde(default)]
    pub server_cpu_s: Option<f64>,
    /// That CPU time per acknowledged row (us).
    #[serde(default)]
    pub server_us_per_row: Option<f64>,
}

/// Checks of the data: everything acknowledged and queryable.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct Verification {
    /// Failed `WriteRaw` calls.
    pub failed_requests: u64,
    /// The first failure's message.
    pub first_error: Option<String>,
    /// Total of a merge over the whole simulated span.
    pub merged_total: f64,
}

/// Everything a run measured.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Report {
    /// The run's settings.
    pub config: ScaleConfig,
    /// Pushed.
    pub generated: Generated,
    /// Acknowledged.
    pub acked: Generated,
    /// Wall time spent pushing (s).
    pub push_wall_s: f64,
    /// Simulated time covered (s).
    pub simulated_s: f64,
    /// Headline figures.
    pub summary: Summary,
    /// Checks.
    pub verification: Verification,
    /// As data grew.
    pub checkpoints: Vec<Checkpoint>,
    /// Server memory over the run.
    pub rss: Vec<RssPoint>,
}

/// `p`-th percentile (0-100) of sorted `values`.
pub fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let i = ((sorted.len() - 1) as f64 * p / 100.0).round() as usize;
    sorted[i]
}

fn mb(b: u64) -> String {
    format!("{:.0} MB", b as f64 / 1e6)
}

/// A human-readable count: 1.23 M, 45.6 k.
pub fn si(v: f64) -> String {
    match v {
        v if v >= 1e6 => format!("{:.2} M", v / 1e6),
        v if v >= 1e3 => format!("{:.1} k", v / 1e3),
        v => format!("{v:.0}"),
    }
}

/// The header of [`markdown_row`]s.
pub const MARKDOWN_HEADER: &str = "| nodes | rows pushed | simulated | ingest rows/s | CPU samples/s | x real time | server CPU per row | ack p50 / p99 | server RSS peak | bytes/row on disk (blocks) | merge 1 h / 24 h |\n|---|---|---|---|---|---|---|---|---|---|---|\n";

/// One line of the summary table.
pub fn markdown_row(r: &Report) -> String {
    let s = &r.summary;
    let bytes = match (s.disk_bytes_per_row, s.block_bytes_per_row) {
        (Some(d), Some(b)) => format!("{d:.1} ({b:.1})"),
        (None, Some(b)) => format!("- ({b:.1})"),
        (Some(d), None) => format!("{d:.1}"),
        (None, None) => "-".into(),
    };
    format!(
        "| {} | {} | {:.1} h | {} | {} | {:.2} | {} | {:.1} / {:.1} ms | {} | {} | {:.0} / {:.0} ms |\n",
        r.config.fleet.nodes,
        si(r.acked.rows as f64),
        r.simulated_s / 3600.0,
        si(s.ingest_rows_per_s),
        si(s.ingest_values_per_s),
        s.realtime_factor,
        s.server_us_per_row
            .map_or("-".to_owned(), |us| format!("{us:.2} us")),
        s.ack_p50_ms,
        s.ack_p99_ms,
        mb(s.rss_peak_bytes),
        bytes,
        s.merge_1h_ms,
        s.merge_24h_ms,
    )
}

/// The report as markdown: the summary line and the checkpoints.
pub fn markdown(r: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# strata-bench: {} nodes x {} processes\n",
        r.config.fleet.nodes, r.config.fleet.processes
    );
    out.push_str(MARKDOWN_HEADER);
    out.push_str(&markdown_row(r));
    let _ = writeln!(
        out,
        "\n{} rounds of {} s each, {:.1} h of simulated time in {:.0} s of pushing; failed requests: {}; merged total {} of {} values pushed.\n",
        r.config.rounds,
        r.config.fleet.interval_ns / 1_000_000_000,
        r.simulated_s / 3600.0,
        r.push_wall_s,
        r.verification.failed_requests,
        r.verification.merged_total,
        r.generated.value,
    );
    out.push_str("| rounds | rows | ingest rows/s | RSS | disk | ");
    for q in super::probe::QUERIES {
        let _ = write!(out, "{q} ms | ");
    }
    out.push_str("\n|---|---|---|---|---|");
    out.push_str(&"---|".repeat(super::probe::QUERIES.len()));
    out.push('\n');
    for c in &r.checkpoints {
        let _ = write!(
            out,
            "| {} | {} | {} | {} | {} | ",
            c.rounds,
            si(c.rows as f64),
            si(c.ingest_rows_per_s),
            c.rss_bytes.map_or("-".into(), mb),
            c.disk_bytes.map_or("-".into(), mb),
        );
        for q in &c.queries {
            let _ = write!(out, "{:.1} | ", q.median_ms);
        }
        out.push('\n');
    }
    out
}
