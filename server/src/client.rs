//! `strata query …` and `strata export …`: a client of a running server's HTTP/JSON API.
//! Tables for humans by default; `--output json` prints the server's JSON for scripts.

use std::io::Write;

use anyhow::{Context, bail};
use clap::{Args, Subcommand, ValueEnum};
use serde_json::Value;

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
    /// `request` with the token and the tenant, if given.
    fn authorize(&self, mut request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        if let Some(tenant) = &self.tenant {
            request = request.header("X-Scope-OrgID", tenant);
        }
        request
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

pub(crate) async fn get(
    args: &ClientArgs,
    path: &str,
    params: &[(&str, String)],
) -> anyhow::Result<Vec<u8>> {
    let url = format!("{}{path}", args.server.trim_end_matches('/'));
    let response = args
        .authorize(reqwest::Client::new().get(&url))
        .query(params)
        .send()
        .await
        .with_context(|| format!("connecting to {url}"))?;
    read(response).await
}

async fn read(response: reqwest::Response) -> anyhow::Result<Vec<u8>> {
    let status = response.status();
    let body = response.bytes().await?.to_vec();
    if !status.is_success() {
        let message = serde_json::from_slice::<Value>(&body)
            .ok()
            .and_then(|v| v["error"].as_str().map(str::to_owned))
            .unwrap_or_else(|| String::from_utf8_lossy(&body).into_owned());
        bail!("server answered {status}: {message}");
    }
    Ok(body)
}

fn selection_params(s: &Selection) -> Vec<(&'static str, String)> {
    vec![
        ("query", s.selector.clone()),
        ("start", s.from.clone()),
        ("end", s.to.clone()),
    ]
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
fn print_top(v: &Value, limit: usize, diff: bool) {
    let unit = v["meta"]["unit"].as_str().unwrap_or("");
    let total = v["meta"]["total"].as_f64().unwrap_or(0.0);
    let frames = v["frames"].as_array().cloned().unwrap_or_default();
    let rows: Vec<Vec<String>> = v["rows"]
        .as_array()
        .map(|a| a.as_slice())
        .unwrap_or_default()
        .iter()
        .take(limit)
        .map(|r| {
            let name = frames
                .get(r["frame"].as_u64().unwrap_or(0) as usize)
                .and_then(|f| f["name"].as_str())
                .unwrap_or("?")
                .to_owned();
            let flat = r["flat"].as_f64().unwrap_or(0.0);
            let cum = r["cumulative"].as_f64().unwrap_or(0.0);
            if diff {
                let base = r["base_cumulative"].as_f64().unwrap_or(0.0);
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
            human(v["meta"]["base_total"].as_f64().unwrap_or(0.0), unit)
        );
        print_table(&["cum", "base cum", "change", "change%", "function"], &rows);
    } else {
        println!("total {}", human(total, unit));
        print_table(&["flat", "flat%", "cum", "cum%", "function"], &rows);
    }
}

pub(crate) fn emit_json(body: &[u8]) -> anyhow::Result<()> {
    let v: Value = serde_json::from_slice(body)?;
    println!("{}", serde_json::to_string_pretty(&v)?);
    Ok(())
}

/// Runs `strata query …`.
pub async fn query(args: ClientArgs, command: QueryCommand) -> anyhow::Result<()> {
    match command {
        QueryCommand::Range {
            selection,
            step,
            sum_by,
        } => {
            let mut params = selection_params(&selection);
            params.extend(step.map(|s| ("step", s)));
            params.extend(sum_by.map(|s| ("sum_by", s)));
            let body = get(&args, "/api/v1/query_range", &params).await?;
            if args.output == Output::Json {
                return emit_json(&body);
            }
            let v: Value = serde_json::from_slice(&body)?;
            let mut rows = Vec::new();
            for s in v["series"]
                .as_array()
                .map(|a| a.as_slice())
                .unwrap_or_default()
            {
                let labels = s["labels"]
                    .as_object()
                    .map(|m| {
                        m.iter()
                            .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                            .collect::<Vec<_>>()
                            .join(",")
                    })
                    .unwrap_or_default();
                for p in s["points"]
                    .as_array()
                    .map(|a| a.as_slice())
                    .unwrap_or_default()
                {
                    let t = p["timestamp_ns"].as_i64().unwrap_or(0);
                    let time = humantime::format_rfc3339_millis(
                        std::time::UNIX_EPOCH + std::time::Duration::from_nanos(t.max(0) as u64),
                    );
                    rows.push(vec![
                        time.to_string(),
                        format!("{}", p["value"].as_f64().unwrap_or(0.0)),
                        format!("{:.3}", p["value_per_second"].as_f64().unwrap_or(0.0)),
                        labels.clone(),
                    ]);
                }
            }
            print_table(&["time", "value", "per second", "series"], &rows);
        }
        QueryCommand::Merge {
            selection,
            limit,
            group_by,
        } => {
            let mut params = selection_params(&selection);
            params.push(("report", "top".into()));
            params.extend(group_by.map(|g| ("group_by", g)));
            let body = get(&args, "/api/v1/query", &params).await?;
            if args.output == Output::Json {
                return emit_json(&body);
            }
            print_top(&serde_json::from_slice(&body)?, limit, false);
        }
        QueryCommand::Top { selection, limit } => {
            let mut params = selection_params(&selection);
            params.push(("report", "top".into()));
            let body = get(&args, "/api/v1/query", &params).await?;
            if args.output == Output::Json {
                return emit_json(&body);
            }
            print_top(&serde_json::from_slice(&body)?, limit, false);
        }
        QueryCommand::Diff {
            selection,
            base,
            base_from,
            base_to,
            limit,
        } => {
            let mut params = selection_params(&selection);
            params.extend([
                ("mode", "diff".to_owned()),
                ("report", "top".to_owned()),
                (
                    "base_query",
                    base.unwrap_or_else(|| selection.selector.clone()),
                ),
                ("base_start", base_from),
                ("base_end", base_to),
            ]);
            let body = get(&args, "/api/v1/query", &params).await?;
            if args.output == Output::Json {
                return emit_json(&body);
            }
            print_top(&serde_json::from_slice(&body)?, limit, true);
        }
        QueryCommand::Sql { sql } => {
            let url = format!("{}/api/v1/sql", args.server.trim_end_matches('/'));
            let response = args
                .authorize(reqwest::Client::new().post(&url))
                .body(sql)
                .send()
                .await
                .with_context(|| format!("connecting to {url}"))?;
            let body = read(response).await?;
            if args.output == Output::Json {
                return emit_json(&body);
            }
            let v: Value = serde_json::from_slice(&body)?;
            let header: Vec<String> = v["columns"]
                .as_array()
                .map(|a| a.as_slice())
                .unwrap_or_default()
                .iter()
                .map(|c| c["name"].as_str().unwrap_or("").to_owned())
                .collect();
            let rows: Vec<Vec<String>> = v["rows"]
                .as_array()
                .map(|a| a.as_slice())
                .unwrap_or_default()
                .iter()
                .map(|r| {
                    r.as_array()
                        .map(|a| a.as_slice())
                        .unwrap_or_default()
                        .iter()
                        .map(|c| match c {
                            Value::String(s) => s.clone(),
                            Value::Null => "NULL".into(),
                            other => other.to_string(),
                        })
                        .collect()
                })
                .collect();
            let header: Vec<&str> = header.iter().map(String::as_str).collect();
            print_table(&header, &rows);
        }
    }
    Ok(())
}

/// Runs `strata export …`.
pub async fn export(args: ClientArgs, export: ExportArgs) -> anyhow::Result<()> {
    let mut params = selection_params(&export.selection);
    params.push(("report", export.format.report().into()));
    let body = get(&args, "/api/v1/query", &params).await?;
    match &export.out {
        Some(path) => {
            std::fs::write(path, &body).with_context(|| format!("writing {}", path.display()))?
        }
        None => std::io::stdout().write_all(&body)?,
    }
    Ok(())
}
