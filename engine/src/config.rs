//! Engine configuration: serde structs with a documented default for every field and
//! [`EngineConfig::validate`].

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Everything the engine can be told. `EngineConfig::default()` is a working local setup
/// storing under `./data`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EngineConfig {
    /// Directory for the WAL, the lock file and (unless `storage.url` is set) the blocks.
    /// Default: `./data`.
    pub data_dir: PathBuf,
    /// Where blocks live.
    pub storage: StorageConfig,
    /// Write-ahead log.
    pub wal: WalConfig,
    /// In-memory head.
    pub head: HeadConfig,
    /// Block (Parquet) layout.
    pub block: BlockConfig,
    /// Background compaction.
    pub compaction: CompactionConfig,
    /// Background retention.
    pub retention: RetentionConfig,
    /// Input limits.
    pub limits: LimitsConfig,
    /// Sharing one bucket between processes (ingesters, queriers, a compactor).
    pub shared: SharedConfig,
    /// Whether `Engine::open` starts the background task that flushes the head on age,
    /// compacts and applies retention. Default: `true`. Tests and embedders that want to drive
    /// maintenance by hand set it to `false`.
    pub background: bool,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            data_dir: PathBuf::from("./data"),
            storage: StorageConfig::default(),
            wal: WalConfig::default(),
            head: HeadConfig::default(),
            block: BlockConfig::default(),
            compaction: CompactionConfig::default(),
            retention: RetentionConfig::default(),
            limits: LimitsConfig::default(),
            shared: SharedConfig::default(),
            background: true,
        }
    }
}

impl EngineConfig {
    /// A default config storing under `data_dir`.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        EngineConfig {
            data_dir: data_dir.into(),
            ..Default::default()
        }
    }

    /// Checks every field; the error names the first bad field.
    pub fn validate(&self) -> Result<()> {
        if self.data_dir.as_os_str().is_empty() {
            return Err(invalid("data_dir", "must not be empty"));
        }
        self.storage.validate()?;
        self.shared.validate()?;
        self.validate_wal_head_block()?;
        self.validate_maintenance_and_limits()
    }

    fn validate_wal_head_block(&self) -> Result<()> {
        positive("wal.segment_bytes", self.wal.segment_bytes)?;
        positive("wal.max_record_bytes", self.wal.max_record_bytes)?;
        if self.wal.max_record_bytes > u32::MAX as u64 {
            return Err(invalid(
                "wal.max_record_bytes",
                "must fit the 32-bit record length",
            ));
        }
        positive(
            "wal.sync_interval",
            self.wal.sync_interval.as_millis() as u64,
        )?;
        positive("head.max_bytes", self.head.max_bytes)?;
        positive("head.max_age", self.head.max_age.as_millis() as u64)?;
        positive("head.max_series", self.head.max_series)?;
        positive(
            "head.check_interval",
            self.head.check_interval.as_millis() as u64,
        )?;
        positive("block.row_group_rows", self.block.row_group_rows as u64)?;
        positive("block.page_rows", self.block.page_rows as u64)?;
        if !(1..=22).contains(&self.block.zstd_level) {
            return Err(invalid(
                "block.zstd_level",
                format!("{} is outside 1..=22", self.block.zstd_level),
            ));
        }
        Ok(())
    }

    fn validate_maintenance_and_limits(&self) -> Result<()> {
        positive(
            "compaction.interval",
            self.compaction.interval.as_millis() as u64,
        )?;
        positive(
            "compaction.max_block_samples",
            self.compaction.max_block_samples,
        )?;
        positive(
            "compaction.merge_chunk_rows",
            self.compaction.merge_chunk_rows,
        )?;
        if self.compaction.max_sources < 2 {
            return Err(invalid("compaction.max_sources", "must be at least 2"));
        }
        positive(
            "retention.interval",
            self.retention.interval.as_millis() as u64,
        )?;
        let l = &self.limits;
        positive("limits.max_labels_per_series", l.max_labels_per_series)?;
        positive("limits.max_label_name_bytes", l.max_label_name_bytes)?;
        positive("limits.max_label_value_bytes", l.max_label_value_bytes)?;
        positive("limits.max_batch_samples", l.max_batch_samples)
    }
}

fn invalid(field: &'static str, reason: impl Into<String>) -> Error {
    Error::InvalidConfig {
        field,
        reason: reason.into(),
    }
}

fn positive(field: &'static str, v: u64) -> Result<()> {
    if v == 0 {
        return Err(invalid(field, "must be greater than 0"));
    }
    Ok(())
}

impl StorageConfig {
    /// The URL parses; timeouts and back-offs are positive, each maximum at least its initial
    /// value.
    fn validate(&self) -> Result<()> {
        if let Some(url) = &self.url {
            url::Url::parse(url)
                .map_err(|e| invalid("storage.url", format!("{url:?} is not a URL: {e}")))?;
        }
        for (field, d) in [
            ("storage.request_timeout", self.request_timeout),
            ("storage.connect_timeout", self.connect_timeout),
            ("storage.retry_timeout", self.retry_timeout),
            ("storage.retry_backoff_initial", self.retry_backoff_initial),
            ("storage.flush_backoff_initial", self.flush_backoff_initial),
        ] {
            if d.is_zero() {
                return Err(invalid(field, "must be greater than 0"));
            }
        }
        for (field, initial, max) in [
            (
                "storage.retry_backoff_max",
                self.retry_backoff_initial,
                self.retry_backoff_max,
            ),
            (
                "storage.flush_backoff_max",
                self.flush_backoff_initial,
                self.flush_backoff_max,
            ),
        ] {
            if max < initial {
                return Err(invalid(
                    field,
                    format!("{max:?} is less than the initial back-off {initial:?}"),
                ));
            }
        }
        Ok(())
    }
}

/// Where blocks are stored, and how failing object-store requests are retried.
///
/// Two layers of retry: the object store client retries each request that failed transiently
/// (connection errors, timeouts, HTTP 5xx, 429 and 408; not 403 or 404) up to `max_retries`
/// times within `retry_timeout`, with exponential back-off from `retry_backoff_initial` to
/// `retry_backoff_max` (with jitter). An operation that still fails (e.g. 403 AccessDenied for
/// minutes) fails the flush: the head and its WAL segments stay, and the engine retries the
/// flush with its own exponential back-off from `flush_backoff_initial` to `flush_backoff_max`
/// (with jitter). The timeouts and client retries apply to remote (`s3://`) stores; the flush
/// back-off to every store.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StorageConfig {
    /// An `object_store` URL such as `s3://bucket/prefix` or `file:///srv/strata`. Default:
    /// unset, meaning the local directory `<data_dir>` (blocks under `<data_dir>/blocks/`).
    pub url: Option<String>,
    /// Options passed to the object store builder, e.g. `aws_endpoint`, `aws_region`,
    /// `aws_access_key_id`, `aws_allow_http`. Default: empty (the environment is also read).
    /// An option named `timeout` or `connect_timeout` here overrides the fields below.
    pub options: BTreeMap<String, String>,
    /// Longest one HTTP request to the store may take, response body included. Default: `30s`.
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
    /// Longest connecting to the store may take. Default: `5s`.
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// Times the client retries a transiently failed request (0: never). Default: 5.
    pub max_retries: usize,
    /// No client retry starts this long after a request's first attempt. Default: `60s`.
    #[serde(with = "humantime_serde")]
    pub retry_timeout: Duration,
    /// The client's first back-off between retries of a request. Default: `100ms`.
    #[serde(with = "humantime_serde")]
    pub retry_backoff_initial: Duration,
    /// The client's longest back-off between retries of a request. Default: `15s`.
    #[serde(with = "humantime_serde")]
    pub retry_backoff_max: Duration,
    /// The engine waits this long before retrying a failed flush (block upload), doubling the
    /// wait after every further failure. Default: `1s`.
    #[serde(with = "humantime_serde")]
    pub flush_backoff_initial: Duration,
    /// The longest wait between flush retries. Default: `1m`.
    #[serde(with = "humantime_serde")]
    pub flush_backoff_max: Duration,
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            url: None,
            options: BTreeMap::new(),
            request_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(5),
            max_retries: 5,
            retry_timeout: Duration::from_secs(60),
            retry_backoff_initial: Duration::from_millis(100),
            retry_backoff_max: Duration::from_secs(15),
            flush_backoff_initial: Duration::from_secs(1),
            flush_backoff_max: Duration::from_secs(60),
        }
    }
}

/// When the WAL calls `fdatasync`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FsyncPolicy {
    /// After every group commit, before `append` returns: acknowledged data survives power loss.
    Always,
    /// Every `wal.sync_interval`: `append` returns after the write; a power loss (not a process
    /// crash) may lose up to one interval.
    Periodic,
    /// Never; the operating system decides. Only for benchmarks and throwaway data.
    Never,
}

/// Write-ahead log settings. The WAL always lives on local disk under `<data_dir>/wal/`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WalConfig {
    /// Fsync policy. Default: `always`.
    pub fsync: FsyncPolicy,
    /// Interval for `fsync: periodic`. Default: `1s`.
    #[serde(with = "humantime_serde")]
    pub sync_interval: Duration,
    /// A segment is closed and a new one started past this size. Default: 64 MiB.
    pub segment_bytes: u64,
    /// Largest encoded batch accepted (bigger appends are refused). Default: 256 MiB.
    pub max_record_bytes: u64,
    /// A group commit writes at most this many bytes before syncing. Default: 16 MiB.
    pub group_commit_bytes: u64,
}

impl Default for WalConfig {
    fn default() -> Self {
        WalConfig {
            fsync: FsyncPolicy::Always,
            sync_interval: Duration::from_secs(1),
            segment_bytes: 64 << 20,
            max_record_bytes: 256 << 20,
            group_commit_bytes: 16 << 20,
        }
    }
}

/// In-memory head settings.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HeadConfig {
    /// Byte budget: the head is flushed to a block when it holds this much. Appends wait when a
    /// second head fills up while the first is still being flushed. Default: 256 MiB.
    pub max_bytes: u64,
    /// The head is flushed this long after its first data arrived. Default: `10m`.
    #[serde(with = "humantime_serde")]
    pub max_age: Duration,
    /// Most distinct series one head holds; appends beyond are refused. Default: 1,000,000.
    pub max_series: u64,
    /// How often the background task checks the head's age. Default: `1s`.
    #[serde(with = "humantime_serde")]
    pub check_interval: Duration,
}

impl Default for HeadConfig {
    fn default() -> Self {
        HeadConfig {
            max_bytes: 256 << 20,
            max_age: Duration::from_secs(600),
            max_series: 1_000_000,
            check_interval: Duration::from_secs(1),
        }
    }
}

/// Block layout settings.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BlockConfig {
    /// Rows per Parquet row group of `samples.parquet`. Each row group carries its own
    /// dictionary of the stack ids it uses (8 bytes each), so small groups of a fleet with
    /// many distinct stacks pay for that dictionary over and over (2.2 of 6.3 bytes a row at
    /// 65,536 rows); pages (`page_rows`) and the page index still prune finely inside a
    /// group. Default: 1,048,576.
    pub row_group_rows: usize,
    /// zstd level for every Parquet column. Default: 3.
    pub zstd_level: i32,
    /// Rows per Parquet data page (about); the page index lets a scan skip pages of other
    /// series. Default: 8,192.
    pub page_rows: usize,
    /// Decoded symbol tables (stacks, locations, functions, mappings) of recently queried
    /// blocks are kept in memory up to about this many bytes, so resolving a query's stacks
    /// does not re-read a block's four symbol files; least recently used first out. 0 turns
    /// the cache off. Default: 268,435,456 (256 MiB).
    pub symbol_cache_bytes: u64,
}

impl Default for BlockConfig {
    fn default() -> Self {
        BlockConfig {
            row_group_rows: 1 << 20,
            zstd_level: 3,
            page_rows: 8192,
            symbol_cache_bytes: 256 << 20,
        }
    }
}

/// Background compaction settings.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CompactionConfig {
    /// Whether the background task compacts. Default: `true`.
    pub enabled: bool,
    /// How often it looks for work. Default: `1m`.
    #[serde(with = "humantime_serde")]
    pub interval: Duration,
    /// A compacted block holds at most this many samples. Default: 50,000,000.
    pub max_block_samples: u64,
    /// A compacted block spans at most this much time. Default: `2h`.
    #[serde(with = "humantime_serde")]
    pub max_block_duration: Duration,
    /// At most this many blocks merge into one. Default: 16.
    pub max_sources: usize,
    /// Rows merged at a time; bounds compaction memory (about 50 bytes a row). Default:
    /// 1,048,576.
    pub merge_chunk_rows: u64,
}

impl Default for CompactionConfig {
    fn default() -> Self {
        CompactionConfig {
            enabled: true,
            interval: Duration::from_secs(60),
            max_block_samples: 50_000_000,
            max_block_duration: Duration::from_secs(2 * 3600),
            max_sources: 16,
            merge_chunk_rows: 1 << 20,
        }
    }
}

/// A store shared by several processes through one bucket: ingesters flush blocks into it and
/// commit them to the bucket's catalog (`catalog/manifest.json`); queriers and the compactor
/// read the catalog. Needs a remote object store with conditional writes (S3 and its
/// compatibles, GCS, Azure): a local directory cannot be shared.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SharedConfig {
    /// Whether the bucket is shared. Default: `false` (one process owns the store). The
    /// server sets it for every `--target` but `all`.
    pub enabled: bool,
    /// This ingester's name, unique in the cluster and stable across restarts (its WAL
    /// coverage is kept under it in the catalog). Default: unset, meaning the host name (a
    /// StatefulSet pod's name).
    pub ingester_id: Option<String>,
    /// An ingester keeps a flushed head this long, tagged with the block that holds it, so a
    /// querier whose catalog does not list that block yet still finds the data. Default: `2m`.
    #[serde(with = "humantime_serde")]
    pub flushed_head_retention: Duration,
    /// Readers (queriers, the compactor) re-read the catalog this often in the background (a
    /// conditional GET); every query also re-reads it first. At most half of
    /// `flushed_head_retention`. Default: `5s`.
    #[serde(with = "humantime_serde")]
    pub catalog_refresh: Duration,
    /// Files of a block removed from the catalog (compacted, or dropped by retention) are
    /// deleted this long after, so queries that started before still read them. Default: `5m`.
    #[serde(with = "humantime_serde")]
    pub deletion_delay: Duration,
    /// A block in the bucket that the catalog does not name (an upload whose writer died before
    /// the commit) is deleted by the compactor once it is this old. Default: `1h`.
    #[serde(with = "humantime_serde")]
    pub orphan_grace: Duration,
}

impl Default for SharedConfig {
    fn default() -> Self {
        SharedConfig {
            enabled: false,
            ingester_id: None,
            flushed_head_retention: Duration::from_secs(120),
            catalog_refresh: Duration::from_secs(5),
            deletion_delay: Duration::from_secs(300),
            orphan_grace: Duration::from_secs(3600),
        }
    }
}

impl SharedConfig {
    /// Checks that `storage` names a store several processes can share (when enabled).
    pub fn check_shareable(&self, storage: &StorageConfig) -> Result<()> {
        if !self.enabled {
            return Ok(());
        }
        match storage.url.as_deref() {
            None => Err(invalid(
                "storage.url",
                "a shared store (shared.enabled, any --target but `all`) needs an object \
                 store URL such as s3://bucket/prefix; a local directory cannot be shared",
            )),
            Some(u) if u.starts_with("file:") || u.starts_with("memory:") => Err(invalid(
                "storage.url",
                "a shared store needs an object store with conditional writes (s3://, gs://, \
                 az://); file:// and memory:// cannot be shared between processes",
            )),
            Some(_) => Ok(()),
        }
    }

    /// Checks the fields.
    pub fn validate(&self) -> Result<()> {
        if self.ingester_id.as_deref().is_some_and(str::is_empty) {
            return Err(invalid("shared.ingester_id", "must not be empty"));
        }
        if self.catalog_refresh.is_zero() || self.catalog_refresh * 2 > self.flushed_head_retention
        {
            return Err(invalid(
                "shared.catalog_refresh",
                "must be positive and at most half of shared.flushed_head_retention",
            ));
        }
        if self.deletion_delay <= self.flushed_head_retention {
            return Err(invalid(
                "shared.deletion_delay",
                "must be longer than shared.flushed_head_retention (a tombstone must outlive \
                 the flushed heads it stands for)",
            ));
        }
        Ok(())
    }

    /// This ingester's name: `ingester_id`, else the host name.
    pub fn ingester_name(&self) -> String {
        self.ingester_id.clone().unwrap_or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|h| h.trim().to_owned())
                .ok()
                .filter(|h| !h.is_empty())
                .unwrap_or_else(|| "ingester".to_owned())
        })
    }
}

/// Background retention settings. A block is dropped when its newest sample is older than
/// `max_age`, or, oldest first, while all blocks together exceed `max_bytes`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetentionConfig {
    /// Drop blocks older than this. Default: unset (keep forever).
    #[serde(with = "humantime_serde")]
    pub max_age: Option<Duration>,
    /// Keep the blocks' total size under this many bytes. Default: unset (no bound).
    pub max_bytes: Option<u64>,
    /// How often retention runs. Default: `1m`.
    #[serde(with = "humantime_serde")]
    pub interval: Duration,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        RetentionConfig {
            max_age: None,
            max_bytes: None,
            interval: Duration::from_secs(60),
        }
    }
}

/// Limits on what one append may carry.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// Most labels in one series. Default: 64.
    pub max_labels_per_series: u64,
    /// Longest label name in bytes. Default: 1,024.
    pub max_label_name_bytes: u64,
    /// Longest label value in bytes. Default: 4,096.
    pub max_label_value_bytes: u64,
    /// Most samples in one append. Default: 10,000,000.
    pub max_batch_samples: u64,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            max_labels_per_series: 64,
            max_label_name_bytes: 1024,
            max_label_value_bytes: 4096,
            max_batch_samples: 10_000_000,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_valid_and_round_trips_through_json() {
        let c = EngineConfig::default();
        c.validate().unwrap();
        let json = serde_json::to_string(&c).unwrap();
        let back: EngineConfig = serde_json::from_str(&json).unwrap();
        assert_eq!(back.head.max_bytes, c.head.max_bytes);
        let partial: EngineConfig =
            serde_json::from_str(r#"{"head": {"max_age": "30s"}, "wal": {"fsync": "never"}}"#)
                .unwrap();
        assert_eq!(partial.head.max_age, Duration::from_secs(30));
        assert_eq!(partial.wal.fsync, FsyncPolicy::Never);
    }

    #[test]
    fn validate_names_the_bad_field() {
        let mut c = EngineConfig::default();
        c.block.zstd_level = 40;
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .contains("block.zstd_level")
        );
        let mut c = EngineConfig::default();
        c.storage.url = Some("not a url".into());
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .contains("storage.url")
        );
        let unknown = serde_json::from_str::<EngineConfig>(r#"{"hed": {}}"#).unwrap_err();
        assert!(
            unknown.to_string().contains("unknown field `hed`"),
            "{unknown}"
        );
        let mut c = EngineConfig::default();
        c.storage.flush_backoff_max = Duration::from_millis(10);
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .contains("storage.flush_backoff_max")
        );
        let mut c = EngineConfig::default();
        c.storage.request_timeout = Duration::ZERO;
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .contains("storage.request_timeout")
        );
        let storage: StorageConfig = serde_json::from_str(
            r#"{"request_timeout": "2s", "max_retries": 0, "flush_backoff_max": "5m"}"#,
        )
        .unwrap();
        assert_eq!(storage.request_timeout, Duration::from_secs(2));
        assert_eq!(storage.max_retries, 0);
        assert_eq!(storage.flush_backoff_max, Duration::from_secs(300));
        assert_eq!(storage.connect_timeout, Duration::from_secs(5));
    }
}
