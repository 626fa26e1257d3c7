//! The push requests of each front door, built before the timed phase, and a sender that
//! pushes them with some calls in flight and counts what was acknowledged.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use prost::Message;
use strata_proto::otlp::collector::profiles::v1development::ExportProfilesServiceRequest;
use strata_proto::otlp::collector::profiles::v1development::profiles_service_client::ProfilesServiceClient;
use strata_proto::parca::profile_store_service_client::ProfileStoreServiceClient;
use strata_proto::parca::{Label, LabelSet, RawProfileSeries, RawSample, WriteRawRequest};
use strata_proto::pyroscope::push::v1 as pyroscope;
use strata_proto::pyroscope::types::v1::LabelPair;
use tonic::transport::Channel;

use super::otlp::export_request;

/// A push protocol of the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Door {
    /// Parca's `ProfileStoreService/WriteRaw` over gRPC (HTTP/2).
    WriteRaw,
    /// The same call over gRPC-web (HTTP/1.1), as Parca's JavaScript client sends it.
    GrpcWeb,
    /// Pyroscope's `push.v1.PusherService/Push` over Connect (`application/proto`).
    Connect,
    /// Pyroscope's legacy `POST /ingest?format=pprof`.
    Ingest,
    /// OpenTelemetry's `ProfilesService/Export` over gRPC.
    Otlp,
}

impl Door {
    /// Every door, in the order the benchmark runs them.
    pub const ALL: [Door; 5] = [
        Door::WriteRaw,
        Door::GrpcWeb,
        Door::Connect,
        Door::Ingest,
        Door::Otlp,
    ];

    /// The name used in reports and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Door::WriteRaw => "writeraw",
            Door::GrpcWeb => "grpc-web",
            Door::Connect => "connect",
            Door::Ingest => "ingest",
            Door::Otlp => "otlp",
        }
    }

    /// The door named `name`.
    pub fn parse(name: &str) -> Option<Door> {
        Door::ALL.into_iter().find(|d| d.name() == name)
    }
}

/// One push, ready to send.
#[derive(Clone)]
pub enum PushBody {
    /// A Parca `WriteRaw` over gRPC.
    WriteRaw(WriteRawRequest),
    /// An OTLP export over gRPC.
    Otlp(ExportProfilesServiceRequest),
    /// An HTTP POST.
    Http {
        /// Path and query.
        path: String,
        /// Content type.
        content_type: &'static str,
        /// The body.
        body: bytes::Bytes,
    },
}

/// The profile type name part a file's profiles are pushed under.
fn name_of(file: &Path) -> &'static str {
    let f = file.to_string_lossy();
    if f.contains("heap") || f.contains("alloc") {
        "memory"
    } else {
        "process_cpu"
    }
}

/// The push of `raw` (a pprof file's bytes, as read) through `door`, into series `series`.
pub fn body(door: Door, file: &Path, raw: &[u8], series: usize) -> Result<PushBody, String> {
    let instance = format!("host-{series}");
    let name = name_of(file);
    Ok(match door {
        Door::WriteRaw | Door::GrpcWeb => {
            let label = |name: &str, value: &str| Label {
                name: name.to_owned(),
                value: value.to_owned(),
            };
            let req = WriteRawRequest {
                series: vec![RawProfileSeries {
                    labels: Some(LabelSet {
                        labels: vec![
                            label("__name__", name),
                            label("job", "bench"),
                            label("instance", &instance),
                        ],
                    }),
                    samples: vec![RawSample {
                        raw_profile: raw.to_vec(),
                    }],
                }],
                ..Default::default()
            };
            if door == Door::WriteRaw {
                PushBody::WriteRaw(req)
            } else {
                let message = req.encode_to_vec();
                let mut frame = Vec::with_capacity(message.len() + 5);
                frame.push(0u8);
                frame.extend_from_slice(&(message.len() as u32).to_be_bytes());
                frame.extend_from_slice(&message);
                PushBody::Http {
                    path: "/api/parca.profilestore.v1alpha1.ProfileStoreService/WriteRaw".into(),
                    content_type: "application/grpc-web+proto",
                    body: frame.into(),
                }
            }
        }
        Door::Connect => {
            let pair = |name: &str, value: &str| LabelPair {
                name: name.to_owned(),
                value: value.to_owned(),
            };
            let req = pyroscope::PushRequest {
                series: vec![pyroscope::RawProfileSeries {
                    labels: vec![
                        pair("__name__", name),
                        pair("service_name", "bench"),
                        pair("instance", &instance),
                    ],
                    samples: vec![pyroscope::RawSample {
                        raw_profile: raw.to_vec(),
                        id: String::new(),
                    }],
                    ..Default::default()
                }],
            };
            PushBody::Http {
                path: "/push.v1.PusherService/Push".into(),
                content_type: "application/proto",
                body: req.encode_to_vec().into(),
            }
        }
        Door::Ingest => {
            let kind = if name == "memory" {
                "inuse_space"
            } else {
                "cpu"
            };
            PushBody::Http {
                path: format!("/ingest?name=bench.{kind}%7Binstance%3D{instance}%7D&format=pprof"),
                content_type: "application/octet-stream",
                body: bytes::Bytes::copy_from_slice(raw),
            }
        }
        Door::Otlp => {
            let profile = strata_ingest::decode_pprof(raw, &strata_ingest::DecodeLimits::default())
                .map_err(|e| format!("{}: {e}", file.display()))?;
            let labels = [
                ("service.name".to_owned(), "bench".to_owned()),
                ("host.name".to_owned(), instance),
            ];
            PushBody::Otlp(export_request(&profile, &labels))
        }
    })
}

/// What a push of many bodies did.
#[derive(Debug, Default)]
pub struct Sent {
    /// Calls acknowledged.
    pub acked: u64,
    /// Calls that failed.
    pub failed: u64,
    /// The first failure.
    pub first_error: Option<String>,
}

/// The clients of one server.
#[derive(Clone)]
struct Clients {
    http: reqwest::Client,
    write_raw: ProfileStoreServiceClient<Channel>,
    otlp: ProfilesServiceClient<Channel>,
    url: String,
}

impl Clients {
    async fn connect(url: &str) -> Result<Clients, String> {
        let channel = Channel::from_shared(url.to_owned())
            .map_err(|e| format!("{url}: {e}"))?
            .connect()
            .await
            .map_err(|e| format!("connecting to {url}: {e}"))?;
        Ok(Clients {
            http: reqwest::Client::new(),
            write_raw: ProfileStoreServiceClient::new(channel.clone())
                .max_encoding_message_size(256 << 20),
            otlp: ProfilesServiceClient::new(channel).max_encoding_message_size(256 << 20),
            url: url.to_owned(),
        })
    }

    async fn send(&mut self, body: &PushBody) -> Result<(), String> {
        match body {
            PushBody::WriteRaw(req) => self
                .write_raw
                .write_raw(req.clone())
                .await
                .map(drop)
                .map_err(|s| s.to_string()),
            PushBody::Otlp(req) => self
                .otlp
                .export(req.clone())
                .await
                .map(drop)
                .map_err(|s| s.to_string()),
            PushBody::Http {
                path,
                content_type,
                body,
            } => {
                let response = self
                    .http
                    .post(format!("{}{path}", self.url))
                    .header("content-type", *content_type)
                    .body(body.clone())
                    .send()
                    .await
                    .map_err(|e| e.to_string())?;
                let status = response.status();
                let grpc_status = response
                    .headers()
                    .get("grpc-status")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
                let text = response.bytes().await.map_err(|e| e.to_string())?;
                let failed = !status.is_success()
                    || grpc_status.is_some_and(|s| s != "0")
                    || (content_type.starts_with("application/grpc-web")
                        && !String::from_utf8_lossy(&text).contains("grpc-status:0"));
                if failed {
                    return Err(format!("{status}: {}", String::from_utf8_lossy(&text)));
                }
                Ok(())
            }
        }
    }
}

/// Sends every body to the server at `url`, `concurrency` calls in flight.
pub async fn send_all(
    url: &str,
    bodies: Arc<Vec<PushBody>>,
    concurrency: usize,
) -> Result<Sent, String> {
    let clients = Clients::connect(url).await?;
    let next = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..concurrency.max(1))
        .map(|_| {
            let (mut clients, bodies, next) = (clients.clone(), bodies.clone(), next.clone());
            tokio::spawn(async move {
                let mut sent = Sent::default();
                while let Some(body) = bodies.get(next.fetch_add(1, Ordering::Relaxed)) {
                    match clients.send(body).await {
                        Ok(()) => sent.acked += 1,
                        Err(e) => {
                            sent.failed += 1;
                            sent.first_error.get_or_insert(e);
                        }
                    }
                }
                sent
            })
        })
        .collect();
    let mut total = Sent::default();
    for t in tasks {
        let s = t.await.map_err(|e| format!("push task: {e}"))?;
        total.acked += s.acked;
        total.failed += s.failed;
        if total.first_error.is_none() {
            total.first_error = s.first_error;
        }
    }
    Ok(total)
}
