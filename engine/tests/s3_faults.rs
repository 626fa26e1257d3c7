//! Object-store faults on a real S3 API: a local `moto_server` behind a fault-injecting HTTP
//! proxy of our own ([`Proxy`]), which passes requests through or answers them with 403
//! AccessDenied, 503 SlowDown, a delay past the configured request timeout, a dropped
//! connection, or a dropped answer to a request the store did carry out. Whatever fails, every
//! appended sample must be there exactly once after healing, `close` and reopening.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::TryStreamExt;
use object_store::ObjectStore;
use object_store::path::Path;
use parking_lot::Mutex;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use common::s3::*;
use common::*;
use strata_engine::{Engine, EngineConfig, Error, ScanRequest, TimeRange};

// ---------------------------------------------------------------------------------------------
// The fault-injecting proxy.

/// What the proxy does with a request.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Action {
    /// Forward it to the store and its answer back.
    Pass,
    /// Answer 403 with S3's AccessDenied error body (not retried by the client).
    Forbidden,
    /// Answer 503 with S3's SlowDown error body (retried by the client).
    SlowDown,
    /// Answer nothing for this long (longer than the request timeout), then close.
    Delay(Duration),
    /// Close the connection without an answer.
    Drop,
    /// Forward it (the store carries it out), then close without passing the answer on.
    PassThenDrop,
}

/// (S3 deletes are `POST /<bucket>?delete`, a batch.) Requests of `method` (any if `None`) whose path contains `path` get `action`, after the
/// first `skip` such requests passed, at most `times` times (`None`: always).
struct Rule {
    method: Option<&'static str>,
    path: &'static str,
    action: Action,
    skip: u64,
    times: Option<u64>,
}

fn rule(method: &'static str, path: &'static str, action: Action) -> Rule {
    Rule {
        method: (!method.is_empty()).then_some(method),
        path,
        action,
        skip: 0,
        times: None,
    }
}

impl Rule {
    fn skip(mut self, n: u64) -> Self {
        self.skip = n;
        self
    }
    fn times(mut self, n: u64) -> Self {
        self.times = Some(n);
        self
    }
}

#[derive(Default)]
struct Faults {
    rules: Mutex<Vec<Rule>>,
    /// Every request seen: method, path, what was done.
    log: Mutex<Vec<(String, String, Action)>>,
}

impl Faults {
    fn decide(&self, method: &str, path: &str) -> Action {
        let mut action = Action::Pass;
        for r in self.rules.lock().iter_mut() {
            if r.method.is_some_and(|m| m != method) || !path.contains(r.path) {
                continue;
            }
            if r.skip > 0 {
                r.skip -= 1;
                break;
            }
            match &mut r.times {
                Some(0) => continue,
                Some(n) => *n -= 1,
                None => {}
            }
            action = r.action;
            break;
        }
        self.log
            .lock()
            .push((method.to_owned(), path.to_owned(), action));
        action
    }

    /// Requests that got a fault.
    fn injected(&self) -> usize {
        self.log
            .lock()
            .iter()
            .filter(|(_, _, a)| *a != Action::Pass)
            .count()
    }
}

struct Proxy {
    port: u16,
    faults: Arc<Faults>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Proxy {
    async fn start(upstream: u16) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let faults = Arc::new(Faults::default());
        let f = faults.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((conn, _)) = listener.accept().await else {
                    return;
                };
                tokio::spawn(serve(conn, upstream, f.clone()));
            }
        });
        Proxy { port, faults, task }
    }

    fn set(&self, rules: Vec<Rule>) {
        *self.faults.rules.lock() = rules;
    }

    fn heal(&self) {
        self.faults.rules.lock().clear();
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Reads until `buf` holds a complete head (`\r\n\r\n`); returns its length, `None` at EOF.
async fn read_head(conn: &mut TcpStream, buf: &mut Vec<u8>) -> Option<usize> {
    loop {
        if let Some(i) = find(buf, b"\r\n\r\n") {
            return Some(i + 4);
        }
        let mut chunk = [0u8; 8192];
        let n = conn.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

async fn read_more(conn: &mut TcpStream, buf: &mut Vec<u8>) -> Option<()> {
    let mut chunk = [0u8; 8192];
    let n = conn.read(&mut chunk).await.ok()?;
    (n > 0).then(|| buf.extend_from_slice(&chunk[..n]))
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().skip(1).find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// The head with any `Connection` header replaced by `Connection: close`.
fn closing(head: &str) -> String {
    let mut out = String::new();
    for l in head.trim_end().split("\r\n") {
        if !l.to_ascii_lowercase().starts_with("connection:") {
            out.push_str(l);
            out.push_str("\r\n");
        }
    }
    out.push_str("Connection: close\r\n\r\n");
    out
}

/// Reads one whole request (Content-Length or chunked body): (head, body bytes as sent).
async fn read_request(conn: &mut TcpStream) -> Option<(String, Vec<u8>)> {
    let mut buf = Vec::new();
    let head_len = read_head(conn, &mut buf).await?;
    let head = String::from_utf8_lossy(&buf[..head_len]).into_owned();
    let mut body = buf[head_len..].to_vec();
    if header(&head, "transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        // Walk the chunks; the body ends after the zero-size chunk and its blank line.
        let mut pos = 0;
        loop {
            let line_end = loop {
                match find(&body[pos..], b"\r\n") {
                    Some(i) => break pos + i,
                    None => read_more(conn, &mut body).await?,
                }
            };
            let size_text = String::from_utf8_lossy(&body[pos..line_end]).into_owned();
            let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
            pos = line_end + 2;
            if size == 0 {
                while find(&body[pos..], b"\r\n").is_none() {
                    read_more(conn, &mut body).await?;
                }
                let end = pos + find(&body[pos..], b"\r\n").unwrap() + 2;
                body.truncate(end);
                break;
            }
            while body.len() < pos + size + 2 {
                read_more(conn, &mut body).await?;
            }
            pos += size + 2;
        }
    } else {
        let len: usize = header(&head, "content-length").map_or(0, |v| v.parse().unwrap());
        while body.len() < len {
            read_more(conn, &mut body).await?;
        }
        body.truncate(len);
    }
    Some((head, body))
}

/// Forwards a request to the store; returns its whole answer, to be passed on with
/// `Connection: close`.
async fn forward(upstream: u16, head: &str, body: &[u8]) -> Option<Vec<u8>> {
    let mut up = TcpStream::connect(("127.0.0.1", upstream)).await.ok()?;
    up.write_all(closing(head).as_bytes()).await.ok()?;
    up.write_all(body).await.ok()?;
    let mut answer = Vec::new();
    up.read_to_end(&mut answer).await.ok()?;
    let head_len = find(&answer, b"\r\n\r\n")? + 4;
    let head = String::from_utf8_lossy(&answer[..head_len]).into_owned();
    let mut out = closing(&head).into_bytes();
    out.extend_from_slice(&answer[head_len..]);
    Some(out)
}

fn s3_error(status: &str, code: &str, message: &str) -> Vec<u8> {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{message}</Message><RequestId>fault-proxy</RequestId></Error>"
    );
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// One request per connection: every answer says `Connection: close`.
async fn serve(mut conn: TcpStream, upstream: u16, faults: Arc<Faults>) {
    let Some((head, body)) = read_request(&mut conn).await else {
        return;
    };
    let mut words = head.split_whitespace();
    let (method, path) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    let answer = match faults.decide(method, path) {
        Action::Pass => forward(upstream, &head, &body).await,
        Action::Forbidden => Some(s3_error("403 Forbidden", "AccessDenied", "Access Denied")),
        Action::SlowDown => Some(s3_error(
            "503 Service Unavailable",
            "SlowDown",
            "Please reduce your request rate.",
        )),
        Action::Delay(d) => {
            tokio::time::sleep(d).await;
            None
        }
        Action::Drop => None,
        Action::PassThenDrop => {
            forward(upstream, &head, &body).await;
            None
        }
    };
    if let Some(a) = answer {
        let _ = conn.write_all(&a).await;
        let _ = conn.shutdown().await;
    }
}

// ---------------------------------------------------------------------------------------------
// Helpers.

/// moto, a bucket, and the proxy in front; `None` when moto is missing and `STRATA_SKIP_S3=1`
/// says to skip.
async fn setup() -> Option<(S3Server, Proxy)> {
    let s3 = tokio::task::spawn_blocking(|| {
        let s3 = start_s3()?;
        create_bucket(s3.port, BUCKET);
        Some(s3)
    })
    .await
    .unwrap()?;
    let proxy = Proxy::start(s3.port).await;
    Some((s3, proxy))
}

/// Blocks through the proxy; short back-offs so retries are quick, generous timeouts so a
/// slow machine is not a fault.
fn config(dir: &std::path::Path, proxy: &Proxy) -> EngineConfig {
    let mut c = s3_config(dir, proxy.port);
    c.storage.request_timeout = Duration::from_secs(3);
    c.storage.connect_timeout = Duration::from_secs(3);
    c.storage.max_retries = 5;
    c.storage.retry_backoff_initial = Duration::from_millis(10);
    c.storage.retry_backoff_max = Duration::from_millis(100);
    c.storage.flush_backoff_initial = Duration::from_millis(50);
    c.storage.flush_backoff_max = Duration::from_millis(400);
    c.compaction.enabled = false;
    c
}

fn rows(ts0: i64) -> Vec<Row> {
    (0..40)
        .map(|i| Row {
            pt: (i % 2) as usize,
            labels: vec![("job".into(), format!("j{}", i % 3))],
            ts: ts0 + i,
            stack: (i % 6) as u8,
            value: ts0 + i,
        })
        .collect()
}

/// Every sample of both profile types equals the model's, duplicates counted; and the value
/// sums agree.
async fn assert_exact(engine: &Engine, model: &[Row]) {
    let mut total = 0;
    for (i, pt) in profile_types().iter().enumerate() {
        let seen = scan_all(engine, pt, vec![], TimeRange::ALL).await;
        assert_eq!(seen.len(), model_scan(model, i, &[], TimeRange::ALL).len());
        assert_eq!(seen, model_scan(model, i, &[], TimeRange::ALL));
        total += seen.iter().map(|s| s.3).sum::<i64>();
    }
    assert_eq!(total, model.iter().map(|r| r.value).sum::<i64>());
}

async fn append(engine: &Engine, model: &mut Vec<Row>, ts0: i64) {
    let r = rows(ts0);
    engine.append(&batch(&r)).await.unwrap();
    model.extend(r);
}

/// Block prefixes in the bucket (read past the proxy): id -> has `meta.json`.
async fn stored_blocks(direct: &Arc<dyn ObjectStore>) -> std::collections::BTreeMap<String, bool> {
    let prefix = Path::from(format!("{PREFIX}/blocks"));
    let objects: Vec<_> = direct.list(Some(&prefix)).try_collect().await.unwrap();
    let mut out = std::collections::BTreeMap::new();
    for o in objects {
        let parts: Vec<_> = o.location.parts().map(|p| p.as_ref().to_owned()).collect();
        *out.entry(parts[2].clone()).or_insert(false) |= parts[3] == "meta.json";
    }
    out
}

/// Waits (generously) for `cond`.
async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "timed out: {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn is_denied(e: &Error) -> bool {
    matches!(
        e,
        Error::ObjectStore {
            source: object_store::Error::PermissionDenied { .. },
            ..
        }
    )
}

// ---------------------------------------------------------------------------------------------
// Scenarios.

/// (a) 403 on uploads: the flush fails, the data stays queryable from the head, no block is
/// visible without its meta.json; once the store heals the background retry uploads it, and
/// after close and reopen every sample is there exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn denied_uploads_keep_the_data_and_are_retried() {
    let Some((s3, proxy)) = setup().await else {
        return;
    };
    let direct = direct_client(s3.port);
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path(), &proxy);
    c.background = true;
    c.head.check_interval = Duration::from_millis(20);
    c.head.max_age = Duration::from_secs(3600);
    let mut model = Vec::new();
    let engine = Engine::open(c.clone()).await.unwrap();
    append(&engine, &mut model, 0).await;
    append(&engine, &mut model, 100).await;

    // Every PUT denied.
    proxy.set(vec![rule("PUT", "", Action::Forbidden)]);
    let err = engine.flush().await.unwrap_err();
    assert!(is_denied(&err), "{err}");
    assert!(err.to_string().contains("403"), "{err}");
    assert!(engine.blocks().is_empty());
    assert_exact(&engine, &model).await;

    // The first two files get through, then every PUT is denied: a half-uploaded block,
    // without meta.json, so not a block.
    proxy.set(vec![rule("PUT", "", Action::Forbidden).skip(2)]);
    assert!(is_denied(&engine.flush().await.unwrap_err()));
    let stored = stored_blocks(&direct).await;
    assert_eq!(stored.len(), 1, "{stored:?}");
    assert!(stored.values().all(|committed| !committed));
    assert!(engine.blocks().is_empty());
    // Appends are still taken (the head is far under head.max_bytes) and queryable.
    append(&engine, &mut model, 200).await;
    assert_exact(&engine, &model).await;
    let s = engine.stats();
    assert!(s.flush_failures >= 2, "{s:?}");
    assert!(
        s.store_errors >= 2 && s.store_request_failures >= 2,
        "{s:?}"
    );
    assert_eq!(s.head.samples, 120);

    // Healed: the maintenance task retries after its back-off and uploads everything.
    proxy.heal();
    eventually("the failed flush is retried", || {
        let s = engine.stats();
        s.head.samples == 0 && s.blocks > 0
    })
    .await;
    let s = engine.stats();
    assert!(s.flush_retries >= 1, "{s:?}");
    assert_eq!(s.block_samples, 120);
    assert_exact(&engine, &model).await;
    // The retry rewrote the same block: nothing half-uploaded is left.
    let stored = stored_blocks(&direct).await;
    assert!(stored.values().all(|committed| *committed), "{stored:?}");
    assert_eq!(stored.len(), engine.blocks().len());
    append(&engine, &mut model, 300).await;
    engine.close().await.unwrap();
    drop(engine);

    let engine = Engine::open(c).await.unwrap();
    let report = engine.open_report();
    assert!(report.removed_incomplete.is_empty() && report.quarantined_blocks.is_empty());
    assert_eq!(report.replay.samples, 40);
    assert_exact(&engine, &model).await;
    engine.close().await.unwrap();
}

/// While uploads are denied and the head is full, appends are refused at once with a clear
/// error (nothing of them stored), not left hanging; after healing they are taken again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_head_refuses_appends_while_uploads_fail() {
    let Some((_s3, proxy)) = setup().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path(), &proxy);
    c.background = true;
    c.head.check_interval = Duration::from_millis(20);
    c.head.max_bytes = 16 << 10;
    let mut model = Vec::new();
    let engine = Engine::open(c.clone()).await.unwrap();
    proxy.set(vec![rule("PUT", "", Action::Forbidden)]);
    let mut refused = None;
    for i in 0..2000 {
        let r = rows(i * 100);
        let started = Instant::now();
        match engine.append(&batch(&r)).await {
            Ok(()) => model.extend(r),
            Err(e) => {
                assert!(started.elapsed() < Duration::from_secs(30), "append hung");
                refused = Some(e);
                break;
            }
        }
    }
    let e = refused.expect("a full head refuses appends while flushes fail");
    assert!(matches!(e, Error::Backpressure { .. }), "{e}");
    assert!(e.to_string().contains("head.max_bytes"), "{e}");
    assert!(e.to_string().contains("403"), "{e}");
    assert!(engine.blocks().is_empty());
    assert_exact(&engine, &model).await;

    proxy.heal();
    eventually("the heads are flushed", || engine.stats().head.samples == 0).await;
    append(&engine, &mut model, 1_000_000).await;
    assert_exact(&engine, &model).await;
    engine.close().await.unwrap();
    drop(engine);
    let engine = Engine::open(c).await.unwrap();
    assert_exact(&engine, &model).await;
    engine.close().await.unwrap();
}

/// (b) 503 SlowDown, a dropped connection and a request outliving the request timeout: the
/// client retries with back-off, the flush and reads succeed, nothing is lost, and the
/// failed requests are counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_faults_are_retried_by_the_client() {
    let Some((_s3, proxy)) = setup().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let c = config(dir.path(), &proxy);
    let mut model = Vec::new();
    let engine = Engine::open(c.clone()).await.unwrap();
    append(&engine, &mut model, 0).await;
    proxy.set(vec![
        rule("PUT", "", Action::SlowDown).times(2),
        rule("PUT", "", Action::Drop).times(1),
        rule("PUT", "meta.json", Action::Delay(Duration::from_secs(10))).times(1),
    ]);
    let meta = engine.flush().await.unwrap().expect("a block");
    assert_eq!(meta.num_samples, 40);
    assert_eq!(proxy.faults.injected(), 4);
    let s = engine.stats();
    assert!(s.store_request_failures >= 4, "{s:?}");
    assert_eq!((s.flush_failures, s.store_errors), (0, 0), "{s:?}");

    // Reads retried too.
    proxy.set(vec![
        rule("GET", "samples.parquet", Action::SlowDown).times(2),
        rule("GET", "", Action::Drop).times(1),
    ]);
    append(&engine, &mut model, 100).await;
    assert_exact(&engine, &model).await;
    assert_eq!(proxy.faults.injected(), 7);
    proxy.heal();
    engine.close().await.unwrap();
    drop(engine);
    let engine = Engine::open(c).await.unwrap();
    assert_eq!(engine.blocks().len(), 1);
    assert_exact(&engine, &model).await;
    engine.close().await.unwrap();
}

/// (c) Compaction failing at every step — reading its sources, half-way through writing its
/// output, after committing an output whose answer was lost, deleting its sources — never
/// loses or duplicates a sample, running or across restarts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_faults_lose_and_duplicate_nothing() {
    let Some((s3, proxy)) = setup().await else {
        return;
    };
    let direct = direct_client(s3.port);
    let dir = tempfile::tempdir().unwrap();
    let c = config(dir.path(), &proxy);
    let mut model = Vec::new();
    let mut engine = Engine::open(c.clone()).await.unwrap();
    let mut ts = 0;
    let mut flushed = async |engine: &Engine, model: &mut Vec<Row>, n: usize| {
        for _ in 0..n {
            append(engine, model, ts).await;
            ts += 100;
            engine.flush().await.unwrap();
        }
    };
    flushed(&engine, &mut model, 3).await;
    append(&engine, &mut model, 100_000).await; // and some in the head

    // Reading the sources fails.
    proxy.set(vec![rule("GET", "samples.parquet", Action::Forbidden)]);
    let err = engine.compact().await.unwrap_err();
    assert!(is_denied(&err), "{err}");
    proxy.heal();
    assert_eq!(engine.blocks().len(), 3);
    assert_exact(&engine, &model).await;

    // Writing the output fails half-way: the partial output is removed.
    proxy.set(vec![rule("PUT", "", Action::Forbidden).skip(3)]);
    assert!(is_denied(&engine.compact().await.unwrap_err()));
    proxy.heal();
    let stored = stored_blocks(&direct).await;
    assert_eq!(stored.len(), 3, "{stored:?}");
    assert!(stored.values().all(|committed| *committed));
    assert_exact(&engine, &model).await;

    // The output's meta.json is stored but its answer lost, and removing the output is
    // denied: a committed output over live sources is left in the store. It is removed before
    // the next compaction.
    proxy.set(vec![
        rule("PUT", "meta.json", Action::PassThenDrop),
        rule("POST", "?delete", Action::Forbidden),
    ]);
    let e = engine.compact().await.unwrap_err();
    assert!(matches!(e, Error::ObjectStore { .. }), "{e:?}");
    let stored = stored_blocks(&direct).await;
    assert_eq!(stored.len(), 4, "{stored:?}");
    assert_eq!(engine.blocks().len(), 3);
    assert_exact(&engine, &model).await;
    proxy.heal();
    let merged = engine.compact().await.unwrap().expect("merged");
    assert_eq!(merged.num_samples as usize, model.len() - 40); // 40 in the head
    assert_eq!(stored_blocks(&direct).await.len(), 1);
    assert_exact(&engine, &model).await;

    // Deleting the sources is denied: the compacted block is live, the sources wait; a
    // restart deletes them.
    flushed(&engine, &mut model, 2).await;
    proxy.set(vec![rule("POST", "?delete", Action::Forbidden)]);
    let merged = engine.compact().await.unwrap().expect("merged");
    assert_eq!(merged.num_samples as usize, model.len());
    assert_eq!(engine.blocks().len(), 1);
    assert_exact(&engine, &model).await;
    engine.close().await.unwrap();
    drop(engine);
    proxy.heal();
    engine = Engine::open(c.clone()).await.unwrap();
    assert_eq!(engine.open_report().removed_superseded.len(), 3);
    assert_eq!(engine.blocks().len(), 1);
    assert_exact(&engine, &model).await;

    // A committed output over live sources left at a restart: open takes it and drops the
    // sources.
    flushed(&engine, &mut model, 2).await;
    proxy.set(vec![
        rule("PUT", "meta.json", Action::PassThenDrop),
        rule("POST", "?delete", Action::Forbidden),
    ]);
    let e = engine.compact().await.unwrap_err();
    assert!(matches!(e, Error::ObjectStore { .. }), "{e:?}");
    engine.close().await.unwrap();
    drop(engine);
    proxy.heal();
    let engine = Engine::open(c).await.unwrap();
    assert_eq!(engine.open_report().removed_superseded.len(), 3);
    assert_eq!(engine.blocks().len(), 1);
    assert_eq!(engine.blocks()[0].num_samples as usize, model.len());
    assert_exact(&engine, &model).await;
    assert_eq!(stored_blocks(&direct).await.len(), 1);
    engine.close().await.unwrap();
}

/// (d) The store down during queries and at open: clear errors, no panic, nothing
/// quarantined; what needs no block read (labels) still answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_with_the_store_down_fail_clearly() {
    let Some((_s3, proxy)) = setup().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path(), &proxy);
    c.storage.max_retries = 2;
    let mut model = Vec::new();
    let engine = Engine::open(c.clone()).await.unwrap();
    append(&engine, &mut model, 0).await;
    engine.flush().await.unwrap();
    let pt = profile_types()[0].clone();
    let scan = async |engine: &Engine| {
        let out = engine
            .scan(ScanRequest {
                profile_type: pt.clone(),
                matchers: vec![],
                range: TimeRange::ALL,
            })
            .await?;
        out.collect().await
    };

    for action in [Action::Forbidden, Action::SlowDown, Action::Drop] {
        proxy.set(vec![rule("", "", action)]);
        let err = scan(&engine).await.expect_err("the block cannot be read");
        let text = err.to_string();
        assert!(
            matches!(err, Error::ObjectStore { .. }),
            "{action:?}: {text}"
        );
        assert!(text.contains("samples.parquet"), "{text}");
        let err = engine
            .resolve_stacks(&[stack_id_of(3)])
            .await
            .expect_err("symbols cannot be read");
        assert!(
            matches!(err, Error::ObjectStore { .. }),
            "{action:?}: {err}"
        );
        // Labels come from the in-memory indexes.
        assert_eq!(
            engine
                .label_values("job", None, &[], TimeRange::ALL)
                .await
                .unwrap(),
            vec!["j0", "j1", "j2"]
        );
    }
    proxy.heal();
    append(&engine, &mut model, 100).await;
    assert_exact(&engine, &model).await;
    engine.close().await.unwrap();
    drop(engine);

    // Opening with the store denying access fails and changes nothing.
    proxy.set(vec![rule("GET", "", Action::Forbidden)]);
    let err = Engine::open(c.clone()).await.err().expect("open fails");
    assert!(matches!(err, Error::ObjectStore { .. }), "{err}");
    assert!(err.to_string().contains("AccessDenied"), "{err}");
    proxy.heal();
    let engine = Engine::open(c).await.unwrap();
    assert!(engine.open_report().quarantined_blocks.is_empty());
    assert_eq!(engine.blocks().len(), 1);
    assert_exact(&engine, &model).await;
    engine.close().await.unwrap();
}
