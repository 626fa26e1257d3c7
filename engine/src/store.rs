//! The object store the blocks live in: building it from [`StorageConfig`] (timeouts and the
//! client's retry policy for remote stores) and [`CountingStore`], which counts failed
//! operations and failed HTTP requests for [`EngineStats`](crate::EngineStats).

use std::fmt;
use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use object_store::aws::AmazonS3Builder;
use object_store::client::{
    HttpClient, HttpConnector, HttpError, HttpRequest, HttpResponse, HttpService, ReqwestConnector,
};
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::prefix::PrefixStore;
use object_store::{
    BackoffConfig, ClientOptions, CopyOptions, GetOptions, GetResult, GetResultPayload, ListResult,
    MultipartUpload, ObjectMeta, ObjectStore, ObjectStoreScheme, PutMultipartOptions, PutOptions,
    PutPayload, PutResult, RenameOptions, RetryConfig,
};
use tracing::debug;

use crate::config::{EngineConfig, StorageConfig};
use crate::error::{Error, Result};

/// Failures seen talking to the object store.
#[derive(Debug, Default)]
pub(crate) struct StoreCounters {
    /// Operations that failed (after the client's retries), expected outcomes such as "not
    /// found" excluded.
    pub errors: AtomicU64,
    /// HTTP requests that failed (remote stores only): transport errors and timeouts, and
    /// responses 401, 403, 408, 429 and 5xx. The client retries the transient ones.
    pub request_failures: AtomicU64,
}

impl StoreCounters {
    fn count(&self, e: &object_store::Error) {
        use object_store::Error as E;
        if !matches!(
            e,
            E::NotFound { .. }
                | E::AlreadyExists { .. }
                | E::Precondition { .. }
                | E::NotModified { .. }
        ) {
            self.errors.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Builds the store `config.storage` names (the local data directory by default).
pub(crate) fn build_store(
    config: &EngineConfig,
    counters: &Arc<StoreCounters>,
) -> Result<Arc<dyn ObjectStore>> {
    let Some(url) = &config.storage.url else {
        let local = LocalFileSystem::new_with_prefix(&config.data_dir)
            .map_err(|e| Error::InvalidStoreUrl {
                url: config.data_dir.display().to_string(),
                reason: e.to_string(),
            })?
            .with_automatic_cleanup(true);
        return Ok(Arc::new(local));
    };
    let invalid = |reason: String| Error::InvalidStoreUrl {
        url: url.clone(),
        reason,
    };
    let parsed = url::Url::parse(url).map_err(|e| invalid(e.to_string()))?;
    let (scheme, path) = ObjectStoreScheme::parse(&parsed).map_err(|e| invalid(e.to_string()))?;
    let (store, prefix): (Box<dyn ObjectStore>, Path) = match scheme {
        ObjectStoreScheme::AmazonS3 => (
            Box::new(s3_store(&parsed, &config.storage, counters).map_err(invalid)?),
            path,
        ),
        _ => object_store::parse_url_opts(&parsed, config.storage.options.iter())
            .map_err(|e| invalid(e.to_string()))?,
    };
    if prefix.as_ref().is_empty() {
        Ok(Arc::from(store))
    } else {
        Ok(Arc::new(PrefixStore::new(store, prefix)))
    }
}

/// An S3 client with the configured timeouts and retry policy; the `options` given by name
/// come last, so they win.
fn s3_store(
    url: &url::Url,
    storage: &StorageConfig,
    counters: &Arc<StoreCounters>,
) -> std::result::Result<object_store::aws::AmazonS3, String> {
    let client = ClientOptions::new()
        .with_timeout(storage.request_timeout)
        .with_connect_timeout(storage.connect_timeout);
    let retry = RetryConfig {
        backoff: BackoffConfig {
            init_backoff: storage.retry_backoff_initial,
            max_backoff: storage.retry_backoff_max,
            base: 2.0,
        },
        max_retries: storage.max_retries,
        retry_timeout: storage.retry_timeout,
    };
    let builder = AmazonS3Builder::new()
        .with_url(url.to_string())
        .with_client_options(client)
        .with_retry(retry)
        .with_http_connector(CountingConnector {
            counters: counters.clone(),
        });
    let builder =
        storage
            .options
            .iter()
            .fold(builder, |b, (k, v)| match k.to_ascii_lowercase().parse() {
                Ok(key) => b.with_config(key, v),
                Err(_) => b,
            });
    builder.build().map_err(|e| e.to_string())
}

/// Makes the usual HTTP client and counts its failed requests.
#[derive(Debug)]
struct CountingConnector {
    counters: Arc<StoreCounters>,
}

impl HttpConnector for CountingConnector {
    fn connect(&self, options: &ClientOptions) -> object_store::Result<HttpClient> {
        let inner = ReqwestConnector::default().connect(options)?;
        Ok(HttpClient::new(CountingService {
            inner,
            counters: self.counters.clone(),
        }))
    }
}

#[derive(Debug)]
struct CountingService {
    inner: HttpClient,
    counters: Arc<StoreCounters>,
}

#[async_trait::async_trait]
impl HttpService for CountingService {
    async fn call(&self, req: HttpRequest) -> std::result::Result<HttpResponse, HttpError> {
        let (method, uri) = (req.method().clone(), req.uri().path().to_owned());
        let response = self.inner.execute(req).await;
        let failed = match &response {
            Ok(r) => {
                let s = r.status().as_u16();
                (s >= 500 || matches!(s, 401 | 403 | 408 | 429)).then(|| format!("status {s}"))
            }
            Err(e) => Some(format!("{:?}: {e}", e.kind())),
        };
        if let Some(why) = failed {
            self.counters
                .request_failures
                .fetch_add(1, Ordering::Relaxed);
            debug!(%method, path = %uri, error = %why, "object store request failed");
        }
        response
    }
}

/// Forwards to the real store, counting failed operations.
#[derive(Debug)]
pub(crate) struct CountingStore {
    inner: Arc<dyn ObjectStore>,
    counters: Arc<StoreCounters>,
}

impl CountingStore {
    pub(crate) fn new(inner: Arc<dyn ObjectStore>, counters: Arc<StoreCounters>) -> Self {
        CountingStore { inner, counters }
    }

    fn counted<T>(&self, r: object_store::Result<T>) -> object_store::Result<T> {
        if let Err(e) = &r {
            self.counters.count(e);
        }
        r
    }

    fn counted_stream<T: Send + 'static>(
        &self,
        s: BoxStream<'static, object_store::Result<T>>,
    ) -> BoxStream<'static, object_store::Result<T>> {
        let counters = self.counters.clone();
        s.inspect_err(move |e| counters.count(e)).boxed()
    }
}

impl fmt::Display for CountingStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.fmt(f)
    }
}

#[async_trait::async_trait]
impl ObjectStore for CountingStore {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        self.counted(self.inner.put_opts(location, payload, opts).await)
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        self.counted(self.inner.put_multipart_opts(location, opts).await)
    }

    async fn get_opts(
        &self,
        location: &Path,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        let mut r = self.counted(self.inner.get_opts(location, options).await)?;
        if let GetResultPayload::Stream(s) = r.payload {
            r.payload = GetResultPayload::Stream(self.counted_stream(s));
        }
        Ok(r)
    }

    async fn get_ranges(
        &self,
        location: &Path,
        ranges: &[Range<u64>],
    ) -> object_store::Result<Vec<Bytes>> {
        self.counted(self.inner.get_ranges(location, ranges).await)
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Path>>,
    ) -> BoxStream<'static, object_store::Result<Path>> {
        self.counted_stream(self.inner.delete_stream(locations))
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.counted_stream(self.inner.list(prefix))
    }

    fn list_with_offset(
        &self,
        prefix: Option<&Path>,
        offset: &Path,
    ) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.counted_stream(self.inner.list_with_offset(prefix, offset))
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        self.counted(self.inner.list_with_delimiter(prefix).await)
    }

    async fn copy_opts(
        &self,
        from: &Path,
        to: &Path,
        options: CopyOptions,
    ) -> object_store::Result<()> {
        self.counted(self.inner.copy_opts(from, to, options).await)
    }

    async fn rename_opts(
        &self,
        from: &Path,
        to: &Path,
        options: RenameOptions,
    ) -> object_store::Result<()> {
        self.counted(self.inner.rename_opts(from, to, options).await)
    }
}
