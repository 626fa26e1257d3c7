//! `strata debuginfo upload FILE…` (Parca's upload flow over gRPC: ShouldInitiateUpload,
//! InitiateUpload, Upload, MarkUploadFinished, each file under the build id read from it) and
//! `strata debuginfo status [BUILD_ID…]` (the server's `/api/v1/debuginfo/status`).

use std::path::{Path, PathBuf};

use anyhow::{Context, anyhow, bail};
use clap::Subcommand;
use strata_proto::parca::debuginfo::v1alpha1 as pb;
use strata_proto::parca::debuginfo::v1alpha1::debuginfo_service_client::DebuginfoServiceClient;
use strata_symbolizer::{BuildId, BuildIdKind};
use tonic::transport::Channel;

use strata_server::client::BuildIdStatus;

use crate::query::{self as client, ClientArgs, Output};

/// Bytes per `Upload` message.
const CHUNK_BYTES: usize = 1 << 20;

/// `strata debuginfo` subcommands.
#[derive(Subcommand)]
pub enum DebuginfoCommand {
    /// Upload debug info: ELF files (an unstripped binary, or what `objcopy --only-keep-debug`
    /// writes), each stored under the build id read from it.
    Upload {
        /// The server (gRPC, the same port as HTTP), a write token and the tenant.
        #[command(flatten)]
        client: ClientArgs,
        /// Upload even if the server already has debug info for the build id.
        #[arg(long)]
        force: bool,
        /// The files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Per build id: debug info found, missing or failed, and why (default: every build id
    /// seen).
    Status {
        #[command(flatten)]
        client: ClientArgs,
        /// Build ids to report on.
        build_ids: Vec<String>,
    },
}

/// Runs a `strata debuginfo` command.
pub async fn run(command: DebuginfoCommand) -> anyhow::Result<()> {
    match command {
        DebuginfoCommand::Upload {
            client,
            force,
            files,
        } => upload(&client, force, &files).await,
        DebuginfoCommand::Status { client, build_ids } => status(&client, &build_ids).await,
    }
}

/// The debug info client, sending the token and the tenant with every call.
type UploadClient = DebuginfoServiceClient<
    tonic::service::interceptor::InterceptedService<
        Channel,
        Box<dyn FnMut(tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> + Send>,
    >,
>;

async fn upload(args: &ClientArgs, force: bool, files: &[PathBuf]) -> anyhow::Result<()> {
    let server = args.server();
    let metadata = args.grpc_metadata()?;
    let channel = Channel::from_shared(server.to_owned())
        .with_context(|| format!("--server {server}: not a URL"))?
        .connect()
        .await
        .with_context(|| format!("connecting to {server}"))?;
    let mut client: UploadClient = DebuginfoServiceClient::with_interceptor(
        channel,
        Box::new(move |mut req: tonic::Request<()>| {
            for (key, value) in &metadata {
                req.metadata_mut().insert(*key, value.clone());
            }
            Ok(req)
        }),
    );
    let mut failed = 0;
    for file in files {
        match upload_one(&mut client, file, force).await {
            Ok(done) => println!("{}: {done}", file.display()),
            Err(e) => {
                eprintln!("{}: {e:#}", file.display());
                failed += 1;
            }
        }
    }
    if failed > 0 {
        bail!("{failed} of {} files not uploaded", files.len());
    }
    Ok(())
}

fn grpc(what: &'static str) -> impl FnOnce(tonic::Status) -> anyhow::Error {
    move |s| anyhow!("{what}: {:?}: {}", s.code(), s.message())
}

fn sha256_hex(data: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, data)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

async fn upload_one(client: &mut UploadClient, file: &Path, force: bool) -> anyhow::Result<String> {
    let data = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let id = BuildId::of(&data[..]).ok_or_else(|| anyhow!("not an ELF file"))?;
    let build_id_type = match id.kind {
        BuildIdKind::Gnu => pb::BuildIdType::Gnu,
        BuildIdKind::FileHash => pb::BuildIdType::Hash,
        BuildIdKind::Go => pb::BuildIdType::UnknownUnspecified,
    } as i32;
    let hash = sha256_hex(&data);
    let should = client
        .should_initiate_upload(pb::ShouldInitiateUploadRequest {
            build_id: id.id.clone(),
            hash: hash.clone(),
            force,
            r#type: pb::DebuginfoType::DebuginfoUnspecified as i32,
            build_id_type,
        })
        .await
        .map_err(grpc("ShouldInitiateUpload"))?
        .into_inner();
    if !should.should_initiate_upload {
        return Ok(format!(
            "build id {} not uploaded: {}",
            id.id, should.reason
        ));
    }
    let instructions = client
        .initiate_upload(pb::InitiateUploadRequest {
            build_id: id.id.clone(),
            size: data.len() as i64,
            hash,
            force,
            r#type: pb::DebuginfoType::DebuginfoUnspecified as i32,
            build_id_type,
        })
        .await
        .map_err(grpc("InitiateUpload"))?
        .into_inner()
        .upload_instructions
        .context("InitiateUpload answered without upload instructions")?;
    if instructions.upload_strategy != pb::upload_instructions::UploadStrategy::Grpc as i32 {
        bail!(
            "the server asks for upload strategy {}; this client uploads over gRPC only",
            instructions.upload_strategy
        );
    }
    let info = pb::UploadRequest {
        data: Some(pb::upload_request::Data::Info(pb::UploadInfo {
            build_id: id.id.clone(),
            upload_id: instructions.upload_id.clone(),
            r#type: pb::DebuginfoType::DebuginfoUnspecified as i32,
        })),
    };
    let chunks = data.chunks(CHUNK_BYTES).map(|c| pb::UploadRequest {
        data: Some(pb::upload_request::Data::ChunkData(c.to_vec())),
    });
    let messages: Vec<pb::UploadRequest> = std::iter::once(info).chain(chunks).collect();
    let uploaded = client
        .upload(futures::stream::iter(messages))
        .await
        .map_err(grpc("Upload"))?
        .into_inner();
    client
        .mark_upload_finished(pb::MarkUploadFinishedRequest {
            build_id: id.id.clone(),
            upload_id: instructions.upload_id,
            r#type: pb::DebuginfoType::DebuginfoUnspecified as i32,
        })
        .await
        .map_err(grpc("MarkUploadFinished"))?;
    Ok(format!(
        "uploaded as build id {} ({} bytes)",
        uploaded.build_id, uploaded.size
    ))
}

async fn status(args: &ClientArgs, build_ids: &[String]) -> anyhow::Result<()> {
    let api = args.client();
    if args.output() == Output::Json {
        let params: Vec<(&str, String)> =
            build_ids.iter().map(|b| ("build_id", b.clone())).collect();
        return client::emit_json(&api.get_bytes("/api/v1/debuginfo/status", &params).await?);
    }
    let answer = api.debuginfo_status(build_ids).await?;
    let rows: Vec<Vec<String>> = answer
        .build_ids
        .iter()
        .map(|r| {
            let detail = match r.status.as_str() {
                "found" => found_detail(r),
                _ => r.reason.clone(),
            };
            vec![
                r.build_id.clone(),
                r.status.clone(),
                r.filenames.join(","),
                detail,
            ]
        })
        .collect();
    client::print_table(&["BUILD ID", "STATUS", "FILES", "DETAIL"], &rows);
    Ok(())
}

/// Where found debug info came from and what it holds, e.g. `uploaded file (dwarf, symtab)`.
fn found_detail(r: &BuildIdStatus) -> String {
    use strata_symbolizer::DebugInfoSource as S;
    let from = match &r.source {
        Some(S::Supplied) => "uploaded file".to_owned(),
        Some(S::Debuginfod { url }) => format!("debuginfod {url}"),
        Some(S::BuildIdDir { path } | S::Binary { path }) => path.display().to_string(),
        None => String::new(),
    };
    let content = r.content.unwrap_or_default();
    let held: Vec<&str> = [
        ("dwarf", content.dwarf),
        ("symtab", content.symtab),
        ("go_pclntab", content.go_pclntab),
    ]
    .into_iter()
    .filter_map(|(name, has)| has.then_some(name))
    .collect();
    format!("{from} ({})", held.join(", "))
}
