//! [`FlushBackoff`]: when a flush (block upload) fails, the next one is tried only after an
//! exponentially growing, capped and jittered wait; counts failures and retries.

use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

#[derive(Default)]
struct State {
    /// Flushes that failed in a row.
    consecutive: u32,
    /// No retry (background or on append) before this.
    next_attempt: Option<Instant>,
    last_error: Option<String>,
}

pub(super) struct FlushBackoff {
    initial: Duration,
    max: Duration,
    state: Mutex<State>,
    /// Flushes that failed.
    pub failures: AtomicU64,
    /// Flushes started after a failed one.
    pub retries: AtomicU64,
}

impl FlushBackoff {
    pub fn new(initial: Duration, max: Duration) -> Self {
        FlushBackoff {
            initial,
            max,
            state: Mutex::new(State::default()),
            failures: AtomicU64::new(0),
            retries: AtomicU64::new(0),
        }
    }

    /// A flush starts; returns its attempt number (1 unless earlier ones failed).
    pub fn started(&self) -> u32 {
        let consecutive = self.state.lock().consecutive;
        if consecutive > 0 {
            self.retries.fetch_add(1, Ordering::Relaxed);
        }
        consecutive + 1
    }

    /// A flush failed; returns the wait before the next automatic attempt.
    pub fn failed(&self, error: &crate::Error) -> Duration {
        self.failures.fetch_add(1, Ordering::Relaxed);
        let mut st = self.state.lock();
        st.consecutive = st.consecutive.saturating_add(1);
        let delay = self.delay(st.consecutive);
        st.next_attempt = Some(Instant::now() + delay);
        st.last_error = Some(error.to_string());
        delay
    }

    /// A flush succeeded; returns how many failed before it.
    pub fn succeeded(&self) -> u32 {
        std::mem::take(&mut *self.state.lock()).consecutive
    }

    /// Whether an automatic flush may start now.
    pub fn ready(&self) -> bool {
        self.state
            .lock()
            .next_attempt
            .is_none_or(|t| Instant::now() >= t)
    }

    /// While flushes are failing: how many in a row, and the last error.
    pub fn failing(&self) -> Option<(u32, String)> {
        let st = self.state.lock();
        (st.consecutive > 0).then(|| (st.consecutive, st.last_error.clone().unwrap_or_default()))
    }

    /// `initial · 2^(n−1)`, capped at `max`, then a random point in its upper half.
    fn delay(&self, n: u32) -> Duration {
        let exp = self
            .initial
            .saturating_mul(1u32 << (n - 1).min(30))
            .min(self.max);
        let half = exp / 2;
        let random = std::collections::hash_map::RandomState::new()
            .build_hasher()
            .finish();
        let jitter = (half.as_nanos() as u64)
            .checked_add(1)
            .map_or(0, |span| random % span);
        half + Duration::from_nanos(jitter)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backs_off_exponentially_up_to_the_cap_and_resets() {
        let b = FlushBackoff::new(Duration::from_millis(100), Duration::from_secs(1));
        assert!(b.ready());
        assert_eq!(b.started(), 1);
        let err = crate::Error::batch("x");
        let mut last = Duration::ZERO;
        for n in 1..=8u32 {
            let d = b.failed(&err);
            let exp = Duration::from_millis(100 * (1 << (n - 1))).min(Duration::from_secs(1));
            assert!(d >= exp / 2 && d <= exp, "attempt {n}: {d:?} vs {exp:?}");
            last = d;
        }
        assert!(last <= Duration::from_secs(1));
        assert!(!b.ready());
        assert_eq!(b.failing().unwrap().0, 8);
        assert_eq!(b.started(), 9);
        assert_eq!(b.retries.load(Ordering::Relaxed), 1);
        assert_eq!(b.succeeded(), 8);
        assert!(b.ready() && b.failing().is_none());
        assert_eq!(b.failures.load(Ordering::Relaxed), 8);
    }
}
