//! Tenants: each has its own store — engine (WAL, head, blocks), query engine, delta baselines
//! and background symbolizer — so one tenant's data can never show up in another's queries.
//!
//! - [`TenantsConfig`]: the `tenants:` config section (off by default: one store);
//! - [`TenantStore`]: one tenant's store;
//! - [`Tenants`]: the default tenant's store (the data directory itself) and the others, opened
//!   on first use under `<data dir>/tenants/<id>/` (and `<storage.url>/tenants/<id>/`).
//!
//! A request names its tenant with a header (`X-Scope-OrgID` by default, as Grafana's
//! Pyroscope, Mimir and Loki do; gRPC clients send it as metadata) or, for Parca's `WriteRaw`,
//! the request's `tenant` field.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use strata_engine::{Engine, EngineConfig};
use strata_ingest::{DeltaSource, DeltaTracker};

use crate::symbolization::{Symbolization, SymbolizerSettings};

/// The `tenants:` config section. Every field has a default, so `tenants: {enabled: true}` is
/// a working setup.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TenantsConfig {
    /// Whether requests may name a tenant. Off, every request goes to the one store and the
    /// header is ignored. Default: `false`.
    pub enabled: bool,
    /// The header (HTTP) or metadata key (gRPC) that names the tenant. Default:
    /// `X-Scope-OrgID`.
    pub header: String,
    /// The tenant of requests that name none, stored in the data directory itself. Default:
    /// `anonymous` (Pyroscope's name for it).
    pub default_tenant: String,
    /// Most tenants (besides the default) one server opens; a request naming a new tenant
    /// beyond is refused. Default: 100.
    pub max_tenants: usize,
}

impl Default for TenantsConfig {
    fn default() -> Self {
        TenantsConfig {
            enabled: false,
            header: "X-Scope-OrgID".into(),
            default_tenant: "anonymous".into(),
            max_tenants: 100,
        }
    }
}

/// Longest tenant id, in bytes.
const MAX_TENANT_ID_BYTES: usize = 150;

impl TenantsConfig {
    /// Checks the header name, the default tenant's id and the tenant limit.
    pub fn validate(&self) -> Result<(), String> {
        axum::http::HeaderName::from_bytes(self.header.as_bytes())
            .map_err(|e| format!("tenants.header {:?}: {e}", self.header))?;
        check_tenant_id(&self.default_tenant)
            .map_err(|e| format!("tenants.default_tenant: {e}"))?;
        if self.max_tenants == 0 {
            return Err("tenants.max_tenants must be greater than 0".into());
        }
        Ok(())
    }
}

/// Checks a tenant id: 1 to 150 bytes of ASCII letters, digits, `-`, `_` and `.`, not `.` or
/// `..` (it names a directory).
pub fn check_tenant_id(id: &str) -> Result<(), String> {
    let ok_char = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.');
    if id.is_empty() || id.len() > MAX_TENANT_ID_BYTES {
        return Err(format!(
            "tenant id {id:?} must be 1 to {MAX_TENANT_ID_BYTES} bytes"
        ));
    }
    if id == "." || id == ".." || !id.bytes().all(ok_char) {
        return Err(format!(
            "tenant id {id:?} may hold only ASCII letters, digits, '-', '_' and '.' (and is not . or ..)"
        ));
    }
    Ok(())
}

/// One tenant's store.
pub struct TenantStore {
    /// The tenant's id.
    pub id: String,
    /// Its engine.
    pub engine: Engine,
    /// Queries over that engine.
    pub query: strata_query::QueryEngine,
    /// Baselines for server-side deltas of cumulative profiles.
    pub deltas: parking_lot::Mutex<DeltaTracker>,
    /// Background symbolization of its addresses.
    pub symbolization: Symbolization,
}

impl TenantStore {
    /// A store over `engine`.
    pub fn new(id: impl Into<String>, engine: Engine, symbolization: Symbolization) -> Self {
        TenantStore {
            id: id.into(),
            query: strata_query::QueryEngine::new(engine.clone()),
            engine,
            deltas: parking_lot::Mutex::new(DeltaTracker::new(100_000)),
            symbolization,
        }
    }

    /// Normalizes a request; returns the result and the delta baselines it moved (forgotten
    /// at once if normalization failed). The baselines are locked only from the moment `f`
    /// first needs them (a profile with a cumulative type) to its end, so requests decode and
    /// normalize in parallel and only cumulative profiles take turns.
    pub(crate) fn normalize<T, E>(
        &self,
        f: impl FnOnce(&mut dyn DeltaSource) -> Result<T, E>,
    ) -> Result<(T, Vec<strata_ingest::DeltaKey>), E> {
        let mut deltas = LockedOnUse {
            mutex: &self.deltas,
            guard: None,
        };
        let out = f(&mut deltas);
        let Some(mut tracker) = deltas.guard else {
            return out.map(|t| (t, Vec::new()));
        };
        let touched = tracker.take_touched();
        if out.is_err() {
            tracker.forget(&touched);
        }
        out.map(|t| (t, touched))
    }

    /// Appends a normalized batch; if the store refuses it, the baselines it moved are
    /// forgotten (no wrong increase later). Returns the samples stored.
    pub(crate) async fn store(
        &self,
        batch: &strata_engine::SampleBatch,
        touched: &[strata_ingest::DeltaKey],
    ) -> strata_engine::Result<u64> {
        match self.engine.append(batch).await {
            Ok(()) => {
                self.symbolization.notify_batch(batch);
                Ok(batch.num_samples() as u64)
            }
            Err(e) => {
                self.deltas.lock().forget(touched);
                Err(e)
            }
        }
    }
}

/// The tenant's delta baselines, locked the first time normalization asks for them and held
/// until it ends.
struct LockedOnUse<'a> {
    mutex: &'a parking_lot::Mutex<DeltaTracker>,
    guard: Option<parking_lot::MutexGuard<'a, DeltaTracker>>,
}

impl DeltaSource for LockedOnUse<'_> {
    fn tracker(&mut self) -> &mut DeltaTracker {
        self.guard.get_or_insert_with(|| {
            let mut tracker = self.mutex.lock();
            // Whatever an earlier holder left is not this request's.
            tracker.take_touched();
            tracker
        })
    }
}

/// How the stores of tenants other than the default are opened.
#[derive(Clone, Debug)]
pub struct TenantTemplate {
    /// The default tenant's engine config: other tenants get the same settings, their own
    /// directory and object-store prefix.
    pub engine: EngineConfig,
    /// The symbolizer's settings.
    pub symbolizer: SymbolizerSettings,
    /// How stores open (the process's role in a cluster).
    pub role: crate::cluster::StoreRole,
    /// A querier's distributed queries (`cluster.queriers`).
    pub distribution: Option<Arc<strata_query::Distribution>>,
}

/// Why a request's tenant has no store.
#[derive(Debug)]
pub enum TenantError {
    /// The id is not a valid tenant id.
    Invalid(String),
    /// `tenants.max_tenants` are open already.
    TooMany {
        /// The limit.
        max: usize,
    },
    /// The tenant's engine did not open.
    Open(String),
}

impl std::fmt::Display for TenantError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TenantError::Invalid(m) => f.write_str(m),
            TenantError::TooMany { max } => write!(
                f,
                "limit exceeded: tenants.max_tenants is {max}, a new tenant cannot be opened"
            ),
            TenantError::Open(m) => write!(f, "opening the tenant's store: {m}"),
        }
    }
}

/// Every tenant's store.
pub struct Tenants {
    config: TenantsConfig,
    default: Arc<TenantStore>,
    template: Option<TenantTemplate>,
    others: Mutex<HashMap<String, Arc<TenantStore>>>,
    /// Held while a tenant's engine opens (one at a time).
    opening: tokio::sync::Mutex<()>,
}

impl Tenants {
    /// One store: `default`, whatever a request names.
    pub fn single(default: TenantStore) -> Self {
        Self::new(TenantsConfig::default(), default, None)
    }

    /// The default tenant's store and, when `config.enabled`, others opened from `template`
    /// (without one, naming another tenant is refused).
    pub fn new(
        config: TenantsConfig,
        default: TenantStore,
        template: Option<TenantTemplate>,
    ) -> Self {
        Tenants {
            config,
            default: Arc::new(default),
            template,
            others: Mutex::new(HashMap::new()),
            opening: tokio::sync::Mutex::new(()),
        }
    }

    /// The config.
    pub fn config(&self) -> &TenantsConfig {
        &self.config
    }

    /// The default tenant's store.
    pub fn default_store(&self) -> &Arc<TenantStore> {
        &self.default
    }

    /// Every open store, the default first.
    pub fn open_stores(&self) -> Vec<Arc<TenantStore>> {
        let mut out = vec![self.default.clone()];
        let mut others: Vec<_> = self.others.lock().values().cloned().collect();
        others.sort_by(|a, b| a.id.cmp(&b.id));
        out.extend(others);
        out
    }

    /// The store of tenant `id` (`None`: the default), opened on first use.
    pub async fn get(&self, id: Option<&str>) -> Result<Arc<TenantStore>, TenantError> {
        let id = match id {
            Some(id) if self.config.enabled && id != self.config.default_tenant => id,
            _ => return Ok(self.default.clone()),
        };
        check_tenant_id(id).map_err(TenantError::Invalid)?;
        if let Some(store) = self.others.lock().get(id) {
            return Ok(store.clone());
        }
        let _opening = self.opening.lock().await;
        if let Some(store) = self.others.lock().get(id) {
            return Ok(store.clone());
        }
        if self.others.lock().len() >= self.config.max_tenants {
            return Err(TenantError::TooMany {
                max: self.config.max_tenants,
            });
        }
        let Some(template) = &self.template else {
            return Err(TenantError::Invalid(format!(
                "tenant {id:?}: this server serves only its default tenant"
            )));
        };
        let header = (self.config.header.clone(), id.to_owned());
        let store = Arc::new(open_tenant(template, id, header).await?);
        tracing::info!(tenant = id, "opened a tenant's store");
        self.others.lock().insert(id.to_owned(), store.clone());
        Ok(store)
    }

    /// Stops every symbolizer and closes every engine (the WAL synced).
    pub async fn close(&self) -> strata_engine::Result<()> {
        let stores = self.open_stores();
        for store in &stores {
            store.symbolization.stop().await;
        }
        let mut first_error = None;
        for store in stores {
            if let Err(e) = store.engine.close().await {
                tracing::error!(tenant = store.id, error = %e, "closing a tenant's store");
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

/// Where tenant `id`'s store lives: `<data dir>/tenants/<id>` and, with object storage,
/// `<storage.url>/tenants/<id>`.
fn tenant_config(template: &EngineConfig, id: &str) -> EngineConfig {
    let mut config = template.clone();
    config.data_dir = template.data_dir.join("tenants").join(id);
    if let Some(url) = &mut config.storage.url {
        *url = format!("{}/tenants/{id}", url.trim_end_matches('/'));
    }
    config
}

async fn open_tenant(
    template: &TenantTemplate,
    id: &str,
    header: (String, String),
) -> Result<TenantStore, TenantError> {
    let config = tenant_config(&template.engine, id);
    let cache: PathBuf = config.data_dir.join("debuginfo-cache");
    let engine = template
        .role
        .open(config, Some(header.clone()))
        .await
        .map_err(|e| TenantError::Open(format!("tenant {id:?}: {e}")))?;
    let mut settings = template.symbolizer.clone();
    if let Some(dir) = &mut settings.cache_dir {
        *dir = dir.join("tenants").join(id);
    }
    let symbolization = Symbolization::start(engine.clone(), settings, cache)
        .map_err(|e| TenantError::Open(format!("tenant {id:?}: {e}")))?;
    let mut store = TenantStore::new(id, engine, symbolization);
    if let Some(d) = &template.distribution {
        store.query =
            strata_query::QueryEngine::distributed(store.engine.clone(), d.clone(), Some(header));
    }
    Ok(store)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_ids_name_a_directory_and_nothing_else() {
        for ok in ["a", "team-1", "org_2.prod", &"x".repeat(150)] {
            check_tenant_id(ok).unwrap();
        }
        for bad in ["", ".", "..", "a/b", "../x", "a b", "é", &"x".repeat(151)] {
            let e = check_tenant_id(bad).expect_err(bad);
            assert!(e.contains("tenant"), "{bad:?}: {e}");
        }
    }

    #[test]
    fn a_tenant_gets_its_own_directory_and_prefix() {
        let mut template = EngineConfig::new("/data");
        let c = tenant_config(&template, "t1");
        assert_eq!(c.data_dir, PathBuf::from("/data/tenants/t1"));
        assert_eq!(c.storage.url, None);
        template.storage.url = Some("s3://bucket/strata/".into());
        let c = tenant_config(&template, "t1");
        assert_eq!(
            c.storage.url.as_deref(),
            Some("s3://bucket/strata/tenants/t1")
        );
    }

    #[test]
    fn the_default_config_is_valid() {
        TenantsConfig::default().validate().unwrap();
        let bad = TenantsConfig {
            default_tenant: "../x".into(),
            ..Default::default()
        };
        assert!(bad.validate().unwrap_err().contains("default_tenant"));
    }
}
