//! The `strata` binary.
//!
//! Today it runs the storage engine (`strata server`): opens the store under `--data-dir`,
//! replays the WAL, runs flush, compaction and retention in the background, and shuts down
//! cleanly on SIGINT/SIGTERM with the WAL synced. Ingest, query and the collector are wired in
//! by the issues that build them.

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
        /// Directory for the WAL and (by default) the blocks.
        #[arg(long, default_value = "./data")]
        data_dir: PathBuf,
        /// YAML config file; its `engine:` section is an `EngineConfig`.
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

#[derive(serde::Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct FileConfig {
    engine: Option<EngineConfig>,
}

async fn wait_for_shutdown() -> anyhow::Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r?,
        _ = term.recv() => {}
    }
    Ok(())
}

async fn server(data_dir: PathBuf, config: Option<PathBuf>) -> anyhow::Result<()> {
    let mut engine_config = match &config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            let file: FileConfig = serde_yaml::from_str(&text)
                .with_context(|| format!("parsing {}", path.display()))?;
            file.engine.unwrap_or_default()
        }
        None => EngineConfig::default(),
    };
    engine_config.data_dir = data_dir;
    let engine = Engine::open(engine_config)
        .await
        .context("opening the store")?;
    let stats = engine.stats();
    info!(
        blocks = stats.blocks,
        head_samples = stats.head.samples,
        "strata server running; Ctrl-C to stop"
    );
    wait_for_shutdown().await?;
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
        Command::Server { data_dir, config } => runtime.block_on(server(data_dir, config)),
    }
}
