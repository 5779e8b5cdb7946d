//! Numbering to-do records, and knowing which numbers may still be in flight.
//!
//! Folded to-dos are deleted, and an LSM tree keeps deletions around until compaction,
//! so a folder that always read from to-do 0 would wade through every deletion since
//! the last compaction (a queue in an LSM is quadratic that way). The folder keeps a
//! cursor instead. The cursor may only pass numbers whose batches are committed: a
//! batch takes its numbers, then writes, and a number taken but not yet written is
//! invisible to the folder. So each writing batch registers its first number until it
//! is done, and the cursor never passes the lowest registered one (the *watermark*).

use super::{layout, Merkle};
use crate::replica_api::ItemKey;
use kv_engine::WriteBatch;
use std::collections::BTreeSet;

/// The next to-do number and the first numbers of batches being written.
#[derive(Debug, Default)]
pub(super) struct TodoSeqs {
    next: u64,
    in_flight: BTreeSet<u64>,
}

impl TodoSeqs {
    pub(super) fn starting_at(next: u64) -> TodoSeqs {
        TodoSeqs {
            next,
            in_flight: BTreeSet::new(),
        }
    }

    /// Every to-do numbered below this is committed (or its batch failed).
    pub(super) fn watermark(&self) -> u64 {
        self.in_flight.first().copied().unwrap_or(self.next)
    }

    /// The number the next to-do will get.
    pub(super) fn next(&self) -> u64 {
        self.next
    }
}

/// The to-dos of one engine batch being built; keep it until the batch is written (or
/// abandoned): until it is dropped the folder does not move past its to-dos.
pub struct PendingTodos<'a> {
    merkle: &'a Merkle,
    first: Option<u64>,
}

impl Merkle {
    /// Starts the to-dos of a new batch.
    pub fn begin_todos(&self) -> PendingTodos<'_> {
        PendingTodos {
            merkle: self,
            first: None,
        }
    }
}

impl PendingTodos<'_> {
    /// Adds the to-do record of a write of `key` to `batch` (which also writes the data);
    /// folding reads the key's record back to learn its leaf. For a writer that cannot
    /// hold the key's stripe lock (the replica store's own writers put the leaf itself:
    /// Merkle::begin_leaves).
    pub fn add(&mut self, batch: &mut WriteBatch, key: &ItemKey) {
        let seq = {
            let mut seqs = self.merkle.todo_seqs.lock();
            let seq = seqs.next;
            seqs.next += 1;
            if self.first.is_none() {
                seqs.in_flight.insert(seq);
                self.first = Some(seq);
            }
            seq
        };
        batch.put(
            self.merkle.tree,
            &layout::todo_key(seq),
            &layout::encode_todo(key, None),
        );
    }
}

impl Drop for PendingTodos<'_> {
    fn drop(&mut self) {
        if let Some(first) = self.first {
            self.merkle.todo_seqs.lock().in_flight.remove(&first);
        }
    }
}
