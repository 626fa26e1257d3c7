//! Stack filters (keep or drop stacks with a matching frame), frame filters (hide matching
//! frames) and regrouping (by function or binary) over a [`FrameProfile`].

use regex::Regex;

use crate::error::{Error, Result};
use crate::frames::{Frame, FrameProfile, FrameStack, Interner};

/// The frame field a matcher looks at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameField {
    /// Function name (or `0x…` address when unsymbolized).
    Function,
    /// Binary (mapping file name).
    Binary,
    /// Source file name.
    File,
    /// Function name as in the binary (mangled).
    SystemName,
}

/// Matches frames by a field: a substring, or a regular expression (unanchored).
#[derive(Clone, Debug)]
pub struct FrameMatcher {
    field: FrameField,
    pattern: Pattern,
    negated: bool,
}

#[derive(Clone, Debug)]
enum Pattern {
    Contains(String),
    Regex(Regex),
}

impl FrameMatcher {
    /// Frames whose `field` contains `text`.
    pub fn contains(field: FrameField, text: impl Into<String>) -> Self {
        FrameMatcher {
            field,
            pattern: Pattern::Contains(text.into()),
            negated: false,
        }
    }

    /// Frames whose `field` is exactly `text`.
    pub fn equals(field: FrameField, text: &str) -> Self {
        let re = format!("^{}$", regex::escape(text));
        Self::regex(field, &re).expect("an escaped literal is a valid regex")
    }

    /// Frames whose `field` starts with `text`.
    pub fn starts_with(field: FrameField, text: &str) -> Self {
        let re = format!("^{}", regex::escape(text));
        Self::regex(field, &re).expect("an escaped literal is a valid regex")
    }

    /// `text` escaped for use inside a regular expression.
    pub fn escape(text: &str) -> String {
        regex::escape(text)
    }

    /// The frames this one does not match.
    pub fn negate(mut self) -> Self {
        self.negated = !self.negated;
        self
    }

    /// Frames whose `field` matches the regular expression `re` anywhere.
    pub fn regex(field: FrameField, re: &str) -> Result<Self> {
        let re = Regex::new(re).map_err(|e| Error::InvalidFilter {
            filter: re.to_owned(),
            reason: e.to_string(),
        })?;
        Ok(FrameMatcher {
            field,
            pattern: Pattern::Regex(re),
            negated: false,
        })
    }

    /// Whether `frame` matches.
    pub fn matches(&self, frame: &Frame) -> bool {
        let name;
        let text = match self.field {
            FrameField::Function => {
                name = frame.display_name();
                name.as_str()
            }
            FrameField::Binary => frame.binary.as_str(),
            FrameField::File => frame.file.as_str(),
            FrameField::SystemName => frame.system_name.as_str(),
        };
        let hit = match &self.pattern {
            Pattern::Contains(s) => text.contains(s.as_str()),
            Pattern::Regex(r) => r.is_match(text),
        };
        hit != self.negated
    }
}

/// Keeps or drops whole stacks.
#[derive(Clone, Debug)]
pub enum StackFilter {
    /// Keep only stacks with a frame that matches.
    Keep(FrameMatcher),
    /// Drop stacks with a frame that matches.
    Drop(FrameMatcher),
}

/// How frames are grouped into report nodes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Grouping {
    /// One node per function (file and line ignored), as `go tool pprof` by default.
    #[default]
    Function,
    /// One node per binary; consecutive frames of one binary become one.
    Binary,
    /// One node per function and line.
    Line,
}

/// Everything that narrows or reshapes a profile before a report.
#[derive(Clone, Debug, Default)]
pub struct Filters {
    /// Applied in order; a stack must pass all.
    pub stacks: Vec<StackFilter>,
    /// Frames that match any of these are hidden (their stacks are kept).
    pub hide_frames: Vec<FrameMatcher>,
    /// Node grouping.
    pub grouping: Grouping,
}

impl FrameProfile {
    /// `self` with `filters` applied; the value of dropped stacks is added to `filtered`.
    pub fn filter(self, filters: &Filters) -> FrameProfile {
        let matches: Vec<Vec<bool>> = filters
            .stacks
            .iter()
            .map(|f| {
                let m = match f {
                    StackFilter::Keep(m) | StackFilter::Drop(m) => m,
                };
                self.frames.iter().map(|fr| m.matches(fr)).collect()
            })
            .collect();
        let hidden: Vec<bool> = self
            .frames
            .iter()
            .map(|fr| !fr.is_label && filters.hide_frames.iter().any(|m| m.matches(fr)))
            .collect();
        let mut filtered = self.filtered;
        let mut interner = Interner::default();
        let regroup = |f: &Frame| -> Frame {
            if f.is_label {
                return f.clone();
            }
            match filters.grouping {
                Grouping::Line => f.clone(),
                Grouping::Function => Frame {
                    function: f.function.clone(),
                    system_name: f.system_name.clone(),
                    file: f.file.clone(),
                    start_line: f.start_line,
                    binary: f.binary.clone(),
                    build_id: f.build_id.clone(),
                    // Unsymbolized frames stay apart by address.
                    address: if f.function.is_empty() { f.address } else { 0 },
                    inlined: f.inlined,
                    ..Frame::default()
                },
                Grouping::Binary => Frame {
                    function: if f.binary.is_empty() {
                        "[unknown binary]".to_owned()
                    } else {
                        f.binary.clone()
                    },
                    binary: f.binary.clone(),
                    build_id: f.build_id.clone(),
                    ..Frame::default()
                },
            }
        };
        let mut new_id: Vec<Option<u32>> = vec![None; self.frames.len()];
        let mut stacks = Vec::with_capacity(self.stacks.len());
        'stacks: for s in self.stacks {
            for (f, m) in filters.stacks.iter().zip(&matches) {
                let any = s.frames.iter().any(|&id| m[id as usize]);
                let keep = match f {
                    StackFilter::Keep(_) => any,
                    StackFilter::Drop(_) => !any,
                };
                if !keep {
                    filtered += s.value;
                    continue 'stacks;
                }
            }
            let mut frames = Vec::with_capacity(s.frames.len());
            for &id in &s.frames {
                if hidden[id as usize] {
                    continue;
                }
                let n = *new_id[id as usize]
                    .get_or_insert_with(|| interner.intern(regroup(&self.frames[id as usize])));
                if filters.grouping == Grouping::Binary && frames.last() == Some(&n) {
                    continue;
                }
                frames.push(n);
            }
            stacks.push(FrameStack {
                frames,
                value: s.value,
                base: s.base,
            });
        }
        FrameProfile {
            frames: interner.frames,
            stacks,
            filtered,
            ..self
        }
    }
}
