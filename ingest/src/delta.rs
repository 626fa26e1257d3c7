//! Server-side deltas of cumulative profiles.
//!
//! Go's allocation, mutex and block profiles are cumulative: each scrape holds the totals since
//! the process started. [`DeltaTracker`] remembers, per series and profile type, the previous
//! profile's value per stack, so normalization can also store each interval's increase under
//! the `:delta` type (`memory:alloc_space:bytes:space:bytes:delta`), which makes "allocations in
//! the last 10 s" a plain query.
//!
//! **Resets.** A cumulative value never decreases while its process lives. When any stack's
//! value is lower than in the previous profile of the same series, the process restarted: the
//! new profile's values are then themselves the increase since the restart and are stored as
//! the delta. The first profile of a series only sets the baseline (no delta: the interval's
//! start is unknown). A profile not newer than the previous one is ignored.

use rustc_hash::FxHashMap as HashMap;

use strata_engine::{ProfileType, SeriesId, StackId};

/// Whether `pt` holds cumulative totals (Go's `allocs`, `mutex` and `block` profiles).
pub fn is_cumulative(pt: &ProfileType) -> bool {
    !pt.delta
        && match pt.name.as_str() {
            "memory" => pt.sample_type.starts_with("alloc_"),
            "mutex" | "block" => true,
            _ => false,
        }
}

/// The `:delta` variant of a cumulative type.
pub fn delta_type(pt: &ProfileType) -> ProfileType {
    ProfileType {
        delta: true,
        ..pt.clone()
    }
}

#[derive(Debug)]
struct Baseline {
    timestamp_ns: i64,
    values: HashMap<StackId, i64>,
}

/// The increase of one interval: its length and the positive per-stack increases.
#[derive(Debug, PartialEq)]
pub struct Increase {
    /// Nanoseconds since the previous profile of the series.
    pub duration_ns: i64,
    /// Whether the values went down, i.e. the process restarted.
    pub reset: bool,
    /// Per stack, the increase (only stacks that increased).
    pub values: Vec<(StackId, i64)>,
}

/// Where normalization gets the [`DeltaTracker`] from, asked only when a profile has a
/// cumulative type: a tracker itself, or a shared one that is locked on first use, so that
/// profiles without cumulative types never wait for it.
pub trait DeltaSource {
    /// The tracker.
    fn tracker(&mut self) -> &mut DeltaTracker;
}

impl DeltaSource for DeltaTracker {
    fn tracker(&mut self) -> &mut DeltaTracker {
        self
    }
}

/// Identifies a baseline: the series and the profile type (as text).
pub type DeltaKey = (SeriesId, String);

/// Previous cumulative profiles, per (series, profile type). Bounded: past `max_series`
/// entries the oldest baselines are forgotten (those series restart from a new baseline).
///
/// Baselines move forward as profiles are normalized. If the batch is then not stored, the
/// caller [`forgets`](DeltaTracker::forget) the baselines it [`touched`](DeltaTracker::take_touched),
/// so the next profile starts a new baseline instead of yielding a wrong increase.
#[derive(Debug)]
pub struct DeltaTracker {
    baselines: HashMap<DeltaKey, Baseline>,
    max_series: usize,
    touched: Vec<DeltaKey>,
}

impl DeltaTracker {
    /// A tracker keeping at most `max_series` baselines.
    pub fn new(max_series: usize) -> Self {
        DeltaTracker {
            baselines: HashMap::default(),
            max_series: max_series.max(1),
            touched: Vec::new(),
        }
    }

    /// The baselines updated since the last call (and clears that list).
    pub fn take_touched(&mut self) -> Vec<DeltaKey> {
        std::mem::take(&mut self.touched)
    }

    /// Drops these baselines (their batch was not stored).
    pub fn forget(&mut self, keys: &[DeltaKey]) {
        for k in keys {
            self.baselines.remove(k);
        }
    }

    /// Baselines held.
    pub fn len(&self) -> usize {
        self.baselines.len()
    }

    /// Whether no baseline is held.
    pub fn is_empty(&self) -> bool {
        self.baselines.is_empty()
    }

    /// Records a new cumulative profile of `series` and returns its increase over the previous
    /// one, or `None` for the first profile (or an out-of-order one).
    pub fn update(
        &mut self,
        series: SeriesId,
        pt: &ProfileType,
        timestamp_ns: i64,
        current: HashMap<StackId, i64>,
    ) -> Option<Increase> {
        let key = (series, pt.to_string());
        if let Some(prev) = self.baselines.get(&key)
            && timestamp_ns <= prev.timestamp_ns
        {
            return None;
        }
        if !self.baselines.contains_key(&key) && self.baselines.len() >= self.max_series {
            // Forget the stalest baseline.
            if let Some(oldest) = self
                .baselines
                .iter()
                .min_by_key(|(_, b)| b.timestamp_ns)
                .map(|(k, _)| k.clone())
            {
                self.baselines.remove(&oldest);
            }
        }
        self.touched.push(key.clone());
        let prev = self.baselines.insert(
            key,
            Baseline {
                timestamp_ns,
                values: current,
            },
        )?;
        let now = &self.baselines[&(series, pt.to_string())];
        let reset = now
            .values
            .iter()
            .any(|(s, v)| prev.values.get(s).is_some_and(|p| v < p));
        let mut values: Vec<(StackId, i64)> = now
            .values
            .iter()
            .filter_map(|(s, &v)| {
                let d = if reset {
                    v
                } else {
                    v - prev.values.get(s).copied().unwrap_or(0)
                };
                (d > 0).then_some((*s, d))
            })
            .collect();
        values.sort();
        Some(Increase {
            duration_ns: timestamp_ns - prev.timestamp_ns,
            reset,
            values,
        })
    }
}

#[cfg(test)]
mod tests {
    fn map<const N: usize>(a: [(StackId, i64); N]) -> rustc_hash::FxHashMap<StackId, i64> {
        a.into_iter().collect()
    }

    use super::*;

    fn pt() -> ProfileType {
        "memory:alloc_space:bytes:space:bytes".parse().unwrap()
    }

    #[test]
    fn increases_resets_and_first_sight() {
        let mut t = DeltaTracker::new(10);
        let s = SeriesId(7);
        let (a, b) = (StackId(1), StackId(2));
        assert_eq!(t.update(s, &pt(), 10, map([(a, 100), (b, 5)])), None);
        let inc = t.update(s, &pt(), 20, map([(a, 150), (b, 5)])).unwrap();
        assert_eq!(
            inc,
            Increase {
                duration_ns: 10,
                reset: false,
                values: vec![(a, 50)]
            }
        );
        // Out of order: ignored, baseline kept.
        assert_eq!(t.update(s, &pt(), 15, map([(a, 1)])), None);
        // A restart: values went down; the new totals are the increase.
        let inc = t.update(s, &pt(), 30, map([(a, 40), (b, 9)])).unwrap();
        assert_eq!(
            inc,
            Increase {
                duration_ns: 10,
                reset: true,
                values: vec![(a, 40), (b, 9)]
            }
        );
    }

    #[test]
    fn cumulative_types_are_go_allocs_mutex_block() {
        for (s, want) in [
            ("memory:alloc_space:bytes:space:bytes", true),
            ("memory:inuse_space:bytes:space:bytes", false),
            ("mutex:delay:nanoseconds:contentions:count", true),
            ("block:contentions:count:contentions:count", true),
            ("goroutine:goroutine:count:goroutine:count", false),
            ("process_cpu:cpu:nanoseconds:cpu:nanoseconds:delta", false),
            ("memory:alloc_space:bytes:space:bytes:delta", false),
        ] {
            assert_eq!(is_cumulative(&s.parse().unwrap()), want, "{s}");
        }
    }

    #[test]
    fn forgotten_baselines_start_over() {
        let mut t = DeltaTracker::new(10);
        let s = SeriesId(1);
        t.update(s, &pt(), 10, map([(StackId(1), 5)]));
        assert!(t.update(s, &pt(), 20, map([(StackId(1), 9)])).is_some());
        // The batch with the second profile was not stored: its baseline is dropped, so the
        // next profile starts over instead of claiming an increase over unstored data.
        let touched = t.take_touched();
        assert_eq!(touched.len(), 2);
        t.forget(&touched);
        assert_eq!(t.update(s, &pt(), 30, map([(StackId(1), 12)])), None);
    }

    #[test]
    fn baselines_are_bounded() {
        let mut t = DeltaTracker::new(2);
        for i in 0..5 {
            t.update(SeriesId(i), &pt(), i as i64, map([]));
        }
        assert_eq!(t.len(), 2);
    }
}
