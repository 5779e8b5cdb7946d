//! The hash of the maps built once from the command table (names to specs, specs to ids).
//!
//! Every command looks itself up in them several times, and std's SipHash cost about
//! 10% of a GET's instructions (docs/performance.md, "Hot path"). Their contents are
//! fixed at start-up and a client's input only probes them, never inserts, so
//! flooding a bucket is impossible and the hash need not resist it.

use std::hash::{BuildHasherDefault, Hasher};

/// FNV-1a over bytes; a multiply-fold for whole words (pointers, ids).
#[derive(Default, Clone, Copy)]
pub struct TableHasher(u64);

/// Builds [`TableHasher`]s for `HashMap::with_hasher`/`collect`.
pub type TableHash = BuildHasherDefault<TableHasher>;

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;
/// Odd constant (2^64 / golden ratio) spreading a word's low bits over the high ones.
const WORD_MIX: u64 = 0x9e37_79b9_7f4a_7c15;

impl Hasher for TableHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 { FNV_OFFSET } else { self.0 };
        for &b in bytes {
            h = (h ^ u64::from(b)).wrapping_mul(FNV_PRIME);
        }
        self.0 = h;
    }

    fn write_usize(&mut self, n: usize) {
        self.0 = (self.0 ^ n as u64).wrapping_mul(WORD_MIX);
    }

    fn finish(&self) -> u64 {
        // A product keeps an aligned pointer's zero low bits; the buckets are chosen by
        // the low bits, so fold the well-mixed high half down onto them.
        self.0 ^ (self.0 >> 32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::hash::BuildHasher;

    #[test]
    fn command_names_and_pointers_spread_over_buckets() {
        let names = super::super::table::COMMANDS.iter().map(|c| c.name);
        let hashes: HashSet<u64> = names
            .clone()
            .map(|n| TableHash::default().hash_one(n))
            .collect();
        assert_eq!(
            hashes.len(),
            names.count(),
            "two command names share a hash"
        );
        // Pointers are 8-aligned: their hashes must still differ in the low bits hashbrown
        // takes the bucket from, not only in the high ones.
        let low: HashSet<u64> = (0..64usize)
            .map(|i| TableHash::default().hash_one(0x5555_0000 + 8 * i) & 0xff)
            .collect();
        assert!(low.len() > 32, "only {} distinct low bytes", low.len());
    }
}
