//! `go tool pprof` as the reference: its `-top` table, parsed.

use std::path::Path;
use std::process::Command;

/// `go tool pprof -top` rows after the header: (flat, cum, name) as printed.
/// A `-top` table: the "Showing nodes" summary line and (flat, cum, name) rows, sorted.
pub type Top = (String, Vec<(String, String, String)>);

pub fn go_top(args: &[&str], files: &[&Path]) -> Top {
    let out = Command::new("go")
        .args(["tool", "pprof", "-top", "-nodecount=100000"])
        .args(args)
        .args(files)
        .output()
        .expect("go tool pprof runs");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut rows: Vec<(String, String, String)> = text
        .lines()
        .skip_while(|l| !l.trim_start().starts_with("flat"))
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (in_ns(f[0]), in_ns(f[3]), f[5..].join(" "))
        })
        .collect();
    rows.sort();
    let summary = text
        .lines()
        .find(|l| l.starts_with("Showing nodes"))
        .unwrap_or("")
        .to_owned();
    (summary, rows)
}

/// A `-top` value with a time unit (`-50ms`, `-0.05s`: go picks the unit from the profile's
/// magnitudes) in nanoseconds, so the same amount compares equal; other values unchanged.
pub fn in_ns(value: &str) -> String {
    let units = [
        ("ns", 1.0),
        ("us", 1e3),
        ("µs", 1e3),
        ("ms", 1e6),
        ("s", 1e9),
        ("mins", 6e10),
        ("hrs", 3.6e12),
    ];
    for (unit, scale) in units {
        if let Some(number) = value.strip_suffix(unit)
            && let Ok(n) = number.parse::<f64>()
        {
            return format!("{}ns", (n * scale).round() as i64);
        }
    }
    value.to_owned()
}
