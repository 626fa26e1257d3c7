//! [`ClusterConfig`]: the `cluster:` section of the config file.

use std::time::Duration;

use serde::Deserialize;

/// How the processes of a cluster find each other. Used by every `--target` but `all`.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClusterConfig {
    /// The ingesters queriers ask for recent (unflushed) data: base URLs
    /// (`http://10.0.0.7:7070`) or `dns+host:port` names resolving to every ingester (a
    /// Kubernetes headless Service). Default: empty (queriers then read blocks only).
    pub ingesters: Vec<String>,
    /// The queriers, each also a worker of distributed queries: base URLs or `dns+host:port`
    /// (the queriers' headless Service). Default: empty (each querier runs its queries
    /// alone).
    pub queriers: Vec<String>,
    /// This querier's URL as the others know it (an entry of `queriers`, or an address a
    /// `dns+` name resolves to): tasks routed to it then run in-process. Default: unset,
    /// meaning `http://<--listen>`; also `--advertise-url` / `STRATA_ADVERTISE_URL`.
    pub advertise_url: Option<String>,
    /// Longest one request to an ingester may take. Default: `30s`.
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
    /// Longest connecting to an ingester may take. Default: `2s`.
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// `dns+` names are resolved again after this long. Default: `10s`.
    #[serde(with = "humantime_serde")]
    pub dns_refresh: Duration,
    /// What a querier does when an ingester does not answer: `false` (the default) fails the
    /// query (503, naming the ingester); `true` answers from the others and the bucket, and
    /// marks the answer partial (the HTTP header `strata-partial`, also gRPC metadata), since
    /// that ingester's unflushed data is missing.
    pub partial_answers: bool,
    /// Every ingester writes a heartbeat into the bucket this often; scrape targets are shared
    /// among the ingesters whose heartbeat is fresh (three intervals). Default: `10s`.
    #[serde(with = "humantime_serde")]
    pub heartbeat_interval: Duration,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            ingesters: Vec::new(),
            queriers: Vec::new(),
            advertise_url: None,
            request_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(2),
            dns_refresh: Duration::from_secs(10),
            partial_answers: false,
            heartbeat_interval: Duration::from_secs(10),
        }
    }
}

impl ClusterConfig {
    /// Checks every field.
    pub fn validate(&self) -> Result<(), String> {
        for a in &self.ingesters {
            PeerAddress::parse(a).map_err(|e| format!("ingesters: {e}"))?;
        }
        for a in &self.queriers {
            PeerAddress::parse(a).map_err(|e| format!("queriers: {e}"))?;
        }
        for (name, d) in [
            ("request_timeout", self.request_timeout),
            ("connect_timeout", self.connect_timeout),
            ("dns_refresh", self.dns_refresh),
            ("heartbeat_interval", self.heartbeat_interval),
        ] {
            if d.is_zero() {
                return Err(format!("{name} must be positive"));
            }
        }
        Ok(())
    }
}

/// One entry of `cluster.ingesters` or `cluster.queriers`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum PeerAddress {
    /// A base URL, e.g. `http://10.0.0.7:7070`.
    Url(String),
    /// `dns+host:port`: every address the name resolves to, over `http`.
    Dns {
        /// `host:port`.
        host_port: String,
    },
}

impl PeerAddress {
    /// Parses one `cluster.ingesters` entry.
    pub fn parse(s: &str) -> Result<Self, String> {
        if let Some(rest) = s.strip_prefix("dns+") {
            let (host, port) = rest
                .rsplit_once(':')
                .ok_or_else(|| format!("{s:?}: expected dns+host:port"))?;
            if host.is_empty() || port.parse::<u16>().is_err() {
                return Err(format!("{s:?}: expected dns+host:port"));
            }
            return Ok(PeerAddress::Dns {
                host_port: rest.to_owned(),
            });
        }
        let url = url::Url::parse(s).map_err(|e| format!("{s:?}: {e}"))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(format!("{s:?}: expected an http(s) URL or dns+host:port"));
        }
        Ok(PeerAddress::Url(s.trim_end_matches('/').to_owned()))
    }
}
