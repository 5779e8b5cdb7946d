//! The block cache: uncompressed data blocks shared by every table of a Db, bounded in
//! bytes. Sharded so concurrent readers rarely meet on one mutex.

use super::block::Block;
use super::lru::Lru;
use parking_lot::Mutex;
use std::sync::Arc;

/// Most shards; a power of two so a shard is picked with a mask.
const MAX_SHARDS: usize = 16;

/// Smallest capacity a shard gets: below this, fewer shards, so that each can still hold
/// a useful number of 4 KiB blocks and the byte bound stays exact.
const MIN_SHARD_BYTES: usize = 256 * 1024;

/// Bytes charged per cached block beyond its contents (the `Block`, the map slot and the
/// LRU order entry), so many tiny blocks cannot overrun the bound.
const PER_BLOCK_OVERHEAD: usize = 96;

/// Cache key: (table file number, block offset).
type CacheKey = (u64, u64);

/// Whether a block read from the file enters the cache. Reads serving users fill it;
/// a compaction reads each input block once and only for the merge, so its blocks
/// would push out the ones readers use and hold memory nobody asks for again
/// (RocksDB's compaction reads with `fill_cache = false` for the same reasons). A
/// block already cached is used either way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheFill {
    /// Insert blocks read from the file.
    Fill,
    /// Leave the cache as it is.
    Skip,
}

/// A sharded LRU cache of data blocks. Capacity 0 disables it.
pub struct BlockCache {
    shards: Vec<Mutex<Lru<CacheKey, Arc<Block>>>>,
    capacity: usize,
}

impl std::fmt::Debug for BlockCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlockCache")
            .field("capacity", &self.capacity)
            .field("usage", &self.usage())
            .finish()
    }
}

impl BlockCache {
    /// A cache holding at most `capacity_bytes` (contents plus per-block overhead).
    pub fn new(capacity_bytes: usize) -> Arc<Self> {
        let wanted = (capacity_bytes / MIN_SHARD_BYTES).clamp(1, MAX_SHARDS);
        // Round down to a power of two so `shard()` can mask.
        let n = 1usize << (usize::BITS - 1 - wanted.leading_zeros());
        let per_shard = capacity_bytes / n;
        Arc::new(BlockCache {
            shards: (0..n).map(|_| Mutex::new(Lru::new(per_shard))).collect(),
            capacity: capacity_bytes,
        })
    }

    /// Bytes currently charged.
    pub fn usage(&self) -> usize {
        self.shards.iter().map(|s| s.lock().usage()).sum()
    }

    /// The configured bound.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    fn shard(&self, key: CacheKey) -> &Mutex<Lru<CacheKey, Arc<Block>>> {
        // Fibonacci hashing of both halves: cheap, and spreads consecutive offsets.
        let h =
            (key.0.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ key.1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let i = (h >> 32) as usize & (self.shards.len() - 1);
        &self.shards[i]
    }

    /// The cached block at (`file_number`, `offset`).
    pub(crate) fn get(&self, file_number: u64, offset: u64) -> Option<Arc<Block>> {
        if self.capacity == 0 {
            return None;
        }
        self.shard((file_number, offset))
            .lock()
            .get(&(file_number, offset))
    }

    /// Caches `block` (no-op when disabled).
    pub(crate) fn insert(&self, file_number: u64, offset: u64, block: Arc<Block>) {
        if self.capacity == 0 {
            return;
        }
        let charge = block.size() + PER_BLOCK_OVERHEAD;
        self.shard((file_number, offset))
            .lock()
            .insert((file_number, offset), block, charge);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    /// A block of about `n` bytes: one entry with an `n`-byte key.
    fn block(n: usize) -> Arc<Block> {
        let mut b = crate::sst::block_builder::BlockBuilder::new(16);
        b.add(&vec![b'k'; n], b"");
        Arc::new(Block::new(b.finish().to_vec(), Arc::new(PathBuf::from("/t")), 0).unwrap())
    }

    #[test]
    fn usage_never_exceeds_capacity() {
        for cap in [0, 10_000, 300_000, 5_000_000] {
            let c = BlockCache::new(cap);
            for i in 0..2000u64 {
                c.insert(i % 7, i * 4096, block(4000));
                assert!(c.usage() <= cap, "cap {cap}: usage {}", c.usage());
            }
            assert_eq!(c.capacity(), cap);
        }
    }

    #[test]
    fn hits_return_the_same_block() {
        let c = BlockCache::new(1 << 20);
        let b = block(100);
        c.insert(3, 0, b.clone());
        assert!(Arc::ptr_eq(&c.get(3, 0).unwrap(), &b));
        assert!(c.get(3, 1).is_none());
        assert!(c.get(4, 0).is_none());
    }

    #[test]
    fn zero_capacity_disables() {
        let c = BlockCache::new(0);
        c.insert(1, 0, block(10));
        assert!(c.get(1, 0).is_none());
        assert_eq!(c.usage(), 0);
    }
}
