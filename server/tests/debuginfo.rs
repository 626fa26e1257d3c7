//! Debug info and background symbolization, end to end, on a C program built in the test
//! (`gcc -g -O2`), stripped (`strip`) and split (`objcopy --only-keep-debug`):
//! - pushed unsymbolized (a pprof with the mapping and runtime addresses) to the `strata`
//!   binary, it shows `binary 0x<address>` frames and a "missing" status with the reason; its
//!   debug file uploaded with `strata debuginfo upload` (Parca's upload flow over gRPC), the
//!   same stored data — a flushed block too — shows what `addr2line -f -i -C` says, inlined
//!   frames included, and still does after a restart with the symbolizer off;
//! - an unstripped binary at the mapping's path is symbolized with no upload; a stripped one
//!   with no debug info anywhere stays "missing" and queries answer;
//! - bad uploads (another build id, truncated, not ELF, a stream broken off, out of order) get
//!   a clear gRPC status and leave nothing stored.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::native::{self, NativeProgram, Picked};
use common::strata::{Strata, wait_for};
use strata_engine::DebuginfoKind;
use strata_proto::parca::debuginfo::v1alpha1 as pb;
use strata_proto::parca::debuginfo::v1alpha1::debuginfo_service_client::DebuginfoServiceClient;
use tonic::Code;

/// Pushes (Parca `WriteRaw`, job `job`) a profile of `stacks` of `prog` mapped from `binary`.
async fn push(
    addr: std::net::SocketAddr,
    job: &str,
    prog: &NativeProgram,
    binary: &Path,
    stacks: &[&[u64]],
) {
    let now_ns = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64;
    let profile = prog.profile(binary, stacks, now_ns);
    common::write_raw(addr, "process_cpu", job, profile).await;
}

/// `strata <args>`, which must succeed; its stdout.
fn strata_cli(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_strata"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "strata {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Asserts that every picked address shows exactly what `addr2line -f -i -C` says.
fn assert_matches_addr2line(
    prog: &NativeProgram,
    picked: &Picked,
    stored: &std::collections::BTreeMap<u64, Vec<native::Frame>>,
) {
    let addresses = [picked.inlined, picked.compute, picked.outer, picked.main];
    let expected = prog.addr2line(&addresses);
    for (a, want) in addresses.iter().zip(expected) {
        let got = &stored[&(native::BASE + a)];
        assert_eq!(got, &want, "address {a:#x}");
    }
    assert_eq!(
        stored[&(native::BASE + picked.inlined)].len(),
        2,
        "an inline chain"
    );
}

/// Whether every picked address of the job's stored profile has frames.
async fn all_symbolized(addr: std::net::SocketAddr, job: &str, n: usize) -> bool {
    let stored = native::stored_frames(addr, job).await;
    stored.len() == n && stored.values().all(|f| !f.is_empty())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploaded_debug_info_symbolizes_data_stored_before_and_survives_restart() {
    let dir = tempfile::tempdir().unwrap();
    let prog = NativeProgram::build(dir.path(), 2);
    let p = prog.pick_addresses();
    let config = dir.path().join("strata.yaml");
    // Heads flush after a second, so the first profile is in a block before the upload.
    let write_config = |symbolizer: &str| {
        std::fs::write(
            &config,
            format!(
                "scrape_configs: []\nengine:\n  head: {{max_age: 1s, check_interval: 100ms}}\nsymbolizer: {symbolizer}\n"
            ),
        )
        .unwrap()
    };
    write_config("{debug_dirs: [], sweep_interval: 1s}");
    let data = dir.path().join("data");
    let strata = Strata::start(&data, Some(&config));
    let addr = strata.addr;

    // Two profiles of the stripped binary (mapped from its real path, so the symbolizer reads
    // it and finds no symbols): the first flushed to a block, the second after it.
    push(
        addr,
        "c",
        &prog,
        &prog.stripped,
        &[&[p.inlined, p.outer, p.main]],
    )
    .await;
    let blocks = data.join("blocks");
    wait_for("the first profile in a block", async || {
        std::fs::read_dir(&blocks)
            .is_ok_and(|d| d.flatten().any(|b| b.path().join("meta.json").exists()))
    })
    .await;
    push(
        addr,
        "c",
        &prog,
        &prog.stripped,
        &[&[p.compute, p.outer, p.main]],
    )
    .await;

    // Unsymbolized: `binary 0x<address>` frames, and the status says why, naming the fix.
    let name = |a: u64| format!("prog2.stripped {:#x}", native::BASE + a);
    assert_eq!(
        native::folded(addr, "c").await,
        [
            format!(
                "{};{};{} 100000000",
                name(p.main),
                name(p.outer),
                name(p.compute)
            ),
            format!(
                "{};{};{} 100000000",
                name(p.main),
                name(p.outer),
                name(p.inlined)
            ),
        ]
    );
    wait_for("the missing status", async || {
        native::debuginfo_status(addr, &prog.build_id).await["status"] == "missing"
    })
    .await;
    let status = native::debuginfo_status(addr, &prog.build_id).await;
    let reason = status["reason"].as_str().unwrap();
    assert!(reason.contains("strata debuginfo upload"), "{status}");
    assert_eq!(
        status["filenames"][0].as_str(),
        prog.stripped.to_str(),
        "{status}"
    );
    let listed = strata_cli(&["debuginfo", "status", "--server", &format!("http://{addr}")]);
    assert!(
        listed.contains(&prog.build_id) && listed.contains("missing"),
        "{listed}"
    );

    // The debug file, uploaded through the CLI (Parca's flow over gRPC)...
    let server = format!("http://{addr}");
    let debug = prog.debug.to_str().unwrap();
    let out = tokio::task::spawn_blocking({
        let server = server.clone();
        let debug = debug.to_owned();
        move || strata_cli(&["debuginfo", "upload", "--server", &server, &debug])
    })
    .await
    .unwrap();
    assert!(
        out.contains(&format!("uploaded as build id {}", prog.build_id)),
        "{out}"
    );
    // ...symbolizes both profiles, the flushed one included, as addr2line does.
    wait_for("the stored profiles to be symbolized", async || {
        all_symbolized(addr, "c", 4).await
    })
    .await;
    assert_matches_addr2line(&prog, &p, &native::stored_frames(addr, "c").await);
    assert_eq!(
        native::folded(addr, "c").await,
        [
            "main;outer;compute 100000000".to_owned(),
            "main;outer;compute;mix 100000000".to_owned(),
        ]
    );
    let status = native::debuginfo_status(addr, &prog.build_id).await;
    assert_eq!(status["status"], "found", "{status}");
    assert_eq!(status["source"]["kind"], "supplied", "{status}");
    assert_eq!(status["upload"]["state"], "uploaded", "{status}");
    let metrics = common::get(addr, "/metrics").await.1;
    assert!(
        metrics.contains("strata_symbolizer_build_ids{status=\"found\"} 1")
            && metrics.contains("strata_symbolizer_locations_symbolized_total 4"),
        "{metrics}"
    );
    let shown = strata_cli(&["debuginfo", "status", "--server", &server, &prog.build_id]);
    assert!(
        shown.contains("found") && shown.contains("uploaded file"),
        "{shown}"
    );
    // Uploading the same file again is not needed, and says so.
    let again = strata_cli(&["debuginfo", "upload", "--server", &server, debug]);
    assert!(
        again.contains("not uploaded: debug info already uploaded"),
        "{again}"
    );

    // The symbols are stored: a restart with the symbolizer off shows them.
    assert!(strata.stop().success());
    write_config("{enabled: false}");
    let strata = Strata::start(&data, Some(&config));
    let addr = strata.addr;
    assert_matches_addr2line(&prog, &p, &native::stored_frames(addr, "c").await);
    assert_eq!(
        native::debuginfo_status(addr, &prog.build_id).await["status"],
        "disabled"
    );
    assert!(strata.stop().success());
}

/// The symbolizer of the in-process tests: no debug directories, sweeps every second.
fn settings() -> strata_server::SymbolizerSettings {
    strata_server::SymbolizerSettings {
        debug_dirs: vec![],
        sweep_interval: Duration::from_secs(1),
        ..Default::default()
    }
}

/// An in-process server with the symbolizer on, over `dir`.
async fn start_app(
    dir: &Path,
    settings: strata_server::SymbolizerSettings,
) -> (std::net::SocketAddr, std::sync::Arc<strata_server::App>) {
    let engine = common::open_engine(&dir.join("data")).await;
    let symbolization =
        strata_server::Symbolization::start(engine.clone(), settings, dir.join("cache")).unwrap();
    let app = strata_server::App::with_symbolization(engine, Default::default(), symbolization);
    let (addr, _) = common::spawn_server(app.clone(), std::future::pending()).await;
    (addr, app)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binaries_on_disk_are_read_and_stripped_ones_stay_missing() {
    let dir = tempfile::tempdir().unwrap();
    let (addr, _app) = start_app(dir.path(), settings()).await;
    // The unstripped binary at the mapping's path: symbolized from the binary itself.
    let prog = NativeProgram::build(dir.path(), 3);
    let p = prog.pick_addresses();
    let stacks: &[&[u64]] = &[&[p.inlined, p.outer, p.main], &[p.compute, p.main]];
    push(addr, "full", &prog, &prog.unstripped, stacks).await;
    wait_for("the binary's profile to be symbolized", async || {
        all_symbolized(addr, "full", 4).await
    })
    .await;
    assert_matches_addr2line(&prog, &p, &native::stored_frames(addr, "full").await);
    let status = native::debuginfo_status(addr, &prog.build_id).await;
    assert_eq!(status["status"], "found", "{status}");
    assert_eq!(status["source"]["kind"], "binary", "{status}");
    assert_eq!(status["source"]["path"].as_str(), prog.unstripped.to_str());
    assert_eq!(status["content"]["dwarf"], true, "{status}");

    // Another build, stripped, with no debug info anywhere: missing, with the reason; the
    // query answers with addresses.
    let bare = NativeProgram::build(dir.path(), 5);
    let q = bare.pick_addresses();
    push(addr, "bare", &bare, &bare.stripped, &[&[q.outer, q.main]]).await;
    wait_for("the stripped build's status", async || {
        native::debuginfo_status(addr, &bare.build_id).await["status"] == "missing"
    })
    .await;
    let status = native::debuginfo_status(addr, &bare.build_id).await;
    assert!(!status["reason"].as_str().unwrap().is_empty(), "{status}");
    assert_eq!(
        native::folded(addr, "bare").await,
        [format!(
            "prog5.stripped {:#x};prog5.stripped {:#x} 100000000",
            native::BASE + q.main,
            native::BASE + q.outer
        )]
    );
    // Every build id seen is listed.
    let (_, body) = common::get(addr, "/api/v1/debuginfo/status").await;
    let all: serde_json::Value = serde_json::from_str(&body).unwrap();
    let ids: Vec<&str> = all["build_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["build_id"].as_str().unwrap())
        .collect();
    assert!(
        ids.contains(&prog.build_id.as_str()) && ids.contains(&bare.build_id.as_str()),
        "{body}"
    );
    let (code, body) = common::get(addr, "/api/v1/debuginfo/status?build_id=a%20b").await;
    assert_eq!(code, 400, "{body}");
}

type Client = DebuginfoServiceClient<tonic::transport::Channel>;

async fn initiate(c: &mut Client, build_id: &str, size: usize) -> Result<String, tonic::Status> {
    let r = c
        .initiate_upload(pb::InitiateUploadRequest {
            build_id: build_id.into(),
            size: size as i64,
            hash: "h".into(),
            ..Default::default()
        })
        .await?
        .into_inner();
    let i = r.upload_instructions.unwrap();
    assert_eq!(
        i.upload_strategy,
        pb::upload_instructions::UploadStrategy::Grpc as i32
    );
    Ok(i.upload_id)
}

fn messages(build_id: &str, upload_id: &str, data: &[u8]) -> Vec<pb::UploadRequest> {
    let info = pb::UploadRequest {
        data: Some(pb::upload_request::Data::Info(pb::UploadInfo {
            build_id: build_id.into(),
            upload_id: upload_id.into(),
            r#type: 0,
        })),
    };
    std::iter::once(info)
        .chain(data.chunks(4096).map(|c| pb::UploadRequest {
            data: Some(pb::upload_request::Data::ChunkData(c.to_vec())),
        }))
        .collect()
}

async fn upload(
    c: &mut Client,
    build_id: &str,
    upload_id: &str,
    data: &[u8],
) -> Result<u64, tonic::Status> {
    let m = messages(build_id, upload_id, data);
    Ok(c.upload(futures::stream::iter(m)).await?.into_inner().size)
}

async fn should(c: &mut Client, build_id: &str) -> (bool, String) {
    let r = c
        .should_initiate_upload(pb::ShouldInitiateUploadRequest {
            build_id: build_id.into(),
            hash: "h".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    (r.should_initiate_upload, r.reason)
}

fn assert_refused(r: Result<impl std::fmt::Debug, tonic::Status>, code: Code, text: &str) {
    let e = r.unwrap_err();
    assert_eq!(e.code(), code, "{e:?}");
    assert!(e.message().contains(text), "{e:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_uploads_get_a_clear_status_and_store_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let small = strata_server::SymbolizerSettings {
        max_upload_bytes: 1 << 20,
        upload_timeout: Duration::from_secs(2),
        ..settings()
    };
    let (addr, app) = start_app(dir.path(), small).await;
    let prog = NativeProgram::build(dir.path(), 7);
    let debug = std::fs::read(&prog.debug).unwrap();
    let id = prog.build_id.as_str();
    let other = "00112233445566778899aabbccddeeff00112233";
    let mut c = Client::connect(format!("http://{addr}")).await.unwrap();
    let store = app.default_store().engine.debuginfo();
    let nothing_stored = async |build_id: &str| {
        let kind = DebuginfoKind::Debuginfo;
        store.meta(build_id, kind).await.unwrap().is_none()
            && !store.has_file(build_id, kind).await.unwrap()
    };

    // Refused, each leaving nothing and retried at once: another binary's debug file under
    // this build id, not an ELF file, fewer bytes than announced, more than announced.
    let junk = vec![7u8; 5000];
    let foreign = format!("build id is {id}");
    let cases: [(&str, usize, &[u8], &str); 4] = [
        (other, debug.len(), &debug, &foreign),
        (other, junk.len(), &junk, "not an ELF file"),
        (
            id,
            debug.len(),
            &debug[..debug.len() / 2],
            "truncated upload",
        ),
        (id, debug.len() - 1, &debug, "larger than"),
    ];
    for (build_id, size, data, why) in cases {
        let u = initiate(&mut c, build_id, size).await.unwrap();
        let refused = upload(&mut c, build_id, &u, data).await;
        assert_refused(refused, Code::InvalidArgument, why);
        assert!(nothing_stored(build_id).await, "{why}");
        assert!(should(&mut c, build_id).await.0, "{why}");
    }
    // A connection lost mid-upload (a proxy in between drops it after the first chunk).
    let u = initiate(&mut c, id, debug.len()).await.unwrap();
    let (proxy, cut) = common::native::cuttable_proxy(addr).await;
    let mut through = Client::connect(format!("http://{proxy}")).await.unwrap();
    let first = messages(id, &u, &debug[..4096]);
    let stalled =
        futures::StreamExt::chain(futures::stream::iter(first), futures::stream::pending());
    let call = tokio::spawn(async move { through.upload(stalled).await });
    wait_for("the first chunk to pass", async || cut.bytes() > 4096).await;
    // Time for the server to take the stream up (a stream it never took up has no upload to
    // abandon: its record goes stale after upload_timeout instead).
    tokio::time::sleep(Duration::from_millis(500)).await;
    cut.cut();
    let e = call
        .await
        .unwrap()
        .expect_err("a cut upload stream succeeded");
    assert!(
        matches!(
            e.code(),
            Code::Unavailable | Code::Unknown | Code::Internal | Code::Cancelled
        ),
        "{e:?}"
    );
    wait_for("the broken upload to be dropped", async || {
        nothing_stored(id).await
    })
    .await;
    // Out of order: no InitiateUpload; MarkUploadFinished before Upload; too large.
    assert_refused(
        upload(&mut c, id, "nope", &debug).await,
        Code::FailedPrecondition,
        "InitiateUpload first",
    );
    let u = initiate(&mut c, id, debug.len()).await.unwrap();
    let (again, reason) = should(&mut c, id).await;
    assert!(!again && reason.contains("in progress"), "{reason}");
    assert_refused(
        initiate(&mut c, id, debug.len()).await,
        Code::FailedPrecondition,
        "in progress",
    );
    let finish = |upload_id: String| pb::MarkUploadFinishedRequest {
        build_id: id.into(),
        upload_id,
        r#type: 0,
    };
    assert_refused(
        c.mark_upload_finished(finish(u.clone())).await,
        Code::FailedPrecondition,
        "call Upload first",
    );
    assert_refused(
        initiate(&mut c, id, 2 << 20).await,
        Code::ResourceExhausted,
        "symbolizer.max_upload_bytes",
    );
    assert_refused(
        initiate(&mut c, "not hex!", 10).await,
        Code::InvalidArgument,
        "invalid build id",
    );

    // The good upload, continuing the last initiated one; then nothing more is needed.
    assert_eq!(
        upload(&mut c, id, &u, &debug).await.unwrap(),
        debug.len() as u64
    );
    c.mark_upload_finished(finish(u)).await.unwrap();
    assert_eq!(
        store
            .file(id, DebuginfoKind::Debuginfo)
            .await
            .unwrap()
            .unwrap(),
        debug
    );
    let (again, reason) = should(&mut c, id).await;
    assert!(!again && reason.contains("already uploaded"), "{reason}");
    assert_refused(
        initiate(&mut c, id, debug.len()).await,
        Code::AlreadyExists,
        "already uploaded",
    );
    // A forced re-upload that fails leaves the first one in place.
    let forced = c
        .initiate_upload(pb::InitiateUploadRequest {
            build_id: id.into(),
            size: junk.len() as i64,
            hash: "h2".into(),
            force: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .upload_instructions
        .unwrap()
        .upload_id;
    assert_refused(
        upload(&mut c, id, &forced, &junk).await,
        Code::InvalidArgument,
        "not an ELF file",
    );
    let meta = store
        .meta(id, DebuginfoKind::Debuginfo)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(meta.state, strata_engine::UploadState::Uploaded);
    assert_eq!(meta.hash, "h");
    assert_eq!(
        store
            .file(id, DebuginfoKind::Debuginfo)
            .await
            .unwrap()
            .unwrap(),
        debug
    );

    // An upload initiated and never continued goes stale (upload_timeout: 2 s here).
    initiate(&mut c, other, debug.len()).await.unwrap();
    assert!(!should(&mut c, other).await.0);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let (again, reason) = should(&mut c, other).await;
    assert!(again && reason.contains("stale"), "{reason}");
}
