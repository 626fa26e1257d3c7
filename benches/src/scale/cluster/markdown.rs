//! The cluster run's report as markdown: the push, the members, the bucket, the merges.

use std::fmt::Write;

use super::*;

fn mb(b: u64) -> String {
    format!("{:.1} MB", b as f64 / 1e6)
}

/// The report as markdown: the push, the members, the bucket, the merges.
pub fn markdown(r: &ClusterReport) -> String {
    let mut out = String::new();
    let s = r.setup;
    let _ = writeln!(
        out,
        "# strata-bench: {} nodes x {} processes into {} ingesters, {} queriers and a compactor on one S3 bucket (moto)\n",
        r.config.fleet.nodes, r.config.fleet.processes, s.ingesters, s.queriers
    );
    let _ = writeln!(
        out,
        "{} rounds over {:.1} h of simulated time; {} rows ({} requests) acknowledged in {:.0} s of pushing: {} rows/s, {:.2}x real time, ack p50 / p99 {:.1} / {:.1} ms; failed requests: {}.\n",
        r.config.rounds,
        r.simulated_s / 3600.0,
        si(r.acked.rows as f64),
        r.acked.requests,
        r.push_wall_s,
        si(r.ingest_rows_per_s),
        r.realtime_factor,
        r.ack_p50_ms,
        r.ack_p99_ms,
        r.verification.failed_requests,
    );
    out.push_str("| process | rows stored | CPU while pushing | server CPU per stored row | CPU of the flush | CPU, whole run | peak RSS |\n|---|---|---|---|---|---|---|\n");
    for m in &r.members {
        let _ = writeln!(
            out,
            "| {} ({}) | {} | {:.1} s | {} | {:.2} s | {:.1} s | {} |",
            m.name,
            m.url.trim_start_matches("http://"),
            if m.rows > 0 {
                si(m.rows as f64)
            } else {
                "-".into()
            },
            m.cpu_push_s,
            m.us_per_row
                .map_or("-".into(), |us| format!("**{us:.2} us**")),
            m.cpu_flush_s,
            m.cpu_total_s,
            m.rss_peak_bytes.map_or("-".into(), mb),
        );
    }
    let ingesters = &r.members[..s.ingesters.min(r.members.len())];
    let cpu: f64 = ingesters.iter().map(|m| m.cpu_push_s).sum();
    let strata: f64 = r
        .members
        .iter()
        .filter(|m| m.name != "moto_server")
        .map(|m| m.cpu_push_s)
        .sum();
    let rows = r.acked.rows.max(1) as f64;
    let _ = writeln!(
        out,
        "| all ingesters | {} | {cpu:.1} s | **{:.2} us** | | | |\n| all strata processes | | {strata:.1} s | {:.2} us | | | |\n",
        si(r.acked.rows as f64),
        cpu * 1e6 / rows,
        strata * 1e6 / rows,
    );
    let b = &r.bucket;
    let _ = writeln!(
        out,
        "Bucket after the flush: {} objects, {}; the catalog's {} blocks: {} for {} rows = **{:.2} bytes per row**; {} blocks compacted away and awaiting deletion. {} rows were in heads only until the explicit flush; the flushed heads the ingesters keep {}.\n",
        b.objects,
        mb(b.bytes),
        b.live_blocks,
        mb(b.live_block_bytes),
        si(b.live_rows as f64),
        b.live_block_bytes as f64 / b.live_rows.max(1) as f64,
        b.tombstoned_blocks,
        si(r.flushed_rows as f64),
        r.heads_expired_after_s.map_or(
            format!(
                "had not expired {} s after it",
                heads_expiry_wait(&r.setup).as_secs()
            ),
            |s| format!("expired {s:.0} s after it"),
        ),
    );
    out.push_str("| merge | data | queriers at once | runs | median | slowest | merges/s | CPU per merge: queriers | ingesters | moto (S3) | compactor |\n|---|---|---|---|---|---|---|---|---|---|---|\n");
    for m in &r.merges {
        let data = match m.stage.as_str() {
            "heads" => "before the flush: blocks + heads (via the ingesters)",
            "flushed" => "right after the flush: blocks (ingesters still scan kept heads)",
            _ => "kept heads expired: blocks only",
        };
        let _ = writeln!(
            out,
            "| {} | {data} | {} | {} | **{:.0} ms** | {:.0} ms | {:.2} | {:.0} ms | {:.0} ms | {:.0} ms | {:.0} ms |",
            m.query,
            m.queriers,
            m.runs,
            m.median_ms,
            m.max_ms,
            m.merges_per_s,
            m.querier_cpu_ms,
            m.ingester_cpu_ms,
            m.s3_cpu_ms,
            m.compactor_cpu_ms,
        );
    }
    out.push('\n');
    for (name, total) in &r.querier_totals {
        let _ = writeln!(out, "- merged total through {name}: {total}");
    }
    let _ = writeln!(out, "- values acknowledged: {}", r.acked.value);
    if r.problems.is_empty() {
        out.push_str("\nEvery request acknowledged; every merged total equal to the acknowledged values; every process alive.\n");
    } else {
        out.push_str("\n**Problems:**\n\n");
        for p in &r.problems {
            let _ = writeln!(out, "- {p}");
        }
    }
    out
}
