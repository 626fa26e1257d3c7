//! The web UI: served at `/` from the binary (content types, caching, no clobbered routes), and
//! driven in headless Chromium (`ui-tests/run.mjs`, playwright-core) against a real `strata
//! server` scraping the Go fixture program; plus the icicle graph's performance at 1 M stacks
//! (`ui-tests/perf.mjs`); and signing in with a read token and picking a tenant
//! (`ui-tests/access.mjs`). Screenshots land in `target/ui-screenshots`. The browser tests skip,
//! saying so, when `node` or `chromium` is missing (`./scripts/test` installs both).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::strata::Strata;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn chromium() -> String {
    std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".to_owned())
}

/// Whether node, chromium and the test's npm packages are there (installing the packages with
/// `npm ci` if only they are missing); otherwise the test fails, unless `STRATA_SKIP_BROWSER=1` skips it.
fn browser_ready() -> bool {
    let has = |cmd: &str, arg: &str| {
        Command::new(cmd)
            .arg(arg)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    let available = if !has("node", "--version") {
        Err("the browser tests need `node` (Debian's nodejs and npm)".to_owned())
    } else if !Path::new(&chromium()).exists() {
        Err(format!(
            "the browser tests need {} (Debian's chromium)",
            chromium()
        ))
    } else {
        Ok(())
    };
    if !common::tool_or_skip("BROWSER", available) {
        return false;
    }
    let tests = workspace().join("ui-tests");
    if !tests.join("node_modules/playwright-core").exists() {
        let ok = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(&tests)
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "npm ci in ui-tests/ failed (./scripts/test runs it)");
    }
    true
}

/// One browser at a time: the perf test's budgets assume chromium is not sharing the 2 cores
/// with the other browser test.
static BROWSER: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Runs `node ui-tests/<script> <args>`, echoing its output; panics if it fails.
fn node(script: &str, args: &[&str]) -> String {
    let _one = BROWSER.lock().unwrap_or_else(|e| e.into_inner());
    let out = Command::new("node")
        .arg(workspace().join("ui-tests").join(script))
        .args(args)
        .env("CHROMIUM", chromium())
        .current_dir(workspace())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    println!("{stdout}");
    eprintln!("{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "node {script} failed:\n{stdout}");
    stdout
}

/// A raw GET with extra headers; the whole response text.
async fn get_full(addr: std::net::SocketAddr, path: &str, headers: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: x\r\n{headers}Connection: close\r\n\r\n").as_bytes(),
    )
    .await
    .unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.unwrap();
    String::from_utf8_lossy(&out).into_owned()
}

fn header<'a>(response: &'a str, name: &str) -> Option<&'a str> {
    let head = response.split("\r\n\r\n").next()?;
    head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ui_is_served_without_clobbering_other_routes() {
    let dir = tempfile::tempdir().unwrap();
    let engine = common::open_engine(dir.path()).await;
    let app = strata_server::App::new(engine);
    let (addr, _server) = common::spawn_server(app, std::future::pending()).await;

    let index = get_full(addr, "/", "").await;
    assert!(index.starts_with("HTTP/1.1 200"), "{index}");
    assert_eq!(
        header(&index, "content-type"),
        Some("text/html; charset=utf-8")
    );
    assert_eq!(header(&index, "cache-control"), Some("no-cache"));
    assert!(index.contains("<script type=\"module\" src=\"/ui/app.js\">"));
    let etag = header(&index, "etag").expect("an ETag").to_owned();
    let again = get_full(addr, "/", &format!("If-None-Match: {etag}\r\n")).await;
    assert!(again.starts_with("HTTP/1.1 304"), "{again}");

    for (path, ty) in [
        ("/ui/app.js", "text/javascript; charset=utf-8"),
        ("/ui/flame.js", "text/javascript; charset=utf-8"),
        ("/ui/style.css", "text/css; charset=utf-8"),
        ("/ui/favicon.svg", "image/svg+xml"),
        ("/index.html", "text/html; charset=utf-8"),
    ] {
        let r = get_full(addr, path, "").await;
        assert!(r.starts_with("HTTP/1.1 200"), "{path}: {r}");
        assert_eq!(header(&r, "content-type"), Some(ty), "{path}");
        assert_eq!(header(&r, "cache-control"), Some("no-cache"), "{path}");
    }
    let (status, access) = common::get(addr, "/ui/access.json").await;
    assert_eq!(status, 200, "{access}");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&access).unwrap(),
        serde_json::json!({"read_token_required": false, "tenant_header": null, "default_tenant": "anonymous"})
    );
    let missing = get_full(addr, "/ui/nope.js", "").await;
    assert!(missing.starts_with("HTTP/1.1 404"), "{missing}");

    // The other routes are untouched.
    let (status, body) = common::get(addr, "/healthy").await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = common::get(addr, "/api/v1/profile_types").await;
    assert_eq!((status, body.as_str()), (200, "[]"));
    let (status, body) = common::get(addr, "/metrics").await;
    assert_eq!(status, 200, "{body}");
    // A gRPC path without the gRPC content type is still refused as before.
    let (status, _) =
        common::post(addr, "/parca.query.v1alpha1.QueryService/ProfileTypes", b"").await;
    assert_eq!(status, 415);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ui_in_chromium_against_real_go_profiles() {
    if !browser_ready() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let go = common::GoApp::start(dir.path());
    let config = dir.path().join("strata.yaml");
    std::fs::write(
        &config,
        format!(
            r#"
scrape_configs:
  - job_name: goapp
    scrape_interval: 1s
    static_configs:
      - targets: ["{}"]
        labels: {{ env: test }}
"#,
            go.addr
        ),
    )
    .unwrap();
    let strata = Strata::start(&dir.path().join("data"), Some(&config));
    let addr = strata.addr;

    // Enough CPU profiles for a graph, a single profile and two ranges to compare.
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let (status, body) = common::get(
            addr,
            "/api/v1/query_range?query=process_cpu:cpu:nanoseconds:cpu:nanoseconds:delta&start=now-15m&end=now",
        )
        .await;
        assert_eq!(status, 200, "{body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        let points = v["series"][0]["points"].as_array().map_or(0, |p| p.len());
        let types = common::get(addr, "/api/v1/profile_types").await.1;
        if points >= 8 && types.contains("goroutine") && types.contains("block:delay") {
            break;
        }
        assert!(Instant::now() < deadline, "no CPU profiles after 90 s");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    let shots = workspace().join("target/ui-screenshots");
    let url = format!("http://{addr}/");
    let out =
        tokio::task::spawn_blocking(move || node("run.mjs", &[&url, shots.to_str().unwrap()]))
            .await
            .unwrap();
    assert!(out.contains("all UI checks passed"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn icicle_graph_paints_1m_stacks_within_budget() {
    if !browser_ready() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let engine = common::open_engine(dir.path()).await;
    let app = strata_server::App::new(engine);
    let (addr, _server) = common::spawn_server(app, std::future::pending()).await;
    let json = workspace().join("target/ui-screenshots/perf.json");
    std::fs::create_dir_all(json.parent().unwrap()).unwrap();
    let url = format!("http://{addr}");
    let out = tokio::task::spawn_blocking(move || {
        node("perf.mjs", &[&url, "--json", json.to_str().unwrap()])
    })
    .await
    .unwrap();
    assert!(out.contains("UI perf within budget"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ui_signs_in_with_a_read_token_and_picks_a_tenant() {
    const READ: &str = "ui-read-token-000001";
    const WRITE: &str = "ui-write-token-00001";
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("strata.yaml");
    std::fs::write(
        &config,
        format!(
            "auth: {{ read_tokens: [{READ}], write_tokens: [{WRITE}] }}\n\
             tenants: {{ enabled: true }}\n\
             scrape_configs: []\n"
        ),
    )
    .unwrap();
    let strata = Strata::start(&dir.path().join("data"), Some(&config));
    let addr = strata.addr;

    // What the UI learns before asking for anything.
    let (status, body) = common::get(addr, "/ui/access.json").await;
    assert_eq!(status, 200, "{body}");
    let access: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        access,
        serde_json::json!({
            "read_token_required": true,
            "tenant_header": "X-Scope-OrgID",
            "default_tenant": "anonymous",
        })
    );

    // One stack in tenant team-a, another in the default tenant (Pyroscope's /ingest, now).
    let client = reqwest::Client::new();
    for (tenant, leaf) in [
        (Some("team-a"), "only_in_team_a"),
        (None, "only_in_default"),
    ] {
        let mut req = client
            .post(format!("http://{addr}/ingest?name=app.cpu&format=folded"))
            .bearer_auth(WRITE)
            .body(format!("main;{leaf} 40\n"));
        if let Some(t) = tenant {
            req = req.header("X-Scope-OrgID", t);
        }
        let res = req.send().await.unwrap();
        assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    }
    if !browser_ready() {
        return;
    }
    let shots = workspace().join("target/ui-screenshots/access");
    let url = format!("http://{addr}/");
    let out = tokio::task::spawn_blocking(move || {
        node("access.mjs", &[&url, READ, shots.to_str().unwrap()])
    })
    .await
    .unwrap();
    assert!(out.contains("all access checks passed"), "{out}");
}
