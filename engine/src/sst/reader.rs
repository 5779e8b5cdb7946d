//! Opens and reads a table. Spec: docs/format/sstable.md.
//!
//! `open` reads the footer, then the index, filter and properties blocks, checking each
//! (checksum, grammar, handles inside the file) and keeping them in memory; data blocks
//! are read on demand through the block cache. Everything wrong on disk becomes a
//! `Corruption` naming the file and the offset of the bad block or field.

use super::block::{Block, BlockIter};
use super::block_io::{decode_stored, read_block, stored_len};
use super::bloom::BloomFilter;
use super::cache::{BlockCache, CacheFill};
use super::footer::{BlockHandle, Footer, FOOTER_LEN};
use super::properties::TableProperties;
use super::readahead::Readahead;
use super::table_iter::TableIterator;
use super::SstCounters;
use crate::error::{Error, Result};
use crate::fs::RandomAccessFile;
use crate::iter::InternalIterator;
use crate::key::{lookup_key, user_key, MAX_SEQUENCE};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

/// An open, immutable table.
pub struct Table {
    pub(super) path: Arc<PathBuf>,
    file: Arc<dyn RandomAccessFile>,
    file_number: u64,
    cache: Option<Arc<BlockCache>>,
    counters: Arc<SstCounters>,
    pub(super) index: Arc<Block>,
    pub(super) filter: Option<BloomFilter>,
    pub(super) props: TableProperties,
    /// End of the region data blocks may occupy (start of the first metadata block).
    pub(super) data_end: u64,
    /// Where the properties block starts (named by property mismatches in `verify`).
    pub(super) properties_offset: u64,
    /// Where the filter block starts (named if the filter misses a key), 0 if none.
    pub(super) filter_offset: u64,
}

impl std::fmt::Debug for Table {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Table")
            .field("path", &self.path)
            .field("file_number", &self.file_number)
            .field("entries", &self.props.entries)
            .finish_non_exhaustive()
    }
}

impl Table {
    /// Reads and checks footer, index, filter and properties. `cache` may be `None`.
    pub fn open(
        path: PathBuf,
        file: Arc<dyn RandomAccessFile>,
        file_number: u64,
        cache: Option<Arc<BlockCache>>,
        counters: Arc<SstCounters>,
    ) -> Result<Arc<Table>> {
        let path = Arc::new(path);
        let file_size = file.len();
        let footer_at = file_size.checked_sub(FOOTER_LEN as u64).ok_or_else(|| {
            Error::corruption(
                path.as_path(),
                0,
                format!("file of {file_size} bytes is shorter than the {FOOTER_LEN}-byte footer"),
            )
        })?;
        let mut buf = [0u8; FOOTER_LEN];
        file.read_exact_at(footer_at, &mut buf)?;
        let footer = Footer::decode(&path, footer_at, &buf)?;
        let handles = [Some(footer.index), footer.filter, Some(footer.properties)];
        for h in handles.into_iter().flatten() {
            if h.end_with_trailer()
                .filter(|&end| end <= footer_at)
                .is_none()
            {
                return Err(Error::corruption(
                    path.as_path(),
                    footer_at,
                    format!(
                        "footer handle (offset {}, size {}) is not inside the file",
                        h.offset, h.size
                    ),
                ));
            }
        }
        let data_end = handles
            .into_iter()
            .flatten()
            .map(|h| h.offset)
            .min()
            .unwrap_or(footer_at);
        let index_data = read_block(file.as_ref(), &path, footer.index)?;
        let index = Arc::new(Block::new(index_data, path.clone(), footer.index.offset)?);
        let filter = match footer.filter {
            None => None,
            Some(h) => {
                let data = read_block(file.as_ref(), &path, h)?;
                let f = BloomFilter::decode(data)
                    .map_err(|what| Error::corruption(path.as_path(), h.offset, what))?;
                Some(f)
            }
        };
        let p = footer.properties;
        let mut props =
            TableProperties::decode(read_block(file.as_ref(), &path, p)?, path.clone(), p.offset)?;
        if props.format_version != super::FORMAT_VERSION {
            return Err(Error::corruption(
                path.as_path(),
                p.offset,
                format!("properties say format version {}", props.format_version),
            ));
        }
        props.file_size = file_size;
        props.index_size = footer.index.size;
        props.filter_size = footer.filter.map_or(0, |h| h.size);
        Ok(Arc::new(Table {
            path,
            file,
            file_number,
            cache,
            counters,
            index,
            filter,
            props,
            data_end,
            properties_offset: p.offset,
            filter_offset: footer.filter.map_or(0, |h| h.offset),
        }))
    }

    /// The table's properties.
    pub fn properties(&self) -> &TableProperties {
        &self.props
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file's number (its block cache id).
    pub fn file_number(&self) -> u64 {
        self.file_number
    }

    /// Bloom filter verdict for `user_key` (true when there is no filter); no counters.
    pub fn may_contain(&self, user_key: &[u8]) -> bool {
        match &self.filter {
            None => true,
            Some(f) => f.may_contain(user_key),
        }
    }

    /// An iterator over the index block.
    pub(crate) fn index_iter(&self) -> BlockIter {
        BlockIter::new(self.index.clone())
    }

    /// Decodes the data block handle in an index entry's value and checks it lies in
    /// the data region.
    pub(crate) fn decode_handle(&self, value: &[u8]) -> Result<BlockHandle> {
        BlockHandle::decode(value)
            .filter(|h| h.end_with_trailer().is_some_and(|end| end <= self.data_end))
            .ok_or_else(|| {
                Error::corruption(
                    self.path.as_path(),
                    self.index.file_offset(),
                    "index entry holds a bad data block handle",
                )
            })
    }

    /// The data block at `handle`, from the cache or the file; a block read from the
    /// file enters the cache only under [`CacheFill::Fill`].
    pub(crate) fn data_block(&self, handle: BlockHandle, fill: CacheFill) -> Result<Arc<Block>> {
        self.data_block_via(handle, fill, None)
    }

    /// [`Table::data_block`] for an iterator walking the table: a block the cache lacks
    /// is read through `readahead` (sst/readahead.rs). A block that came from a read
    /// ahead does not enter the cache: a walk long enough to read ahead reads each block
    /// once, in order, and a table larger than the cache would otherwise replace every
    /// block readers use with blocks nobody asks for again (PostgreSQL's large
    /// sequential scans use a small ring of buffers for the same reason).
    pub(crate) fn data_block_via(
        &self,
        handle: BlockHandle,
        fill: CacheFill,
        mut readahead: Option<&mut Readahead>,
    ) -> Result<Arc<Block>> {
        let Some(cache) = &self.cache else {
            return Ok(self.read_data_block(handle, readahead)?.0);
        };
        if let Some(b) = cache.get(self.file_number, handle.offset) {
            self.counters.cache_hits.fetch_add(1, Relaxed);
            if let (Some(ra), Some(end)) = (readahead.as_mut(), handle.end_with_trailer()) {
                ra.passed(handle.offset, end);
            }
            return Ok(b);
        }
        self.counters.cache_misses.fetch_add(1, Relaxed);
        let (b, read_ahead) = self.read_data_block(handle, readahead)?;
        if fill == CacheFill::Fill && !read_ahead {
            cache.insert(self.file_number, handle.offset, b.clone());
        }
        Ok(b)
    }

    /// The block at `handle` from the file, and whether it came from a read ahead.
    pub(super) fn read_data_block(
        &self,
        handle: BlockHandle,
        readahead: Option<&mut Readahead>,
    ) -> Result<(Arc<Block>, bool)> {
        let file = self.file.as_ref();
        let ahead = match readahead {
            Some(ra) => {
                let end = handle.offset + stored_len(file, &self.path, handle)? as u64;
                ra.stored(file, handle.offset, end)?.map(<[u8]>::to_vec)
            }
            None => None,
        };
        let read_ahead = ahead.is_some();
        let data = match ahead {
            Some(stored) => decode_stored(stored, &self.path, handle)?,
            None => read_block(file, &self.path, handle)?,
        };
        let block = Block::new(data, self.path.clone(), handle.offset)?;
        Ok((Arc::new(block), read_ahead))
    }

    /// The first entry whose internal key is >= `lookup_key`, if it has the same user
    /// key. Consults the bloom filter first and updates the counters.
    pub fn get(&self, lookup_key: &[u8]) -> Result<Option<(Vec<u8>, Vec<u8>)>> {
        let wanted = user_key(lookup_key);
        if let Some(f) = &self.filter {
            self.counters.bloom_checks.fetch_add(1, Relaxed);
            if !f.may_contain(wanted) {
                self.counters.bloom_negatives.fetch_add(1, Relaxed);
                return Ok(None);
            }
        }
        let found = self.seek_one(lookup_key)?;
        let hit = found.filter(|(k, _)| user_key(k) == wanted);
        if hit.is_none() && self.filter.is_some() {
            // Counted as a false positive even when the key exists only in versions
            // newer than the lookup's sequence (a snapshot read): rare, and cheap to count.
            self.counters.bloom_false_positives.fetch_add(1, Relaxed);
        }
        Ok(hit)
    }

    /// The first entry >= `target`: one index seek and one data block seek.
    fn seek_one(&self, target: &[u8]) -> Result<Option<(Vec<u8>, Vec<u8>)>> {
        let mut index = BlockIter::new(&*self.index);
        index.seek(target);
        if !index.valid() {
            index.status()?;
            return Ok(None);
        }
        let block = self.data_block(self.decode_handle(index.value())?, CacheFill::Fill)?;
        let mut it = BlockIter::new(block);
        it.seek(target);
        if it.valid() {
            return Ok(Some((it.key().to_vec(), it.value().to_vec())));
        }
        it.status()?;
        // The separator may be greater than the block's last key; then the next block's
        // first key is the answer, and its user key is greater than any user key <= the
        // separator's, so a point lookup can stop here.
        Ok(None)
    }

    /// A two-level iterator over the table's entries.
    pub fn iter(self: &Arc<Self>) -> TableIterator {
        self.iter_with(CacheFill::Fill)
    }

    /// [`Table::iter`] that inserts the blocks it reads into the cache or not.
    pub fn iter_with(self: &Arc<Self>, fill: CacheFill) -> TableIterator {
        TableIterator::new(self.clone(), fill)
    }

    /// The data block handles, in file order.
    pub fn block_handles(&self) -> Result<Vec<BlockHandle>> {
        let mut out = Vec::new();
        let mut index = self.index_iter();
        index.seek_to_first();
        while index.valid() {
            out.push(self.decode_handle(index.value())?);
            index.next();
        }
        index.status()?;
        Ok(out)
    }

    /// Fraction of `samples` user keys known to be absent that the bloom filter lets
    /// through (1.0 without a filter). Probes use a `\0kvd-bloom-probe` prefix; any that
    /// happens to exist in the table is skipped.
    pub fn measure_bloom_fp_rate(&self, samples: usize) -> f64 {
        let Some(f) = &self.filter else {
            return 1.0;
        };
        let (mut tested, mut passed) = (0usize, 0usize);
        for i in 0..samples as u64 {
            let mut key = b"\0kvd-bloom-probe-".to_vec();
            key.extend_from_slice(&i.to_be_bytes());
            if !f.may_contain(&key) {
                tested += 1;
                continue;
            }
            let present = matches!(
                self.seek_one(&lookup_key(&key, MAX_SEQUENCE)),
                Ok(Some((k, _))) if user_key(&k) == key.as_slice()
            );
            if !present {
                tested += 1;
                passed += 1;
            }
        }
        if tested == 0 {
            return 0.0;
        }
        passed as f64 / tested as f64
    }
}
