//! The `strata` binary.
//!
//! `strata server` opens the store under `--data-dir` (replaying the WAL; flush, compaction and
//! retention run in the background), serves the push APIs (Parca `WriteRaw`, Pyroscope `Push`,
//! OTLP `Export`), `/metrics`, `/healthy`, `/ready` and its own `/debug/pprof/profile` on
//! `--listen`, scrapes the `scrape_configs` of `--config` (by default, itself; reloaded on
//! SIGHUP), serves queries (Parca's `QueryService`, the HTTP/JSON API, Flight SQL), and shuts
//! down cleanly on SIGINT/SIGTERM with the WAL synced. `strata query …` and `strata export …`
//! are clients of a running server.

mod debuginfo;
mod query;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};
use strata_server::{Component, Components, Scraper, ServerConfig};
use tokio::signal::unix::{SignalKind, signal};
use tracing::info;

/// The agent's memory is mostly short-lived tables (unwind rows and symbols built, handed to
/// the kernel or looked up, dropped): with transparent huge pages every 2 MiB region the
/// allocator touches becomes resident whole, and is zeroed whole when faulted back in after a
/// purge. Without them the agent's peak RSS and CPU are lower (benches/README, "CFI unwinding
/// and off-CPU against 20 processes"); the server keeps them.
#[allow(unsafe_code)]
fn disable_transparent_huge_pages() {
    // SAFETY: PR_SET_THP_DISABLE takes integer arguments only and changes no memory.
    let r = unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) };
    if r != 0 {
        tracing::debug!(error = %std::io::Error::last_os_error(), "transparent huge pages stay on");
    }
}

/// mimalloc: a push is thousands of small allocations (strings, symbol tables, stacks), which
/// it serves at about half the cost of glibc's allocator on many threads.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
        /// The roles of this process: `all` (one process owning its store), or a
        /// comma-separated list of `ingester`, `querier`, `compactor`, which share the bucket
        /// of `engine.storage.url` (see README, "Running a cluster").
        #[arg(long, default_value = "all")]
        target: strata_server::Target,
        /// An ingester's name in the cluster, stable across restarts (its WAL coverage is kept
        /// under it in the bucket's catalog); overrides `engine.shared.ingester_id`. Default:
        /// the host name (a StatefulSet pod's name).
        #[arg(long, env = "STRATA_INGESTER_ID")]
        ingester_id: Option<String>,
        /// A querier's URL as the other queriers reach it (`cluster.advertise_url`), e.g.
        /// `http://$(POD_IP):7070` on Kubernetes. Default: `http://<--listen>`.
        #[arg(long, env = "STRATA_ADVERTISE_URL")]
        advertise_url: Option<String>,
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
        client: query::ClientArgs,
        #[command(subcommand)]
        command: query::QueryCommand,
    },
    /// Export a merged profile from a running server (pprof, folded, pgo-go, llvm-sample).
    Export {
        #[command(flatten)]
        client: query::ClientArgs,
        #[command(flatten)]
        export: query::ExportArgs,
    },
    /// Upload debug info to a running server, or ask it which build ids have debug info.
    Debuginfo {
        #[command(subcommand)]
        command: debuginfo::DebuginfoCommand,
    },
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
        let applied = ServerConfig::read(config.as_deref())
            .map_err(anyhow::Error::from)
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
    config_path: Option<PathBuf>,
    no_collector: bool,
    target: strata_server::Target,
    (ingester_id, advertise_url): (Option<String>, Option<String>),
) -> anyhow::Result<()> {
    let mut config = ServerConfig::read(config_path.as_deref())?;
    if let Some(url) = advertise_url {
        config
            .cluster
            .get_or_insert_with(Default::default)
            .advertise_url = Some(url);
    }
    if let Some(id) = ingester_id {
        config
            .engine
            .get_or_insert_with(Default::default)
            .shared
            .ingester_id = Some(id);
    }
    config.validate()?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("listening on {listen}"))?;
    let listen = listener.local_addr()?;
    let mut set = strata_server::ComponentSet::for_target(&target);
    if no_collector {
        set = set.without(Component::Collector);
    }
    let cluster = config.cluster.clone().unwrap_or_default();
    let read_token = config
        .auth
        .as_ref()
        .and_then(|a| a.read_tokens.first().cloned());
    let ingesters = (!cluster.ingesters.is_empty())
        .then(|| strata_server::cluster::IngesterSet::new(&cluster, read_token))
        .transpose()
        .map_err(|e| anyhow::anyhow!("cluster.ingesters: {e}"))?;
    if target.has(strata_server::cluster::Role::Querier) && ingesters.is_none() {
        tracing::warn!(
            "a querier without cluster.ingesters answers from blocks only: recent, unflushed data is missing"
        );
    }
    let role = target.store_role(ingesters);
    let components = Components::start_as(&config, data_dir, listen, set, role).await?;
    let app = components.app.clone();
    let stats = app.default_store().engine.stats();
    info!(
        %listen,
        %target,
        tls = config.tls.is_some(),
        auth = app.auth.enabled(),
        tenants = app.tenants.config().enabled,
        blocks = stats.blocks,
        head_samples = stats.head.samples,
        "strata server running; Ctrl-C to stop"
    );
    if let Some(scraper) = &components.scraper {
        tokio::spawn(reload_on_sighup(config_path, listen, scraper.clone()));
    }
    let router = strata_server::router_for(app, &components.set);
    strata_server::serve_router(router, listener, config.tls.as_ref(), async {
        if let Err(e) = wait_for_shutdown().await {
            tracing::error!(error = %e, "waiting for a shutdown signal failed");
        }
    })
    .await
    .context("serving")?;
    info!("shutting down");
    components.stop().await.context("closing the stores")?;
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
    let handle =
        strata_server::collector::agent::start(remote_store.clone(), config, labels, bearer_token)
            .context(
                "the kernel refused the eBPF collector (root or CAP_BPF+CAP_PERFMON needed)",
            )?;
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
    if matches!(cli.command, Command::Agent { .. }) {
        disable_transparent_huge_pages();
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match cli.command {
        Command::Server {
            listen,
            data_dir,
            config,
            no_collector,
            target,
            ingester_id,
            advertise_url,
        } => runtime.block_on(server(
            listen,
            data_dir,
            config,
            no_collector,
            target,
            (ingester_id, advertise_url),
        )),
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
        Command::Query { client, command } => runtime.block_on(query::query(client, command)),
        Command::Export { client, export } => runtime.block_on(query::export(client, export)),
        Command::Debuginfo { command } => runtime.block_on(debuginfo::run(command)),
    }
}
