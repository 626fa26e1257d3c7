//! [`SymbolCache`]: decoded symbol tables of recently queried blocks, bounded by size.

use std::collections::btree_map::Entry as MapEntry;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use parking_lot::Mutex;

use crate::model::{IdSet, LocationId, StackId};
use crate::symbol_tables::SymbolTables;

/// Every symbol table of some blocks, keyed by block id, least recently used evicted first
/// once the estimated size passes the bound. A block's tables never change, so entries are
/// never stale; a deleted block's entry is removed with it.
pub(crate) struct SymbolCache {
    max_bytes: u64,
    state: Mutex<CacheState>,
}

#[derive(Default)]
struct CacheState {
    entries: HashMap<String, Entry>,
    bytes: u64,
    clock: u64,
}

struct Entry {
    tables: Arc<SymbolTables>,
    bytes: u64,
    used: u64,
}

impl SymbolCache {
    /// A cache of at most about `max_bytes` (0: nothing is kept).
    pub(crate) fn new(max_bytes: u64) -> Self {
        SymbolCache {
            max_bytes,
            state: Mutex::new(CacheState::default()),
        }
    }

    /// Whether a block whose symbol files take `file_bytes` is worth caching: a quarter of the
    /// bound at most (decoded tables are several times their compressed files).
    pub(crate) fn admits(&self, file_bytes: u64) -> bool {
        file_bytes.saturating_mul(4) <= self.max_bytes / 4
    }

    /// The block's tables, if held.
    pub(crate) fn get(&self, block: &str) -> Option<Arc<SymbolTables>> {
        let mut st = self.state.lock();
        st.clock += 1;
        let now = st.clock;
        let e = st.entries.get_mut(block)?;
        e.used = now;
        Some(e.tables.clone())
    }

    /// Keeps `tables` for `block`, evicting the least recently used entries to make room.
    pub(crate) fn insert(&self, block: &str, tables: Arc<SymbolTables>) {
        let bytes = estimated_bytes(&tables);
        if bytes > self.max_bytes {
            return;
        }
        let mut st = self.state.lock();
        st.clock += 1;
        let used = st.clock;
        if let Some(old) = st.entries.insert(
            block.to_owned(),
            Entry {
                tables,
                bytes,
                used,
            },
        ) {
            st.bytes -= old.bytes;
        }
        st.bytes += bytes;
        while st.bytes > self.max_bytes {
            let Some(victim) = st
                .entries
                .iter()
                .min_by_key(|(_, e)| e.used)
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            let e = st.entries.remove(&victim).expect("present");
            st.bytes -= e.bytes;
        }
    }

    /// Drops the block's entry.
    pub(crate) fn remove(&self, block: &str) {
        let mut st = self.state.lock();
        if let Some(e) = st.entries.remove(block) {
            st.bytes -= e.bytes;
        }
    }

    /// Estimated bytes held.
    #[cfg(test)]
    fn bytes(&self) -> u64 {
        self.state.lock().bytes
    }
}

/// Heap and map overhead of the tables, roughly.
fn estimated_bytes(t: &SymbolTables) -> u64 {
    const NODE: u64 = 64; // a BTreeMap entry's share of its node, and the key
    let stacks: u64 = t.stacks.values().map(|v| NODE + 8 * v.len() as u64).sum();
    let locations: u64 = t
        .locations
        .values()
        .map(|l| NODE + 32 + 16 * l.lines.len() as u64)
        .sum();
    let functions: u64 = t
        .functions
        .values()
        .map(|f| NODE + 80 + (f.name.len() + f.system_name.len() + f.filename.len()) as u64)
        .sum();
    let mappings: u64 = t
        .mappings
        .values()
        .map(|m| NODE + 80 + (m.build_id.len() + m.filename.len()) as u64)
        .sum();
    stacks + locations + functions + mappings
}

impl SymbolTables {
    /// The given stacks (those held), the given locations and every location, function and
    /// mapping they reach: what [`read_symbols`](crate::block::read_symbols) returns for the
    /// same filter over a block holding these tables.
    pub(crate) fn select(
        &self,
        stacks: &HashSet<StackId>,
        locations: &HashSet<LocationId>,
    ) -> SymbolTables {
        let mut out = SymbolTables::default();
        for id in stacks {
            if let Some(locs) = self.stacks.get(id) {
                out.stacks.insert(*id, locs.clone());
            }
        }
        let wanted: IdSet<LocationId> = out
            .stacks
            .values()
            .flatten()
            .chain(locations.iter())
            .copied()
            .collect();
        // Functions and mappings are shared by many locations: each is cloned once.
        for id in wanted {
            let Some(loc) = self.locations.get(&id) else {
                continue;
            };
            for line in &loc.lines {
                if let (MapEntry::Vacant(e), Some(f)) = (
                    out.functions.entry(line.function_id),
                    self.functions.get(&line.function_id),
                ) {
                    e.insert(f.clone());
                }
            }
            if let (MapEntry::Vacant(e), Some(m)) = (
                out.mappings.entry(loc.mapping_id),
                self.mappings.get(&loc.mapping_id),
            ) {
                e.insert(m.clone());
            }
            out.locations.insert(id, loc.clone());
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Function, FunctionId, Line, Location, MappingId};

    fn tables(n: u64) -> SymbolTables {
        let mut t = SymbolTables::default();
        for i in 0..n {
            t.stacks.insert(StackId(i), vec![LocationId(i)]);
            t.locations.insert(
                LocationId(i),
                Location {
                    mapping_id: MappingId(0),
                    address: i,
                    lines: vec![Line {
                        function_id: FunctionId(i),
                        line: 1,
                    }],
                },
            );
            t.functions.insert(
                FunctionId(i),
                Function {
                    name: format!("f{i}"),
                    ..Function::default()
                },
            );
        }
        t
    }

    #[test]
    fn evicts_least_recently_used_within_the_bound() {
        let one = estimated_bytes(&tables(100));
        let cache = SymbolCache::new(one * 2 + one / 2);
        cache.insert("a", Arc::new(tables(100)));
        cache.insert("b", Arc::new(tables(100)));
        assert!(cache.get("a").is_some()); // a is now newer than b
        cache.insert("c", Arc::new(tables(100)));
        assert!(cache.get("b").is_none(), "b was the least recently used");
        assert!(cache.get("a").is_some() && cache.get("c").is_some());
        assert!(cache.bytes() <= one * 2 + one / 2);
        cache.remove("a");
        assert!(cache.get("a").is_none());
        assert_eq!(cache.bytes(), one);
        // Larger than the whole bound: not kept.
        cache.insert("big", Arc::new(tables(1000)));
        assert!(cache.get("big").is_none());
        assert!(SymbolCache::new(0).get("x").is_none());
    }

    #[test]
    fn select_takes_what_the_stacks_and_locations_reach() {
        let t = tables(10);
        let s = t.select(
            &[StackId(1), StackId(2), StackId(99)].into(),
            &[LocationId(7)].into(),
        );
        assert_eq!(s.stacks.len(), 2);
        assert_eq!(
            s.locations.keys().copied().collect::<Vec<_>>(),
            vec![LocationId(1), LocationId(2), LocationId(7)]
        );
        assert_eq!(s.functions.len(), 3);
        assert!(s.mappings.is_empty()); // mapping 0 is not in the tables
    }
}
