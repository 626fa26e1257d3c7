//! Where debug info comes from: a stripped binary symbolized through the file
//! `objcopy --only-keep-debug` wrote (supplied as bytes or a path, in a build-id directory,
//! or from a debuginfod server on loopback) exactly as the unstripped binary; the "missing"
//! status of a stripped binary with nothing else; runtime addresses of a running PIE and
//! non-PIE process; sharing one symbolizer across threads.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::*;
use strata_symbolizer::{
    BuildId, DebugFile, DebugInfoSource, DebugInfoStatus, DebuginfodFetcher, Fetched, MappingInfo,
    ObjectRef, Symbolizer, SymbolizerConfig,
};

const SOURCE: &str = r#"
#include <stdio.h>

static inline int square(int x) { return x * x; }

__attribute__((noinline)) int compute(int n) {
    int s = 0;
    for (int i = 0; i < n; i++)
        s += square(i);
    return s;
}

int main(void) {
    printf("%p %d\n", (void *)compute, compute(3));
    fflush(stdout);
    getchar();
    return 0;
}
"#;

/// A program built with `-O2 -g`, its stripped copy and its `--only-keep-debug` file.
struct Built {
    _dir: tempfile::TempDir,
    dir: PathBuf,
    full: PathBuf,
    stripped: PathBuf,
    debug: PathBuf,
    build_id: String,
    addresses: Vec<u64>,
}

fn build(extra: &[&str]) -> Option<Built> {
    if !have("gcc") || !have("objcopy") || !have("strip") {
        return None;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    let flags: Vec<&str> = ["-O2", "-g", "-Wl,--build-id"]
        .iter()
        .chain(extra)
        .copied()
        .collect();
    let full = compile("gcc", &dir, "prog.c", SOURCE, &flags, "prog");
    let debug = dir.join("prog.debug");
    run(Command::new("objcopy")
        .arg("--only-keep-debug")
        .arg(&full)
        .arg(&debug));
    let stripped = dir.join("prog.stripped");
    run(Command::new("strip").arg("-o").arg(&stripped).arg(&full));
    let build_id = BuildId::of(&*std::fs::read(&full).unwrap()).unwrap().id;
    assert_eq!(build_id.len(), 40, "a GNU build id");
    let addresses = sample_addresses(&functions(&full, &["compute", "main"]), 1);
    Some(Built {
        _dir: tmp,
        dir,
        full,
        stripped,
        debug,
        build_id,
        addresses,
    })
}

fn config() -> SymbolizerConfig {
    SymbolizerConfig {
        debug_dirs: vec![],
        ..Default::default()
    }
}

#[test]
fn stripped_binary_with_supplied_debug_file_symbolizes_like_the_unstripped_one() {
    let Some(b) = build(&[]) else { return };
    let symbolizer = Symbolizer::new(config()).unwrap();
    let reference = symbolizer.symbolize(
        &ObjectRef::new(&b.build_id).with_path(&b.full),
        &b.addresses,
    );
    assert!(reference.frames.iter().all(|f| !f.is_empty()));
    assert!(
        reference
            .frames
            .iter()
            .any(|f| f.len() == 2 && f[0].function == "square")
    );

    // Bytes, a fresh symbolizer.
    let symbolizer = Symbolizer::new(config()).unwrap();
    let bytes = DebugFile::from_bytes(std::fs::read(&b.debug).unwrap());
    let object = ObjectRef::new(&b.build_id)
        .with_path(&b.stripped)
        .with_supplied(bytes);
    let batch = symbolizer.symbolize(&object, &b.addresses);
    assert!(
        matches!(&batch.status, DebugInfoStatus::Found { source: DebugInfoSource::Supplied, content } if content.dwarf),
        "{:?}",
        batch.status
    );
    assert_eq!(batch.frames, reference.frames);

    // A path.
    let symbolizer = Symbolizer::new(config()).unwrap();
    let object = ObjectRef::new(&b.build_id).with_supplied(DebugFile::from_path(&b.debug));
    assert_eq!(
        symbolizer.symbolize(&object, &b.addresses).frames,
        reference.frames
    );
}

#[test]
fn build_id_directory_layout() {
    let Some(b) = build(&[]) else { return };
    let root = b.dir.join("debug-root");
    let (head, rest) = b.build_id.split_at(2);
    let target = root
        .join(".build-id")
        .join(head)
        .join(format!("{rest}.debug"));
    std::fs::create_dir_all(target.parent().unwrap()).unwrap();
    std::fs::copy(&b.debug, &target).unwrap();

    let reference = Symbolizer::new(config()).unwrap().symbolize(
        &ObjectRef::new(&b.build_id).with_path(&b.full),
        &b.addresses,
    );
    let symbolizer = Symbolizer::new(SymbolizerConfig {
        debug_dirs: vec![b.dir.join("elsewhere"), root],
        ..Default::default()
    })
    .unwrap();
    let batch = symbolizer.symbolize(
        &ObjectRef::new(&b.build_id).with_path(&b.stripped),
        &b.addresses,
    );
    assert_eq!(
        batch.status,
        DebugInfoStatus::Found {
            source: DebugInfoSource::BuildIdDir { path: target },
            content: strata_symbolizer::SymbolContent {
                dwarf: true,
                symtab: true,
                go_pclntab: false
            }
        }
    );
    assert_eq!(batch.frames, reference.frames);
}

#[test]
fn stripped_binary_without_debug_info_is_missing_with_the_fix_named() {
    let Some(b) = build(&[]) else { return };
    let symbolizer = Symbolizer::new(config()).unwrap();
    let object = ObjectRef::new(&b.build_id).with_path(&b.stripped);
    let batch = symbolizer.symbolize(&object, &b.addresses);
    let DebugInfoStatus::Missing { reason } = &batch.status else {
        panic!("{:?}", batch.status)
    };
    assert!(
        reason.starts_with("no symbols: stripped with `strip`; upload the file produced by `objcopy --only-keep-debug`"),
        "{reason}"
    );
    assert!(batch.frames.iter().all(|f| f.is_empty()));

    // Nothing known at all.
    let status = symbolizer.status(&ObjectRef::new("00112233445566778899aabbccddeeff00112233"));
    let DebugInfoStatus::Missing { reason } = status else {
        panic!()
    };
    assert!(
        reason.contains("none uploaded") && reason.contains("strata debuginfo upload"),
        "{reason}"
    );

    // No build id.
    assert!(matches!(
        symbolizer.status(&ObjectRef::new("")),
        DebugInfoStatus::Missing { .. }
    ));

    // A binary at the path that is not the one profiled.
    let other = ObjectRef::new("ffeeddccbbaa99887766554433221100ffeeddcc").with_path(&b.full);
    let DebugInfoStatus::Missing { reason } = symbolizer.status(&other) else {
        panic!()
    };
    assert!(
        reason.contains(&format!("has build id {}", b.build_id)),
        "{reason}"
    );

    // The upload arrives: supplying it replaces the cached "missing".
    let with_upload = object.clone().with_supplied(DebugFile::from_path(&b.debug));
    let batch = symbolizer.symbolize(&with_upload, &b.addresses);
    assert!(batch.status.is_found());
    assert!(batch.frames.iter().all(|f| !f.is_empty()));
    // And stays found for callers that do not pass it again.
    assert!(symbolizer.status(&object).is_found());
    symbolizer.invalidate(&b.build_id);
    assert!(!symbolizer.status(&object).is_found());
}

#[test]
fn garbage_supplied_file_fails_with_the_reason() {
    let symbolizer = Symbolizer::new(config()).unwrap();
    let object =
        ObjectRef::new("aabb").with_supplied(DebugFile::from_bytes(b"not an elf".to_vec()));
    let batch = symbolizer.symbolize(&object, &[0x1000]);
    let DebugInfoStatus::Failed { reason } = &batch.status else {
        panic!("{:?}", batch.status)
    };
    assert!(
        reason.contains("the supplied debug file is not a readable ELF object"),
        "{reason}"
    );
    assert!(batch.frames[0].is_empty());
}

/// Answers `GET /buildid/<id>/debuginfo` with `file` for `build_id`, 404 otherwise, on
/// loopback; counts requests.
fn debuginfod_server(build_id: String, file: Vec<u8>) -> (String, Arc<AtomicUsize>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let requests = Arc::new(AtomicUsize::new(0));
    let counter = requests.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(16) {
            let Ok(mut stream) = stream else { continue };
            counter.fetch_add(1, Ordering::SeqCst);
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request_line = String::new();
            reader.read_line(&mut request_line).unwrap();
            let mut line = String::new();
            while reader.read_line(&mut line).unwrap() > 2 {
                line.clear();
            }
            let wanted = format!("GET /buildid/{build_id}/debuginfo ");
            let (status, body): (&str, &[u8]) = if request_line.starts_with(&wanted) {
                ("200 OK", &file)
            } else {
                ("404 Not Found", b"not found")
            };
            let head = format!(
                "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(body);
        }
    });
    (url, requests)
}

#[test]
fn debuginfod_over_http() {
    let Some(b) = build(&[]) else { return };
    let (url, requests) = debuginfod_server(b.build_id.clone(), std::fs::read(&b.debug).unwrap());
    let reference = Symbolizer::new(config()).unwrap().symbolize(
        &ObjectRef::new(&b.build_id).with_path(&b.full),
        &b.addresses,
    );
    let symbolizer = Symbolizer::new(SymbolizerConfig {
        debug_dirs: vec![],
        debuginfod_urls: vec![format!("{url}/")],
        ..Default::default()
    })
    .unwrap();
    let object = ObjectRef::new(&b.build_id).with_path(&b.stripped);
    let batch = symbolizer.symbolize(&object, &b.addresses);
    assert_eq!(
        batch.status,
        DebugInfoStatus::Found {
            source: DebugInfoSource::Debuginfod {
                url: format!("{url}/buildid/{}/debuginfo", b.build_id)
            },
            content: strata_symbolizer::SymbolContent {
                dwarf: true,
                symtab: true,
                go_pclntab: false
            }
        }
    );
    assert_eq!(batch.frames, reference.frames);
    // Cached: no second request.
    symbolizer.symbolize(&object, &b.addresses);
    assert_eq!(requests.load(Ordering::SeqCst), 1);
    // A build id the server does not have: 404, missing.
    let status = symbolizer.status(&ObjectRef::new("00112233445566778899aabbccddeeff00112233"));
    assert!(
        matches!(&status, DebugInfoStatus::Missing { reason } if reason.contains("debuginfod")),
        "{status:?}"
    );
    assert_eq!(requests.load(Ordering::SeqCst), 2);
}

#[test]
fn plugged_in_fetcher_is_asked_once_per_build_id() {
    let Some(b) = build(&[]) else { return };
    struct Fetcher {
        debug: PathBuf,
        calls: AtomicUsize,
    }
    impl DebuginfodFetcher for Fetcher {
        fn fetch(&self, _build_id: &str) -> strata_symbolizer::Result<Option<Fetched>> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            Ok(Some(Fetched {
                url: "object-store://debuginfo".into(),
                file: DebugFile::from_path(&self.debug),
            }))
        }
    }
    let fetcher = Arc::new(Fetcher {
        debug: b.debug.clone(),
        calls: AtomicUsize::new(0),
    });
    let symbolizer = Symbolizer::with_fetcher(config(), fetcher.clone()).unwrap();
    let object = ObjectRef::new(&b.build_id);
    for _ in 0..3 {
        let batch = symbolizer.symbolize(&object, &b.addresses);
        assert!(batch.status.is_found());
        assert!(batch.frames.iter().all(|f| !f.is_empty()));
    }
    assert_eq!(fetcher.calls.load(Ordering::SeqCst), 1);
    let stats = symbolizer.stats();
    assert_eq!(stats.objects_loaded, 1);
    assert_eq!(stats.address_misses, b.addresses.len() as u64);
    assert_eq!(stats.address_hits, 2 * b.addresses.len() as u64);
}

/// Runs the program, reads the runtime address of `compute` it prints and its mapping from
/// `/proc/<pid>/maps`, and symbolizes that address through the mapping.
fn runtime_address_is_translated(extra: &[&str]) {
    let Some(b) = build(extra) else { return };
    let mut child = Command::new(&b.full)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    let address = u64::from_str_radix(
        line.split_whitespace()
            .next()
            .unwrap()
            .trim_start_matches("0x"),
        16,
    )
    .unwrap();
    let mut maps = String::new();
    std::fs::File::open(format!("/proc/{}/maps", child.id()))
        .unwrap()
        .read_to_string(&mut maps)
        .unwrap();
    let mapping = maps
        .lines()
        .find_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let (start, end) = f[0].split_once('-')?;
            let (start, end) = (
                u64::from_str_radix(start, 16).ok()?,
                u64::from_str_radix(end, 16).ok()?,
            );
            (start <= address && address < end && f.get(5).is_some_and(|p| Path::new(p) == b.full))
                .then(|| MappingInfo {
                    memory_start: start,
                    memory_limit: end,
                    file_offset: u64::from_str_radix(f[2], 16).unwrap(),
                })
        })
        .unwrap_or_else(|| panic!("no mapping of {address:#x} in\n{maps}"));
    let symbolizer = Symbolizer::new(config()).unwrap();
    let object = ObjectRef::new(&b.build_id).with_process_path(child.id(), &b.full);
    let batch = symbolizer.symbolize_runtime(&object, &mapping, &[address, mapping.memory_limit]);
    // Through the uploaded debug file alone, whose segments have lost their file offsets.
    let uploaded = ObjectRef::new(&b.build_id).with_supplied(DebugFile::from_path(&b.debug));
    let from_debug =
        Symbolizer::new(config())
            .unwrap()
            .symbolize_runtime(&uploaded, &mapping, &[address]);
    drop(child.stdin.take());
    child.wait().unwrap();
    assert_eq!(from_debug.frames[0], batch.frames[0]);
    assert_eq!(
        batch.frames[0].last().map(|f| f.function.as_str()),
        Some("compute"),
        "{mapping:x?}"
    );
    assert!(batch.frames[1].is_empty(), "outside the mapping");
    assert!(
        matches!(&batch.status, DebugInfoStatus::Found { source: DebugInfoSource::Binary { path }, .. } if path.starts_with("/proc"))
    );
}

#[test]
fn runtime_address_of_a_running_pie_process() {
    runtime_address_is_translated(&["-pie", "-fPIE"]);
}

#[test]
fn runtime_address_of_a_running_non_pie_process() {
    runtime_address_is_translated(&["-no-pie", "-fno-PIE"]);
}

#[test]
fn one_symbolizer_across_threads() {
    let Some(b) = build(&[]) else { return };
    let symbolizer = Arc::new(Symbolizer::new(config()).unwrap());
    let object = ObjectRef::new(&b.build_id).with_path(&b.full);
    let reference = Symbolizer::new(config())
        .unwrap()
        .symbolize(&object, &b.addresses)
        .frames;
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let (s, o, a) = (symbolizer.clone(), object.clone(), b.addresses.clone());
            std::thread::spawn(move || s.symbolize(&o, &a).frames)
        })
        .collect();
    for t in threads {
        assert_eq!(t.join().unwrap(), reference);
    }
    // Looked for and parsed once, by whichever thread came first.
    assert_eq!(symbolizer.stats().objects_loaded, 1);
}
