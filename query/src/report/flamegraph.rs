//! The flame graph tree: one node per call path, with cumulative, flat and (for a diff) base
//! values, pruned below a threshold and to a node limit.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use rustc_hash::FxHashMap;
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

struct Building {
    frame: FrameId,
    cumulative: i64,
    flat: i64,
    base_cumulative: i64,
    base_flat: i64,
    children: Vec<u32>,
}

impl FlameGraph {
    /// Builds the tree of `p`.
    pub fn build(p: &FrameProfile, options: &FlameGraphOptions) -> FlameGraph {
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
}
