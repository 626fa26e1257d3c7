//! The call graph: a node per frame (flat, cumulative) and an edge per caller → callee pair,
//! weighted by the value of the stacks through it.

use rustc_hash::{FxHashMap, FxHashSet};
use serde::Serialize;

use crate::frames::{FrameId, FrameProfile};

/// A node: one frame.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CallGraphNode {
    /// The frame.
    pub frame: FrameId,
    /// Value where it is the leaf.
    pub flat: i64,
    /// Value of stacks through it (once per stack).
    pub cumulative: i64,
    /// Base flat (diff).
    pub base_flat: i64,
    /// Base cumulative (diff).
    pub base_cumulative: i64,
}

/// An edge: `caller` called `callee` in stacks worth `cumulative`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CallGraphEdge {
    /// Index into [`CallGraph::nodes`].
    pub source: u32,
    /// Index into [`CallGraph::nodes`].
    pub target: u32,
    /// Value of the stacks with this call (once per stack).
    pub cumulative: i64,
    /// Base value (diff).
    pub base_cumulative: i64,
}

/// A call graph.
#[derive(Clone, Debug, Serialize)]
pub struct CallGraph {
    /// Nodes, by cumulative value (descending).
    pub nodes: Vec<CallGraphNode>,
    /// Edges, by (source, target).
    pub edges: Vec<CallGraphEdge>,
    /// Total value.
    pub total: i64,
}

impl CallGraph {
    /// The call graph of `p`.
    pub fn build(p: &FrameProfile) -> CallGraph {
        let rows = super::top(p);
        let mut index: FxHashMap<FrameId, u32> = FxHashMap::default();
        let mut nodes: Vec<CallGraphNode> = rows
            .into_iter()
            .map(|r| CallGraphNode {
                frame: r.frame,
                flat: r.flat,
                cumulative: r.cumulative,
                base_flat: r.base_flat,
                base_cumulative: r.base_cumulative,
            })
            .collect();
        nodes.sort_by(|a, b| {
            b.cumulative
                .abs()
                .cmp(&a.cumulative.abs())
                .then(a.frame.cmp(&b.frame))
        });
        for (i, n) in nodes.iter().enumerate() {
            index.insert(n.frame, i as u32);
        }
        let mut edges: FxHashMap<(u32, u32), (i64, i64)> = FxHashMap::default();
        let mut seen = FxHashSet::default();
        for s in &p.stacks {
            seen.clear();
            // frames are leaf first: frames[i + 1] calls frames[i].
            for w in s.frames.windows(2) {
                let (Some(&callee), Some(&caller)) = (index.get(&w[0]), index.get(&w[1])) else {
                    continue;
                };
                if seen.insert((caller, callee)) {
                    let e = edges.entry((caller, callee)).or_default();
                    e.0 += s.value;
                    e.1 += s.base;
                }
            }
        }
        let mut edges: Vec<CallGraphEdge> = edges
            .into_iter()
            .map(
                |((source, target), (cumulative, base_cumulative))| CallGraphEdge {
                    source,
                    target,
                    cumulative,
                    base_cumulative,
                },
            )
            .collect();
        edges.sort_by_key(|e| (e.source, e.target));
        CallGraph {
            nodes,
            edges,
            total: p.total(),
        }
    }
}
