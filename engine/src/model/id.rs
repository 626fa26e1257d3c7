//! Content-addressed identifiers.
//!
//! Every ID is the xxh3-64 hash (seed 0) of a canonical byte encoding of the thing it names,
//! prefixed by a one-byte domain tag, so equal content gets equal IDs in every profile, block
//! and process. The encodings are specified in `storage-format.md` ("Identifiers").

use std::fmt;

use serde::{Deserialize, Serialize};
use xxhash_rust::xxh3::xxh3_64;

macro_rules! content_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Default)]
        #[serde(transparent)]
        pub struct $name(pub u64);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{:016x}", self.0)
            }
        }
    };
}

content_id!(
    /// Identifies a series: the hash of its sorted label set.
    SeriesId
);
content_id!(
    /// Identifies a stack: the hash of its location IDs, leaf first.
    StackId
);
content_id!(
    /// Identifies a location: its mapping and address, or (without an address) its lines too.
    LocationId
);
content_id!(
    /// Identifies a function: the hash of name, system name, file name and start line.
    FunctionId
);
content_id!(
    /// Identifies a mapping: the hash of build id, file name, start, limit and offset.
    /// `MappingId(0)` means "no mapping".
    MappingId
);

impl MappingId {
    /// The absent mapping.
    pub const NONE: MappingId = MappingId(0);
}

/// Domain tags that keep the hash spaces of different kinds of IDs apart.
pub(crate) mod tag {
    pub const SERIES: u8 = 1;
    pub const STACK: u8 = 2;
    pub const LOCATION: u8 = 3;
    pub const FUNCTION: u8 = 4;
    pub const MAPPING: u8 = 5;
}

/// Bytes an [`IdHasher`] keeps inline before it moves its encoding to the heap: enough for a
/// series' labels or a function's names in most cases.
const INLINE_BYTES: usize = 256;

/// Builder of a canonical encoding and its hash. The encoding is gathered and hashed in one
/// call (xxh3's one-shot function, which gives exactly the streaming digest of the same bytes
/// at a fraction of the cost for short inputs); short encodings stay on the stack.
pub(crate) struct IdHasher {
    inline: [u8; INLINE_BYTES],
    len: usize,
    spill: Vec<u8>,
}

impl IdHasher {
    pub fn new(tag: u8) -> Self {
        let mut h = IdHasher {
            inline: [0; INLINE_BYTES],
            len: 0,
            spill: Vec::new(),
        };
        h.bytes(&[tag]);
        h
    }

    #[inline]
    fn bytes(&mut self, b: &[u8]) {
        if self.spill.is_empty() && self.len + b.len() <= INLINE_BYTES {
            self.inline[self.len..self.len + b.len()].copy_from_slice(b);
            self.len += b.len();
        } else {
            if self.spill.is_empty() {
                self.spill.reserve(2 * (self.len + b.len()));
                self.spill.extend_from_slice(&self.inline[..self.len]);
            }
            self.spill.extend_from_slice(b);
        }
    }

    /// A string: u32 LE byte length, then the UTF-8 bytes.
    pub fn str(&mut self, s: &str) -> &mut Self {
        self.bytes(&(s.len() as u32).to_le_bytes());
        self.bytes(s.as_bytes());
        self
    }

    /// A 64-bit integer, little endian.
    #[inline]
    pub fn u64(&mut self, v: u64) -> &mut Self {
        self.bytes(&v.to_le_bytes());
        self
    }

    /// A signed 64-bit integer, little endian two's complement.
    pub fn i64(&mut self, v: i64) -> &mut Self {
        self.u64(v as u64)
    }

    /// The hash; 0 is reserved for "absent", so a zero digest becomes 1.
    pub fn finish(&self) -> u64 {
        let encoding = if self.spill.is_empty() {
            &self.inline[..self.len]
        } else {
            &self.spill[..]
        };
        nonzero(xxh3_64(encoding))
    }
}

/// A digest as an ID: 0 is reserved for "absent", so a zero digest becomes 1.
#[inline]
pub(crate) fn nonzero(digest: u64) -> u64 {
    match digest {
        0 => 1,
        v => v,
    }
}

/// A `Hasher` for keys that are already well-mixed 64-bit hashes (content IDs) or small
/// integers: one multiply (Fibonacci hashing) instead of SipHash.
#[derive(Default, Clone, Copy)]
pub(crate) struct IdKeyHasher(u64);

impl std::hash::Hasher for IdKeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut b = [0u8; 8];
            b[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(b));
        }
    }

    fn write_u64(&mut self, v: u64) {
        self.0 = (self.0.rotate_left(5) ^ v).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }

    fn write_u32(&mut self, v: u32) {
        self.write_u64(v as u64);
    }
}

/// Hash maps keyed by IDs.
pub(crate) type IdMap<K, V> =
    std::collections::HashMap<K, V, std::hash::BuildHasherDefault<IdKeyHasher>>;
/// Hash sets of IDs.
pub(crate) type IdSet<K> = std::collections::HashSet<K, std::hash::BuildHasherDefault<IdKeyHasher>>;
