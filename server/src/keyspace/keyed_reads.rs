//! What a command on the ring read of its keys before it ran, by (database, key).
//!
//! A vector sorted by (database, key), searched by bisection, rather than a hash map:
//! a command names few keys (a GET one), and a map cost each such command an
//! allocation and a hash to fill, and per lookup another allocation (the looked-up key
//! made owned) and hash, about 450 instructions of a pipelined ring GET
//! (docs/performance.md, "A batch's node lookups; a command's reads in a sorted
//! vector"). An MGET of thousands of keys still finds each in log n steps.

use bytes::Bytes;
use std::cmp::Ordering;

/// Values by (database, key), each key once.
#[derive(Debug)]
pub struct KeyedReads<V> {
    sorted: Vec<((usize, Bytes), V)>,
}

/// The order of the entries: by database, then key.
fn order(entry: &(usize, Bytes), db: usize, key: &[u8]) -> Ordering {
    (entry.0, entry.1.as_ref()).cmp(&(db, key))
}

impl<V> Default for KeyedReads<V> {
    fn default() -> Self {
        KeyedReads { sorted: Vec::new() }
    }
}

impl<V> KeyedReads<V> {
    fn position(&self, db: usize, key: &[u8]) -> Result<usize, usize> {
        self.sorted.binary_search_by(|(at, _)| order(at, db, key))
    }

    /// The value read for `key` of database `db`, if it was read.
    pub fn get(&self, db: usize, key: &[u8]) -> Option<&V> {
        let i = self.position(db, key).ok()?;
        Some(&self.sorted[i].1)
    }

    /// Sets the value of `key` of database `db`, replacing one already there.
    pub fn insert(&mut self, db: usize, key: Bytes, value: V) {
        match self.position(db, &key) {
            Ok(i) => self.sorted[i].1 = value,
            Err(i) => self.sorted.insert(i, ((db, key), value)),
        }
    }

    /// How many keys it holds.
    pub fn len(&self) -> usize {
        self.sorted.len()
    }

    /// True if it holds no key.
    pub fn is_empty(&self) -> bool {
        self.sorted.is_empty()
    }
}

/// A key given twice keeps its last value, as a map's `collect` does.
impl<V> FromIterator<((usize, Bytes), V)> for KeyedReads<V> {
    fn from_iter<I: IntoIterator<Item = ((usize, Bytes), V)>>(iter: I) -> Self {
        KeyedReads::from_vec(iter.into_iter().collect())
    }
}

impl<V> KeyedReads<V> {
    /// The values of `entries`, a key given twice keeping its last value; sorts them
    /// where they lie.
    pub fn from_vec(mut entries: Vec<((usize, Bytes), V)>) -> Self {
        // Stable: equal keys stay in the order given, so the last given is the last of
        // its run, and the dedup below moves it into the place it keeps.
        entries.sort_by(|(a, _), (b, _)| order(a, b.0, &b.1));
        entries.dedup_by(|later, kept| {
            if later.0 != kept.0 {
                return false;
            }
            std::mem::swap(later, kept);
            true
        });
        KeyedReads { sorted: entries }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    fn key(k: &str) -> Bytes {
        Bytes::copy_from_slice(k.as_bytes())
    }

    #[test]
    fn a_key_is_found_only_in_its_own_database() {
        let reads: KeyedReads<u32> = [((0, key("a")), 1), ((1, key("a")), 2), ((0, key("b")), 3)]
            .into_iter()
            .collect();
        assert_eq!(reads.get(0, b"a"), Some(&1));
        assert_eq!(reads.get(1, b"a"), Some(&2));
        assert_eq!(reads.get(0, b"b"), Some(&3));
        assert_eq!(reads.get(1, b"b"), None);
        assert_eq!(reads.get(0, b""), None);
        assert_eq!(reads.len(), 3);
    }

    proptest! {
        /// Filled by `collect` and by `insert`, it answers every lookup as a hash map
        /// filled the same way does, the last value given for a key winning.
        #[test]
        fn it_answers_as_a_map_does(
            given in proptest::collection::vec((0usize..3, "[ab]{0,3}", any::<u16>()), 0..40),
            inserted in proptest::collection::vec((0usize..3, "[ab]{0,3}", any::<u16>()), 0..20),
        ) {
            let mut map = HashMap::new();
            for (db, k, v) in &given {
                map.insert((*db, key(k)), *v);
            }
            let mut reads: KeyedReads<u16> =
                given.iter().map(|(db, k, v)| ((*db, key(k)), *v)).collect();
            for (db, k, v) in &inserted {
                map.insert((*db, key(k)), *v);
                reads.insert(*db, key(k), *v);
            }
            prop_assert_eq!(reads.len(), map.len());
            prop_assert_eq!(reads.is_empty(), map.is_empty());
            for db in 0..3 {
                for k in ["", "a", "b", "aa", "ab", "ba", "bb", "aab", "bbb", "abab"] {
                    prop_assert_eq!(reads.get(db, k.as_bytes()), map.get(&(db, key(k))));
                }
            }
        }
    }
}
