//! `strata query …` and `strata export …`: a client of a running server's HTTP/JSON API.
//! Tables for humans by default; `--output json` prints the server's JSON for scripts.

use std::io::Write;

use anyhow::Context;
use clap::{Args, Subcommand, ValueEnum};
use strata_server::client::{self, ApiClient, RangeAnswer, SqlAnswer, TopReport};

/// Where the server is and how to print.
#[derive(Args, Clone)]
pub struct ClientArgs {
    /// The server's HTTP address.
    #[arg(
        long,
        global = true,
        default_value = "http://127.0.0.1:7070",
        env = "STRATA_SERVER"
    )]
    server: String,
    /// Bearer token sent with every request (a read token, when the server has `auth:`).
    #[arg(long, global = true, env = "STRATA_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Tenant to query (the `X-Scope-OrgID` header), when the server has `tenants:` enabled.
    #[arg(long, global = true, env = "STRATA_TENANT")]
    tenant: Option<String>,
    /// Output format.
    #[arg(long, global = true, value_enum, default_value_t = Output::Table)]
    output: Output,
}

impl ClientArgs {
    /// A typed API client of the server, with the token and the tenant.
    pub fn client(&self) -> ApiClient {
        ApiClient::new(&self.server)
            .with_token(self.token.clone())
            .with_tenant(self.tenant.clone())
    }

    /// The server's address.
    pub fn server(&self) -> &str {
        &self.server
    }

    /// The token and the tenant as gRPC metadata (`authorization`, `x-scope-orgid`).
    pub fn grpc_metadata(
        &self,
    ) -> anyhow::Result<Vec<(&'static str, tonic::metadata::AsciiMetadataValue)>> {
        let mut out = Vec::new();
        if let Some(token) = &self.token {
            let value = format!("Bearer {token}")
                .parse()
                .context("--token: not a valid header value")?;
            out.push(("authorization", value));
        }
        if let Some(tenant) = &self.tenant {
            let value = tenant
                .parse()
                .context("--tenant: not a valid header value")?;
            out.push(("x-scope-orgid", value));
        }
        Ok(out)
    }

    /// The output format asked for.
    pub fn output(&self) -> Output {
        self.output
    }
}

/// Output formats.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// Aligned text tables.
    Table,
    /// The API's JSON.
    Json,
}

/// A selector over a time range.
#[derive(Args, Clone)]
pub struct Selection {
    /// The selector, e.g. 'process_cpu:cpu:nanoseconds:cpu:nanoseconds:delta{job="api"}'.
    selector: String,
    /// Range start: now-1h, RFC 3339 or a Unix time.
    #[arg(long, default_value = "now-1h")]
    from: String,
    /// Range end.
    #[arg(long, default_value = "now")]
    to: String,
}

/// `strata query` subcommands.
#[derive(Subcommand)]
pub enum QueryCommand {
    /// Values over time: one line per series (or per `--sum-by` labels).
    Range {
        #[command(flatten)]
        selection: Selection,
        /// Bucket width, e.g. 1m; default one point per stored profile.
        #[arg(long)]
        step: Option<String>,
        /// Comma-separated labels to sum by.
        #[arg(long)]
        sum_by: Option<String>,
    },
    /// Everything in the range merged: the top functions (or another report).
    Merge {
        #[command(flatten)]
        selection: Selection,
        /// Rows to show.
        #[arg(long, default_value_t = 20)]
        limit: usize,
        /// Group by: function_name, binary, filename or labels.<name> (comma-separated).
        #[arg(long)]
        group_by: Option<String>,
    },
    /// The top functions (flat and cumulative) of a merge.
    Top {
        #[command(flatten)]
        selection: Selection,
        /// Rows to show.
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// A selection compared with a base selection: per function, value, base and change.
    Diff {
        #[command(flatten)]
        selection: Selection,
        /// The base selector (default: the same selector).
        #[arg(long)]
        base: Option<String>,
        /// Base range start.
        #[arg(long)]
        base_from: String,
        /// Base range end.
        #[arg(long)]
        base_to: String,
        /// Rows to show.
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// One SQL statement (tables samples, stacks, locations, functions, mappings; merge(...)).
    Sql {
        /// The statement.
        sql: String,
    },
}

/// Export formats.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    /// gzipped pprof, for `go tool pprof`.
    Pprof,
    /// Folded stacks, for inferno, speedscope or flamegraph.pl.
    Folded,
    /// A merged CPU pprof with lines, for `go build -pgo`.
    PgoGo,
    /// LLVM's text sample profile, for clang/rustc `-fprofile-sample-use`.
    LlvmSample,
}

impl ExportFormat {
    fn report(self) -> &'static str {
        match self {
            ExportFormat::Pprof => "pprof",
            ExportFormat::Folded => "folded",
            ExportFormat::PgoGo => "pgo-go",
            ExportFormat::LlvmSample => "llvm-sample",
        }
    }
}

/// `strata export` arguments.
#[derive(Args)]
pub struct ExportArgs {
    #[command(flatten)]
    selection: Selection,
    /// Format.
    #[arg(long, value_enum)]
    format: ExportFormat,
    /// Output file (default stdout).
    #[arg(long, short)]
    out: Option<std::path::PathBuf>,
}

impl Selection {
    fn api(&self) -> client::Selection {
        client::Selection {
            query: self.selector.clone(),
            start: self.from.clone(),
            end: self.to.clone(),
        }
    }
}

/// Prints rows as a left/right-aligned table (numbers right).
pub(crate) fn print_table(header: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let n = cells.len();
        cells
            .into_iter()
            .enumerate()
            .map(|(i, c)| {
                if i + 1 == n {
                    c
                } else {
                    format!("{c:>w$}", w = widths[i])
                }
            })
            .collect::<Vec<_>>()
            .join("  ")
    };
    println!("{}", line(header.iter().map(|h| h.to_string()).collect()));
    for r in rows {
        println!("{}", line(r.clone()));
    }
}

/// A value in the profile's unit, readably.
fn human(v: f64, unit: &str) -> String {
    let a = v.abs();
    match unit {
        "nanoseconds" => {
            if a >= 1e9 {
                format!("{:.2}s", v / 1e9)
            } else if a >= 1e6 {
                format!("{:.2}ms", v / 1e6)
            } else if a >= 1e3 {
                format!("{:.2}µs", v / 1e3)
            } else {
                format!("{v}ns")
            }
        }
        "bytes" => {
            if a >= 1024.0 * 1024.0 * 1024.0 {
                format!("{:.2}GiB", v / 1024f64.powi(3))
            } else if a >= 1024.0 * 1024.0 {
                format!("{:.2}MiB", v / 1024f64.powi(2))
            } else if a >= 1024.0 {
                format!("{:.2}KiB", v / 1024.0)
            } else {
                format!("{v}B")
            }
        }
        _ => format!("{v}"),
    }
}

fn percent(v: f64, total: f64) -> String {
    if total == 0.0 {
        "-".into()
    } else {
        format!("{:.2}%", 100.0 * v / total)
    }
}

/// Prints a `top` report.
fn print_top(top: &TopReport, limit: usize, diff: bool) {
    let unit = top.meta.unit.as_str();
    let total = top.meta.total as f64;
    let rows: Vec<Vec<String>> = top
        .rows
        .iter()
        .take(limit)
        .map(|r| {
            let name = top.name(r).to_owned();
            let (flat, cum) = (r.flat as f64, r.cumulative as f64);
            if diff {
                let base = r.base_cumulative as f64;
                vec![
                    human(cum, unit),
                    human(base, unit),
                    human(cum - base, unit),
                    percent(cum - base, base),
                    name,
                ]
            } else {
                vec![
                    human(flat, unit),
                    percent(flat, total),
                    human(cum, unit),
                    percent(cum, total),
                    name,
                ]
            }
        })
        .collect();
    if diff {
        println!(
            "total {} (base {})",
            human(total, unit),
            human(top.meta.base_total as f64, unit)
        );
        print_table(&["cum", "base cum", "change", "change%", "function"], &rows);
    } else {
        println!("total {}", human(total, unit));
        print_table(&["flat", "flat%", "cum", "cum%", "function"], &rows);
    }
}

/// Prints the server's JSON answer as is, indented.
pub(crate) fn emit_json(body: &[u8]) -> anyhow::Result<()> {
    let v: serde_json::Value = serde_json::from_slice(body)?;
    println!("{}", serde_json::to_string_pretty(&v)?);
    Ok(())
}

/// A top report, or the JSON answer printed as is (`--output json`).
async fn top(
    args: &ClientArgs,
    selection: &Selection,
    extra: &[(&str, String)],
    limit: usize,
    diff: bool,
) -> anyhow::Result<()> {
    let api = args.client();
    if args.output == Output::Json {
        let mut params = selection.api().params();
        params.push(("report", "top".to_owned()));
        params.extend(extra.iter().cloned());
        return emit_json(&api.get_bytes("/api/v1/query", &params).await?);
    }
    print_top(&api.top(&selection.api(), extra).await?, limit, diff);
    Ok(())
}

/// Prints a range answer: one line per point.
fn print_range(answer: &RangeAnswer) {
    let mut rows = Vec::new();
    for s in &answer.series {
        let labels = s
            .labels
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(",");
        for p in &s.points {
            let time = humantime::format_rfc3339_millis(
                std::time::UNIX_EPOCH
                    + std::time::Duration::from_nanos(p.timestamp_ns.max(0) as u64),
            );
            rows.push(vec![
                time.to_string(),
                format!("{}", p.value),
                format!("{:.3}", p.value_per_second),
                labels.clone(),
            ]);
        }
    }
    print_table(&["time", "value", "per second", "series"], &rows);
}

/// Prints an SQL answer as a table.
fn print_sql(answer: &SqlAnswer) {
    let header: Vec<&str> = answer.columns.iter().map(|c| c.name.as_str()).collect();
    let rows: Vec<Vec<String>> = answer
        .rows
        .iter()
        .map(|r| {
            r.iter()
                .map(|c| match c {
                    serde_json::Value::String(s) => s.clone(),
                    serde_json::Value::Null => "NULL".into(),
                    other => other.to_string(),
                })
                .collect()
        })
        .collect();
    print_table(&header, &rows);
}

/// Runs `strata query …`.
pub async fn query(args: ClientArgs, command: QueryCommand) -> anyhow::Result<()> {
    let api = args.client();
    match command {
        QueryCommand::Range {
            selection,
            step,
            sum_by,
        } => {
            let mut extra = Vec::new();
            extra.extend(step.map(|s| ("step", s)));
            extra.extend(sum_by.map(|s| ("sum_by", s)));
            if args.output == Output::Json {
                let mut params = selection.api().params();
                params.extend(extra);
                return emit_json(&api.get_bytes("/api/v1/query_range", &params).await?);
            }
            print_range(&api.range(&selection.api(), &extra).await?);
        }
        QueryCommand::Merge {
            selection,
            limit,
            group_by,
        } => {
            let extra: Vec<_> = group_by.map(|g| ("group_by", g)).into_iter().collect();
            top(&args, &selection, &extra, limit, false).await?;
        }
        QueryCommand::Top { selection, limit } => {
            top(&args, &selection, &[], limit, false).await?;
        }
        QueryCommand::Diff {
            selection,
            base,
            base_from,
            base_to,
            limit,
        } => {
            let extra = [
                ("mode", "diff".to_owned()),
                (
                    "base_query",
                    base.unwrap_or_else(|| selection.selector.clone()),
                ),
                ("base_start", base_from),
                ("base_end", base_to),
            ];
            top(&args, &selection, &extra, limit, true).await?;
        }
        QueryCommand::Sql { sql } => {
            if args.output == Output::Json {
                return emit_json(&api.post_bytes("/api/v1/sql", sql).await?);
            }
            print_sql(&api.sql(&sql).await?);
        }
    }
    Ok(())
}

/// Runs `strata export …`.
pub async fn export(args: ClientArgs, export: ExportArgs) -> anyhow::Result<()> {
    let body = args
        .client()
        .export(&export.selection.api(), export.format.report())
        .await?;
    match &export.out {
        Some(path) => {
            std::fs::write(path, &body).with_context(|| format!("writing {}", path.display()))?
        }
        None => std::io::stdout().write_all(&body)?,
    }
    Ok(())
}
