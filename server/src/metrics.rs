//! `/metrics`: Prometheus text exposition about the server itself.

use std::fmt::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use crate::app::App;

/// Push requests by protocol and outcome.
#[derive(Default)]
pub struct IngestCounters {
    counts: parking_lot::Mutex<std::collections::BTreeMap<(&'static str, &'static str), u64>>,
    samples: AtomicU64,
}

impl IngestCounters {
    /// Counts one request of `protocol` (`parca_grpc`, `pyroscope_grpc`, `pyroscope_connect`,
    /// `pyroscope_ingest`) that was `accepted` or not, storing `samples`.
    pub fn record(&self, protocol: &'static str, accepted: bool, samples: u64) {
        let outcome = if accepted { "accepted" } else { "rejected" };
        *self.counts.lock().entry((protocol, outcome)).or_default() += 1;
        self.samples.fetch_add(samples, Ordering::Relaxed);
    }
}

/// `GET /metrics`.
pub(crate) async fn metrics(State(app): State<Arc<App>>) -> impl IntoResponse {
    let s = app.engine.stats();
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
    let _ = writeln!(
        out,
        "# HELP strata_ingest_requests_total Push requests by protocol and outcome.\n# TYPE strata_ingest_requests_total counter"
    );
    for ((protocol, outcome), n) in app.counters.counts.lock().iter() {
        let _ = writeln!(
            out,
            "strata_ingest_requests_total{{protocol=\"{protocol}\",outcome=\"{outcome}\"}} {n}"
        );
    }
    let _ = writeln!(
        out,
        "# HELP strata_ingest_samples_total Samples stored from pushes.\n# TYPE strata_ingest_samples_total counter\nstrata_ingest_samples_total {}",
        app.counters.samples.load(Ordering::Relaxed)
    );
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out)
}
