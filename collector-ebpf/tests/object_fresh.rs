//! The committed BPF object must match its source: `bpf/profiler.bpf.o.sha256` records the
//! sha256 of the sources it was built from (checked always), and where clang and libbpf-dev
//! are installed the object is rebuilt and compared byte for byte (`bpf/build.sh --check`);
//! where they are not, that test fails unless `STRATA_SKIP_BPF_BUILD=1`.

mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

fn bpf_dir() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/bpf"))
}

#[test]
fn recorded_source_hash_matches_the_sources() {
    let dir = bpf_dir();
    let mut src = std::fs::read(dir.join("profiler.bpf.c")).unwrap();
    src.extend(std::fs::read(dir.join("unwind.bpf.h")).unwrap());
    src.extend(std::fs::read(dir.join("vmlinux.h")).unwrap());
    let mut child = Command::new("sha256sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("sha256sum (coreutils)");
    child.stdin.take().unwrap().write_all(&src).unwrap();
    let out = child.wait_with_output().unwrap();
    let actual = String::from_utf8(out.stdout).unwrap();
    let actual = actual.split_whitespace().next().unwrap();
    let recorded = std::fs::read_to_string(dir.join("profiler.bpf.o.sha256")).unwrap();
    assert_eq!(
        actual,
        recorded.trim(),
        "bpf/profiler.bpf.o is stale against its source: run collector-ebpf/bpf/build.sh and commit"
    );
}

#[test]
fn committed_object_rebuilds_byte_for_byte() {
    use common::runs;
    if !runs("clang")
        || !(runs("llvm-strip") || runs("llvm-strip-14"))
        || !Path::new("/usr/include/bpf/bpf_helpers.h").exists()
    {
        common::skip_or_fail(
            "STRATA_SKIP_BPF_BUILD",
            "rebuilding the BPF object needs clang, llvm and libbpf-dev \
             (apt-get install -y clang llvm libbpf-dev)",
        );
        return;
    }
    let out = Command::new(bpf_dir().join("build.sh"))
        .arg("--check")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
