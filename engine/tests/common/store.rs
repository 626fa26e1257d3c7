//! [`InstrumentedStore`]: the real local object store, recording reads and optionally slowing
//! uploads down (to hold a flush open while other work goes on).

use std::fmt;
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use futures::stream::BoxStream;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult,
};
use parking_lot::Mutex;

#[derive(Debug)]
pub struct InstrumentedStore {
    inner: LocalFileSystem,
    /// Every object read (gets and ranged gets), in order.
    pub reads: Mutex<Vec<String>>,
    /// Puts begun so far.
    pub puts_started: AtomicU64,
    put_delay: Duration,
}

impl InstrumentedStore {
    pub fn new(root: &std::path::Path) -> Self {
        Self::with_put_delay(root, Duration::ZERO)
    }

    pub fn with_put_delay(root: &std::path::Path, put_delay: Duration) -> Self {
        InstrumentedStore {
            inner: LocalFileSystem::new_with_prefix(root)
                .unwrap()
                .with_automatic_cleanup(true),
            reads: Mutex::new(Vec::new()),
            puts_started: AtomicU64::new(0),
            put_delay,
        }
    }

    /// Reads of objects whose path ends with `suffix`.
    pub fn reads_of(&self, suffix: &str) -> usize {
        self.reads
            .lock()
            .iter()
            .filter(|p| p.ends_with(suffix))
            .count()
    }
}

impl fmt::Display for InstrumentedStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "InstrumentedStore({})", self.inner)
    }
}

#[async_trait::async_trait]
impl ObjectStore for InstrumentedStore {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        self.puts_started.fetch_add(1, Ordering::SeqCst);
        if !self.put_delay.is_zero() {
            tokio::time::sleep(self.put_delay).await;
        }
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(
        &self,
        location: &Path,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        if !options.head {
            self.reads.lock().push(location.to_string());
        }
        self.inner.get_opts(location, options).await
    }

    async fn get_ranges(
        &self,
        location: &Path,
        ranges: &[Range<u64>],
    ) -> object_store::Result<Vec<Bytes>> {
        self.reads.lock().push(location.to_string());
        self.inner.get_ranges(location, ranges).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Path>>,
    ) -> BoxStream<'static, object_store::Result<Path>> {
        self.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.inner.list(prefix)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(
        &self,
        from: &Path,
        to: &Path,
        options: CopyOptions,
    ) -> object_store::Result<()> {
        self.inner.copy_opts(from, to, options).await
    }
}
