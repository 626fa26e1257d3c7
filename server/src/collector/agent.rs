//! `strata agent`: the eBPF collector pushing to a remote store (Strata or Parca) through
//! Parca's `WriteRaw`, one pprof profile per process per interval ([`write_raw_request`]).

use std::collections::HashMap;
use std::sync::Arc;

use prost::Message;
use strata_collector_ebpf::{IntervalProfiles, ProcessProfile, SamplerConfig, SamplerHandle};
use strata_proto::parca::profilestore::v1alpha1::{
    Label, LabelSet, RawProfileSeries, RawSample, WriteRawRequest,
    profile_store_service_client::ProfileStoreServiceClient,
};
use strata_proto::pprof;

/// The `__name__` of the pushed series: with the pprof's sample and period types it names
/// `parca_agent:samples:count:cpu:nanoseconds:delta`, as Parca's agent does.
pub const PROFILE_NAME: &str = "parca_agent";

/// What a pushed profile measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Measure {
    /// CPU samples: sample type `samples/count`, period type `cpu/nanoseconds`.
    Cpu,
    /// Off-CPU time: sample and period type `off_cpu/nanoseconds`, period 1.
    OffCpu,
}

/// One process's interval as a pprof profile of `measure`.
pub fn to_pprof(p: &ProcessProfile, iv: &IntervalProfiles, measure: Measure) -> pprof::Profile {
    let mut strings: Vec<String> = vec![String::new()];
    let mut string_ids: HashMap<String, i64> = HashMap::new();
    let mut s = |v: &str| -> i64 {
        if v.is_empty() {
            return 0;
        }
        *string_ids.entry(v.to_owned()).or_insert_with(|| {
            strings.push(v.to_owned());
            strings.len() as i64 - 1
        })
    };
    let (sample, period_type, period) = match measure {
        Measure::Cpu => (("samples", "count"), "cpu", iv.period_ns),
        Measure::OffCpu => (("off_cpu", "nanoseconds"), "off_cpu", 1),
    };
    let mut out = pprof::Profile {
        sample_type: vec![pprof::ValueType {
            r#type: s(sample.0),
            unit: s(sample.1),
        }],
        period_type: Some(pprof::ValueType {
            r#type: s(period_type),
            unit: s("nanoseconds"),
        }),
        period,
        time_nanos: iv.timestamp_ns - iv.duration_ns,
        duration_nanos: iv.duration_ns,
        ..Default::default()
    };
    let mut mappings: HashMap<*const strata_collector_ebpf::FrameMapping, u64> = HashMap::new();
    let mut functions: HashMap<Arc<str>, u64> = HashMap::new();
    let mut locations: HashMap<(u64, u64, Option<u64>), u64> = HashMap::new();
    for (frames, count) in &p.stacks {
        let mut ids = Vec::with_capacity(frames.len());
        for f in frames {
            let mapping_id = match &f.mapping {
                Some(m) => *mappings.entry(Arc::as_ptr(m)).or_insert_with(|| {
                    let id = out.mapping.len() as u64 + 1;
                    out.mapping.push(pprof::Mapping {
                        id,
                        memory_start: m.memory_start,
                        memory_limit: m.memory_limit,
                        file_offset: m.file_offset,
                        filename: s(&m.filename),
                        build_id: s(&m.build_id),
                        has_functions: f.function.is_some(),
                        ..Default::default()
                    });
                    id
                }),
                None => 0,
            };
            let function_id = f.function.as_ref().map(|name| {
                *functions.entry(name.clone()).or_insert_with(|| {
                    let id = out.function.len() as u64 + 1;
                    out.function.push(pprof::Function {
                        id,
                        name: s(name),
                        system_name: s(name),
                        ..Default::default()
                    });
                    id
                })
            });
            let id = *locations
                .entry((mapping_id, f.address, function_id))
                .or_insert_with(|| {
                    let id = out.location.len() as u64 + 1;
                    out.location.push(pprof::Location {
                        id,
                        mapping_id,
                        address: f.address,
                        line: function_id
                            .map(|function_id| pprof::Line {
                                function_id,
                                ..Default::default()
                            })
                            .into_iter()
                            .collect(),
                        ..Default::default()
                    });
                    id
                });
            ids.push(id);
        }
        out.sample.push(pprof::Sample {
            location_id: ids,
            value: vec![*count as i64],
            ..Default::default()
        });
    }
    out.string_table = strings;
    out
}

/// An interval as one `WriteRaw` request: a series per process and measure (CPU, off-CPU),
/// labelled with `__name__="parca_agent"` and the process labels (plus `extra` labels, e.g.
/// `node`).
pub fn write_raw_request(iv: &IntervalProfiles, extra: &[(String, String)]) -> WriteRawRequest {
    let series = iv
        .processes
        .iter()
        .map(|p| (p, Measure::Cpu))
        .chain(iv.off_cpu.iter().map(|p| (p, Measure::OffCpu)))
        .map(|(p, measure)| {
            let labels = std::iter::once(("__name__".to_owned(), PROFILE_NAME.to_owned()))
                .chain(p.labels.iter().cloned())
                .chain(extra.iter().cloned())
                .map(|(name, value)| Label { name, value })
                .collect();
            RawProfileSeries {
                labels: Some(LabelSet { labels }),
                samples: vec![RawSample {
                    raw_profile: to_pprof(p, iv, measure).encode_to_vec(),
                }],
            }
        })
        .collect();
    WriteRawRequest {
        series,
        ..Default::default()
    }
}

/// Runs the collector and pushes every interval to `remote_store` (e.g.
/// `http://host:7070`) until the returned handle is dropped. `None` when the kernel refuses
/// BPF. A failed push is logged and that interval is lost (the next one is tried afresh).
pub fn start(
    remote_store: String,
    config: SamplerConfig,
    extra_labels: Vec<(String, String)>,
    bearer_token: Option<String>,
) -> Option<SamplerHandle> {
    let extra = Arc::new(extra_labels);
    let authorization: Option<tonic::metadata::MetadataValue<tonic::metadata::Ascii>> =
        bearer_token.and_then(|t| format!("Bearer {t}").parse().ok());
    super::in_process::spawn_with_sink(config, move |iv| {
        let remote_store = remote_store.clone();
        let extra = extra.clone();
        let authorization = authorization.clone();
        async move {
            if iv.is_empty() {
                return;
            }
            let mut req = tonic::Request::new(write_raw_request(&iv, &extra));
            if let Some(value) = authorization {
                req.metadata_mut().insert("authorization", value);
            }
            let result = async {
                let mut client = ProfileStoreServiceClient::connect(remote_store.clone()).await?;
                client
                    .write_raw(req)
                    .await
                    .map_err(|e| Box::new(e) as Box<dyn std::error::Error + Send + Sync>)?;
                Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
            }
            .await;
            match result {
                Ok(()) => tracing::info!(
                    processes = iv.processes.len(),
                    samples = iv.total_samples(),
                    "agent: pushed an interval"
                ),
                Err(e) => tracing::warn!(error = %e, %remote_store, "agent: push failed"),
            }
        }
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use strata_collector_ebpf::{Frame, FrameMapping};

    #[test]
    fn pushed_interval_ingests_as_the_parca_agent_type() {
        let m = Arc::new(FrameMapping {
            filename: "/bin/app".into(),
            build_id: "abcd".into(),
            memory_start: 0x1000,
            memory_limit: 0x9000,
            file_offset: 0,
        });
        let frame = |address, name: Option<&str>| Frame {
            address,
            kernel: false,
            mapping: Some(m.clone()),
            function: name.map(Arc::from),
            ..Default::default()
        };
        let iv = IntervalProfiles {
            timestamp_ns: 1_700_000_010_000_000_000,
            duration_ns: 10_000_000_000,
            period_ns: 52_631_578,
            processes: vec![ProcessProfile {
                pid: 42,
                labels: vec![("pid".into(), "42".into()), ("comm".into(), "app".into())],
                stacks: vec![
                    (
                        vec![frame(0x1100, Some("leaf")), frame(0x1200, Some("main"))],
                        7,
                    ),
                    (vec![frame(0x1300, None), frame(0x1200, Some("main"))], 3),
                ],
            }],
            off_cpu: vec![ProcessProfile {
                pid: 42,
                labels: vec![("pid".into(), "42".into()), ("comm".into(), "app".into())],
                stacks: vec![(
                    vec![frame(0x1400, Some("wait")), frame(0x1200, Some("main"))],
                    40_000_000,
                )],
            }],
        };
        let req = write_raw_request(&iv, &[("node".into(), "n1".into())]);
        let batch = strata_ingest::parca_write_raw(
            &req,
            &strata_ingest::DecodeLimits::default(),
            iv.timestamp_ns,
            &mut strata_ingest::DeltaTracker::new(10),
        )
        .unwrap();
        assert_eq!(
            batch.profile_types()[0].to_string(),
            strata_collector_ebpf::PROFILE_TYPE
        );
        // Two CPU samples and the off-CPU one.
        assert_eq!(batch.num_samples(), 3);
        let series = &batch.series()[0];
        assert_eq!(series.get("comm"), Some("app"));
        assert_eq!(series.get("node"), Some("n1"));
        let names: Vec<_> = batch
            .symbols()
            .functions
            .iter()
            .map(|f| f.name.as_str())
            .collect();
        assert!(
            names.contains(&"leaf") && names.contains(&"main"),
            "{names:?}"
        );
        assert_eq!(batch.symbols().mappings[0].build_id, "abcd");

        // The off-CPU profile goes in the same request, as its own type and series.
        let req = write_raw_request(&iv, &[]);
        assert_eq!(req.series.len(), 2);
        let off = WriteRawRequest {
            series: vec![req.series[1].clone()],
            ..Default::default()
        };
        let batch = strata_ingest::parca_write_raw(
            &off,
            &strata_ingest::DecodeLimits::default(),
            iv.timestamp_ns,
            &mut strata_ingest::DeltaTracker::new(10),
        )
        .unwrap();
        assert_eq!(
            batch.profile_types()[0].to_string(),
            strata_collector_ebpf::OFF_CPU_PROFILE_TYPE
        );
        assert_eq!(batch.num_samples(), 1);
    }

    /// Spins a shell loop as a child process, killed on drop.
    /// The kernel refused BPF: the test fails, unless `STRATA_SKIP_EBPF=1` skips it.
    pub(crate) fn bpf_refused() {
        let skip = std::env::var("STRATA_SKIP_EBPF").is_ok_and(|v| v == "1");
        assert!(
            skip,
            "the kernel refused BPF here; set STRATA_SKIP_EBPF=1 to skip this test"
        );
        eprintln!("skipped (STRATA_SKIP_EBPF=1): the kernel refused BPF");
    }

    pub(crate) struct Burner(pub(crate) std::process::Child);

    impl Burner {
        pub(crate) fn start() -> Burner {
            Burner(
                std::process::Command::new("sh")
                    .args(["-c", "while :; do :; done"])
                    .spawn()
                    .unwrap(),
            )
        }
    }

    impl Drop for Burner {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    /// The pids (label `pid`) stored under the collector's profile type.
    async fn stored_pids(engine: &strata_engine::Engine) -> Vec<String> {
        let pt: strata_engine::ProfileType = strata_collector_ebpf::PROFILE_TYPE.parse().unwrap();
        engine
            .label_values("pid", Some(&pt), &[], strata_engine::TimeRange::ALL)
            .await
            .unwrap()
    }

    /// Whether samples of `pid` reach `engine` within 30 s.
    pub(crate) async fn wait_until_stored(engine: &strata_engine::Engine, pid: &str) -> bool {
        for _ in 0..60 {
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            if stored_pids(engine).await.iter().any(|p| p == pid) {
                return true;
            }
        }
        false
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn agent_pushes_to_a_server_over_write_raw() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = strata_engine::EngineConfig::new(dir.path());
        config.background = false;
        let engine = strata_engine::Engine::open(config).await.unwrap();
        // The store takes pushes with a write token only: the agent sends it.
        const TOKEN: &str = "agent-write-token-0001";
        let store = crate::TenantStore::new(
            "anonymous",
            engine.clone(),
            crate::Symbolization::disabled(Default::default()),
        );
        let settings = crate::AppSettings {
            auth: crate::AuthConfig {
                read_tokens: vec![],
                write_tokens: vec![TOKEN.into()],
            },
            ..Default::default()
        };
        let app = crate::App::with_tenants(crate::Tenants::single(store), settings);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(crate::serve(app, listener, None, async {
            let _ = stop_rx.await;
        }));
        let burner = Burner::start();
        let config = SamplerConfig {
            frequency_hz: 99,
            interval: std::time::Duration::from_secs(1),
            ..Default::default()
        };
        let Some(handle) = start(
            format!("http://{addr}"),
            config,
            vec![("node".into(), "test".into())],
            Some(TOKEN.into()),
        ) else {
            bpf_refused();
            return;
        };
        let want = burner.0.id().to_string();
        let found = wait_until_stored(&engine, &want).await;
        tokio::task::spawn_blocking(move || handle.stop())
            .await
            .unwrap();
        let _ = stop_tx.send(());
        let _ = server.await;
        assert!(
            found,
            "the busy shell (pid {want}) never reached the server"
        );
        let nodes = engine
            .label_values(
                "node",
                Some(&strata_collector_ebpf::PROFILE_TYPE.parse().unwrap()),
                &[],
                strata_engine::TimeRange::ALL,
            )
            .await
            .unwrap();
        assert_eq!(nodes, vec!["test".to_string()]);
    }
}
