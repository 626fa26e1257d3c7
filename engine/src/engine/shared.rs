//! A shared store's side of the engine: a reader's blocks from the catalog, an ingester's
//! answers for its heads, flushed heads' expiry, and the compactor's garbage collection
//! (tombstoned blocks after `shared.deletion_delay`, orphaned uploads after
//! `shared.orphan_grace`).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use tracing::{info, warn};

use super::{Engine, Inner, Role};
use crate::block::{self, BlockHandle, open_block};
use crate::catalog::{Catalog, CatalogDelta};
use crate::error::{Error, Result};
use crate::head_source::{HeadPart, HeadScanOutput, HeadScanRequest, HeadScanResponse};
use crate::scan::{PartSource, ScanPart, scan_schema};

/// The catalog's blocks, read now: handles in `current` are reused, new blocks are opened
/// (their index read). Sorted by (min time, id).
pub(super) async fn catalog_blocks(
    store: &dyn ObjectStore,
    catalog: &Catalog,
    current: &[Arc<BlockHandle>],
) -> Result<Vec<Arc<BlockHandle>>> {
    let snapshot = catalog.read().await?;
    let known: HashMap<&str, &Arc<BlockHandle>> = current.iter().map(|b| (b.id(), b)).collect();
    let mut blocks = Vec::with_capacity(snapshot.manifest.blocks.len());
    for (id, meta) in &snapshot.manifest.blocks {
        match known.get(id.as_str()) {
            Some(b) => blocks.push((*b).clone()),
            None => blocks.push(open_block(store, meta.clone()).await?),
        }
    }
    blocks.sort_by(|a, b| (a.meta.min_time_ns, &a.meta.id).cmp(&(b.meta.min_time_ns, &b.meta.id)));
    Ok(blocks)
}

/// The blocks whose data a manifest holds: its blocks and its tombstones.
pub(super) fn covered_ids(m: &crate::catalog::Manifest) -> HashSet<String> {
    m.blocks
        .keys()
        .chain(m.tombstones.keys())
        .cloned()
        .collect()
}

/// What one garbage collection of a shared store removed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GarbageReport {
    /// Tombstoned blocks whose files were deleted (and tombstones dropped).
    pub deleted: Vec<String>,
    /// Uploads never committed, older than `shared.orphan_grace`, deleted.
    pub orphans: Vec<String>,
}

impl Inner {
    /// A reader's catalog snapshot, re-read unless it was read at or after `fresher_than`
    /// (concurrent callers share one read): the blocks in the state follow it. No-op on
    /// other roles.
    ///
    /// Queries pass the moment they start, so their snapshot is read after that moment: a
    /// block committed before a query started is always in its snapshot, even when the
    /// ingester that flushed it has since crashed (and lost the flushed head it kept).
    pub(super) async fn refresh_catalog(&self, fresher_than: Instant) -> Result<()> {
        let Role::Reader { catalog, .. } = &self.role else {
            return Ok(());
        };
        let fresh = |c: &Catalog| c.cached().is_some_and(|s| s.checked >= fresher_than);
        if fresh(catalog) {
            return Ok(());
        }
        let _g = self.catalog_lock.lock().await;
        if fresh(catalog) {
            return Ok(()); // another caller read it meanwhile
        }
        let current = self.state.read().blocks.clone();
        let blocks = catalog_blocks(&*self.store, catalog, &current).await?;
        let snapshot = catalog.cached();
        let generation = snapshot.as_ref().map(|s| s.manifest.generation);
        let mut st = self.state.write();
        if st.catalog_generation != generation {
            let gone: Vec<String> = st
                .blocks
                .iter()
                .filter(|b| !blocks.iter().any(|n| n.id() == b.id()))
                .map(|b| b.id().to_owned())
                .collect();
            for id in &gone {
                self.symbols.remove(id);
            }
            st.blocks = blocks;
            st.catalog_generation = generation;
            st.catalog_covered = Arc::new(
                snapshot
                    .map(|s| covered_ids(&s.manifest))
                    .unwrap_or_default(),
            );
        }
        Ok(())
    }

    /// Drops an ingester's flushed heads whose retention has passed.
    pub(super) fn expire_retained(&self) {
        let now = Instant::now();
        self.state.write().retained.retain(|r| r.until > now);
    }
}

impl Engine {
    /// An ingester's answer for its heads (the head taking appends, heads being flushed, and
    /// flushed heads still retained), each tagged with its block: what a querier's
    /// [`HeadSource`](crate::HeadSource) asks for. Stack sums are summed here, per head.
    pub async fn answer_head_scan(&self, req: &HeadScanRequest) -> Result<HeadScanResponse> {
        self.inner.expire_retained();
        let heads = self.inner.state.read().tagged_heads();
        let r = &req.request;
        let mut out = HeadScanResponse::default();
        for (flushed_as, head) in heads {
            let labelled = req.output == HeadScanOutput::Series;
            let (series, batches) =
                head.read()
                    .scan(&r.profile_type, &r.matchers, r.range, labelled);
            if labelled {
                out.series.extend(series);
                continue;
            }
            if batches.is_empty() {
                continue;
            }
            let part = ScanPart {
                source: PartSource::Memory(batches),
                projection: None,
                schema: scan_schema(),
            };
            let batches = match &req.output {
                HeadScanOutput::StackSums => vec![part.stack_sums().await?],
                HeadScanOutput::Rows(projection) => {
                    let PartSource::Memory(batches) = part.source else {
                        unreachable!("built above")
                    };
                    match projection {
                        None => batches,
                        Some(p) => batches
                            .iter()
                            .map(|b| b.project(p))
                            .collect::<std::result::Result<_, _>>()
                            .map_err(Error::arrow("projecting head samples"))?,
                    }
                }
                HeadScanOutput::Series => unreachable!("handled above"),
            };
            out.parts.push(HeadPart {
                flushed_as,
                batches,
            });
        }
        Ok(out)
    }

    /// This engine's role in its store: `local`, `ingester` or `reader`.
    pub fn role(&self) -> &'static str {
        match self.inner.role {
            Role::Local => "local",
            Role::Ingester { .. } => "ingester",
            Role::Reader { .. } => "reader",
        }
    }

    /// The catalog of a shared store as last read (`None` on a local store).
    pub fn catalog_manifest(&self) -> Option<Arc<crate::catalog::Manifest>> {
        match &self.inner.role {
            Role::Ingester { catalog, .. } | Role::Reader { catalog, .. } => {
                catalog.cached().map(|s| s.manifest)
            }
            Role::Local => None,
        }
    }

    /// Re-reads a reader's catalog now (every query re-reads it first, with a conditional
    /// GET; the background task every `shared.catalog_refresh`).
    pub async fn refresh_catalog(&self) -> Result<()> {
        self.inner.refresh_catalog(Instant::now()).await
    }

    /// The compactor's garbage collection: deletes the files of blocks tombstoned more than
    /// `shared.deletion_delay` ago and drops their tombstones, and deletes uploads the catalog
    /// never named whose newest file is older than `shared.orphan_grace`. Readers only.
    pub async fn collect_garbage(&self) -> Result<GarbageReport> {
        let inner = &self.inner;
        let Role::Reader { catalog, .. } = &inner.role else {
            return Ok(GarbageReport::default());
        };
        let _m = inner.maintenance_lock.lock().await;
        let snapshot = catalog.read().await?;
        let now = SystemTime::now();
        let now_ms = crate::clock::unix_ms(now);
        let delay = inner.config.shared.deletion_delay.as_millis() as u64;
        let mut report = GarbageReport::default();
        for (id, at) in &snapshot.manifest.tombstones {
            if at.saturating_add(delay) <= now_ms {
                block::delete_block(&*inner.store, id).await?;
                report.deleted.push(id.clone());
            }
        }
        if !report.deleted.is_empty() {
            catalog
                .commit(&CatalogDelta {
                    forget: report.deleted.clone(),
                    now_ms,
                    ..Default::default()
                })
                .await?;
        }
        // Orphans: block prefixes the catalog does not know, untouched for the grace period.
        let prefix = Path::from(block::BLOCKS_PREFIX);
        let objects: Vec<_> = inner
            .store
            .list(Some(&prefix))
            .try_collect()
            .await
            .map_err(Error::store(&prefix))?;
        let mut newest: BTreeMap<String, SystemTime> = BTreeMap::new();
        for o in objects {
            let parts: Vec<_> = o.location.parts().collect();
            if parts.len() != 3 {
                continue;
            }
            let t = SystemTime::from(o.last_modified);
            let e = newest.entry(parts[1].as_ref().to_owned()).or_insert(t);
            *e = (*e).max(t);
        }
        let snapshot = catalog.read().await?;
        let grace = inner.config.shared.orphan_grace;
        let known: HashSet<&String> = snapshot
            .manifest
            .blocks
            .keys()
            .chain(snapshot.manifest.tombstones.keys())
            .collect();
        for (id, t) in newest {
            let age = now.duration_since(t).unwrap_or(Duration::ZERO);
            if !known.contains(&id) && age >= grace && !report.deleted.contains(&id) {
                warn!(block = %id, ?age, "deleting an upload the catalog never committed");
                block::delete_block(&*inner.store, &id).await?;
                report.orphans.push(id);
            }
        }
        if report != GarbageReport::default() {
            info!(
                deleted = report.deleted.len(),
                orphans = report.orphans.len(),
                "collected garbage in the shared store"
            );
        }
        Ok(report)
    }
}

/// Where ingesters' heartbeats live in a shared bucket.
const HEARTBEATS_PREFIX: &str = "cluster/ingesters";

/// An ingester's heartbeat in the bucket (`cluster/ingesters/<id>.json`): who it is, where it
/// answers, and when it last wrote.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct IngesterHeartbeat {
    /// The ingester's name (`shared.ingester_id`).
    pub id: String,
    /// Where it answers (as it advertises itself).
    pub address: String,
    /// When it wrote this, milliseconds since the Unix epoch.
    pub at_ms: u64,
}

impl Engine {
    /// This ingester's name in a shared store (`None` for other roles).
    pub fn ingester_id(&self) -> Option<&str> {
        match &self.inner.role {
            Role::Ingester { id, .. } => Some(id),
            _ => None,
        }
    }

    /// An ingester writes its heartbeat (`address` is where it answers); no-op for other
    /// roles.
    pub async fn write_heartbeat(&self, address: &str) -> Result<()> {
        let Role::Ingester { id, .. } = &self.inner.role else {
            return Ok(());
        };
        let beat = IngesterHeartbeat {
            id: id.clone(),
            address: address.to_owned(),
            at_ms: crate::clock::unix_ms(SystemTime::now()),
        };
        let path = Path::from(format!("{HEARTBEATS_PREFIX}/{id}.json"));
        let bytes = serde_json::to_vec(&beat).expect("a heartbeat serializes");
        self.inner
            .store
            .put(&path, object_store::PutPayload::from(bytes))
            .await
            .map_err(Error::store(&path))?;
        Ok(())
    }

    /// Every ingester heartbeat in the shared bucket (stale ones included; the caller judges
    /// by `at_ms`). Heartbeats that do not parse are skipped.
    pub async fn ingester_heartbeats(&self) -> Result<Vec<IngesterHeartbeat>> {
        let prefix = Path::from(HEARTBEATS_PREFIX);
        let objects: Vec<_> = self
            .inner
            .store
            .list(Some(&prefix))
            .try_collect()
            .await
            .map_err(Error::store(&prefix))?;
        let mut out = Vec::new();
        for o in objects {
            let r = match self.inner.store.get(&o.location).await {
                Ok(r) => r,
                Err(object_store::Error::NotFound { .. }) => continue,
                Err(e) => return Err(Error::store(&o.location)(e)),
            };
            let bytes = r.bytes().await.map_err(Error::store(&o.location))?;
            match serde_json::from_slice::<IngesterHeartbeat>(&bytes) {
                Ok(b) => out.push(b),
                Err(e) => {
                    warn!(path = %o.location, error = %e, "skipping a heartbeat that does not parse")
                }
            }
        }
        out.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(out)
    }
}

impl Engine {
    /// The scan part `desc` describes, read from this engine: a block of its catalog (opened
    /// from the bucket if this engine's snapshot no longer or not yet lists it — a block's
    /// files outlive its removal by `shared.deletion_delay`), or its ingesters' heads.
    pub async fn part(
        &self,
        desc: &crate::part_desc::PartDesc,
        projection: Option<&[usize]>,
    ) -> Result<ScanPart> {
        use crate::part_desc::PartDesc;
        let request = desc.request()?;
        let schema = crate::scan::projected_scan_schema(projection)?;
        let projection: Option<Arc<[usize]>> = projection.map(Arc::from);
        let source = match desc {
            PartDesc::Block {
                block,
                series,
                every_series,
                ..
            } => {
                let handle = self.block_handle(block).await?;
                PartSource::Block(crate::block::BlockScan {
                    store: self.inner.store.clone(),
                    block: handle,
                    profile_type: request.profile_type.clone(),
                    series: series.as_slice().into(),
                    every_series: *every_series,
                    range: request.range,
                })
            }
            PartDesc::RemoteHeads { in_snapshot, .. } => {
                let Role::Reader {
                    heads: Some(source),
                    ..
                } = &self.inner.role
                else {
                    return Err(Error::ReadOnly {
                        reason: "this process does not ask ingesters for their heads".into(),
                    });
                };
                PartSource::Remote(crate::head_source::RemoteHeads {
                    source: source.clone(),
                    request,
                    in_snapshot: Arc::new(in_snapshot.iter().cloned().collect()),
                })
            }
        };
        Ok(ScanPart {
            source,
            projection,
            schema,
        })
    }

    /// Block `id`: from the state, else after a catalog refresh, else opened from the bucket.
    async fn block_handle(&self, id: &str) -> Result<Arc<BlockHandle>> {
        let find = |e: &Engine| {
            e.inner
                .state
                .read()
                .blocks
                .iter()
                .find(|b| b.id() == id)
                .cloned()
        };
        if let Some(b) = find(self) {
            return Ok(b);
        }
        self.inner.refresh_catalog(Instant::now()).await?;
        if let Some(b) = find(self) {
            return Ok(b);
        }
        let meta = block::load_meta(&*self.inner.store, id).await?;
        open_block(&*self.inner.store, meta).await
    }
}
