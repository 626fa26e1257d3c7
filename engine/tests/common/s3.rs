//! A real S3 API for tests: a local `moto_server` (PyPI `moto[server]`, installed by
//! `scripts/test`), a bucket in it, and an engine config storing blocks there.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use object_store::ObjectStore;
use strata_engine::EngineConfig;

/// A running `moto_server`, killed on drop.
pub struct S3Server {
    child: Child,
    pub port: u16,
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts `moto_server`. If it is not installed, the test fails, unless `STRATA_SKIP_S3=1`
/// is set: then this says SKIPPED and returns `None`, and the test passes without running.
pub fn start_s3() -> Option<S3Server> {
    let port = free_port();
    let spawned = Command::new("moto_server")
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    let child = match spawned {
        Ok(child) => child,
        Err(e)
            if e.kind() == std::io::ErrorKind::NotFound
                && std::env::var("STRATA_SKIP_S3").is_ok_and(|v| v == "1") =>
        {
            eprintln!("SKIPPED: moto_server is not installed and STRATA_SKIP_S3=1 is set");
            return None;
        }
        Err(e) => panic!(
            "cannot run moto_server ({e}): run ./scripts/test, which installs moto[server] \
             from PyPI, or set STRATA_SKIP_S3=1 to skip the tests that need it"
        ),
    };
    let server = S3Server { child, port };
    let start = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "moto_server did not start"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    Some(server)
}

/// `PUT /<bucket>`: S3 CreateBucket, over plain HTTP/1.1.
pub fn create_bucket(port: u16, bucket: &str) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(s, "PUT /{bucket} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").unwrap();
    let mut response = String::new();
    s.read_to_string(&mut response).unwrap();
    assert!(
        response.starts_with("HTTP/1.1 200"),
        "CreateBucket failed: {response}"
    );
}

/// The bucket the tests use and the prefix under it the engine stores into.
pub const BUCKET: &str = "strata-test";
pub const PREFIX: &str = "cluster-a";

fn s3_options(port: u16) -> [(&'static str, String); 5] {
    [
        ("aws_endpoint", format!("http://127.0.0.1:{port}")),
        ("aws_allow_http", "true".into()),
        ("aws_access_key_id", "test".into()),
        ("aws_secret_access_key", "test".into()),
        ("aws_region", "us-east-1".into()),
    ]
}

/// [`super::test_config`] with blocks in `s3://strata-test/cluster-a` at `port`.
pub fn s3_config(dir: &std::path::Path, port: u16) -> EngineConfig {
    let mut c = super::test_config(dir);
    c.storage.url = Some(format!("s3://{BUCKET}/{PREFIX}"));
    for (k, v) in s3_options(port) {
        c.storage.options.insert(k.into(), v);
    }
    c
}

/// A client of the bucket at `port`, to look at what the engine stored.
pub fn direct_client(port: u16) -> Arc<dyn ObjectStore> {
    let url = url::Url::parse(&format!("s3://{BUCKET}")).unwrap();
    let (store, _) = object_store::parse_url_opts(&url, s3_options(port)).unwrap();
    Arc::from(store)
}
