//! The two-level table iterator: an index block cursor choosing data blocks, and a data
//! block cursor within the current one. Blocks come through the block cache; the
//! iterator owns an `Arc<Table>`, so it may outlive the `TableCache` entry.

use super::block::BlockIter;
use super::cache::CacheFill;
use super::readahead::Readahead;
use super::reader::Table;
use crate::error::{Error, Result};
use crate::iter::InternalIterator;
use std::sync::Arc;

/// Iterates a whole table in internal-key order.
pub struct TableIterator {
    table: Arc<Table>,
    index: BlockIter,
    /// Cursor in the current data block; `None` before the first load or after an error.
    data: Option<BlockIter>,
    /// Offset of the block `data` holds, to avoid reloading it on a seek that lands in it.
    data_offset: Option<u64>,
    /// Whether blocks read from the file enter the block cache.
    fill: CacheFill,
    /// Blocks read in file order come in larger reads (sst/readahead.rs).
    readahead: Readahead,
    err: Option<Error>,
}

impl TableIterator {
    pub(crate) fn new(table: Arc<Table>, fill: CacheFill) -> Self {
        let index = table.index_iter();
        TableIterator {
            table,
            index,
            data: None,
            data_offset: None,
            fill,
            readahead: Readahead::default(),
            err: None,
        }
    }

    /// Points `data` at the block the index cursor names. False on error (recorded).
    fn load_block(&mut self) -> bool {
        let handle = match self.table.decode_handle(self.index.value()) {
            Ok(h) => h,
            Err(e) => return self.fail(e),
        };
        if self.data_offset == Some(handle.offset) && self.data.is_some() {
            return true;
        }
        let readahead = Some(&mut self.readahead);
        let block = match self.table.data_block_via(handle, self.fill, readahead) {
            Ok(b) => b,
            Err(e) => return self.fail(e),
        };
        match &mut self.data {
            Some(it) => it.reset(block),
            None => self.data = Some(BlockIter::new(block)),
        }
        self.data_offset = Some(handle.offset);
        true
    }

    fn fail(&mut self, e: Error) -> bool {
        self.err = Some(e);
        self.data = None;
        self.data_offset = None;
        false
    }

    /// Moves past exhausted data blocks to the next entry, if any.
    fn skip_empty_blocks(&mut self) {
        loop {
            let Some(data) = &self.data else { return };
            if data.valid() {
                return;
            }
            if let Err(e) = data.status() {
                self.fail(e);
                return;
            }
            self.index.next();
            if !self.enter_block(|d| d.seek_to_first()) {
                return;
            }
        }
    }

    /// Loads the block the index cursor names and lets `place` position the data cursor
    /// in it. False when the index is exhausted or on error (recorded).
    fn enter_block(&mut self, place: impl FnOnce(&mut BlockIter)) -> bool {
        if !self.index.valid() {
            if let Err(e) = self.index.status() {
                return self.fail(e);
            }
            self.data = None;
            self.data_offset = None;
            return false;
        }
        if !self.load_block() {
            return false;
        }
        if let Some(d) = &mut self.data {
            place(d);
        }
        true
    }

    /// After the index has been positioned: enter its block, place the data cursor with
    /// `place`, and move on to the first entry at or after that place.
    fn position(&mut self, place: impl FnOnce(&mut BlockIter)) {
        self.err = None;
        if self.enter_block(place) {
            self.skip_empty_blocks();
        }
    }
}

impl InternalIterator for TableIterator {
    fn valid(&self) -> bool {
        self.err.is_none() && self.data.as_ref().is_some_and(|d| d.valid())
    }

    fn seek_to_first(&mut self) {
        self.index.seek_to_first();
        self.position(|d| d.seek_to_first());
    }

    fn seek(&mut self, target: &[u8]) {
        self.index.seek(target);
        self.position(|d| d.seek(target));
    }

    fn next(&mut self) {
        debug_assert!(self.valid());
        if let Some(d) = &mut self.data {
            d.next();
        }
        self.skip_empty_blocks();
    }

    fn key(&self) -> &[u8] {
        self.data.as_ref().map_or(&[], |d| d.key())
    }

    fn value(&self) -> &[u8] {
        self.data.as_ref().map_or(&[], |d| d.value())
    }

    fn status(&self) -> Result<()> {
        match &self.err {
            Some(e) => Err(e.duplicate()),
            None => self.index.status(),
        }
    }
}
