//! Background symbolization: locations stored with a mapping and an address but no lines get
//! their lines later, from the build id's debug info (an uploaded file, a build-id debug
//! directory, the binary at the mapping's path, debuginfod), for data stored before as well as
//! after. Queries never wait: they show such a frame as `<binary> 0x<address>` until then.
//!
//! - [`SymbolizerSettings`] (`config`): the `symbolizer:` config section;
//! - [`Symbolization`]: the service — a bounded queue fed after each push
//!   ([`Symbolization::notify_batch`]) and by uploads, and a worker (`worker`) that also sweeps
//!   the heads and new blocks every `sweep_interval`;
//! - [`BuildIdReport`] (`status`): found / missing / failed per build id, with the reason.

mod config;
mod error;
mod status;
mod worker;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use strata_engine::{Engine, Mapping, MappingId, SampleBatch, UnsymbolizedLocation};
use tokio::sync::{mpsc, watch};

pub use config::SymbolizerSettings;
pub use error::{Error, Result};
pub use status::BuildIdReport;

use status::Registry;
use worker::{Job, Worker};

/// The background symbolizer of a server: disabled, or a worker task fed through a bounded
/// queue.
pub struct Symbolization {
    settings: SymbolizerSettings,
    registry: Arc<Registry>,
    jobs: Option<mpsc::Sender<Job>>,
    running: Mutex<Option<(watch::Sender<bool>, tokio::task::JoinHandle<()>)>>,
    /// Pushes whose locations were left to the next sweep because the queue was full.
    dropped: AtomicU64,
}

impl Symbolization {
    /// No background work (uploads are still accepted and stored).
    pub fn disabled(settings: SymbolizerSettings) -> Self {
        Symbolization {
            settings,
            registry: Default::default(),
            jobs: None,
            running: Mutex::new(None),
            dropped: AtomicU64::new(0),
        }
    }

    /// Starts the worker on the current Tokio runtime, over `engine` (disabled if
    /// `settings.enabled` is false). Uploaded files are copied to `settings.cache_dir`, else
    /// `default_cache_dir`, to be read.
    pub fn start(
        engine: Engine,
        settings: SymbolizerSettings,
        default_cache_dir: PathBuf,
    ) -> Result<Self> {
        settings.validate()?;
        if !settings.enabled {
            return Ok(Self::disabled(settings));
        }
        let symbolizer = Arc::new(strata_symbolizer::Symbolizer::new(settings.library())?);
        let registry = Arc::new(Registry::default());
        let (tx, rx) = mpsc::channel(settings.queue_size);
        let (stop_tx, stop_rx) = watch::channel(false);
        let cache_dir = settings.cache_dir.clone().unwrap_or(default_cache_dir);
        let worker = Worker::new(
            engine,
            symbolizer,
            registry.clone(),
            settings.clone(),
            cache_dir,
        );
        let handle = tokio::spawn(worker.run(rx, stop_rx));
        Ok(Symbolization {
            settings,
            registry,
            jobs: Some(tx),
            running: Mutex::new(Some((stop_tx, handle))),
            dropped: AtomicU64::new(0),
        })
    }

    /// The settings.
    pub fn settings(&self) -> &SymbolizerSettings {
        &self.settings
    }

    /// Whether the worker runs.
    pub fn enabled(&self) -> bool {
        self.jobs.is_some()
    }

    /// Pushes whose locations waited for a sweep because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Hands the address-keyed locations without lines of a stored batch to the worker; if
    /// the queue is full they wait for the next sweep. Never blocks.
    pub fn notify_batch(&self, batch: &SampleBatch) {
        let Some(jobs) = &self.jobs else { return };
        let symbols = batch.symbols();
        let mut wanted = symbols
            .locations
            .iter()
            .filter(|l| l.is_address_keyed() && !l.is_symbolized())
            .peekable();
        if wanted.peek().is_none() {
            return;
        }
        let mappings: HashMap<MappingId, &Mapping> =
            symbols.mappings.iter().map(|m| (m.id(), m)).collect();
        let locations: Vec<UnsymbolizedLocation> = wanted
            .filter_map(|l| {
                let mapping = mappings.get(&l.mapping_id)?;
                Some(UnsymbolizedLocation {
                    id: l.id(),
                    mapping: (*mapping).clone(),
                    address: l.address,
                })
            })
            .collect();
        if jobs.try_send(Job::Locations(locations)).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Tells the worker debug info was uploaded for `build_id` (waits for room in the queue).
    pub async fn notify_uploaded(&self, build_id: &str) {
        if let Some(jobs) = &self.jobs {
            let _ = jobs.send(Job::Uploaded(build_id.to_owned())).await;
        }
    }

    /// What is known of `build_id`, if a profile named it since the server started.
    pub fn report(&self, build_id: &str) -> Option<BuildIdReport> {
        self.registry.report(build_id)
    }

    /// Every build id seen since the server started.
    pub fn reports(&self) -> Vec<BuildIdReport> {
        self.registry.reports()
    }

    /// Writes the symbolizer's metrics (Prometheus text): build ids by status, locations
    /// given symbols, pushes left to a sweep.
    pub fn write_metrics(&self, out: &mut String) {
        use std::fmt::Write;
        let reports = self.reports();
        let _ = writeln!(
            out,
            "# HELP strata_symbolizer_build_ids Build ids seen since start, by debug info status.\n# TYPE strata_symbolizer_build_ids gauge"
        );
        for status in ["found", "missing", "failed", "pending"] {
            let n = reports.iter().filter(|r| r.status == status).count();
            let _ = writeln!(
                out,
                "strata_symbolizer_build_ids{{status=\"{status}\"}} {n}"
            );
        }
        let symbolized: u64 = reports.iter().map(|r| r.symbolized_locations).sum();
        let _ = writeln!(
            out,
            "# HELP strata_symbolizer_locations_symbolized_total Locations given symbols in the background.\n# TYPE strata_symbolizer_locations_symbolized_total counter\nstrata_symbolizer_locations_symbolized_total {symbolized}"
        );
        let _ = writeln!(
            out,
            "# HELP strata_symbolizer_queue_full_total Pushes whose locations waited for a sweep because the queue was full.\n# TYPE strata_symbolizer_queue_full_total counter\nstrata_symbolizer_queue_full_total {}",
            self.dropped()
        );
    }

    /// Stops the worker (waiting up to 10 s for a lookup in progress).
    pub async fn stop(&self) {
        let running = self.running.lock().take();
        if let Some((stop, mut handle)) = running {
            let _ = stop.send(true);
            if tokio::time::timeout(Duration::from_secs(10), &mut handle)
                .await
                .is_err()
            {
                handle.abort();
            }
        }
    }
}
