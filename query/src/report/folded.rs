//! Folded stacks: one line per distinct stack, `root;…;leaf value`, as inferno, speedscope and
//! Brendan Gregg's flamegraph.pl read.

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::frames::FrameProfile;

/// The folded text; lines sorted, identical stacks summed, zero totals left out. For a diff,
/// the value is `value - base`.
pub fn folded(p: &FrameProfile) -> String {
    let names: Vec<String> = p
        .frames
        .iter()
        .map(|f| f.display_name().replace([';', '\n'], "_"))
        .collect();
    let mut lines: BTreeMap<String, i64> = BTreeMap::new();
    for s in &p.stacks {
        let mut key = String::new();
        for (i, &f) in s.frames.iter().rev().enumerate() {
            if i > 0 {
                key.push(';');
            }
            key.push_str(&names[f as usize]);
        }
        *lines.entry(key).or_default() += s.value - s.base;
    }
    let mut out = String::new();
    for (stack, v) in lines {
        if v != 0 {
            let _ = writeln!(out, "{stack} {v}");
        }
    }
    out
}
