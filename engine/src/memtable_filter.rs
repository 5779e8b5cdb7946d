//! A whole-key bloom filter beside each memtable (RocksDB's
//! `memtable_whole_key_filtering`). A point lookup of a key the memtable does not hold
//! (a SET or a replica's apply of a new key, a GET of a key written before the last
//! flush or never) would otherwise search the skiplist from its top level down, a
//! dozen or more cache misses; the filter answers "not here" from one cache line for
//! about 99 lookups in 100. A lookup it lets through searches the skiplist as before,
//! so it only ever saves work: it has no false negatives, and it is never written to
//! disk (a memtable rebuilt from the WAL rebuilds its filter with it).
//!
//! Blocked (Putze, Sanders, Singler, "Cache-, hash- and space-efficient bloom
//! filters"): a key's probes all fall in one 512-bit block, chosen by the high half of
//! its hash, so a lookup touches one cache line. Probes within the block are the SST
//! filter's double hashing (sst/bloom.rs) on the same xxh3 hash.

use crate::sst::bloom::{bloom_hash, probes};
use std::sync::atomic::{AtomicU64, Ordering};

/// Bits of one block: a 64-byte cache line.
const BLOCK_BITS: u64 = 512;
const WORDS_PER_BLOCK: usize = (BLOCK_BITS / 64) as usize;
/// Bits per expected entry and probes per key: about 1% false positives for a blocked
/// filter at its planned load.
const BITS_PER_ENTRY: usize = 10;
const PROBES: u8 = 6;
/// Memtable bytes per entry the filter is sized for: an entry is counted as its key,
/// value and 96 bytes of bookkeeping (memtable.rs), so 128 plans for small values; a
/// memtable of larger entries holds fewer and its filter is emptier (fewer false
/// positives), one of smaller ones fills it past plan (more, never wrong answers).
const PLANNED_BYTES_PER_ENTRY: usize = 128;

/// The filter of one memtable.
#[derive(Debug)]
pub(crate) struct MemtableFilter {
    words: Box<[AtomicU64]>,
    blocks: u64,
}

impl MemtableFilter {
    /// A filter for a memtable flushed at about `memtable_bytes`: 10 bits for every 128
    /// bytes, about 1% of the memtable's size.
    pub(crate) fn for_memtable_bytes(memtable_bytes: usize) -> MemtableFilter {
        let entries = (memtable_bytes / PLANNED_BYTES_PER_ENTRY).max(1);
        let blocks = (entries * BITS_PER_ENTRY).div_ceil(BLOCK_BITS as usize);
        let words = (0..blocks * WORDS_PER_BLOCK)
            .map(|_| AtomicU64::new(0))
            .collect();
        MemtableFilter {
            words,
            blocks: blocks as u64,
        }
    }

    /// Memory it holds, in bytes.
    pub(crate) fn bytes(&self) -> usize {
        self.words.len() * 8
    }

    /// Adds `user_key`. Called before the entry is inserted: a reader that can see the
    /// entry (its sequence number is published after the insert, with release
    /// ordering) sees these bits too.
    pub(crate) fn add(&self, user_key: &[u8]) {
        let (block, h) = self.place(user_key);
        for bit in probes(h, PROBES, BLOCK_BITS) {
            self.words[block + (bit / 64) as usize].fetch_or(1 << (bit % 64), Ordering::Relaxed);
        }
    }

    /// False if `user_key` was certainly never added.
    pub(crate) fn may_contain(&self, user_key: &[u8]) -> bool {
        let (block, h) = self.place(user_key);
        probes(h, PROBES, BLOCK_BITS).all(|bit| {
            self.words[block + (bit / 64) as usize].load(Ordering::Relaxed) & (1 << (bit % 64)) != 0
        })
    }

    /// The first word of `user_key`'s block, and its hash.
    fn place(&self, user_key: &[u8]) -> (usize, u64) {
        let h = bloom_hash(user_key);
        // The high half picks the block (multiply-shift, no division); the probes use
        // the low bits.
        let block = ((h >> 32) * self.blocks) >> 32;
        (block as usize * WORDS_PER_BLOCK, h)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_false_negatives_and_about_one_percent_false_positives_at_plan() {
        let memtable_bytes = 1 << 20;
        let f = MemtableFilter::for_memtable_bytes(memtable_bytes);
        let planned = memtable_bytes / PLANNED_BYTES_PER_ENTRY;
        assert_eq!(f.bytes(), (planned * BITS_PER_ENTRY).div_ceil(512) * 64);
        for i in 0..planned {
            f.add(format!("key:{i:012}").as_bytes());
        }
        for i in 0..planned {
            assert!(f.may_contain(format!("key:{i:012}").as_bytes()), "key {i}");
        }
        let absent = 100_000;
        let false_positives = (0..absent)
            .filter(|i| f.may_contain(format!("absent:{i:012}").as_bytes()))
            .count();
        let rate = false_positives as f64 / absent as f64;
        assert!(rate < 0.03, "false-positive rate {rate}");
        assert!(
            false_positives > 0,
            "a filter at its planned load is not empty"
        );
    }

    #[test]
    fn an_empty_filter_contains_nothing_and_a_tiny_one_still_works() {
        let f = MemtableFilter::for_memtable_bytes(0);
        assert_eq!(f.bytes(), 64, "one block at least");
        assert!(!f.may_contain(b"k"));
        f.add(b"k");
        assert!(f.may_contain(b"k"));
    }
}
