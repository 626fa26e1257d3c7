//! Late symbolization: lines found for address-keyed locations after their samples were
//! stored ([`Engine::put_location_lines`]), and the sweep that finds the locations still
//! lacking them ([`Engine::unsymbolized_locations`]).
//!
//! Lines are written as an ordinary WAL record with no samples: the location (same mapping
//! and address, so the same [`LocationId`]) with its lines, and the functions and mapping it
//! names. The head takes them in place of its unsymbolized copy, a flush writes them into a
//! block (one with no samples if the head held nothing else), and
//! [`Engine::resolve_stacks`] prefers a symbolized copy from any head or block over an
//! unsymbolized one, so every block's stacks — older ones included — resolve to the lines, and
//! they survive restarts like any other data (`storage-format.md`, "Late symbols").

use std::collections::{BTreeMap, HashSet};

use super::Engine;
use crate::batch::SampleBatchBuilder;
use crate::block::{SymbolFilter, read_symbols};
use crate::error::{Error, Result};
use crate::model::{Function, Line, Location, LocationId, Mapping};

/// Lines found for an address-keyed location after it was stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocationLines {
    /// The location's mapping, as stored (its content gives the [`MappingId`](crate::MappingId)).
    pub mapping: Mapping,
    /// The location's address (non-zero).
    pub address: u64,
    /// Frames, innermost (inlined) first, the outermost caller last: the function and the
    /// source line (0 when unknown). Not empty.
    pub lines: Vec<(Function, i64)>,
}

impl LocationLines {
    /// The id of the location these lines are for.
    pub fn location_id(&self) -> LocationId {
        Location {
            mapping_id: self.mapping.id(),
            address: self.address,
            lines: Vec::new(),
        }
        .id()
    }
}

/// An address-keyed location stored without lines.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnsymbolizedLocation {
    /// Its id.
    pub id: LocationId,
    /// Its mapping (build id, file name, range, offset).
    pub mapping: Mapping,
    /// Its address.
    pub address: u64,
}

/// What [`Engine::unsymbolized_locations`] found.
#[derive(Clone, Debug, Default)]
pub struct UnsymbolizedSweep {
    /// Locations without lines, each once, ordered by id.
    pub locations: Vec<UnsymbolizedLocation>,
    /// The blocks read (those not skipped): pass them as `skip` next time to read only blocks
    /// committed since.
    pub blocks: Vec<String>,
}

impl Engine {
    /// Stores lines for address-keyed locations that were stored without them (or with other
    /// lines: a location keeps the first lines it was stored with). Durable when it returns, like
    /// [`Engine::append`]; every head's and block's stacks that use these locations resolve to
    /// the lines from then on. Refused (nothing stored) if an entry has address 0 or no lines.
    pub async fn put_location_lines(&self, entries: &[LocationLines]) -> Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        let mut b = SampleBatchBuilder::new();
        for e in entries {
            if e.address == 0 || e.lines.is_empty() {
                return Err(Error::InvalidLocationLines {
                    reason: format!(
                        "location at {:#x} of {:?}: {}",
                        e.address,
                        e.mapping.filename,
                        if e.address == 0 {
                            "address 0 is not address-keyed"
                        } else {
                            "no lines"
                        }
                    ),
                });
            }
            let mapping_id = b.mapping(e.mapping.clone());
            let lines = e
                .lines
                .iter()
                .map(|(f, line)| Line {
                    function_id: b.function(f.clone()),
                    line: *line,
                })
                .collect();
            b.location(Location {
                mapping_id,
                address: e.address,
                lines,
            });
        }
        self.append(&b.build()?).await
    }

    /// Address-keyed locations stored without lines: those of the heads that no head holds
    /// lines for, and those of the blocks not in `skip` that no head or block holds lines for.
    /// Reads each such block's symbol tables (through the symbol cache) and, when a block
    /// yields candidates, every block's copy of them.
    pub async fn unsymbolized_locations(
        &self,
        skip: &HashSet<String>,
    ) -> Result<UnsymbolizedSweep> {
        let (heads, blocks) = {
            let st = self.inner.state.read();
            (st.heads(), st.blocks.clone())
        };
        let has_lines = |id: &LocationId| heads.iter().any(|h| h.read().has_lines(id));
        let mut found: BTreeMap<LocationId, UnsymbolizedLocation> = BTreeMap::new();
        for h in &heads {
            let candidates = h.read().unsymbolized_locations();
            for (id, address, mapping) in candidates {
                if !found.contains_key(&id) && !has_lines(&id) {
                    found.insert(
                        id,
                        UnsymbolizedLocation {
                            id,
                            mapping,
                            address,
                        },
                    );
                }
            }
        }
        let mut from_blocks: HashSet<LocationId> = HashSet::new();
        let mut read = Vec::new();
        for b in blocks.iter().filter(|b| !skip.contains(b.id())) {
            let tables = match self.cached_block_symbols(b).await? {
                Some(t) => t,
                None => read_symbols(&self.inner.store, b, SymbolFilter::All)
                    .await?
                    .into(),
            };
            for (id, loc) in &tables.locations {
                if !loc.is_address_keyed() || loc.is_symbolized() || found.contains_key(id) {
                    continue;
                }
                let Some(mapping) = tables.mappings.get(&loc.mapping_id) else {
                    continue;
                };
                if has_lines(id) {
                    continue;
                }
                from_blocks.insert(*id);
                found.insert(
                    *id,
                    UnsymbolizedLocation {
                        id: *id,
                        mapping: mapping.clone(),
                        address: loc.address,
                    },
                );
            }
            read.push(b.id().to_owned());
        }
        // A block's unsymbolized location may have lines in another block (written later).
        if !from_blocks.is_empty() {
            let none = HashSet::new();
            for b in &blocks {
                let copies = self.block_symbols(b, &none, &from_blocks).await?;
                for (id, loc) in copies.locations {
                    if loc.is_symbolized() && from_blocks.remove(&id) {
                        found.remove(&id);
                    }
                }
                if from_blocks.is_empty() {
                    break;
                }
            }
        }
        Ok(UnsymbolizedSweep {
            locations: found.into_values().collect(),
            blocks: read,
        })
    }
}
