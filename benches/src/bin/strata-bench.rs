//! `strata-bench`: pushes a simulated fleet's CPU profiles into a `strata server` through
//! Parca `WriteRaw` and measures ingest, memory, disk and queries as data grows
//! (`strata_benches::scale`). Writes `<out>/<name>.json`, `<name>.md` and SVG charts.
//!
//! ```sh
//! cargo run --release -p strata-benches --bin strata-bench -- --nodes 1000
//! cargo run -p strata-benches --bin strata-bench -- --preset tiny
//! strata-bench summarize benches/results/nodes-*.json   # scaling charts + table
//! strata-bench --nodes 10000 --pregenerate                # requests made before each part is pushed
//! strata-bench doors --pushes 3000                        # server CPU per row, door by door, vs go tool pprof
//! # sustained load: 10 minutes at real time into a server held to 1 GiB (cgroup), as root
//! strata-bench --nodes 1000 --duration 10m --memory-limit 1GiB
//! # scale-out: moto_server (S3), 2 ingesters, 2 queriers and a compactor as processes
//! strata-bench --nodes 1000 --rounds 12 --pregenerate --ingesters 2 --queriers 2
//! ```

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand, ValueEnum};
use strata_benches::doors::{Door, DoorsConfig};
use strata_benches::goprof;
use strata_benches::scale::cluster::{self, ClusterSetup};
use strata_benches::scale::sustained::{self, SustainedConfig};
use strata_benches::scale::{self, Preset, Rate, Report, ScaleConfig, Target, plot, report};

#[derive(Parser)]
#[command(name = "strata-bench", about = "Scale benchmark of strata server")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Scaling charts and a markdown table from several runs' JSON reports.
    Summarize {
        /// Report files.
        reports: Vec<PathBuf>,
        /// Directory for the charts.
        #[arg(long, default_value = "benches/results")]
        out: PathBuf,
    },
    /// Real pprof files pushed through every front door (Parca gRPC and gRPC-web, Pyroscope
    /// Connect and /ingest, OTLP): the server's CPU per stored row, against
    /// `go tool pprof -proto` merging the same files.
    Doors(DoorsArgs),
    /// Redraws a sustained run's markdown and charts from its JSON report.
    SustainedReport {
        /// The run's JSON (`<out>/<name>.json`); the markdown and charts go beside it.
        report: PathBuf,
    },
}

#[derive(clap::Args)]
struct DoorsArgs {
    /// pprof files to push, round robin (default: three Go CPU profiles made by
    /// benches/goprof with the system's `go`, under --work).
    files: Vec<PathBuf>,
    /// Pushes per door.
    #[arg(long, default_value_t = 1500)]
    pushes: usize,
    /// Series the pushes are spread over.
    #[arg(long, default_value_t = 200)]
    series: usize,
    /// Calls in flight.
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// Doors, comma-separated: writeraw, grpc-web, connect, ingest, otlp.
    #[arg(long, default_value = "writeraw,grpc-web,connect,ingest,otlp")]
    doors: String,
    /// Seconds of the first door's server's own CPU profile (0: none); stored in Strata and
    /// written as a top table and folded stacks beside the report.
    #[arg(long, default_value_t = 0)]
    profile_seconds: u64,
    /// Servers without the default self-scrape (the product profiles itself every 10 s).
    #[arg(long)]
    no_self_scrape: bool,
    /// Where the default Go profiles are made.
    #[arg(long, default_value = "target/goprof")]
    work: PathBuf,
    /// The `strata` binary to spawn (default: next to this executable).
    #[arg(long)]
    strata_bin: Option<PathBuf>,
    /// Parent of the spawned servers' temporary data directories.
    #[arg(long)]
    data_parent: Option<PathBuf>,
    /// Output directory.
    #[arg(long, default_value = "benches/results")]
    out: PathBuf,
    /// Name of the output files.
    #[arg(long, default_value = "doors")]
    name: String,
}

#[derive(Clone, Copy, ValueEnum)]
enum PresetName {
    Tiny,
    Small,
}

#[derive(clap::Args)]
struct RunArgs {
    /// Simulated nodes (the scale preset for that many nodes); default 100.
    #[arg(long, conflicts_with = "preset")]
    nodes: Option<usize>,
    /// A named preset instead of --nodes.
    #[arg(long, value_enum)]
    preset: Option<PresetName>,
    /// Processes per node.
    #[arg(long)]
    processes: Option<usize>,
    /// CPUs per node.
    #[arg(long)]
    cores: Option<usize>,
    /// Rounds (one interval of every node each).
    #[arg(long)]
    rounds: Option<u64>,
    /// Simulated time the rounds spread over, e.g. 24h.
    #[arg(long, value_parser = humantime_duration)]
    span: Option<std::time::Duration>,
    /// Checkpoints (query probes) over the run.
    #[arg(long)]
    checkpoints: Option<u64>,
    /// `max` (as fast as acknowledged) or a multiple of real time (1 = as the fleet would).
    /// Default: `max`, or `1` with --duration.
    #[arg(long)]
    rate: Option<String>,
    /// Sustained mode: push consecutive intervals for this long (wall clock), e.g. 10m, then
    /// check the server stayed under --memory-limit.
    #[arg(long, value_parser = humantime_duration, requires = "memory_limit")]
    duration: Option<std::time::Duration>,
    /// Sustained mode: the server's memory limit, e.g. 1GiB, 768MiB: its config is derived
    /// from it and a memory cgroup enforces it (root needed; see --no-cgroup).
    #[arg(long, value_parser = parse_bytes, requires = "duration")]
    memory_limit: Option<u64>,
    /// Sustained mode: derive the config from the limit but do not run the server in a
    /// memory cgroup (the limit is then only checked against its RSS).
    #[arg(long)]
    no_cgroup: bool,
    /// Sustained mode: most failed pushes tolerated, as a fraction of requests.
    #[arg(long, default_value_t = 0.001)]
    max_error_fraction: f64,
    /// Sustained mode: width of the time series' windows, e.g. 10s.
    #[arg(long, value_parser = humantime_duration)]
    window: Option<std::time::Duration>,
    /// WriteRaw calls in flight.
    #[arg(long)]
    concurrency: Option<usize>,
    /// Build each checkpoint's requests before pushing them, so the timed push measures the
    /// server, not the fleet's generator on the same cores.
    #[arg(long)]
    pregenerate: bool,
    /// Seed of the fleet.
    #[arg(long)]
    seed: Option<u64>,
    /// Push to this running server (e.g. http://127.0.0.1:7070) instead of spawning one.
    #[arg(long)]
    server: Option<String>,
    /// Scale-out: instead of one server, start moto_server (an S3 API; PyPI moto[server]) and
    /// a cluster on its bucket: this many `--target ingester` processes (node k pushes to
    /// ingester k % N), --queriers queriers and a compactor, each on its own 127.0.0.x
    /// address. The rounds are pushed in one go (no checkpoints), then merges are timed through
    /// the queriers before and after the ingesters flush.
    #[arg(long, conflicts_with_all = ["server", "duration"])]
    ingesters: Option<usize>,
    /// Scale-out: queriers (default 1); merges are timed through one, then through all at once.
    #[arg(long, requires = "ingesters")]
    queriers: Option<usize>,
    /// The `strata` binary to spawn (default: next to this executable).
    #[arg(long)]
    strata_bin: Option<PathBuf>,
    /// Parent of the spawned server's temporary data directory.
    #[arg(long)]
    data_parent: Option<PathBuf>,
    /// Output directory.
    #[arg(long, default_value = "benches/results")]
    out: PathBuf,
    /// Name of the output files (default: tiny, small or nodes-N).
    #[arg(long)]
    name: Option<String>,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
}

/// `1GiB`, `512MiB`, `2G` (binary units either way), or bytes.
fn parse_bytes(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (n, unit) = t.split_at(split);
    let n: u64 = n.parse().map_err(|_| format!("bad size {s:?}"))?;
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kib" | "kb" => 10,
        "m" | "mib" | "mb" => 20,
        "g" | "gib" | "gb" => 30,
        _ => return Err(format!("bad unit in {s:?}: KiB, MiB or GiB")),
    };
    Ok(n << shift)
}

fn humantime_duration(s: &str) -> Result<std::time::Duration, String> {
    let (n, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = n.parse().map_err(|_| format!("bad duration {s:?}"))?;
    let secs = match unit {
        "s" | "" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86_400,
        _ => return Err(format!("bad unit in {s:?}: s, m, h or d")),
    };
    Ok(std::time::Duration::from_secs(secs))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Summarize { reports, out }) => summarize(&reports, &out),
        Some(Command::Doors(a)) => doors(a).await,
        Some(Command::SustainedReport { report }) => {
            let text =
                std::fs::read(&report).with_context(|| format!("reading {}", report.display()))?;
            let r: sustained::SustainedReport = serde_json::from_slice(&text)
                .with_context(|| format!("parsing {}", report.display()))?;
            let dir = report.parent().unwrap_or(std::path::Path::new("."));
            let name = report
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or("sustained");
            let md = sustained::markdown(&r);
            std::fs::write(dir.join(format!("{name}.md")), &md)?;
            let charts = sustained::charts(&r, dir, name)?;
            println!("{md}\nwrote {}", display_all(&charts));
            Ok(())
        }
        None => run(cli.run).await,
    }
}

async fn run(a: RunArgs) -> anyhow::Result<()> {
    let (cfg, name) = scale_config(&a)?;
    if let Some(ingesters) = a.ingesters {
        let setup = ClusterSetup::new(ingesters, a.queriers.unwrap_or(1));
        setup.check().map_err(anyhow::Error::msg)?;
        let name = match &a.name {
            Some(n) => n.clone(),
            None => format!("{name}-cluster-{}i{}q", setup.ingesters, setup.queriers),
        };
        return cluster_run(&cfg, setup, &a, &name).await;
    }
    let target = match a.server {
        Some(url) => Target::Url(url),
        None => Target::Spawn(
            scale::server::find_strata(a.strata_bin.as_deref())?,
            a.data_parent,
        ),
    };
    if let (Some(duration), Some(limit)) = (a.duration, a.memory_limit) {
        let mut s = SustainedConfig::new(cfg.fleet.nodes, duration.as_secs_f64(), limit);
        s.fleet = cfg.fleet.clone();
        s.rate = cfg.rate;
        s.concurrency = cfg.concurrency;
        s.enforce = !a.no_cgroup;
        s.max_error_fraction = a.max_error_fraction;
        if let Some(w) = a.window {
            s.window_s = w.as_secs_f64();
        }
        let name = match a.name {
            Some(n) => n,
            None => format!("sustained-{}", s.fleet.nodes),
        };
        return sustained(&s, &target, &a.out, &name, a.quiet).await;
    }
    let bar = scale_progress_bar(&cfg, a.quiet)?;
    let report = scale::run(&cfg, &target, Some(&bar)).await?;
    bar.finish_and_clear();
    std::fs::create_dir_all(&a.out).with_context(|| format!("creating {}", a.out.display()))?;
    let json = a.out.join(format!("{name}.json"));
    std::fs::write(&json, serde_json::to_vec_pretty(&report)?)
        .with_context(|| format!("writing {}", json.display()))?;
    let md = report::markdown(&report);
    std::fs::write(a.out.join(format!("{name}.md")), &md)?;
    let charts = plot::run_charts(&report, &a.out, &name)?;
    println!("{md}");
    println!("wrote {} and {}", json.display(), display_all(&charts));
    let v = &report.verification;
    if v.failed_requests > 0 || v.merged_total != report.acked.value as f64 {
        bail!(
            "verification failed: {} failed requests ({:?}); merged total {} vs {} pushed",
            v.failed_requests,
            v.first_error,
            v.merged_total,
            report.acked.value
        );
    }
    Ok(())
}

/// The fleet `cfg` into a cluster of `setup` on one S3 bucket; writes `<out>/<name>.json`
/// and `.md`.
async fn cluster_run(
    cfg: &ScaleConfig,
    setup: ClusterSetup,
    a: &RunArgs,
    name: &str,
) -> anyhow::Result<()> {
    let strata = scale::server::find_strata(a.strata_bin.as_deref())?;
    let bar = scale_progress_bar(cfg, a.quiet)?;
    let report = cluster::run(cfg, setup, &strata, a.data_parent.as_deref(), Some(&bar))
        .await
        .context("cluster run")?;
    bar.finish_and_clear();
    std::fs::create_dir_all(&a.out).with_context(|| format!("creating {}", a.out.display()))?;
    let json = a.out.join(format!("{name}.json"));
    std::fs::write(&json, serde_json::to_vec_pretty(&report)?)
        .with_context(|| format!("writing {}", json.display()))?;
    let md = cluster::markdown(&report);
    let md_path = a.out.join(format!("{name}.md"));
    std::fs::write(&md_path, &md).with_context(|| format!("writing {}", md_path.display()))?;
    println!("{md}");
    println!("wrote {} and {}", json.display(), md_path.display());
    let v = &report.verification;
    if v.failed_requests > 0 || !report.problems.is_empty() {
        bail!(
            "cluster run failed: {} failed requests ({:?}); {}",
            v.failed_requests,
            v.first_error,
            report.problems.join("; ")
        );
    }
    Ok(())
}

/// The run's config (the preset, then the options that override it) and the output files'
/// name.
fn scale_config(a: &RunArgs) -> anyhow::Result<(ScaleConfig, String)> {
    let (preset, name) = match (a.preset, a.nodes) {
        (Some(PresetName::Tiny), _) => (Preset::Tiny, "tiny".to_owned()),
        (Some(PresetName::Small), _) => (Preset::Small, "small".to_owned()),
        (None, n) => {
            let n = n.unwrap_or(100);
            (Preset::Nodes(n), format!("nodes-{n}"))
        }
    };
    let name = a.name.clone().unwrap_or(name);
    let mut cfg = preset.config();
    if let Some(v) = a.processes {
        cfg.fleet.processes = v;
    }
    if let Some(v) = a.cores {
        cfg.fleet.cores = v;
    }
    if let Some(v) = a.seed {
        cfg.fleet.seed = v;
    }
    if let Some(v) = a.rounds {
        cfg.rounds = v;
    }
    if let Some(v) = a.span {
        cfg.span_ns = v.as_nanos() as i64;
    }
    if let Some(v) = a.checkpoints {
        cfg.checkpoints = v;
    }
    if let Some(v) = a.concurrency {
        cfg.concurrency = v;
    }
    cfg.pregenerate = a.pregenerate;
    let default_rate = if a.duration.is_some() { "1" } else { "max" };
    cfg.rate = match a.rate.as_deref().unwrap_or(default_rate) {
        "max" => Rate::Max,
        f => match f.parse::<f64>() {
            Ok(x) if x > 0.0 => Rate::Realtime(x),
            _ => bail!("--rate: `max` or a positive multiple of real time, not {f:?}"),
        },
    };
    Ok((cfg, name))
}

/// The scale run's progress bar, in sample rows against an estimate of what the fleet
/// generates.
fn scale_progress_bar(cfg: &ScaleConfig, quiet: bool) -> anyhow::Result<indicatif::ProgressBar> {
    // Rows expected: about what the fleet generates; the bar's length is an estimate.
    let f = &cfg.fleet;
    let estimate = cfg.rounds as f64 * f.nodes as f64 * f.processes as f64 * 35.0;
    let bar = indicatif::ProgressBar::new(estimate as u64);
    if quiet {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{elapsed_precise} [{bar:40}] {human_pos}/~{human_len} rows ({per_sec}) {msg}",
        )
        .context("progress style")?
        .progress_chars("=> "),
    );
    bar.set_message(format!(
        "{} nodes x {} processes, {} rounds",
        f.nodes, f.processes, cfg.rounds
    ));
    Ok(bar)
}

async fn sustained(
    cfg: &SustainedConfig,
    target: &Target,
    out: &std::path::Path,
    name: &str,
    quiet: bool,
) -> anyhow::Result<()> {
    let bar = indicatif::ProgressBar::new(cfg.duration_s as u64);
    if quiet {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    bar.set_style(
        indicatif::ProgressStyle::with_template("{elapsed_precise} [{bar:40}] {pos}/{len} s {msg}")
            .context("progress style")?
            .progress_chars("=> "),
    );
    let report = sustained::run(cfg, target, Some(&bar)).await?;
    bar.finish_and_clear();
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let json = out.join(format!("{name}.json"));
    std::fs::write(&json, serde_json::to_vec_pretty(&report)?)
        .with_context(|| format!("writing {}", json.display()))?;
    let md = sustained::markdown(&report);
    std::fs::write(out.join(format!("{name}.md")), &md)?;
    let charts = sustained::charts(&report, out, name)?;
    println!("{md}");
    println!("wrote {} and {}", json.display(), display_all(&charts));
    if !report.failures.is_empty() {
        bail!("sustained run failed: {}", report.failures.join("; "));
    }
    Ok(())
}

async fn doors(a: DoorsArgs) -> anyhow::Result<()> {
    let files = if a.files.is_empty() {
        (1..=3)
            .map(|k| {
                let dir = a.work.join(format!("run-{k}"));
                goprof::profiles(&dir, 4)
                    .map(|d| d.join("cpu.pb.gz"))
                    .map_err(anyhow::Error::msg)
            })
            .collect::<anyhow::Result<Vec<_>>>()?
    } else {
        a.files
    };
    let doors = a
        .doors
        .split(',')
        .map(|d| Door::parse(d.trim()).with_context(|| format!("unknown door {d:?}")))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let cfg = DoorsConfig {
        files,
        pushes: a.pushes,
        series: a.series,
        concurrency: a.concurrency,
        doors,
        profile_seconds: a.profile_seconds,
        server_config: if a.no_self_scrape {
            "scrape_configs: []\n".into()
        } else {
            String::new()
        },
    };
    let strata = scale::server::find_strata(a.strata_bin.as_deref())?;
    std::fs::create_dir_all(&a.out).with_context(|| format!("creating {}", a.out.display()))?;
    let report =
        strata_benches::doors::run(&cfg, &strata, a.data_parent.as_deref(), &a.out, &a.name)
            .await
            .map_err(anyhow::Error::msg)?;
    let md = strata_benches::doors::markdown(&report);
    let json = a.out.join(format!("{}.json", a.name));
    std::fs::write(&json, serde_json::to_vec_pretty(&report)?)?;
    std::fs::write(a.out.join(format!("{}.md", a.name)), &md)?;
    println!("{md}");
    if let Some(p) = &report.profile {
        let written =
            strata_benches::doors::store_profile(p, &strata, a.data_parent.as_deref(), 30)
                .await
                .map_err(anyhow::Error::msg)?;
        println!(
            "server profile: {} and {}",
            p.display(),
            display_all(&written)
        );
    }
    if let Some(d) = report.doors.iter().find(|d| d.failed > 0) {
        bail!(
            "{}: {} pushes failed ({:?})",
            d.door.name(),
            d.failed,
            d.first_error
        );
    }
    Ok(())
}

fn display_all(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

fn summarize(files: &[PathBuf], out: &std::path::Path) -> anyhow::Result<()> {
    let reports = files
        .iter()
        .map(|f| {
            let text = std::fs::read(f).with_context(|| format!("reading {}", f.display()))?;
            serde_json::from_slice::<Report>(&text)
                .with_context(|| format!("parsing {}", f.display()))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    std::fs::create_dir_all(out)?;
    let charts = plot::scaling_charts(&reports, out)?;
    let mut sorted = reports.iter().collect::<Vec<_>>();
    sorted.sort_by_key(|r| r.config.fleet.nodes);
    print!("{}", report::MARKDOWN_HEADER);
    for r in sorted {
        print!("{}", report::markdown_row(r));
    }
    println!("\nwrote {}", display_all(&charts));
    Ok(())
}
