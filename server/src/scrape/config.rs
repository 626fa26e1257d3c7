//! Scrape configuration, Prometheus-style (as Parca reads it):
//!
//! ```yaml
//! scrape_configs:
//!   - job_name: api
//!     scrape_interval: 10s          # default 10s
//!     scrape_timeout: 10s           # default: min(10s, scrape_interval)
//!     scheme: http                  # default http; https trusts the system's CAs and
//!     tls_config:                   # these (Prometheus' tls_config):
//!       ca_file: /etc/ssl/my-ca.pem   #   PEM CA certificates trusted besides, default none
//!       insecure_skip_verify: false   #   accept any certificate, default false
//!     static_configs:
//!       - targets: ["127.0.0.1:6060"]
//!         labels: { env: prod }
//!     profiling_config:
//!       path_prefix: ""             # prepended to every path
//!       pprof_config:
//!         process_cpu: { enabled: true, path: /debug/pprof/profile, delta: true }
//!         memory:      { path: /debug/pprof/allocs }
//!         my_custom:   { enabled: true, path: /debug/custom, seconds: 5 }
//! ```
//!
//! Each `pprof_config` entry's name is the profile type's name part (`__name__`). Go's
//! endpoints are there by default — `process_cpu` (`/debug/pprof/profile`, delta), `memory`
//! (`/debug/pprof/allocs`), `goroutine`, `mutex` and `block` — and an entry of the same name
//! overrides only the fields it sets. A delta endpoint is asked for `?seconds=<seconds>`
//! (default: the scrape interval), and its request may take that long plus the timeout.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

/// The `scrape_configs:` list.
pub type ScrapeConfigs = Vec<ScrapeJob>;

/// One scrape job.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ScrapeJob {
    /// The `job` label of every series scraped. Required, unique.
    pub job_name: String,
    /// How often each endpoint is scraped. Default 10s.
    #[serde(default = "default_interval", with = "humantime_serde")]
    pub scrape_interval: Duration,
    /// How long a scrape may take (beyond `seconds`, for delta endpoints). Default: 10s, or the
    /// interval when that is shorter. At most the interval.
    #[serde(default, with = "humantime_serde")]
    pub scrape_timeout: Option<Duration>,
    /// `http` (default) or `https`.
    #[serde(default = "default_scheme")]
    pub scheme: String,
    /// Targets and their extra labels.
    #[serde(default)]
    pub static_configs: Vec<StaticConfig>,
    /// Which endpoints to scrape. Default: Go's five.
    #[serde(default)]
    pub profiling_config: ProfilingConfig,
    /// Sent as `Authorization: Bearer <token>` on every scrape (Prometheus' and Parca's
    /// `bearer_token`). Default: none.
    #[serde(default)]
    pub bearer_token: Option<String>,
    /// How `https` targets are verified. Default: by the system's CA certificates.
    #[serde(default)]
    pub tls_config: ScrapeTlsConfig,
}

/// How a job's `https` targets are verified (Prometheus' `tls_config`).
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[serde(deny_unknown_fields)]
pub struct ScrapeTlsConfig {
    /// A PEM file of CA certificates trusted besides the system's. Default: none.
    #[serde(default)]
    pub ca_file: Option<std::path::PathBuf>,
    /// Accept any certificate, unverified (tests, or a target on loopback). Default: false.
    #[serde(default)]
    pub insecure_skip_verify: bool,
}

impl ScrapeTlsConfig {
    /// The HTTP client that verifies targets this way; `reason` when the CA file cannot be
    /// read or holds no certificate.
    pub fn client(&self) -> Result<reqwest::Client, String> {
        let mut builder = reqwest::Client::builder()
            .user_agent(concat!("strata/", env!("CARGO_PKG_VERSION")))
            .danger_accept_invalid_certs(self.insecure_skip_verify);
        if let Some(path) = &self.ca_file {
            let pem = std::fs::read(path)
                .map_err(|e| format!("tls_config.ca_file {}: {e}", path.display()))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
                format!(
                    "tls_config.ca_file {}: not PEM certificates: {e}",
                    path.display()
                )
            })?;
            if certs.is_empty() {
                return Err(format!(
                    "tls_config.ca_file {}: holds no certificate",
                    path.display()
                ));
            }
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        builder
            .build()
            .map_err(|e| format!("an HTTP client with this tls_config: {e}"))
    }
}

/// Targets sharing a set of labels.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct StaticConfig {
    /// `host:port` of each target; becomes the `instance` label. Default: none.
    #[serde(default)]
    pub targets: Vec<String>,
    /// Labels added to every series of these targets. Default: none.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

/// The endpoints of a job.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ProfilingConfig {
    /// Prepended to every endpoint's path. Default empty.
    #[serde(default)]
    pub path_prefix: String,
    /// Endpoints by profile name; merged over Go's defaults.
    #[serde(default)]
    pub pprof_config: BTreeMap<String, PprofEndpointConfig>,
}

/// One endpoint as written in the file; unset fields keep the default's.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PprofEndpointConfig {
    /// Whether to scrape it. Default: true for a new entry, the default's for Go's five.
    pub enabled: Option<bool>,
    /// The URL path. Required for a new entry.
    pub path: Option<String>,
    /// Whether the endpoint returns a profile of the last `seconds` (CPU), asked for with
    /// `?seconds=`. Default false for a new entry.
    pub delta: Option<bool>,
    /// The `seconds` of a delta endpoint. Default: the scrape interval.
    pub seconds: Option<u64>,
}

/// One endpoint, resolved.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct PprofEndpoint {
    /// The profile name (`__name__`).
    pub name: String,
    /// The URL path, prefix included.
    pub path: String,
    /// Whether to ask for `?seconds=`.
    pub delta: bool,
    /// The seconds asked for.
    pub seconds: u64,
}

fn default_interval() -> Duration {
    Duration::from_secs(10)
}

fn default_scheme() -> String {
    "http".to_owned()
}

/// Go's `net/http/pprof` endpoints, as Parca names them: (name, path, delta).
const GO_DEFAULTS: [(&str, &str, bool); 5] = [
    ("process_cpu", "/debug/pprof/profile", true),
    ("memory", "/debug/pprof/allocs", false),
    ("goroutine", "/debug/pprof/goroutine", false),
    ("mutex", "/debug/pprof/mutex", false),
    ("block", "/debug/pprof/block", false),
];

/// A scrape configuration that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("scrape config, job {job:?}: {reason}")]
pub struct InvalidScrapeConfig {
    /// The job.
    pub job: String,
    /// What is wrong.
    pub reason: String,
}

impl ScrapeJob {
    /// A job scraping `targets` with Go's default endpoints.
    pub fn new(job_name: &str, targets: Vec<String>) -> Self {
        ScrapeJob {
            job_name: job_name.to_owned(),
            scrape_interval: default_interval(),
            scrape_timeout: None,
            scheme: default_scheme(),
            static_configs: vec![StaticConfig {
                targets,
                labels: BTreeMap::new(),
            }],
            profiling_config: ProfilingConfig::default(),
            bearer_token: None,
            tls_config: ScrapeTlsConfig::default(),
        }
    }

    /// The effective timeout (see [`ScrapeJob::scrape_timeout`]).
    pub fn timeout(&self) -> Duration {
        self.scrape_timeout
            .unwrap_or_else(|| default_interval().min(self.scrape_interval))
    }

    /// The enabled endpoints: Go's defaults merged with `pprof_config`.
    pub fn endpoints(&self) -> Result<Vec<PprofEndpoint>, InvalidScrapeConfig> {
        let invalid = |reason: String| InvalidScrapeConfig {
            job: self.job_name.clone(),
            reason,
        };
        let mut out = Vec::new();
        let configured = &self.profiling_config.pprof_config;
        let defaults: BTreeMap<&str, (&str, bool)> =
            GO_DEFAULTS.iter().map(|&(n, p, d)| (n, (p, d))).collect();
        let mut names: Vec<&str> = defaults.keys().copied().collect();
        names.extend(configured.keys().map(String::as_str));
        names.sort_unstable();
        names.dedup();
        for name in names {
            let set = configured.get(name).cloned().unwrap_or_default();
            let default = defaults.get(name);
            if !set.enabled.unwrap_or(true) {
                continue;
            }
            let path = match (set.path, default) {
                (Some(p), _) => p,
                (None, Some((p, _))) => p.to_string(),
                (None, None) => return Err(invalid(format!("pprof_config.{name} has no path"))),
            };
            if !path.starts_with('/') {
                return Err(invalid(format!(
                    "pprof_config.{name}.path {path:?} must start with /"
                )));
            }
            if strata_ingest::sanitize_label_name(name) != name {
                return Err(invalid(format!(
                    "pprof_config name {name:?} is not a valid profile name ([a-zA-Z_][a-zA-Z0-9_]*)"
                )));
            }
            let delta = set.delta.unwrap_or(default.is_some_and(|(_, d)| *d));
            let seconds = set.seconds.unwrap_or(self.scrape_interval.as_secs().max(1));
            if seconds == 0 {
                return Err(invalid(format!("pprof_config.{name}.seconds must be > 0")));
            }
            out.push(PprofEndpoint {
                name: name.to_owned(),
                path: format!("{}{path}", self.profiling_config.path_prefix),
                delta,
                seconds,
            });
        }
        Ok(out)
    }

    fn validate(&self) -> Result<(), InvalidScrapeConfig> {
        let invalid = |reason: &str| {
            Err(InvalidScrapeConfig {
                job: self.job_name.clone(),
                reason: reason.to_owned(),
            })
        };
        if self.job_name.is_empty() {
            return invalid("job_name is empty");
        }
        if self.scrape_interval < Duration::from_secs(1) {
            return invalid("scrape_interval must be at least 1s");
        }
        if self.timeout() > self.scrape_interval || self.timeout().is_zero() {
            return invalid("scrape_timeout must be > 0 and at most scrape_interval");
        }
        if self.scheme != "http" && self.scheme != "https" {
            return invalid("scheme must be http or https");
        }
        if self.scheme == "http" && self.tls_config != ScrapeTlsConfig::default() {
            return invalid("tls_config is set but scheme is http (set scheme: https)");
        }
        for sc in &self.static_configs {
            for t in &sc.targets {
                if t.is_empty() || t.contains('/') || !t.contains(':') {
                    return invalid(&format!("target {t:?} is not host:port"));
                }
            }
            for k in sc.labels.keys() {
                if !strata_engine::is_valid_label_name(k) || k == "job" || k == "instance" {
                    return invalid(&format!(
                        "label {k:?} is not a valid label name, or is job/instance"
                    ));
                }
            }
        }
        self.endpoints().map(|_| ())
    }
}

/// Checks every job, and that job names are unique.
pub fn validate(jobs: &[ScrapeJob]) -> Result<(), InvalidScrapeConfig> {
    let mut seen = std::collections::HashSet::new();
    for job in jobs {
        job.validate()?;
        if !seen.insert(&job.job_name) {
            return Err(InvalidScrapeConfig {
                job: job.job_name.clone(),
                reason: "job_name is used twice".to_owned(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_defaults_and_overrides_merge() {
        let yaml = r#"
- job_name: api
  scrape_interval: 15s
  static_configs:
    - targets: ["127.0.0.1:6060"]
      labels: { env: prod }
  profiling_config:
    path_prefix: /app
    pprof_config:
      block: { enabled: false }
      memory: { path: /debug/pprof/heap }
      fgprof: { path: /debug/fgprof, delta: true, seconds: 5 }
"#;
        let jobs: ScrapeConfigs = serde_yaml::from_str(yaml).unwrap();
        validate(&jobs).unwrap();
        let eps = jobs[0].endpoints().unwrap();
        let got: Vec<_> = eps
            .iter()
            .map(|e| (e.name.as_str(), e.path.as_str(), e.delta, e.seconds))
            .collect();
        assert_eq!(
            got,
            [
                ("fgprof", "/app/debug/fgprof", true, 5),
                ("goroutine", "/app/debug/pprof/goroutine", false, 15),
                ("memory", "/app/debug/pprof/heap", false, 15),
                ("mutex", "/app/debug/pprof/mutex", false, 15),
                ("process_cpu", "/app/debug/pprof/profile", true, 15),
            ]
        );
        assert_eq!(jobs[0].timeout(), Duration::from_secs(10));
    }

    #[test]
    fn bad_configs_say_what_is_wrong() {
        for (yaml, want) in [
            (
                "- job_name: a\n  scrape_interval: 5s\n  scrape_timeout: 6s",
                "scrape_timeout",
            ),
            (
                "- job_name: a\n  static_configs: [{targets: [nohost]}]",
                "host:port",
            ),
            ("- job_name: a\n- job_name: a", "used twice"),
            (
                "- job_name: a\n  profiling_config: {pprof_config: {x: {enabled: true}}}",
                "no path",
            ),
            (
                "- job_name: a\n  static_configs: [{targets: [\"h:1\"], labels: {job: x}}]",
                "job/instance",
            ),
        ] {
            let jobs: ScrapeConfigs = serde_yaml::from_str(yaml).unwrap();
            let err = validate(&jobs).unwrap_err().to_string();
            assert!(err.contains(want), "{yaml}: {err}");
        }
        let e = serde_yaml::from_str::<ScrapeConfigs>("- job_name: a\n  bogus: 1").unwrap_err();
        assert!(e.to_string().contains("unknown field `bogus`"), "{e}");
    }
}
