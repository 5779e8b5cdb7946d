//! Readahead for a table iterator that walks its blocks in file order (a scan, a
//! compaction's input). Without it each 4 KiB block is a read of its own: a scan of 1M
//! entries made about 30,000 `pread`s. Once two blocks in a row were read back to back,
//! the iterator reads ahead in one call, 8 KiB at first and twice as much each time up
//! to 256 KiB, and serves the next blocks from that buffer. A seek elsewhere starts
//! over. RocksDB's iterators read ahead the same way (auto readahead: 8 KiB doubling to
//! `max_auto_readahead_size`, 256 KiB).

use crate::error::Result;
use crate::fs::RandomAccessFile;

/// The first read ahead, in bytes.
const FIRST_READAHEAD: usize = 8 * 1024;
/// The largest read ahead, in bytes: what one iterator holds at most.
const MAX_READAHEAD: usize = 256 * 1024;
/// Blocks read back to back before reading ahead: a point lookup through an iterator
/// (a seek and one block) never reads more than its block.
const SEQUENTIAL_BEFORE_READAHEAD: u32 = 2;

/// One iterator's readahead state over one file.
#[derive(Debug, Default)]
pub(crate) struct Readahead {
    /// Stored bytes of the file from `start`.
    buf: Vec<u8>,
    start: u64,
    /// Where the last block asked for ended (its trailer included).
    last_end: Option<u64>,
    /// Blocks asked for back to back, up to the last one.
    in_a_row: u32,
    /// Bytes the next read ahead asks for.
    next_size: usize,
}

impl Readahead {
    /// Notes a block at `[offset, end)` that was found elsewhere (the block cache), so a
    /// walk keeps counting as sequential across it.
    pub(crate) fn passed(&mut self, offset: u64, end: u64) {
        self.note(offset, end);
    }

    /// The stored bytes `[offset, end)` of a block: from the buffer if it holds them,
    /// else read ahead into it when blocks have been asked for back to back. `None`: no
    /// readahead yet, read the block alone. `end` must not pass the end of `file`.
    pub(crate) fn stored(
        &mut self,
        file: &dyn RandomAccessFile,
        offset: u64,
        end: u64,
    ) -> Result<Option<&[u8]>> {
        self.note(offset, end);
        if !self.holds(offset, end) {
            if self.in_a_row < SEQUENTIAL_BEFORE_READAHEAD {
                return Ok(None);
            }
            let needed = (end - offset) as usize;
            let wanted = needed.max(self.next_size.max(FIRST_READAHEAD));
            let available =
                usize::try_from(file.len().saturating_sub(offset)).unwrap_or(usize::MAX);
            self.buf.clear();
            self.buf.resize(wanted.min(available).max(needed), 0);
            self.start = offset;
            if let Err(e) = file.read_exact_at(offset, &mut self.buf) {
                self.buf.clear();
                return Err(e);
            }
            self.next_size = (wanted * 2).min(MAX_READAHEAD);
        }
        let from = (offset - self.start) as usize;
        let to = (end - self.start) as usize;
        Ok(self.buf.get(from..to))
    }

    fn note(&mut self, offset: u64, end: u64) {
        if self.last_end == Some(offset) {
            self.in_a_row += 1;
        } else {
            self.in_a_row = 0;
            self.next_size = FIRST_READAHEAD;
        }
        self.last_end = Some(end);
    }

    fn holds(&self, offset: u64, end: u64) -> bool {
        offset >= self.start && end <= self.start + self.buf.len() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A file of `len` bytes (byte i is i % 251) that counts its reads.
    struct Counted {
        len: u64,
        reads: AtomicUsize,
    }

    impl RandomAccessFile for Counted {
        fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
            assert!(offset + buf.len() as u64 <= self.len, "read past the end");
            self.reads.fetch_add(1, Ordering::Relaxed);
            for (i, b) in buf.iter_mut().enumerate() {
                *b = ((offset as usize + i) % 251) as u8;
            }
            Ok(())
        }
        fn len(&self) -> u64 {
            self.len
        }
    }

    fn file(len: u64) -> Counted {
        Counted {
            len,
            reads: AtomicUsize::new(0),
        }
    }

    /// Asks for blocks of `size` bytes back to back from `from` to the end; each block's
    /// bytes are checked. Returns how many reads the file saw.
    fn walk(ra: &mut Readahead, f: &Counted, from: u64, size: u64) -> usize {
        let before = f.reads.load(Ordering::Relaxed);
        let mut offset = from;
        while offset < f.len {
            let end = (offset + size).min(f.len);
            let got = match ra.stored(f, offset, end).unwrap() {
                Some(b) => b.to_vec(),
                None => {
                    let mut b = vec![0; (end - offset) as usize];
                    f.read_exact_at(offset, &mut b).unwrap();
                    b
                }
            };
            let want: Vec<u8> = (offset..end).map(|i| (i % 251) as u8).collect();
            assert_eq!(got, want, "block at {offset}");
            offset = end;
        }
        f.reads.load(Ordering::Relaxed) - before
    }

    #[test]
    fn a_walk_in_file_order_reads_ahead_in_growing_steps() {
        let f = file(4 << 20);
        let blocks = (4 << 20) / 4096;
        let reads = walk(&mut Readahead::default(), &f, 0, 4096);
        // 2 alone, then 8, 16, ..., 256 KiB reads: about 16 + 5 reads for 1024 blocks.
        assert!(reads < blocks / 32, "{reads} reads for {blocks} blocks");
        assert!(reads > 10, "{reads} reads: more than 256 KiB at once?");
    }

    #[test]
    fn blocks_out_of_order_are_read_alone() {
        let f = file(1 << 20);
        let mut ra = Readahead::default();
        for i in [7u64, 3, 100, 50, 51 + 10, 2] {
            let (offset, end) = (i * 4096, i * 4096 + 4096);
            assert!(ra.stored(&f, offset, end).unwrap().is_none(), "block {i}");
        }
        assert_eq!(f.reads.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn a_seek_elsewhere_starts_over_and_blocks_larger_than_the_step_are_whole() {
        let f = file(2 << 20);
        let mut ra = Readahead::default();
        walk(&mut ra, &f, 0, 4096);
        // A jump back: the next two blocks are read alone again.
        assert!(ra.stored(&f, 8192, 12288).unwrap().is_none());
        assert!(ra.stored(&f, 12288, 16384).unwrap().is_none());
        // A block larger than any step still comes whole.
        let big = ra
            .stored(&f, 16384, 16384 + 600_000)
            .unwrap()
            .map(<[u8]>::len);
        assert_eq!(big, Some(600_000));
        // Found in the cache: still in a row.
        ra.passed(616_384, 620_480);
        assert!(ra.stored(&f, 620_480, 624_576).unwrap().is_some());
    }
}
