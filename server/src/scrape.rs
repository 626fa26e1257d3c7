//! The scraper: pulls pprof profiles from Go-style `/debug/pprof` endpoints on an interval, as
//! Parca's scraper does, and stores them like a push (server-side deltas included).
//!
//! [`Scraper::apply`] takes a whole `scrape_configs` list (at start and on every SIGHUP) and
//! moves the running loops to it: targets that are unchanged keep running, removed or changed
//! ones stop after their current scrape, new ones start. Each target (job × instance ×
//! endpoint) is one task that scrapes at once, then every interval; its health is in
//! [`App::targets`].

mod config;
pub(crate) mod health;
mod shard;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use futures::StreamExt;
use strata_engine::SampleBatchBuilder;
use strata_ingest::{ProfileSource, decode_pprof, normalize_with_deltas};
use tokio::sync::watch;
use tracing::{debug, info, warn};

pub use config::{
    InvalidScrapeConfig, PprofEndpoint, PprofEndpointConfig, ProfilingConfig, ScrapeConfigs,
    ScrapeJob, ScrapeTlsConfig, StaticConfig, validate,
};
pub use health::{TargetHealth, TargetHealthMap, TargetKey};
pub use shard::ScrapeShard;

use crate::state::App;
use strata_engine::now_ns;

/// One target, fully resolved.
#[derive(Clone, Debug, PartialEq)]
struct ScrapeTarget {
    key: TargetKey,
    url: String,
    labels: BTreeMap<String, String>,
    delta: bool,
    interval: Duration,
    /// The whole request's timeout: `seconds` + the scrape timeout for delta endpoints.
    request_timeout: Duration,
    /// Sent as `Authorization: Bearer …`.
    bearer_token: Option<String>,
    /// How an `https` target is verified.
    tls: ScrapeTlsConfig,
}

struct RunningTarget {
    target: ScrapeTarget,
    stop: watch::Sender<bool>,
}

/// Runs the scrape loops of a configuration.
pub struct Scraper {
    app: Arc<App>,
    client: reqwest::Client,
    running: parking_lot::Mutex<BTreeMap<TargetKey, RunningTarget>>,
    /// The jobs last applied (re-applied when the shard changes).
    jobs: parking_lot::Mutex<Vec<ScrapeJob>>,
    /// This process's share of the targets (a cluster's ingesters); `None`: all of them.
    shard: parking_lot::Mutex<Option<ScrapeShard>>,
}

impl Scraper {
    /// A scraper storing into `app`, with no targets yet.
    pub fn new(app: Arc<App>) -> Self {
        Scraper {
            app,
            client: ScrapeTlsConfig::default()
                .client()
                .expect("the default HTTP client builds"),
            running: Default::default(),
            jobs: Default::default(),
            shard: Default::default(),
        }
    }

    /// Scrapes only `shard`'s targets from now on (`None`: all); re-applies the jobs when it
    /// changes.
    pub fn set_shard(&self, shard: Option<ScrapeShard>) -> Result<(), InvalidScrapeConfig> {
        if *self.shard.lock() == shard {
            return Ok(());
        }
        *self.shard.lock() = shard;
        info!(?shard, "scrape shard changed");
        let jobs = self.jobs.lock().clone();
        self.apply(&jobs)
    }

    /// Validates `jobs` and moves the running loops to them (this process's shard of their
    /// targets). On error nothing changes.
    pub fn apply(&self, jobs: &[ScrapeJob]) -> Result<(), InvalidScrapeConfig> {
        validate(jobs)?;
        let shard = *self.shard.lock();
        // One client per distinct tls_config (CA files are read now: a bad one changes nothing).
        let mut clients = BTreeMap::from([(ScrapeTlsConfig::default(), self.client.clone())]);
        for job in jobs {
            if !clients.contains_key(&job.tls_config) {
                let client = job
                    .tls_config
                    .client()
                    .map_err(|reason| InvalidScrapeConfig {
                        job: job.job_name.clone(),
                        reason,
                    })?;
                clients.insert(job.tls_config.clone(), client);
            }
        }
        let mut wanted = BTreeMap::new();
        for job in jobs {
            for ep in job.endpoints()? {
                for sc in &job.static_configs {
                    for instance in &sc.targets {
                        if shard.is_some_and(|s| !s.owns(&job.job_name, instance)) {
                            continue;
                        }
                        let t = target(job, sc, instance, &ep);
                        wanted.insert(t.key.clone(), t);
                    }
                }
            }
        }
        let mut running = self.running.lock();
        let mut health = self.app.targets.write();
        running.retain(|key, r| {
            let keep = wanted.get(key) == Some(&r.target);
            if !keep {
                let _ = r.stop.send(true);
                health.remove(key);
            }
            keep
        });
        for (key, t) in wanted {
            if running.contains_key(&key) {
                continue;
            }
            health.insert(
                key.clone(),
                TargetHealth {
                    scrape_url: t.url.clone(),
                    labels: t.labels.clone(),
                    last_scrape: None,
                    last_duration: Duration::ZERO,
                    last_error: None,
                    last_samples: 0,
                },
            );
            let (stop, stopped) = watch::channel(false);
            tokio::spawn(scrape_loop(
                self.app.clone(),
                clients[&t.tls].clone(),
                t.clone(),
                stopped,
            ));
            running.insert(key, RunningTarget { target: t, stop });
        }
        info!(targets = running.len(), "scrape configuration applied");
        drop((running, health));
        *self.jobs.lock() = jobs.to_vec();
        Ok(())
    }

    /// Stops every loop (each after its current scrape).
    pub fn stop(&self) {
        for (_, r) in std::mem::take(&mut *self.running.lock()) {
            let _ = r.stop.send(true);
        }
        self.app.targets.write().clear();
    }
}

fn target(job: &ScrapeJob, sc: &StaticConfig, instance: &str, ep: &PprofEndpoint) -> ScrapeTarget {
    let mut url = format!("{}://{instance}{}", job.scheme, ep.path);
    let mut request_timeout = job.timeout();
    if ep.delta {
        url.push(if url.contains('?') { '&' } else { '?' });
        url.push_str(&format!("seconds={}", ep.seconds));
        request_timeout += Duration::from_secs(ep.seconds);
    }
    let mut labels = sc.labels.clone();
    labels.insert("job".to_owned(), job.job_name.clone());
    labels.insert("instance".to_owned(), instance.to_owned());
    ScrapeTarget {
        key: TargetKey {
            job: job.job_name.clone(),
            instance: instance.to_owned(),
            profile: ep.name.clone(),
        },
        url,
        labels,
        delta: ep.delta,
        interval: job.scrape_interval,
        request_timeout,
        bearer_token: job.bearer_token.clone(),
        tls: job.tls_config.clone(),
    }
}

async fn scrape_loop(
    app: Arc<App>,
    client: reqwest::Client,
    t: ScrapeTarget,
    mut stopped: watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(t.interval);
    // A delta scrape takes about an interval; the next one starts as soon as it ends.
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stopped.changed() => return,
        }
        let started_at = SystemTime::now();
        let started = Instant::now();
        let fetched = tokio::select! {
            r = fetch(&client, &t, app.limits.max_body_bytes) => r,
            _ = stopped.changed() => return,
        };
        // Storing is not interrupted: a stop takes effect after it.
        let result = match fetched {
            Ok(body) => store(&app, &t, &body).await,
            Err(e) => Err(e),
        };
        let duration = started.elapsed();
        match &result {
            Ok(n) => debug!(url = %t.url, samples = n, ?duration, "scraped"),
            Err(e) => warn!(url = %t.url, error = %e, "scrape failed"),
        }
        app.counters
            .record("scrape", result.is_ok(), *result.as_ref().unwrap_or(&0));
        if let Some(h) = app.targets.write().get_mut(&t.key) {
            h.last_scrape = Some(started_at);
            h.last_duration = duration;
            h.last_samples = *result.as_ref().unwrap_or(&0);
            h.last_error = result.err();
        }
    }
}

/// GETs the target's URL; the body, at most `max_bytes` long.
async fn fetch(
    client: &reqwest::Client,
    t: &ScrapeTarget,
    max_bytes: u64,
) -> Result<Vec<u8>, String> {
    let mut request = client.get(&t.url).timeout(t.request_timeout);
    if let Some(token) = &t.bearer_token {
        request = request.bearer_auth(token);
    }
    let response = request
        .send()
        .await
        .map_err(|e| format!("GET {}: {}", t.url, error_chain(&e)))?;
    let status = response.status();
    if !status.is_success() {
        let text = response.text().await.unwrap_or_default();
        let text: String = text.chars().take(200).collect();
        return Err(format!("GET {}: HTTP {status}: {}", t.url, text.trim()));
    }
    let mut body = Vec::new();
    let mut stream = response.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| format!("GET {}: {}", t.url, error_chain(&e)))?;
        if body.len() as u64 + chunk.len() as u64 > max_bytes {
            return Err(format!(
                "GET {}: body over {max_bytes} bytes (ingest.max_body_bytes)",
                t.url
            ));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// `e` and its sources, `: `-separated (reqwest's own message hides the cause).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// Decodes, normalizes and stores one scraped profile; the samples stored.
async fn store(app: &App, t: &ScrapeTarget, body: &[u8]) -> Result<u64, String> {
    let source = ProfileSource {
        name: t.key.profile.clone(),
        labels: t
            .labels
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        delta: t.delta.then_some(true),
        default_time_ns: now_ns(),
    };
    let store = app.default_store();
    let (batch, touched) = store
        .normalize(|deltas| {
            let profile = decode_pprof(body, &app.limits)?;
            let mut b = SampleBatchBuilder::new();
            normalize_with_deltas(&profile, &source, deltas, &mut b)?;
            Ok::<_, strata_ingest::Error>(b.build()?)
        })
        .map_err(|e| e.to_string())?;
    store
        .store(&batch, &touched)
        .await
        .map_err(|e| e.to_string())
}
