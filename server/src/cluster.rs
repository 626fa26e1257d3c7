//! Scale-out: the roles a `strata server` process takes (`--target all|ingester|querier|
//! compactor`, [`Target`]), how each opens its stores ([`StoreRole`]), the `cluster:` config
//! ([`ClusterConfig`]), the ingesters' head API ([`head_api`], `/internal/v1/heads/…`) and the
//! queriers' client of it ([`HttpHeads`] over an [`IngesterSet`]).
//!
//! `all` (the default) is one process owning its store (a local directory or a bucket). Every
//! other target shares one bucket: ingesters flush blocks into it and commit them to its
//! catalog, queriers read the catalog's blocks and ask every ingester for its heads, and the
//! compactor compacts, applies retention and deletes what the catalog dropped.

mod config;
mod distribution;
pub(crate) mod head_api;
mod ingesters;
pub(crate) mod membership;
mod wire;

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use strata_engine::{Engine, EngineConfig};

pub use config::ClusterConfig;
pub use distribution::QuerierDistribution;
pub use ingesters::{HttpHeads, IngesterSet};

/// One role of `--target`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// Everything in one process, owning its store.
    All,
    /// Takes pushes and scrapes into its WAL and head, flushes blocks into the shared bucket,
    /// answers queriers for its heads.
    Ingester,
    /// Answers queries from the bucket's blocks and the ingesters' heads; stateless.
    Querier,
    /// Compacts the bucket's blocks, applies retention, deletes dropped and orphaned files.
    Compactor,
}

impl Role {
    fn name(self) -> &'static str {
        match self {
            Role::All => "all",
            Role::Ingester => "ingester",
            Role::Querier => "querier",
            Role::Compactor => "compactor",
        }
    }
}

/// The roles of one process: `--target`, a comma-separated list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target(BTreeSet<Role>);

impl Target {
    /// `all`: one process doing everything.
    pub fn all() -> Self {
        Target([Role::All].into())
    }

    /// Whether `role` is one of them.
    pub fn has(&self, role: Role) -> bool {
        self.0.contains(&role)
    }

    /// Whether the process shares its bucket with others (every target but `all`).
    pub fn is_shared(&self) -> bool {
        !self.has(Role::All)
    }

    /// How the process opens its stores; `ingesters` is what a querier asks for heads.
    pub fn store_role(&self, ingesters: Option<Arc<IngesterSet>>) -> StoreRole {
        if !self.is_shared() {
            StoreRole::Owner
        } else if self.has(Role::Ingester) {
            StoreRole::Ingester
        } else {
            StoreRole::Reader {
                heads: ingesters.filter(|_| self.has(Role::Querier)),
                compacts: self.has(Role::Compactor),
            }
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.0.iter().map(|r| r.name()).collect();
        f.write_str(&names.join(","))
    }
}

impl FromStr for Target {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let mut roles = BTreeSet::new();
        for part in s.split(',').map(str::trim) {
            let role = match part {
                "all" => Role::All,
                "ingester" => Role::Ingester,
                "querier" => Role::Querier,
                "compactor" => Role::Compactor,
                other => {
                    return Err(format!(
                        "unknown target {other:?}: expected all, ingester, querier or compactor \
                         (a comma-separated list)"
                    ));
                }
            };
            roles.insert(role);
        }
        if roles.contains(&Role::All) && roles.len() > 1 {
            return Err("`all` already runs every role; list roles without it".into());
        }
        if roles.contains(&Role::Ingester) && roles.len() > 1 {
            return Err(
                "an ingester runs on its own (its data directory holds a WAL); run queriers and \
                 the compactor as other processes (`--target querier,compactor` is allowed)"
                    .into(),
            );
        }
        Ok(Target(roles))
    }
}

/// How a process opens each tenant's store.
#[derive(Clone, Debug)]
pub enum StoreRole {
    /// The only process using the store (`--target all`).
    Owner,
    /// An ingester of a shared bucket.
    Ingester,
    /// A reader of a shared bucket: asks `heads` (a querier) and compacts (the compactor).
    Reader {
        /// The ingesters (a querier); `None`: blocks only.
        heads: Option<Arc<IngesterSet>>,
        /// Whether it compacts, applies retention and collects garbage.
        compacts: bool,
    },
}

impl StoreRole {
    /// Opens one tenant's store. `tenant` is the header and id to send the ingesters (`None`
    /// for the default tenant).
    pub async fn open(
        &self,
        mut config: EngineConfig,
        tenant: Option<(String, String)>,
    ) -> strata_engine::Result<Engine> {
        match self {
            StoreRole::Owner => Engine::open(config).await,
            StoreRole::Ingester => {
                config.shared.enabled = true;
                Engine::open(config).await
            }
            StoreRole::Reader { heads, compacts } => {
                config.compaction.enabled = *compacts;
                let source = heads.as_ref().map(|set| {
                    Arc::new(HttpHeads::new(set.clone(), tenant))
                        as Arc<dyn strata_engine::HeadSource>
                });
                Engine::open_reader(config, source).await
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse_and_refuse_what_cannot_run_together() {
        assert_eq!("all".parse::<Target>().unwrap(), Target::all());
        let t: Target = "querier, compactor".parse().unwrap();
        assert_eq!(t.to_string(), "querier,compactor");
        assert!(t.is_shared());
        assert!(t.has(Role::Querier) && t.has(Role::Compactor) && !t.has(Role::Ingester));
        let i: Target = "ingester".parse().unwrap();
        assert!(matches!(i.store_role(None), StoreRole::Ingester));
        for bad in ["", "all,querier", "ingester,querier", "reader"] {
            assert!(bad.parse::<Target>().is_err(), "{bad}");
        }
    }
}
