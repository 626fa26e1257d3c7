//! Query limits (the `query:` config section, [`QueryLimits`]) and the count of requests each
//! limit refused ([`LimitCounters`], `strata_limit_refusals_total` on `/metrics`).
//!
//! The other limits live where they are enforced: body and decompressed size in `ingest:`
//! (`strata_ingest::DecodeLimits`); samples per push, labels per series, label name and value
//! length in `engine.limits`; series per tenant in `engine.head.max_series` (each tenant has
//! its own head); tenants in `tenants.max_tenants`.

use std::collections::BTreeMap;
use std::time::Duration;

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

/// The `query:` config section.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QueryLimits {
    /// Longest time range one profile query (merge, range, diff side) may cover.
    /// Default: `32d`.
    #[serde(with = "humantime_serde")]
    pub max_range: Duration,
    /// Most stacks (flame graph leaves, rows of `top`'s input) one profile query may return,
    /// after filters. Default: 2,000,000.
    pub max_result_nodes: u64,
}

impl Default for QueryLimits {
    fn default() -> Self {
        QueryLimits {
            max_range: Duration::from_secs(32 * 24 * 3600),
            max_result_nodes: 2_000_000,
        }
    }
}

impl QueryLimits {
    /// Checks both limits are positive.
    pub fn validate(&self) -> Result<(), String> {
        if self.max_range.is_zero() {
            return Err("query.max_range must be greater than 0".into());
        }
        if self.max_result_nodes == 0 {
            return Err("query.max_result_nodes must be greater than 0".into());
        }
        Ok(())
    }
}

/// Every limit a request can run into, by its config name (listed on `/metrics` from the
/// start, at 0).
pub const LIMIT_NAMES: [&str; 12] = [
    "ingest.max_body_bytes",
    "ingest.max_decompressed_bytes",
    "limits.max_batch_samples",
    "limits.max_labels_per_series",
    "limits.max_label_name_bytes",
    "limits.max_label_value_bytes",
    "wal.max_record_bytes",
    "head.max_bytes",
    "head.max_series",
    "tenants.max_tenants",
    "query.max_range",
    "query.max_result_nodes",
];

/// Requests refused by each limit.
#[derive(Default)]
pub struct LimitCounters {
    counts: Mutex<BTreeMap<&'static str, u64>>,
}

impl LimitCounters {
    /// Counts one refusal by `limit`.
    pub fn hit(&self, limit: &'static str) {
        *self.counts.lock().entry(limit).or_default() += 1;
    }

    /// Refusals by `limit` so far.
    pub fn get(&self, limit: &str) -> u64 {
        self.counts.lock().get(limit).copied().unwrap_or(0)
    }

    /// Counts `e` if it is a limit's refusal.
    pub fn count_engine_error(&self, e: &strata_engine::Error) {
        if let strata_engine::Error::LimitExceeded { limit, .. } = e {
            self.hit(limit);
        }
    }

    /// Counts `e` if it is a limit's refusal.
    pub fn count_ingest_error(&self, e: &strata_ingest::Error) {
        use strata_ingest::Error as E;
        match e {
            E::BodyTooLarge { .. } => self.hit("ingest.max_body_bytes"),
            E::DecompressedTooLarge { .. } => self.hit("ingest.max_decompressed_bytes"),
            E::Engine(e) => self.count_engine_error(e),
            _ => {}
        }
    }

    /// Writes `strata_limit_refusals_total` (Prometheus text).
    pub fn write_metrics(&self, out: &mut String) {
        use std::fmt::Write;
        let counts = self.counts.lock();
        let _ = writeln!(
            out,
            "# HELP strata_limit_refusals_total Requests refused by a configured limit, by the limit's config name.\n# TYPE strata_limit_refusals_total counter"
        );
        let names = LIMIT_NAMES
            .iter()
            .copied()
            .chain(counts.keys().copied())
            .collect::<std::collections::BTreeSet<_>>();
        for name in names {
            let n = counts.get(name).copied().unwrap_or(0);
            let _ = writeln!(out, "strata_limit_refusals_total{{limit=\"{name}\"}} {n}");
        }
    }
}
