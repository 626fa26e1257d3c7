//! `parca.debuginfo.v1alpha1.DebuginfoService`: debug info uploads by build id, as Parca's
//! agent and `parca-debuginfo upload` (and `strata debuginfo upload`) make them.
//!
//! The flow: `ShouldInitiateUpload` (is one needed?), `InitiateUpload` (writes an `uploading`
//! metadata record, returns an upload id and the gRPC strategy), `Upload` (a client stream:
//! `info`, then the file in chunks), `MarkUploadFinished` (`uploaded`; the background
//! symbolizer looks at the build id again, over all stored data). An upload is held in memory
//! until whole, then checked — the announced size, an ELF file, its build id equal to the
//! upload's — and only then stored, in one put (`storage-format.md` §9): a truncated, foreign or
//! non-ELF upload is refused with `InvalidArgument` and leaves nothing behind, the upload's
//! record removed (or the record it replaced restored) so it can be retried at once.

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use strata_engine::{DebuginfoKind, DebuginfoMeta, DebuginfoStore, UploadState, validate_build_id};
use strata_proto::parca::debuginfo::v1alpha1 as pb;
use strata_proto::parca::debuginfo::v1alpha1::debuginfo_service_server::DebuginfoService;
use tonic::{Request, Response, Status, Streaming};

use crate::state::{App, RequestTenant};
use crate::status::engine_status;
use crate::tenants::TenantStore;

/// The service, over the app's engine.
pub(crate) struct ParcaDebuginfo {
    app: Arc<App>,
    /// Serializes metadata read-modify-writes.
    lock: Arc<tokio::sync::Mutex<()>>,
}

impl ParcaDebuginfo {
    pub(crate) fn new(app: Arc<App>) -> Self {
        ParcaDebuginfo {
            app,
            lock: Default::default(),
        }
    }

    /// The store of the request's tenant.
    fn tenant<T>(&self, request: &Request<T>) -> Arc<TenantStore> {
        self.app
            .store_of(request.extensions().get::<RequestTenant>())
    }
}

fn now_ms() -> u64 {
    (strata_engine::now_ns() / 1_000_000) as u64
}

fn kind(t: i32) -> Result<DebuginfoKind, Status> {
    match pb::DebuginfoType::try_from(t) {
        Ok(pb::DebuginfoType::DebuginfoUnspecified) => Ok(DebuginfoKind::Debuginfo),
        Ok(pb::DebuginfoType::Executable) => Ok(DebuginfoKind::Executable),
        Ok(pb::DebuginfoType::Sources) => Ok(DebuginfoKind::Sources),
        Err(_) => Err(Status::invalid_argument(format!(
            "unknown debuginfo type {t}"
        ))),
    }
}

/// Checks a request's build id and returns the kind its type names.
fn checked(build_id: &str, t: i32) -> Result<DebuginfoKind, Status> {
    validate_build_id(build_id).map_err(|e| Status::invalid_argument(e.to_string()))?;
    kind(t)
}

/// Whether an upload of `(build_id, kind)` with `hash` may start, and why.
enum Verdict {
    Go(&'static str),
    AlreadyUploaded(String),
    InProgress(String),
}

fn verdict(
    existing: Option<&DebuginfoMeta>,
    hash: &str,
    force: bool,
    timeout: Duration,
) -> Verdict {
    let Some(m) = existing else {
        return Verdict::Go("first time this build id's debug info is offered: upload it");
    };
    match m.state {
        UploadState::Uploaded if force => {
            Verdict::Go("debug info already uploaded; replacing it as forced")
        }
        UploadState::Uploaded if hash.is_empty() || hash == m.hash => {
            Verdict::AlreadyUploaded(format!(
                "debug info already uploaded (upload {}, hash {:?}); nothing to do",
                m.upload_id, m.hash
            ))
        }
        UploadState::Uploaded => Verdict::AlreadyUploaded(format!(
            "debug info already uploaded with another hash ({:?}); upload with force to replace it",
            m.hash
        )),
        UploadState::Uploading => {
            let age = Duration::from_millis(now_ms().saturating_sub(m.started_at_ms));
            if age >= timeout {
                Verdict::Go(
                    "an earlier upload was started but not finished and is stale: upload again",
                )
            } else {
                Verdict::InProgress(format!(
                    "upload {} is in progress (started {} s ago; stale after {} s)",
                    m.upload_id,
                    age.as_secs(),
                    timeout.as_secs()
                ))
            }
        }
    }
}

#[tonic::async_trait]
impl DebuginfoService for ParcaDebuginfo {
    async fn should_initiate_upload(
        &self,
        request: Request<pb::ShouldInitiateUploadRequest>,
    ) -> Result<Response<pb::ShouldInitiateUploadResponse>, Status> {
        let tenant = self.tenant(&request);
        let r = request.into_inner();
        let kind = checked(&r.build_id, r.r#type)?;
        let existing = tenant
            .engine
            .debuginfo()
            .meta(&r.build_id, kind)
            .await
            .map_err(engine_status)?;
        let (should, reason) = match verdict(
            existing.as_ref(),
            &r.hash,
            r.force,
            tenant.symbolization.settings().upload_timeout,
        ) {
            Verdict::Go(reason) => (true, reason.to_owned()),
            Verdict::AlreadyUploaded(reason) | Verdict::InProgress(reason) => (false, reason),
        };
        Ok(Response::new(pb::ShouldInitiateUploadResponse {
            should_initiate_upload: should,
            reason,
        }))
    }

    async fn initiate_upload(
        &self,
        request: Request<pb::InitiateUploadRequest>,
    ) -> Result<Response<pb::InitiateUploadResponse>, Status> {
        let tenant = self.tenant(&request);
        let r = request.into_inner();
        let kind = checked(&r.build_id, r.r#type)?;
        let max = tenant.symbolization.settings().max_upload_bytes;
        if r.size <= 0 {
            return Err(Status::invalid_argument(format!(
                "size {} is not a file size",
                r.size
            )));
        }
        if r.size as u64 > max {
            return Err(Status::resource_exhausted(format!(
                "{} bytes is over the upload limit of {max} bytes (symbolizer.max_upload_bytes)",
                r.size
            )));
        }
        let _guard = self.lock.lock().await;
        let store = tenant.engine.debuginfo();
        let existing = store.meta(&r.build_id, kind).await.map_err(engine_status)?;
        match verdict(
            existing.as_ref(),
            &r.hash,
            r.force,
            tenant.symbolization.settings().upload_timeout,
        ) {
            Verdict::AlreadyUploaded(reason) => return Err(Status::already_exists(reason)),
            Verdict::InProgress(reason) => return Err(Status::failed_precondition(reason)),
            Verdict::Go(_) => {}
        }
        // A forced re-upload keeps the finished record it replaces, to restore on failure;
        // a stale upload's record is simply replaced.
        let replaces = existing.map(|m| match m.state {
            UploadState::Uploaded => Some(Box::new(DebuginfoMeta {
                replaces: None,
                ..m
            })),
            UploadState::Uploading => m.replaces,
        });
        let upload_id = ulid::Ulid::new().to_string();
        store
            .put_meta(&DebuginfoMeta {
                build_id: r.build_id.clone(),
                kind,
                state: UploadState::Uploading,
                upload_id: upload_id.clone(),
                hash: r.hash,
                size: r.size as u64,
                started_at_ms: now_ms(),
                finished_at_ms: None,
                replaces: replaces.flatten(),
            })
            .await
            .map_err(engine_status)?;
        Ok(Response::new(pb::InitiateUploadResponse {
            upload_instructions: Some(pb::UploadInstructions {
                build_id: r.build_id,
                upload_id,
                upload_strategy: pb::upload_instructions::UploadStrategy::Grpc as i32,
                signed_url: String::new(),
                r#type: r.r#type,
            }),
        }))
    }

    async fn upload(
        &self,
        request: Request<Streaming<pb::UploadRequest>>,
    ) -> Result<Response<pb::UploadResponse>, Status> {
        let tenant = self.tenant(&request);
        let mut stream = request.into_inner();
        let info = match stream.message().await? {
            Some(pb::UploadRequest {
                data: Some(pb::upload_request::Data::Info(info)),
            }) => info,
            _ => {
                return Err(Status::invalid_argument(
                    "the first message of an upload must be its info (build id, upload id)",
                ));
            }
        };
        let kind = checked(&info.build_id, info.r#type)?;
        let store = tenant.engine.debuginfo();
        let meta = store
            .meta(&info.build_id, kind)
            .await
            .map_err(engine_status)?
            .filter(|m| m.upload_id == info.upload_id && m.state == UploadState::Uploading)
            .ok_or_else(|| {
                Status::failed_precondition(format!(
                    "no upload {:?} in progress for build id {}: call InitiateUpload first",
                    info.upload_id, info.build_id
                ))
            })?;
        let size = meta.size;
        // Whatever ends this upload early — a refusal, a broken stream, this future dropped —
        // abandons it.
        let abandon = Abandon {
            store: store.clone(),
            lock: self.lock.clone(),
            meta: Some(meta),
        };
        let received = receive(&mut stream, size).await;
        let checked = received.and_then(|data| check(&info.build_id, kind, size, data));
        let stored = match checked {
            Ok(data) => store
                .put_file(&info.build_id, kind, data)
                .await
                .map_err(engine_status),
            Err(status) => Err(status),
        };
        if let Err(status) = stored {
            abandon.now().await;
            return Err(status);
        }
        abandon.disarm();
        Ok(Response::new(pb::UploadResponse {
            build_id: info.build_id,
            size,
        }))
    }

    async fn mark_upload_finished(
        &self,
        request: Request<pb::MarkUploadFinishedRequest>,
    ) -> Result<Response<pb::MarkUploadFinishedResponse>, Status> {
        let tenant = self.tenant(&request);
        let r = request.into_inner();
        let kind = checked(&r.build_id, r.r#type)?;
        {
            let _guard = self.lock.lock().await;
            let store = tenant.engine.debuginfo();
            let meta = store
                .meta(&r.build_id, kind)
                .await
                .map_err(engine_status)?
                .filter(|m| m.upload_id == r.upload_id)
                .ok_or_else(|| {
                    Status::failed_precondition(format!(
                        "no upload {:?} for build id {}",
                        r.upload_id, r.build_id
                    ))
                })?;
            if meta.state == UploadState::Uploading
                && !store
                    .has_file(&r.build_id, kind)
                    .await
                    .map_err(engine_status)?
            {
                return Err(Status::failed_precondition(format!(
                    "upload {:?} of build id {} has received no file: call Upload first",
                    r.upload_id, r.build_id
                )));
            }
            store
                .put_meta(&DebuginfoMeta {
                    state: UploadState::Uploaded,
                    finished_at_ms: meta.finished_at_ms.or(Some(now_ms())),
                    replaces: None,
                    ..meta
                })
                .await
                .map_err(engine_status)?;
        }
        if kind != DebuginfoKind::Sources {
            tenant.symbolization.notify_uploaded(&r.build_id).await;
        }
        Ok(Response::new(pb::MarkUploadFinishedResponse {}))
    }
}

/// An upload in progress; unless disarmed, abandoned when dropped. Abandoning runs on a task
/// of its own, so it completes even if the handler is dropped meanwhile (its connection gone).
struct Abandon {
    store: DebuginfoStore,
    lock: Arc<tokio::sync::Mutex<()>>,
    meta: Option<DebuginfoMeta>,
}

impl Abandon {
    fn spawn(&mut self) -> Option<tokio::task::JoinHandle<()>> {
        let meta = self.meta.take()?;
        let (store, lock) = (self.store.clone(), self.lock.clone());
        let rt = tokio::runtime::Handle::try_current().ok()?;
        Some(rt.spawn(async move { abandon(&store, &lock, &meta).await }))
    }

    async fn now(mut self) {
        if let Some(task) = self.spawn() {
            let _ = task.await;
        }
    }

    fn disarm(mut self) {
        self.meta = None;
    }
}

impl Drop for Abandon {
    fn drop(&mut self) {
        self.spawn();
    }
}

/// A failed upload leaves nothing: its record is removed, or the finished record it was
/// replacing restored.
async fn abandon(store: &DebuginfoStore, lock: &tokio::sync::Mutex<()>, meta: &DebuginfoMeta) {
    let _guard = lock.lock().await;
    let current = store.meta(&meta.build_id, meta.kind).await.ok().flatten();
    if current.as_ref().map(|c| &c.upload_id) != Some(&meta.upload_id) {
        return; // another upload took over
    }
    let result = match &meta.replaces {
        Some(previous) => store.put_meta(previous).await,
        None => store.delete_meta(&meta.build_id, meta.kind).await,
    };
    if let Err(e) = result {
        tracing::warn!(build_id = %meta.build_id, error = %e, "abandoning a failed upload");
    }
}

/// The chunks of an upload, at most `size` bytes.
async fn receive(stream: &mut Streaming<pb::UploadRequest>, size: u64) -> Result<BytesMut, Status> {
    let mut data = BytesMut::with_capacity(size.min(64 << 20) as usize);
    loop {
        let message = stream.message().await.map_err(|e| {
            Status::new(
                e.code(),
                format!(
                    "the upload broke off after {} bytes: {}",
                    data.len(),
                    e.message()
                ),
            )
        })?;
        match message {
            None => return Ok(data),
            Some(pb::UploadRequest {
                data: Some(pb::upload_request::Data::ChunkData(chunk)),
            }) => {
                if data.len() as u64 + chunk.len() as u64 > size {
                    return Err(Status::invalid_argument(format!(
                        "the upload is larger than the {size} bytes announced"
                    )));
                }
                data.extend_from_slice(&chunk);
            }
            Some(_) => {
                return Err(Status::invalid_argument(
                    "after the info, an upload carries only chunk_data",
                ));
            }
        }
    }
}

/// Checks a whole upload: the announced size and, for debug info and executables, an ELF
/// file whose build id is the upload's.
fn check(build_id: &str, kind: DebuginfoKind, size: u64, data: BytesMut) -> Result<Bytes, Status> {
    if (data.len() as u64) < size {
        return Err(Status::invalid_argument(format!(
            "truncated upload: received {} of the {size} bytes announced",
            data.len()
        )));
    }
    let data = data.freeze();
    if kind == DebuginfoKind::Sources {
        return Ok(data);
    }
    let Some(found) = strata_symbolizer::BuildId::of(&data[..]) else {
        return Err(Status::invalid_argument(format!(
            "the upload for build id {build_id} is not an ELF file"
        )));
    };
    if found.id != build_id {
        return Err(Status::invalid_argument(format!(
            "the uploaded file's build id is {} ({:?}), not {build_id}: upload the debug info of the binary with build id {build_id}",
            found.id, found.kind
        )));
    }
    Ok(data)
}
