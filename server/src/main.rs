//! The `strata` binary.
//!
//! `strata server` opens the store under `--data-dir` (replaying the WAL; flush, compaction and
//! retention run in the background), serves the push APIs (Parca `WriteRaw`, Pyroscope `Push`
//! over gRPC) and `/healthy`, `/ready` on `--listen`, and shuts down cleanly on SIGINT/SIGTERM
//! with the WAL synced. The collector, scraping and queries are wired in by later issues.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use strata_engine::{Engine, EngineConfig};
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
        listen: std::net::SocketAddr,
        /// Directory for the WAL and (by default) the blocks.
        #[arg(long, default_value = "./data")]
        data_dir: PathBuf,
        /// Do not start the eBPF collector (accepted now; the collector comes later).
        #[arg(long)]
        no_collector: bool,
        /// YAML config file; its `engine:` section is an `EngineConfig`.
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

#[derive(serde::Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct FileConfig {
    /// The store (`EngineConfig`; every field has a default).
    engine: Option<EngineConfig>,
    /// Push limits: `max_body_bytes`, `max_decompressed_bytes`.
    ingest: Option<strata_ingest::DecodeLimits>,
}

async fn wait_for_shutdown() -> anyhow::Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r?,
        _ = term.recv() => {}
    }
    Ok(())
}

async fn server(
    listen: std::net::SocketAddr,
    data_dir: PathBuf,
    config: Option<PathBuf>,
) -> anyhow::Result<()> {
    let file = match &config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            serde_yaml::from_str::<FileConfig>(&text)
                .with_context(|| format!("parsing {}", path.display()))?
        }
        None => FileConfig::default(),
    };
    let limits = file.ingest.unwrap_or_default();
    limits.validate().context("ingest limits")?;
    let mut engine_config = file.engine.unwrap_or_default();
    engine_config.data_dir = data_dir;
    let engine = Engine::open(engine_config)
        .await
        .context("opening the store")?;
    let stats = engine.stats();
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("listening on {listen}"))?;
    info!(
        %listen,
        blocks = stats.blocks,
        head_samples = stats.head.samples,
        "strata server running; Ctrl-C to stop"
    );
    let app = strata_server::App::with_limits(engine.clone(), limits);
    strata_server::serve(app, listener, async {
        if let Err(e) = wait_for_shutdown().await {
            tracing::error!(error = %e, "waiting for a shutdown signal failed");
        }
    })
    .await
    .context("serving")?;
    info!("shutting down");
    engine.close().await.context("closing the store")?;
    Ok(())
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
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
            no_collector: _,
        } => runtime.block_on(server(listen, data_dir, config)),
    }
}
