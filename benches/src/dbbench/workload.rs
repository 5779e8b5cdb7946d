//! Keys and values shaped like db_bench's, so both tools store the same bytes.
//!
//! Keys: `GenerateKeyFromInt` writes the key number big-endian into the first
//! `min(key_size, 8)` bytes and pads the rest with ASCII '0', so byte order equals numeric
//! order (fillseq really is sequential for the comparator). readmissing uses
//! `key_size + 1`: the same prefix plus one more '0', a key that sorts right after an
//! existing one and is never written.
//!
//! Values: db_bench's `RandomGenerator` fills a buffer of at least 1 MiB with 100-byte
//! pieces, each `compression_ratio * 100` random printable bytes repeated to length, and
//! hands out consecutive slices of it, wrapping around.

use rand::{Rng, SeedableRng};

/// Writes key number `n` into `out` (whose length is the key size), as db_bench does.
pub fn make_key(n: u64, out: &mut [u8]) {
    let fill = out.len().min(8);
    for (i, b) in out[..fill].iter_mut().enumerate() {
        *b = (n >> ((fill - i - 1) * 8)) as u8;
    }
    out[fill..].fill(b'0');
}

/// The key number a db_bench key encodes (inverse of [`make_key`] for keys of 8+ bytes).
pub fn key_number(key: &[u8]) -> u64 {
    key.iter()
        .take(8)
        .fold(0u64, |acc, &b| (acc << 8) | u64::from(b))
}

/// Compressible values, db_bench's `RandomGenerator`.
pub struct ValueGenerator {
    data: Vec<u8>,
    pos: usize,
}

impl ValueGenerator {
    /// A generator for values of up to `value_size` bytes that compress to about
    /// `compression_ratio` of their size. db_bench seeds it with 301 in every thread.
    pub fn new(value_size: usize, compression_ratio: f64) -> Self {
        let mut rng = rand::rngs::StdRng::seed_from_u64(301);
        let target = value_size.max(1 << 20);
        let mut data = Vec::with_capacity(target + 100);
        while data.len() < target {
            let raw = ((100.0 * compression_ratio) as usize).clamp(1, 100);
            let piece: Vec<u8> = (0..raw).map(|_| b' ' + rng.gen_range(0..95u8)).collect();
            data.extend(piece.iter().cycle().take(100));
        }
        ValueGenerator { data, pos: 0 }
    }

    /// The next `len` bytes of the buffer.
    pub fn generate(&mut self, len: usize) -> &[u8] {
        if self.pos + len > self.data.len() {
            self.pos = 0;
        }
        self.pos += len;
        &self.data[self.pos - len..self.pos]
    }
}

/// A seed base like db_bench's: the flag, or the clock when the flag is 0.
pub fn seed_base(flag: u64) -> u64 {
    if flag != 0 {
        return flag;
    }
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(1)
}

/// Per-thread random key numbers in `0..num` (db_bench: `rand.Next() % num`).
pub struct KeyRng(rand::rngs::StdRng);

impl KeyRng {
    /// Thread `tid`'s generator; db_bench seeds thread i with `seed_base + i`.
    pub fn new(seed_base: u64, tid: usize) -> Self {
        KeyRng(rand::rngs::StdRng::seed_from_u64(
            seed_base.wrapping_add(tid as u64),
        ))
    }

    /// A uniform key number below `num`.
    pub fn below(&mut self, num: u64) -> u64 {
        self.0.gen_range(0..num.max(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_match_db_bench_layout() {
        let mut k = [0u8; 16];
        make_key(0x0102, &mut k);
        assert_eq!(&k, b"\0\0\0\0\0\0\x01\x0200000000");
        assert_eq!(key_number(&k), 0x0102);
        let mut short = [0u8; 4];
        make_key(0x0a0b_0c0d, &mut short);
        assert_eq!(short, [0x0a, 0x0b, 0x0c, 0x0d]);
    }

    #[test]
    fn key_bytes_sort_like_key_numbers() {
        let (mut a, mut b) = ([0u8; 16], [0u8; 16]);
        for (x, y) in [
            (0u64, 1u64),
            (255, 256),
            (65_535, 65_536),
            (999_999, 1_000_000),
        ] {
            make_key(x, &mut a);
            make_key(y, &mut b);
            assert!(a < b, "{x} vs {y}");
        }
    }

    #[test]
    fn missing_keys_sort_after_and_differ_from_existing() {
        let (mut k, mut missing) = ([0u8; 16], [0u8; 17]);
        make_key(42, &mut k);
        make_key(42, &mut missing);
        assert!(missing[..] > k[..]);
        assert_eq!(&missing[..16], &k[..]);
    }

    #[test]
    fn values_are_about_half_compressible() {
        let mut g = ValueGenerator::new(100, 0.5);
        let v = g.generate(100).to_vec();
        assert_eq!(v.len(), 100);
        assert_eq!(v[..50], v[50..]);
        assert!(v.iter().all(|b| (b' '..b' ' + 95).contains(b)));
        assert_ne!(g.generate(100), &v[..]);
    }
}
