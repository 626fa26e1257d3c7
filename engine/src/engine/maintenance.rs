//! Background maintenance: age-based head flush, compaction, retention, deferred deletes.

use std::sync::{Arc, Weak};
use std::time::Instant;

use tokio::sync::watch;
use tracing::{info, warn};

use super::{Engine, Inner, Role};
use crate::block::{self, BlockHandle};
use crate::error::Result;

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
        engine.inner.expire_retained();
        let poll = Instant::now()
            .checked_sub(engine.inner.config.shared.catalog_refresh)
            .unwrap_or_else(Instant::now);
        if let Err(e) = engine.inner.refresh_catalog(poll).await {
            warn!(error = %e, "reading the shared store's catalog failed");
        }
        let role_compacts = !matches!(engine.inner.role, Role::Ingester { .. });
        let reader = matches!(engine.inner.role, Role::Reader { .. });
        let (due, unflushed) = {
            let st = engine.inner.state.read();
            let head = st.active.read();
            let due = !head.is_empty()
                && (head.created().elapsed() >= engine.inner.config.head.max_age
                    || head.bytes() >= engine.inner.config.head.max_bytes);
            (due, !st.frozen.is_empty())
        };
        // A head whose flush failed is retried once its back-off has passed, whether or not
        // the head after it is due; `flush` logs and counts failures.
        let backoff = &engine.inner.flush_backoff;
        let retry = unflushed && backoff.failing().is_some();
        if (due || retry) && backoff.ready() {
            let _ = engine.flush().await;
        }
        if role_compacts
            && engine.inner.config.compaction.enabled
            && last_compaction.elapsed() >= compaction_every
        {
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
        // Retention and garbage collection: the local store's, or the shared store's
        // compactor (a reader with compaction on).
        let maintains = match engine.inner.role {
            Role::Local => true,
            Role::Ingester { .. } => false,
            Role::Reader { .. } => engine.inner.config.compaction.enabled,
        };
        if maintains && last_retention.elapsed() >= retention_every {
            last_retention = Instant::now();
            if let Err(e) = engine.apply_retention().await {
                warn!(error = %e, "retention failed");
            }
            if reader && let Err(e) = engine.collect_garbage().await {
                warn!(error = %e, "garbage collection of the shared store failed");
            }
        }
        engine.inner.delete_pending().await;
    }
}

impl Engine {
    /// Drops blocks whose newest sample is older than `retention.max_age`, then the oldest
    /// blocks while the total exceeds `retention.max_bytes`. Returns the dropped block ids.
    pub async fn apply_retention(&self) -> Result<Vec<String>> {
        let inner = &self.inner;
        let _m = inner.maintenance_lock.lock().await;
        let r = &inner.config.retention;
        inner.refresh_catalog(std::time::Instant::now()).await?;
        let dropped: Vec<Arc<BlockHandle>> = {
            let mut st = inner.state.write();
            let mut by_age = inner.blocks_without_pending_sources(&st.blocks);
            by_age.sort_by_key(|b| b.meta.max_time_ns);
            let mut drop = Vec::new();
            if let Some(age) = r.max_age {
                let now = crate::clock::unix_ns(inner.clock.now());
                let cutoff = now.saturating_sub(age.as_nanos().min(i64::MAX as u128) as i64);
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
        if let Role::Reader { catalog, .. } = &inner.role {
            // Tombstoned in the catalog; the files go after `shared.deletion_delay`.
            if !ids.is_empty() {
                let delta = crate::catalog::CatalogDelta {
                    remove: ids.clone(),
                    now_ms: crate::clock::unix_ms(inner.clock.now()),
                    ..Default::default()
                };
                let committed = catalog.commit(&delta).await;
                inner.refresh_catalog(std::time::Instant::now()).await?;
                committed?;
            }
            return Ok(ids);
        }
        inner.pending_deletes.lock().extend(dropped);
        inner.delete_pending().await;
        Ok(ids)
    }
}

impl Inner {
    /// The blocks none of whose compaction sources is still waiting to be deleted. Only these
    /// may be compacted again or dropped: otherwise a crash could bring back a source that no
    /// committed block names any more, duplicating its samples.
    pub(super) fn blocks_without_pending_sources(
        &self,
        blocks: &[Arc<BlockHandle>],
    ) -> Vec<Arc<BlockHandle>> {
        let pending: std::collections::HashSet<String> = self
            .pending_deletes
            .lock()
            .iter()
            .map(|b| b.meta.id.clone())
            .collect();
        blocks
            .iter()
            .filter(|b| !b.meta.sources.iter().any(|s| pending.contains(s)))
            .cloned()
            .collect()
    }

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
            self.symbols.remove(b.id());
            if let Err(e) = block::delete_block(&*self.store, b.id()).await {
                warn!(block = b.id(), error = %e, "deleting a removed block failed; retrying later");
                self.pending_deletes.lock().push(b);
            }
        }
    }
}
