//! A sustained run's report for people: markdown (verdict, headline figures, windows) and
//! the memory and throughput charts.

use std::path::{Path, PathBuf};

use super::super::push::Rate;
use super::super::report::si;
use super::super::{Error, plot};
use super::{MemPoint, SustainedReport, Window};

fn mib(b: u64) -> String {
    format!("{} MiB", b >> 20)
}

/// The report as markdown: the verdict, the headline figures and the time series.
pub fn markdown(r: &SustainedReport) -> String {
    use std::fmt::Write;
    let c = &r.config;
    let mut out = String::new();
    let rate = match c.rate {
        Rate::Max => "max".to_owned(),
        Rate::Realtime(f) => format!("{f} x real time"),
    };
    let _ = writeln!(
        out,
        "# strata-bench sustained: {} nodes x {} processes, {:.0} s at {rate}, limit {}\n",
        c.fleet.nodes,
        c.fleet.processes,
        c.duration_s,
        mib(c.memory_limit_bytes)
    );
    let verdict = if r.failures.is_empty() {
        "**PASS**".to_owned()
    } else {
        format!("**FAIL**: {}", r.failures.join("; "))
    };
    let _ = writeln!(out, "{verdict}\n");
    out.push_str("| | |\n|---|---|\n");
    for (k, v) in headline_rows(r) {
        let _ = writeln!(out, "| {k} | {v} |");
    }
    let b = &r.budget;
    let _ = writeln!(
        out,
        "\nServer config for the limit: head.max_bytes {}, block.symbol_cache_bytes {}, \
         compaction.merge_chunk_rows {}, wal.group_commit_bytes {}; cgroup: {}.\n",
        mib(b.head_max_bytes),
        mib(b.symbol_cache_bytes),
        b.merge_chunk_rows,
        mib(b.group_commit_bytes),
        r.cgroup.map_or("not enforced".into(), |v| format!("{v:?}")),
    );
    windows_table(&mut out, &r.windows);
    out
}

/// `Some(bytes)` in MiB, or `-`.
fn opt_mib(v: Option<u64>) -> String {
    v.map_or("-".to_owned(), mib)
}

/// The markdown report's headline figures, as (what, figure).
fn headline_rows(r: &SustainedReport) -> Vec<(&'static str, String)> {
    let (c, s) = (&r.config, &r.summary);
    vec![
        ("pushing (wall)", format!("{:.0} s", s.wall_s)),
        ("simulated time", format!("{:.0} s", s.simulated_s)),
        (
            "requests acknowledged / failed",
            format!("{} / {}", r.acked.requests, s.failed_requests),
        ),
        (
            "sample rows / CPU samples acknowledged",
            format!("{} / {}", si(r.acked.rows as f64), si(r.acked.value as f64)),
        ),
        (
            "ingest",
            format!(
                "{} rows/s, {} CPU samples/s, {:.2} x real time",
                si(s.rows_per_s),
                si(s.values_per_s),
                s.realtime_factor
            ),
        ),
        (
            "ack p50 / p99 / max",
            format!(
                "{:.1} / {:.1} / {:.1} ms",
                s.ack_p50_ms, s.ack_p99_ms, s.ack_max_ms
            ),
        ),
        (
            "server RSS peak (VmHWM) vs limit: pushing / with verification",
            format!(
                "{} ({:.0} %) / {} ({:.0} %) of {}",
                mib(s.rss_peak_push_bytes),
                s.rss_peak_push_bytes as f64 * 100.0 / c.memory_limit_bytes as f64,
                mib(s.rss_peak_bytes),
                s.rss_peak_bytes as f64 * 100.0 / c.memory_limit_bytes as f64,
                mib(c.memory_limit_bytes)
            ),
        ),
        ("cgroup anon peak (sampled)", opt_mib(s.anon_peak_bytes)),
        (
            "cgroup memory.peak (with page cache): pushing / with verification",
            format!(
                "{} / {}",
                opt_mib(s.cgroup_peak_push_bytes),
                opt_mib(s.cgroup_peak_bytes)
            ),
        ),
        (
            "cgroup limit hits / OOM kills",
            format!(
                "{} / {}",
                s.limit_hits.map_or("-".into(), |v| v.to_string()),
                s.oom_kills.map_or("-".into(), |v| v.to_string())
            ),
        ),
        ("head peak (strata_head_bytes)", opt_mib(s.head_peak_bytes)),
        (
            "blocks at the end",
            s.blocks.map_or("-".into(), |b| b.to_string()),
        ),
        (
            "merged total vs acknowledged",
            format!(
                "{} vs {}",
                s.merged_total.map_or("-".into(), |t| format!("{t:.0}")),
                r.acked.value
            ),
        ),
    ]
}

/// The markdown report's time series: one row per window.
fn windows_table(out: &mut String, windows: &[Window]) {
    use std::fmt::Write;
    out.push_str(
        "| window (s) | rows/s | acks | failed | ack p50 / p99 ms | RSS max | cgroup max |\n",
    );
    out.push_str("|---|---|---|---|---|---|---|\n");
    for w in windows {
        let _ = writeln!(
            out,
            "| {:.0}-{:.0} | {} | {} | {} | {:.1} / {:.1} | {} | {} |",
            w.start_s,
            w.end_s,
            si(w.rows_per_s),
            w.requests,
            w.failed,
            w.ack_p50_ms,
            w.ack_p99_ms,
            mib(w.rss_max_bytes),
            opt_mib(w.cgroup_max_bytes)
        );
    }
}

/// The memory chart's lines: RSS, the cgroup's charge and anonymous memory, the head, and
/// the limit.
fn memory_lines(r: &SustainedReport) -> Vec<plot::Line> {
    let mb = |b: u64| b as f64 / (1 << 20) as f64;
    // At most ~400 points a line (a 10-minute run has 2,400 samples): the highest of each
    // run of samples, so peaks stay.
    let every = r.memory.len().div_ceil(400).max(1);
    let m: Vec<MemPoint> = r
        .memory
        .chunks(every)
        .map(|c| MemPoint {
            elapsed_s: c[0].elapsed_s,
            rows: c[c.len() - 1].rows,
            rss_bytes: c.iter().map(|p| p.rss_bytes).max().unwrap_or(0),
            cgroup_bytes: c.iter().filter_map(|p| p.cgroup_bytes).max(),
            anon_bytes: c.iter().filter_map(|p| p.anon_bytes).max(),
            head_bytes: c.iter().filter_map(|p| p.head_bytes).max(),
            blocks: c.iter().filter_map(|p| p.blocks).max(),
        })
        .collect();
    let mut mem: Vec<plot::Line> = vec![(
        "server RSS".into(),
        m.iter().map(|p| (p.elapsed_s, mb(p.rss_bytes))).collect(),
    )];
    let mut add = |name: &str, f: &dyn Fn(&MemPoint) -> Option<u64>| {
        let pts: Vec<_> = m
            .iter()
            .filter_map(|p| Some((p.elapsed_s, mb(f(p)?))))
            .collect();
        if !pts.is_empty() {
            mem.push((name.into(), pts));
        }
    };
    add("cgroup charge (incl. page cache)", &|p| p.cgroup_bytes);
    add("cgroup anon", &|p| p.anon_bytes);
    add("head (strata_head_bytes)", &|p| p.head_bytes);
    let end = m.last().map_or(r.summary.wall_s, |p| p.elapsed_s);
    let limit = mb(r.config.memory_limit_bytes);
    mem.push(("limit".into(), vec![(0.0, limit), (end, limit)]));
    mem
}

/// The run's charts: `<prefix>-memory.svg` (RSS, cgroup charge, anonymous memory, head and
/// the limit over time), `<prefix>-ingest.svg` (rows/s per window), `<prefix>-latency.svg`
/// (ack p50 / p99 per window). Returns the files written.
pub fn charts(r: &SustainedReport, dir: &Path, prefix: &str) -> Result<Vec<PathBuf>, Error> {
    let mem = memory_lines(r);
    let nodes = r.config.fleet.nodes;
    let mid = |w: &Window| (w.start_s + w.end_s) / 2.0;
    let files = [
        (
            "memory",
            format!("Server memory under sustained load ({nodes} nodes)"),
            "MiB",
            mem,
        ),
        (
            "ingest",
            format!(
                "Ingest rate ({nodes} nodes, {:.0} s windows)",
                r.config.window_s
            ),
            "sample rows/s (thousands)",
            vec![(
                "rows/s".into(),
                r.windows
                    .iter()
                    .map(|w| (mid(w), w.rows_per_s / 1e3))
                    .collect(),
            )],
        ),
        (
            "latency",
            format!("WriteRaw acknowledgement latency ({nodes} nodes)"),
            "ms",
            vec![
                (
                    "p50".into(),
                    r.windows.iter().map(|w| (mid(w), w.ack_p50_ms)).collect(),
                ),
                (
                    "p99".into(),
                    r.windows.iter().map(|w| (mid(w), w.ack_p99_ms)).collect(),
                ),
            ],
        ),
    ];
    let mut out = Vec::new();
    for (name, title, y, lines) in files {
        let path = dir.join(format!("{prefix}-{name}.svg"));
        plot::chart(
            &path,
            &title,
            "seconds since the first push",
            y,
            &lines,
            false,
        )?;
        out.push(path);
    }
    Ok(out)
}
