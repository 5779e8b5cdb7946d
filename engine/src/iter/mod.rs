//! Iteration over internal keys, and the merge that turns many sorted sources (memtables,
//! SSTables) into one.

mod merging;

pub use merging::MergingIterator;

use crate::error::Result;

/// A forward cursor over `(internal key, value)` pairs in [`crate::key::compare_internal_keys`]
/// order. Implemented by memtable, block, table and level iterators.
///
/// After any positioning call the iterator is either `valid()` with a current entry, or
/// exhausted; an I/O or corruption error makes it invalid and is reported by `status()`.
pub trait InternalIterator: Send {
    /// True if positioned on an entry.
    fn valid(&self) -> bool;
    /// Positions on the first entry.
    fn seek_to_first(&mut self);
    /// Positions on the first entry whose internal key is >= `target`.
    fn seek(&mut self, target: &[u8]);
    /// Advances; requires `valid()`.
    fn next(&mut self);
    /// Current internal key; requires `valid()`.
    fn key(&self) -> &[u8];
    /// Current value; requires `valid()`.
    fn value(&self) -> &[u8];
    /// The first error met, if any.
    fn status(&self) -> Result<()>;
}

impl<T: InternalIterator + ?Sized> InternalIterator for Box<T> {
    fn valid(&self) -> bool {
        (**self).valid()
    }
    fn seek_to_first(&mut self) {
        (**self).seek_to_first()
    }
    fn seek(&mut self, target: &[u8]) {
        (**self).seek(target)
    }
    fn next(&mut self) {
        (**self).next()
    }
    fn key(&self) -> &[u8] {
        (**self).key()
    }
    fn value(&self) -> &[u8] {
        (**self).value()
    }
    fn status(&self) -> Result<()> {
        (**self).status()
    }
}

/// An iterator over a sorted in-memory vector; used by tests of every other iterator.
#[derive(Debug, Default)]
pub struct VecIterator {
    entries: Vec<(Vec<u8>, Vec<u8>)>,
    pos: usize,
}

impl VecIterator {
    /// Wraps entries already sorted by internal key.
    pub fn new(entries: Vec<(Vec<u8>, Vec<u8>)>) -> Self {
        let pos = entries.len();
        VecIterator { entries, pos }
    }
}

impl InternalIterator for VecIterator {
    fn valid(&self) -> bool {
        self.pos < self.entries.len()
    }
    fn seek_to_first(&mut self) {
        self.pos = 0;
    }
    fn seek(&mut self, target: &[u8]) {
        self.pos = self.entries.partition_point(|(k, _)| {
            crate::key::compare_internal_keys(k, target) == std::cmp::Ordering::Less
        });
    }
    fn next(&mut self) {
        self.pos += 1;
    }
    fn key(&self) -> &[u8] {
        &self.entries[self.pos].0
    }
    fn value(&self) -> &[u8] {
        &self.entries[self.pos].1
    }
    fn status(&self) -> Result<()> {
        Ok(())
    }
}
