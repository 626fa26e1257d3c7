//! `/metrics`: Prometheus text exposition about the server itself.

use std::fmt::Write;
use std::sync::Arc;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use crate::state::App;

/// `GET /metrics`.
pub(crate) async fn metrics(State(app): State<Arc<App>>) -> impl IntoResponse {
    // The store gauges are the default tenant's; every tenant's series are below.
    let s = app.default_store().engine.stats();
    let mut out = String::new();
    let mut gauge = |name: &str, help: &str, value: u64| {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
        );
    };
    gauge(
        "strata_head_samples",
        "Samples in the in-memory heads.",
        s.head.samples,
    );
    gauge(
        "strata_head_series",
        "Series in the in-memory heads.",
        s.head.series,
    );
    gauge(
        "strata_head_bytes",
        "Bytes held by the in-memory heads.",
        s.head.sample_bytes + s.head.other_bytes,
    );
    gauge("strata_blocks", "Committed blocks.", s.blocks);
    gauge(
        "strata_block_samples",
        "Samples in committed blocks.",
        s.block_samples,
    );
    gauge(
        "strata_block_bytes",
        "Bytes of committed block files.",
        s.block_bytes,
    );
    gauge(
        "strata_wal_bytes",
        "Bytes of WAL segments on disk.",
        s.wal_bytes,
    );
    for (name, help, value) in [
        (
            "strata_flush_failures_total",
            "Flushes (block uploads) that failed; their data stays in the head and the WAL.",
            s.flush_failures,
        ),
        (
            "strata_flush_retries_total",
            "Flushes retried with back-off after a failure.",
            s.flush_retries,
        ),
        (
            "strata_store_errors_total",
            "Object store operations that failed after the client's retries.",
            s.store_errors,
        ),
        (
            "strata_store_request_failures_total",
            "Object store HTTP requests that failed (transport, timeout, 401/403/408/429/5xx), retried or not.",
            s.store_request_failures,
        ),
    ] {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}"
        );
    }
    let _ = writeln!(
        out,
        "# HELP strata_ingest_requests_total Push requests by protocol and outcome.\n# TYPE strata_ingest_requests_total counter"
    );
    for ((protocol, outcome), n) in app.counters.counts() {
        let _ = writeln!(
            out,
            "strata_ingest_requests_total{{protocol=\"{protocol}\",outcome=\"{outcome}\"}} {n}"
        );
    }
    let _ = writeln!(
        out,
        "# HELP strata_ingest_samples_total Samples stored from pushes.\n# TYPE strata_ingest_samples_total counter\nstrata_ingest_samples_total {}",
        app.counters.samples()
    );
    if app.worker.is_some() {
        let _ = writeln!(
            out,
            "# HELP strata_distributed_parts_read_total Scan parts this querier read for queries other queriers planned.\n# TYPE strata_distributed_parts_read_total counter\nstrata_distributed_parts_read_total {}",
            strata_query::distributed::parts_read_for_others()
        );
    }
    write_target_health(&app, &mut out);
    crate::collector::in_process::write_metrics(&mut out);
    app.default_store().symbolization.write_metrics(&mut out);
    app.limit_counters.write_metrics(&mut out);
    write_tenants(&app, &mut out);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out)
}

/// Series in each open tenant's head (the cardinality `head.max_series` bounds per tenant).
fn write_tenants(app: &App, out: &mut String) {
    let _ = writeln!(
        out,
        "# HELP strata_tenant_head_series Series in each open tenant's head.\n# TYPE strata_tenant_head_series gauge"
    );
    for store in app.tenants.open_stores() {
        let series = store.engine.stats().head.series;
        let tenant = escape(&store.id);
        let _ = writeln!(
            out,
            "strata_tenant_head_series{{tenant=\"{tenant}\"}} {series}"
        );
    }
}

/// Per scrape target: up, last duration, last samples, last scrape time.
fn write_target_health(app: &App, out: &mut String) {
    let targets = app.targets.read();
    type Metric = (
        &'static str,
        &'static str,
        fn(&crate::scrape::health::TargetHealth) -> f64,
    );
    let metrics: [Metric; 4] = [
        (
            "strata_scrape_target_up",
            "1 if the target's last scrape succeeded, 0 if it failed or none ran yet.",
            |h| f64::from(u8::from(h.health() == "up")),
        ),
        (
            "strata_scrape_last_duration_seconds",
            "How long the target's last scrape took.",
            |h| h.last_duration.as_secs_f64(),
        ),
        (
            "strata_scrape_last_samples",
            "Samples stored by the target's last scrape.",
            |h| h.last_samples as f64,
        ),
        (
            "strata_scrape_last_timestamp_seconds",
            "When the target's last scrape started (0: never).",
            |h| {
                h.last_scrape
                    .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                    .map_or(0.0, |d| d.as_secs_f64())
            },
        ),
    ];
    for (name, help, value) in metrics {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
        for (k, h) in targets.iter() {
            let _ = writeln!(
                out,
                "{name}{{job=\"{}\",instance=\"{}\",profile=\"{}\"}} {}",
                escape(&k.job),
                escape(&k.instance),
                escape(&k.profile),
                value(h)
            );
        }
    }
}

/// A label value escaped for the text exposition format.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
