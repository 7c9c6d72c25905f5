//! Bounded maps for what the request path looks up on every request: open
//! files, the headers of objects asked for by key, and the manifests.
//!
//! Why not moka, which the edge would otherwise use: measured with
//! `INSTRUCTIONS=1 benches/cache-vs-edge.sh` (callgrind, instructions per
//! request on the plain edge), moka's `sync::Cache` in place of these maps
//! cost +1338 instructions on `object-br` (18316 → 19654, +7.3%: two
//! lookups, open file and headers), +1430 on `range-64k` (+6.6%) and +1200
//! on `page-br` (+4.1%, open file and manifest). Each `get` is a concurrent
//! hash table read under an epoch guard, a read record sent on a channel
//! and, now and then, its housekeeping: about 600 instructions, against a
//! budget of 3% for the whole request. A mutex and a hash map cost a tenth
//! of that, and what eviction costs here is paid on inserts, which follow a
//! miss (an open, a manifest read) that costs far more.
//!
//! A full map forgets its stale entries (where it has a time to live) and,
//! if that is not enough, the oldest quarter by insertion, so it never
//! empties all at once and is searched for its oldest only once per
//! quarter of its capacity.

use std::borrow::Borrow;
use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::{BuildHasher, Hash};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use lowband_catalog::ObjectKey;

/// At most `max` entries; each older than `ttl` (if set) is not returned.
pub struct Bounded<K, V, S = RandomState> {
    entries: Mutex<HashMap<K, (Instant, V), S>>,
    ttl: Option<Duration>,
    max: usize,
}

impl<K: Hash + Eq, V: Clone, S: BuildHasher + Default> Bounded<K, V, S> {
    /// Entries are good for `ttl`, at most `max` of them.
    pub fn new(ttl: Duration, max: usize) -> Self {
        Self::build(Some(ttl), max)
    }

    /// Entries are good until evicted, at most `max` of them.
    pub fn lasting(max: usize) -> Self {
        Self::build(None, max)
    }

    fn build(ttl: Option<Duration>, max: usize) -> Self {
        Self {
            entries: Mutex::new(HashMap::default()),
            ttl,
            max: max.max(1),
        }
    }

    /// The value kept for `key`, if it is fresh.
    pub fn get<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let entries = self.entries.lock().ok()?;
        let (at, value) = entries.get(key)?;
        self.fresh(*at).then(|| value.clone())
    }

    pub fn insert(&self, key: K, value: V) {
        let Ok(mut entries) = self.entries.lock() else {
            return;
        };
        if entries.len() >= self.max && !entries.contains_key(&key) {
            self.make_room(&mut entries);
        }
        entries.insert(key, (Instant::now(), value));
    }

    pub fn remove<Q>(&self, key: &Q)
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        if let Ok(mut entries) = self.entries.lock() {
            entries.remove(key);
        }
    }

    pub fn clear(&self) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.clear();
        }
    }

    pub fn len(&self) -> usize {
        self.entries.lock().map_or(0, |e| e.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn fresh(&self, at: Instant) -> bool {
        self.ttl.is_none_or(|ttl| at.elapsed() < ttl)
    }

    /// Forgets the stale entries, then, if the map is still full, the
    /// oldest quarter.
    fn make_room(&self, entries: &mut HashMap<K, (Instant, V), S>) {
        if self.ttl.is_some() {
            entries.retain(|_, (at, _)| self.fresh(*at));
            if entries.len() < self.max {
                return;
            }
        }
        let mut times: Vec<Instant> = entries.values().map(|(at, _)| *at).collect();
        let drop = (self.max / 4).clamp(1, times.len());
        let (_, cutoff, _) = times.select_nth_unstable(drop - 1);
        let cutoff = *cutoff;
        let mut left = drop;
        entries.retain(|_, (at, _)| {
            if left > 0 && *at <= cutoff {
                left -= 1;
                false
            } else {
                true
            }
        });
    }
}

/// A map keyed by object keys. Keys are SHA-256 digests, so a fast hash
/// (foldhash, seeded per process) does: SipHash was ~1.5% of a hot
/// edge's instructions.
pub type KeyMap<V> = HashMap<ObjectKey, V, foldhash::fast::RandomState>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_map_forgets_its_oldest_quarter_not_everything() {
        let map: Bounded<u32, u32> = Bounded::lasting(8);
        for i in 0..8 {
            map.insert(i, i);
        }
        assert_eq!(map.len(), 8);
        // Replacing a held key makes no room.
        map.insert(7, 70);
        assert_eq!((map.len(), map.get(&7)), (8, Some(70)));
        map.insert(8, 8);
        assert_eq!(map.len(), 7);
        assert_eq!((map.get(&0), map.get(&1)), (None, None));
        assert!((2..=8).all(|i| map.get(&i).is_some()));
        for i in 9..200 {
            map.insert(i, i);
            assert!(map.len() <= 8);
        }
        assert_eq!(map.get(&199), Some(199));
        map.remove(&199);
        assert_eq!(map.get(&199), None);
        map.clear();
        assert!(map.is_empty());
    }

    #[test]
    fn stale_entries_are_not_returned_and_go_first() {
        let map: Bounded<&str, u32> = Bounded::new(Duration::from_millis(30), 2);
        map.insert("old", 1);
        std::thread::sleep(Duration::from_millis(40));
        assert_eq!(map.get("old"), None);
        map.insert("a", 2);
        map.insert("b", 3);
        assert_eq!(
            (map.get("a"), map.get("b"), map.len()),
            (Some(2), Some(3), 2)
        );
    }
}
