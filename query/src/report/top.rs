//! The top table: flat and cumulative value per frame (a function, by default grouping).

use rustc_hash::FxHashSet;
use serde::Serialize;

use crate::frames::{FrameId, FrameProfile};

/// One row of the top table.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TopRow {
    /// The frame.
    pub frame: FrameId,
    /// Value where the frame is the leaf.
    pub flat: i64,
    /// Value of stacks that contain the frame (once per stack, however often it recurses).
    pub cumulative: i64,
    /// Base flat (diff).
    pub base_flat: i64,
    /// Base cumulative (diff).
    pub base_cumulative: i64,
}

/// Rows for every frame with a value, by flat value (descending), then cumulative, then name.
pub fn top(p: &FrameProfile) -> Vec<TopRow> {
    let mut rows: Vec<TopRow> = (0..p.frames.len() as FrameId)
        .map(|frame| TopRow {
            frame,
            flat: 0,
            cumulative: 0,
            base_flat: 0,
            base_cumulative: 0,
        })
        .collect();
    let mut seen = FxHashSet::default();
    for s in &p.stacks {
        if let Some(&leaf) = s.frames.first() {
            rows[leaf as usize].flat += s.value;
            rows[leaf as usize].base_flat += s.base;
        }
        seen.clear();
        for &f in &s.frames {
            if seen.insert(f) {
                rows[f as usize].cumulative += s.value;
                rows[f as usize].base_cumulative += s.base;
            }
        }
    }
    rows.retain(|r| r.cumulative != 0 || r.base_cumulative != 0);
    rows.sort_by(|a, b| {
        b.flat
            .abs()
            .cmp(&a.flat.abs())
            .then(b.cumulative.abs().cmp(&a.cumulative.abs()))
            .then_with(|| {
                p.frames[a.frame as usize]
                    .display_name()
                    .cmp(&p.frames[b.frame as usize].display_name())
            })
    });
    rows
}
