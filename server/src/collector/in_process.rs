//! The eBPF collector inside the server: [`start_in_process`] runs a
//! [`strata_collector_ebpf::Sampler`] on its own thread and appends every interval to the
//! engine; its counters go to `/metrics` ([`write_metrics`]).

use std::fmt::Write;
use std::sync::{Arc, OnceLock};

use strata_collector_ebpf::{IntervalProfiles, SamplerConfig, SamplerHandle, SamplerStats};
use tokio::sync::mpsc;

use crate::tenants::TenantStore;

/// The running collector's counters, for `/metrics` (set once a collector has started).
static STATS: OnceLock<Arc<SamplerStats>> = OnceLock::new();

/// Starts the collector thread and hands each interval to `sink` on the tokio runtime.
/// `None` (with the reason logged) when the kernel refuses BPF, e.g. without privileges.
pub fn spawn_with_sink<F, Fut>(config: SamplerConfig, sink: F) -> Option<SamplerHandle>
where
    F: Fn(IntervalProfiles) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    // A short queue: if the sink falls behind, intervals are dropped (and logged), never queued
    // without bound.
    let (tx, mut rx) = mpsc::channel::<IntervalProfiles>(4);
    let handle = match strata_collector_ebpf::spawn(config, move |p| {
        if tx.try_send(p).is_err() {
            tracing::warn!("collector: the sink is behind; dropping an interval");
        }
    }) {
        Ok(h) => h,
        Err(e) => {
            tracing::info!(error = %e, "eBPF collector not started");
            return None;
        }
    };
    let _ = STATS.set(handle.stats().clone());
    tokio::spawn(async move {
        while let Some(p) = rx.recv().await {
            sink(p).await;
        }
    });
    Some(handle)
}

/// Runs the collector in this process, storing each interval's batch in `store` (the default
/// tenant's) and handing its unsymbolized locations to that store's symbolizer at once, as a
/// push does, so frames of binaries with uploaded or local debug info are named without
/// waiting for a sweep. `None` when the kernel refuses BPF (no privileges); the server runs on
/// without it.
pub fn start_in_process(store: Arc<TenantStore>, config: SamplerConfig) -> Option<SamplerHandle> {
    spawn_with_sink(config, move |profiles| {
        let store = store.clone();
        async move {
            if profiles.is_empty() {
                return;
            }
            let batch = match profiles.to_batch() {
                Ok(b) => b,
                Err(e) => {
                    tracing::error!(error = %e, "collector: building a batch");
                    return;
                }
            };
            if let Err(e) = store.store(&batch, &[]).await {
                tracing::error!(error = %e, "collector: storing a batch");
            }
        }
    })
}

/// Appends the collector's counters (when one runs) and this process' CPU time and RSS to a
/// Prometheus text exposition.
pub fn write_metrics(out: &mut String) {
    use std::sync::atomic::Ordering::Relaxed;
    let Some(s) = STATS.get() else {
        return;
    };
    let mut stops = String::new();
    let _ = writeln!(
        stops,
        "# HELP strata_collector_unwind_stops_total User stacks walked with the unwind tables, by why the walk ended (end: the outermost frame).\n# TYPE strata_collector_unwind_stops_total counter"
    );
    for (reason, n) in strata_collector_ebpf::UNWIND_STOPS
        .iter()
        .zip(&s.unwind.stops)
    {
        let _ = writeln!(
            stops,
            "strata_collector_unwind_stops_total{{reason=\"{reason}\"}} {}",
            n.load(Relaxed)
        );
    }
    let mut metric = |name: &str, kind: &str, help: &str, value: f64| {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
        );
    };
    metric(
        "strata_collector_samples_total",
        "counter",
        "Stack samples received from the eBPF collector.",
        s.samples.load(Relaxed) as f64,
    );
    metric(
        "strata_collector_dropped_samples_total",
        "counter",
        "Samples the kernel dropped because the collector's ring buffer or counts map was full.",
        s.drops.load(Relaxed) as f64,
    );
    metric(
        "strata_collector_records_total",
        "counter",
        "Records read from the kernel (one per sample through the ring buffer; one per distinct stack and poll through the counts map).",
        s.records.load(Relaxed) as f64,
    );
    metric(
        "strata_collector_off_cpu_sampled_total",
        "counter",
        "Blocks whose stacks the off-CPU program took (collector.off_cpu.sample_ratio of all).",
        s.off_cpu_sampled.load(Relaxed) as f64,
    );
    metric(
        "strata_collector_off_cpu_records_total",
        "counter",
        "Off-CPU records received (sampled blocks of at least collector.off_cpu.min_block).",
        s.off_cpu_records.load(Relaxed) as f64,
    );
    metric(
        "strata_collector_off_cpu_dropped_total",
        "counter",
        "Off-CPU records the kernel side lost (ring buffer or task storage full).",
        s.off_cpu_drops.load(Relaxed) as f64,
    );
    metric(
        "strata_collector_processes",
        "gauge",
        "Processes whose state the collector holds.",
        s.processes.load(Relaxed) as f64,
    );
    metric(
        "strata_collector_elf_files",
        "gauge",
        "ELF files (build ids, symbols) the collector holds.",
        s.elf_files.load(Relaxed) as f64,
    );
    let u = &s.unwind;
    for (name, kind, help, value) in [
        (
            "strata_collector_unwind_table_capacity_bytes",
            "gauge",
            "BPF map memory reserved for unwind rows (collector.unwind_table_max_bytes).",
            &u.capacity_bytes,
        ),
        (
            "strata_collector_unwind_table_bytes",
            "gauge",
            "Bytes of unwind rows loaded (8 per row, shared by build id across processes).",
            &u.table_bytes,
        ),
        (
            "strata_collector_unwind_files",
            "gauge",
            "ELF files whose unwind rows are loaded.",
            &u.files,
        ),
        (
            "strata_collector_unwind_files_refused_total",
            "counter",
            "Files whose unwind rows did not fit collector.unwind_table_max_bytes (walked by frame pointers).",
            &u.files_refused,
        ),
        (
            "strata_collector_unwind_files_evicted_total",
            "counter",
            "Files whose unwind rows were evicted to make room.",
            &u.files_evicted,
        ),
        (
            "strata_collector_unwind_processes",
            "gauge",
            "Processes whose mappings the unwinder holds.",
            &u.processes,
        ),
        (
            "strata_collector_unwind_process_bytes",
            "gauge",
            "Kernel memory of those processes' mapping entries.",
            &u.process_bytes,
        ),
        (
            "strata_collector_unwind_processes_refused_total",
            "counter",
            "Processes left to frame pointers because collector.unwind_max_processes were held.",
            &u.processes_refused,
        ),
    ] {
        metric(name, kind, help, value.load(Relaxed) as f64);
    }
    if let Some((cpu, rss)) = self_usage() {
        metric(
            "process_cpu_seconds_total",
            "counter",
            "User and system CPU time of this process (collector included).",
            cpu,
        );
        metric(
            "process_resident_memory_bytes",
            "gauge",
            "Resident memory of this process.",
            rss,
        );
    }
    out.push_str(&stops);
}

/// CPU seconds and resident bytes of this process, from `/proc/self`.
pub fn self_usage() -> Option<(f64, f64)> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    // utime, stime: fields 14 and 15 (1-based), 11 and 12 after the comm; in clock ticks (100/s
    // on Linux).
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: f64 = statm.split(' ').nth(1)?.parse().ok()?;
    Some((ticks / 100.0, pages * 4096.0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collector::agent::tests::{Burner, bpf_refused, wait_until_stored};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn in_process_collector_appends_to_the_engine() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = strata_engine::EngineConfig::new(dir.path());
        config.background = false;
        let engine = strata_engine::Engine::open(config).await.unwrap();
        let store = Arc::new(TenantStore::new(
            "anonymous",
            engine.clone(),
            crate::symbolization::Symbolization::disabled(Default::default()),
        ));
        let burner = Burner::start();
        let config = SamplerConfig {
            frequency_hz: 99,
            interval: std::time::Duration::from_secs(1),
            ..Default::default()
        };
        let Some(handle) = start_in_process(store, config) else {
            bpf_refused();
            return;
        };
        let want = burner.0.id().to_string();
        let found = wait_until_stored(&engine, &want).await;
        tokio::task::spawn_blocking(move || handle.stop())
            .await
            .unwrap();
        assert!(found, "the busy shell (pid {want}) was never stored");
        let mut out = String::new();
        write_metrics(&mut out);
        assert!(out.contains("strata_collector_samples_total"), "{out}");
        assert!(out.contains("strata_collector_records_total"), "{out}");
    }
}
