//! Real Go profiles for the benchmarks: `benches/goprof` (a Go program with thousands of
//! distinct stacks) built with the system's `go` and run into a directory, and the reference
//! merge, `go tool pprof -proto`, timed by its own CPU.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// The generator's source.
const SOURCE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/goprof");

/// Builds the generator into `dir` (once) and runs it there unless its profiles are there:
/// `dir/cpu.pb.gz` and `dir/heap.pb.gz` from `cpu_seconds` of work. Returns `dir`.
pub fn profiles(dir: &Path, cpu_seconds: u32) -> Result<PathBuf, String> {
    if dir.join("cpu.pb.gz").exists() && dir.join("heap.pb.gz").exists() {
        return Ok(dir.to_owned());
    }
    std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    let bin = dir.join("goprof");
    let status = Command::new("go")
        .args(["build", "-o"])
        .arg(&bin)
        .arg(".")
        .current_dir(SOURCE)
        .status()
        .map_err(|e| format!("`go` does not run (apt-get install golang-go): {e}"))?;
    if !status.success() {
        return Err(format!("go build of {SOURCE} failed: {status}"));
    }
    let status = Command::new(&bin)
        .arg(dir)
        .arg(cpu_seconds.to_string())
        .status()
        .map_err(|e| format!("running {}: {e}", bin.display()))?;
    if !status.success() {
        return Err(format!("{} failed: {status}", bin.display()));
    }
    Ok(dir.to_owned())
}

/// What a `go tool pprof -proto` merge cost: its wall and user + system CPU time.
#[derive(Clone, Copy, Debug, serde::Serialize, serde::Deserialize)]
pub struct GoMerge {
    /// Wall time.
    pub wall: Duration,
    /// CPU time of every thread of the `go tool pprof` process (and `go`'s own launcher).
    pub cpu: Duration,
}

/// `go tool pprof -proto files... > /dev/null`: every file parsed and merged into one
/// profile, as Go's own reference tool does it; timed with bash's `time`.
pub fn merge(files: &[PathBuf]) -> Result<GoMerge, String> {
    // Many copies of a few files: the argument list is long, so it goes through a file.
    let list = tempfile::NamedTempFile::new().map_err(|e| format!("temp file: {e}"))?;
    let names: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
    std::fs::write(list.path(), names.join("\n")).map_err(|e| format!("writing list: {e}"))?;
    let script = format!(
        "TIMEFORMAT='%R %U %S'; mapfile -t files < '{}'; time go tool pprof -proto \"${{files[@]}}\" > /dev/null 2>/tmp/strata-go-pprof.err",
        list.path().display()
    );
    let out = Command::new("bash")
        .arg("-c")
        .arg(script)
        .output()
        .map_err(|e| format!("bash: {e}"))?;
    if !out.status.success() {
        let why = std::fs::read_to_string("/tmp/strata-go-pprof.err").unwrap_or_default();
        return Err(format!("go tool pprof failed: {}", why.trim()));
    }
    let err = String::from_utf8_lossy(&out.stderr);
    let t: Vec<f64> = err
        .lines()
        .last()
        .unwrap_or("")
        .split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect();
    let [wall, user, system] = t[..] else {
        return Err(format!("no timing from bash: {err}"));
    };
    Ok(GoMerge {
        wall: Duration::from_secs_f64(wall),
        cpu: Duration::from_secs_f64(user + system),
    })
}
