//! Background maintenance: age-based head flush, compaction, retention, deferred deletes.

use std::collections::BTreeMap;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use arrow::array::RecordBatch;
use arrow::compute::{SortColumn, cast, concat_batches, lexsort_to_indices, take_record_batch};
use arrow::datatypes::DataType;
use tokio::sync::watch;
use tracing::{info, warn};

use super::{Engine, Inner};
use crate::block::{
    self, BlockHandle, BlockMeta, BlockSource, SymbolFilter, encode_block, read_all_samples,
    read_symbols, samples_schema,
};
use crate::error::{Error, Result};
use crate::symbol_tables::SymbolTables;

pub(super) async fn run(weak: Weak<Inner>, mut shutdown: watch::Receiver<bool>) {
    let (check, compaction_every, retention_every) = match weak.upgrade() {
        Some(i) => (
            i.config.head.check_interval,
            i.config.compaction.interval,
            i.config.retention.interval,
        ),
        None => return,
    };
    let mut last_compaction = Instant::now();
    let mut last_retention = Instant::now();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(check) => {}
            _ = shutdown.changed() => return,
        }
        let Some(inner) = weak.upgrade() else { return };
        let engine = Engine { inner };
        let due = {
            let st = engine.inner.state.read();
            let head = st.active.read();
            !head.is_empty()
                && (head.created().elapsed() >= engine.inner.config.head.max_age
                    || head.bytes() >= engine.inner.config.head.max_bytes)
        };
        if due && let Err(e) = engine.flush().await {
            warn!(error = %e, "scheduled flush failed");
        }
        if engine.inner.config.compaction.enabled && last_compaction.elapsed() >= compaction_every {
            last_compaction = Instant::now();
            loop {
                match engine.compact().await {
                    Ok(Some(_)) => continue,
                    Ok(None) => break,
                    Err(e) => {
                        warn!(error = %e, "compaction failed");
                        break;
                    }
                }
            }
        }
        if last_retention.elapsed() >= retention_every {
            last_retention = Instant::now();
            if let Err(e) = engine.apply_retention().await {
                warn!(error = %e, "retention failed");
            }
        }
        engine.inner.delete_pending().await;
    }
}

fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

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

fn sort_samples(batches: Vec<RecordBatch>) -> Result<RecordBatch> {
    // Dictionaries differ between blocks: sort on plain strings, then dictionary-encode again.
    let plain: Vec<RecordBatch> = batches
        .into_iter()
        .map(|b| {
            let mut cols = b.columns().to_vec();
            cols[0] =
                cast(&cols[0], &DataType::Utf8).map_err(Error::arrow("decoding profile types"))?;
            let mut fields: Vec<_> = samples_schema()
                .fields()
                .iter()
                .map(|f| f.as_ref().clone())
                .collect();
            fields[0] = fields[0].clone().with_data_type(DataType::Utf8);
            RecordBatch::try_new(Arc::new(arrow::datatypes::Schema::new(fields)), cols)
                .map_err(Error::arrow("decoding profile types"))
        })
        .collect::<Result<_>>()?;
    let Some(first) = plain.first() else {
        return Ok(RecordBatch::new_empty(samples_schema()));
    };
    let all = concat_batches(&first.schema(), &plain).map_err(Error::arrow("merging samples"))?;
    let keys: Vec<SortColumn> = (0..3)
        .map(|i| SortColumn {
            values: all.column(i).clone(),
            options: None,
        })
        .collect();
    let order = lexsort_to_indices(&keys, None).map_err(Error::arrow("sorting samples"))?;
    let sorted = take_record_batch(&all, &order).map_err(Error::arrow("sorting samples"))?;
    let mut cols = sorted.columns().to_vec();
    cols[0] = cast(&cols[0], samples_schema().field(0).data_type())
        .map_err(Error::arrow("encoding profile types"))?;
    RecordBatch::try_new(samples_schema(), cols).map_err(Error::arrow("encoding profile types"))
}

impl Engine {
    /// Merges the oldest run of adjacent small blocks into one (deduplicating their series and
    /// symbol tables). Returns the new block, or `None` when there is nothing to merge.
    ///
    /// Crash safety: the new block's `meta.json` names its sources and is written last; sources
    /// still present on open are deleted then.
    pub async fn compact(&self) -> Result<Option<BlockMeta>> {
        let inner = &self.inner;
        let _m = inner.maintenance_lock.lock().await;
        let c = &inner.config.compaction;
        let group = {
            let st = inner.state.read();
            plan(
                &st.blocks,
                c.max_block_samples,
                c.max_block_duration,
                c.max_sources,
            )
        };
        if group.is_empty() {
            return Ok(None);
        }
        let mut samples = Vec::new();
        let mut symbols = SymbolTables::default();
        let mut series = BTreeMap::new();
        for b in &group {
            samples.extend(read_all_samples(&inner.store, b).await?);
            symbols.merge(read_symbols(&inner.store, b, SymbolFilter::All).await?);
            series.extend(b.index.series.iter().cloned());
        }
        let config = inner.config.block.clone();
        let sources: Vec<String> = group.iter().map(|b| b.meta.id.clone()).collect();
        let level = group.iter().map(|b| b.meta.level).max().unwrap_or(0) + 1;
        let upto = group
            .iter()
            .map(|b| b.meta.wal_segment_upto)
            .max()
            .unwrap_or(0);
        let encoded = tokio::task::spawn_blocking(move || {
            let sorted = sort_samples(samples)?;
            let src = BlockSource {
                id: ulid::Ulid::new().to_string(),
                series: &series,
                symbols: &symbols,
                level,
                sources,
                wal_segment_upto: upto,
            };
            encode_block(&config, src, std::iter::once(Ok(sorted)))
        })
        .await
        .map_err(|e| Error::batch(format!("compaction task failed: {e}")))??;
        let handle = block::upload(&*inner.store, inner.local_root.as_deref(), encoded).await?;
        let meta = handle.meta.clone();
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

    /// Drops blocks whose newest sample is older than `retention.max_age`, then the oldest
    /// blocks while the total exceeds `retention.max_bytes`. Returns the dropped block ids.
    pub async fn apply_retention(&self) -> Result<Vec<String>> {
        let inner = &self.inner;
        let _m = inner.maintenance_lock.lock().await;
        let r = &inner.config.retention;
        let dropped: Vec<Arc<BlockHandle>> = {
            let mut st = inner.state.write();
            let mut by_age: Vec<Arc<BlockHandle>> = st.blocks.clone();
            by_age.sort_by_key(|b| b.meta.max_time_ns);
            let mut drop = Vec::new();
            if let Some(age) = r.max_age {
                let cutoff = now_ns().saturating_sub(age.as_nanos().min(i64::MAX as u128) as i64);
                drop.extend(
                    by_age
                        .iter()
                        .filter(|b| b.meta.max_time_ns < cutoff)
                        .cloned(),
                );
            }
            if let Some(max) = r.max_bytes {
                let mut total: u64 = by_age
                    .iter()
                    .filter(|b| !drop.iter().any(|d| Arc::ptr_eq(d, b)))
                    .map(|b| b.meta.total_bytes())
                    .sum();
                for b in &by_age {
                    if total <= max {
                        break;
                    }
                    if !drop.iter().any(|d| Arc::ptr_eq(d, b)) {
                        total -= b.meta.total_bytes();
                        drop.push(b.clone());
                    }
                }
            }
            st.blocks
                .retain(|b| !drop.iter().any(|d| Arc::ptr_eq(d, b)));
            drop
        };
        let ids: Vec<String> = dropped.iter().map(|b| b.meta.id.clone()).collect();
        if !ids.is_empty() {
            info!(blocks = ?ids, "retention dropped blocks");
        }
        inner.pending_deletes.lock().extend(dropped);
        inner.delete_pending().await;
        Ok(ids)
    }
}

impl Inner {
    /// Deletes removed blocks that no reader holds any more.
    pub(super) async fn delete_pending(&self) {
        let ready: Vec<Arc<BlockHandle>> = {
            let mut pending = self.pending_deletes.lock();
            let (ready, busy): (Vec<_>, Vec<_>) =
                pending.drain(..).partition(|b| Arc::strong_count(b) == 1);
            *pending = busy;
            ready
        };
        for b in ready {
            if let Err(e) = block::delete_block(&*self.store, b.id()).await {
                warn!(block = b.id(), error = %e, "deleting a removed block failed; retrying later");
                self.pending_deletes.lock().push(b);
            }
        }
    }
}
