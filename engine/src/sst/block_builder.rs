//! Builds the contents of a data, index or properties block. Spec: docs/format/sstable.md.
//!
//! ```text
//! block_contents := entry* restart:fixed32* num_restarts:fixed32
//! entry          := shared:varint32 non_shared:varint32 value_len:varint32
//!                   key_delta[non_shared] value[value_len]
//! ```
//! Each key shares `shared` bytes with the previous key and stores the rest; every
//! `restart_interval`-th entry is a restart point storing its whole key (`shared` = 0),
//! and `restart` holds the offsets of those entries, so a reader can binary-search them.

use crate::coding::{put_fixed32, put_varint};

/// Accumulates sorted entries into one block.
#[derive(Debug)]
pub(crate) struct BlockBuilder {
    buf: Vec<u8>,
    restarts: Vec<u32>,
    restart_interval: usize,
    since_restart: usize,
    last_key: Vec<u8>,
    entries: usize,
}

impl BlockBuilder {
    /// An empty block with a restart point every `restart_interval` entries (min 1).
    pub(crate) fn new(restart_interval: usize) -> Self {
        BlockBuilder {
            buf: Vec::new(),
            restarts: vec![0],
            restart_interval: restart_interval.max(1),
            since_restart: 0,
            last_key: Vec::new(),
            entries: 0,
        }
    }

    /// Appends an entry; `key` must sort after the previous one (the caller checks).
    pub(crate) fn add(&mut self, key: &[u8], value: &[u8]) {
        let shared = if self.since_restart < self.restart_interval {
            key.iter()
                .zip(&self.last_key)
                .take_while(|(a, b)| a == b)
                .count()
        } else {
            self.restarts.push(self.buf.len() as u32);
            self.since_restart = 0;
            0
        };
        put_varint(&mut self.buf, shared as u64);
        put_varint(&mut self.buf, (key.len() - shared) as u64);
        put_varint(&mut self.buf, value.len() as u64);
        self.buf.extend_from_slice(&key[shared..]);
        self.buf.extend_from_slice(value);
        self.last_key.truncate(shared);
        self.last_key.extend_from_slice(&key[shared..]);
        self.since_restart += 1;
        self.entries += 1;
    }

    /// Size of the block if finished now.
    pub(crate) fn size_estimate(&self) -> usize {
        self.buf.len() + 4 * self.restarts.len() + 4
    }

    /// True if no entry has been added since the last reset.
    pub(crate) fn is_empty(&self) -> bool {
        self.entries == 0
    }

    /// Appends the restart array and returns the finished contents; call `reset` before
    /// reusing the builder.
    pub(crate) fn finish(&mut self) -> &[u8] {
        for &r in &self.restarts {
            put_fixed32(&mut self.buf, r);
        }
        put_fixed32(&mut self.buf, self.restarts.len() as u32);
        &self.buf
    }

    /// Empties the builder, keeping its allocations.
    pub(crate) fn reset(&mut self) {
        self.buf.clear();
        self.restarts.clear();
        self.restarts.push(0);
        self.since_restart = 0;
        self.last_key.clear();
        self.entries = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_prefixes_between_restarts() {
        let mut b = BlockBuilder::new(2);
        b.add(b"apple", b"1");
        b.add(b"apply", b"2");
        b.add(b"banana", b"3");
        let estimate = b.size_estimate();
        let out = b.finish().to_vec();
        // entry 1: whole key; entry 2: shares "appl"; entry 3: restart, whole key.
        assert_eq!(
            &out[..10],
            &[0, 5, 1, b'a', b'p', b'p', b'l', b'e', b'1', 4]
        );
        let n = out.len();
        assert_eq!(&out[n - 4..], &2u32.to_le_bytes(), "two restart points");
        assert_eq!(
            &out[n - 8..n - 4],
            &14u32.to_le_bytes(),
            "banana starts at 14"
        );
        assert_eq!(n, estimate);
    }

    #[test]
    fn reset_gives_an_empty_block() {
        let mut b = BlockBuilder::new(16);
        b.add(b"k", b"v");
        b.finish();
        b.reset();
        assert!(b.is_empty());
        assert_eq!(b.finish(), &[0, 0, 0, 0, 1, 0, 0, 0]);
    }
}
