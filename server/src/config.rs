//! [`ServerConfig`]: the `--config` YAML file of `strata server`, one section per component,
//! every field defaulted, checked as a whole by [`ServerConfig::validate`].

use std::net::SocketAddr;
use std::path::Path;

use serde::Deserialize;
use strata_engine::EngineConfig;

use crate::scrape::{PprofEndpointConfig, ScrapeConfigs, ScrapeJob};

/// The config file. Every section is optional; an absent one takes its type's defaults.
#[derive(Deserialize, Default, Clone, Debug)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// The store (`EngineConfig`; every field has a default). Default: a local store under
    /// `--data-dir`.
    pub engine: Option<EngineConfig>,
    /// Push limits: `max_body_bytes`, `max_decompressed_bytes`. Default: `DecodeLimits`'.
    pub ingest: Option<strata_ingest::DecodeLimits>,
    /// Prometheus-style scrape jobs, reloaded on SIGHUP. Default (absent): the server scrapes
    /// its own CPU profile ([`ServerConfig::scrape_jobs`]).
    pub scrape_configs: Option<ScrapeConfigs>,
    /// The in-process eBPF collector (`SamplerConfig`: `frequency_hz`, `interval`, …).
    /// Default: `SamplerConfig`'s (19 Hz, 10 s).
    pub collector: Option<strata_collector_ebpf::SamplerConfig>,
    /// Background symbolization and debug info uploads (`SymbolizerSettings`). Default: on.
    pub symbolizer: Option<crate::symbolization::SymbolizerSettings>,
    /// Query limits (`QueryLimits`: `max_range`, `max_result_nodes`). Default: 32 d, 2 M.
    pub query: Option<crate::limits::QueryLimits>,
    /// Bearer tokens (`AuthConfig`: `read_tokens`, `write_tokens`). Default: none (open).
    pub auth: Option<crate::auth::AuthConfig>,
    /// TLS on the listener (`TlsConfig`: `cert_file`, `key_file`). Default: plain.
    pub tls: Option<crate::tls::TlsConfig>,
    /// Tenants (`TenantsConfig`: `enabled`, `header`, `default_tenant`, `max_tenants`).
    /// Default: one tenant.
    pub tenants: Option<crate::tenants::TenantsConfig>,
    /// How a cluster's processes find each other (`ClusterConfig`: `ingesters`, timeouts,
    /// `heartbeat_interval`), for every `--target` but `all`. Default: no ingesters.
    pub cluster: Option<crate::cluster::ClusterConfig>,
}

/// A config file that cannot be used: which file or section, and why.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("reading {path}: {reason}")]
    Read {
        /// The file.
        path: String,
        /// The operating system's error.
        reason: String,
    },
    /// The file is not valid YAML for this config.
    #[error("parsing {path}: {reason}")]
    Parse {
        /// The file.
        path: String,
        /// The parser's error (line and column included).
        reason: String,
    },
    /// A section's values are not valid.
    #[error("{section}: {reason}")]
    Invalid {
        /// The section (`ingest`, `query`, …).
        section: &'static str,
        /// What is wrong.
        reason: String,
    },
}

impl ServerConfig {
    /// Reads and parses `path` (the defaults when `None`); does not validate.
    pub fn read(path: Option<&Path>) -> Result<ServerConfig, ConfigError> {
        let Some(path) = path else {
            return Ok(ServerConfig::default());
        };
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        serde_yaml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.display().to_string(),
            reason: e.to_string(),
        })
    }

    /// Checks every section.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid =
            |section: &'static str| move |reason: String| ConfigError::Invalid { section, reason };
        let ingest = self.ingest.clone().unwrap_or_default();
        ingest
            .validate()
            .map_err(|e| invalid("ingest")(e.to_string()))?;
        if let Some(jobs) = &self.scrape_configs {
            crate::scrape::validate(jobs).map_err(|e| invalid("scrape_configs")(e.to_string()))?;
        }
        self.collector
            .clone()
            .unwrap_or_default()
            .validate()
            .map_err(|e| invalid("collector")(e.to_string()))?;
        self.symbolizer
            .clone()
            .unwrap_or_default()
            .validate()
            .map_err(|e| invalid("symbolizer")(e.to_string()))?;
        self.query
            .clone()
            .unwrap_or_default()
            .validate()
            .map_err(invalid("query"))?;
        self.auth
            .clone()
            .unwrap_or_default()
            .validate()
            .map_err(invalid("auth"))?;
        self.tenants
            .clone()
            .unwrap_or_default()
            .validate()
            .map_err(invalid("tenants"))?;
        if let Some(tls) = &self.tls {
            tls.validate().map_err(invalid("tls"))?;
        }
        self.cluster
            .clone()
            .unwrap_or_default()
            .validate()
            .map_err(invalid("cluster"))?;
        Ok(())
    }

    /// The scrape jobs to run: the configured ones, or by default one that scrapes this
    /// server's own CPU profile at `listen`.
    pub fn scrape_jobs(&self, listen: SocketAddr) -> Vec<ScrapeJob> {
        if let Some(jobs) = &self.scrape_configs {
            return jobs.clone();
        }
        let host = if listen.ip().is_unspecified() {
            SocketAddr::new(std::net::Ipv4Addr::LOCALHOST.into(), listen.port())
        } else {
            listen
        };
        let mut job = ScrapeJob::new("strata", vec![host.to_string()]);
        job.bearer_token = self
            .auth
            .as_ref()
            .and_then(|a| a.read_tokens.first().cloned());
        if self.tls.is_some() {
            // Its own listener over loopback: the certificate may not name 127.0.0.1, and
            // checking it would prove nothing.
            job.scheme = "https".to_owned();
            job.tls_config.insecure_skip_verify = true;
        }
        for name in ["memory", "goroutine", "mutex", "block"] {
            job.profiling_config.pprof_config.insert(
                name.to_owned(),
                PprofEndpointConfig {
                    enabled: Some(false),
                    ..Default::default()
                },
            );
        }
        vec![job]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_invalid_section_is_named() {
        let config: ServerConfig =
            serde_yaml::from_str("query: {max_range: 0s}\n").expect("parses");
        let e = config.validate().unwrap_err();
        assert!(
            matches!(
                e,
                ConfigError::Invalid {
                    section: "query",
                    ..
                }
            ),
            "{e:?}"
        );
        assert!(e.to_string().contains("query.max_range"), "{e}");
        ServerConfig::default().validate().unwrap();
    }

    #[test]
    fn the_default_scrape_job_is_this_server_cpu_only() {
        let jobs = ServerConfig::default().scrape_jobs("0.0.0.0:7070".parse().unwrap());
        assert_eq!(jobs.len(), 1);
        assert_eq!(jobs[0].static_configs[0].targets, ["127.0.0.1:7070"]);
    }
}
