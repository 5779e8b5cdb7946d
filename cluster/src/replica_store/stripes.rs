//! Striped locks: a write's read-compare-write of one key must not interleave with
//! another write of the same key, but writes of different keys should not wait on
//! each other. A key maps to one of a fixed set of mutexes; a batch takes the stripes
//! of all its keys in ascending order, so two batches never deadlock.

use crate::replica_api::ItemKey;
use parking_lot::{Mutex, MutexGuard};
use xxhash_rust::xxh3::xxh3_64_with_seed;

/// Enough stripes that unrelated keys rarely share one on a two-to-many-core machine.
const STRIPES: usize = 256;

/// A fixed set of key-hashed mutexes.
pub struct Stripes {
    locks: Vec<Mutex<()>>,
}

impl Default for Stripes {
    fn default() -> Self {
        Stripes {
            locks: (0..STRIPES).map(|_| Mutex::new(())).collect(),
        }
    }
}

impl Stripes {
    fn stripe_of(key: &ItemKey) -> usize {
        (xxh3_64_with_seed(&key.key, key.db as u64) % STRIPES as u64) as usize
    }

    /// Locks the stripes of every key, in ascending stripe order; held until dropped.
    pub fn lock<'a>(&self, keys: impl Iterator<Item = &'a ItemKey>) -> Vec<MutexGuard<'_, ()>> {
        let mut indexes: Vec<usize> = keys.map(Self::stripe_of).collect();
        indexes.sort_unstable();
        indexes.dedup();
        indexes.into_iter().map(|i| self.locks[i].lock()).collect()
    }
}
