//! A querier's part in distributed queries (`cluster.queriers`): the [`Distribution`] its
//! query engines plan with, and its worker, which reads tasks' parts from the store of the
//! tenant a task names (served on the querier's own port, `worker.WorkerService`).

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock, Weak};

use datafusion::error::DataFusionError;
use strata_query::Distribution;
use strata_query::distributed::{
    DistributedWorker, EngineOfTenant, QuerierChannels, QuerierResolver, worker,
};

use super::config::{ClusterConfig, PeerAddress};
use crate::state::App;

/// What a querier needs to take part in distributed queries.
pub struct QuerierDistribution {
    /// For the query engines.
    pub distribution: Arc<Distribution>,
    /// For the router.
    pub worker: DistributedWorker,
    /// The app the worker finds tenants' stores in (set once it exists).
    app: Arc<OnceLock<Weak<App>>>,
}

impl QuerierDistribution {
    /// From `cluster.queriers`; `listen` is this querier's address (its own URL, unless
    /// `cluster.advertise_url` says otherwise), `token` the read token workers are asked with,
    /// `tenant_header` the header naming a tenant.
    pub fn new(
        cluster: &ClusterConfig,
        listen: SocketAddr,
        token: Option<String>,
        tenant_header: &str,
    ) -> Result<Self, String> {
        let (mut urls, mut dns) = (Vec::new(), Vec::new());
        for q in &cluster.queriers {
            match PeerAddress::parse(q)? {
                PeerAddress::Url(u) => urls.push(url::Url::parse(&u).map_err(|e| e.to_string())?),
                PeerAddress::Dns { host_port } => dns.push(host_port),
            }
        }
        let resolver = QuerierResolver::spawn_refresh(urls, dns, cluster.dns_refresh);
        let channels = QuerierChannels::default();
        let app: Arc<OnceLock<Weak<App>>> = Arc::default();
        let header = tenant_header.to_ascii_lowercase();
        let engine_of: EngineOfTenant = {
            let (app, header) = (app.clone(), header.clone());
            Arc::new(move |headers: &http::HeaderMap| {
                let tenant = headers
                    .get(header.as_str())
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
                let app = app.get().and_then(Weak::upgrade);
                Box::pin(async move {
                    let app = app.ok_or_else(|| {
                        DataFusionError::Execution("this querier is starting or stopping".into())
                    })?;
                    let store = app
                        .tenants
                        .get(tenant.as_deref())
                        .await
                        .map_err(|e| DataFusionError::Execution(e.to_string()))?;
                    Ok(store.engine.clone())
                })
            })
        };
        let worker = worker(
            engine_of,
            channels.clone(),
            vec![header, "authorization".into()],
        );
        let self_url = cluster
            .advertise_url
            .clone()
            .unwrap_or_else(|| format!("http://{listen}"));
        let self_url = url::Url::parse(&self_url).map_err(|e| format!("advertise_url: {e}"))?;
        let mut headers = http::HeaderMap::new();
        if let Some(t) = token {
            let v =
                http::HeaderValue::try_from(format!("Bearer {t}")).map_err(|e| e.to_string())?;
            headers.insert(http::header::AUTHORIZATION, v);
        }
        let distribution = Arc::new(Distribution {
            resolver,
            channels,
            local: Some((worker.clone(), self_url)),
            headers,
        });
        Ok(QuerierDistribution {
            distribution,
            worker,
            app,
        })
    }

    /// Lets the worker find the tenants' stores of `app`.
    pub fn attach(&self, app: &Arc<App>) {
        let _ = self.app.set(Arc::downgrade(app));
    }
}
