//! [`MergedProfile`]: what the profile operators (merge, single, diff) produce — one value per
//! (group, stack), with the symbols to name the stacks.

use strata_engine::{ProfileType, StackId, SymbolTables, TimeRange};

/// A value (and, for a diff, a base value) per stack.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StackValue {
    /// The stack.
    pub stack_id: StackId,
    /// Index into [`MergedProfile::groups`] (0 when not grouped by labels).
    pub group: u32,
    /// The summed value (the compared selection's, for a diff).
    pub value: i64,
    /// The base selection's summed value, for a diff; 0 otherwise.
    pub base: i64,
}

/// A profile aggregated over a selection and time range.
#[derive(Clone, Debug)]
pub struct MergedProfile {
    /// Its profile type.
    pub profile_type: ProfileType,
    /// The time range merged (for a diff, the compared selection's).
    pub range: TimeRange,
    /// One entry per (group, stack) with a non-zero value or base, sorted by (group, stack).
    pub stacks: Vec<StackValue>,
    /// Label groups (`group by` label values, as `name=value` pairs); one empty group when not
    /// grouped.
    pub groups: Vec<Vec<(String, String)>>,
    /// Locations, functions and mappings of the stacks.
    pub symbols: SymbolTables,
    /// The sampling period of the merged profiles (the largest seen).
    pub period: i64,
    /// Whether `base` holds a second selection's values.
    pub diff: bool,
}

impl MergedProfile {
    /// An empty profile of `profile_type`.
    pub fn empty(profile_type: ProfileType, range: TimeRange) -> Self {
        MergedProfile {
            profile_type,
            range,
            stacks: Vec::new(),
            groups: vec![Vec::new()],
            symbols: SymbolTables::default(),
            period: 0,
            diff: false,
        }
    }

    /// Sum of all values.
    pub fn total(&self) -> i64 {
        self.stacks.iter().map(|s| s.value).sum()
    }

    /// Sum of all base values.
    pub fn base_total(&self) -> i64 {
        self.stacks.iter().map(|s| s.base).sum()
    }

    /// For a relative diff: scales the base values so the base total equals the compared
    /// total, so each stack's diff shows its change in share rather than in amount. Rounds to
    /// whole units; no-op when either total is 0.
    pub fn normalize_base(&mut self) {
        let (total, base_total) = (self.total(), self.base_total());
        if total == 0 || base_total == 0 {
            return;
        }
        let scale = total as f64 / base_total as f64;
        for s in &mut self.stacks {
            s.base = (s.base as f64 * scale).round() as i64;
        }
    }

    /// `self` as the compared side and `base` as the base of a diff. Both must hold the same
    /// groups layout (ungrouped).
    pub fn diff_against(self, base: MergedProfile) -> MergedProfile {
        let mut by_stack: std::collections::BTreeMap<(u32, StackId), (i64, i64)> =
            std::collections::BTreeMap::new();
        for s in &self.stacks {
            by_stack.entry((s.group, s.stack_id)).or_default().0 += s.value;
        }
        for s in &base.stacks {
            by_stack.entry((s.group, s.stack_id)).or_default().1 += s.value;
        }
        let mut symbols = self.symbols;
        symbols.merge(base.symbols);
        MergedProfile {
            profile_type: self.profile_type,
            range: self.range,
            stacks: by_stack
                .into_iter()
                .map(|((group, stack_id), (value, base))| StackValue {
                    stack_id,
                    group,
                    value,
                    base,
                })
                .collect(),
            groups: self.groups,
            symbols,
            period: self.period.max(base.period),
            diff: true,
        }
    }
}
