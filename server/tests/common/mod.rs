//! Helpers shared by the server's integration tests.
#![allow(dead_code)]

pub mod gotool;
pub mod native;
pub mod strata;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A raw HTTP/1.1 POST; returns the status and the body.
pub async fn post_with(
    addr: std::net::SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, String) {
    let text = post_full(addr, path, headers, body).await;
    let status = text.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = text.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
    (status, body)
}

/// A raw HTTP/1.1 POST without extra headers.
pub async fn post(addr: std::net::SocketAddr, path: &str, body: &[u8]) -> (u16, String) {
    post_with(addr, path, &[], body).await
}

/// A raw HTTP/1.1 GET; returns the status and the body.
pub async fn get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    let (status, body) = get_bytes(addr, path).await;
    (status, String::from_utf8_lossy(&body).to_string())
}

/// A raw HTTP/1.1 GET (the answer not chunked); returns the status and the body's bytes.
pub async fn get_bytes(addr: std::net::SocketAddr, path: &str) -> (u16, Vec<u8>) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.unwrap();
    let status = String::from_utf8_lossy(&out[9..12]).parse().unwrap();
    let body = out
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(Vec::new(), |at| out[at + 4..].to_vec());
    (status, body)
}

/// A raw HTTP/1.1 POST; returns the whole response (status line, headers and body).
pub async fn post_full(
    addr: std::net::SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> String {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let extra: String = headers
        .iter()
        .map(|(k, v)| format!("{k}: {v}\r\n"))
        .collect();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n{extra}Connection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).await.unwrap();
    let _ = s.write_all(body).await;
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out).await;
    String::from_utf8_lossy(&out).to_string()
}

/// An engine in `dir` with no background maintenance.
pub async fn open_engine(dir: &std::path::Path) -> strata_engine::Engine {
    let mut config = strata_engine::EngineConfig::new(dir);
    config.background = false;
    strata_engine::Engine::open(config).await.unwrap()
}

/// Serves `app` on an ephemeral local port until `shutdown`; returns the address and the task.
pub async fn spawn_server(
    app: std::sync::Arc<strata_server::App>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> (
    std::net::SocketAddr,
    tokio::task::JoinHandle<std::io::Result<()>>,
) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    (
        addr,
        tokio::spawn(strata_server::serve(app, listener, None, shutdown)),
    )
}

/// One stored (series, stack) of a profile type, values summed: the series' labels, the stack
/// folded root first (`main;work`), the total.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct StoredStack {
    /// Series labels as `name=value` pairs, sorted.
    pub labels: Vec<(String, String)>,
    /// Function names, root first, joined by `;`.
    pub folded: String,
    /// Sum of the values.
    pub value: i64,
}

/// Every stored (series, stack) of profile type `pt`, read back through the engine.
pub async fn stored_stacks(engine: &strata_engine::Engine, pt: &str) -> Vec<StoredStack> {
    use arrow::array::AsArray;
    use arrow::datatypes::{Int64Type, UInt64Type};
    let out = engine
        .scan(strata_engine::ScanRequest {
            profile_type: pt.parse().unwrap(),
            matchers: vec![],
            range: strata_engine::TimeRange::ALL,
        })
        .await
        .unwrap();
    let series = out.series.clone();
    let mut sums: std::collections::BTreeMap<(u64, u64), i64> = Default::default();
    for b in out.collect().await.unwrap() {
        let s = b.column(0).as_primitive::<UInt64Type>();
        let st = b.column(4).as_primitive::<UInt64Type>();
        let v = b.column(5).as_primitive::<Int64Type>();
        for i in 0..b.num_rows() {
            *sums.entry((s.value(i), st.value(i))).or_default() += v.value(i);
        }
    }
    let ids: Vec<strata_engine::StackId> = sums
        .keys()
        .map(|&(_, st)| strata_engine::StackId(st))
        .collect();
    let symbols = engine.resolve_stacks(&ids).await.unwrap();
    let mut rows: Vec<StoredStack> = sums
        .into_iter()
        .map(|((s, st), value)| {
            let labels = series[&strata_engine::SeriesId(s)]
                .iter()
                .map(|l| (l.name.to_string(), l.value.to_string()))
                .collect();
            let mut frames: Vec<String> = symbols.stacks[&strata_engine::StackId(st)]
                .iter()
                .flat_map(|loc| {
                    symbols.locations[loc]
                        .lines
                        .iter()
                        .map(|line| symbols.functions[&line.function_id].name.clone())
                })
                .collect();
            frames.reverse();
            StoredStack {
                labels,
                folded: frames.join(";"),
                value,
            }
        })
        .collect();
    rows.sort();
    rows
}

/// Two CPU and two heap profiles of the Go program: (profile name, `/debug/pprof` path).
pub const GO_CPU_AND_HEAP: [(&str, &str); 4] = [
    ("process_cpu", "/debug/pprof/profile?seconds=2"),
    ("process_cpu", "/debug/pprof/profile?seconds=2"),
    ("memory", "/debug/pprof/heap"),
    ("memory", "/debug/pprof/heap"),
];

/// GETs `url`; the body of a successful answer.
pub async fn fetch(url: &str) -> Vec<u8> {
    let r = reqwest::get(url).await.unwrap();
    assert!(r.status().is_success(), "{url}: {}", r.status());
    r.bytes().await.unwrap().to_vec()
}

/// The Go scrape target of `tests/fixtures/goapp`, built with the system's `go` and running
/// until dropped.
pub struct GoApp {
    child: std::process::Child,
    /// Where it serves `net/http/pprof`.
    pub addr: String,
}

impl GoApp {
    /// Builds (into `dir`) and starts the Go program on an ephemeral port.
    pub fn start(dir: &std::path::Path) -> GoApp {
        Self::start_with(dir, "go")
    }

    /// Builds with the given `go` binary and starts the program.
    pub fn start_with(dir: &std::path::Path, go: &str) -> GoApp {
        use std::io::BufRead;
        let src = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/goapp");
        let bin = dir.join("goapp");
        let built = std::process::Command::new(go)
            .env("GOTOOLCHAIN", "local")
            .args(["build", "-o"])
            .arg(&bin)
            .arg(".")
            .current_dir(src)
            .output()
            .expect("`go` runs (./scripts/test installs Debian's golang-go)");
        assert!(
            built.status.success(),
            "go build: {}",
            String::from_utf8_lossy(&built.stderr)
        );
        let mut child = std::process::Command::new(&bin)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let addr = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("goapp said {line:?}"))
            .to_owned();
        GoApp { child, addr }
    }
}

impl Drop for GoApp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Pushes one raw pprof over Parca's `WriteRaw` (gRPC) with labels `__name__` and `job`.
pub async fn write_raw(addr: std::net::SocketAddr, name: &str, job: &str, raw_profile: Vec<u8>) {
    use strata_proto::parca::profile_store_service_client::ProfileStoreServiceClient;
    use strata_proto::parca::{Label, LabelSet, RawProfileSeries, RawSample, WriteRawRequest};
    let label = |name: &str, value: &str| Label {
        name: name.into(),
        value: value.into(),
    };
    ProfileStoreServiceClient::connect(format!("http://{addr}"))
        .await
        .unwrap()
        .write_raw(WriteRawRequest {
            series: vec![RawProfileSeries {
                labels: Some(LabelSet {
                    labels: vec![label("__name__", name), label("job", job)],
                }),
                samples: vec![RawSample { raw_profile }],
            }],
            ..Default::default()
        })
        .await
        .unwrap();
}

/// Whether a test that needs a tool may run: `Ok(())` from `available` runs it; a missing tool
/// fails the test with `available`'s reason, unless `STRATA_SKIP_<what>=1` allows skipping
/// (then `false`: the caller returns). README's "Tests" section lists the variables.
pub fn tool_or_skip(what: &str, available: Result<(), String>) -> bool {
    let Err(why) = available else {
        return true;
    };
    let var = format!("STRATA_SKIP_{what}");
    assert!(
        std::env::var(&var).is_ok_and(|v| v == "1"),
        "{why} (./scripts/test installs it); set {var}=1 to skip this test"
    );
    eprintln!("skipped ({var}=1): {why}");
    false
}

/// Whether `python3 -c "import <modules>"` works; else why not.
pub fn python_imports(modules: &str) -> Result<(), String> {
    let out = std::process::Command::new("python3")
        .args(["-c", &format!("import {modules}")])
        .output()
        .map_err(|e| format!("python3 does not run: {e}"))?;
    match out.status.success() {
        true => Ok(()),
        false => Err(format!(
            "python3 cannot import {modules}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )),
    }
}

/// Pushes (Parca `WriteRaw`) one synthetic CPU profile at `time_ns` for each of the jobs
/// `api` (30 samples of work) and `db` (10): stacks `main;handle;work` and `main;gc` (5).
pub async fn push_two_jobs(addr: std::net::SocketAddr, time_ns: i64) {
    for (job, work) in [("api", 30), ("db", 10)] {
        let mut b = strata_ingest::PprofBuilder::new(
            &[("samples", "count"), ("cpu", "nanoseconds")],
            ("cpu", "nanoseconds"),
            10_000_000,
        );
        b.time(time_ns, 10_000_000_000)
            .sample(&["work", "handle", "main"], &[work, work * 10_000_000], &[])
            .sample(&["gc", "main"], &[5, 50_000_000], &[]);
        write_raw(addr, "process_cpu", job, b.encode()).await;
    }
}

/// Whether the `strata server` at `addr` runs its in-process eBPF collector (its counters are on
/// `/metrics`); when it does not, fails the test unless `STRATA_SKIP_EBPF=1`.
pub async fn collector_started(addr: std::net::SocketAddr) -> bool {
    let (_, metrics) = get(addr, "/metrics").await;
    let collector = match metrics.contains("strata_collector_samples_total") {
        true => Ok(()),
        false => Err(
            "the server's eBPF collector did not start (root or CAP_BPF + CAP_PERFMON needed)"
                .to_owned(),
        ),
    };
    tool_or_skip("EBPF", collector)
}
