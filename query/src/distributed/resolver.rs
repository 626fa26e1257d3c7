//! [`QuerierResolver`]: the live queriers (workers), from a list of URLs or DNS names
//! re-resolved in the background; [`QuerierChannels`]: one connection per querier, shared by
//! every query, with connect and keep-alive timeouts.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use datafusion::error::DataFusionError;
use datafusion_distributed::grpc::{BoxCloneSyncChannel, create_worker_client};
use datafusion_distributed::{ChannelResolver, WorkerChannel, WorkerResolver};
use parking_lot::{Mutex, RwLock};
use url::Url;

/// The queriers a distributed query may use.
#[derive(Clone, Default)]
pub struct QuerierResolver {
    urls: Arc<RwLock<Vec<Url>>>,
}

impl std::fmt::Debug for QuerierResolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.urls.read().iter()).finish()
    }
}

impl QuerierResolver {
    /// Exactly `urls`.
    pub fn fixed(urls: Vec<Url>) -> Self {
        let r = QuerierResolver::default();
        r.set(urls);
        r
    }

    /// Replaces the list (sorted, without duplicates).
    pub fn set(&self, mut urls: Vec<Url>) {
        urls.sort();
        urls.dedup();
        *self.urls.write() = urls;
    }

    /// Keeps `static_urls` plus every address the `host:port` names in `dns` resolve to, over
    /// `http`, re-resolved every `every` (the last good answer kept on errors). Runs on the
    /// current Tokio runtime until the process ends.
    pub fn spawn_refresh(static_urls: Vec<Url>, dns: Vec<String>, every: Duration) -> Self {
        let r = QuerierResolver::fixed(static_urls.clone());
        if dns.is_empty() {
            return r;
        }
        let this = r.clone();
        tokio::spawn(async move {
            let mut last: HashMap<String, Vec<Url>> = HashMap::new();
            loop {
                for name in &dns {
                    match tokio::net::lookup_host(name.as_str()).await {
                        Ok(addrs) => {
                            let urls = addrs
                                .filter_map(|a| Url::parse(&format!("http://{a}")).ok())
                                .collect();
                            last.insert(name.clone(), urls);
                        }
                        Err(e) => tracing::warn!(name, error = %e, "resolving queriers failed"),
                    }
                }
                let mut all = static_urls.clone();
                all.extend(last.values().flatten().cloned());
                this.set(all);
                tokio::time::sleep(every).await;
            }
        });
        r
    }
}

impl WorkerResolver for QuerierResolver {
    fn get_urls(&self) -> Result<Vec<Url>, DataFusionError> {
        Ok(self.urls.read().clone())
    }
}

/// One lazily connected gRPC channel per querier.
#[derive(Clone, Default)]
pub struct QuerierChannels {
    cache: Arc<Mutex<HashMap<Url, BoxCloneSyncChannel>>>,
}

#[async_trait]
impl ChannelResolver for QuerierChannels {
    async fn get_worker_client_for_url(
        &self,
        url: &Url,
    ) -> Result<Box<dyn WorkerChannel>, DataFusionError> {
        if let Some(ch) = self.cache.lock().get(url) {
            return Ok(create_worker_client(ch.clone()));
        }
        let channel = tonic::transport::Endpoint::from_shared(url.to_string())
            .map_err(|e| DataFusionError::External(Box::new(e)))?
            .connect_timeout(Duration::from_secs(2))
            .tcp_nodelay(true)
            .http2_keep_alive_interval(Duration::from_secs(10))
            .keep_alive_timeout(Duration::from_secs(5))
            .connect_lazy();
        let ch = BoxCloneSyncChannel::new(channel);
        self.cache.lock().insert(url.clone(), ch.clone());
        Ok(create_worker_client(ch))
    }
}
