//! Bearer tokens, tenants and TLS, over real gRPC (tonic clients), real HTTP (reqwest) and a
//! real TLS handshake (rustls client, certificate made by `openssl`).

mod common;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use strata_ingest::PprofBuilder;
use strata_proto::parca::profile_store_service_client::ProfileStoreServiceClient;
use strata_proto::parca::{Label, LabelSet, RawProfileSeries, RawSample, WriteRawRequest};
use strata_server::{App, AppSettings, AuthConfig, TenantStore, Tenants, TenantsConfig};

const READ: &str = "read-token-for-tests-0001";
const WRITE: &str = "write-token-for-tests-0001";
const CPU: &str = "process_cpu:samples:count:cpu:nanoseconds:delta";

/// A CPU profile whose one stack is `main;<leaf>`, `samples` times.
fn cpu_profile(leaf: &str, samples: i64) -> Vec<u8> {
    let mut b = PprofBuilder::new(
        &[("samples", "count"), ("cpu", "nanoseconds")],
        ("cpu", "nanoseconds"),
        10_000_000,
    );
    b.time(1_700_000_000_000_000_000, 0).sample(
        &[leaf, "main"],
        &[samples, samples * 10_000_000],
        &[],
    );
    b.encode()
}

fn write_request(job: &str, leaf: &str, samples: i64, tenant: &str) -> WriteRawRequest {
    let label = |name: &str, value: &str| Label {
        name: name.into(),
        value: value.into(),
    };
    WriteRawRequest {
        tenant: tenant.into(),
        series: vec![RawProfileSeries {
            labels: Some(LabelSet {
                labels: vec![label("__name__", "process_cpu"), label("job", job)],
            }),
            samples: vec![RawSample {
                raw_profile: cpu_profile(leaf, samples),
            }],
        }],
        ..Default::default()
    }
}

/// `request` with `name: value` metadata.
fn with_metadata<T>(request: T, entries: &[(&'static str, &str)]) -> tonic::Request<T> {
    let mut r = tonic::Request::new(request);
    for (name, value) in entries {
        r.metadata_mut().insert(*name, value.parse().unwrap());
    }
    r
}

/// WriteRaw with the given metadata; the status code.
async fn write_raw(
    addr: SocketAddr,
    request: WriteRawRequest,
    metadata: &[(&'static str, &str)],
) -> tonic::Code {
    let mut client = ProfileStoreServiceClient::connect(format!("http://{addr}"))
        .await
        .unwrap();
    match client.write_raw(with_metadata(request, metadata)).await {
        Ok(_) => tonic::Code::Ok,
        Err(status) => status.code(),
    }
}

/// GET with headers: status, body.
async fn get(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> (u16, String) {
    let mut r = reqwest::Client::new().get(format!("http://{addr}{path}"));
    for (k, v) in headers {
        r = r.header(*k, *v);
    }
    let r = r.send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

/// Where the tests' profiles are: around 1,700,000,000 s.
const WINDOW: &str = "start=1699990000&end=1700010000";
/// Pyroscope's /ingest of folded text into [`WINDOW`].
const INGEST: &str = "/ingest?name=app.cpu&format=folded&from=1700000000&until=1700000010";

/// The folded stacks (`main;leaf value` lines) of every CPU profile the headers may see.
async fn folded(addr: SocketAddr, headers: &[(&str, &str)]) -> String {
    let path = format!(
        "/api/v1/query?query={}&{WINDOW}&report=folded",
        urlencode(&format!("{CPU}{{}}"))
    );
    let (status, body) = get(addr, &path, headers).await;
    assert_eq!(status, 200, "{body}");
    body
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn store(dir: &std::path::Path) -> strata_engine::EngineConfig {
    let mut config = strata_engine::EngineConfig::new(dir);
    config.background = false;
    config
}

async fn single_store(dir: &std::path::Path) -> TenantStore {
    let engine = strata_engine::Engine::open(store(dir)).await.unwrap();
    TenantStore::new(
        "anonymous",
        engine,
        strata_server::Symbolization::disabled(Default::default()),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_and_write_tokens_guard_every_route() {
    let dir = tempfile::tempdir().unwrap();
    let settings = AppSettings {
        auth: AuthConfig {
            read_tokens: vec![READ.into()],
            write_tokens: vec![WRITE.into()],
        },
        ..Default::default()
    };
    let app = App::with_tenants(Tenants::single(single_store(dir.path()).await), settings);
    let (addr, _server) = common::spawn_server(app, std::future::pending()).await;
    let bearer = |t: &str| format!("Bearer {t}");

    // gRPC writes: no token, a read token, a wrong token, the write token.
    let req = || write_request("a", "work", 3, "");
    assert_eq!(
        write_raw(addr, req(), &[]).await,
        tonic::Code::Unauthenticated
    );
    let read = bearer(READ);
    let write = bearer(WRITE);
    assert_eq!(
        write_raw(addr, req(), &[("authorization", &read)]).await,
        tonic::Code::PermissionDenied
    );
    assert_eq!(
        write_raw(
            addr,
            req(),
            &[("authorization", "Bearer not-a-token-0000000")]
        )
        .await,
        tonic::Code::Unauthenticated
    );
    assert_eq!(
        write_raw(addr, req(), &[("authorization", &write)]).await,
        tonic::Code::Ok
    );

    // HTTP writes (Pyroscope /ingest).
    let ingest = |token: Option<&str>| {
        let mut r = reqwest::Client::new()
            .post(format!("http://{addr}{INGEST}"))
            .body("main;ingested 5\n");
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        async move { r.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(ingest(None).await, 401);
    assert_eq!(ingest(Some(READ)).await, 403);
    assert_eq!(ingest(Some(WRITE)).await, 200);

    // Reads: HTTP query API, /metrics, gRPC QueryService.
    let labels = "/api/v1/labels";
    let (status, body) = get(addr, labels, &[]).await;
    assert_eq!(status, 401);
    assert!(body.contains("needs a read token"), "{body}");
    assert_eq!(get(addr, labels, &[("authorization", &write)]).await.0, 403);
    let (status, body) = get(addr, labels, &[("authorization", &read)]).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("job"), "{body}");
    assert_eq!(get(addr, "/metrics", &[]).await.0, 401);
    assert_eq!(
        get(addr, "/metrics", &[("authorization", &read)]).await.0,
        200
    );
    assert_eq!(get(addr, "/healthy", &[]).await.0, 200);
    assert_eq!(get(addr, "/", &[]).await.0, 200);

    use strata_proto::parca::query::v1alpha1 as q;
    let mut query = q::query_service_client::QueryServiceClient::connect(format!("http://{addr}"))
        .await
        .unwrap();
    let denied = query
        .profile_types(q::ProfileTypesRequest::default())
        .await
        .unwrap_err();
    assert_eq!(denied.code(), tonic::Code::Unauthenticated);
    assert!(denied.message().contains("read token"), "{denied:?}");
    let types = query
        .profile_types(with_metadata(
            q::ProfileTypesRequest::default(),
            &[("authorization", &read)],
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(!types.types.is_empty());

    // `strata debuginfo upload` sends --token over gRPC: refused at the gate without it; with
    // the write token it is stored.
    let upload = move |token: Option<&str>| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_strata"));
        cmd.args(["debuginfo", "upload", "--server", &format!("http://{addr}")]);
        if let Some(t) = token {
            cmd.args(["--token", t]);
        }
        let out = cmd
            .arg("/bin/true")
            .env_remove("STRATA_TOKEN")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout) + String::from_utf8_lossy(&out.stderr);
        (out.status.success(), text.into_owned())
    };
    let refused = tokio::task::spawn_blocking(move || upload(None))
        .await
        .unwrap();
    assert!(
        !refused.0 && refused.1.contains("Unauthenticated"),
        "{refused:?}"
    );
    let passed = tokio::task::spawn_blocking(move || upload(Some(WRITE)))
        .await
        .unwrap();
    assert!(
        passed.0 && passed.1.contains("/bin/true: uploaded as build id"),
        "{passed:?}"
    );

    // Only the accepted writes are stored: 3 samples over gRPC, 5 over /ingest.
    let all = folded(addr, &[("authorization", &read)]).await;
    assert_eq!(lines(&all), ["main;ingested 5", "main;work 3"], "{all}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenants_keep_their_data_apart() {
    let dir = tempfile::tempdir().unwrap();
    let config = TenantsConfig {
        enabled: true,
        max_tenants: 2,
        ..Default::default()
    };
    let template = strata_server::tenants::TenantTemplate {
        engine: store(dir.path()),
        symbolizer: Default::default(),
        role: strata_server::StoreRole::Owner,
        distribution: None,
    };
    let tenants = Tenants::new(config, single_store(dir.path()).await, Some(template));
    let app = App::with_tenants(tenants, AppSettings::default());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let (addr, server) = common::spawn_server(app.clone(), async {
        let _ = stopped.await;
    })
    .await;

    // Tenant a by header (gRPC metadata), b by Parca's tenant field, the default by neither; a
    // header wins over the field.
    let org = "x-scope-orgid";
    let ok = tonic::Code::Ok;
    assert_eq!(
        write_raw(addr, write_request("j", "in_a", 2, ""), &[(org, "a")]).await,
        ok
    );
    assert_eq!(
        write_raw(addr, write_request("j", "in_b", 3, "b"), &[]).await,
        ok
    );
    assert_eq!(
        write_raw(addr, write_request("j", "in_default", 4, ""), &[]).await,
        ok
    );
    assert_eq!(
        write_raw(addr, write_request("j", "also_a", 5, "b"), &[(org, "a")]).await,
        ok
    );
    // Pyroscope's /ingest with the header.
    let status = reqwest::Client::new()
        .post(format!("http://{addr}{INGEST}"))
        .header("X-Scope-OrgID", "b")
        .body("main;pyro_b 7\n")
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 200);

    let a = folded(addr, &[("X-Scope-OrgID", "a")]).await;
    let b = folded(addr, &[("X-Scope-OrgID", "b")]).await;
    let default = folded(addr, &[]).await;
    assert_eq!(lines(&a), ["main;also_a 5", "main;in_a 2"], "{a}");
    assert_eq!(lines(&b), ["main;in_b 3", "main;pyro_b 7"], "{b}");
    assert_eq!(lines(&default), ["main;in_default 4"], "{default}");
    // Naming the default tenant is the same as naming none.
    assert_eq!(
        folded(addr, &[("X-Scope-OrgID", "anonymous")]).await,
        default
    );
    // Labels and values come from the tenant's store only.
    let (_, b_names) = get(
        addr,
        "/api/v1/labels/service_name/values",
        &[("X-Scope-OrgID", "b")],
    )
    .await;
    assert!(b_names.contains("app"), "{b_names}");
    let (_, a_names) = get(
        addr,
        "/api/v1/labels/service_name/values",
        &[("X-Scope-OrgID", "a")],
    )
    .await;
    assert_eq!(a_names, "[]");

    // Bad ids and one tenant too many.
    let (status, body) = get(addr, "/api/v1/labels", &[("X-Scope-OrgID", "../etc")]).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("tenant id"), "{body}");
    let (status, body) = get(addr, "/api/v1/labels", &[("X-Scope-OrgID", "c")]).await;
    assert_eq!(status, 429, "{body}");
    assert!(body.contains("tenants.max_tenants"), "{body}");
    assert_eq!(
        write_raw(addr, write_request("j", "x", 1, ""), &[(org, "c")]).await,
        tonic::Code::ResourceExhausted
    );
    assert_eq!(app.limit_counters.get(strata_server::Limit::Tenants), 2);

    // Each tenant's store is its own directory, and survives a restart.
    assert!(dir.path().join("tenants/a/wal").is_dir());
    assert!(dir.path().join("tenants/b/wal").is_dir());
    app.tenants.close().await.unwrap();
    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
    drop(app);
    let reopened = strata_engine::Engine::open(store(&dir.path().join("tenants/a")))
        .await
        .unwrap();
    let stacks = common::stored_stacks(&reopened, CPU).await;
    let leaves: Vec<&str> = stacks.iter().map(|s| s.folded.as_str()).collect();
    assert_eq!(leaves, ["main;also_a", "main;in_a"]);
}

fn lines(folded: &str) -> Vec<&str> {
    let mut v: Vec<&str> = folded.lines().filter(|l| !l.is_empty()).collect();
    v.sort();
    v
}

/// A certificate for `localhost` and 127.0.0.1 signed by a CA of its own, made by `openssl`:
/// (CA certificate, certificate, key).
fn certificate(dir: &std::path::Path) -> (PathBuf, PathBuf, PathBuf) {
    let openssl = |args: &[&str]| {
        let out = std::process::Command::new("openssl")
            .current_dir(dir)
            .args(args)
            .output()
            .expect("openssl runs (scripts/test installs it)");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    openssl(
        &[
            &["req", "-x509", "-days", "2", "-subj", "/CN=strata test CA"],
            &ec[..],
            &["-keyout", "ca.key", "-out", "ca.pem"],
        ]
        .concat(),
    );
    openssl(
        &[
            &["req", "-subj", "/CN=localhost"],
            &ec[..],
            &["-keyout", "key.pem", "-out", "leaf.csr"],
        ]
        .concat(),
    );
    std::fs::write(
        dir.join("leaf.ext"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
    )
    .unwrap();
    openssl(&[
        "x509",
        "-req",
        "-in",
        "leaf.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "leaf.ext",
        "-out",
        "cert.pem",
    ]);
    (
        dir.join("ca.pem"),
        dir.join("cert.pem"),
        dir.join("key.pem"),
    )
}

/// A rustls client trusting only `cert`, offering `alpn`.
fn tls_connector(cert: &std::path::Path, alpn: &[&[u8]]) -> tokio_rustls::TlsConnector {
    use tokio_rustls::rustls;
    use tokio_rustls::rustls::pki_types::CertificateDer;
    use tokio_rustls::rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(cert).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_listener_serves_grpc_and_http() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = certificate(dir.path());
    let tls = strata_server::TlsConfig {
        cert_file: cert,
        key_file: key,
        handshake_timeout: std::time::Duration::from_secs(10),
    };
    tls.validate().unwrap();
    let data = dir.path().join("data");
    let app = App::with_tenants(
        Tenants::single(single_store(&data).await),
        Default::default(),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let _server = tokio::spawn(async move {
        strata_server::serve(app, listener, Some(&tls), std::future::pending()).await
    });

    // gRPC (HTTP/2 negotiated by ALPN) over TLS: WriteRaw.
    let connector = tls_connector(&ca, &[b"h2"]);
    let channel = tonic::transport::Endpoint::from_static("http://localhost")
        .connect_with_connector(tower::service_fn(move |_: tonic::codegen::http::Uri| {
            let connector = connector.clone();
            async move {
                let tcp = tokio::net::TcpStream::connect(addr).await?;
                let name = "localhost".try_into().unwrap();
                let tls = connector.connect(name, tcp).await?;
                assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
                Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(tls))
            }
        }))
        .await
        .unwrap();
    ProfileStoreServiceClient::new(channel)
        .write_raw(write_request("tls", "secret_work", 6, ""))
        .await
        .unwrap();

    // HTTP/1.1 over TLS: the query API answers with what was pushed.
    let connector = tls_connector(&ca, &[b"http/1.1"]);
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut tls = connector
        .connect("localhost".try_into().unwrap(), tcp)
        .await
        .unwrap();
    let path = format!(
        "/api/v1/query?query={}&{WINDOW}&report=folded",
        urlencode(&format!("{CPU}{{job=\"tls\"}}"))
    );
    tls.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .unwrap();
    let mut response = Vec::new();
    let _ = tls.read_to_end(&mut response).await;
    let response = String::from_utf8_lossy(&response);
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains("main;secret_work 6"), "{response}");

    // Plain HTTP on the TLS port gets no answer; a client that does not trust the
    // certificate fails its handshake.
    let (status, _) = plain_get(addr).await;
    assert_eq!(status, None);
    let other_dir = tempfile::tempdir().unwrap();
    let (other_ca, _, _) = certificate(other_dir.path());
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let refused = tls_connector(&other_ca, &[b"http/1.1"])
        .connect("localhost".try_into().unwrap(), tcp)
        .await;
    let e = refused.expect_err("a client trusting another CA connected");
    assert!(e.to_string().contains("certificate"), "{e}");
}

/// A plain-text GET /healthy: the status, if an HTTP answer came.
async fn plain_get(addr: SocketAddr) -> (Option<u16>, Vec<u8>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let _ = s
        .write_all(b"GET /healthy HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await;
    let mut out = Vec::new();
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), s.read_to_end(&mut out)).await;
    let status = out
        .starts_with(b"HTTP/")
        .then(|| String::from_utf8_lossy(&out[9..12]).parse().ok())
        .flatten();
    (status, out)
}

/// Each scrape target's (scrape_pool, health, last_error) from `/api/v1/targets`; "up" is a
/// scrape fetched and stored.
async fn target_health(client: &reqwest::Client, base: &str) -> Vec<(String, String, String)> {
    let body = client
        .get(format!("{base}/api/v1/targets"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    v["data"]["activeTargets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["scrapePool"].as_str().unwrap().to_owned(),
                t["health"].as_str().unwrap().to_owned(),
                t["lastError"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scraper_verifies_https_targets() {
    use common::strata::{Strata, wait_for};
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = certificate(dir.path());

    // A server on TLS scrapes itself over https (its default job).
    let tls_config = dir.path().join("tls.yaml");
    std::fs::write(
        &tls_config,
        format!(
            "tls: {{ cert_file: {}, key_file: {} }}\n",
            cert.display(),
            key.display()
        ),
    )
    .unwrap();
    let secure = Strata::start(&dir.path().join("secure"), Some(&tls_config));
    let https = format!("https://localhost:{}", secure.addr.port());
    let trusting = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&std::fs::read(&ca).unwrap()).unwrap())
        .build()
        .unwrap();

    // A plain server scrapes it: trusting the CA by tls_config, skipping verification, and
    // with the system's CAs only (refused). The server profiles one request at a time (its
    // own 10 s scrape included), so the timeout leaves room to wait.
    let job = |name: &str, tls: &str| {
        format!(
            "  - job_name: {name}\n    scheme: https\n    scrape_interval: 20s\n{tls}\
             \x20   static_configs: [{{ targets: [\"localhost:{}\"] }}]\n\
             \x20   profiling_config:\n      pprof_config:\n\
             \x20       process_cpu: {{ seconds: 1 }}\n\
             \x20       memory: {{ enabled: false }}\n        goroutine: {{ enabled: false }}\n\
             \x20       mutex: {{ enabled: false }}\n        block: {{ enabled: false }}\n",
            secure.addr.port()
        )
    };
    let scrape_config = dir.path().join("scrape.yaml");
    std::fs::write(
        &scrape_config,
        format!(
            "scrape_configs:\n{}{}{}",
            job(
                "by_ca",
                &format!("    tls_config: {{ ca_file: {} }}\n", ca.display())
            ),
            job(
                "unverified",
                "    tls_config: { insecure_skip_verify: true }\n"
            ),
            job("system_roots", ""),
        ),
    )
    .unwrap();
    let scraper = Strata::start(&dir.path().join("scraper"), Some(&scrape_config));
    let plain = reqwest::Client::new();
    let base = format!("http://{}", scraper.addr);
    wait_for("two https jobs scraped, one refused", async || {
        let t = target_health(&plain, &base).await;
        let up = |job: &str| t.iter().any(|(j, h, _)| j == job && h == "up");
        let refused = t
            .iter()
            .any(|(j, h, e)| j == "system_roots" && h == "down" && e.contains("certificate"));
        up("by_ca") && up("unverified") && refused
    })
    .await;

    // The TLS server's own scrape (10 s profiles, over https to itself) succeeds too.
    wait_for("the TLS server to scrape itself", async || {
        target_health(&trusting, &https)
            .await
            .iter()
            .any(|(j, h, _)| j == "strata" && h == "up")
    })
    .await;
}

#[test]
fn bad_tls_config_is_refused() {
    let jobs = |yaml: &str| -> Vec<strata_server::scrape::ScrapeJob> {
        serde_yaml::from_str(yaml).unwrap()
    };
    let err = strata_server::scrape::validate(&jobs(
        "- { job_name: a, scheme: http, tls_config: { insecure_skip_verify: true } }",
    ))
    .unwrap_err();
    assert!(err.to_string().contains("set scheme: https"), "{err}");
    let missing = strata_server::scrape::ScrapeTlsConfig {
        ca_file: Some("/nonexistent/ca.pem".into()),
        insecure_skip_verify: false,
    };
    assert!(
        missing
            .client()
            .unwrap_err()
            .contains("/nonexistent/ca.pem")
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("empty.pem"), "not a certificate\n").unwrap();
    let empty = strata_server::scrape::ScrapeTlsConfig {
        ca_file: Some(dir.path().join("empty.pem")),
        insecure_skip_verify: false,
    };
    let e = empty
        .client()
        .expect_err("a CA file without a certificate was taken");
    assert!(e.to_string().contains("empty.pem"), "{e}");
}
