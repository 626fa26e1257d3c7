//! A querier's view of the ingesters: [`IngesterSet`] (from `cluster.ingesters`: URLs, or
//! `dns+host:port` names such as a Kubernetes headless Service, re-resolved every
//! `cluster.dns_refresh`) and [`HttpHeads`], the engine's [`HeadSource`] over their head API.
//! An ingester that does not answer fails the query ([`strata_engine::Error::HeadUnavailable`]):
//! an answer is never silently smaller.

use std::sync::Arc;
use std::time::Instant;

use futures::future::try_join_all;
use parking_lot::Mutex;
use serde::Serialize;
use serde::de::DeserializeOwned;
use strata_engine::{
    Error as EngineError, HeadScanRequest, HeadScanResponse, HeadSource, LabelMatcher, ProfileType,
    StackId, SymbolTables, TimeRange,
};

use super::config::{ClusterConfig, PeerAddress};
use super::wire::{WireLabelValues, WireResolve, WireScan, WireSelection, decode_scan};

/// The ingesters a querier asks for their heads.
#[derive(Debug)]
pub struct IngesterSet {
    addresses: Vec<PeerAddress>,
    client: reqwest::Client,
    token: Option<String>,
    dns_refresh: std::time::Duration,
    /// The last resolution and when it was made.
    resolved: Mutex<Option<(Instant, Vec<String>)>>,
    /// Answer without an ingester that does not answer (`cluster.partial_answers`).
    partial: bool,
    /// Requests to ingesters that got no answer, and the last one's reason.
    unanswered: std::sync::atomic::AtomicU64,
    last_unanswered: Mutex<String>,
}

impl IngesterSet {
    /// The ingesters `config` names; `token` (a read token) is sent to each.
    pub fn new(config: &ClusterConfig, token: Option<String>) -> Result<Arc<Self>, String> {
        let addresses = config
            .ingesters
            .iter()
            .map(|s| PeerAddress::parse(s))
            .collect::<Result<Vec<_>, _>>()?;
        let client = reqwest::Client::builder()
            .timeout(config.request_timeout)
            .connect_timeout(config.connect_timeout)
            .tcp_nodelay(true)
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Arc::new(IngesterSet {
            addresses,
            client,
            token,
            dns_refresh: config.dns_refresh,
            resolved: Mutex::new(None),
            partial: config.partial_answers,
            unanswered: Default::default(),
            last_unanswered: Mutex::new(String::new()),
        }))
    }

    /// Requests to ingesters that got no answer so far, and the last one's reason: an answer
    /// during which the count grew is partial (`cluster.partial_answers`).
    pub fn unanswered(&self) -> (u64, String) {
        (
            self.unanswered.load(std::sync::atomic::Ordering::SeqCst),
            self.last_unanswered.lock().clone(),
        )
    }

    /// The answers of every ingester: all must succeed, unless answers may be partial; then
    /// failures are counted and left out.
    async fn gather<T>(
        &self,
        answers: impl IntoIterator<Item = impl std::future::Future<Output = strata_engine::Result<T>>>,
    ) -> strata_engine::Result<Vec<T>> {
        if !self.partial {
            return try_join_all(answers).await;
        }
        let mut out = Vec::new();
        for r in futures::future::join_all(answers).await {
            match r {
                Ok(t) => out.push(t),
                Err(e) => {
                    tracing::warn!(error = %e, "an ingester did not answer; the answer is partial");
                    *self.last_unanswered.lock() = e.to_string();
                    self.unanswered
                        .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                }
            }
        }
        Ok(out)
    }

    /// Every ingester's base URL now: static ones as given, DNS names resolved (at most every
    /// `cluster.dns_refresh`). A name that resolves to nothing is an error.
    pub async fn urls(&self) -> Result<Vec<String>, EngineError> {
        if let Some((at, urls)) = &*self.resolved.lock()
            && at.elapsed() < self.dns_refresh
        {
            return Ok(urls.clone());
        }
        let mut urls = Vec::new();
        for a in &self.addresses {
            match a {
                PeerAddress::Url(u) => urls.push(u.clone()),
                PeerAddress::Dns { host_port } => {
                    let unavailable = |reason: String| EngineError::HeadUnavailable {
                        ingester: format!("dns+{host_port}"),
                        reason,
                    };
                    let mut found: Vec<String> = tokio::net::lookup_host(host_port.as_str())
                        .await
                        .map_err(|e| unavailable(format!("resolving: {e}")))?
                        .map(|addr| format!("http://{addr}"))
                        .collect();
                    if found.is_empty() {
                        return Err(unavailable("the name resolves to no address".into()));
                    }
                    found.sort();
                    found.dedup();
                    urls.extend(found);
                }
            }
        }
        *self.resolved.lock() = Some((Instant::now(), urls.clone()));
        Ok(urls)
    }

    /// POSTs `body` as JSON to `path` on ingester `base`; the answer's bytes.
    async fn post(
        &self,
        base: &str,
        path: &str,
        tenant: Option<&(String, String)>,
        body: &impl Serialize,
    ) -> Result<bytes::Bytes, EngineError> {
        let unavailable = |reason: String| EngineError::HeadUnavailable {
            ingester: base.to_owned(),
            reason,
        };
        let body = serde_json::to_vec(body).map_err(|e| unavailable(e.to_string()))?;
        let mut req = self
            .client
            .post(format!("{base}{path}"))
            .header("content-type", "application/json")
            .body(body);
        if let Some(token) = &self.token {
            req = req.bearer_auth(token);
        }
        if let Some((header, id)) = tenant {
            req = req.header(header.as_str(), id.as_str());
        }
        let resp = req.send().await.map_err(|e| unavailable(e.to_string()))?;
        let status = resp.status();
        let bytes = resp.bytes().await.map_err(|e| unavailable(e.to_string()))?;
        if !status.is_success() {
            let message = String::from_utf8_lossy(&bytes[..bytes.len().min(512)]).into_owned();
            return Err(unavailable(format!("answered {status}: {message}")));
        }
        Ok(bytes)
    }
}

/// The heads of every ingester of one tenant, over HTTP.
#[derive(Debug)]
pub struct HttpHeads {
    set: Arc<IngesterSet>,
    /// The tenant header and id sent (none for the default tenant).
    tenant: Option<(String, String)>,
}

impl HttpHeads {
    /// The heads of `set`'s ingesters, for the tenant named by `tenant` (header, id).
    pub fn new(set: Arc<IngesterSet>, tenant: Option<(String, String)>) -> Self {
        HttpHeads { set, tenant }
    }

    /// Asks every ingester at once; all must answer.
    async fn ask_all<T: DeserializeOwned>(
        &self,
        path: &str,
        body: &(impl Serialize + Sync),
    ) -> strata_engine::Result<Vec<T>> {
        let urls = self.set.urls().await?;
        self.set
            .gather(urls.iter().map(|base| async move {
                let bytes = self
                    .set
                    .post(base, path, self.tenant.as_ref(), body)
                    .await?;
                serde_json::from_slice(&bytes).map_err(|e| EngineError::HeadUnavailable {
                    ingester: base.clone(),
                    reason: format!("{path}: {e}"),
                })
            }))
            .await
    }
}

#[async_trait::async_trait]
impl HeadSource for HttpHeads {
    async fn scan(&self, request: &HeadScanRequest) -> strata_engine::Result<HeadScanResponse> {
        let body = WireScan::new(request);
        let urls = self.set.urls().await?;
        let answers = self
            .set
            .gather(urls.iter().map(|base| {
                let body = &body;
                async move {
                    let bytes = self
                        .set
                        .post(base, "/internal/v1/heads/scan", self.tenant.as_ref(), body)
                        .await?;
                    decode_scan(&bytes).map_err(|reason| EngineError::HeadUnavailable {
                        ingester: base.clone(),
                        reason,
                    })
                }
            }))
            .await?;
        let mut out = HeadScanResponse::default();
        for a in answers {
            out.series.extend(a.series);
            out.parts.extend(a.parts);
        }
        Ok(out)
    }

    async fn profile_types(&self, range: TimeRange) -> strata_engine::Result<Vec<ProfileType>> {
        let body = WireSelection::new(None, &[], range);
        let answers: Vec<Vec<String>> = self
            .ask_all("/internal/v1/heads/profile_types", &body)
            .await?;
        answers.into_iter().flatten().map(|t| t.parse()).collect()
    }

    async fn label_names(
        &self,
        profile_type: Option<&ProfileType>,
        matchers: &[LabelMatcher],
        range: TimeRange,
    ) -> strata_engine::Result<Vec<String>> {
        let body = WireSelection::new(profile_type, matchers, range);
        let answers: Vec<Vec<String>> = self
            .ask_all("/internal/v1/heads/label_names", &body)
            .await?;
        Ok(answers.into_iter().flatten().collect())
    }

    async fn label_values(
        &self,
        name: &str,
        profile_type: Option<&ProfileType>,
        matchers: &[LabelMatcher],
        range: TimeRange,
    ) -> strata_engine::Result<Vec<String>> {
        let body = WireLabelValues {
            name: name.to_owned(),
            selection: WireSelection::new(profile_type, matchers, range),
        };
        let answers: Vec<Vec<String>> = self
            .ask_all("/internal/v1/heads/label_values", &body)
            .await?;
        Ok(answers.into_iter().flatten().collect())
    }

    async fn resolve_stacks(&self, ids: &[StackId]) -> strata_engine::Result<SymbolTables> {
        let body = WireResolve {
            stack_ids: ids.iter().map(|s| s.0).collect(),
        };
        let answers: Vec<SymbolTables> = self.ask_all("/internal/v1/heads/resolve", &body).await?;
        let mut out = SymbolTables::default();
        for a in answers {
            out.merge(a);
        }
        Ok(out)
    }
}
