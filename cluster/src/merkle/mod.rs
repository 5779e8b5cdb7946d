//! Per-partition Merkle trees over the replicated records, kept up to date
//! incrementally (spec: docs/format/cluster-storage.md).
//!
//! Two levels per partition: one leaf per key (`item_hash`), grouped into 256 buckets
//! by the top byte of the key hash; a bucket hashes its leaves, the root hashes the 256
//! buckets. Every write of the replica store puts the key's new leaf in the same engine
//! batch as its record (merkle/leaf_writes.rs), so the write path never reads the tree
//! and a crash never separates a leaf from its record; it then marks the leaf's bucket
//! dirty (merkle/dirty.rs), and a query rehashes the dirty buckets of the partitions it
//! reads first. To-do records naming a key (Garage's design, which builds before
//! 2026-12-04 wrote for every write) are still folded, by reading the key's record back
//! under its stripe lock: a writer without the record at hand may write one. A slow
//! `rebuild_partition` recomputes everything from the data to catch silent damage.

mod diff;
mod dirty;
mod fold;
mod hash;
mod layout;
mod leaf_writes;
mod model;
mod rebuild;
mod todo_seq;

pub use diff::diff_leaves;
pub use hash::{bucket_hash, bucket_of, item_hash, root_hash, BUCKETS, EMPTY_BUCKET};
#[cfg(test)]
pub(crate) use layout::leaf_key;
pub(crate) use layout::leaf_place_in;
pub use leaf_writes::LeafWrites;
pub use model::PartitionTree;
pub use todo_seq::PendingTodos;

use crate::replica_api::{Hash16, MerkleLeaf};
use crate::replica_store::{check_partition, StoreError, Stripes};
use dirty::DirtyBuckets;
use hash::decode_hash;
use kv_engine::{Db, Keyspace};
use kv_keyspace::slot::PARTITIONS;
use parking_lot::Mutex;
use std::collections::BTreeSet;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use todo_seq::TodoSeqs;

/// To-dos folded per engine batch while catching up before a query.
const FOLD_CHUNK: usize = 1024;

/// What the folder owns.
struct FoldState {
    /// Every to-do numbered below it is folded.
    cursor: u64,
    /// Partitions whose every bucket hash may lag its leaves: all of them at open, since
    /// dirty marks live in memory only (a crash may leave leaves newer than buckets).
    stale: BTreeSet<u16>,
}

/// The Merkle trees of every partition of one replica store.
pub struct Merkle {
    db: Arc<Db>,
    /// The `replicated` keyspace the leaves describe.
    data: Keyspace,
    /// The `merkle` keyspace: leaves, buckets, to-dos.
    tree: Keyspace,
    /// Numbering of to-do records.
    todo_seqs: Mutex<TodoSeqs>,
    /// One folder (or rebuild, or bucket refresh) at a time: the folding cursor and
    /// the partitions whose bucket hashes all may lag. Taken before any stripe lock.
    folding: Mutex<FoldState>,
    /// Buckets whose hashes lag their leaves (set by writers, taken by rehashes).
    dirty: DirtyBuckets,
    /// The replica store's key locks, shared with it (merkle/leaf_writes.rs).
    stripes: Arc<Stripes>,
    /// Records and to-dos found undecodable while folding or rebuilding.
    damaged: AtomicU64,
}

impl Merkle {
    /// Opens the trees kept in `tree` over the records in `data`, whose writers hold
    /// `stripes` (merkle/leaf_writes.rs).
    pub fn open(
        db: Arc<Db>,
        data: Keyspace,
        tree: Keyspace,
        stripes: Arc<Stripes>,
    ) -> Result<Merkle, StoreError> {
        // To-dos are deleted as they are folded, so the last one left (if any) gives
        // the next sequence number; reading them all is bounded by the backlog.
        let mut next = 0;
        for entry in db.iter(
            tree,
            Some(&layout::todo_key(0)),
            Some(layout::TODO_END),
            None,
        )? {
            if let Some(seq) = layout::decode_todo_seq(&entry?.key) {
                next = next.max(seq.saturating_add(1));
            }
        }
        Ok(Merkle {
            db,
            data,
            tree,
            todo_seqs: Mutex::new(TodoSeqs::starting_at(next)),
            folding: Mutex::new(FoldState {
                cursor: 0,
                stale: (0..PARTITIONS).collect(),
            }),
            dirty: DirtyBuckets::default(),
            stripes,
            damaged: AtomicU64::new(0),
        })
    }

    /// Undecodable records and to-dos met so far by folding and rebuilding (their
    /// leaves are left out, so anti-entropy sees those keys as missing here).
    pub fn damaged_records(&self) -> u64 {
        self.damaged.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Folds up to `max` of the oldest pending to-dos into leaves (their buckets are
    /// rehashed when next read); returns how many were folded (0 when none are pending).
    pub fn process_todos(&self, max: usize) -> Result<usize, StoreError> {
        let mut state = self.folding.lock();
        self.fold_locked(&mut state, max, u64::MAX)
    }

    /// Folds every to-do that existed when called. Queries call it first so that their
    /// answers reflect every write applied before them; the work is bounded by the
    /// backlog at that moment, not by writes that keep arriving meanwhile.
    pub fn catch_up(&self) -> Result<(), StoreError> {
        let mut state = self.folding.lock();
        self.catch_up_locked(&mut state)
    }

    fn catch_up_locked(&self, state: &mut FoldState) -> Result<(), StoreError> {
        let below = self.todo_seqs.lock().next();
        // The cursor at `below` means nothing is pending: no need to even look.
        while state.cursor < below && self.fold_locked(state, FOLD_CHUNK, below)? > 0 {}
        Ok(())
    }

    /// Folds, then brings the buckets of `partition` up to date and reads them.
    fn current_buckets(
        &self,
        state: &mut FoldState,
        partition: u16,
    ) -> Result<Vec<Hash16>, StoreError> {
        check_partition(partition)?;
        self.refresh_buckets(state, partition)?;
        self.stored_buckets(partition)
    }

    /// The root hash of `partition`'s tree.
    pub fn root(&self, partition: u16) -> Result<Hash16, StoreError> {
        Ok(self.roots(&[partition])?.remove(0))
    }

    /// The root hashes of several partitions, in order, after one catch-up.
    pub fn roots(&self, partitions: &[u16]) -> Result<Vec<Hash16>, StoreError> {
        let mut state = self.folding.lock();
        self.catch_up_locked(&mut state)?;
        partitions
            .iter()
            .map(|&p| Ok(root_hash(&self.current_buckets(&mut state, p)?)))
            .collect()
    }

    /// The 256 bucket hashes of `partition`.
    pub fn buckets(&self, partition: u16) -> Result<Vec<Hash16>, StoreError> {
        let mut state = self.folding.lock();
        self.catch_up_locked(&mut state)?;
        self.current_buckets(&mut state, partition)
    }

    /// The leaves of one bucket of `partition`, in key order.
    pub fn leaves(&self, partition: u16, bucket: u8) -> Result<Vec<MerkleLeaf>, StoreError> {
        check_partition(partition)?;
        self.catch_up()?;
        self.stored_leaves(&layout::leaf_prefix(partition, Some(bucket)))
    }

    fn stored_buckets(&self, partition: u16) -> Result<Vec<Hash16>, StoreError> {
        check_partition(partition)?;
        let mut buckets = vec![EMPTY_BUCKET; BUCKETS];
        for entry in self
            .db
            .iter_prefix(self.tree, &layout::bucket_prefix(partition), None)?
        {
            let entry = entry?;
            let bucket = layout::decode_bucket_key(&entry.key);
            let hash = decode_hash(&entry.value);
            match (bucket, hash) {
                (Some(b), Some(h)) => buckets[b as usize] = h,
                _ => return Err(corrupt_tree_entry(&entry.key, "bucket hash")),
            }
        }
        Ok(buckets)
    }

    fn stored_leaves(&self, prefix: &[u8]) -> Result<Vec<MerkleLeaf>, StoreError> {
        let mut leaves = Vec::new();
        for entry in self.db.iter_prefix(self.tree, prefix, None)? {
            let entry = entry?;
            match (
                layout::decode_leaf_key(&entry.key),
                decode_hash(&entry.value),
            ) {
                (Some((_, key)), Some(hash)) => leaves.push(MerkleLeaf { key, hash }),
                _ => return Err(corrupt_tree_entry(&entry.key, "Merkle leaf")),
            }
        }
        Ok(leaves)
    }
}

fn corrupt_tree_entry(key: &[u8], what: &str) -> StoreError {
    StoreError::Corrupt {
        key: format!("merkle key \"{}\"", key.escape_ascii()),
        what: format!("{what} (rebuild_partition repairs it)"),
    }
}
