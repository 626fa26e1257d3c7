//! [`DebuginfoStore`]: debug info files (and executables, source archives) by build id, in
//! the object store that holds the blocks, under `debuginfo/`, with a JSON metadata record
//! each ([`DebuginfoMeta`]). The layout is specified in `storage-format.md` ("Debug info").
//!
//! The store only keeps what it is given: validating an upload (is it ELF, does its build id
//! match) and the upload protocol (Parca's `DebuginfoService`) belong to the server.

use std::sync::Arc;

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The prefix holding every debug info object.
pub(crate) const DEBUGINFO_PREFIX: &str = "debuginfo";

/// Longest build id accepted, in bytes.
pub const MAX_BUILD_ID_BYTES: usize = 256;

/// What a stored file is (Parca's `DebuginfoType`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DebuginfoKind {
    /// Debug info for symbolization (e.g. `objcopy --only-keep-debug` output, or an
    /// unstripped binary).
    Debuginfo,
    /// An executable, for disassembly.
    Executable,
    /// A tarball of the sources the debug info names.
    Sources,
}

impl DebuginfoKind {
    /// The object name of the file under the build id's prefix.
    pub fn file_name(self) -> &'static str {
        match self {
            DebuginfoKind::Debuginfo => "debuginfo",
            DebuginfoKind::Executable => "executable",
            DebuginfoKind::Sources => "sources",
        }
    }
}

/// Where an upload is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UploadState {
    /// Initiated, the file not (yet) marked finished.
    Uploading,
    /// Marked finished: the file is complete.
    Uploaded,
}

/// The metadata record of one (build id, kind): `debuginfo/<key>/<kind>.json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DebuginfoMeta {
    /// The build id, as the mappings carry it.
    pub build_id: String,
    /// What the file is.
    #[serde(rename = "type")]
    pub kind: DebuginfoKind,
    /// Upload state.
    pub state: UploadState,
    /// The id of the upload this record describes.
    pub upload_id: String,
    /// The hash the client gave for the file (opaque; compared as a string).
    pub hash: String,
    /// The size the client announced, in bytes.
    pub size: u64,
    /// When the upload was initiated, ms since the Unix epoch.
    pub started_at_ms: u64,
    /// When it was marked finished, ms since the Unix epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at_ms: Option<u64>,
    /// The record of the finished upload a forced re-upload is replacing, restored if the
    /// new upload fails.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replaces: Option<Box<DebuginfoMeta>>,
}

/// Debug info objects by build id, in the engine's object store. Cheap to clone.
#[derive(Clone)]
pub struct DebuginfoStore {
    store: Arc<dyn ObjectStore>,
}

/// Checks that `build_id` can name stored debug info: non-empty, at most
/// [`MAX_BUILD_ID_BYTES`], printable ASCII without spaces.
pub fn validate_build_id(build_id: &str) -> Result<()> {
    let reason = if build_id.is_empty() {
        "is empty"
    } else if build_id.len() > MAX_BUILD_ID_BYTES {
        "is longer than 256 bytes"
    } else if !build_id.bytes().all(|b| b.is_ascii_graphic()) {
        "has characters other than printable ASCII"
    } else {
        return Ok(());
    };
    Err(Error::InvalidBuildId {
        build_id: build_id.chars().take(80).collect(),
        reason,
    })
}

/// The object-path segment of a build id: the id itself when it is lowercase hex (GNU build
/// ids, file hashes), else `x` followed by its bytes in lowercase hex (Go build ids hold `/`).
pub fn build_id_key(build_id: &str) -> String {
    if build_id
        .bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        build_id.to_owned()
    } else {
        let mut key = String::with_capacity(1 + 2 * build_id.len());
        key.push('x');
        for b in build_id.bytes() {
            key.push_str(&format!("{b:02x}"));
        }
        key
    }
}

fn object_path(build_id: &str, name: &str) -> Path {
    Path::from(format!(
        "{DEBUGINFO_PREFIX}/{}/{name}",
        build_id_key(build_id)
    ))
}

fn meta_path(build_id: &str, kind: DebuginfoKind) -> Path {
    object_path(build_id, &format!("{}.json", kind.file_name()))
}

fn file_path(build_id: &str, kind: DebuginfoKind) -> Path {
    object_path(build_id, kind.file_name())
}

impl DebuginfoStore {
    pub(crate) fn new(store: Arc<dyn ObjectStore>) -> Self {
        DebuginfoStore { store }
    }

    async fn get_opt(&self, path: &Path) -> Result<Option<Bytes>> {
        match self.store.get(path).await {
            Ok(r) => Ok(Some(r.bytes().await.map_err(Error::store(path))?)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(Error::store(path)(e)),
        }
    }

    /// The metadata record of `(build_id, kind)`, if any.
    pub async fn meta(&self, build_id: &str, kind: DebuginfoKind) -> Result<Option<DebuginfoMeta>> {
        validate_build_id(build_id)?;
        let path = meta_path(build_id, kind);
        let Some(bytes) = self.get_opt(&path).await? else {
            return Ok(None);
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| Error::CorruptDebuginfo {
                path: path.to_string(),
                reason: e.to_string(),
            })
    }

    /// Writes (replaces) the metadata record of `(meta.build_id, meta.kind)`, in one put.
    pub async fn put_meta(&self, meta: &DebuginfoMeta) -> Result<()> {
        validate_build_id(&meta.build_id)?;
        let path = meta_path(&meta.build_id, meta.kind);
        let json = serde_json::to_vec_pretty(meta).expect("metadata serializes");
        self.store
            .put(&path, PutPayload::from(json))
            .await
            .map_err(Error::store(&path))?;
        Ok(())
    }

    /// Deletes the metadata record of `(build_id, kind)` (nothing if absent).
    pub async fn delete_meta(&self, build_id: &str, kind: DebuginfoKind) -> Result<()> {
        validate_build_id(build_id)?;
        let path = meta_path(build_id, kind);
        match self.store.delete(&path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(Error::store(&path)(e)),
        }
    }

    /// Stores the file of `(build_id, kind)` in one put, replacing an earlier one: readers see
    /// the old file or the new one, never a part.
    pub async fn put_file(&self, build_id: &str, kind: DebuginfoKind, data: Bytes) -> Result<()> {
        validate_build_id(build_id)?;
        let path = file_path(build_id, kind);
        self.store
            .put(&path, PutPayload::from_bytes(data))
            .await
            .map_err(Error::store(&path))?;
        Ok(())
    }

    /// The file of `(build_id, kind)`, if stored.
    pub async fn file(&self, build_id: &str, kind: DebuginfoKind) -> Result<Option<Bytes>> {
        validate_build_id(build_id)?;
        self.get_opt(&file_path(build_id, kind)).await
    }

    /// Whether the file of `(build_id, kind)` is stored.
    pub async fn has_file(&self, build_id: &str, kind: DebuginfoKind) -> Result<bool> {
        validate_build_id(build_id)?;
        let path = file_path(build_id, kind);
        match self.store.head(&path).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(Error::store(&path)(e)),
        }
    }

    /// Every metadata record in the store, ordered by build id and kind. Records that do not
    /// parse are skipped.
    pub async fn list(&self) -> Result<Vec<DebuginfoMeta>> {
        let prefix = Path::from(DEBUGINFO_PREFIX);
        let objects: Vec<_> = self
            .store
            .list(Some(&prefix))
            .try_collect()
            .await
            .map_err(Error::store(&prefix))?;
        let mut out = Vec::new();
        for o in objects {
            if !o.location.as_ref().ends_with(".json") {
                continue;
            }
            let Some(bytes) = self.get_opt(&o.location).await? else {
                continue;
            };
            if let Ok(meta) = serde_json::from_slice::<DebuginfoMeta>(&bytes) {
                out.push(meta);
            }
        }
        out.sort_by(|a, b| {
            (a.build_id.as_str(), a.kind.file_name())
                .cmp(&(b.build_id.as_str(), b.kind.file_name()))
        });
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_keep_hex_ids_and_encode_the_rest() {
        assert_eq!(build_id_key("c89b11207f64"), "c89b11207f64");
        assert_eq!(build_id_key("ab/C"), "x61622f43");
        // An id that looks like an encoded one stays apart from what it would decode to.
        assert_ne!(build_id_key("x61"), build_id_key("a"));
        let reason = |id: &str| match validate_build_id(id) {
            Err(Error::InvalidBuildId { reason, .. }) => reason,
            other => panic!("expected InvalidBuildId for {id:?}, got {other:?}"),
        };
        assert_eq!(reason(""), "is empty");
        assert_eq!(reason("a b"), "has characters other than printable ASCII");
        assert_eq!(reason(&"a".repeat(257)), "is longer than 256 bytes");
        assert!(validate_build_id("foh3mEXu7BLZjsN9pOwG/kATcXlYVCDEFouRMQed_").is_ok());
    }

    #[tokio::test]
    async fn files_and_records_round_trip() {
        let store = DebuginfoStore::new(Arc::new(object_store::memory::InMemory::new()));
        let id = "go/build/id";
        assert_eq!(
            store.meta(id, DebuginfoKind::Debuginfo).await.unwrap(),
            None
        );
        let meta = DebuginfoMeta {
            build_id: id.into(),
            kind: DebuginfoKind::Debuginfo,
            state: UploadState::Uploading,
            upload_id: "u1".into(),
            hash: "h".into(),
            size: 3,
            started_at_ms: 5,
            finished_at_ms: None,
            replaces: None,
        };
        store.put_meta(&meta).await.unwrap();
        store
            .put_file(id, DebuginfoKind::Debuginfo, Bytes::from_static(b"elf"))
            .await
            .unwrap();
        assert_eq!(
            store.meta(id, DebuginfoKind::Debuginfo).await.unwrap(),
            Some(meta.clone())
        );
        assert!(store.has_file(id, DebuginfoKind::Debuginfo).await.unwrap());
        assert!(!store.has_file(id, DebuginfoKind::Executable).await.unwrap());
        assert_eq!(
            store
                .file(id, DebuginfoKind::Debuginfo)
                .await
                .unwrap()
                .unwrap(),
            Bytes::from_static(b"elf")
        );
        assert_eq!(store.list().await.unwrap(), vec![meta]);
        store
            .delete_meta(id, DebuginfoKind::Debuginfo)
            .await
            .unwrap();
        assert!(store.list().await.unwrap().is_empty());
    }
}
