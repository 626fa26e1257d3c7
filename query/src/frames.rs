//! [`FrameProfile`]: a [`MergedProfile`] with every stack spelled out as frames (inlined
//! functions expanded), which the filters and reports work on.

use std::collections::{BTreeMap, btree_map};
use std::iter::Peekable;
use std::sync::Arc;

use rustc_hash::FxHashMap;
use strata_engine::{LocationId, ProfileType, StackId, TimeRange};

use crate::profile::MergedProfile;

/// Index into [`FrameProfile::frames`].
pub type FrameId = u32;

/// One frame: a function at a line in a binary, an unsymbolized address, or a label group.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default, serde::Serialize)]
pub struct Frame {
    /// Function name (demangled); empty when unsymbolized.
    pub function: String,
    /// Function name as in the binary.
    pub system_name: String,
    /// Source file.
    pub file: String,
    /// Line in the source file (0 if unknown).
    pub line: i64,
    /// First line of the function (0 if unknown).
    pub start_line: i64,
    /// Binary (mapping file name).
    pub binary: String,
    /// Build ID of the binary.
    pub build_id: String,
    /// Instruction address (0 if not known).
    pub address: u64,
    /// A `name=value` group frame (from `group by` labels) rather than code.
    pub is_label: bool,
    /// Inlined into the frame after it (its caller): both come from one location.
    pub inlined: bool,
}

impl Frame {
    /// The name shown: the function, or `0x<address>` with the binary when unsymbolized.
    pub fn display_name(&self) -> String {
        if !self.function.is_empty() {
            self.function.clone()
        } else if self.binary.is_empty() {
            format!("{:#x}", self.address)
        } else {
            let base = self.binary.rsplit('/').next().unwrap_or(&self.binary);
            format!("{base} {:#x}", self.address)
        }
    }
}

/// A stack of frames (leaf first) with its value (and base, for a diff).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FrameStack {
    /// Frames, leaf first; label-group frames (if any) come last, at the root.
    pub frames: Vec<FrameId>,
    /// Value.
    pub value: i64,
    /// Base value (diff).
    pub base: i64,
}

/// A profile as frame stacks.
#[derive(Clone, Debug)]
pub struct FrameProfile {
    /// Profile type.
    pub profile_type: ProfileType,
    /// Time range.
    pub range: TimeRange,
    /// Sampling period.
    pub period: i64,
    /// Whether stacks carry a base (diff).
    pub diff: bool,
    /// Interned frames.
    pub frames: Vec<Frame>,
    /// The stacks.
    pub stacks: Vec<FrameStack>,
    /// Value removed by stack filters (Parca's `filtered`).
    pub filtered: i64,
}

impl FrameProfile {
    /// Spells out the stacks of `p`. Stacks whose symbols are unknown become one frame.
    pub fn resolve(p: &MergedProfile) -> FrameProfile {
        let mut interner = Interner::default();
        // Frames of each location, innermost inlined first.
        let mut location_frames: FxHashMap<LocationId, Arc<[FrameId]>> = FxHashMap::default();
        let mut group_frames: Vec<Vec<FrameId>> = Vec::with_capacity(p.groups.len());
        for g in &p.groups {
            group_frames.push(
                g.iter()
                    .rev()
                    .map(|(n, v)| {
                        interner.intern(Frame {
                            function: format!("{n}={v}"),
                            is_label: true,
                            ..Frame::default()
                        })
                    })
                    .collect(),
            );
        }
        let mut stacks = Vec::with_capacity(p.stacks.len());
        let mut lookup = StackLookup::new(&p.symbols.stacks);
        // Frames are gathered here, then copied out in one allocation of the right size.
        let mut frames: Vec<FrameId> = Vec::new();
        for s in &p.stacks {
            frames.clear();
            match lookup.get(s.stack_id) {
                Some(locs) => {
                    for l in locs {
                        let fs = location_frames
                            .entry(*l)
                            .or_insert_with(|| location_to_frames(p, *l, &mut interner));
                        frames.extend_from_slice(fs);
                    }
                }
                None => frames.push(interner.intern(Frame {
                    function: format!("unknown stack {:#x}", s.stack_id.0),
                    ..Frame::default()
                })),
            }
            if let Some(g) = group_frames.get(s.group as usize) {
                frames.extend_from_slice(g);
            }
            stacks.push(FrameStack {
                frames: frames.as_slice().to_vec(),
                value: s.value,
                base: s.base,
            });
        }
        FrameProfile {
            profile_type: p.profile_type.clone(),
            range: p.range,
            period: p.period,
            diff: p.diff,
            frames: interner.frames,
            stacks,
            filtered: 0,
        }
    }

    /// Sum of values.
    pub fn total(&self) -> i64 {
        self.stacks.iter().map(|s| s.value).sum()
    }

    /// Sum of base values.
    pub fn base_total(&self) -> i64 {
        self.stacks.iter().map(|s| s.base).sum()
    }
}

/// Finds stacks in the symbol tables' sorted map, stepping through it in order while the IDs
/// asked for ascend (they do within each group of a merged profile) instead of searching the
/// whole tree for every stack.
struct StackLookup<'a> {
    map: &'a BTreeMap<StackId, Vec<LocationId>>,
    cursor: Peekable<btree_map::Range<'a, StackId, Vec<LocationId>>>,
}

impl<'a> StackLookup<'a> {
    fn new(map: &'a BTreeMap<StackId, Vec<LocationId>>) -> Self {
        StackLookup {
            map,
            cursor: map.range(..).peekable(),
        }
    }

    fn get(&mut self, id: StackId) -> Option<&'a Vec<LocationId>> {
        // A few steps forward, else a search from the root.
        for _ in 0..8 {
            match self.cursor.peek() {
                Some(&(k, v)) if *k == id => return Some(v),
                Some(&(k, _)) if *k < id => {
                    self.cursor.next();
                }
                _ => break,
            }
        }
        self.cursor = self.map.range(id..).peekable();
        match self.cursor.peek() {
            Some(&(k, v)) if *k == id => Some(v),
            _ => None,
        }
    }
}

fn location_to_frames(
    p: &MergedProfile,
    id: LocationId,
    interner: &mut Interner,
) -> Arc<[FrameId]> {
    let Some(loc) = p.symbols.locations.get(&id) else {
        return Arc::from(vec![interner.intern(Frame {
            function: format!("unknown location {:#x}", id.0),
            ..Frame::default()
        })]);
    };
    let mapping = p.symbols.mappings.get(&loc.mapping_id);
    let binary = mapping.map(|m| m.filename.clone()).unwrap_or_default();
    let build_id = mapping.map(|m| m.build_id.clone()).unwrap_or_default();
    if loc.lines.is_empty() {
        return Arc::from(vec![interner.intern(Frame {
            binary,
            build_id,
            address: loc.address,
            ..Frame::default()
        })]);
    }
    let last = loc.lines.len() - 1;
    loc.lines
        .iter()
        .enumerate()
        .map(|(i, line)| {
            let f = p.symbols.functions.get(&line.function_id);
            interner.intern(Frame {
                function: f.map(|f| f.name.clone()).unwrap_or_default(),
                system_name: f.map(|f| f.system_name.clone()).unwrap_or_default(),
                file: f.map(|f| f.filename.clone()).unwrap_or_default(),
                line: line.line,
                start_line: f.map_or(0, |f| f.start_line),
                binary: binary.clone(),
                build_id: build_id.clone(),
                address: loc.address,
                is_label: false,
                inlined: i != last,
            })
        })
        .collect()
}

/// Interns frames.
#[derive(Default)]
pub(crate) struct Interner {
    pub frames: Vec<Frame>,
    ids: FxHashMap<Frame, FrameId>,
}

impl Interner {
    pub fn intern(&mut self, f: Frame) -> FrameId {
        if let Some(id) = self.ids.get(&f) {
            return *id;
        }
        let id = self.frames.len() as FrameId;
        self.frames.push(f.clone());
        self.ids.insert(f, id);
        id
    }
}
