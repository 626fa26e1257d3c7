//! Every limit a request can run into ([`Limit`]), the `query:` config section
//! ([`QueryLimits`]) and the count of requests each limit refused ([`LimitCounters`],
//! `strata_limit_refusals_total` on `/metrics`). A refusal is a typed error,
//! [`ServerError::LimitExceeded`](crate::status::ServerError::LimitExceeded), carrying the
//! limit, the value seen and the maximum.
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

/// Every limit a request can run into, by what it bounds. [`Limit::config_name`] is its name
/// in the config file and the `limit` label of `strata_limit_refusals_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Limit {
    /// `ingest.max_body_bytes`: a push's body as sent.
    IngestBodyBytes,
    /// `ingest.max_decompressed_bytes`: a push's body after decompression.
    IngestDecompressedBytes,
    /// `limits.max_batch_samples`: samples in one push.
    BatchSamples,
    /// `limits.max_labels_per_series`.
    LabelsPerSeries,
    /// `limits.max_label_name_bytes`.
    LabelNameBytes,
    /// `limits.max_label_value_bytes`.
    LabelValueBytes,
    /// `wal.max_record_bytes`: one write-ahead-log record.
    WalRecordBytes,
    /// `head.max_bytes`: the in-memory head's size.
    HeadBytes,
    /// `head.max_series`: series in a tenant's head.
    HeadSeries,
    /// `tenants.max_tenants`.
    Tenants,
    /// `query.max_range`: the time range of one profile query.
    QueryRange,
    /// `query.max_result_nodes`: stacks one profile query returns.
    QueryResultNodes,
}

impl Limit {
    /// Every limit, in the order `/metrics` lists them.
    pub const ALL: [Limit; 12] = [
        Limit::IngestBodyBytes,
        Limit::IngestDecompressedBytes,
        Limit::BatchSamples,
        Limit::LabelsPerSeries,
        Limit::LabelNameBytes,
        Limit::LabelValueBytes,
        Limit::WalRecordBytes,
        Limit::HeadBytes,
        Limit::HeadSeries,
        Limit::Tenants,
        Limit::QueryRange,
        Limit::QueryResultNodes,
    ];

    /// The limit's name in the config file (the engine's limits without `engine.`).
    pub const fn config_name(self) -> &'static str {
        match self {
            Limit::IngestBodyBytes => "ingest.max_body_bytes",
            Limit::IngestDecompressedBytes => "ingest.max_decompressed_bytes",
            Limit::BatchSamples => "limits.max_batch_samples",
            Limit::LabelsPerSeries => "limits.max_labels_per_series",
            Limit::LabelNameBytes => "limits.max_label_name_bytes",
            Limit::LabelValueBytes => "limits.max_label_value_bytes",
            Limit::WalRecordBytes => "wal.max_record_bytes",
            Limit::HeadBytes => "head.max_bytes",
            Limit::HeadSeries => "head.max_series",
            Limit::Tenants => "tenants.max_tenants",
            Limit::QueryRange => "query.max_range",
            Limit::QueryResultNodes => "query.max_result_nodes",
        }
    }

    /// The limit an engine error names (`Error::LimitExceeded::limit`), if it is one of ours.
    pub fn from_config_name(name: &str) -> Option<Limit> {
        Limit::ALL.into_iter().find(|l| l.config_name() == name)
    }
}

impl std::fmt::Display for Limit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.config_name())
    }
}

/// Requests refused by each limit.
#[derive(Default)]
pub struct LimitCounters {
    counts: Mutex<BTreeMap<Limit, u64>>,
}

impl LimitCounters {
    /// Counts one refusal by `limit`.
    pub fn hit(&self, limit: Limit) {
        *self.counts.lock().entry(limit).or_default() += 1;
    }

    /// Refusals by `limit` so far.
    pub fn get(&self, limit: Limit) -> u64 {
        self.counts.lock().get(&limit).copied().unwrap_or(0)
    }

    /// Writes `strata_limit_refusals_total` (Prometheus text).
    pub fn write_metrics(&self, out: &mut String) {
        use std::fmt::Write;
        let counts = self.counts.lock();
        let _ = writeln!(
            out,
            "# HELP strata_limit_refusals_total Requests refused by a configured limit, by the limit's config name.\n# TYPE strata_limit_refusals_total counter"
        );
        for limit in Limit::ALL {
            let n = counts.get(&limit).copied().unwrap_or(0);
            let _ = writeln!(out, "strata_limit_refusals_total{{limit=\"{limit}\"}} {n}");
        }
    }
}
