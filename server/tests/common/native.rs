//! A native program for the symbolization tests: C built in the test with `gcc -g -O2`, a
//! stripped copy (`strip`) and its debug file (`objcopy --only-keep-debug`); addresses of its
//! functions (`nm`), what binutils' `addr2line -f -i -C` says of them, pprof profiles of those
//! addresses as a process would have mapped the program, and the frames a stored profile shows.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use prost::Message;
use strata_proto::pprof as pb;
use strata_symbolizer::{BuildId, LoadSegments};

/// Where the test "process" loaded the program (a PIE): runtime address = `BASE` + ELF address.
pub const BASE: u64 = 0x5555_5550_0000;

/// The C source: `mix` is inlined into `compute`'s loop at -O2; `compute` and `outer` are not
/// inlined anywhere. `variant` changes a constant, so each variant has its own build id.
pub fn source(variant: u32) -> String {
    format!(
        r#"#include <stdio.h>

static inline int mix(int a, int b) {{
    int x = a * 31 + b;
    return x ^ (x >> 3);
}}

__attribute__((noinline)) int compute(int n) {{
    int s = 0;
    for (int i = 0; i < n; i++) s = mix(s, i);
    return s;
}}

__attribute__((noinline)) int outer(int n) {{
    return compute(n) * {variant} + 1;
}}

int main(int argc, char **argv) {{
    printf("%d\n", outer(argc * 100000));
    return 0;
}}
"#
    )
}

/// The program, built and split.
pub struct NativeProgram {
    /// With symbols and DWARF.
    pub unstripped: PathBuf,
    /// After `strip`: no symbols, no DWARF (the build id note kept).
    pub stripped: PathBuf,
    /// `objcopy --only-keep-debug` of the unstripped binary.
    pub debug: PathBuf,
    /// The GNU build id, read with the symbolizer's reader.
    pub build_id: String,
    /// The mapping of its executable segment at [`BASE`]: (start, limit, file offset).
    pub text_mapping: (u64, u64, u64),
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

impl NativeProgram {
    /// Builds variant `variant` as `<dir>/prog<variant>` (+ `.stripped`, `.debug`).
    pub fn build(dir: &Path, variant: u32) -> NativeProgram {
        let src = dir.join(format!("prog{variant}.c"));
        std::fs::write(&src, source(variant)).unwrap();
        let unstripped = dir.join(format!("prog{variant}"));
        run(Command::new("gcc")
            .args(["-g", "-O2", "-o"])
            .arg(&unstripped)
            .arg(&src));
        let stripped = dir.join(format!("prog{variant}.stripped"));
        std::fs::copy(&unstripped, &stripped).unwrap();
        run(Command::new("strip").arg(&stripped));
        let debug = dir.join(format!("prog{variant}.debug"));
        run(Command::new("objcopy")
            .arg("--only-keep-debug")
            .arg(&unstripped)
            .arg(&debug));
        let id = |p: &Path| BuildId::of(&std::fs::read(p).unwrap()[..]).unwrap();
        let build_id = id(&stripped);
        assert_eq!(build_id, id(&unstripped));
        assert_eq!(build_id, id(&debug), "objcopy keeps the build id note");
        let bytes = std::fs::read(&unstripped).unwrap();
        let text = LoadSegments::parse(&bytes)
            .unwrap()
            .0
            .into_iter()
            .find(|s| s.executable)
            .expect("an executable segment");
        let start = BASE + (text.vaddr & !0xfff);
        let limit = BASE + ((text.vaddr + text.mem_size + 0xfff) & !0xfff);
        NativeProgram {
            unstripped,
            stripped,
            debug,
            build_id: build_id.id,
            text_mapping: (start, limit, text.offset & !0xfff),
        }
    }

    /// (address, size) of each defined function symbol (`nm -S`).
    pub fn functions(&self) -> BTreeMap<String, (u64, u64)> {
        run(Command::new("nm")
            .args(["-S", "--defined-only"])
            .arg(&self.unstripped))
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() == 4 && f[2].eq_ignore_ascii_case("t")).then(|| {
                let hex = |s: &str| u64::from_str_radix(s, 16).unwrap();
                (f[3].to_owned(), (hex(f[0]), hex(f[1])))
            })
        })
        .collect()
    }

    /// binutils' `addr2line -f -i -C` of ELF addresses: per address its frames, innermost
    /// first, as (function, file, line).
    pub fn addr2line(&self, addresses: &[u64]) -> Vec<Vec<Frame>> {
        let out = run(Command::new("addr2line")
            .args(["-a", "-f", "-i", "-C", "-e"])
            .arg(&self.unstripped)
            .args(addresses.iter().map(|a| format!("{a:#x}"))));
        let mut groups: Vec<Vec<Frame>> = Vec::new();
        let mut lines = out.lines().peekable();
        while let Some(addr) = lines.next() {
            assert!(addr.starts_with("0x"), "{out}");
            let mut frames = Vec::new();
            while lines.peek().is_some_and(|l| !l.starts_with("0x")) {
                let function = lines.next().unwrap().to_owned();
                let place = lines.next().unwrap();
                let place = place.split(" (discriminator").next().unwrap();
                let (file, line) = place.rsplit_once(':').unwrap();
                frames.push(Frame {
                    function,
                    file: file.to_owned(),
                    line: line.parse().unwrap_or(0),
                });
            }
            groups.push(frames);
        }
        assert_eq!(groups.len(), addresses.len(), "{out}");
        groups
    }

    /// ELF addresses to profile, each checked with `addr2line`: one in `compute` where `mix`
    /// is inlined (two frames), one elsewhere in `compute`, one in `outer`, one in `main`.
    pub fn pick_addresses(&self) -> Picked {
        let functions = self.functions();
        let pick = |name: &str, want: &dyn Fn(&[Frame]) -> bool| -> u64 {
            let (start, size) = functions[name];
            let all: Vec<u64> = (start..start + size).collect();
            let frames = self.addr2line(&all);
            all.iter()
                .zip(&frames)
                .find(|(_, f)| want(f))
                .map(|(a, _)| *a)
                .unwrap_or_else(|| panic!("no address of {name} fits: {frames:?}"))
        };
        let named = |n: &'static str| move |f: &[Frame]| f.len() == 1 && f[0].function == n;
        Picked {
            inlined: pick("compute", &|f| {
                f.len() == 2 && f[0].function == "mix" && f[1].function == "compute"
            }),
            compute: pick("compute", &named("compute")),
            outer: pick("outer", &named("outer")),
            main: pick("main", &named("main")),
        }
    }

    /// A CPU pprof of `stacks` (ELF addresses, leaf first) in this program mapped as `filename`
    /// at [`BASE`], with no symbols: only the mapping and the runtime addresses.
    pub fn profile(&self, filename: &Path, stacks: &[&[u64]], time_ns: i64) -> Vec<u8> {
        let strings: Vec<String> = [
            "",
            "samples",
            "count",
            "cpu",
            "nanoseconds",
            filename.to_str().unwrap(),
            &self.build_id,
        ]
        .map(str::to_owned)
        .to_vec();
        let (start, limit, offset) = self.text_mapping;
        let mut location: Vec<pb::Location> = Vec::new();
        let mut sample = Vec::new();
        for stack in stacks {
            let ids = stack
                .iter()
                .map(|&a| {
                    let address = BASE + a;
                    match location.iter().find(|l| l.address == address) {
                        Some(l) => l.id,
                        None => {
                            let id = location.len() as u64 + 1;
                            location.push(pb::Location {
                                id,
                                mapping_id: 1,
                                address,
                                ..Default::default()
                            });
                            id
                        }
                    }
                })
                .collect();
            sample.push(pb::Sample {
                location_id: ids,
                value: vec![10, 100_000_000],
                label: vec![],
            });
        }
        pb::Profile {
            sample_type: vec![
                pb::ValueType { r#type: 1, unit: 2 },
                pb::ValueType { r#type: 3, unit: 4 },
            ],
            period_type: Some(pb::ValueType { r#type: 3, unit: 4 }),
            period: 10_000_000,
            time_nanos: time_ns,
            mapping: vec![pb::Mapping {
                id: 1,
                memory_start: start,
                memory_limit: limit,
                file_offset: offset,
                filename: 5,
                build_id: 6,
                ..Default::default()
            }],
            location,
            sample,
            string_table: strings,
            ..Default::default()
        }
        .encode_to_vec()
    }
}

/// One frame as `addr2line` or a stored profile names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    pub function: String,
    pub file: String,
    pub line: i64,
}

/// ELF addresses chosen by [`NativeProgram::pick_addresses`].
#[derive(Clone, Copy, Debug)]
pub struct Picked {
    pub inlined: u64,
    pub compute: u64,
    pub outer: u64,
    pub main: u64,
}

/// The CPU selector of the profiles pushed with job `job`, URL-encoded.
pub fn cpu_query(job: &str) -> String {
    url::form_urlencoded::byte_serialize(
        format!("process_cpu:cpu:nanoseconds:cpu:nanoseconds:delta{{job=\"{job}\"}}").as_bytes(),
    )
    .collect()
}

/// The merged profile of job `job` in the last hour, through the HTTP API's pprof report
/// grouped by line: per runtime address, its frames innermost first (empty when
/// unsymbolized).
pub async fn stored_frames(addr: std::net::SocketAddr, job: &str) -> BTreeMap<u64, Vec<Frame>> {
    let path = format!(
        "/api/v1/query?query={}&start=now-1h&end=now&report=pprof&group_by=line",
        cpu_query(job)
    );
    let (status, body) = super::get_bytes(addr, &path).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let mut raw = Vec::new();
    flate2::read::GzDecoder::new(&body[..])
        .read_to_end(&mut raw)
        .unwrap();
    let p = pb::Profile::decode(&raw[..]).unwrap();
    let s = |i: i64| p.string_table[i as usize].clone();
    p.location
        .iter()
        .map(|l| {
            let frames = l
                .line
                .iter()
                .map(|line| {
                    let f = p
                        .function
                        .iter()
                        .find(|f| f.id == line.function_id)
                        .unwrap();
                    Frame {
                        function: s(f.name),
                        file: s(f.filename),
                        line: line.line,
                    }
                })
                .collect();
            (l.address, frames)
        })
        .collect()
}

/// The job's stacks as the folded report prints them (`root;…;leaf value`), sorted.
pub async fn folded(addr: std::net::SocketAddr, job: &str) -> Vec<String> {
    let path = format!(
        "/api/v1/query?query={}&start=now-1h&end=now&report=folded",
        cpu_query(job)
    );
    let (status, body) = super::get(addr, &path).await;
    assert_eq!(status, 200, "{body}");
    let mut lines: Vec<String> = body.lines().map(str::to_owned).collect();
    lines.sort();
    lines
}

/// The status report of `build_id` from `/api/v1/debuginfo/status`.
pub async fn debuginfo_status(addr: std::net::SocketAddr, build_id: &str) -> serde_json::Value {
    let (status, body) = super::get(
        addr,
        &format!("/api/v1/debuginfo/status?build_id={build_id}"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    v["build_ids"][0].clone()
}

/// A TCP proxy to `server` whose connections can be cut at once, as a lost network would.
pub async fn cuttable_proxy(server: std::net::SocketAddr) -> (std::net::SocketAddr, Cut) {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let cut = Cut {
        tasks: Default::default(),
        sent: Arc::new(AtomicU64::new(0)),
    };
    let (tasks, sent) = (cut.tasks.clone(), cut.sent.clone());
    let accept = tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        while let Ok((client, _)) = listener.accept().await {
            let upstream = tokio::net::TcpStream::connect(server).await.unwrap();
            let (mut cr, mut cw) = client.into_split();
            let (mut ur, mut uw) = upstream.into_split();
            let sent = sent.clone();
            let up = tokio::spawn(async move {
                let mut buf = vec![0u8; 16 << 10];
                while let Ok(n) = cr.read(&mut buf).await {
                    if n == 0 || uw.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                    sent.fetch_add(n as u64, Ordering::Relaxed);
                }
            });
            let down = tokio::spawn(async move {
                let _ = tokio::io::copy(&mut ur, &mut cw).await;
            });
            tasks.lock().unwrap().extend([up, down]);
        }
    });
    cut.tasks.lock().unwrap().push(accept);
    (addr, cut)
}

/// The connections of a [`cuttable_proxy`].
pub struct Cut {
    tasks: std::sync::Arc<std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>>,
    sent: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl Cut {
    /// Bytes forwarded from clients to the server so far.
    pub fn bytes(&self) -> u64 {
        self.sent.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Drops every connection (both directions) and stops accepting.
    pub fn cut(&self) {
        for t in self.tasks.lock().unwrap().drain(..) {
            t.abort();
        }
    }
}
