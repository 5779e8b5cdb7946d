//! A bounded least-recently-used map where each entry has a charge (bytes for the block
//! cache, 1 for the table cache). The building block of [`super::BlockCache`] shards and
//! of [`super::TableCache`]. Not thread-safe: callers wrap it in a mutex.
//!
//! Entries live in a slab (`Vec`) linked into a doubly linked recency list by index, so
//! a hit is one hash lookup and a few index writes: no allocation, no tree.

use std::collections::HashMap;
use std::hash::Hash;

/// Slab index meaning "no entry".
const NIL: usize = usize::MAX;

struct Node<K, V> {
    key: K,
    value: V,
    charge: usize,
    /// Towards the most recently used end.
    newer: usize,
    /// Towards the least recently used end.
    older: usize,
}

/// LRU map bounded by the sum of charges.
pub(crate) struct Lru<K, V> {
    map: HashMap<K, usize>,
    slab: Vec<Option<Node<K, V>>>,
    free: Vec<usize>,
    /// Most recently used.
    newest: usize,
    /// Least recently used: evicted first.
    oldest: usize,
    usage: usize,
    capacity: usize,
}

impl<K: Hash + Eq + Clone, V: Clone> Lru<K, V> {
    /// An empty map holding at most `capacity` total charge.
    pub(crate) fn new(capacity: usize) -> Self {
        Lru {
            map: HashMap::new(),
            slab: Vec::new(),
            free: Vec::new(),
            newest: NIL,
            oldest: NIL,
            usage: 0,
            capacity,
        }
    }

    fn node(&mut self, i: usize) -> Option<&mut Node<K, V>> {
        self.slab.get_mut(i).and_then(Option::as_mut)
    }

    /// Takes slab entry `i` out of the recency list.
    fn unlink(&mut self, i: usize) {
        let Some(n) = self.node(i) else { return };
        let (newer, older) = (n.newer, n.older);
        n.newer = NIL;
        n.older = NIL;
        match self.node(newer) {
            Some(nn) => nn.older = older,
            None => self.newest = older,
        }
        match self.node(older) {
            Some(on) => on.newer = newer,
            None => self.oldest = newer,
        }
    }

    /// Puts slab entry `i` at the most recently used end.
    fn push_newest(&mut self, i: usize) {
        let old_newest = self.newest;
        if let Some(n) = self.node(i) {
            n.newer = NIL;
            n.older = old_newest;
        }
        match self.node(old_newest) {
            Some(on) => on.newer = i,
            None => self.oldest = i,
        }
        self.newest = i;
    }

    /// The value for `key`, marking it most recently used.
    pub(crate) fn get(&mut self, key: &K) -> Option<V> {
        let i = *self.map.get(key)?;
        if self.newest != i {
            self.unlink(i);
            self.push_newest(i);
        }
        self.node(i).map(|n| n.value.clone())
    }

    /// Inserts (or replaces) `key`, then evicts least recently used entries until the
    /// total charge fits the capacity; an entry larger than the capacity is evicted at once.
    pub(crate) fn insert(&mut self, key: K, value: V, charge: usize) {
        self.remove(&key);
        let node = Node {
            key: key.clone(),
            value,
            charge,
            newer: NIL,
            older: NIL,
        };
        let i = match self.free.pop() {
            Some(i) => {
                self.slab[i] = Some(node);
                i
            }
            None => {
                self.slab.push(Some(node));
                self.slab.len() - 1
            }
        };
        self.map.insert(key, i);
        self.push_newest(i);
        self.usage += charge;
        while self.usage > self.capacity && self.oldest != NIL {
            self.evict(self.oldest);
        }
    }

    fn evict(&mut self, i: usize) -> Option<V> {
        self.unlink(i);
        let node = self.slab.get_mut(i)?.take()?;
        self.free.push(i);
        self.map.remove(&node.key);
        self.usage -= node.charge;
        Some(node.value)
    }

    /// Removes `key` if present.
    pub(crate) fn remove(&mut self, key: &K) -> Option<V> {
        let i = *self.map.get(key)?;
        self.evict(i)
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

    proptest::proptest! {
        /// Same answers as a naive model: a vector ordered oldest to newest.
        #[test]
        fn agrees_with_a_naive_model(ops in proptest::collection::vec((0u8..3, 0u32..12, 1usize..5), 0..200)) {
            let mut lru = Lru::new(10);
            let mut model: Vec<(u32, u32, usize)> = Vec::new(); // (key, value, charge)
            for (step, (op, key, charge)) in ops.into_iter().enumerate() {
                match op {
                    0 => {
                        let got = lru.get(&key);
                        let pos = model.iter().position(|e| e.0 == key);
                        let want = pos.map(|p| { let e = model.remove(p); model.push(e); e.1 });
                        proptest::prop_assert_eq!(got, want);
                    }
                    1 => {
                        lru.insert(key, step as u32, charge);
                        model.retain(|e| e.0 != key);
                        model.push((key, step as u32, charge));
                        while model.iter().map(|e| e.2).sum::<usize>() > 10 {
                            model.remove(0);
                        }
                    }
                    _ => {
                        let want = model.iter().position(|e| e.0 == key).map(|p| model.remove(p).1);
                        proptest::prop_assert_eq!(lru.remove(&key), want);
                    }
                }
                proptest::prop_assert_eq!(lru.usage(), model.iter().map(|e| e.2).sum::<usize>());
                proptest::prop_assert_eq!(lru.len(), model.len());
            }
        }
    }
}
