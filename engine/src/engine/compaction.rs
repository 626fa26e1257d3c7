//! Compaction: merging time-adjacent small blocks into one, in bounded memory.
//!
//! The sources' indexes say which (profile type, series) pairs exist and roughly how many rows
//! each has, without reading samples. The merge walks those keys in block order (profile type,
//! then series id) in chunks of about `compaction.merge_chunk_rows` rows: each chunk is read from every source
//! with row-group pruning, sorted by (series id, timestamp) and streamed to the block writer.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use arrow::array::{ArrayRef, DictionaryArray, Int32Array, RecordBatch, StringArray};
use arrow::compute::{SortColumn, concat_batches, lexsort_to_indices, take_record_batch};
use arrow::datatypes::Int32Type;
use object_store::ObjectStore;
use tracing::{info, warn};

use super::{Engine, Role};
use crate::block::{
    self, BlockHandle, BlockMeta, BlockScan, BlockSource, SymbolFilter, encode_block, read_symbols,
    samples_schema,
};
use crate::catalog::CatalogDelta;
use crate::error::{Error, Result};
use crate::model::{Labels, ProfileType, SeriesId};
use crate::scan::{TimeRange, scan_schema};
use crate::symbol_tables::SymbolTables;

/// Picks the oldest run of at least two time-adjacent blocks that fit the compaction limits.
fn plan(
    blocks: &[Arc<BlockHandle>],
    max_samples: u64,
    max_span: Duration,
    max_sources: usize,
) -> Vec<Arc<BlockHandle>> {
    let max_span = max_span.as_nanos().min(i64::MAX as u128) as i64;
    for start in 0..blocks.len() {
        let mut group = vec![blocks[start].clone()];
        let mut samples = blocks[start].meta.num_samples;
        let (mut lo, mut hi) = (
            blocks[start].meta.min_time_ns,
            blocks[start].meta.max_time_ns,
        );
        for b in &blocks[start + 1..] {
            let (nlo, nhi) = (lo.min(b.meta.min_time_ns), hi.max(b.meta.max_time_ns));
            if group.len() >= max_sources
                || samples + b.meta.num_samples > max_samples
                || nhi.saturating_sub(nlo) > max_span
            {
                break;
            }
            group.push(b.clone());
            samples += b.meta.num_samples;
            (lo, hi) = (nlo, nhi);
        }
        if group.len() >= 2 {
            return group;
        }
    }
    Vec::new()
}

/// One unit of merge work: some series of one profile type.
struct Chunk {
    profile_type: ProfileType,
    series: Vec<u64>,
}

/// Splits the sources' (profile type, series) keys into chunks, in block sort order.
fn chunks(group: &[Arc<BlockHandle>], chunk_rows: u64) -> Vec<Chunk> {
    let mut types: BTreeMap<String, (ProfileType, BTreeSet<u64>, u64)> = BTreeMap::new();
    for b in group {
        for t in &b.index.types {
            let e = types
                .entry(t.profile_type.to_string())
                .or_insert_with(|| (t.profile_type.clone(), BTreeSet::new(), 0));
            e.1.extend(t.series.iter().map(|o| b.index.series[o as usize].0.0));
            e.2 += t.samples;
        }
    }
    let mut out = Vec::new();
    for (_, (pt, series, samples)) in types {
        let per_series = samples.div_ceil(series.len().max(1) as u64).max(1);
        let per_chunk = (chunk_rows / per_series).max(1) as usize;
        let series: Vec<u64> = series.into_iter().collect();
        for part in series.chunks(per_chunk) {
            out.push(Chunk {
                profile_type: pt.clone(),
                series: part.to_vec(),
            });
        }
    }
    out
}

/// Reads one chunk from every source and sorts it into block layout.
async fn merge_chunk(
    store: &Arc<dyn object_store::ObjectStore>,
    group: &[Arc<BlockHandle>],
    chunk: &Chunk,
) -> Result<Option<RecordBatch>> {
    let mut parts = Vec::new();
    let series: Arc<[u64]> = chunk.series.as_slice().into();
    for b in group {
        let scan = BlockScan {
            store: store.clone(),
            block: b.clone(),
            profile_type: chunk.profile_type.clone(),
            series: series.clone(),
            every_series: false,
            range: TimeRange::ALL,
        };
        parts.extend(scan.read(None, scan_schema()).await?);
    }
    if parts.is_empty() {
        return Ok(None);
    }
    let all = concat_batches(&scan_schema(), &parts).map_err(Error::arrow("merging samples"))?;
    let keys: Vec<SortColumn> = [0, 1]
        .into_iter()
        .map(|i| SortColumn {
            values: all.column(i).clone(),
            options: None,
        })
        .collect();
    let order = lexsort_to_indices(&keys, None).map_err(Error::arrow("sorting samples"))?;
    let sorted = take_record_batch(&all, &order).map_err(Error::arrow("sorting samples"))?;
    let names = StringArray::from(vec![chunk.profile_type.to_string()]);
    let dict = DictionaryArray::<Int32Type>::try_new(
        Int32Array::from(vec![0; sorted.num_rows()]),
        Arc::new(names),
    )
    .map_err(Error::arrow("encoding profile types"))?;
    let mut cols: Vec<ArrayRef> = vec![Arc::new(dict)];
    cols.extend(sorted.columns().iter().cloned());
    RecordBatch::try_new(samples_schema(), cols)
        .map(Some)
        .map_err(Error::arrow("assembling merged samples"))
}

/// Producer of a compaction's samples: merged chunks, in order, through a small channel
/// (bounded memory); an error ends the stream.
fn spawn_merge(
    store: Arc<dyn ObjectStore>,
    sources: Vec<Arc<BlockHandle>>,
    chunk_rows: u64,
) -> (
    tokio::sync::mpsc::Receiver<Result<RecordBatch>>,
    tokio::task::JoinHandle<()>,
) {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<RecordBatch>>(2);
    let producer = tokio::spawn(async move {
        for chunk in chunks(&sources, chunk_rows) {
            let merged = merge_chunk(&store, &sources, &chunk).await;
            let stop = merged.is_err();
            let item = match merged {
                Ok(Some(b)) => Ok(b),
                Ok(None) => continue,
                Err(e) => Err(e),
            };
            if tx.send(item).await.is_err() || stop {
                return;
            }
        }
    });
    (rx, producer)
}

impl Engine {
    /// Merges the oldest run of adjacent small blocks into one (deduplicating their series and
    /// symbol tables). Returns the new block, or `None` when there is nothing to merge.
    ///
    /// Memory stays bounded: samples stream through in chunks of about a million rows.
    /// Crash safety: the new block's `meta.json` names its sources and is written last; sources
    /// still present on open are deleted then.
    pub async fn compact(&self) -> Result<Option<BlockMeta>> {
        let inner = &self.inner;
        let _m = inner.maintenance_lock.lock().await;
        // An earlier output that may be committed over sources still live must go first, or
        // a later compaction of those sources could leave both behind.
        let failed: Vec<String> = inner.failed_compactions.lock().clone();
        for id in failed {
            block::delete_block(&*inner.store, &id).await?;
            inner.failed_compactions.lock().retain(|f| *f != id);
        }
        // A shared store's compactor plans on the newest catalog.
        inner.refresh_catalog(std::time::Instant::now()).await?;
        let c = &inner.config.compaction;
        let group = {
            let st = inner.state.read();
            let candidates = inner.blocks_without_pending_sources(&st.blocks);
            plan(
                &candidates,
                c.max_block_samples,
                c.max_block_duration,
                c.max_sources,
            )
        };
        if group.is_empty() {
            return Ok(None);
        }
        let mut symbols = SymbolTables::default();
        let mut series: BTreeMap<SeriesId, Labels> = BTreeMap::new();
        for b in &group {
            symbols.merge(read_symbols(&inner.store, b, SymbolFilter::All).await?);
            series.extend(b.index.series.iter().cloned());
        }
        let (mut rx, producer) =
            spawn_merge(inner.store.clone(), group.clone(), c.merge_chunk_rows);
        let config = inner.config.block.clone();
        let ids: Vec<String> = group.iter().map(|b| b.meta.id.clone()).collect();
        let level = group.iter().map(|b| b.meta.level).max().unwrap_or(0) + 1;
        let upto = group
            .iter()
            .map(|b| b.meta.wal_segment_upto)
            .max()
            .unwrap_or(0);
        let (id, created) = (inner.clock.new_block_id(), inner.clock.now());
        let encoded = tokio::task::spawn_blocking(move || {
            let src = BlockSource {
                id,
                series: &series,
                symbols: &symbols,
                level,
                sources: ids,
                wal_segment_upto: upto,
                created,
                ingester: None,
            };
            encode_block(&config, src, std::iter::from_fn(|| rx.blocking_recv()))
        })
        .await
        .map_err(|e| Error::batch(format!("compaction task failed: {e}")))?;
        producer.abort();
        let encoded = encoded?;
        if encoded.meta.num_samples != group.iter().map(|b| b.meta.num_samples).sum::<u64>() {
            return Err(Error::CorruptBlock {
                block: encoded.meta.id,
                file: block::files::SAMPLES.into(),
                reason: "compaction output lost rows; sources kept".into(),
            });
        }
        let id = encoded.meta.id.clone();
        let handle = match block::upload(&*inner.store, inner.local_root.as_deref(), encoded).await
        {
            Ok(h) => h,
            Err(e) => {
                // Its meta.json may have been written: remove it, so a retry does not commit a
                // second block over the same sources (open also resolves such pairs).
                if let Err(cleanup) = block::delete_block(&*inner.store, &id).await {
                    warn!(block = %id, error = %cleanup, "removing a failed compaction output failed; retried before the next compaction");
                    inner.failed_compactions.lock().push(id);
                }
                return Err(e);
            }
        };
        let meta = handle.meta.clone();
        if let Role::Reader { catalog, .. } = &inner.role {
            // Swap sources for output in one commit; the sources' files go after
            // `shared.deletion_delay` (`collect_garbage`).
            let delta = CatalogDelta {
                add: vec![meta.clone()],
                remove: group.iter().map(|b| b.meta.id.clone()).collect(),
                now_ms: crate::clock::unix_ms(inner.clock.now()),
                ..Default::default()
            };
            if let Err(e) = catalog.commit(&delta).await {
                if matches!(e, Error::CatalogConflict { .. }) {
                    // Certainly not committed: another compactor took the sources.
                    if let Err(cleanup) = block::delete_block(&*inner.store, &meta.id).await {
                        warn!(block = %meta.id, error = %cleanup, "removing an uncommitted compaction output failed; the compactor collects it as an orphan");
                    }
                }
                // (Any other error leaves the outcome unknown: a committed output stays, an
                // uncommitted one is collected as an orphan.)
                let _ = inner.refresh_catalog(std::time::Instant::now()).await;
                return Err(e);
            }
            inner.refresh_catalog(std::time::Instant::now()).await?;
            info!(block = %meta.id, sources = meta.sources.len(), samples = meta.num_samples, "compacted blocks of the shared store");
            return Ok(Some(meta));
        }
        {
            let mut st = inner.state.write();
            st.blocks
                .retain(|b| !group.iter().any(|g| Arc::ptr_eq(b, g)));
            st.blocks.push(handle);
            st.sort_blocks();
        }
        info!(block = %meta.id, sources = meta.sources.len(), samples = meta.num_samples, "compacted blocks");
        inner.pending_deletes.lock().extend(group);
        inner.delete_pending().await;
        Ok(Some(meta))
    }
}
