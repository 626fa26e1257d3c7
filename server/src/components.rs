//! [`Components`]: what one `strata server` process runs, assembled from a [`ServerConfig`]:
//! the engine (store), the symbolizer, the tenants' stores and the app state, the scraper and
//! the in-process eBPF collector — and, through the router, the ingest and query front doors.
//! A [`ComponentSet`] picks a subset (the seam for roles: an ingester, a querier, a
//! compactor); `router::router_for` serves the front doors of the same set.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use strata_collector_ebpf::SamplerHandle;

use crate::cluster::{QuerierDistribution, StoreRole};
use crate::config::{ConfigError, ServerConfig};
use crate::scrape::Scraper;
use crate::state::{App, AppSettings};
use crate::symbolization::Symbolization;
use crate::tenants::{TenantStore, TenantTemplate, Tenants};

/// One part of the server a process may run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Component {
    /// The push front doors (Parca, Pyroscope, OTLP, `/ingest`) and debug info uploads.
    Ingest,
    /// The query front doors (Parca `QueryService`, HTTP/JSON, Flight SQL) and the UI.
    Query,
    /// The scraper of `scrape_configs`.
    Scrape,
    /// The in-process eBPF collector (when the kernel allows BPF).
    Collector,
    /// The engine's background work: head flushes, compaction, retention.
    Compactor,
    /// Background symbolization of stored addresses.
    Symbolizer,
    /// An ingester's head API (`/internal/v1/heads/…`), which queriers ask for recent data.
    HeadApi,
}

impl Component {
    /// Every component.
    pub const ALL: [Component; 6] = [
        Component::Ingest,
        Component::Query,
        Component::Scrape,
        Component::Collector,
        Component::Compactor,
        Component::Symbolizer,
    ];
}

/// The components a process runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ComponentSet(BTreeSet<Component>);

impl ComponentSet {
    /// Every component: a single process doing everything (`--target all`).
    pub fn all() -> Self {
        ComponentSet(Component::ALL.into_iter().collect())
    }

    /// The components `target`'s roles run: `all` runs every one; an ingester the push
    /// doors, the scraper, the symbolizer and the head API; a querier the query doors; the
    /// compactor the compaction.
    pub fn for_target(target: &crate::cluster::Target) -> Self {
        use crate::cluster::Role;
        if !target.is_shared() {
            return Self::all();
        }
        let mut set = Vec::new();
        if target.has(Role::Ingester) {
            set.extend([
                Component::Ingest,
                Component::Scrape,
                Component::Symbolizer,
                Component::HeadApi,
            ]);
        }
        if target.has(Role::Querier) {
            set.push(Component::Query);
        }
        if target.has(Role::Compactor) {
            set.push(Component::Compactor);
        }
        Self::only(set)
    }

    /// Exactly `components`.
    pub fn only(components: impl IntoIterator<Item = Component>) -> Self {
        ComponentSet(components.into_iter().collect())
    }

    /// This set without `c`.
    pub fn without(mut self, c: Component) -> Self {
        self.0.remove(&c);
        self
    }

    /// Whether `c` runs.
    pub fn contains(&self, c: Component) -> bool {
        self.0.contains(&c)
    }
}

/// Why the components did not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The config is not valid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The store did not open.
    #[error("opening the store under {data_dir}: {source}")]
    Engine {
        /// The data directory.
        data_dir: PathBuf,
        /// The engine's error.
        source: strata_engine::Error,
    },
    /// The symbolizer did not start.
    #[error("starting the symbolizer: {0}")]
    Symbolizer(#[from] crate::symbolization::Error),
    /// The `cluster:` section cannot be used.
    #[error("cluster: {0}")]
    Cluster(String),
    /// The scrape configuration was refused.
    #[error("scrape_configs: {0}")]
    Scrape(#[from] crate::scrape::InvalidScrapeConfig),
}

/// The running components of one process.
pub struct Components {
    /// What runs.
    pub set: ComponentSet,
    /// The state the front doors share (stores, limits, tokens, counters).
    pub app: Arc<App>,
    /// The scraper, when [`Component::Scrape`] runs.
    pub scraper: Option<Arc<Scraper>>,
    /// The in-process collector, when [`Component::Collector`] runs and the kernel allows BPF.
    collector: Option<SamplerHandle>,
    /// An ingester's heartbeat and scrape-shard loop ([`crate::cluster`]).
    membership: Option<tokio::task::JoinHandle<()>>,
}

impl Components {
    /// Opens the store under `data_dir` and starts the components of `set` as `config` says.
    /// `listen` is the server's own address (its default scrape job scrapes it).
    pub async fn start(
        config: &ServerConfig,
        data_dir: PathBuf,
        listen: SocketAddr,
        set: ComponentSet,
    ) -> Result<Components, StartError> {
        Self::start_as(config, data_dir, listen, set, StoreRole::Owner).await
    }

    /// [`Components::start`], opening the stores as `role` says (an ingester, a querier or
    /// the compactor of a shared bucket; see [`crate::cluster`]).
    pub async fn start_as(
        config: &ServerConfig,
        data_dir: PathBuf,
        listen: SocketAddr,
        set: ComponentSet,
        role: StoreRole,
    ) -> Result<Components, StartError> {
        config.validate()?;
        let role_heads = match &role {
            StoreRole::Reader { heads, .. } => heads.clone(),
            _ => None,
        };
        let mut engine_config = config.engine.clone().unwrap_or_default();
        engine_config.data_dir = data_dir.clone();
        // A shared store's engines always run their background task (an ingester's flushes,
        // a reader's catalog refresh); whether a reader compacts is its role's business.
        engine_config.background &=
            set.contains(Component::Compactor) || !matches!(role, StoreRole::Owner);
        let engine = role
            .open(engine_config.clone(), None)
            .await
            .map_err(|source| StartError::Engine {
                data_dir: data_dir.clone(),
                source,
            })?;
        let mut symbolizer = config.symbolizer.clone().unwrap_or_default();
        symbolizer.enabled &= set.contains(Component::Symbolizer);
        let symbolization = Symbolization::start(
            engine.clone(),
            symbolizer.clone(),
            data_dir.join("debuginfo-cache"),
        )?;
        let tenants_config = config.tenants.clone().unwrap_or_default();
        let cluster = config.cluster.clone().unwrap_or_default();
        // A querier of a cluster with `cluster.queriers` splits its queries across them.
        let querier_distribution = match set.contains(Component::Query)
            && !matches!(role, StoreRole::Owner)
            && !cluster.queriers.is_empty()
        {
            false => None,
            true => Some(
                QuerierDistribution::new(
                    &cluster,
                    listen,
                    config
                        .auth
                        .as_ref()
                        .and_then(|a| a.read_tokens.first().cloned()),
                    &tenants_config.header,
                )
                .map_err(StartError::Cluster)?,
            ),
        };
        let distribution = querier_distribution
            .as_ref()
            .map(|q| q.distribution.clone());
        let mut default_store =
            TenantStore::new(tenants_config.default_tenant.clone(), engine, symbolization);
        if let Some(d) = &distribution {
            default_store.query = strata_query::QueryEngine::distributed(
                default_store.engine.clone(),
                d.clone(),
                None,
            );
        }
        let is_ingester = matches!(role, StoreRole::Ingester);
        let template = TenantTemplate {
            engine: engine_config,
            symbolizer,
            role,
            distribution,
        };
        let tenants = Tenants::new(tenants_config, default_store, Some(template));
        let settings = AppSettings {
            ingest: config.ingest.clone().unwrap_or_default(),
            query: config.query.clone().unwrap_or_default(),
            auth: config.auth.clone().unwrap_or_default(),
            ingesters: role_heads,
            worker: querier_distribution.as_ref().map(|q| q.worker.clone()),
        };
        let app = App::with_tenants(tenants, settings);
        if let Some(q) = &querier_distribution {
            q.attach(&app);
        }
        let scraper = match set.contains(Component::Scrape) {
            false => None,
            true => {
                let scraper = Arc::new(Scraper::new(app.clone()));
                scraper.apply(&config.scrape_jobs(listen))?;
                Some(scraper)
            }
        };
        let collector = match set.contains(Component::Collector) {
            false => None,
            true => crate::collector::in_process::start_in_process(
                app.default_store().clone(),
                config.collector.clone().unwrap_or_default(),
            ),
        };
        let membership = is_ingester.then(|| {
            let cluster = config.cluster.clone().unwrap_or_default();
            tokio::spawn(crate::cluster::membership::run(
                app.default_store().engine.clone(),
                format!("http://{listen}"),
                cluster.heartbeat_interval,
                scraper.clone(),
            ))
        });
        Ok(Components {
            set,
            app,
            scraper,
            collector,
            membership,
        })
    }

    /// Stops the collector and the scraper, then closes every store (WAL synced).
    pub async fn stop(self) -> strata_engine::Result<()> {
        if let Some(m) = &self.membership {
            m.abort();
        }
        if let Some(c) = self.collector {
            let _ = tokio::task::spawn_blocking(move || c.stop()).await;
        }
        if let Some(s) = &self.scraper {
            s.stop();
        }
        self.app.tenants.close().await
    }
}
