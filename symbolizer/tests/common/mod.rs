//! Helpers of the symbolizer tests: building test programs in a tempdir with the system's
//! compilers, sampling addresses of their functions, and running binutils' `addr2line` as the
//! reference.
//!
//! A test that needs what this host lacks fails saying so, unless the variable that skips it
//! is set to `1` ([`skip_or_fail`]):
//! - `STRATA_SKIP_CC`: gcc, g++, clang, binutils (`addr2line`, `objcopy`, `strip`, `objdump`,
//!   `readelf`) or `rustc` (run outside cargo);
//! - `STRATA_SKIP_GO`: `go`;
//! - `STRATA_SKIP_ROOT_TESTS`: root, to see the kernel's addresses in `/proc/kallsyms`.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use object::{Object, ObjectSymbol, SymbolKind};

/// Whether `tool` can be run. When it cannot, the test fails unless `STRATA_SKIP_GO=1` (for
/// `go`) or `STRATA_SKIP_CC=1` (for the other tools) is set; then it prints why it is skipped
/// and this returns `false`.
pub fn have(tool: &str) -> bool {
    let ok = Command::new(tool)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    if !ok {
        let var = if tool == "go" {
            "STRATA_SKIP_GO"
        } else {
            "STRATA_SKIP_CC"
        };
        skip_or_fail(
            var,
            &format!(
                "`{tool}` is not installed (apt-get install -y gcc g++ clang binutils golang-go)"
            ),
        );
    }
    ok
}

/// For a test that cannot run here (`why`): fails it, unless `var=1` is set; then prints that
/// it is skipped.
pub fn skip_or_fail(var: &str, why: &str) {
    assert!(
        std::env::var(var).is_ok_and(|v| v == "1"),
        "{why}; set {var}=1 to skip this test"
    );
    eprintln!("skipped ({var}=1): {why}");
}

/// Runs a command, panicking with its output when it fails.
pub fn run(cmd: &mut Command) -> Vec<u8> {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("running {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Writes `source` as `dir/name` and returns its path.
pub fn write_source(dir: &Path, name: &str, source: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, source).unwrap();
    path
}

/// Compiles `source` (written as `dir/name`) with `compiler` and `flags` into `dir/out`.
pub fn compile(
    compiler: &str,
    dir: &Path,
    name: &str,
    source: &str,
    flags: &[&str],
    out: &str,
) -> PathBuf {
    let src = write_source(dir, name, source);
    let bin = dir.join(out);
    run(Command::new(compiler)
        .args(flags)
        .arg("-o")
        .arg(&bin)
        .arg(&src));
    bin
}

/// Builds a Go program (`main.go` in its own folder) with `go` and extra `go build` args.
pub fn go_build(go: &str, dir: &Path, source: &str, out: &str, args: &[&str]) -> PathBuf {
    let src_dir = dir.join(format!("{out}-src"));
    std::fs::create_dir_all(&src_dir).unwrap();
    write_source(&src_dir, "main.go", source);
    let bin = dir.join(out);
    run(Command::new(go)
        .args(["build", "-o"])
        .arg(&bin)
        .args(args)
        .arg("main.go")
        .current_dir(&src_dir)
        .env("GO111MODULE", "off")
        .env("GOFLAGS", "")
        .env("CGO_ENABLED", "0"));
    bin
}

/// Function symbols of `bin` whose names contain one of `needles`: (address, size, name).
pub fn functions(bin: &Path, needles: &[&str]) -> Vec<(u64, u64, String)> {
    let data = std::fs::read(bin).unwrap();
    let file = object::File::parse(&*data).unwrap();
    let mut out: Vec<(u64, u64, String)> = file
        .symbols()
        .filter(|s| s.kind() == SymbolKind::Text && s.size() > 0)
        .filter_map(|s| Some((s.address(), s.size(), s.name().ok()?.to_owned())))
        .filter(|(_, _, n)| needles.iter().any(|needle| n.contains(needle)))
        .collect();
    out.sort();
    out.dedup_by_key(|s| s.0);
    out
}

/// Every `step`-th address of each function (and its last byte).
pub fn sample_addresses(functions: &[(u64, u64, String)], step: u64) -> Vec<u64> {
    let mut out = Vec::new();
    for (start, size, _) in functions {
        out.extend((*start..start + size).step_by(step as usize));
        out.push(start + size - 1);
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// One frame as a reference tool prints it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefFrame {
    pub function: String,
    pub file: String,
    pub line: u32,
}

/// `addr2line -i -f -C -a -e BIN ADDR...`: the frames of each address, innermost first.
pub fn binutils_addr2line(bin: &Path, addresses: &[u64]) -> Vec<Vec<RefFrame>> {
    let mut cmd = Command::new("addr2line");
    cmd.args(["-i", "-f", "-C", "-a", "-e"]).arg(bin);
    for a in addresses {
        cmd.arg(format!("{a:#x}"));
    }
    let text = String::from_utf8(run(&mut cmd)).unwrap();
    let mut out: Vec<Vec<RefFrame>> = Vec::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if line.starts_with("0x")
            && !line.contains(':')
            && u64::from_str_radix(&line[2..], 16).is_ok()
        {
            out.push(Vec::new());
            continue;
        }
        let location = lines.next().expect("a location line after a function line");
        let (file, line_no) = parse_location(location);
        out.last_mut().unwrap().push(RefFrame {
            function: line.to_owned(),
            file,
            line: line_no,
        });
    }
    assert_eq!(out.len(), addresses.len(), "addr2line output:\n{text}");
    // A lone `?? ??:0` is "unknown".
    for frames in &mut out {
        if frames.len() == 1 && frames[0].function == "??" && frames[0].file.is_empty() {
            frames.clear();
        }
    }
    out
}

/// `file:line`, `file:line (discriminator N)`, `??:0` or `??:?` -> (file or "", line or 0).
pub fn parse_location(location: &str) -> (String, u32) {
    let location = location.split(" (discriminator").next().unwrap();
    let (file, line) = location.rsplit_once(':').unwrap_or((location, "0"));
    let file = if file == "??" { "" } else { file };
    (file.to_owned(), line.parse().unwrap_or(0))
}

/// `go tool addr2line BIN` with addresses on stdin: (function, file, line) of each; Go's tool
/// prints the out-of-line function with the instruction's file and line.
pub fn go_addr2line(go: &str, bin: &Path, addresses: &[u64]) -> Vec<RefFrame> {
    let input: String = addresses.iter().map(|a| format!("{a:#x}\n")).collect();
    let mut child = Command::new(go)
        .args(["tool", "addr2line"])
        .arg(bin)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines.len(),
        2 * addresses.len(),
        "go tool addr2line output:\n{text}"
    );
    lines
        .chunks(2)
        .map(|pair| {
            let (file, line) = parse_location(pair[1]);
            RefFrame {
                function: pair[0].to_owned(),
                file,
                line,
            }
        })
        .collect()
}

/// The file name after the last `/`.
pub fn basename(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}
