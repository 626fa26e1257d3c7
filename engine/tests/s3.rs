//! Blocks on a real S3 API: a local `moto_server` (PyPI `moto[server]`, installed by
//! `scripts/test`) speaks the S3 protocol; the engine stores its blocks there through
//! `object_store`'s S3 client, flushes, compacts, reopens and applies retention.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use strata_engine::{Engine, EngineConfig, LabelMatcher, TimeRange};

struct S3Server {
    child: Child,
    port: u16,
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_s3() -> S3Server {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new("moto_server")
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("moto_server not found: run ./scripts/test, which installs moto[server] from PyPI");
    let server = S3Server { child, port };
    let start = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "moto_server did not start"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    server
}

/// `PUT /<bucket>`: S3 CreateBucket, over plain HTTP/1.1.
fn create_bucket(port: u16, bucket: &str) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(s, "PUT /{bucket} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").unwrap();
    let mut response = String::new();
    s.read_to_string(&mut response).unwrap();
    assert!(
        response.starts_with("HTTP/1.1 200"),
        "CreateBucket failed: {response}"
    );
}

fn s3_config(dir: &std::path::Path, port: u16) -> EngineConfig {
    let mut c = test_config(dir);
    c.storage.url = Some("s3://strata-test/cluster-a".into());
    for (k, v) in [
        ("aws_endpoint", format!("http://127.0.0.1:{port}")),
        ("aws_allow_http", "true".into()),
        ("aws_access_key_id", "test".into()),
        ("aws_secret_access_key", "test".into()),
        ("aws_region", "us-east-1".into()),
    ] {
        c.storage.options.insert(k.into(), v);
    }
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocks_live_in_s3() {
    let s3 = start_s3();
    create_bucket(s3.port, "strata-test");
    let dir = tempfile::tempdir().unwrap();
    let config = s3_config(dir.path(), s3.port);
    let mut model = Vec::new();
    {
        let engine = Engine::open(config.clone()).await.unwrap();
        for round in 0..3 {
            let r = rows(round * 100);
            engine.append(&batch(&r)).await.unwrap();
            model.extend(r);
            engine.flush().await.unwrap();
        }
        let merged = engine.compact().await.unwrap().expect("three blocks merge");
        assert_eq!(merged.num_samples, 120);
        let r = rows(1000);
        engine.append(&batch(&r)).await.unwrap();
        model.extend(r);
        engine.close().await.unwrap();
    }
    // Nothing but the WAL and the lock on local disk.
    assert!(!dir.path().join("blocks").exists());

    let mut config = config;
    config.retention.max_bytes = Some(1);
    let engine = Engine::open(config).await.unwrap();
    assert_eq!(engine.open_report().blocks, 1);
    assert_eq!(engine.open_report().replay.samples, 40);
    let types = profile_types();
    for (i, pt) in types.iter().enumerate() {
        let ms = vec![LabelMatcher::equal("job", "j1")];
        assert_eq!(
            scan_all(&engine, pt, ms.clone(), TimeRange::ALL).await,
            model_scan(&model, i, &ms, TimeRange::ALL)
        );
    }
    assert_eq!(
        engine
            .label_values("job", None, &[], TimeRange::ALL)
            .await
            .unwrap(),
        vec!["j0", "j1", "j2"]
    );
    let resolved = engine.resolve_stacks(&[stack_id_of(3)]).await.unwrap();
    assert_eq!(resolved.stacks[&stack_id_of(3)].len(), 4);

    // Retention by size drops the block from S3; the head's samples remain.
    let dropped = engine.apply_retention().await.unwrap();
    assert_eq!(dropped.len(), 1);
    assert!(engine.blocks().is_empty());
    let left = scan_all(&engine, &types[0], vec![], TimeRange::ALL).await;
    assert_eq!(left, model_scan(&model[120..], 0, &[], TimeRange::ALL));
    engine.close().await.unwrap();
}
