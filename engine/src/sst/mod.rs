//! Sorted string tables: blocks, bloom filter, index, footer, block cache. Spec: docs/format/sstable.md.
//!
//! ```text
//! table := data_block* filter_block? properties_block index_block footer
//! ```
//!
//! Writing: [`TableBuilder`]. Reading: [`Table`] (point lookups, [`TableIterator`],
//! verification), shared through a [`TableCache`], with data blocks kept in a
//! [`BlockCache`].

mod block;
mod block_builder;
mod block_io;
pub(crate) mod bloom;
mod builder;
mod cache;
mod footer;
mod lru;
mod properties;
mod readahead;
mod reader;
mod separator;
mod table_cache;
mod table_iter;
mod verify;

pub use builder::TableBuilder;
pub use cache::{BlockCache, CacheFill};
pub use footer::{BlockHandle, FORMAT_VERSION, MAGIC};
pub use properties::TableProperties;
pub use reader::Table;
pub use table_cache::TableCache;
pub use table_iter::TableIterator;

use crate::constants as c;
use crate::options::Compression;
use std::sync::atomic::AtomicU64;

/// How a [`TableBuilder`] lays out a table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableOptions {
    /// Target size of an uncompressed data block; a block is cut once it reaches this.
    pub block_size: usize,
    /// Keys between restart points in data blocks (at least 1).
    pub restart_interval: usize,
    /// Bloom filter bits per user key; 0 writes no filter block.
    pub bloom_bits_per_key: usize,
    /// Data block compression.
    pub compression: Compression,
}

impl Default for TableOptions {
    fn default() -> Self {
        TableOptions {
            block_size: c::SST_BLOCK_SIZE,
            restart_interval: c::SST_RESTART_INTERVAL,
            bloom_bits_per_key: c::BLOOM_BITS_PER_KEY,
            compression: Compression::Lz4,
        }
    }
}

/// Read-path counters shared by every table of one Db (relaxed atomics).
#[derive(Debug, Default)]
pub struct SstCounters {
    /// Point lookups that consulted a bloom filter.
    pub bloom_checks: AtomicU64,
    /// Lookups the filter ruled out (a block read saved).
    pub bloom_negatives: AtomicU64,
    /// Lookups the filter let through although the table had no entry for the user key.
    pub bloom_false_positives: AtomicU64,
    /// Data block reads served by the block cache.
    pub cache_hits: AtomicU64,
    /// Data block reads that went to the file.
    pub cache_misses: AtomicU64,
}

/// Decodes an on-disk compression byte.
pub(crate) fn compression_from_u8(b: u8) -> Option<Compression> {
    match b {
        0 => Some(Compression::None),
        1 => Some(Compression::Lz4),
        _ => None,
    }
}
