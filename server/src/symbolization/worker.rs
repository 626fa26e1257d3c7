//! The background worker: takes unsymbolized locations (handed over by pushes, found by
//! sweeps of the store), looks their build ids' debug info up with the symbolizer library on
//! the blocking thread pool, and stores the lines found with
//! [`Engine::put_location_lines`]. Queries never wait for it.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures::StreamExt;
use strata_engine::{
    DebuginfoKind, DebuginfoStore, Engine, Function, LocationId, LocationLines, Mapping,
    UnsymbolizedLocation, build_id_key,
};
use strata_symbolizer::{
    DebugFile, DebugInfoSource, DebugInfoStatus, MappingInfo, ObjectRef, Symbolizer,
};
use tokio::sync::{mpsc, watch};
use tracing::{debug, warn};

use super::config::SymbolizerSettings;
use super::status::Registry;

/// Work for the worker.
pub(crate) enum Job {
    /// Locations stored without lines (from one push).
    Locations(Vec<UnsymbolizedLocation>),
    /// Debug info was uploaded for this build id: look again, over the whole store.
    Uploaded(String),
}

/// Lines are stored this many locations at a time.
const WRITE_CHUNK: usize = 50_000;

/// The local copy of an uploaded file.
enum UploadCopy {
    /// Not fetched from the object store yet (or the upload replaced it).
    NotFetched,
    /// Fetched to this path.
    Local(PathBuf),
    /// The file gave no usable debug info: not supplied again until the next upload.
    Unusable,
}

pub(crate) struct Worker {
    pub(crate) engine: Engine,
    pub(crate) store: DebuginfoStore,
    pub(crate) symbolizer: Arc<Symbolizer>,
    pub(crate) registry: Arc<Registry>,
    pub(crate) settings: SymbolizerSettings,
    pub(crate) cache_dir: PathBuf,
    /// Build ids with an uploaded file.
    uploads: HashMap<String, UploadCopy>,
    /// Locations looked up, with their build id's generation then: not looked up again until
    /// it changes.
    attempted: HashMap<LocationId, u64>,
    /// Blocks already swept.
    swept: HashSet<String>,
}

/// What one build id's lookup gave.
struct Outcome {
    build_id: String,
    generation: u64,
    supplied: bool,
    status: Option<DebugInfoStatus>,
    lines: Vec<LocationLines>,
    looked_up: Vec<LocationId>,
    unresolved: u64,
}

impl Worker {
    pub(crate) fn new(
        engine: Engine,
        symbolizer: Arc<Symbolizer>,
        registry: Arc<Registry>,
        settings: SymbolizerSettings,
        cache_dir: PathBuf,
    ) -> Self {
        Worker {
            store: engine.debuginfo(),
            engine,
            symbolizer,
            registry,
            settings,
            cache_dir,
            uploads: HashMap::new(),
            attempted: HashMap::new(),
            swept: HashSet::new(),
        }
    }

    /// Runs until `stop` changes or every sender is gone: a full sweep first, then jobs as
    /// they come and a sweep of the heads and new blocks every `sweep_interval`.
    pub(crate) async fn run(
        mut self,
        mut jobs: mpsc::Receiver<Job>,
        mut stop: watch::Receiver<bool>,
    ) {
        self.find_uploads().await;
        self.sweep(true).await;
        let mut tick = tokio::time::interval(self.settings.sweep_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tokio::select! {
                _ = stop.changed() => return,
                job = jobs.recv() => match job {
                    None => return,
                    Some(Job::Locations(locations)) => self.symbolize(locations).await,
                    Some(Job::Uploaded(build_id)) => {
                        self.uploaded(&build_id);
                        self.sweep(true).await;
                    }
                },
                _ = tick.tick() => {
                    let retried = self.registry.expire(self.settings.retry_after);
                    for id in &retried {
                        self.symbolizer.invalidate(id);
                    }
                    self.sweep(!retried.is_empty()).await;
                }
            }
        }
    }

    /// Notes the build ids that have an uploaded file.
    async fn find_uploads(&mut self) {
        let metas = match self.store.list().await {
            Ok(m) => m,
            Err(e) => {
                warn!(error = %e, "symbolizer: listing uploaded debug info failed");
                return;
            }
        };
        for m in metas {
            if matches!(m.kind, DebuginfoKind::Debuginfo | DebuginfoKind::Executable)
                && self
                    .store
                    .has_file(&m.build_id, m.kind)
                    .await
                    .unwrap_or(false)
            {
                self.uploads.insert(m.build_id, UploadCopy::NotFetched);
            }
        }
    }

    /// A file was uploaded for `build_id`: drop what was cached and look again.
    fn uploaded(&mut self, build_id: &str) {
        for kind in [DebuginfoKind::Debuginfo, DebuginfoKind::Executable] {
            let _ = std::fs::remove_file(self.local_path(build_id, kind));
        }
        self.uploads
            .insert(build_id.to_owned(), UploadCopy::NotFetched);
        self.symbolizer.invalidate(build_id);
        self.registry.reset(build_id);
    }

    /// Symbolizes the locations without lines of the heads and of the blocks not swept yet
    /// (`full`: of every block).
    async fn sweep(&mut self, full: bool) {
        let skip = if full {
            HashSet::new()
        } else {
            self.swept.clone()
        };
        let found = match self.engine.unsymbolized_locations(&skip).await {
            Ok(f) => f,
            Err(e) => {
                warn!(error = %e, "symbolizer: sweeping the store failed");
                return;
            }
        };
        let live: HashSet<String> = self.engine.blocks().into_iter().map(|b| b.id).collect();
        self.swept.extend(found.blocks);
        self.swept.retain(|b| live.contains(b));
        self.symbolize(found.locations).await;
    }

    /// Looks up the locations not yet looked up under their build id's generation and stores
    /// the lines found.
    pub(crate) async fn symbolize(&mut self, locations: Vec<UnsymbolizedLocation>) {
        let mut groups: BTreeMap<String, (u64, Vec<UnsymbolizedLocation>)> = BTreeMap::new();
        for l in locations {
            if l.mapping.build_id.is_empty() {
                continue;
            }
            let generation = self.registry.saw(&l.mapping.build_id, &l.mapping.filename);
            if self.attempted.get(&l.id) == Some(&generation) {
                continue;
            }
            groups
                .entry(l.mapping.build_id.clone())
                .or_insert_with(|| (generation, Vec::new()))
                .1
                .push(l);
        }
        if groups.is_empty() {
            return;
        }
        let mut tasks = Vec::with_capacity(groups.len());
        for (build_id, (generation, locations)) in groups {
            let supplied = self.supplied(&build_id).await;
            tasks.push((build_id, generation, supplied, locations));
        }
        let symbolizer = self.symbolizer.clone();
        let outcomes: Vec<Outcome> = futures::stream::iter(tasks)
            .map(|(build_id, generation, supplied, locations)| {
                let symbolizer = symbolizer.clone();
                async move {
                    let id = build_id.clone();
                    tokio::task::spawn_blocking(move || {
                        look_up(&symbolizer, build_id, generation, supplied, locations)
                    })
                    .await
                    .map_err(|e| warn!(build_id = %id, error = %e, "symbolizer: lookup panicked"))
                    .ok()
                }
            })
            .buffer_unordered(self.settings.workers)
            .filter_map(|o| async move { o })
            .collect()
            .await;
        for o in outcomes {
            self.apply(o).await;
        }
        if self.attempted.len() > self.settings.cache_addresses {
            self.attempted.clear();
        }
    }

    /// Stores an outcome's lines and records its status.
    async fn apply(&mut self, o: Outcome) {
        let mut stored = 0;
        for chunk in o.lines.chunks(WRITE_CHUNK) {
            if let Err(e) = self.engine.put_location_lines(chunk).await {
                warn!(build_id = %o.build_id, error = %e, "symbolizer: storing lines failed");
                return;
            }
            stored += chunk.len() as u64;
        }
        for id in o.looked_up {
            self.attempted.insert(id, o.generation);
        }
        let Some(status) = o.status else { return };
        let from_upload = matches!(
            status,
            DebugInfoStatus::Found {
                source: DebugInfoSource::Supplied,
                ..
            }
        );
        if o.supplied && !from_upload {
            // The uploaded file did not serve; supplying it again would reload it every time.
            self.uploads
                .insert(o.build_id.clone(), UploadCopy::Unusable);
        }
        debug!(build_id = %o.build_id, stored, unresolved = o.unresolved, ?status, "symbolized");
        self.registry
            .record(&o.build_id, status, stored, o.unresolved);
    }

    fn local_path(&self, build_id: &str, kind: DebuginfoKind) -> PathBuf {
        self.cache_dir
            .join(format!("{}.{}", build_id_key(build_id), kind.file_name()))
    }

    /// The local copy of the file uploaded for `build_id`, fetched from the object store on
    /// first use; `None` when there is none (or it proved unusable).
    async fn supplied(&mut self, build_id: &str) -> Option<PathBuf> {
        match self.uploads.get(build_id)? {
            UploadCopy::Unusable => return None,
            UploadCopy::Local(p) if p.exists() => return Some(p.clone()),
            _ => {}
        }
        for kind in [DebuginfoKind::Debuginfo, DebuginfoKind::Executable] {
            let bytes = match self.store.file(build_id, kind).await {
                Ok(Some(b)) => b,
                Ok(None) => continue,
                Err(e) => {
                    warn!(build_id, error = %e, "symbolizer: reading uploaded debug info failed");
                    return None;
                }
            };
            let path = self.local_path(build_id, kind);
            match write_atomically(&path, &bytes) {
                Ok(()) => {
                    self.uploads
                        .insert(build_id.to_owned(), UploadCopy::Local(path.clone()));
                    return Some(path);
                }
                Err(e) => {
                    warn!(build_id, path = %path.display(), error = %e, "symbolizer: caching uploaded debug info failed");
                    return None;
                }
            }
        }
        None
    }
}

fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}

/// Looks up one build id's locations, mapping by mapping (on a blocking thread).
fn look_up(
    symbolizer: &Symbolizer,
    build_id: String,
    generation: u64,
    supplied: Option<PathBuf>,
    locations: Vec<UnsymbolizedLocation>,
) -> Outcome {
    let mut by_mapping: BTreeMap<MappingKey, Vec<&UnsymbolizedLocation>> = BTreeMap::new();
    for l in &locations {
        by_mapping
            .entry(MappingKey::of(&l.mapping))
            .or_default()
            .push(l);
    }
    let mut out = Outcome {
        build_id: build_id.clone(),
        generation,
        supplied: supplied.is_some(),
        status: None,
        lines: Vec::new(),
        looked_up: Vec::with_capacity(locations.len()),
        unresolved: 0,
    };
    for locs in by_mapping.into_values() {
        let mapping = &locs[0].mapping;
        let mut object = ObjectRef::new(build_id.clone());
        if let Some(p) = &supplied {
            object = object.with_supplied(DebugFile::from_path(p));
        }
        if mapping.filename.starts_with('/') {
            object = object.with_path(&mapping.filename);
        }
        let addresses: Vec<u64> = locs.iter().map(|l| l.address).collect();
        // A mapping with no range is taken to carry ELF addresses already.
        let batch = if mapping.memory_start == 0 && mapping.memory_limit == 0 {
            symbolizer.symbolize(&object, &addresses)
        } else {
            let info = MappingInfo {
                memory_start: mapping.memory_start,
                memory_limit: mapping.memory_limit,
                file_offset: mapping.file_offset,
            };
            symbolizer.symbolize_runtime(&object, &info, &addresses)
        };
        for (l, frames) in locs.iter().zip(batch.frames.iter()) {
            out.looked_up.push(l.id);
            if frames.is_empty() {
                out.unresolved += 1;
                continue;
            }
            out.lines.push(LocationLines {
                mapping: l.mapping.clone(),
                address: l.address,
                lines: frames
                    .iter()
                    .map(|f| {
                        (
                            Function {
                                name: f.function.clone(),
                                system_name: f.system_name.clone(),
                                filename: f.file.clone(),
                                start_line: f.start_line as i64,
                            },
                            f.line as i64,
                        )
                    })
                    .collect(),
            });
        }
        out.status = Some(batch.status);
    }
    out
}

/// Groups locations of one mapping (same file and range) for one lookup.
#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct MappingKey(String, u64, u64, u64);

impl MappingKey {
    fn of(m: &Mapping) -> Self {
        MappingKey(
            m.filename.clone(),
            m.memory_start,
            m.memory_limit,
            m.file_offset,
        )
    }
}
