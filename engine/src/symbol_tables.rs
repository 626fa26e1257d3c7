//! [`SymbolTables`]: stacks and symbols keyed by their content-addressed IDs.

use std::collections::BTreeMap;

use crate::model::{
    Function, FunctionId, IdSet, Location, LocationId, Mapping, MappingId, StackId,
};

/// Stacks, locations, functions and mappings keyed by ID. Returned by
/// [`Engine::resolve_stacks`](crate::Engine::resolve_stacks) and written to every block.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SymbolTables {
    /// Stacks: location IDs, leaf first.
    pub stacks: BTreeMap<StackId, Vec<LocationId>>,
    /// Locations.
    pub locations: BTreeMap<LocationId, Location>,
    /// Functions.
    pub functions: BTreeMap<FunctionId, Function>,
    /// Mappings.
    pub mappings: BTreeMap<MappingId, Mapping>,
}

impl SymbolTables {
    /// Adds a location; a symbolized one replaces an unsymbolized one with the same ID.
    pub fn insert_location(&mut self, id: LocationId, loc: Location) {
        match self.locations.get_mut(&id) {
            Some(existing) if !existing.is_symbolized() && loc.is_symbolized() => *existing = loc,
            Some(_) => {}
            None => {
                self.locations.insert(id, loc);
            }
        }
    }

    /// Adds everything from `other` (symbolized locations win).
    pub fn merge(&mut self, other: SymbolTables) {
        self.stacks.extend(other.stacks);
        self.functions.extend(other.functions);
        self.mappings.extend(other.mappings);
        for (id, loc) in other.locations {
            self.insert_location(id, loc);
        }
    }

    /// Locations referenced by the stacks held that are absent or unsymbolized here, each
    /// once.
    pub(crate) fn unsymbolized_locations(&self) -> Vec<LocationId> {
        let mut seen: IdSet<LocationId> = IdSet::default();
        self.stacks
            .values()
            .flatten()
            .filter(|l| seen.insert(**l))
            .filter(|l| self.locations.get(l).is_none_or(|x| !x.is_symbolized()))
            .copied()
            .collect()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.stacks.is_empty()
            && self.locations.is_empty()
            && self.functions.is_empty()
            && self.mappings.is_empty()
    }
}
