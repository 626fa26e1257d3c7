//! The flame graph tree: one node per call path, with cumulative, flat and (for a diff) base
//! values, pruned below a threshold and to a node limit.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use serde::Serialize;

use crate::frames::{Frame, FrameId, FrameProfile};

/// Pruning.
#[derive(Clone, Copy, Debug)]
pub struct FlameGraphOptions {
    /// Nodes whose cumulative value (and base) is below this fraction of the total are pruned.
    /// Default 0 (none).
    pub min_fraction: f64,
    /// At most this many nodes (the largest first, never a child without its parent).
    /// Default 0: no limit.
    pub max_nodes: usize,
}

impl Default for FlameGraphOptions {
    fn default() -> Self {
        FlameGraphOptions {
            min_fraction: 0.0,
            max_nodes: 0,
        }
    }
}

/// A node. Node 0 is the root (all stacks, no frame).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FlameNode {
    /// Its frame (meaningless for the root).
    pub frame: FrameId,
    /// Parent node (the root's is itself).
    pub parent: u32,
    /// Depth: the root 0.
    pub depth: u32,
    /// Value of stacks through this path.
    pub cumulative: i64,
    /// Value of stacks that end here.
    pub flat: i64,
    /// Base cumulative (diff).
    pub base_cumulative: i64,
    /// Base flat (diff).
    pub base_flat: i64,
    /// Children kept, by name.
    pub children: Vec<u32>,
    /// Value of children pruned away (part of `cumulative`, in no child).
    pub pruned: i64,
}

/// A flame graph.
#[derive(Clone, Debug, Serialize)]
pub struct FlameGraph {
    /// The frames nodes refer to.
    pub frames: Vec<Frame>,
    /// Nodes in depth-first order, children by name; node 0 is the root.
    pub nodes: Vec<FlameNode>,
    /// Total value.
    pub total: i64,
    /// Total base value (diff).
    pub base_total: i64,
    /// Whether this is a diff.
    pub diff: bool,
    /// Nodes pruned.
    pub pruned_nodes: u64,
    /// Deepest node.
    pub height: u32,
}

/// The tree before pruning, as parallel arrays indexed by node id (node 0 is the root). The
/// children of a node have consecutive ids, all greater than the node's own.
///
/// When no value or base is negative, a node's weight bounds its descendants'; subtrees that
/// pruning would drop anyway (weight 0 or below the threshold) are then only counted, not
/// built: their values are in their parent's `cumulative` (they show as pruned) and their
/// nodes in `hidden_nodes`.
struct Tree {
    frame: Vec<FrameId>,
    first_child: Vec<u32>,
    n_children: Vec<u32>,
    flat: Vec<i64>,
    cumulative: Vec<i64>,
    /// Empty when no stack has a base value (all zero).
    base_flat: Vec<i64>,
    /// Empty when no stack has a base value (all zero).
    base_cumulative: Vec<i64>,
    /// The first stack (index in the profile) through the node. A single pass over the stacks
    /// in profile order would create the nodes in `(first, depth)` order; that order breaks
    /// ties where the result depends on it.
    first: Vec<u32>,
    /// Whether any stack has a base value.
    has_base: bool,
    /// Nodes of the full tree that were counted but not built.
    hidden_nodes: u64,
}

/// Stacks `order[lo..hi]`, which share their first `depth` frames: the path to `node`.
struct Group {
    lo: usize,
    hi: usize,
    depth: usize,
    node: u32,
}

/// The frames of stack `s` of `p` below the first `depth` (root first), as stored: leaf first.
fn below(p: &FrameProfile, s: u32, depth: usize) -> &[FrameId] {
    let frames = &p.stacks[s as usize].frames;
    &frames[..frames.len() - depth]
}

/// Number of distinct non-empty root-first prefixes of the frames below `depth` of the stacks
/// `stacks`: the nodes of their subtree below `depth`. (Sorted, each sequence adds the frames
/// it does not share with the one before.)
fn count_nodes(p: &FrameProfile, stacks: &mut [u32], depth: usize) -> u64 {
    stacks.sort_unstable_by(|&a, &b| {
        below(p, a, depth)
            .iter()
            .rev()
            .cmp(below(p, b, depth).iter().rev())
    });
    let mut prev: &[FrameId] = &[];
    let mut count = 0;
    for &s in stacks.iter() {
        let cur = below(p, s, depth);
        let shared = cur
            .iter()
            .rev()
            .zip(prev.iter().rev())
            .take_while(|(a, b)| a == b)
            .count();
        count += (cur.len() - shared) as u64;
        prev = cur;
    }
    count
}

/// Groups at least this large are sorted by counting (two linear passes over the keys and one
/// over the frame table) rather than by comparison.
const COUNTING_SORT_MIN: usize = 1 << 14;

/// Sorts `keys` (`next frame + 1` in the high 32 bits, a stack in the low) by their high half,
/// which is at most `n_frames`: a stable counting sort.
fn counting_sort_by_frame(
    keys: &mut Vec<u64>,
    scratch: &mut Vec<u64>,
    counts: &mut Vec<usize>,
    n_frames: usize,
) {
    counts.clear();
    counts.resize(n_frames + 2, 0);
    for k in keys.iter() {
        counts[(k >> 32) as usize + 1] += 1;
    }
    for i in 1..counts.len() {
        counts[i] += counts[i - 1];
    }
    scratch.clear();
    scratch.resize(keys.len(), 0);
    for &k in keys.iter() {
        let slot = &mut counts[(k >> 32) as usize];
        scratch[*slot] = k;
        *slot += 1;
    }
    std::mem::swap(keys, scratch);
}

impl Tree {
    fn len(&self) -> usize {
        self.frame.len()
    }

    fn push(&mut self, frame: FrameId, first: u32) -> u32 {
        let id = self.frame.len() as u32;
        self.frame.push(frame);
        self.first_child.push(0);
        self.n_children.push(0);
        self.flat.push(0);
        self.cumulative.push(0);
        if self.has_base {
            self.base_flat.push(0);
            self.base_cumulative.push(0);
        }
        self.first.push(first);
        id
    }

    fn base_cumulative(&self, n: usize) -> i64 {
        self.base_cumulative.get(n).copied().unwrap_or(0)
    }

    fn base_flat(&self, n: usize) -> i64 {
        self.base_flat.get(n).copied().unwrap_or(0)
    }

    fn children(&self, n: usize) -> std::ops::Range<usize> {
        let first = self.first_child[n] as usize;
        first..first + self.n_children[n] as usize
    }

    /// A tree of only the root.
    fn new(has_base: bool) -> Tree {
        let mut t = Tree {
            frame: Vec::new(),
            first_child: Vec::new(),
            n_children: Vec::new(),
            flat: Vec::new(),
            cumulative: Vec::new(),
            base_flat: Vec::new(),
            base_cumulative: Vec::new(),
            first: Vec::new(),
            has_base,
            hidden_nodes: 0,
        };
        t.push(0, u32::MAX);
        t
    }

    /// The call tree of `p`. Stacks are grouped by their next frame, level by level (a
    /// most-significant-digit radix sort of the root-first frame sequences), so every node is
    /// made once, with its children together, and no (parent, frame) lookup per frame. Nodes
    /// whose weight (the larger of |cumulative| and |base cumulative|) is 0 or below
    /// `threshold` are not built when no value is negative (see [`Tree`]).
    fn build(p: &FrameProfile, threshold: i64) -> Tree {
        let n = p.stacks.len();
        assert!(n < u32::MAX as usize, "too many stacks for a flame graph");
        let can_hide = p.stacks.iter().all(|s| s.value >= 0 && s.base >= 0);
        let hide_below = can_hide.then_some(threshold);
        let mut t = Tree::new(p.stacks.iter().any(|s| s.base != 0));
        let mut order: Vec<u32> = (0..n as u32).collect();
        let mut sorter = GroupSorter::default();
        let mut work = vec![Group {
            lo: 0,
            hi: n,
            depth: 0,
            node: 0,
        }];
        while let Some(g) = work.pop() {
            match g.hi - g.lo {
                0 => {} // no stacks at all
                1 => t.chain(p, order[g.lo], g.depth, g.node),
                _ => {
                    let group = &mut order[g.lo..g.hi];
                    let keys = sorter.sort(p, group, g.depth);
                    t.split(p, &g, keys, group, hide_below, &mut work);
                }
            }
        }
        t.sum_up();
        t
    }

    /// Stack `s` alone below `node`: the rest of its frames are a chain (all of its weight).
    fn chain(&mut self, p: &FrameProfile, s: u32, depth: usize, node: u32) {
        let mut at = node;
        for &f in below(p, s, depth).iter().rev() {
            let id = self.push(f, s);
            self.first_child[at as usize] = id;
            self.n_children[at as usize] = 1;
            at = id;
        }
        let (a, stack) = (at as usize, &p.stacks[s as usize]);
        self.flat[a] += stack.value;
        if self.has_base {
            self.base_flat[a] += stack.base;
        }
        self.first[a] = self.first[a].min(s);
    }

    /// The children of group `g`'s node, from its stacks `order` and their `keys` (sorted by
    /// [`GroupSorter::sort`]): stacks that end at the node add to its flat value; each next
    /// frame makes a child, queued on `work` with its stacks, unless its weight is 0 or below
    /// `hide_below` (then its subtree is only counted, its value kept in the node's).
    fn split(
        &mut self,
        p: &FrameProfile,
        g: &Group,
        keys: &[u64],
        order: &mut [u32],
        hide_below: Option<i64>,
        work: &mut Vec<Group>,
    ) {
        let stack_of = |k: u64| k as u32 as usize;
        let mut i = keys.partition_point(|k| k >> 32 == 0);
        let nd = g.node as usize;
        for &k in &keys[..i] {
            let s = stack_of(k);
            self.flat[nd] += p.stacks[s].value;
            if self.has_base {
                self.base_flat[nd] += p.stacks[s].base;
            }
            self.first[nd] = self.first[nd].min(s as u32);
        }
        let first_child = self.len() as u32;
        let mut n_children = 0;
        while i < keys.len() {
            let k = keys[i] >> 32;
            let j = i + keys[i..].partition_point(|x| x >> 32 == k);
            let (mut value, mut base, mut first) = (0i64, 0i64, u32::MAX);
            for &k in &keys[i..j] {
                let s = stack_of(k);
                value += p.stacks[s].value;
                base += p.stacks[s].base;
                first = first.min(s as u32);
            }
            let weight = value.max(base);
            if hide_below.is_some_and(|threshold| weight == 0 || weight < threshold) {
                // Never kept: count its subtree, keep its value in the parent's.
                self.cumulative[nd] += value;
                if self.has_base {
                    self.base_cumulative[nd] += base;
                }
                self.first[nd] = self.first[nd].min(first);
                self.hidden_nodes += count_nodes(p, &mut order[i..j], g.depth);
            } else {
                let child = self.push((k - 1) as FrameId, u32::MAX);
                n_children += 1;
                work.push(Group {
                    lo: g.lo + i,
                    hi: g.lo + j,
                    depth: g.depth + 1,
                    node: child,
                });
            }
            i = j;
        }
        self.first_child[nd] = first_child;
        self.n_children[nd] = n_children;
    }

    /// Cumulative values and first stacks, from the flat ones: children have larger ids than
    /// their parents.
    fn sum_up(&mut self) {
        for i in (0..self.len()).rev() {
            let (mut value, mut base, mut first) = (
                self.cumulative[i] + self.flat[i],
                self.base_cumulative(i) + self.base_flat(i),
                self.first[i],
            );
            for c in self.children(i) {
                value += self.cumulative[c];
                base += self.base_cumulative(c);
                first = first.min(self.first[c]);
            }
            self.cumulative[i] = value;
            if self.has_base {
                self.base_cumulative[i] = base;
            }
            self.first[i] = first;
        }
    }

    /// Which nodes to keep: the heaviest whose weight is above 0 and `threshold` and whose
    /// parent is kept, best first (ties: the node a pass over the stacks would meet first),
    /// until `limit`. When every eligible node fits, that is all of them: found without a
    /// heap. Returns the flags and how many are set.
    fn keep(&self, threshold: i64, limit: usize) -> (Vec<bool>, usize) {
        let weight = |n: usize| self.cumulative[n].abs().max(self.base_cumulative(n).abs());
        let eligible = |n: usize| {
            let w = weight(n);
            w > 0 && w >= threshold
        };
        let mut kept = vec![false; self.len()];
        kept[0] = true;
        let mut n_kept = 1usize;
        let mut todo: Vec<usize> = vec![0];
        while let Some(id) = todo.pop() {
            for c in self.children(id) {
                if eligible(c) {
                    kept[c] = true;
                    n_kept += 1;
                    todo.push(c);
                }
            }
            if n_kept > limit {
                break;
            }
        }
        if n_kept <= limit {
            return (kept, n_kept);
        }
        kept.fill(false);
        kept[0] = true;
        n_kept = 1;
        // (weight, Reverse((first stack, depth)), node)
        type Entry = (i64, Reverse<(u32, u32)>, u32);
        let mut heap: BinaryHeap<Entry> = BinaryHeap::new();
        let push_children = |heap: &mut BinaryHeap<_>, id: usize, depth: u32| {
            for c in self.children(id) {
                if eligible(c) {
                    heap.push((weight(c), Reverse((self.first[c], depth + 1)), c as u32));
                }
            }
        };
        push_children(&mut heap, 0, 0);
        while let Some((_, Reverse((_, depth)), id)) = heap.pop() {
            if n_kept >= limit {
                break;
            }
            kept[id as usize] = true;
            n_kept += 1;
            push_children(&mut heap, id as usize, depth);
        }
        (kept, n_kept)
    }

    /// The `kept` nodes (`n_kept` of them) depth-first, children ordered by their frame's
    /// `rank` (see [`name_ranks`]) then first stack; and the deepest node's depth.
    fn emit(&self, kept: &[bool], n_kept: usize, rank: &[u32]) -> (Vec<FlameNode>, u32) {
        let mut out: Vec<FlameNode> = Vec::with_capacity(n_kept);
        let mut height = 0;
        let mut children: Vec<u32> = Vec::new();
        // (tree node, new parent id, depth)
        let mut stack: Vec<(u32, u32, u32)> = vec![(0, 0, 0)];
        while let Some((id, parent, depth)) = stack.pop() {
            let n = id as usize;
            let new_id = out.len() as u32;
            if id != 0 {
                out[parent as usize].children.push(new_id);
            }
            height = height.max(depth);
            children.clear();
            children.extend(self.children(n).filter(|&c| kept[c]).map(|c| c as u32));
            children.sort_unstable_by_key(|&c| {
                (
                    rank[self.frame[c as usize] as usize],
                    self.first[c as usize],
                )
            });
            let in_children: i64 = children.iter().map(|&c| self.cumulative[c as usize]).sum();
            out.push(FlameNode {
                frame: self.frame[n],
                parent,
                depth,
                cumulative: self.cumulative[n],
                flat: self.flat[n],
                base_cumulative: self.base_cumulative(n),
                base_flat: self.base_flat(n),
                children: Vec::with_capacity(children.len()),
                pruned: self.cumulative[n] - self.flat[n] - in_children,
            });
            for &c in children.iter().rev() {
                stack.push((c, new_id, depth + 1));
            }
        }
        (out, height)
    }
}

/// Sorts the stacks of a [`Group`] by their next frame, reusing its buffers group to group.
#[derive(Default)]
struct GroupSorter {
    keys: Vec<u64>,
    scratch: Vec<u64>,
    counts: Vec<usize>,
}

impl GroupSorter {
    /// Sorts `order`, stacks sharing their first `depth` frames, by their next frame (stably)
    /// and returns their keys in that order: 0 if the stack ends here, else 1 + its next
    /// frame, in the high 32 bits; the stack in the low.
    fn sort(&mut self, p: &FrameProfile, order: &mut [u32], depth: usize) -> &[u64] {
        let keys = &mut self.keys;
        keys.clear();
        keys.extend(order.iter().map(|&s| {
            let frames = &p.stacks[s as usize].frames;
            let next = match frames.len().checked_sub(depth + 1) {
                Some(at) => u64::from(frames[at]) + 1,
                None => 0,
            };
            (next << 32) | u64::from(s)
        }));
        let k0 = keys[0] >> 32;
        if keys.iter().any(|k| k >> 32 != k0) {
            if keys.len() >= COUNTING_SORT_MIN {
                counting_sort_by_frame(keys, &mut self.scratch, &mut self.counts, p.frames.len());
            } else {
                keys.sort_unstable_by_key(|k| k >> 32);
            }
            for (o, k) in order.iter_mut().zip(keys.iter()) {
                *o = *k as u32;
            }
        }
        &self.keys
    }
}

/// Each frame's rank by name: equal names, equal rank (children are ordered by name, then by
/// the first stack, as a pass over the stacks would have met them).
fn name_ranks(frames: &[Frame]) -> Vec<u32> {
    let mut by_name: Vec<(String, FrameId)> = frames
        .iter()
        .enumerate()
        .map(|(i, f)| (f.display_name(), i as FrameId))
        .collect();
    by_name.sort_unstable();
    let mut rank = vec![0u32; frames.len()];
    for (i, (name, f)) in by_name.iter().enumerate() {
        rank[*f as usize] = if i > 0 && by_name[i - 1].0 == *name {
            rank[by_name[i - 1].1 as usize]
        } else {
            i as u32
        };
    }
    rank
}

impl FlameGraph {
    /// Builds the tree of `p`.
    pub fn build(p: &FrameProfile, options: &FlameGraphOptions) -> FlameGraph {
        let total: i64 = p.stacks.iter().map(|s| s.value).sum();
        let base_total: i64 = p.stacks.iter().map(|s| s.base).sum();
        let threshold = (options.min_fraction * total.abs().max(base_total.abs()) as f64) as i64;
        let t = Tree::build(p, threshold);
        let limit = if options.max_nodes == 0 {
            usize::MAX
        } else {
            options.max_nodes
        };
        let (kept, n_kept) = t.keep(threshold, limit);
        let (nodes, height) = t.emit(&kept, n_kept, &name_ranks(&p.frames));
        FlameGraph {
            frames: p.frames.clone(),
            pruned_nodes: (t.len() - nodes.len()) as u64 + t.hidden_nodes,
            nodes,
            total,
            base_total,
            diff: p.diff,
            height,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::cmp::Reverse;
    use std::collections::BinaryHeap;

    use proptest::prelude::*;
    use rustc_hash::FxHashMap;

    use super::*;
    use crate::frames::FrameStack;

    struct Building {
        frame: FrameId,
        cumulative: i64,
        flat: i64,
        base_cumulative: i64,
        base_flat: i64,
        children: Vec<u32>,
    }

    /// The first version: one hash lookup per frame, a heap over every node. The oracle.
    fn naive_build(p: &FrameProfile, options: &FlameGraphOptions) -> FlameGraph {
        let mut nodes = vec![Building {
            frame: 0,
            cumulative: 0,
            flat: 0,
            base_cumulative: 0,
            base_flat: 0,
            children: Vec::new(),
        }];
        let mut child: FxHashMap<(u32, FrameId), u32> = FxHashMap::default();
        for s in &p.stacks {
            let mut at = 0u32;
            nodes[0].cumulative += s.value;
            nodes[0].base_cumulative += s.base;
            for &f in s.frames.iter().rev() {
                let next = nodes.len() as u32;
                let id = *child.entry((at, f)).or_insert(next);
                if id == next {
                    nodes.push(Building {
                        frame: f,
                        cumulative: 0,
                        flat: 0,
                        base_cumulative: 0,
                        base_flat: 0,
                        children: Vec::new(),
                    });
                    nodes[at as usize].children.push(id);
                }
                let n = &mut nodes[id as usize];
                n.cumulative += s.value;
                n.base_cumulative += s.base;
                at = id;
            }
            let n = &mut nodes[at as usize];
            n.flat += s.value;
            n.base_flat += s.base;
        }
        drop(child);
        let total = nodes[0].cumulative;
        let base_total = nodes[0].base_cumulative;
        let weight = |n: &Building| n.cumulative.abs().max(n.base_cumulative.abs());
        let threshold = (options.min_fraction * total.abs().max(base_total.abs()) as f64) as i64;
        let limit = if options.max_nodes == 0 {
            usize::MAX
        } else {
            options.max_nodes
        };
        // Keep the heaviest nodes whose parent is kept, best first.
        let mut kept = vec![false; nodes.len()];
        kept[0] = true;
        let mut n_kept = 1usize;
        let mut heap: BinaryHeap<(i64, Reverse<u32>)> = BinaryHeap::new();
        let push_children = |heap: &mut BinaryHeap<_>, id: usize, nodes: &[Building]| {
            for &c in &nodes[id].children {
                let w = weight(&nodes[c as usize]);
                if w > 0 && w >= threshold {
                    heap.push((w, Reverse(c)));
                }
            }
        };
        push_children(&mut heap, 0, &nodes);
        while let Some((_, Reverse(id))) = heap.pop() {
            if n_kept >= limit {
                break;
            }
            kept[id as usize] = true;
            n_kept += 1;
            push_children(&mut heap, id as usize, &nodes);
        }
        // Emit kept nodes depth-first, children by name.
        let names: Vec<String> = p.frames.iter().map(Frame::display_name).collect();
        let mut out: Vec<FlameNode> = Vec::with_capacity(n_kept);
        let mut height = 0;
        // (building id, new parent id, depth)
        let mut stack: Vec<(u32, u32, u32)> = vec![(0, 0, 0)];
        while let Some((id, parent, depth)) = stack.pop() {
            let b = &nodes[id as usize];
            let new_id = out.len() as u32;
            if id != 0 {
                out[parent as usize].children.push(new_id);
            }
            height = height.max(depth);
            let mut children: Vec<u32> = b
                .children
                .iter()
                .copied()
                .filter(|&c| kept[c as usize])
                .collect();
            children.sort_by(|&x, &y| {
                names[nodes[x as usize].frame as usize]
                    .cmp(&names[nodes[y as usize].frame as usize])
            });
            let in_children: i64 = children.iter().map(|&c| nodes[c as usize].cumulative).sum();
            out.push(FlameNode {
                frame: b.frame,
                parent,
                depth,
                cumulative: b.cumulative,
                flat: b.flat,
                base_cumulative: b.base_cumulative,
                base_flat: b.base_flat,
                children: Vec::new(),
                pruned: b.cumulative - b.flat - in_children,
            });
            for &c in children.iter().rev() {
                stack.push((c, new_id, depth + 1));
            }
        }
        FlameGraph {
            frames: p.frames.clone(),
            pruned_nodes: (nodes.len() - out.len()) as u64,
            nodes: out,
            total,
            base_total,
            diff: p.diff,
            height,
        }
    }

    fn profile(frames: usize, stacks: Vec<(Vec<u32>, i64, i64)>, diff: bool) -> FrameProfile {
        // Frames 2k and 2k + 1 share a name (different lines), so children tie by name.
        let frames = (0..frames)
            .map(|i| Frame {
                function: format!("f{}", i / 2),
                line: i as i64,
                ..Frame::default()
            })
            .collect();
        FrameProfile {
            profile_type: "process_cpu:cpu:nanoseconds:cpu:nanoseconds:delta"
                .parse()
                .unwrap(),
            range: strata_engine::TimeRange::ALL,
            period: 1,
            diff,
            frames,
            stacks: stacks
                .into_iter()
                .map(|(frames, value, base)| FrameStack {
                    frames,
                    value,
                    base: if diff { base } else { 0 },
                })
                .collect(),
            filtered: 0,
        }
    }

    fn json(g: &FlameGraph) -> String {
        serde_json::to_string(g).unwrap()
    }

    /// Groups large enough for the counting sort (the property test's are all small).
    #[test]
    fn large_profile_equals_naive_build() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        let stacks: Vec<(Vec<u32>, i64, i64)> = (0..3 * COUNTING_SORT_MIN)
            .map(|_| {
                let depth = next(12) as usize;
                let frames = (0..depth).map(|_| next(40) as u32).collect();
                (frames, next(100) as i64, next(50) as i64)
            })
            .collect();
        for diff in [false, true] {
            let p = profile(40, stacks.clone(), diff);
            for (min_fraction, max_nodes) in [(0.0, 0), (0.001, 0), (0.0001, 500)] {
                let options = FlameGraphOptions {
                    min_fraction,
                    max_nodes,
                };
                assert_eq!(
                    json(&FlameGraph::build(&p, &options)),
                    json(&naive_build(&p, &options)),
                    "diff {diff}, {options:?}"
                );
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        /// Same tree, same pruning, same order as the straightforward build, ties included.
        #[test]
        fn build_equals_naive_build(
            stacks in prop::collection::vec(
                (prop::collection::vec(0u32..6, 0..7), -3i64..20, -3i64..20),
                0..40,
            ),
            diff in any::<bool>(),
            negative in any::<bool>(),
            min_fraction in prop::sample::select(vec![0.0, 0.01, 0.05, 0.2, 1.0]),
            max_nodes in prop::sample::select(vec![0usize, 1, 2, 3, 5, 10, 1000]),
        ) {
            // Without negative values, subtrees pruning drops are counted, not built.
            let stacks = stacks
                .into_iter()
                .map(|(f, v, b)| if negative { (f, v, b) } else { (f, v.abs(), b.abs()) })
                .collect();
            let p = profile(6, stacks, diff);
            let options = FlameGraphOptions { min_fraction, max_nodes };
            prop_assert_eq!(json(&FlameGraph::build(&p, &options)), json(&naive_build(&p, &options)));
        }
    }
}
