//! Opening the store: lock, block recovery (superseded, incomplete and damaged blocks), WAL
//! replay, background task.

use std::collections::HashSet;
use std::fs;
use std::path::Path;
use std::sync::Arc;

use object_store::ObjectStore;
use parking_lot::{Mutex, RwLock};
use tokio::sync::{Notify, watch};
use tracing::{info, warn};

use super::{Engine, Inner, Role, State, maintenance};
use crate::block::{self, BlockHandle, list_blocks, load_meta, open_block, quarantine_block};
use crate::catalog::Catalog;
use crate::clock::Clock;
use crate::config::EngineConfig;
use crate::error::{Error, Result};
use crate::head::Head;
use crate::store::{CountingStore, StoreCounters, build_store};
use crate::wal::{ReplayReport, Wal};

/// What [`Engine::open`] found and did.
#[derive(Clone, Debug, Default)]
pub struct OpenReport {
    /// WAL replay.
    pub replay: ReplayReport,
    /// Blocks loaded.
    pub blocks: usize,
    /// Blocks moved to `quarantine/` and why.
    pub quarantined_blocks: Vec<(String, String)>,
    /// Prefixes without `meta.json` (interrupted writes) that were deleted.
    pub removed_incomplete: Vec<String>,
    /// Blocks already replaced by a compacted block (interrupted compaction) that were deleted.
    pub removed_superseded: Vec<String>,
    /// Local store only: staging files (`<file>#<digits>`) of writes cut off by a crash, which
    /// the store's listings do not show (so no block deletion finds them), deleted.
    pub removed_staging: Vec<std::path::PathBuf>,
}

/// Whether a file name is a local object store's staging name for a put: `<name>#<digits>`.
fn is_staging_name(name: &str) -> bool {
    name.rsplit_once('#').is_some_and(|(base, n)| {
        !base.is_empty() && !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())
    })
}

/// Deletes the staging files under `<root>/blocks` and `<root>/debuginfo` (local store): a put
/// writes `<file>#<n>` and renames it over `<file>`, so a crash mid-put leaves one behind that
/// nothing lists, and its directory and bytes would stay forever.
fn remove_staging_leftovers(root: &std::path::Path, removed: &mut Vec<std::path::PathBuf>) {
    fn walk(dir: &std::path::Path, removed: &mut Vec<std::path::PathBuf>) {
        let Ok(entries) = fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            match entry.file_type() {
                Ok(t) if t.is_dir() => walk(&path, removed),
                Ok(t) if t.is_file() && is_staging_name(&entry.file_name().to_string_lossy()) => {
                    match fs::remove_file(&path) {
                        Ok(()) => removed.push(path),
                        Err(e) => {
                            warn!(file = %path.display(), error = %e, "cannot delete a staging leftover")
                        }
                    }
                }
                _ => {}
            }
        }
    }
    for top in [block::BLOCKS_PREFIX, "debuginfo"] {
        walk(&root.join(top), removed);
    }
}

/// How [`open`] opens the store.
pub(super) enum OpenAs {
    /// The writer: the only one of a local store, or an ingester of a shared one
    /// (`shared.enabled`).
    Writer,
    /// A reader of a shared store, asking `heads` for the ingesters' recent data.
    Reader(Option<Arc<dyn crate::head_source::HeadSource>>),
}

pub(super) async fn open(
    mut config: EngineConfig,
    store: Option<Arc<dyn ObjectStore>>,
    clock: Arc<dyn Clock>,
    open_as: OpenAs,
) -> Result<Engine> {
    if matches!(open_as, OpenAs::Reader(_)) {
        config.shared.enabled = true;
    }
    config.validate()?;
    if store.is_none() && config.shared.enabled {
        // (An embedder's own store is the embedder's business.)
        config.shared.check_shareable(&config.storage)?;
    }
    let dir = &config.data_dir;
    fs::create_dir_all(dir).map_err(Error::io(dir))?;
    let lock = take_lock(dir)?;
    let local_root =
        (store.is_none() && config.storage.url.is_none()).then(|| config.data_dir.clone());
    let store_counters = Arc::new(StoreCounters::default());
    let store = match store {
        Some(s) => s,
        None => build_store(&config, &store_counters)?,
    };
    let store: Arc<dyn ObjectStore> = Arc::new(CountingStore::new(store, store_counters.clone()));
    let mut report = OpenReport::default();
    if let Some(root) = &local_root {
        remove_staging_leftovers(root, &mut report.removed_staging);
    }
    let (role, blocks, covered) = match open_as {
        OpenAs::Writer if config.shared.enabled => {
            // An ingester: the bucket's blocks are the queriers' and the compactor's business.
            let catalog = Catalog::new(store.clone());
            let id = config.shared.ingester_name();
            let snapshot = catalog.read().await?;
            let covered = snapshot.manifest.wal_covered.get(&id).copied().unwrap_or(0);
            (Role::Ingester { catalog, id }, Vec::new(), covered)
        }
        OpenAs::Writer => {
            let blocks = recover_blocks(&*store, &mut report).await?;
            let covered = blocks
                .iter()
                .map(|b| b.meta.wal_segment_upto)
                .max()
                .unwrap_or(0);
            (Role::Local, blocks, covered)
        }
        OpenAs::Reader(heads) => {
            let catalog = Catalog::new(store.clone());
            let blocks = super::shared::catalog_blocks(&*store, &catalog, &[]).await?;
            report.blocks = blocks.len();
            (Role::Reader { catalog, heads }, blocks, 0)
        }
    };
    let reader = matches!(role, Role::Reader { .. });
    let (head, wal) = replay_wal(&config, covered, reader, &mut report)?;
    let over_budget = head.bytes() >= config.head.max_bytes;
    let snapshot = match &role {
        Role::Reader { catalog, .. } => catalog.cached(),
        _ => None,
    };
    let catalog_generation = snapshot.as_ref().map(|s| s.manifest.generation);
    let catalog_covered = Arc::new(
        snapshot
            .map(|s| super::shared::covered_ids(&s.manifest))
            .unwrap_or_default(),
    );
    let mut state = State {
        active: Arc::new(RwLock::new(head)),
        frozen: Vec::new(),
        blocks,
        retained: Vec::new(),
        catalog_generation,
        catalog_covered,
    };
    state.sort_blocks();
    let background = config.background;
    let symbols = crate::symbol_cache::SymbolCache::new(config.block.symbol_cache_bytes);
    let flush_backoff = super::backoff::FlushBackoff::new(
        config.storage.flush_backoff_initial,
        config.storage.flush_backoff_max,
    );
    let inner = Arc::new(Inner {
        config,
        role,
        clock,
        store,
        local_root,
        wal,
        gate: tokio::sync::RwLock::new(()),
        state: RwLock::new(state),
        flush_lock: tokio::sync::Mutex::new(()),
        maintenance_lock: tokio::sync::Mutex::new(()),
        catalog_lock: tokio::sync::Mutex::new(()),
        flushed: Notify::new(),
        pending_deletes: Mutex::new(Vec::new()),
        symbols,
        closed: Default::default(),
        flush_scheduled: Default::default(),
        flush_backoff,
        store_counters,
        failed_compactions: Mutex::new(Vec::new()),
        report,
        shutdown: Mutex::new(None),
        _lock: lock,
    });
    if over_budget {
        // Best effort: the data is safe in the WAL; the background task retries (`flush`
        // logs a failure).
        let _ = inner.flush().await;
    }
    if background {
        let (tx, rx) = watch::channel(false);
        let handle = tokio::spawn(maintenance::run(Arc::downgrade(&inner), rx));
        *inner.shutdown.lock() = Some((tx, handle));
    }
    Ok(Engine { inner })
}

/// Opens (creating it if need be) and locks `<dir>/LOCK`; [`Error::Locked`] if another engine
/// holds it.
fn take_lock(dir: &Path) -> Result<fs::File> {
    let lock_path = dir.join("LOCK");
    let lock = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(Error::io(&lock_path))?;
    lock.try_lock().map_err(|_| Error::Locked {
        path: lock_path.clone(),
    })?;
    Ok(lock)
}

/// Steps 1-5 of opening (`storage-format.md`, "Open / recovery"): loads every committed block,
/// quarantines damaged ones, and deletes superseded and incomplete ones. Returns the live
/// blocks.
async fn recover_blocks(
    store: &dyn ObjectStore,
    report: &mut OpenReport,
) -> Result<Vec<Arc<BlockHandle>>> {
    let listing = list_blocks(store).await?;
    let mut metas = Vec::new();
    for id in &listing.committed {
        match load_meta(store, id).await {
            Ok(m) => metas.push(m),
            Err(e) => quarantine(store, id, e, report).await?,
        }
    }
    let mut blocks = Vec::with_capacity(metas.len());
    for meta in metas {
        let id = meta.id.clone();
        match open_block(store, meta).await {
            Ok(b) => blocks.push(b),
            Err(e) => quarantine(store, &id, e, report).await?,
        }
    }
    let duplicates = duplicate_compactions(&blocks);
    for id in &duplicates {
        block::delete_block(store, id).await?;
        report.removed_superseded.push(id.clone());
    }
    blocks.retain(|b| !duplicates.contains(&b.meta.id));
    // A compacted block lists what it replaced; any of those still present is an interrupted
    // compaction's leftover. Only a compacted block that opened cleanly supersedes anything, so
    // a damaged one is quarantined and its sources stay.
    let superseded: HashSet<String> = blocks
        .iter()
        .flat_map(|b| b.meta.sources.iter().cloned())
        .collect();
    for id in listing
        .committed
        .iter()
        .chain(&listing.incomplete)
        .filter(|id| superseded.contains(*id))
    {
        block::delete_block(store, id).await?;
        report.removed_superseded.push(id.clone());
    }
    blocks.retain(|b| !superseded.contains(&b.meta.id));
    for id in listing
        .incomplete
        .iter()
        .filter(|id| !superseded.contains(*id))
    {
        block::delete_block(store, id).await?;
        report.removed_incomplete.push(id.clone());
    }
    report.blocks = blocks.len();
    Ok(blocks)
}

/// A compaction whose upload failed after its meta.json was written, then retried, leaves
/// two committed blocks over the same sources: the ids of all but the oldest of each such set.
fn duplicate_compactions(blocks: &[Arc<BlockHandle>]) -> HashSet<String> {
    let mut compacted: Vec<&Arc<BlockHandle>> = blocks
        .iter()
        .filter(|b| !b.meta.sources.is_empty())
        .collect();
    compacted.sort_by(|a, b| a.meta.id.cmp(&b.meta.id));
    let mut claimed: HashSet<&str> = HashSet::new();
    let mut duplicates: HashSet<String> = HashSet::new();
    for b in compacted {
        if b.meta.sources.iter().any(|s| claimed.contains(s.as_str())) {
            duplicates.insert(b.meta.id.clone());
        } else {
            claimed.extend(b.meta.sources.iter().map(String::as_str));
        }
    }
    duplicates
}

/// Step 6: replays the WAL segments not covered by a block into a new head and opens the WAL
/// for writing. A `reader` refuses a WAL holding samples (the directory was an ingester's).
fn replay_wal(
    config: &EngineConfig,
    covered: u64,
    reader: bool,
    report: &mut OpenReport,
) -> Result<(Head, Wal)> {
    let mut head = Head::new();
    let wal_dir = config.data_dir.join("wal");
    let (wal, replay) = Wal::open(&wal_dir, &config.wal, covered, &mut |batch| {
        if reader {
            return Err(Error::ReadOnly {
                reason: format!(
                    "{} holds an ingester's write-ahead log with samples not yet in a block; \
                     run an ingester on it, or give this querier or compactor another --data-dir",
                    wal_dir.display()
                ),
            });
        }
        head.apply(&batch);
        Ok(())
    })?;
    report.replay = replay;
    report.replay.undefined_stacks = head.undefined_stacks();
    if report.replay.undefined_stacks > 0 {
        warn!(
            stacks = report.replay.undefined_stacks,
            "replayed samples refer to stacks defined only in damaged WAL records"
        );
    }
    info!(
        blocks = report.blocks,
        replayed_records = report.replay.records,
        replayed_samples = report.replay.samples,
        wal_damage = report.replay.damage.len(),
        quarantined_blocks = report.quarantined_blocks.len(),
        staging_leftovers = report.removed_staging.len(),
        "engine opened"
    );
    Ok((head, wal))
}

async fn quarantine(
    store: &dyn ObjectStore,
    id: &str,
    error: Error,
    report: &mut OpenReport,
) -> Result<()> {
    // Only a definite defect quarantines a block; any other error (an unreachable store) fails
    // the open instead, leaving the block untouched.
    if !matches!(error, Error::CorruptBlock { .. }) {
        return Err(error);
    }
    let to = quarantine_block(store, id).await?;
    warn!(block = id, error = %error, quarantined_to = %to, "block quarantined");
    report
        .quarantined_blocks
        .push((id.to_owned(), error.to_string()));
    Ok(())
}
