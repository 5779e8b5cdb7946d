//! A bounded least-recently-used map where each entry has a charge (bytes for the block
//! cache, 1 for the table cache). The building block of [`super::BlockCache`] shards and
//! of [`super::TableCache`]. Not thread-safe: callers wrap it in a mutex.

use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;

struct Slot<V> {
    value: V,
    charge: usize,
    /// Position in `order`; larger is more recently used.
    tick: u64,
}

/// LRU map bounded by the sum of charges.
pub(crate) struct Lru<K, V> {
    map: HashMap<K, Slot<V>>,
    order: BTreeMap<u64, K>,
    tick: u64,
    usage: usize,
    capacity: usize,
}

impl<K: Hash + Eq + Clone, V: Clone> Lru<K, V> {
    /// An empty map holding at most `capacity` total charge.
    pub(crate) fn new(capacity: usize) -> Self {
        Lru {
            map: HashMap::new(),
            order: BTreeMap::new(),
            tick: 0,
            usage: 0,
            capacity,
        }
    }

    /// The value for `key`, marking it most recently used.
    pub(crate) fn get(&mut self, key: &K) -> Option<V> {
        let slot = self.map.get_mut(key)?;
        self.order.remove(&slot.tick);
        self.tick += 1;
        slot.tick = self.tick;
        self.order.insert(self.tick, key.clone());
        Some(slot.value.clone())
    }

    /// Inserts (or replaces) `key`, then evicts least recently used entries until the
    /// total charge fits the capacity; an entry larger than the capacity is evicted at once.
    pub(crate) fn insert(&mut self, key: K, value: V, charge: usize) {
        self.remove(&key);
        self.tick += 1;
        self.order.insert(self.tick, key.clone());
        self.map.insert(
            key,
            Slot {
                value,
                charge,
                tick: self.tick,
            },
        );
        self.usage += charge;
        while self.usage > self.capacity {
            let Some((_, oldest)) = self.order.pop_first() else {
                break;
            };
            if let Some(slot) = self.map.remove(&oldest) {
                self.usage -= slot.charge;
            }
        }
    }

    /// Removes `key` if present.
    pub(crate) fn remove(&mut self, key: &K) -> Option<V> {
        let slot = self.map.remove(key)?;
        self.order.remove(&slot.tick);
        self.usage -= slot.charge;
        Some(slot.value)
    }

    /// Total charge of the entries held.
    pub(crate) fn usage(&self) -> usize {
        self.usage
    }

    /// Number of entries held.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evicts_least_recently_used_first() {
        let mut lru = Lru::new(3);
        lru.insert(1, "a", 1);
        lru.insert(2, "b", 1);
        lru.insert(3, "c", 1);
        assert_eq!(lru.get(&1), Some("a"));
        lru.insert(4, "d", 1);
        assert_eq!(lru.get(&2), None, "2 was the least recently used");
        assert_eq!(lru.get(&1), Some("a"));
        assert_eq!(lru.usage(), 3);
        assert_eq!(lru.len(), 3);
    }

    #[test]
    fn oversized_entry_does_not_stay() {
        let mut lru = Lru::new(10);
        lru.insert(1, (), 4);
        lru.insert(2, (), 11);
        assert!(lru.usage() <= 10);
        assert_eq!(
            lru.remove(&1),
            None,
            "evicted to make room before 2 itself went"
        );
    }

    #[test]
    fn replacing_a_key_keeps_the_charge_right() {
        let mut lru = Lru::new(100);
        lru.insert(7, 1, 30);
        lru.insert(7, 2, 40);
        assert_eq!(lru.usage(), 40);
        assert_eq!(lru.get(&7), Some(2));
    }
}
