//! [`BuildId::of`] against the tools that print build ids: `readelf -n` for the GNU note,
//! `go tool buildid` for the Go note, `sha256sum` over the bytes the rule names for the file
//! hash; each read both from the file's bytes and through an [`object::ReadCache`] over it
//! (how the collector and the symbolizer's loader read mapped files), which must agree.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};

use common::*;
use strata_symbolizer::{BuildId, BuildIdKind};

/// The build id of a file from its bytes, checked against the one read through a
/// `ReadCache`.
fn build_id(path: &Path) -> BuildId {
    let id = BuildId::of(&*std::fs::read(path).unwrap()).unwrap();
    let cache = object::ReadCache::new(std::fs::File::open(path).unwrap());
    assert_eq!(BuildId::of(&cache).as_ref(), Some(&id));
    id
}

/// The GNU build id that `readelf -n` prints for a file; `None` when there is none.
fn readelf_gnu_build_id(path: &Path) -> Option<String> {
    let out = run(Command::new("readelf").arg("-n").arg(path));
    String::from_utf8_lossy(&out)
        .lines()
        .find_map(|l| l.trim().strip_prefix("Build ID: "))
        .map(|id| id.trim().to_owned())
}

#[test]
fn gnu_build_id_in_hex_as_readelf_prints_it() {
    if !have("readelf") {
        return;
    }
    let exe = std::env::current_exe().unwrap();
    let id = build_id(&exe);
    assert_eq!(id.kind, BuildIdKind::Gnu);
    assert!(
        id.id.len() >= 16
            && id
                .id
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
        "{}",
        id.id
    );
    assert_eq!(readelf_gnu_build_id(&exe), Some(id.id));
}

#[test]
fn go_binary_gets_the_go_build_id() {
    if !have("go") || !have("readelf") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let source = "package main\n\nimport \"fmt\"\n\nfunc main() { fmt.Println(\"hi\") }\n";
    let exe = go_build("go", dir.path(), source, "hello", &[]);
    let id = build_id(&exe);
    let want = run(Command::new("go").args(["tool", "buildid"]).arg(&exe));
    assert_eq!(id.id, String::from_utf8(want).unwrap().trim());
    assert_eq!(id.kind, BuildIdKind::Go);
    assert!(id.id.contains('/'), "{}", id.id);
    // `go build` writes no GNU build id: the Go one is a fallback, not a choice.
    assert_eq!(readelf_gnu_build_id(&exe), None);
}

/// The file hash recomputed by `sha256sum` over the bytes the rule names.
fn sha256sum_file_hash(path: &Path) -> String {
    use std::io::Write as _;
    let data = std::fs::read(path).unwrap();
    let edge = data.len().min(4096);
    let mut input = data[..edge].to_vec();
    input.extend_from_slice(&data[data.len() - edge..]);
    input.extend_from_slice(&(data.len() as u64).to_be_bytes());
    let mut child = Command::new("sha256sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("sha256sum (coreutils)");
    child.stdin.take().unwrap().write_all(&input).unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8(out.stdout).unwrap()[..32].to_owned()
}

#[test]
fn binary_without_build_id_gets_the_file_hash() {
    if !have("clang") || !have("readelf") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let source = "int main(void) { return 0; }\n";
    let exe = compile(
        "clang",
        dir.path(),
        "hello.c",
        source,
        &["-O1", "-Wl,--build-id=none"],
        "hello",
    );
    assert_eq!(
        readelf_gnu_build_id(&exe),
        None,
        "clang -Wl,--build-id=none wrote a build id"
    );
    let id = build_id(&exe);
    assert_eq!(id.kind, BuildIdKind::FileHash);
    assert_eq!(id.id.len(), 32);
    assert_eq!(id.id, sha256sum_file_hash(&exe));
    // Stable: the same file gives the same id again, and so does a copy of it.
    let copy = dir.path().join("copy");
    std::fs::copy(&exe, &copy).unwrap();
    assert_eq!(build_id(&exe), id);
    assert_eq!(build_id(&copy), id);
    // Another program gets another id.
    let flags = ["-O1", "-Wl,--build-id=none", "-DUNUSED=1", "-g"];
    let other = compile("clang", dir.path(), "other.c", source, &flags, "other");
    assert_ne!(build_id(&other).id, id.id);
}
