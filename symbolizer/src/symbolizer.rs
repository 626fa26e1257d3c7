//! [`Symbolizer`]: the entry point — finds the debug info of a build id, parses it once, and
//! symbolizes addresses with both kept in bounded caches.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;

use crate::address::{MappingInfo, elf_address};
use crate::cache::GenerationalCache;
use crate::config::SymbolizerConfig;
use crate::debuginfod::DebuginfodFetcher;
use crate::error::Result;
use crate::frame::Frames;
use crate::loader::{Loaded, Loader};
use crate::object_ref::ObjectRef;
use crate::status::{DebugInfoSource, DebugInfoStatus};

/// The frames of a batch of addresses of one object, and the object's debug info status.
#[derive(Clone, Debug)]
pub struct SymbolizedBatch {
    /// Whether (and where) debug info was found for the build id, or why not.
    pub status: DebugInfoStatus,
    /// One entry per address, in input order: its frames, innermost first; empty when the
    /// address is unknown to the debug info or there is none.
    pub frames: Vec<Frames>,
}

/// Counters of a [`Symbolizer`]'s caches.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SymbolizerStats {
    /// Addresses answered from the address cache.
    pub address_hits: u64,
    /// Addresses looked up in the debug info.
    pub address_misses: u64,
    /// Times debug info was looked for and parsed (objects loaded, found or not).
    pub objects_loaded: u64,
}

/// Symbolizes addresses of objects known by build id. `Send + Sync`: share one (in an `Arc`)
/// across a thread pool. Lookups of different objects run in parallel; lookups in one
/// object's DWARF take turns on that object, and a build id is looked for and parsed by one
/// thread while the others asking for it wait.
pub struct Symbolizer {
    loader: Loader,
    objects: GenerationalCache<String, Arc<Loaded>>,
    addresses: GenerationalCache<(u64, u64), Frames>,
    /// Build ids being loaded, each with the lock its loaders take turns on.
    loading: Mutex<HashMap<String, Arc<Mutex<()>>>>,
    address_hits: AtomicU64,
    address_misses: AtomicU64,
    objects_loaded: AtomicU64,
}

impl std::fmt::Debug for Symbolizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Symbolizer")
            .field("config", &self.loader.config)
            .field("stats", &self.stats())
            .finish()
    }
}

impl Symbolizer {
    /// A symbolizer with `config` (validated). With `debuginfod_urls` set and the
    /// `debuginfod-http` feature on, fetches through [`crate::HttpDebuginfod`].
    pub fn new(config: SymbolizerConfig) -> Result<Self> {
        #[cfg(feature = "debuginfod-http")]
        let fetcher: Option<Arc<dyn DebuginfodFetcher>> = (!config.debuginfod_urls.is_empty())
            .then(|| {
                Arc::new(crate::debuginfod::HttpDebuginfod::new(
                    config.debuginfod_urls.clone(),
                    config.debuginfod_timeout,
                    config.max_file_bytes,
                )) as Arc<dyn DebuginfodFetcher>
            });
        #[cfg(not(feature = "debuginfod-http"))]
        let fetcher = None;
        Self::build(config, fetcher)
    }

    /// A symbolizer that asks `fetcher` (instead of `debuginfod_urls`) when nothing local has
    /// the debug info.
    pub fn with_fetcher(
        config: SymbolizerConfig,
        fetcher: Arc<dyn DebuginfodFetcher>,
    ) -> Result<Self> {
        Self::build(config, Some(fetcher))
    }

    fn build(
        config: SymbolizerConfig,
        fetcher: Option<Arc<dyn DebuginfodFetcher>>,
    ) -> Result<Self> {
        config.validate()?;
        Ok(Symbolizer {
            objects: GenerationalCache::new(config.max_objects),
            addresses: GenerationalCache::new(config.max_addresses),
            loader: Loader { config, fetcher },
            loading: Mutex::default(),
            address_hits: AtomicU64::new(0),
            address_misses: AtomicU64::new(0),
            objects_loaded: AtomicU64::new(0),
        })
    }

    /// Symbolizes ELF virtual addresses (as in the object's symbol table; see
    /// [`Symbolizer::symbolize_runtime`] for process addresses) of `object`. Each address is
    /// looked up as given: for return addresses from a stack, pass `address - 1` so the call
    /// instruction is named. Never fails: a build id without usable debug info gets empty
    /// frames and a status saying why.
    pub fn symbolize(&self, object: &ObjectRef, addresses: &[u64]) -> SymbolizedBatch {
        let loaded = self.object(object);
        let frames = addresses.iter().map(|&a| self.frames(&loaded, a)).collect();
        SymbolizedBatch {
            status: loaded.status.clone(),
            frames,
        }
    }

    /// Symbolizes addresses of a running process, where `object` was mapped as `mapping`:
    /// each is translated with [`elf_address`] through the object's `PT_LOAD` headers, then
    /// symbolized as by [`Symbolizer::symbolize`]. Addresses outside the mapping get empty
    /// frames.
    pub fn symbolize_runtime(
        &self,
        object: &ObjectRef,
        mapping: &MappingInfo,
        runtime_addresses: &[u64],
    ) -> SymbolizedBatch {
        let loaded = self.object(object);
        let frames = runtime_addresses
            .iter()
            .map(|&a| match elf_address(a, mapping, &loaded.segments) {
                Some(vaddr) => self.frames(&loaded, vaddr),
                None => Frames::default(),
            })
            .collect();
        SymbolizedBatch {
            status: loaded.status.clone(),
            frames,
        }
    }

    /// The debug info status of `object`, looking for its debug info if not yet cached.
    pub fn status(&self, object: &ObjectRef) -> DebugInfoStatus {
        self.object(object).status.clone()
    }

    /// Forgets what is cached for `build_id` (its debug info and status; its addresses age
    /// out), e.g. after a debug file was uploaded for it: the next call looks again.
    pub fn invalidate(&self, build_id: &str) {
        self.objects.remove(build_id);
    }

    /// The counters of the caches.
    pub fn stats(&self) -> SymbolizerStats {
        SymbolizerStats {
            address_hits: self.address_hits.load(Ordering::Relaxed),
            address_misses: self.address_misses.load(Ordering::Relaxed),
            objects_loaded: self.objects_loaded.load(Ordering::Relaxed),
        }
    }

    /// The cached object of a build id, loaded on first use; loaded again when the caller
    /// now supplies a file and the cached entry did not come from one.
    fn object(&self, object: &ObjectRef) -> Arc<Loaded> {
        if let Some(loaded) = self.cached(object) {
            return loaded;
        }
        // One load per build id at a time: threads asking for the same one wait for it.
        let gate = self
            .loading
            .lock()
            .entry(object.build_id.clone())
            .or_default()
            .clone();
        let _turn = gate.lock();
        if let Some(loaded) = self.cached(object) {
            return loaded;
        }
        self.objects_loaded.fetch_add(1, Ordering::Relaxed);
        let loaded = Arc::new(self.loader.load(object));
        self.objects.insert(object.build_id.clone(), loaded.clone());
        self.loading.lock().remove(&object.build_id);
        loaded
    }

    /// The cached entry of a build id, unless the caller supplies a file and the entry did
    /// not come from one.
    fn cached(&self, object: &ObjectRef) -> Option<Arc<Loaded>> {
        let loaded = self.objects.get(object.build_id.as_str())?;
        let from_supplied = matches!(
            loaded.status,
            DebugInfoStatus::Found {
                source: DebugInfoSource::Supplied,
                ..
            }
        );
        (object.supplied.is_none() || from_supplied).then_some(loaded)
    }

    fn frames(&self, loaded: &Arc<Loaded>, address: u64) -> Frames {
        let Some(debug) = &loaded.object else {
            return Frames::default();
        };
        let key = (loaded.id, address);
        if let Some(frames) = self.addresses.get(&key) {
            self.address_hits.fetch_add(1, Ordering::Relaxed);
            return frames;
        }
        self.address_misses.fetch_add(1, Ordering::Relaxed);
        let frames: Frames = debug.frames(address).into();
        self.addresses.insert(key, frames.clone());
        frames
    }
}
