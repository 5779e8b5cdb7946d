//! Which buckets' stored hashes may lag their leaves: one bit per (partition, bucket),
//! set by every writer after its leaves are written, taken by whoever rehashes.
//!
//! The bits are atomics rather than a set under the folder's mutex because writers set
//! them while holding their keys' stripe locks, and the folder takes stripe locks while
//! holding its mutex: a writer waiting for that mutex could deadlock with it.
//!
//! The order that keeps a bucket from going stale: a writer writes its leaf, then sets
//! the bit; a rehasher takes (clears) the bits first, then reads the leaves. A leaf
//! written after the read has its bit set after the take, so the next rehash sees it.

use super::hash::BUCKETS;
use kv_keyspace::slot::PARTITIONS;
use std::sync::atomic::{AtomicU64, Ordering};

const WORDS_PER_PARTITION: usize = BUCKETS / 64;

/// One dirty bit per bucket of every partition (8 KiB).
pub(super) struct DirtyBuckets {
    words: Box<[AtomicU64]>,
}

impl Default for DirtyBuckets {
    fn default() -> Self {
        DirtyBuckets {
            words: (0..PARTITIONS as usize * WORDS_PER_PARTITION)
                .map(|_| AtomicU64::new(0))
                .collect(),
        }
    }
}

impl DirtyBuckets {
    /// Marks `bucket` of `partition`; call after its leaf change is written.
    pub(super) fn mark(&self, partition: u16, bucket: u8) {
        let bit = partition as usize * BUCKETS + bucket as usize;
        self.words[bit / 64].fetch_or(1 << (bit % 64), Ordering::AcqRel);
    }

    /// Marks again buckets taken by a rehash that failed.
    pub(super) fn restore(&self, partition: u16, buckets: &[u8]) {
        for &bucket in buckets {
            self.mark(partition, bucket);
        }
    }

    /// Clears and returns the marked buckets of `partition`, in order; call before
    /// reading its leaves.
    pub(super) fn take(&self, partition: u16) -> Vec<u8> {
        let first = partition as usize * WORDS_PER_PARTITION;
        let mut buckets = Vec::new();
        for (w, word) in self.words[first..first + WORDS_PER_PARTITION]
            .iter()
            .enumerate()
        {
            let mut bits = word.swap(0, Ordering::AcqRel);
            while bits != 0 {
                let b = bits.trailing_zeros() as usize;
                buckets.push((w * 64 + b) as u8);
                bits &= bits - 1;
            }
        }
        buckets
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_are_taken_once_per_partition_in_bucket_order() {
        let dirty = DirtyBuckets::default();
        for (p, b) in [
            (3, 200),
            (3, 0),
            (3, 63),
            (3, 64),
            (4, 5),
            (255, 255),
            (3, 0),
        ] {
            dirty.mark(p, b);
        }
        assert_eq!(dirty.take(3), vec![0, 63, 64, 200]);
        assert_eq!(dirty.take(3), Vec::<u8>::new());
        assert_eq!(dirty.take(4), vec![5]);
        assert_eq!(dirty.take(255), vec![255]);
        assert_eq!(dirty.take(0), Vec::<u8>::new());
    }
}
