//! [`App`]: the state every front door shares (the tenants' stores, limits, tokens, counters,
//! target health), and [`RequestTenant`], the tenant a request was given by the router's gate.

use std::sync::Arc;

use strata_engine::Engine;
use strata_ingest::DecodeLimits;

use crate::auth::AuthConfig;
use crate::ingest::counters::IngestCounters;
use crate::limits::{LimitCounters, QueryLimits};
use crate::status::ServerError;
use crate::tenants::{TenantStore, Tenants};

/// State shared by every handler.
pub struct App {
    /// Every tenant's store (one, unless `tenants.enabled`).
    pub tenants: Tenants,
    /// Body and decompression limits.
    pub limits: DecodeLimits,
    /// Query range and result size limits.
    pub query_limits: QueryLimits,
    /// Bearer tokens.
    pub auth: AuthConfig,
    /// Push counters for `/metrics`.
    pub counters: IngestCounters,
    /// Requests refused by each limit, for `/metrics`.
    pub limit_counters: LimitCounters,
    /// Health of every scrape target, kept by the [`Scraper`](crate::Scraper).
    pub targets: crate::scrape::health::TargetHealthMap,
    /// Held while `/debug/pprof/profile` profiles this process (one profile at a time).
    pub(crate) self_profile: tokio::sync::Mutex<()>,
    /// A querier's ingesters (`cluster.ingesters`), whose unanswered requests mark answers
    /// partial.
    pub ingesters: Option<Arc<crate::cluster::IngesterSet>>,
    /// A querier's worker of distributed queries (`cluster.queriers`), served by the router.
    pub worker: Option<strata_query::distributed::DistributedWorker>,
}

/// The settings of an [`App`] besides its stores.
#[derive(Clone, Default)]
pub struct AppSettings {
    /// Body and decompression limits (`ingest:`).
    pub ingest: DecodeLimits,
    /// Query limits (`query:`).
    pub query: QueryLimits,
    /// Bearer tokens (`auth:`).
    pub auth: AuthConfig,
    /// A querier's ingesters (`cluster.ingesters`).
    pub ingesters: Option<Arc<crate::cluster::IngesterSet>>,
    /// A querier's worker of distributed queries.
    pub worker: Option<strata_query::distributed::DistributedWorker>,
}

impl std::fmt::Debug for AppSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppSettings")
            .field("ingest", &self.ingest)
            .field("query", &self.query)
            .field("ingesters", &self.ingesters)
            .field("worker", &self.worker.is_some())
            .finish_non_exhaustive()
    }
}

impl App {
    /// An app over `engine` with default limits.
    pub fn new(engine: Engine) -> Arc<App> {
        Self::with_limits(engine, DecodeLimits::default())
    }

    /// An app over `engine` with the given push limits (background symbolization off).
    pub fn with_limits(engine: Engine, limits: DecodeLimits) -> Arc<App> {
        let off = crate::symbolization::Symbolization::disabled(Default::default());
        Self::with_symbolization(engine, limits, off)
    }

    /// An app over `engine` with the given push limits and symbolizer
    /// ([`Symbolization::start`](crate::symbolization::Symbolization::start)).
    pub fn with_symbolization(
        engine: Engine,
        limits: DecodeLimits,
        symbolization: crate::symbolization::Symbolization,
    ) -> Arc<App> {
        let store = TenantStore::new("anonymous", engine, symbolization);
        let settings = AppSettings {
            ingest: limits,
            ..Default::default()
        };
        Self::with_tenants(Tenants::single(store), settings)
    }

    /// An app over `tenants` with `settings`.
    pub fn with_tenants(tenants: Tenants, settings: AppSettings) -> Arc<App> {
        Arc::new(App {
            tenants,
            limits: settings.ingest,
            query_limits: settings.query,
            auth: settings.auth,
            counters: Default::default(),
            limit_counters: Default::default(),
            targets: Default::default(),
            self_profile: Default::default(),
            ingesters: settings.ingesters,
            worker: settings.worker,
        })
    }

    /// The default tenant's store (the scraper's and the collector's).
    pub fn default_store(&self) -> &Arc<TenantStore> {
        self.tenants.default_store()
    }
}

/// The tenant a request was given by the router's gate, as a request extension.
#[derive(Clone)]
pub(crate) struct RequestTenant {
    /// Its store.
    pub store: Arc<TenantStore>,
    /// Whether a header named it (else it is the default).
    pub named: bool,
}

impl App {
    /// The store of a request, from its [`RequestTenant`] extension (the default store if no
    /// tenant was resolved for it).
    pub(crate) fn store_of(&self, tenant: Option<&RequestTenant>) -> Arc<TenantStore> {
        tenant.map_or_else(|| self.default_store().clone(), |t| t.store.clone())
    }

    /// The store of tenant `id`, for a request that named it in its body (Parca's `tenant`
    /// field); a tenant named by a header wins.
    pub(crate) async fn store_named(
        &self,
        tenant: Option<&RequestTenant>,
        id: &str,
    ) -> Result<Arc<TenantStore>, ServerError> {
        match tenant {
            Some(t) if t.named || id.is_empty() => Ok(t.store.clone()),
            _ if id.is_empty() => Ok(self.default_store().clone()),
            _ => self
                .tenants
                .get(Some(id))
                .await
                .map_err(|e| self.refused(e)),
        }
    }

    /// `e` as a [`ServerError`], counting it under its limit when a limit refused the
    /// request (`strata_limit_refusals_total`). Every front door answers errors through here.
    pub(crate) fn refused(&self, e: impl Into<ServerError>) -> ServerError {
        let e = e.into();
        if let Some(limit) = e.exceeded_limit() {
            self.limit_counters.hit(limit);
        }
        e
    }
}
