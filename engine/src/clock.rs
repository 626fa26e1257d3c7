//! [`Clock`]: where the engine takes the wall-clock time and new block ids from. The system
//! clock and random ULIDs by default ([`SystemClock`]); a [`FixedClock`] makes every block id
//! and creation time reproducible (format fixtures, tests), through
//! [`Engine::open_with_clock`](crate::Engine::open_with_clock).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The source of the wall-clock time (block creation times, retention by age) and of new block
/// ids (ULIDs).
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// The current time.
    fn now(&self) -> SystemTime;

    /// A new, unique block id: a ULID in its 26-character text form.
    fn new_block_id(&self) -> String;
}

/// The system clock and random ULIDs: what [`Engine::open`](crate::Engine::open) uses.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }

    fn new_block_id(&self) -> String {
        ulid::Ulid::new().to_string()
    }
}

/// A clock that stands still at a given time and hands out block ids with that time as their
/// ULID timestamp and a counter (1, 2, ...) as their random part, so that an engine's output is
/// the same on every run.
#[derive(Debug)]
pub struct FixedClock {
    now: SystemTime,
    issued: AtomicU64,
}

impl FixedClock {
    /// A clock standing at `unix_ms` milliseconds since the Unix epoch.
    pub fn at_unix_ms(unix_ms: u64) -> Self {
        FixedClock {
            now: UNIX_EPOCH + Duration::from_millis(unix_ms),
            issued: AtomicU64::new(0),
        }
    }
}

impl Clock for FixedClock {
    fn now(&self) -> SystemTime {
        self.now
    }

    fn new_block_id(&self) -> String {
        let n = self.issued.fetch_add(1, Ordering::Relaxed) + 1;
        ulid::Ulid::from_parts(unix_ms(self.now), u128::from(n)).to_string()
    }
}

/// Milliseconds since the Unix epoch (0 before it).
pub(crate) fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Nanoseconds since the Unix epoch (0 before it), capped below `i64::MAX`.
pub(crate) fn unix_ns(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos().min(i64::MAX as u128 - 1) as i64)
        .unwrap_or(0)
}

/// Now, in nanoseconds since the Unix epoch (0 if the clock is before 1970): the wall clock
/// as the store counts time, for callers without an engine's [`Clock`].
pub fn now_ns() -> i64 {
    unix_ns(SystemTime::now())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_clock_ids_are_reproducible_and_ordered() {
        let a = FixedClock::at_unix_ms(1_700_000_000_000);
        let b = FixedClock::at_unix_ms(1_700_000_000_000);
        let ids: Vec<String> = (0..3).map(|_| a.new_block_id()).collect();
        assert_eq!(ids[0], b.new_block_id());
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
        assert_eq!(unix_ms(a.now()), 1_700_000_000_000);
        assert_eq!(unix_ns(a.now()), 1_700_000_000_000_000_000);
    }
}
