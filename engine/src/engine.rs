//! [`Engine`]: the store's entry point. Write path, flush and the shared state; reads, opening
//! and maintenance live in the submodules.

mod backoff;
mod compaction;
mod late_symbols;
mod maintenance;
mod open;
mod read;
mod shared;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use object_store::ObjectStore;
use parking_lot::{Mutex, RwLock};
use tokio::sync::{Notify, watch};
use tracing::{debug, info, warn};

pub use late_symbols::{LocationLines, UnsymbolizedLocation, UnsymbolizedSweep};
pub use open::OpenReport;
pub use shared::{GarbageReport, IngesterHeartbeat};

use crate::batch::SampleBatch;
use crate::block::{self, BlockHandle, BlockMeta, BlockSource, encode_block};
use crate::clock::{Clock, SystemClock};
use crate::config::EngineConfig;
use crate::error::{Error, Result};
use crate::head::{Head, HeadStats};
use crate::store::StoreCounters;
use crate::wal::{Wal, encode_batch};

/// The head currently taking appends, heads being flushed, and committed blocks.
struct State {
    active: Arc<RwLock<Head>>,
    /// Heads rotated out and not yet in a block, oldest first, with the WAL segment number
    /// below which their data lies.
    frozen: Vec<FrozenHead>,
    /// Committed blocks, sorted by (min time, id). Empty on an ingester of a shared store
    /// (its blocks are read by the queriers).
    blocks: Vec<Arc<BlockHandle>>,
    /// An ingester's flushed heads, kept for `shared.flushed_head_retention` (see
    /// [`crate::head_source`]), oldest first.
    retained: Vec<RetainedHead>,
    /// A reader's catalog generation its `blocks` reflect.
    catalog_generation: Option<u64>,
    /// A reader's blocks whose data the snapshot holds: its blocks and its tombstones (blocks
    /// compacted into one of its blocks, or dropped by retention). A remote head flushed into
    /// one of these is not read.
    catalog_covered: Arc<std::collections::HashSet<String>>,
}

impl State {
    fn heads(&self) -> Vec<Arc<RwLock<Head>>> {
        let mut heads = vec![self.active.clone()];
        heads.extend(self.frozen.iter().map(|f| f.head.clone()));
        heads.extend(self.retained.iter().map(|r| r.head.clone()));
        heads
    }

    /// Every head with the block it is (or will be) flushed as.
    fn tagged_heads(&self) -> Vec<(Option<String>, Arc<RwLock<Head>>)> {
        let mut heads = vec![(None, self.active.clone())];
        heads.extend(
            self.frozen
                .iter()
                .map(|f| (Some(f.block_id.clone()), f.head.clone())),
        );
        heads.extend(
            self.retained
                .iter()
                .map(|r| (Some(r.block_id.clone()), r.head.clone())),
        );
        heads
    }

    fn sort_blocks(&mut self) {
        self.blocks.sort_by(|a, b| {
            (a.meta.min_time_ns, &a.meta.id).cmp(&(b.meta.min_time_ns, &b.meta.id))
        });
    }
}

/// A head rotated out of appends, waiting to become a block.
#[derive(Clone)]
struct FrozenHead {
    head: Arc<RwLock<Head>>,
    /// WAL segments below this hold its data (and older heads').
    wal_upto: u64,
    /// The id its block gets, fixed at rotation so that a retried upload rewrites the same
    /// block instead of committing a second copy.
    block_id: String,
}

/// A head already in a committed block, kept a while for readers with an older catalog.
#[derive(Clone)]
struct RetainedHead {
    head: Arc<RwLock<Head>>,
    block_id: String,
    until: std::time::Instant,
}

/// What this engine is in its store.
pub(crate) enum Role {
    /// The only process using the store (the default): writes, compacts, reads.
    Local,
    /// One of the writers of a shared store: takes appends, flushes blocks and commits them to
    /// the catalog, answers for its heads; never compacts or deletes.
    Ingester {
        /// The bucket's catalog.
        catalog: crate::catalog::Catalog,
        /// This ingester's name.
        id: String,
    },
    /// A reader of a shared store (a querier; a compactor when compaction is on): blocks from
    /// the catalog, heads from the ingesters.
    Reader {
        /// The bucket's catalog.
        catalog: crate::catalog::Catalog,
        /// The ingesters' heads (`None`: blocks only).
        heads: Option<Arc<dyn crate::head_source::HeadSource>>,
    },
}

/// Applies an appended batch to the head if the `append` future is dropped after its WAL
/// record was handed over (a caller that stopped waiting), so WAL and head never disagree, and
/// hands back its series reservation in every case.
struct PendingApply<'a> {
    head: Arc<RwLock<Head>>,
    batch: &'a SampleBatch,
    reserved: u64,
    submitted: bool,
    done: bool,
}

impl PendingApply<'_> {
    /// Ends the append: applies the batch if `apply`, releases the reservation; returns the
    /// head's size.
    fn finish(&mut self, apply: bool) -> u64 {
        self.done = true;
        let mut head = self.head.write();
        head.release_series(self.reserved);
        if apply {
            head.apply(self.batch);
        }
        head.bytes()
    }
}

impl Drop for PendingApply<'_> {
    fn drop(&mut self) {
        if !self.done {
            let submitted = self.submitted;
            self.finish(submitted);
        }
    }
}

pub(crate) struct Inner {
    config: EngineConfig,
    /// Local store, or a shared store's ingester or reader.
    role: Role,
    /// The wall-clock time and new block ids.
    clock: Arc<dyn Clock>,
    store: Arc<dyn ObjectStore>,
    /// The data directory when blocks live in the default local store (fsynced on upload).
    local_root: Option<std::path::PathBuf>,
    wal: Wal,
    /// Appends hold it shared from WAL write to head apply; rotation holds it exclusively, so
    /// a rotation never splits an append between the WAL segment and the head it belongs to.
    gate: tokio::sync::RwLock<()>,
    state: RwLock<State>,
    flush_lock: tokio::sync::Mutex<()>,
    maintenance_lock: tokio::sync::Mutex<()>,
    /// A reader's catalog refresh.
    catalog_lock: tokio::sync::Mutex<()>,
    flushed: Notify,
    /// Blocks removed from the state, deleted once no reader holds them.
    pending_deletes: Mutex<Vec<Arc<BlockHandle>>>,
    /// Symbol tables of recently queried blocks.
    symbols: crate::symbol_cache::SymbolCache,
    closed: AtomicBool,
    /// A background flush is scheduled or running.
    flush_scheduled: AtomicBool,
    /// Back-off between failed flushes; failure and retry counts.
    flush_backoff: backoff::FlushBackoff,
    /// Failed object store operations and requests.
    store_counters: Arc<StoreCounters>,
    /// Compaction outputs whose upload failed and whose removal failed too: they may be
    /// committed, naming sources that are still live. Removed before the next compaction.
    failed_compactions: Mutex<Vec<String>>,
    report: OpenReport,
    shutdown: Mutex<Option<(watch::Sender<bool>, tokio::task::JoinHandle<()>)>>,
    _lock: std::fs::File,
}

/// The durable columnar profile store.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// use strata_engine::*;
/// let dir = tempfile::tempdir().unwrap();
/// let engine = Engine::open(EngineConfig::new(dir.path())).await.unwrap();
///
/// // Write: one CPU sample of `main` for series {job="api"}.
/// let mut b = SampleBatchBuilder::new();
/// let cpu: ProfileType = "process_cpu:cpu:nanoseconds:cpu:nanoseconds:delta".parse().unwrap();
/// let pt = b.profile_type(&cpu);
/// let series = b.series(Labels::new([("job", "api")]).unwrap());
/// let main = b.function(Function { name: "main".into(), ..Default::default() });
/// let loc = b.location(Location { lines: vec![Line { function_id: main, line: 3 }], ..Default::default() });
/// let stack = b.stack(&[loc]);
/// b.sample(SampleRow { profile_type: pt, series, timestamp_ns: 1_000, duration_ns: 10, period: 1, stack, value: 7 });
/// engine.append(&b.build().unwrap()).await.unwrap(); // durable when this returns
///
/// // Read it back: scan, then resolve the stacks to symbols.
/// let out = engine
///     .scan(ScanRequest { profile_type: cpu.clone(), matchers: vec![LabelMatcher::equal("job", "api")], range: TimeRange::ALL })
///     .await
///     .unwrap();
/// let batches = out.collect().await.unwrap();
/// assert_eq!(batches.iter().map(|b| b.num_rows()).sum::<usize>(), 1);
/// assert_eq!(engine.label_values("job", None, &[], TimeRange::ALL).await.unwrap(), vec!["api"]);
///
/// engine.flush().await.unwrap(); // head -> Parquet block
/// engine.close().await.unwrap();
/// # });
/// ```
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

/// Counters describing the whole store.
#[derive(Clone, Debug, Default)]
pub struct EngineStats {
    /// The heads (taking appends and being flushed), summed.
    pub head: HeadStats,
    /// Committed blocks.
    pub blocks: u64,
    /// Samples in blocks.
    pub block_samples: u64,
    /// Bytes of block files.
    pub block_bytes: u64,
    /// Bytes of `samples.parquet` files.
    pub block_sample_bytes: u64,
    /// Bytes of WAL segments on disk.
    pub wal_bytes: u64,
    /// Object store operations that failed after the client's own retries ("not found" and
    /// other expected answers excluded).
    pub store_errors: u64,
    /// HTTP requests to a remote object store that failed: transport errors and timeouts, and
    /// answers 401, 403, 408, 429 and 5xx. The client retries the transient ones with back-off
    /// (`storage.max_retries`), so this counts retries plus requests that failed for good.
    pub store_request_failures: u64,
    /// Flushes (block uploads) that failed; the data stayed in the head and the WAL.
    pub flush_failures: u64,
    /// Flushes retried after a failure (with back-off, `storage.flush_backoff_*`).
    pub flush_retries: u64,
}

impl Engine {
    /// Opens (or creates) the store described by `config`: takes the data directory lock, loads
    /// block metadata and indexes, replays the WAL, and (if `config.background`) starts the
    /// maintenance task on the current Tokio runtime.
    pub async fn open(config: EngineConfig) -> Result<Engine> {
        open::open(config, None, Arc::new(SystemClock), open::OpenAs::Writer).await
    }

    /// Opens a reader of a shared store (a querier, or with `compaction.enabled` the
    /// compactor): blocks come from the bucket's catalog (re-read every
    /// `shared.catalog_refresh`), recent samples from `heads` (the ingesters). Takes no
    /// appends. `config.data_dir` only holds a lock and an empty WAL.
    pub async fn open_reader(
        config: EngineConfig,
        heads: Option<Arc<dyn crate::head_source::HeadSource>>,
    ) -> Result<Engine> {
        open::open(
            config,
            None,
            Arc::new(SystemClock),
            open::OpenAs::Reader(heads),
        )
        .await
    }

    /// [`Engine::open_reader`] over the given object store (tests, embedders).
    pub async fn open_reader_with_store(
        config: EngineConfig,
        store: Arc<dyn ObjectStore>,
        heads: Option<Arc<dyn crate::head_source::HeadSource>>,
    ) -> Result<Engine> {
        open::open(
            config,
            Some(store),
            Arc::new(SystemClock),
            open::OpenAs::Reader(heads),
        )
        .await
    }

    /// Like [`Engine::open`], with blocks in the given object store instead of the one the
    /// config names.
    pub async fn open_with_store(
        config: EngineConfig,
        store: Arc<dyn ObjectStore>,
    ) -> Result<Engine> {
        open::open(
            config,
            Some(store),
            Arc::new(SystemClock),
            open::OpenAs::Writer,
        )
        .await
    }

    /// Like [`Engine::open`], taking the time and new block ids from `clock` instead of the
    /// system clock and random ULIDs: with a [`FixedClock`](crate::FixedClock), the blocks
    /// written are the same on every run (the format fixtures are made this way).
    pub async fn open_with_clock(config: EngineConfig, clock: Arc<dyn Clock>) -> Result<Engine> {
        open::open(config, None, clock, open::OpenAs::Writer).await
    }

    /// What opening found: WAL replay, quarantined and cleaned-up blocks.
    pub fn open_report(&self) -> &OpenReport {
        &self.inner.report
    }

    /// Appends a batch; returns once it is in the WAL (synced per `wal.fsync`) and in the head.
    /// A refused batch (limits) leaves the store unchanged.
    pub async fn append(&self, batch: &SampleBatch) -> Result<()> {
        self.inner.append(batch).await
    }

    /// Flushes the head to a block now (and any head whose earlier flush failed). Returns the
    /// new block's metadata, or `None` when the head was empty.
    pub async fn flush(&self) -> Result<Option<BlockMeta>> {
        self.inner.flush().await
    }

    /// Metadata of every committed block, oldest first.
    pub fn blocks(&self) -> Vec<BlockMeta> {
        self.inner
            .state
            .read()
            .blocks
            .iter()
            .map(|b| b.meta.clone())
            .collect()
    }

    /// Debug info files by build id, kept in the object store that holds the blocks (under
    /// `debuginfo/`).
    pub fn debuginfo(&self) -> crate::debuginfo::DebuginfoStore {
        crate::debuginfo::DebuginfoStore::new(self.inner.store.clone())
    }

    /// Counters.
    pub fn stats(&self) -> EngineStats {
        let st = self.inner.state.read();
        let mut s = EngineStats::default();
        for h in st.heads() {
            let hs = h.read().stats();
            s.head.samples += hs.samples;
            s.head.series += hs.series;
            s.head.stacks += hs.stacks;
            s.head.sample_bytes += hs.sample_bytes;
            s.head.other_bytes += hs.other_bytes;
            s.head.min_time = min_opt(s.head.min_time, hs.min_time, i64::min);
            s.head.max_time = min_opt(s.head.max_time, hs.max_time, i64::max);
        }
        s.blocks = st.blocks.len() as u64;
        for b in &st.blocks {
            s.block_samples += b.meta.num_samples;
            s.block_bytes += b.meta.total_bytes();
            s.block_sample_bytes += b.file_size(block::files::SAMPLES);
        }
        drop(st);
        s.wal_bytes = self.inner.wal.disk_bytes();
        let c = &self.inner.store_counters;
        s.store_errors = c.errors.load(Ordering::Relaxed);
        s.store_request_failures = c.request_failures.load(Ordering::Relaxed);
        let f = &self.inner.flush_backoff;
        s.flush_failures = f.failures.load(Ordering::Relaxed);
        s.flush_retries = f.retries.load(Ordering::Relaxed);
        s
    }

    /// Stops background work and syncs and closes the WAL. Appends after this fail.
    pub async fn close(&self) -> Result<()> {
        self.inner.closed.store(true, Ordering::SeqCst);
        let task = self.inner.shutdown.lock().take();
        if let Some((tx, handle)) = task {
            let _ = tx.send(true);
            let _ = handle.await;
        }
        self.inner.delete_pending().await;
        let _g = self.inner.gate.write().await;
        let synced = self.inner.wal.sync().await;
        self.inner.wal.close();
        match synced {
            Err(Error::WalUnavailable { .. }) | Ok(()) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

/// How long an append waits for a full head's predecessor to finish flushing.
const BACKPRESSURE_LIMIT: Duration = Duration::from_secs(60);

fn min_opt(a: Option<i64>, b: Option<i64>, f: fn(i64, i64) -> i64) -> Option<i64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(f(x, y)),
        (x, None) => x,
        (None, y) => y,
    }
}

impl Inner {
    fn check_limits(&self, batch: &SampleBatch) -> Result<()> {
        let l = &self.config.limits;
        let n = batch.num_samples() as u64;
        if n > l.max_batch_samples {
            return Err(Error::LimitExceeded {
                limit: "limits.max_batch_samples",
                value: n,
                max: l.max_batch_samples,
            });
        }
        for s in batch.series() {
            if s.len() as u64 > l.max_labels_per_series {
                return Err(Error::LimitExceeded {
                    limit: "limits.max_labels_per_series",
                    value: s.len() as u64,
                    max: l.max_labels_per_series,
                });
            }
            for label in s.iter() {
                if label.name.len() as u64 > l.max_label_name_bytes {
                    return Err(Error::LimitExceeded {
                        limit: "limits.max_label_name_bytes",
                        value: label.name.len() as u64,
                        max: l.max_label_name_bytes,
                    });
                }
                if label.value.len() as u64 > l.max_label_value_bytes {
                    return Err(Error::LimitExceeded {
                        limit: "limits.max_label_value_bytes",
                        value: label.value.len() as u64,
                        max: l.max_label_value_bytes,
                    });
                }
            }
        }
        Ok(())
    }

    async fn append(self: &Arc<Self>, batch: &SampleBatch) -> Result<()> {
        if self.closed.load(Ordering::SeqCst) {
            return Err(Error::WalUnavailable {
                reason: "the engine is closed".into(),
            });
        }
        if matches!(self.role, Role::Reader { .. }) {
            return Err(Error::ReadOnly {
                reason: "a reader of a shared store (querier or compactor) takes no samples; \
                         push to an ingester"
                    .into(),
            });
        }
        self.check_limits(batch)?;
        self.wait_for_room().await?;
        // From here to the head update, no rotation: the record lands in a segment of the head
        // it is applied to, so it may leave out what that head already holds.
        let _gate = self.gate.read().await;
        let active = self.state.read().active.clone();
        let (reserved, elision) = {
            let mut head = active.write();
            let reserved = head.reserve_series(batch, self.config.head.max_series)?;
            (reserved, head.elision(batch))
        };
        let mut pending = PendingApply {
            head: active,
            batch,
            reserved,
            submitted: false,
            done: false,
        };
        let mut payload = Vec::with_capacity(64 + batch.num_samples() * 8);
        encode_batch(batch, Some(&elision), &mut payload);
        if payload.len() as u64 > self.config.wal.max_record_bytes {
            pending.finish(false);
            return Err(Error::LimitExceeded {
                limit: "wal.max_record_bytes",
                value: payload.len() as u64,
                max: self.config.wal.max_record_bytes,
            });
        }
        let durable = match self.wal.append(payload) {
            Ok(rx) => {
                pending.submitted = true;
                rx.await.unwrap_or_else(|_| {
                    Err(Error::WalUnavailable {
                        reason: "writer thread stopped".into(),
                    })
                })
            }
            Err(e) => Err(e),
        };
        let bytes = pending.finish(durable.is_ok());
        drop(pending);
        durable?;
        drop(_gate);
        if bytes >= self.config.head.max_bytes {
            self.flush_in_background();
        }
        Ok(())
    }

    /// Backpressure: while the active head is over budget and an older head is still being
    /// flushed, wait for that flush.
    /// Refuses at once with [`Error::Backpressure`] while flushes are failing (e.g. the object
    /// store is down or denies access), and gives up with an error after
    /// [`BACKPRESSURE_LIMIT`], instead of blocking forever.
    async fn wait_for_room(self: &Arc<Self>) -> Result<()> {
        let started = std::time::Instant::now();
        loop {
            let notified = self.flushed.notified();
            let (bytes, flushing) = {
                let st = self.state.read();
                let bytes = st.active.read().bytes();
                (bytes, !st.frozen.is_empty())
            };
            let max = self.config.head.max_bytes;
            if bytes < max {
                return Ok(());
            }
            // Over budget with no older head being written: start a flush and go on, unless
            // the head is twice over (flushes keep failing, e.g. the WAL cannot rotate): then
            // wait as if one were under way rather than grow without bound.
            if !flushing {
                self.flush_in_background();
                if bytes < 2 * max {
                    return Ok(());
                }
            }
            if let Some((attempts, error)) = self.flush_backoff.failing() {
                return Err(Error::Backpressure {
                    reason: format!(
                        "the head holds {bytes} bytes (head.max_bytes is {max}) and the last \
                         {attempts} flushes failed, the last with: {error}"
                    ),
                });
            }
            let waited = started.elapsed();
            if waited >= BACKPRESSURE_LIMIT {
                return Err(Error::LimitExceeded {
                    limit: "head.max_bytes",
                    value: self.state.read().active.read().bytes(),
                    max: self.config.head.max_bytes,
                });
            }
            // Woken by a finished (or failed) flush, or re-check after a while.
            let _ = tokio::time::timeout(Duration::from_secs(1), notified).await;
        }
    }

    fn flush_in_background(self: &Arc<Self>) {
        if !self.flush_backoff.ready() {
            return; // flushes are failing: the maintenance task retries after the back-off
        }
        if self.flush_scheduled.swap(true, Ordering::SeqCst) {
            return; // a background flush is already scheduled or running
        }
        let inner = self.clone();
        tokio::spawn(async move {
            let result = inner.flush().await;
            inner.flush_scheduled.store(false, Ordering::SeqCst);
            if result.is_err() {
                // (`flush` logged it.) Let waiting appenders re-check (and give up).
                inner.flushed.notify_waiters();
            }
        });
    }

    /// Flushes, recording the outcome: a failure is logged and counted, and sets the back-off
    /// before the next automatic attempt; the data stays in the heads and the WAL.
    async fn flush(self: &Arc<Self>) -> Result<Option<BlockMeta>> {
        let _flush = self.flush_lock.lock().await;
        let attempt = self.flush_backoff.started();
        let result = self.flush_locked().await;
        match &result {
            Ok(_) => {
                let failed = self.flush_backoff.succeeded();
                if failed > 0 {
                    info!(attempt, failed, "flush succeeded after failed attempts");
                }
            }
            Err(e) => {
                let retry_in = self.flush_backoff.failed(e);
                warn!(
                    error = %e,
                    attempt,
                    ?retry_in,
                    "flush failed; the data stays in the head and the WAL, retrying with back-off"
                );
            }
        }
        result
    }

    async fn flush_locked(self: &Arc<Self>) -> Result<Option<BlockMeta>> {
        // Heads whose earlier flush failed go first, in order, so WAL coverage stays contiguous.
        let earlier: Vec<FrozenHead> = self.state.read().frozen.clone();
        for frozen in earlier {
            self.flush_frozen(frozen).await?;
        }
        let frozen = {
            let _gate = self.gate.write().await;
            if self.state.read().active.read().is_empty() {
                return Ok(None);
            }
            let upto = self.wal.rotate().await?;
            let mut st = self.state.write();
            let old = std::mem::replace(&mut st.active, Arc::new(RwLock::new(Head::new())));
            let frozen = FrozenHead {
                head: old,
                wal_upto: upto,
                block_id: self.clock.new_block_id(),
            };
            st.frozen.push(frozen.clone());
            frozen
        };
        self.flush_frozen(frozen).await.map(Some)
    }

    async fn flush_frozen(self: &Arc<Self>, frozen: FrozenHead) -> Result<BlockMeta> {
        let config = self.config.block.clone();
        let (head, upto, block_id) = (frozen.head, frozen.wal_upto, frozen.block_id);
        let h = head.clone();
        let created = self.clock.now();
        let ingester = match &self.role {
            Role::Ingester { id, .. } => Some(id.clone()),
            _ => None,
        };
        let encoded = tokio::task::spawn_blocking(move || {
            let head = h.read();
            let series = head.series_map();
            let symbols = head.symbol_tables();
            let src = BlockSource {
                id: block_id,
                series: &series,
                symbols: &symbols,
                level: 0,
                sources: Vec::new(),
                wal_segment_upto: upto,
                created,
                ingester,
            };
            encode_block(&config, src, head.sorted_block_batches())
        })
        .await
        .map_err(|e| Error::batch(format!("flush task failed: {e}")))??;
        let handle = block::upload(&*self.store, self.local_root.as_deref(), encoded).await?;
        let meta = handle.meta.clone();
        if let Role::Ingester { catalog, id } = &self.role {
            let delta = crate::catalog::CatalogDelta {
                add: vec![meta.clone()],
                wal_covered: Some((id.clone(), upto)),
                ..Default::default()
            };
            catalog.commit(&delta).await?;
        }
        {
            let mut st = self.state.write();
            st.frozen.retain(|f| !Arc::ptr_eq(&f.head, &head));
            if matches!(self.role, Role::Ingester { .. }) {
                let until = std::time::Instant::now() + self.config.shared.flushed_head_retention;
                st.retained.push(RetainedHead {
                    head: head.clone(),
                    block_id: meta.id.clone(),
                    until,
                });
            } else {
                st.blocks.push(handle);
                st.sort_blocks();
            }
        }
        self.wal.delete_below(upto)?;
        self.flushed.notify_waiters();
        debug!(block = %meta.id, samples = meta.num_samples, bytes = meta.total_bytes(), "flushed head");
        Ok(meta)
    }
}
