//! LLVM's text sample-profile format, for clang's and rustc's `-fprofile-sample-use`:
//!
//! ```text
//! function:total_samples:head_samples
//!  line_offset: samples [callee:calls ...]
//! ```
//!
//! Line offsets are relative to the function's first line. A stack sample counts at its leaf's
//! line; each caller's line records a call to the frame below it. Names are the binary's
//! (mangled) names, which is what the compiler matches. Frames without a known function or
//! start line are left out. Inlined frames are written as functions of their own (a flat
//! profile), which the reader accepts.

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::frames::{Frame, FrameProfile};

#[derive(Default)]
struct Body {
    /// line offset -> (samples, callee -> calls)
    lines: BTreeMap<i64, (i64, BTreeMap<String, i64>)>,
    head: i64,
}

fn name(f: &Frame) -> Option<&str> {
    if f.is_label || f.function.is_empty() || f.start_line <= 0 || f.line < f.start_line {
        return None;
    }
    Some(if f.system_name.is_empty() {
        &f.function
    } else {
        &f.system_name
    })
}

/// The profile in LLVM's text sample-profile format; functions by total (their own lines'
/// samples), hottest first.
/// Negative (diff) values are left out.
pub fn llvm_sample(p: &FrameProfile) -> String {
    let mut bodies: BTreeMap<String, Body> = BTreeMap::new();
    for s in &p.stacks {
        let v = s.value - s.base;
        if v <= 0 {
            continue;
        }
        for (i, &id) in s.frames.iter().enumerate() {
            let f = &p.frames[id as usize];
            let Some(fname) = name(f) else { continue };
            let offset = f.line - f.start_line;
            let body = bodies.entry(fname.to_owned()).or_default();
            let line = body.lines.entry(offset).or_default();
            if i == 0 {
                line.0 += v;
            } else if let Some(callee) = name(&p.frames[s.frames[i - 1] as usize]) {
                *line.1.entry(callee.to_owned()).or_default() += v;
            }
        }
        // The outermost named frame's caller is unknown; its entry counts as a head sample.
        if let Some(root) = s
            .frames
            .iter()
            .rev()
            .find_map(|&id| name(&p.frames[id as usize]))
        {
            bodies.entry(root.to_owned()).or_default().head += v;
        }
    }
    // Head samples: calls into each function from named callers.
    let mut heads: BTreeMap<String, i64> = BTreeMap::new();
    for b in bodies.values() {
        for (_, calls) in b.lines.values() {
            for (callee, n) in calls {
                *heads.entry(callee.clone()).or_default() += n;
            }
        }
    }
    let mut functions: Vec<(i64, &String, &Body)> = bodies
        .iter()
        .map(|(n, b)| {
            // As AutoFDO: a function's total is its own lines' samples; calls are branch
            // counts to the callee, which has its own total.
            let total = b.lines.values().map(|(s, _)| s).sum();
            (total, n, b)
        })
        .collect();
    functions.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(b.1)));
    let mut out = String::new();
    for (total, fname, body) in functions {
        let head = heads.get(fname).copied().unwrap_or(0) + body.head;
        let _ = writeln!(out, "{fname}:{total}:{head}");
        for (offset, (samples, calls)) in &body.lines {
            let _ = write!(out, " {offset}: {samples}");
            for (callee, n) in calls {
                let _ = write!(out, " {callee}:{n}");
            }
            out.push('\n');
        }
    }
    out
}
