//! Stacks and the symbols they point to: locations, functions and mappings.

use serde::{Deserialize, Serialize};

use xxhash_rust::xxh3::xxh3_64;

use super::id::{FunctionId, IdHasher, LocationId, MappingId, StackId, nonzero, tag};

/// A loaded binary or library: where it was mapped and which build it was.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Mapping {
    /// The build id (e.g. the GNU build-id note in hex); empty when unknown.
    pub build_id: String,
    /// The object's file name, e.g. `/usr/bin/app` or `[vdso]`.
    pub filename: String,
    /// First mapped address.
    pub memory_start: u64,
    /// End of the mapped range (exclusive).
    pub memory_limit: u64,
    /// File offset of the first mapped byte.
    pub file_offset: u64,
}

impl Mapping {
    /// The content-addressed ID.
    pub fn id(&self) -> MappingId {
        let mut h = IdHasher::new(tag::MAPPING);
        h.str(&self.build_id)
            .str(&self.filename)
            .u64(self.memory_start)
            .u64(self.memory_limit)
            .u64(self.file_offset);
        MappingId(h.finish())
    }
}

/// A function as the symbolizer or the profiler named it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Function {
    /// Human-readable (demangled) name.
    pub name: String,
    /// Name as the system knows it, e.g. a mangled C++ name.
    pub system_name: String,
    /// Source file.
    pub filename: String,
    /// First line of the function in `filename`; 0 when unknown.
    pub start_line: i64,
}

impl Function {
    /// The content-addressed ID.
    pub fn id(&self) -> FunctionId {
        let mut h = IdHasher::new(tag::FUNCTION);
        h.str(&self.name)
            .str(&self.system_name)
            .str(&self.filename)
            .i64(self.start_line);
        FunctionId(h.finish())
    }
}

/// One (possibly inlined) frame of a location.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Line {
    /// The function.
    pub function_id: FunctionId,
    /// Source line; 0 when unknown.
    pub line: i64,
}

/// A code address and the frames it stands for; the last line is the outermost caller into
/// which the earlier lines were inlined (pprof's convention).
///
/// A location with a mapping and a non-zero address is identified by those two alone, so it may
/// arrive unsymbolized (no lines) and receive its lines later under the same [`LocationId`].
/// A location without an address (interpreted languages, JFR) is identified by its lines.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Location {
    /// The mapping, or [`MappingId::NONE`].
    pub mapping_id: MappingId,
    /// The instruction address; 0 when unknown.
    pub address: u64,
    /// Frames, innermost (inlined) first.
    pub lines: Vec<Line>,
}

impl Location {
    /// Whether this location is identified by mapping and address alone.
    pub fn is_address_keyed(&self) -> bool {
        self.address != 0 && self.mapping_id != MappingId::NONE
    }

    /// Whether the location carries symbols.
    pub fn is_symbolized(&self) -> bool {
        !self.lines.is_empty()
    }

    /// The content-addressed ID.
    pub fn id(&self) -> LocationId {
        let mut h = IdHasher::new(tag::LOCATION);
        h.u64(self.mapping_id.0).u64(self.address);
        if !self.is_address_keyed() {
            h.u64(self.lines.len() as u64);
            for l in &self.lines {
                h.u64(l.function_id.0).i64(l.line);
            }
        }
        LocationId(h.finish())
    }
}

/// The content-addressed ID of a stack given its locations, leaf first.
pub fn stack_id(locations: &[LocationId]) -> StackId {
    // The hottest ID (one per sample): its encoding (tag, u64 count, u64 per location) is
    // written straight into a stack buffer for the usual depths.
    const DEPTH: usize = 64;
    let len = 9 + 8 * locations.len();
    let mut inline = [0u8; 9 + 8 * DEPTH];
    let mut spill = Vec::new();
    let buf: &mut [u8] = if locations.len() <= DEPTH {
        &mut inline[..len]
    } else {
        spill.resize(len, 0);
        &mut spill
    };
    buf[0] = tag::STACK;
    buf[1..9].copy_from_slice(&(locations.len() as u64).to_le_bytes());
    for (chunk, l) in buf[9..].chunks_exact_mut(8).zip(locations) {
        chunk.copy_from_slice(&l.0.to_le_bytes());
    }
    StackId(nonzero(xxh3_64(buf)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn address_keyed_locations_keep_their_id_when_symbolized() {
        let m = Mapping {
            build_id: "ab12".into(),
            filename: "/bin/app".into(),
            ..Default::default()
        };
        let bare = Location {
            mapping_id: m.id(),
            address: 0x1234,
            lines: vec![],
        };
        let f = Function {
            name: "main".into(),
            ..Default::default()
        };
        let symbolized = Location {
            lines: vec![Line {
                function_id: f.id(),
                line: 7,
            }],
            ..bare.clone()
        };
        assert_eq!(bare.id(), symbolized.id());
        let no_addr = Location {
            mapping_id: MappingId::NONE,
            address: 0,
            lines: vec![],
        };
        let no_addr_fn = Location {
            lines: symbolized.lines.clone(),
            ..no_addr.clone()
        };
        assert_ne!(no_addr.id(), no_addr_fn.id());
    }

    #[test]
    fn stack_ids_depend_on_order() {
        let a = LocationId(1);
        let b = LocationId(2);
        assert_ne!(stack_id(&[a, b]), stack_id(&[b, a]));
        assert_eq!(stack_id(&[a, b]), stack_id(&[a, b]));
    }
}
