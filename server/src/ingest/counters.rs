//! [`IngestCounters`]: push requests by protocol and outcome, for `/metrics`.

use std::sync::atomic::{AtomicU64, Ordering};

/// Push requests by protocol and outcome.
#[derive(Default)]
pub struct IngestCounters {
    counts: parking_lot::Mutex<std::collections::BTreeMap<(&'static str, &'static str), u64>>,
    samples: AtomicU64,
}

impl IngestCounters {
    /// Counts one request of `protocol` (`parca_grpc`, `pyroscope_grpc`, `pyroscope_connect`,
    /// `pyroscope_ingest`, `otlp_grpc`, `otlp_http`, `scrape`) that was `accepted` or not, storing `samples`.
    pub fn record(&self, protocol: &'static str, accepted: bool, samples: u64) {
        let outcome = if accepted { "accepted" } else { "rejected" };
        *self.counts.lock().entry((protocol, outcome)).or_default() += 1;
        self.samples.fetch_add(samples, Ordering::Relaxed);
    }

    /// Requests so far by (protocol, outcome).
    pub fn counts(&self) -> Vec<((&'static str, &'static str), u64)> {
        self.counts.lock().iter().map(|(k, n)| (*k, *n)).collect()
    }

    /// Samples stored so far.
    pub fn samples(&self) -> u64 {
        self.samples.load(Ordering::Relaxed)
    }
}
