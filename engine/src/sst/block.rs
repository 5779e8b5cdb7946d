//! Reads block contents written by [`super::block_builder`]. Spec: docs/format/sstable.md.
//!
//! ```text
//! block_contents := entry* restart:fixed32* num_restarts:fixed32
//! entry          := shared:varint32 non_shared:varint32 value_len:varint32
//!                   key_delta[non_shared] value[value_len]
//! ```
//! [`Block::new`] checks the restart array; [`BlockIter`] bounds-checks every entry as it
//! decodes it and turns anything malformed into a `Corruption` naming the file and the
//! block's offset. Seeks binary-search the restart points (whose keys are stored whole)
//! and then scan at most one restart interval, reusing one key buffer.

use crate::coding::{get_fixed32, get_varint};
use crate::error::{Error, Result};
use crate::iter::InternalIterator;
use crate::key::compare_internal_keys;
use std::cmp::Ordering;
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// An immutable, checked block, shared between the block cache and iterators.
#[derive(Debug)]
pub struct Block {
    data: Vec<u8>,
    /// Offset of the restart array = end of the entries.
    restarts_offset: usize,
    num_restarts: usize,
    /// Where the block came from, for error messages.
    file: Arc<PathBuf>,
    file_offset: u64,
}

impl Block {
    /// Checks the restart array of `data`, the contents of the block at `file_offset` of `file`.
    pub(crate) fn new(data: Vec<u8>, file: Arc<PathBuf>, file_offset: u64) -> Result<Block> {
        let bad = |what: String| Error::corruption(file.as_path(), file_offset, what);
        let n = get_fixed32(&data, data.len().wrapping_sub(4)).ok_or_else(|| {
            bad(format!(
                "block of {} bytes has no restart count",
                data.len()
            ))
        })? as usize;
        let restarts_offset = n
            .checked_mul(4)
            .and_then(|r| data.len().checked_sub(4 + r))
            .filter(|_| n >= 1)
            .ok_or_else(|| {
                bad(format!(
                    "bad restart count {n} for a {}-byte block",
                    data.len()
                ))
            })?;
        let mut prev = None;
        for i in 0..n {
            let r = get_fixed32(&data, restarts_offset + 4 * i).unwrap_or(u32::MAX) as usize;
            let ok = match prev {
                None => r == 0,
                Some(p) => r > p && r < restarts_offset,
            };
            if !ok {
                return Err(bad(format!("restart point {i} has bad offset {r}")));
            }
            prev = Some(r);
        }
        Ok(Block {
            data,
            restarts_offset,
            num_restarts: n,
            file,
            file_offset,
        })
    }

    /// Bytes held (what the block cache charges).
    pub(crate) fn size(&self) -> usize {
        self.data.len()
    }

    /// File the block was read from.
    pub(crate) fn file(&self) -> &Path {
        self.file.as_path()
    }

    /// File offset of the block.
    pub(crate) fn file_offset(&self) -> u64 {
        self.file_offset
    }

    fn restart(&self, i: usize) -> usize {
        get_fixed32(&self.data, self.restarts_offset + 4 * i).unwrap_or(0) as usize
    }
}

/// Decodes the three varints of an entry header, with a fast path for one-byte varints.
/// Returns (shared, non_shared, value_len, header_len).
#[inline]
fn decode_entry_header(buf: &[u8]) -> Option<(usize, usize, usize, usize)> {
    if let [a, b, c, ..] = *buf {
        if (a | b | c) < 0x80 {
            return Some((a as usize, b as usize, c as usize, 3));
        }
    }
    let (shared, n1) = get_varint(buf)?;
    let (non_shared, n2) = get_varint(buf.get(n1..)?)?;
    let (value_len, n3) = get_varint(buf.get(n1 + n2..)?)?;
    Some((
        usize::try_from(shared).ok()?,
        usize::try_from(non_shared).ok()?,
        usize::try_from(value_len).ok()?,
        n1 + n2 + n3,
    ))
}

/// A cursor over one block's entries, in order. `B` is how the block is held: an
/// `Arc<Block>` when the iterator outlives the caller's borrow (table iterators), or a
/// plain `&Block` for a point lookup in the table's pinned index, which then touches no
/// shared reference count.
pub struct BlockIter<B: Deref<Target = Block> = Arc<Block>> {
    block: B,
    key: Vec<u8>,
    value_start: usize,
    value_end: usize,
    /// Offset of the current entry; `restarts_offset` when not valid.
    current: usize,
    /// Offset of the entry after the current one.
    next_offset: usize,
    err: Option<Error>,
}

impl<B: Deref<Target = Block>> BlockIter<B> {
    /// An unpositioned iterator over `block`.
    pub(crate) fn new(block: B) -> Self {
        let end = block.restarts_offset;
        BlockIter {
            block,
            key: Vec::new(),
            value_start: 0,
            value_end: 0,
            current: end,
            next_offset: end,
            err: None,
        }
    }

    /// Switches to another block, keeping the key buffer's allocation.
    pub(crate) fn reset(&mut self, block: B) {
        self.current = block.restarts_offset;
        self.next_offset = block.restarts_offset;
        self.block = block;
        self.key.clear();
        self.err = None;
    }

    fn fail(&mut self, entry_offset: usize, what: &str) {
        self.err = Some(Error::corruption(
            self.block.file(),
            self.block.file_offset(),
            format!("{what} (entry at byte {entry_offset} of the block)"),
        ));
        self.current = self.block.restarts_offset;
        self.next_offset = self.block.restarts_offset;
    }

    /// Decodes the entry at `next_offset` into the current position. False at the end
    /// of the block or on corruption (then `err` is set).
    fn parse_next(&mut self) -> bool {
        let at = self.next_offset;
        let end = self.block.restarts_offset;
        if at >= end {
            self.current = end;
            return false;
        }
        let entries = self.block.data.get(at..end).unwrap_or_default();
        let Some((shared, non_shared, value_len, hdr)) = decode_entry_header(entries) else {
            self.fail(at, "bad entry header");
            return false;
        };
        let key_start = hdr;
        let Some(value_start) = key_start.checked_add(non_shared) else {
            self.fail(at, "entry length overflows");
            return false;
        };
        let Some(value_end) = value_start.checked_add(value_len) else {
            self.fail(at, "entry length overflows");
            return false;
        };
        if shared > self.key.len() || value_end > entries.len() {
            self.fail(
                at,
                "entry runs past the end of the block or shares too much",
            );
            return false;
        }
        self.key.truncate(shared);
        self.key.extend_from_slice(&entries[key_start..value_start]);
        self.current = at;
        self.value_start = at + value_start;
        self.value_end = at + value_end;
        self.next_offset = at + value_end;
        true
    }

    /// The whole key stored at restart point `i`, or `None` if the entry is malformed or
    /// not a restart entry (shared != 0).
    fn restart_key(&self, i: usize) -> Option<&[u8]> {
        let at = self.block.restart(i);
        let entries = self.block.data.get(at..self.block.restarts_offset)?;
        let (shared, non_shared, _, hdr) = decode_entry_header(entries)?;
        if shared != 0 {
            return None;
        }
        entries.get(hdr..hdr.checked_add(non_shared)?)
    }

    fn seek_to_restart(&mut self, i: usize) {
        self.key.clear();
        self.next_offset = self.block.restart(i);
    }
}

impl<B: Deref<Target = Block> + Send> InternalIterator for BlockIter<B> {
    fn valid(&self) -> bool {
        self.current < self.block.restarts_offset
    }

    fn seek_to_first(&mut self) {
        if self.err.is_some() {
            return;
        }
        self.seek_to_restart(0);
        self.parse_next();
    }

    fn seek(&mut self, target: &[u8]) {
        if self.err.is_some() {
            return;
        }
        // Last restart point whose key is < target: the answer lies at or after it.
        let (mut lo, mut hi) = (0, self.block.num_restarts - 1);
        while lo < hi {
            let mid = (lo + hi).div_ceil(2);
            let Some(k) = self.restart_key(mid) else {
                self.fail(self.block.restart(mid), "bad restart entry");
                return;
            };
            if compare_internal_keys(k, target) == Ordering::Less {
                lo = mid;
            } else {
                hi = mid - 1;
            }
        }
        self.seek_to_restart(lo);
        while self.parse_next() {
            if compare_internal_keys(&self.key, target) != Ordering::Less {
                return;
            }
        }
    }

    fn next(&mut self) {
        debug_assert!(self.valid());
        self.parse_next();
    }

    fn key(&self) -> &[u8] {
        &self.key
    }

    fn value(&self) -> &[u8] {
        self.block
            .data
            .get(self.value_start..self.value_end)
            .unwrap_or_default()
    }

    fn status(&self) -> Result<()> {
        match &self.err {
            None => Ok(()),
            // `status()` may be asked more than once.
            Some(e) => Err(e.duplicate()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::{lookup_key, make_internal_key, ValueKind};
    use crate::sst::block_builder::BlockBuilder;

    fn build(keys: &[Vec<u8>], interval: usize) -> Arc<Block> {
        let mut b = BlockBuilder::new(interval);
        for (i, k) in keys.iter().enumerate() {
            b.add(k, format!("v{i}").as_bytes());
        }
        let data = b.finish().to_vec();
        Arc::new(Block::new(data, Arc::new(PathBuf::from("/t")), 0).unwrap())
    }

    fn keys(n: usize) -> Vec<Vec<u8>> {
        (0..n)
            .map(|i| make_internal_key(format!("key{i:05}").as_bytes(), 7, ValueKind::Put))
            .collect()
    }

    #[test]
    fn iterates_and_seeks_across_restart_points() {
        for interval in [1, 2, 16] {
            let ks = keys(100);
            let mut it = BlockIter::new(build(&ks, interval));
            it.seek_to_first();
            for (i, k) in ks.iter().enumerate() {
                assert!(it.valid());
                assert_eq!(it.key(), &k[..]);
                assert_eq!(it.value(), format!("v{i}").as_bytes());
                it.next();
            }
            assert!(!it.valid());
            for i in [0, 1, 15, 16, 17, 50, 99] {
                it.seek(&lookup_key(format!("key{i:05}").as_bytes(), 100));
                assert_eq!(it.key(), &ks[i][..]);
            }
            it.seek(&lookup_key(b"key00042x", 100));
            assert_eq!(it.key(), &ks[43][..]);
            it.seek(&lookup_key(b"zzz", 100));
            assert!(!it.valid());
            it.seek(&lookup_key(b"", 100));
            assert_eq!(it.key(), &ks[0][..]);
            assert!(it.status().is_ok());
        }
    }

    #[test]
    fn empty_block_is_valid_and_empty() {
        let mut it = BlockIter::new(build(&[], 16));
        it.seek_to_first();
        assert!(!it.valid());
        it.seek(b"anything");
        assert!(!it.valid());
    }

    #[test]
    fn malformed_restart_arrays_are_corruption() {
        let f = Arc::new(PathBuf::from("/t"));
        for data in [
            vec![],
            vec![1, 0, 0],
            vec![0, 0, 0, 0],
            vec![9, 0, 0, 0, 1, 0, 0, 0],
        ] {
            let e = Block::new(data.clone(), f.clone(), 40).unwrap_err();
            assert!(
                matches!(e, Error::Corruption { offset: 40, .. }),
                "{data:?}: {e}"
            );
        }
    }

    #[test]
    fn entry_running_past_the_block_is_corruption() {
        let mut b = BlockBuilder::new(16);
        b.add(b"abcdefghij", b"value");
        let mut data = b.finish().to_vec();
        data[2] = 100; // value_len
        let block = Block::new(data, Arc::new(PathBuf::from("/t")), 8).unwrap();
        let mut it = BlockIter::new(Arc::new(block));
        it.seek_to_first();
        assert!(!it.valid());
        assert!(it.status().unwrap_err().is_corruption());
    }

    /// Parsing never panics, whatever the bytes: blocks are checked by crc first, but the
    /// parser must stand on its own (a crc collision, or a bug in a writer).
    fn exercise(data: Vec<u8>, target: &[u8]) {
        if let Ok(block) = Block::new(data, Arc::new(PathBuf::from("/t")), 0) {
            let mut it = BlockIter::new(Arc::new(block));
            it.seek_to_first();
            let mut n = 0;
            while it.valid() && n < 10_000 {
                let _ = (it.key(), it.value());
                it.next();
                n += 1;
            }
            it.seek(target);
            let _ = it.status();
        }
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200),
                                       target in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..20)) {
            exercise(data, &target);
        }

        #[test]
        fn damaged_blocks_never_panic(flips in proptest::collection::vec((0usize..4096, 1u8..=255), 1..4),
                                      target in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..20)) {
            let mut b = BlockBuilder::new(4);
            for k in keys(40) {
                b.add(&k, b"some value");
            }
            let mut data = b.finish().to_vec();
            for (at, x) in flips {
                let n = data.len();
                data[at % n] ^= x;
            }
            exercise(data, &target);
        }
    }
}
