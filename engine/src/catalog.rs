//! The catalog of a shared store: `catalog/manifest.json` in the bucket, the one list of
//! committed blocks when several processes (ingesters, a compactor) write blocks into one
//! bucket and queriers read them.
//!
//! A block is committed when the manifest names it; its files are uploaded first, so a block
//! in the bucket that the manifest does not name is an upload in progress or an orphan (a
//! writer that died between upload and commit), which the compactor deletes after a grace
//! period. Every change is a [`CatalogDelta`] applied by compare-and-swap: read the manifest
//! and its ETag, apply the delta, write it back with `If-Match` (`If-None-Match: *` for the
//! first); on a lost race, read again and retry. Deltas are idempotent (adding a committed
//! block, or tombstoning a tombstoned one, changes nothing), so an ambiguous outcome (a
//! timeout, a retried 5xx) is settled by re-reading. A delta that cannot apply (a compaction
//! whose sources another writer removed) fails with [`Error::CatalogConflict`] and changes
//! nothing.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use object_store::path::Path;
use object_store::{GetOptions, ObjectStore, PutMode, PutOptions, PutPayload, UpdateVersion};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use tracing::debug;

use crate::block::BlockMeta;
use crate::error::{Error, Result};

/// Where the manifest lives in the bucket.
pub(crate) const MANIFEST_PATH: &str = "catalog/manifest.json";

/// Version of the manifest layout.
const MANIFEST_VERSION: u32 = 1;

/// The shared store's list of committed blocks (`catalog/manifest.json`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Layout version (1).
    pub version: u32,
    /// Incremented by every commit that changes something.
    pub generation: u64,
    /// Committed blocks by id, each with its `meta.json` (so readers need not fetch it).
    pub blocks: BTreeMap<String, BlockMeta>,
    /// Blocks removed (compacted away, or dropped by retention) and when, in milliseconds since
    /// the Unix epoch: their files are deleted after `shared.deletion_delay`, and the entry
    /// goes after that. A removed block is never committed again.
    pub tombstones: BTreeMap<String, u64>,
    /// Per ingester: every WAL segment numbered below this is in a committed block (so a
    /// restarted ingester replays only the rest).
    pub wal_covered: BTreeMap<String, u64>,
}

/// One change to the manifest, applied atomically.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CatalogDelta {
    /// Blocks to commit.
    pub add: Vec<BlockMeta>,
    /// Blocks to remove; every one must be committed, or (a retried delta) `add` must already
    /// be, else the delta conflicts.
    pub remove: Vec<String>,
    /// Tombstones whose files are deleted: their entries go.
    pub forget: Vec<String>,
    /// An ingester's WAL coverage (raised, never lowered).
    pub wal_covered: Option<(String, u64)>,
    /// The time stamped on new tombstones (ms since the Unix epoch).
    pub now_ms: u64,
}

impl Manifest {
    /// Applies `delta`; `Ok(false)` when it was already applied (nothing changes).
    pub fn apply(&mut self, delta: &CatalogDelta) -> Result<bool> {
        let added_before = delta
            .add
            .iter()
            .all(|b| self.blocks.contains_key(&b.id) || self.tombstones.contains_key(&b.id));
        let missing: Vec<&String> = delta
            .remove
            .iter()
            .filter(|id| !self.blocks.contains_key(*id))
            .collect();
        if !missing.is_empty() {
            // A retried compaction commit: its output is there (or already gone) and its
            // sources are tombstoned. Anything else lost a race.
            let retried = !delta.add.is_empty()
                && added_before
                && delta
                    .remove
                    .iter()
                    .all(|id| self.tombstones.contains_key(id));
            if retried {
                return Ok(false);
            }
            return Err(Error::CatalogConflict {
                reason: format!(
                    "blocks to remove are no longer committed: {}",
                    missing
                        .iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            });
        }
        let mut changed = false;
        for b in &delta.add {
            if !self.blocks.contains_key(&b.id) && !self.tombstones.contains_key(&b.id) {
                self.blocks.insert(b.id.clone(), b.clone());
                changed = true;
            }
        }
        for id in &delta.remove {
            self.blocks.remove(id);
            self.tombstones.insert(id.clone(), delta.now_ms);
            changed = true;
        }
        for id in &delta.forget {
            changed |= self.tombstones.remove(id).is_some();
        }
        if let Some((ingester, upto)) = &delta.wal_covered {
            let e = self.wal_covered.entry(ingester.clone()).or_insert(0);
            if *upto > *e {
                *e = *upto;
                changed = true;
            }
        }
        if changed {
            self.generation += 1;
        }
        Ok(changed)
    }
}

/// A manifest as last read, with what identifies its version in the store.
#[derive(Clone, Debug)]
pub struct CatalogSnapshot {
    /// The manifest.
    pub manifest: Arc<Manifest>,
    /// Its ETag and version; `None` when the store had no manifest (an empty catalog).
    pub version: Option<UpdateVersion>,
    /// When it was read (or found unchanged).
    pub checked: Instant,
}

/// Reads and commits the manifest of a shared store (`catalog/manifest.json`).
#[derive(Debug)]
pub struct Catalog {
    store: Arc<dyn ObjectStore>,
    path: Path,
    last: Mutex<Option<CatalogSnapshot>>,
}

/// Longest wait between commit attempts that lost a race.
const MAX_COMMIT_BACKOFF: Duration = Duration::from_millis(500);
/// Commit attempts before giving up (races lost, or ambiguous store errors).
const MAX_COMMIT_ATTEMPTS: u32 = 64;

impl Catalog {
    /// The catalog of the shared store `store`.
    pub fn new(store: Arc<dyn ObjectStore>) -> Self {
        Catalog {
            store,
            path: Path::from(MANIFEST_PATH),
            last: Mutex::new(None),
        }
    }

    /// The manifest as last read, without asking the store.
    pub fn cached(&self) -> Option<CatalogSnapshot> {
        self.last.lock().clone()
    }

    /// The current manifest: a conditional GET (`If-None-Match`) when one was read before, so
    /// an unchanged manifest costs one small request.
    pub async fn read(&self) -> Result<CatalogSnapshot> {
        let previous = self.cached();
        let if_none_match = previous
            .as_ref()
            .and_then(|s| s.version.as_ref())
            .and_then(|v| v.e_tag.clone());
        let options = GetOptions {
            if_none_match,
            ..Default::default()
        };
        let snapshot = match self.store.get_opts(&self.path, options).await {
            Ok(r) => {
                let version = UpdateVersion {
                    e_tag: r.meta.e_tag.clone(),
                    version: r.meta.version.clone(),
                };
                let bytes = r.bytes().await.map_err(Error::store(&self.path))?;
                CatalogSnapshot {
                    manifest: Arc::new(decode(&bytes)?),
                    version: Some(version),
                    checked: Instant::now(),
                }
            }
            Err(e @ object_store::Error::NotModified { .. }) => match previous {
                Some(p) => CatalogSnapshot {
                    checked: Instant::now(),
                    ..p
                },
                None => return Err(Error::store(&self.path)(e)),
            },
            Err(object_store::Error::NotFound { .. }) => CatalogSnapshot {
                manifest: Arc::new(Manifest {
                    version: MANIFEST_VERSION,
                    ..Default::default()
                }),
                version: None,
                checked: Instant::now(),
            },
            Err(e) => return Err(Error::store(&self.path)(e)),
        };
        *self.last.lock() = Some(snapshot.clone());
        Ok(snapshot)
    }

    /// Applies `delta` by compare-and-swap; returns the manifest it is part of. Fails with
    /// [`Error::CatalogConflict`] (nothing changed) when it cannot apply.
    pub async fn commit(&self, delta: &CatalogDelta) -> Result<Arc<Manifest>> {
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let snapshot = self.read().await?;
            let mut next = (*snapshot.manifest).clone();
            if !next.apply(delta)? {
                return Ok(snapshot.manifest);
            }
            let bytes = Bytes::from(serde_json::to_vec(&next).expect("manifest serializes"));
            let mode = match &snapshot.version {
                Some(v) => PutMode::Update(v.clone()),
                None => PutMode::Create,
            };
            let options = PutOptions {
                mode,
                ..Default::default()
            };
            let outcome = self
                .store
                .put_opts(&self.path, PutPayload::from(bytes), options)
                .await;
            let error = match outcome {
                Ok(put) => {
                    let manifest = Arc::new(next);
                    *self.last.lock() = Some(CatalogSnapshot {
                        manifest: manifest.clone(),
                        version: Some(UpdateVersion {
                            e_tag: put.e_tag,
                            version: put.version,
                        }),
                        checked: Instant::now(),
                    });
                    return Ok(manifest);
                }
                // Lost a race (or our own earlier write landed): re-read and re-apply.
                Err(
                    e @ (object_store::Error::Precondition { .. }
                    | object_store::Error::AlreadyExists { .. }),
                ) => e,
                // Outcome unknown (timeout, 5xx): re-read; an applied delta is then a no-op.
                Err(e) => {
                    debug!(error = %e, attempt, "catalog commit failed; re-reading");
                    e
                }
            };
            if attempt >= MAX_COMMIT_ATTEMPTS {
                return Err(Error::store(&self.path)(error));
            }
            *self.last.lock() = None;
            let backoff = Duration::from_millis(5 * u64::from(attempt.min(100)))
                .min(MAX_COMMIT_BACKOFF)
                .mul_f64(0.5 + jitter());
            tokio::time::sleep(backoff).await;
        }
    }
}

/// A number in [0, 1) that differs between calls and processes.
fn jitter() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    (h.finish() >> 11) as f64 / (1u64 << 53) as f64
}

fn decode(bytes: &[u8]) -> Result<Manifest> {
    let m: Manifest = serde_json::from_slice(bytes).map_err(|e| Error::CorruptCatalog {
        path: MANIFEST_PATH.into(),
        reason: e.to_string(),
    })?;
    if m.version != MANIFEST_VERSION {
        return Err(Error::CorruptCatalog {
            path: MANIFEST_PATH.into(),
            reason: format!("manifest version {} not understood", m.version),
        });
    }
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(id: &str) -> BlockMeta {
        BlockMeta {
            format_version: 1,
            id: id.into(),
            min_time_ns: 0,
            max_time_ns: 1,
            num_samples: 1,
            num_series: 1,
            num_stacks: 1,
            level: 0,
            sources: vec![],
            wal_segment_upto: 0,
            created_at_ms: 0,
            files: Default::default(),
            ingester: None,
        }
    }

    #[test]
    fn deltas_are_idempotent_and_conflicts_change_nothing() {
        let mut m = Manifest::default();
        let add = CatalogDelta {
            add: vec![meta("a"), meta("b")],
            ..Default::default()
        };
        assert!(m.apply(&add).unwrap());
        assert!(!m.apply(&add).unwrap());
        let compact = CatalogDelta {
            add: vec![meta("c")],
            remove: vec!["a".into(), "b".into()],
            now_ms: 7,
            ..Default::default()
        };
        assert!(m.apply(&compact).unwrap());
        assert!(
            !m.apply(&compact).unwrap(),
            "a retried compaction is a no-op"
        );
        assert_eq!(m.blocks.keys().collect::<Vec<_>>(), ["c"]);
        assert_eq!(m.tombstones.get("a"), Some(&7));
        // Another compaction of the same sources lost the race.
        let rival = CatalogDelta {
            add: vec![meta("d")],
            remove: vec!["a".into()],
            ..Default::default()
        };
        let before = m.clone();
        assert!(matches!(
            m.apply(&rival),
            Err(Error::CatalogConflict { .. })
        ));
        assert_eq!(m, before);
        // A tombstoned block never comes back.
        assert!(!m.apply(&add).unwrap());
        assert!(!m.blocks.contains_key("a"));
    }
}
