//! The `strata` binary.
//!
//! `strata server` opens the store under `--data-dir` (replaying the WAL; flush, compaction and
//! retention run in the background), serves the push APIs (Parca `WriteRaw`, Pyroscope `Push`,
//! OTLP `Export`), `/metrics`, `/healthy`, `/ready` and its own `/debug/pprof/profile` on
//! `--listen`, scrapes the `scrape_configs` of `--config` (by default, itself; reloaded on
//! SIGHUP), serves queries (Parca's `QueryService`, the HTTP/JSON API, Flight SQL), and shuts
//! down cleanly on SIGINT/SIGTERM with the WAL synced. `strata query …` and `strata export …`
//! are clients of a running server.

mod client;
mod debuginfo_cli;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};
use strata_engine::{Engine, EngineConfig};
use strata_server::{ScrapeJob, Scraper};
use tokio::signal::unix::{SignalKind, signal};
use tracing::info;

#[derive(Parser)]
#[command(name = "strata", version, about = "Strata continuous profiling")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the Strata server.
    Server {
        /// Address for gRPC and HTTP.
        #[arg(long, default_value = "127.0.0.1:7070")]
        listen: SocketAddr,
        /// Directory for the WAL and (by default) the blocks.
        #[arg(long, default_value = "./data")]
        data_dir: PathBuf,
        /// Do not start the eBPF collector (it starts whenever the kernel allows BPF).
        #[arg(long)]
        no_collector: bool,
        /// YAML config file; its `engine:` section is an `EngineConfig`.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Profile this host with the eBPF collector and push to a remote store via Parca WriteRaw.
    Agent {
        /// The store to push to (Strata or Parca), e.g. `http://host:7070`.
        #[arg(long)]
        remote_store: String,
        /// Samples per second per CPU.
        #[arg(long, default_value_t = 19)]
        frequency: u64,
        /// How samples reach userspace: `ring_buffer` (the default) or `map` (counted in the
        /// kernel); both give the same profiles.
        #[arg(long, default_value_t = strata_collector_ebpf::Transport::default())]
        transport: strata_collector_ebpf::Transport,
        /// One profile per process per interval.
        #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
        interval: std::time::Duration,
        /// Extra label on every series, `name=value` (repeatable), e.g. `node=web-1`.
        #[arg(long = "label", value_parser = parse_label)]
        labels: Vec<(String, String)>,
        /// Bearer token sent with every push (a write token, when the store has `auth:`).
        #[arg(long, env = "STRATA_TOKEN", hide_env_values = true)]
        bearer_token: Option<String>,
    },
    /// Query a running server (range, merge, top, diff, sql).
    Query {
        #[command(flatten)]
        client: client::ClientArgs,
        #[command(subcommand)]
        command: client::QueryCommand,
    },
    /// Export a merged profile from a running server (pprof, folded, pgo-go, llvm-sample).
    Export {
        #[command(flatten)]
        client: client::ClientArgs,
        #[command(flatten)]
        export: client::ExportArgs,
    },
    /// Upload debug info to a running server, or ask it which build ids have debug info.
    Debuginfo {
        #[command(subcommand)]
        command: debuginfo_cli::DebuginfoCommand,
    },
}

#[derive(serde::Deserialize, Default, Clone)]
#[serde(default, deny_unknown_fields)]
struct FileConfig {
    /// The store (`EngineConfig`; every field has a default).
    engine: Option<EngineConfig>,
    /// Push limits: `max_body_bytes`, `max_decompressed_bytes`.
    ingest: Option<strata_ingest::DecodeLimits>,
    /// Prometheus-style scrape jobs. Absent: the server scrapes its own CPU profile. Reloaded
    /// on SIGHUP.
    scrape_configs: Option<strata_server::scrape::ScrapeConfigs>,
    /// The in-process eBPF collector (`SamplerConfig`: `frequency_hz`, `interval`, …).
    collector: Option<strata_collector_ebpf::SamplerConfig>,
    /// Background symbolization and debug info uploads (`SymbolizerSettings`).
    symbolizer: Option<strata_server::SymbolizerSettings>,
    /// Query limits (`QueryLimits`: `max_range`, `max_result_nodes`).
    query: Option<strata_server::QueryLimits>,
    /// Bearer tokens (`AuthConfig`: `read_tokens`, `write_tokens`); none: open.
    auth: Option<strata_server::AuthConfig>,
    /// TLS on the listener (`TlsConfig`: `cert_file`, `key_file`); absent: plain.
    tls: Option<strata_server::TlsConfig>,
    /// Tenants (`TenantsConfig`: `enabled`, `header`, `default_tenant`, `max_tenants`).
    tenants: Option<strata_server::TenantsConfig>,
}

impl FileConfig {
    fn read(path: Option<&Path>) -> anyhow::Result<FileConfig> {
        let Some(path) = path else {
            return Ok(FileConfig::default());
        };
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        serde_yaml::from_str(&text).with_context(|| format!("parsing {}", path.display()))
    }

    /// The scrape jobs to run: the configured ones, or by default one that scrapes this
    /// server's own CPU profile at `listen`.
    fn scrape_jobs(&self, listen: SocketAddr) -> Vec<ScrapeJob> {
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
                strata_server::scrape::PprofEndpointConfig {
                    enabled: Some(false),
                    ..Default::default()
                },
            );
        }
        vec![job]
    }
}

async fn wait_for_shutdown() -> anyhow::Result<()> {
    let mut term = signal(SignalKind::terminate())?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r?,
        _ = term.recv() => {}
    }
    Ok(())
}

/// On every SIGHUP: re-reads the config file and applies its `scrape_configs` (other sections
/// need a restart). A file that does not parse or validate is logged and ignored.
async fn reload_on_sighup(config: Option<PathBuf>, listen: SocketAddr, scraper: Arc<Scraper>) {
    let Ok(mut hup) = signal(SignalKind::hangup()) else {
        tracing::error!("cannot listen for SIGHUP; scrape configs will not reload");
        return;
    };
    while hup.recv().await.is_some() {
        let applied = FileConfig::read(config.as_deref())
            .and_then(|file| Ok(scraper.apply(&file.scrape_jobs(listen))?));
        match applied {
            Ok(()) => info!("SIGHUP: scrape configuration reloaded"),
            Err(e) => tracing::error!(
                error = format!("{e:#}"),
                "SIGHUP: reload failed; keeping the running configuration"
            ),
        }
    }
}

async fn server(
    listen: SocketAddr,
    data_dir: PathBuf,
    config: Option<PathBuf>,
    no_collector: bool,
) -> anyhow::Result<()> {
    let file = FileConfig::read(config.as_deref())?;
    let limits = file.ingest.clone().unwrap_or_default();
    limits.validate().context("ingest limits")?;
    if let Some(jobs) = &file.scrape_configs {
        strata_server::scrape::validate(jobs)?;
    }
    let collector_config = file.collector.clone().unwrap_or_default();
    collector_config.validate()?;
    let symbolizer_settings = file.symbolizer.clone().unwrap_or_default();
    symbolizer_settings.validate()?;
    let settings = strata_server::AppSettings {
        ingest: limits,
        query: file.query.clone().unwrap_or_default(),
        auth: file.auth.clone().unwrap_or_default(),
    };
    settings.query.validate().map_err(anyhow::Error::msg)?;
    settings.auth.validate().map_err(anyhow::Error::msg)?;
    let tenants_config = file.tenants.clone().unwrap_or_default();
    tenants_config.validate().map_err(anyhow::Error::msg)?;
    if let Some(tls) = &file.tls {
        tls.validate().map_err(anyhow::Error::msg)?;
    }
    let mut engine_config = file.engine.clone().unwrap_or_default();
    let debuginfo_cache = data_dir.join("debuginfo-cache");
    engine_config.data_dir = data_dir;
    let engine = Engine::open(engine_config.clone())
        .await
        .context("opening the store")?;
    let stats = engine.stats();
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("listening on {listen}"))?;
    let listen = listener.local_addr()?;
    let scrape_jobs = file.scrape_jobs(listen);
    info!(
        %listen,
        tls = file.tls.is_some(),
        auth = settings.auth.enabled(),
        tenants = tenants_config.enabled,
        blocks = stats.blocks,
        head_samples = stats.head.samples,
        "strata server running; Ctrl-C to stop"
    );
    let symbolization = strata_server::Symbolization::start(
        engine.clone(),
        symbolizer_settings.clone(),
        debuginfo_cache,
    )?;
    let default_store = strata_server::TenantStore::new(
        tenants_config.default_tenant.clone(),
        engine.clone(),
        symbolization,
    );
    let template = strata_server::tenants::TenantTemplate {
        engine: engine_config,
        symbolizer: symbolizer_settings,
    };
    let tenants = strata_server::Tenants::new(tenants_config, default_store, Some(template));
    let app = strata_server::App::with_tenants(tenants, settings);
    let scraper = Arc::new(Scraper::new(app.clone()));
    scraper.apply(&scrape_jobs)?;
    tokio::spawn(reload_on_sighup(config, listen, scraper.clone()));
    // The eBPF collector, when not switched off and the kernel allows it.
    let collector = (!no_collector)
        .then(|| strata_server::collector::start_in_process(engine.clone(), collector_config))
        .flatten();
    strata_server::serve(app.clone(), listener, file.tls.as_ref(), async {
        if let Err(e) = wait_for_shutdown().await {
            tracing::error!(error = %e, "waiting for a shutdown signal failed");
        }
    })
    .await
    .context("serving")?;
    info!("shutting down");
    if let Some(c) = collector {
        tokio::task::spawn_blocking(move || c.stop()).await?;
    }
    scraper.stop();
    app.tenants.close().await.context("closing the stores")?;
    Ok(())
}

/// `strata agent`: the collector pushing to `remote_store` until SIGINT/SIGTERM.
async fn agent(
    remote_store: String,
    frequency_hz: u64,
    transport: strata_collector_ebpf::Transport,
    interval: std::time::Duration,
    labels: Vec<(String, String)>,
    bearer_token: Option<String>,
) -> anyhow::Result<()> {
    let config = strata_collector_ebpf::SamplerConfig {
        frequency_hz,
        transport,
        interval,
        ..Default::default()
    };
    config.validate()?;
    let handle = strata_server::agent::start(remote_store.clone(), config, labels, bearer_token)
        .context("the kernel refused the eBPF collector (root or CAP_BPF+CAP_PERFMON needed)")?;
    info!(%remote_store, frequency_hz, %transport, "strata agent running; Ctrl-C to stop");
    wait_for_shutdown().await?;
    tokio::task::spawn_blocking(move || handle.stop()).await?;
    // Let the last interval's push finish.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    Ok(())
}

fn parse_label(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(n, v)| (n.to_owned(), v.to_owned()))
        .ok_or_else(|| format!("expected name=value, got {s:?}"))
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match cli.command {
        Command::Server {
            listen,
            data_dir,
            config,
            no_collector,
        } => runtime.block_on(server(listen, data_dir, config, no_collector)),
        Command::Agent {
            remote_store,
            frequency,
            transport,
            interval,
            labels,
            bearer_token,
        } => runtime.block_on(agent(
            remote_store,
            frequency,
            transport,
            interval,
            labels,
            bearer_token,
        )),
        Command::Query { client, command } => runtime.block_on(client::query(client, command)),
        Command::Export { client, export } => runtime.block_on(client::export(client, export)),
        Command::Debuginfo { command } => runtime.block_on(debuginfo_cli::run(command)),
    }
}
