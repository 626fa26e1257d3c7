//! [`GenerationalCache`]: a bounded map that approximates least-recently-used eviction in
//! O(1): entries live in a young and an old generation; when the young one is full it becomes
//! the old one (the previous old one is dropped), and a hit in the old generation moves the
//! entry back to the young one.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;

use parking_lot::Mutex;

/// A bounded, thread-safe map holding at most `capacity` entries (rounded up to even).
pub(crate) struct GenerationalCache<K, V> {
    generation_size: usize,
    inner: Mutex<Generations<K, V>>,
}

struct Generations<K, V> {
    young: HashMap<K, V>,
    old: HashMap<K, V>,
}

impl<K: Hash + Eq, V: Clone> GenerationalCache<K, V> {
    /// A cache of at most `capacity` entries (at least 2).
    pub(crate) fn new(capacity: usize) -> Self {
        GenerationalCache {
            generation_size: capacity.div_ceil(2).max(1),
            inner: Mutex::new(Generations {
                young: HashMap::new(),
                old: HashMap::new(),
            }),
        }
    }

    /// The value of `key`, marking it recently used.
    pub(crate) fn get<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let mut g = self.inner.lock();
        if let Some(v) = g.young.get(key) {
            return Some(v.clone());
        }
        let (k, v) = g.old.remove_entry(key)?;
        let value = v.clone();
        self.insert_locked(&mut g, k, v);
        Some(value)
    }

    /// Inserts or replaces `key`.
    pub(crate) fn insert(&self, key: K, value: V) {
        let mut g = self.inner.lock();
        g.old.remove(&key);
        self.insert_locked(&mut g, key, value);
    }

    fn insert_locked(&self, g: &mut Generations<K, V>, key: K, value: V) {
        if g.young.len() >= self.generation_size && !g.young.contains_key(&key) {
            g.old = std::mem::take(&mut g.young);
        }
        g.young.insert(key, value);
    }

    /// Removes `key`.
    pub(crate) fn remove<Q>(&self, key: &Q)
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let mut g = self.inner.lock();
        g.young.remove(key);
        g.old.remove(key);
    }

    /// Number of entries.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        let g = self.inner.lock();
        g.young.len() + g.old.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_and_keeps_recently_used() {
        let c = GenerationalCache::new(4);
        for i in 0..100u32 {
            c.insert(i, i * 2);
            // Key 0 stays, being used all along.
            assert_eq!(c.get(&0), Some(0));
            assert!(c.len() <= 4, "{} entries", c.len());
        }
        assert_eq!(c.get(&99), Some(198));
        assert_eq!(c.get(&50), None);
        c.remove(&0);
        assert_eq!(c.get(&0), None);
    }
}
