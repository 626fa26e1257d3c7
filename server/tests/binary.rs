//! The `strata` binary itself: with no config it scrapes its own `/debug/pprof/profile`
//! (which `go tool pprof` reads), SIGHUP reloads `scrape_configs`, SIGTERM stops it cleanly.

mod common;

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::strata::{Strata, wait_for};

async fn targets(addr: std::net::SocketAddr) -> Vec<serde_json::Value> {
    let (status, body) = common::get(addr, "/api/v1/targets").await;
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    v["data"]["activeTargets"].as_array().unwrap().clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_scrapes_itself_reloads_on_sighup_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let strata = Strata::start(&dir.path().join("data"), None);
    let addr = strata.addr;

    // With no config, the server's own CPU profile is its one scrape target.
    let t = targets(addr).await;
    assert_eq!(t.len(), 1, "{t:?}");
    assert_eq!(t[0]["scrapePool"], "strata");
    assert_eq!(
        t[0]["scrapeUrl"],
        format!("http://{addr}/debug/pprof/profile?seconds=10")
    );

    // Its CPU profile, taken while it is kept busy, is a pprof file `go tool pprof` reads.
    // (The request may first wait for the self-scrape's own 10 s profile to end, so the server
    // is kept busy until the response arrives.)
    let done = Arc::new(AtomicBool::new(false));
    let busy = tokio::spawn({
        let done = done.clone();
        async move {
            while !done.load(Ordering::Relaxed) {
                let _ = common::get(addr, "/metrics").await;
            }
        }
    });
    let profile = {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(
            b"GET /debug/pprof/profile?seconds=2 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        )
        .await
        .unwrap();
        let mut out = Vec::new();
        s.read_to_end(&mut out).await.unwrap();
        let split = out.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
        assert!(
            out.starts_with(b"HTTP/1.1 200"),
            "{}",
            String::from_utf8_lossy(&out)
        );
        out[split + 4..].to_vec()
    };
    done.store(true, Ordering::Relaxed);
    busy.await.unwrap();
    let decoded = strata_ingest::decode_pprof(&profile, &Default::default()).unwrap();
    assert!(
        !decoded.sample.is_empty(),
        "a busy server's profile has samples"
    );
    let file = dir.path().join("strata.pprof");
    std::fs::write(&file, &profile).unwrap();
    let top = Command::new("go")
        .args(["tool", "pprof", "-top", "-nodecount=200"])
        .arg(&file)
        .output()
        .expect("go tool pprof runs");
    let text = String::from_utf8_lossy(&top.stdout);
    assert!(
        top.status.success(),
        "{}",
        String::from_utf8_lossy(&top.stderr)
    );
    assert!(text.contains("Type: cpu"), "{text}");
    assert!(text.contains("tokio"), "{text}");

    // SIGHUP: the config file now names other targets; the running set follows it.
    let config = dir.path().join("strata.yaml");
    std::fs::write(
        &config,
        "scrape_configs:\n  - job_name: other\n    static_configs: [{targets: [\"127.0.0.1:9\"]}]\n",
    )
    .unwrap();
    // (The server was started without --config: a reload keeps scraping itself.)
    strata.signal("-HUP");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(targets(addr).await.len(), 1);
    drop(strata);

    let strata = Strata::start(&dir.path().join("data"), Some(&config));
    let addr = strata.addr;
    assert_eq!(targets(addr).await.len(), 5, "Go's five endpoints");
    std::fs::write(&config, "scrape_configs: []\n").unwrap();
    strata.signal("-HUP");
    wait_for("the reload to drop every target", async || {
        targets(addr).await.is_empty()
    })
    .await;
    // A config that does not parse is refused and the running one kept.
    std::fs::write(
        &config,
        "scrape_configs:\n  - job_name: a\n    static_configs: [{targets: [\"127.0.0.1:9\"]}]\n",
    )
    .unwrap();
    strata.signal("-HUP");
    wait_for("the reload to add one job", async || {
        targets(addr).await.len() == 5
    })
    .await;
    std::fs::write(
        &config,
        "scrape_configs: [{job_name: a, scrape_interval: nonsense}]\n",
    )
    .unwrap();
    strata.signal("-HUP");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(targets(addr).await.len(), 5, "a bad file changes nothing");

    // SIGTERM: a clean exit.
    let status = strata.stop();
    assert!(status.success(), "{status}");
}
