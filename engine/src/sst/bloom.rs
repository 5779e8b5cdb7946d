//! The table's bloom filter over user keys. Spec: docs/format/sstable.md.
//!
//! ```text
//! filter_block := bits[m/8] k:u8           (stored as a block payload, never compressed)
//! h            := xxh3_64(user_key)
//! delta        := h rotated right by 33
//! probe i      := bit (h + i*delta) mod m,  for i in 0..k   (wrapping u64 arithmetic)
//! bit b        := bits[b / 8] & (1 << (b % 8))
//! ```
//! `m` = max(keys * bits_per_key, 64) rounded up to whole bytes; `k` = round(bits_per_key *
//! ln 2) clamped to 1..=30. One 64-bit hash and double hashing (Kirsch-Mitzenmacher)
//! give k probes for the price of one hash.

use crate::chunked::Chunked;
use xxhash_rust::xxh3::xxh3_64;

/// Smallest filter, in bits: tiny tables would otherwise get a very high false-positive rate.
const MIN_FILTER_BITS: usize = 64;

/// Most probes per key; more costs lookup time without a measurable gain (LevelDB's cap).
pub(crate) const MAX_PROBES: u8 = 30;

/// The hash a filter is built from; callers hash each distinct user key once.
pub(crate) fn bloom_hash(user_key: &[u8]) -> u64 {
    xxh3_64(user_key)
}

/// Probes per key for `bits_per_key`: the false-positive optimum `bits * ln 2`.
fn probes_for(bits_per_key: usize) -> u8 {
    let k = (bits_per_key as f64 * std::f64::consts::LN_2).round();
    k.clamp(1.0, MAX_PROBES as f64) as u8
}

/// Encodes the filter for `hashes` (one per distinct user key).
pub(crate) fn build_filter(hashes: &Chunked<u64>, bits_per_key: usize) -> Vec<u8> {
    let bits = hashes
        .len()
        .saturating_mul(bits_per_key)
        .max(MIN_FILTER_BITS);
    let bytes = bits.div_ceil(8);
    let m = (bytes * 8) as u64;
    let k = probes_for(bits_per_key);
    let mut out = vec![0u8; bytes + 1];
    for h in hashes.iter() {
        for bit in probes(h, k, m) {
            if let Some(byte) = out.get_mut((bit / 8) as usize) {
                *byte |= 1 << (bit % 8);
            }
        }
    }
    if let Some(last) = out.last_mut() {
        *last = k;
    }
    out
}

/// The `k` bit positions of hash `h` in a filter of `m` bits (double hashing); the
/// memtable's filter uses them within one block.
pub(crate) fn probes(h: u64, k: u8, m: u64) -> impl Iterator<Item = u64> {
    let delta = h.rotate_right(33);
    (0..k as u64).map(move |i| h.wrapping_add(i.wrapping_mul(delta)) % m)
}

/// A decoded filter.
#[derive(Debug)]
pub(crate) struct BloomFilter {
    bits: Vec<u8>,
    k: u8,
}

impl BloomFilter {
    /// Decodes a filter block's payload; `Err` says what is wrong.
    pub(crate) fn decode(mut data: Vec<u8>) -> std::result::Result<BloomFilter, String> {
        let k = data.pop().ok_or("empty filter block")?;
        if k == 0 || k > MAX_PROBES {
            return Err(format!("filter probe count {k} outside 1..={MAX_PROBES}"));
        }
        if data.is_empty() {
            return Err("filter has no bits".into());
        }
        Ok(BloomFilter { bits: data, k })
    }

    /// False if `user_key` was certainly not added.
    pub(crate) fn may_contain(&self, user_key: &[u8]) -> bool {
        self.may_contain_hash(bloom_hash(user_key))
    }

    fn may_contain_hash(&self, h: u64) -> bool {
        let m = self.bits.len() as u64 * 8;
        probes(h, self.k, m).all(|bit| {
            self.bits
                .get((bit / 8) as usize)
                .is_some_and(|byte| byte & (1 << (bit % 8)) != 0)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter_of(n: usize, bits_per_key: usize) -> BloomFilter {
        let hashes: Chunked<u64> = (0..n)
            .map(|i| bloom_hash(format!("present-{i}").as_bytes()))
            .collect();
        BloomFilter::decode(build_filter(&hashes, bits_per_key)).unwrap()
    }

    #[test]
    fn no_false_negatives() {
        let f = filter_of(5000, 10);
        for i in 0..5000 {
            assert!(f.may_contain(format!("present-{i}").as_bytes()));
        }
    }

    #[test]
    fn ten_bits_per_key_gives_about_one_percent() {
        let f = filter_of(10_000, 10);
        let fp = (0..10_000)
            .filter(|i| f.may_contain(format!("absent-{i}").as_bytes()))
            .count();
        assert!(fp < 300, "false positives {fp} / 10000");
    }

    #[test]
    fn probe_count_is_clamped_and_stored() {
        assert_eq!(probes_for(10), 7);
        assert_eq!(probes_for(1), 1);
        assert_eq!(probes_for(100), MAX_PROBES);
        assert_eq!(
            *build_filter(&[1, 2].into_iter().collect(), 10)
                .last()
                .unwrap(),
            7
        );
        assert_eq!(
            build_filter(&Chunked::default(), 10).len(),
            MIN_FILTER_BITS / 8 + 1
        );
    }

    #[test]
    fn bad_probe_counts_are_rejected() {
        assert!(BloomFilter::decode(vec![0xff, 0]).is_err());
        assert!(BloomFilter::decode(vec![0xff, 31]).is_err());
        assert!(BloomFilter::decode(vec![7]).is_err());
        assert!(BloomFilter::decode(vec![]).is_err());
    }
}
