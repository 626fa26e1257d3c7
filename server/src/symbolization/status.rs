//! [`Registry`]: per build id, what the symbolizer last found for it (found, missing or failed
//! with the reason), the files it was mapped as, and how many locations got symbols; read by
//! the HTTP API, the CLI and the UI tooltip.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde::Serialize;
use strata_engine::DebuginfoMeta;
use strata_symbolizer::{DebugInfoSource, DebugInfoStatus, SymbolContent};

/// What is known of one build id, as the API reports it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BuildIdReport {
    /// The build id.
    pub build_id: String,
    /// `found`, `missing`, `failed`, `pending` (seen, not looked up yet), `unknown` (never
    /// seen in a profile) or `disabled` (background symbolization is off).
    pub status: &'static str,
    /// Why it is missing or failed, naming the fix; empty when found.
    pub reason: String,
    /// Where the debug info came from, when found.
    pub source: Option<DebugInfoSource>,
    /// What the debug info holds, when found.
    pub content: Option<SymbolContent>,
    /// The file names it was mapped as.
    pub filenames: Vec<String>,
    /// Locations given symbols since the server started.
    pub symbolized_locations: u64,
    /// Addresses the debug info did not cover, in the last lookup.
    pub unresolved_locations: u64,
    /// When it was last looked up, ms since the Unix epoch.
    pub checked_at_ms: Option<u64>,
    /// The uploaded debug info's metadata record, if any.
    pub upload: Option<DebuginfoMeta>,
}

impl BuildIdReport {
    /// A build id no profile has named (yet).
    pub fn unknown(build_id: &str, enabled: bool) -> Self {
        BuildIdReport {
            build_id: build_id.to_owned(),
            status: if enabled { "unknown" } else { "disabled" },
            reason: if enabled {
                "no stored profile has named this build id since the server started".into()
            } else {
                "background symbolization is off (symbolizer.enabled: false)".into()
            },
            source: None,
            content: None,
            filenames: Vec::new(),
            symbolized_locations: 0,
            unresolved_locations: 0,
            checked_at_ms: None,
            upload: None,
        }
    }
}

#[derive(Default)]
struct BuildIdState {
    status: Option<DebugInfoStatus>,
    filenames: BTreeSet<String>,
    symbolized: u64,
    unresolved: u64,
    checked_at_ms: Option<u64>,
    checked: Option<Instant>,
    /// Bumped when the answer may have changed (an upload, a retry): locations looked up
    /// under an older generation are looked up again.
    generation: u64,
}

/// The state of every build id seen since the server started.
#[derive(Default)]
pub(crate) struct Registry {
    map: Mutex<BTreeMap<String, BuildIdState>>,
}

fn now_ms() -> u64 {
    (strata_engine::now_ns() / 1_000_000) as u64
}

impl Registry {
    /// Notes that `build_id` was mapped as `filename`; returns its generation.
    pub(crate) fn saw(&self, build_id: &str, filename: &str) -> u64 {
        let mut map = self.map.lock();
        let s = map.entry(build_id.to_owned()).or_default();
        if !filename.is_empty() && !s.filenames.contains(filename) && s.filenames.len() < 16 {
            s.filenames.insert(filename.to_owned());
        }
        s.generation
    }

    /// Forgets the last answer for `build_id` (debug info was uploaded): pending again, and
    /// its locations are looked up again.
    pub(crate) fn reset(&self, build_id: &str) {
        let mut map = self.map.lock();
        let s = map.entry(build_id.to_owned()).or_default();
        s.generation += 1;
        s.status = None;
        s.unresolved = 0;
    }

    /// Records a lookup's outcome.
    pub(crate) fn record(
        &self,
        build_id: &str,
        status: DebugInfoStatus,
        symbolized: u64,
        unresolved: u64,
    ) {
        let mut map = self.map.lock();
        let s = map.entry(build_id.to_owned()).or_default();
        s.status = Some(status);
        s.symbolized += symbolized;
        s.unresolved = unresolved;
        s.checked_at_ms = Some(now_ms());
        s.checked = Some(Instant::now());
    }

    /// Build ids whose missing or failed answer is older than `after`; each is reset.
    pub(crate) fn expire(&self, after: Duration) -> Vec<String> {
        let mut map = self.map.lock();
        let mut out = Vec::new();
        for (id, s) in map.iter_mut() {
            let stale = s.checked.is_some_and(|t| t.elapsed() >= after);
            if stale && s.status.as_ref().is_some_and(|st| !st.is_found()) {
                s.generation += 1;
                s.checked = None;
                out.push(id.clone());
            }
        }
        out
    }

    /// The report of `build_id`, if seen.
    pub(crate) fn report(&self, build_id: &str) -> Option<BuildIdReport> {
        self.map
            .lock()
            .get(build_id)
            .map(|s| to_report(build_id, s))
    }

    /// Every build id seen, in order.
    pub(crate) fn reports(&self) -> Vec<BuildIdReport> {
        self.map
            .lock()
            .iter()
            .map(|(id, s)| to_report(id, s))
            .collect()
    }
}

fn to_report(build_id: &str, s: &BuildIdState) -> BuildIdReport {
    let (status, reason, source, content) = match &s.status {
        None => ("pending", "not looked up yet".to_owned(), None, None),
        Some(DebugInfoStatus::Found { source, content }) => {
            ("found", String::new(), Some(source.clone()), Some(*content))
        }
        Some(DebugInfoStatus::Missing { reason }) => ("missing", reason.clone(), None, None),
        Some(DebugInfoStatus::Failed { reason }) => ("failed", reason.clone(), None, None),
    };
    BuildIdReport {
        build_id: build_id.to_owned(),
        status,
        reason,
        source,
        content,
        filenames: s.filenames.iter().cloned().collect(),
        symbolized_locations: s.symbolized,
        unresolved_locations: s.unresolved,
        checked_at_ms: s.checked_at_ms,
        upload: None,
    }
}
