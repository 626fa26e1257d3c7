//! SVG line charts of a run (query latency and server memory as data grows) and of several
//! runs (the scaling curves by node count), with `plotters`' SVG backend (text as SVG
//! `<text>`, no fonts needed).

use std::path::Path;

use plotters::prelude::*;

use super::Error;
use super::probe::QUERIES;
use super::report::Report;

/// A named line of (x, y) points.
pub type Line = (String, Vec<(f64, f64)>);

const COLORS: &[RGBColor] = &[
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];

/// Draws `lines` into the SVG file `path`; log-scaled x when `log_x`.
pub fn chart(
    path: &Path,
    title: &str,
    x_label: &str,
    y_label: &str,
    lines: &[Line],
    log_x: bool,
) -> Result<(), Error> {
    let err = |e: &dyn std::fmt::Display| Error::Plot(path.display().to_string(), e.to_string());
    let points = lines.iter().flat_map(|(_, p)| p.iter());
    let (mut x0, mut x1, mut y1) = (f64::MAX, f64::MIN, 0.0f64);
    for &(x, y) in points {
        x0 = x0.min(x);
        x1 = x1.max(x);
        y1 = y1.max(y);
    }
    if x0 > x1 {
        (x0, x1) = (0.0, 1.0);
    }
    if x0 == x1 {
        x1 = x0 + 1.0;
    }
    let y1 = if y1 > 0.0 { y1 * 1.1 } else { 1.0 };
    let root = SVGBackend::new(path, (800, 480)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let mut builder = ChartBuilder::on(&root);
    builder
        .caption(title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70);
    let series = lines.iter().enumerate();
    macro_rules! draw {
        ($chart:expr) => {{
            let mut chart = $chart;
            chart
                .configure_mesh()
                .x_desc(x_label)
                .y_desc(y_label)
                .draw()
                .map_err(|e| err(&e))?;
            for (i, (name, pts)) in series {
                let color = COLORS[i % COLORS.len()];
                chart
                    .draw_series(LineSeries::new(pts.iter().copied(), color.stroke_width(2)))
                    .map_err(|e| err(&e))?
                    .label(name.as_str())
                    .legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
                    });
                chart
                    .draw_series(pts.iter().map(|&p| Circle::new(p, 3, color.filled())))
                    .map_err(|e| err(&e))?;
            }
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperLeft)
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .draw()
                .map_err(|e| err(&e))?;
        }};
    }
    if log_x {
        draw!(
            builder
                .build_cartesian_2d((x0.max(1e-9)..x1).log_scale(), 0.0..y1)
                .map_err(|e| err(&e))?
        );
    } else {
        draw!(
            builder
                .build_cartesian_2d(x0..x1, 0.0..y1)
                .map_err(|e| err(&e))?
        );
    }
    root.present().map_err(|e| err(&e))?;
    Ok(())
}

/// A run's charts: `<prefix>-queries.svg` (latency by rows stored) and `<prefix>-rss.svg`
/// (server memory by rows acknowledged). Returns the files written.
pub fn run_charts(r: &Report, dir: &Path, prefix: &str) -> Result<Vec<std::path::PathBuf>, Error> {
    let queries: Vec<Line> = QUERIES
        .iter()
        .map(|&q| {
            let pts = r
                .checkpoints
                .iter()
                .filter_map(|c| {
                    let t = c.queries.iter().find(|t| t.query == q)?;
                    Some((c.rows as f64 / 1e6, t.median_ms))
                })
                .collect();
            (q.to_owned(), pts)
        })
        .collect();
    let nodes = r.config.fleet.nodes;
    let q = dir.join(format!("{prefix}-queries.svg"));
    chart(
        &q,
        &format!("Query latency as data grows ({nodes} nodes)"),
        "sample rows stored (millions)",
        "median latency (ms)",
        &queries,
        false,
    )?;
    let rss = vec![(
        "server RSS".to_owned(),
        r.rss
            .iter()
            .map(|p| (p.rows as f64 / 1e6, p.rss_bytes as f64 / 1e6))
            .collect(),
    )];
    let m = dir.join(format!("{prefix}-rss.svg"));
    chart(
        &m,
        &format!("Server memory ({nodes} nodes)"),
        "sample rows acknowledged (millions)",
        "RSS (MB)",
        &rss,
        false,
    )?;
    Ok(vec![q, m])
}

/// Scaling curves over several runs, by node count: `scaling-ingest.svg`,
/// `scaling-latency.svg`, `scaling-memory.svg`, `scaling-bytes.svg`.
pub fn scaling_charts(reports: &[Report], dir: &Path) -> Result<Vec<std::path::PathBuf>, Error> {
    let mut sorted: Vec<&Report> = reports.iter().collect();
    sorted.sort_by_key(|r| r.config.fleet.nodes);
    let by_nodes = |name: &str, f: &dyn Fn(&Report) -> Option<f64>| -> Line {
        let pts = sorted
            .iter()
            .filter_map(|r| Some((r.config.fleet.nodes as f64, f(r)?)))
            .collect();
        (name.to_owned(), pts)
    };
    let charts: [(&str, &str, &str, Vec<Line>); 4] = [
        (
            "scaling-ingest.svg",
            "Ingest throughput",
            "sample rows/s (thousands)",
            vec![by_nodes("rows/s", &|r| {
                Some(r.summary.ingest_rows_per_s / 1e3)
            })],
        ),
        (
            "scaling-latency.svg",
            "Latency",
            "ms",
            vec![
                by_nodes("WriteRaw ack p50", &|r| Some(r.summary.ack_p50_ms)),
                by_nodes("WriteRaw ack p99", &|r| Some(r.summary.ack_p99_ms)),
                by_nodes("merge 1 h", &|r| Some(r.summary.merge_1h_ms)),
                by_nodes("merge 24 h", &|r| Some(r.summary.merge_24h_ms)),
            ],
        ),
        (
            "scaling-memory.svg",
            "Server memory",
            "peak RSS (MB)",
            vec![by_nodes("RSS peak", &|r| {
                Some(r.summary.rss_peak_bytes as f64 / 1e6)
            })],
        ),
        (
            "scaling-bytes.svg",
            "Storage",
            "bytes per sample row",
            vec![
                by_nodes("data dir", &|r| r.summary.disk_bytes_per_row),
                by_nodes("blocks", &|r| r.summary.block_bytes_per_row),
            ],
        ),
    ];
    let mut out = Vec::new();
    for (file, title, y, lines) in charts {
        let path = dir.join(file);
        chart(&path, title, "simulated nodes", y, &lines, true)?;
        out.push(path);
    }
    Ok(out)
}
