//! Immutable blocks: one object-store prefix `blocks/<id>/` per flushed or compacted time range,
//! holding Parquet files, the series index and `meta.json` (written last: the commit point).

mod dictionary_sums;
mod index_file;
mod object_reader;
mod page_reader;
mod reader;
mod schema;
mod writer;

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use serde::{Deserialize, Serialize};

pub(crate) use index_file::BlockIndex;
pub(crate) use reader::{BlockScan, SymbolFilter, read_symbols};
pub(crate) use schema::samples_schema;
pub(crate) use writer::{BlockSource, EncodedBlock, encode_block};

use crate::error::{Error, Result};

/// Version of the block layout written by this engine.
pub(crate) const FORMAT_VERSION: u32 = 1;

/// File names within a block prefix.
pub(crate) mod files {
    pub const META: &str = "meta.json";
    pub const INDEX: &str = "index.bin";
    pub const SAMPLES: &str = "samples.parquet";
    pub const STACKS: &str = "stacks.parquet";
    pub const LOCATIONS: &str = "locations.parquet";
    pub const FUNCTIONS: &str = "functions.parquet";
    pub const MAPPINGS: &str = "mappings.parquet";
}

/// A block's `meta.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BlockMeta {
    /// Layout version (1).
    pub format_version: u32,
    /// The block id, a ULID: also the name of its prefix.
    pub id: String,
    /// Earliest sample timestamp (ns).
    pub min_time_ns: i64,
    /// Latest sample timestamp (ns).
    pub max_time_ns: i64,
    /// Samples in `samples.parquet`.
    pub num_samples: u64,
    /// Series in the index.
    pub num_series: u64,
    /// Stacks in `stacks.parquet`.
    pub num_stacks: u64,
    /// 0 for a flushed head, 1 + the highest source level for a compacted block.
    pub level: u32,
    /// Ids of the blocks this one replaced (compaction); empty for a flushed head.
    pub sources: Vec<String>,
    /// Every WAL segment numbered below this is held by this block or an older one.
    pub wal_segment_upto: u64,
    /// Creation time, milliseconds since the Unix epoch.
    pub created_at_ms: u64,
    /// Every other file of the block and its size in bytes.
    pub files: BTreeMap<String, u64>,
    /// The ingester that flushed it, in a shared store (absent otherwise, and in compacted
    /// blocks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingester: Option<String>,
}

impl BlockMeta {
    /// Total bytes of the block's files, `meta.json` excluded.
    pub fn total_bytes(&self) -> u64 {
        self.files.values().sum()
    }
}

/// The prefix holding all blocks.
pub(crate) const BLOCKS_PREFIX: &str = "blocks";
/// The prefix holding quarantined blocks.
pub(crate) const QUARANTINE_PREFIX: &str = "quarantine";

pub(crate) fn block_path(id: &str, file: &str) -> Path {
    Path::from(format!("{BLOCKS_PREFIX}/{id}/{file}"))
}

/// An open block: metadata and index in memory, samples and symbols in the store.
#[derive(Debug)]
pub(crate) struct BlockHandle {
    pub meta: BlockMeta,
    pub index: BlockIndex,
    /// `samples.parquet`'s footer, read on the first scan and kept.
    pub samples_footer: tokio::sync::OnceCell<parquet::arrow::arrow_reader::ArrowReaderMetadata>,
}

impl BlockHandle {
    pub fn id(&self) -> &str {
        &self.meta.id
    }

    pub fn file_size(&self, file: &str) -> u64 {
        self.meta.files.get(file).copied().unwrap_or(0)
    }
}

/// Fsyncs files of a block stored on the local file system under `root`, then their
/// directories, so a power loss cannot lose what the WAL no longer holds.
fn sync_local(root: &std::path::Path, id: &str, names: &[&str]) -> Result<()> {
    let dir = root.join(BLOCKS_PREFIX).join(id);
    for name in names {
        let path = dir.join(name);
        std::fs::File::open(&path)
            .and_then(|f| f.sync_all())
            .map_err(Error::io(&path))?;
    }
    for d in [dir.as_path(), dir.parent().unwrap_or(root), root] {
        std::fs::File::open(d)
            .and_then(|f| f.sync_all())
            .map_err(Error::io(d))?;
    }
    Ok(())
}

/// Uploads an encoded block; `meta.json` goes last, so a block without it never existed. With
/// `local_root` (the local file system store), files are fsynced before and after the commit.
pub(crate) async fn upload(
    store: &dyn ObjectStore,
    local_root: Option<&std::path::Path>,
    block: EncodedBlock,
) -> Result<Arc<BlockHandle>> {
    let id = block.meta.id.clone();
    let names: Vec<&str> = block.files.iter().map(|(n, _)| *n).collect();
    for (name, bytes) in block.files {
        let path = block_path(&id, name);
        store
            .put(&path, PutPayload::from(bytes))
            .await
            .map_err(Error::store(&path))?;
    }
    if let Some(root) = local_root {
        sync_local(root, &id, &names)?;
    }
    let meta_bytes = serde_json::to_vec_pretty(&block.meta).expect("meta serializes");
    let path = block_path(&id, files::META);
    store
        .put(&path, PutPayload::from(Bytes::from(meta_bytes)))
        .await
        .map_err(Error::store(&path))?;
    if let Some(root) = local_root {
        sync_local(root, &id, &[files::META])?;
    }
    Ok(Arc::new(BlockHandle {
        meta: block.meta,
        index: block.index,
        samples_footer: Default::default(),
    }))
}

/// What is found under `blocks/`: committed block ids and prefixes without `meta.json`.
pub(crate) struct Listing {
    pub committed: Vec<String>,
    pub incomplete: Vec<String>,
}

pub(crate) async fn list_blocks(store: &dyn ObjectStore) -> Result<Listing> {
    let prefix = Path::from(BLOCKS_PREFIX);
    let objects: Vec<_> = store
        .list(Some(&prefix))
        .try_collect()
        .await
        .map_err(Error::store(&prefix))?;
    let mut ids: BTreeMap<String, bool> = BTreeMap::new();
    for o in objects {
        let parts: Vec<_> = o.location.parts().collect();
        if parts.len() != 3 {
            continue;
        }
        let id = parts[1].as_ref().to_owned();
        let is_meta = parts[2].as_ref() == files::META;
        *ids.entry(id).or_default() |= is_meta;
    }
    let (committed, incomplete): (Vec<_>, Vec<_>) = ids.into_iter().partition(|(_, m)| *m);
    Ok(Listing {
        committed: committed.into_iter().map(|(id, _)| id).collect(),
        incomplete: incomplete.into_iter().map(|(id, _)| id).collect(),
    })
}

/// Reads a whole object.
async fn get_bytes(store: &dyn ObjectStore, path: &Path) -> Result<Bytes> {
    store
        .get(path)
        .await
        .map_err(Error::store(path))?
        .bytes()
        .await
        .map_err(Error::store(path))
}

/// A missing file makes a block corrupt; other store errors (network, permissions) stay what
/// they are, so a passing outage never gets a healthy block quarantined.
fn missing_is_corrupt(id: &str, file: &str) -> impl FnOnce(Error) -> Error {
    let (block, file) = (id.to_owned(), file.to_owned());
    move |e| match e {
        Error::ObjectStore {
            source: object_store::Error::NotFound { .. },
            ..
        } => Error::CorruptBlock {
            block,
            file,
            reason: "file is missing".into(),
        },
        other => other,
    }
}

/// Reads `meta.json` only.
pub(crate) async fn load_meta(store: &dyn ObjectStore, id: &str) -> Result<BlockMeta> {
    let bytes = get_bytes(store, &block_path(id, files::META))
        .await
        .map_err(missing_is_corrupt(id, files::META))?;
    let meta: BlockMeta = serde_json::from_slice(&bytes).map_err(|e| Error::CorruptBlock {
        block: id.to_owned(),
        file: files::META.into(),
        reason: e.to_string(),
    })?;
    if meta.format_version != FORMAT_VERSION || meta.id != id {
        return Err(Error::CorruptBlock {
            block: id.to_owned(),
            file: files::META.into(),
            reason: format!(
                "format version {} / id {:?} not understood",
                meta.format_version, meta.id
            ),
        });
    }
    Ok(meta)
}

/// Opens a committed block: reads its index and checks every file is present at the size
/// recorded in its metadata (a metadata request; sample files are not read).
pub(crate) async fn open_block(
    store: &dyn ObjectStore,
    meta: BlockMeta,
) -> Result<Arc<BlockHandle>> {
    let id = meta.id.clone();
    for (name, &size) in &meta.files {
        let path = block_path(&id, name);
        let found = store
            .head(&path)
            .await
            .map_err(Error::store(&path))
            .map_err(missing_is_corrupt(&id, name))?;
        if found.size != size {
            return Err(Error::CorruptBlock {
                block: id.clone(),
                file: name.clone(),
                reason: format!("size is {} bytes, meta.json records {size}", found.size),
            });
        }
    }
    let bytes = get_bytes(store, &block_path(&id, files::INDEX))
        .await
        .map_err(missing_is_corrupt(&id, files::INDEX))?;
    let index = BlockIndex::decode(&bytes).map_err(|reason| Error::CorruptBlock {
        block: id.clone(),
        file: files::INDEX.into(),
        reason,
    })?;
    Ok(Arc::new(BlockHandle {
        meta,
        index,
        samples_footer: Default::default(),
    }))
}

async fn objects_of(store: &dyn ObjectStore, id: &str) -> Result<Vec<Path>> {
    let prefix = Path::from(format!("{BLOCKS_PREFIX}/{id}"));
    let objects: Vec<_> = store
        .list(Some(&prefix))
        .try_collect()
        .await
        .map_err(Error::store(&prefix))?;
    Ok(objects.into_iter().map(|o| o.location).collect())
}

/// Deletes a block: `meta.json` first (un-committing it), then the rest.
pub(crate) async fn delete_block(store: &dyn ObjectStore, id: &str) -> Result<()> {
    let meta = block_path(id, files::META);
    match store.delete(&meta).await {
        Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
        Err(e) => return Err(Error::store(&meta)(e)),
    }
    for path in objects_of(store, id).await? {
        match store.delete(&path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => return Err(Error::store(&path)(e)),
        }
    }
    Ok(())
}

/// Moves a block's objects under `quarantine/<id>/`, `meta.json` first so the block stops being
/// committed before anything else moves.
pub(crate) async fn quarantine_block(store: &dyn ObjectStore, id: &str) -> Result<String> {
    let mut paths = objects_of(store, id).await?;
    paths.sort_by_key(|p| p.filename() != Some(files::META));
    for path in paths {
        let name = path.filename().unwrap_or_default().to_owned();
        let to = Path::from(format!("{QUARANTINE_PREFIX}/{id}/{name}"));
        store
            .rename(&path, &to)
            .await
            .map_err(Error::store(&path))?;
    }
    Ok(format!("{QUARANTINE_PREFIX}/{id}/"))
}
