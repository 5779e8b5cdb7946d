//! Folding to-do records into leaves, and bringing the bucket hashes of changed leaves
//! up to date when they are asked for.

use super::hash::{bucket_hash, decode_hash, item_hash, EMPTY_BUCKET};
use super::{layout, FoldState, Merkle};
use crate::replica_api::{Hash16, ItemKey};
use crate::replica_store::{read_record, StoreError};
use kv_engine::WriteBatch;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::Ordering;

/// Leaf key -> new leaf hash (`None`: the leaf goes away).
pub(super) type LeafChanges = BTreeMap<Vec<u8>, Option<Hash16>>;

impl Merkle {
    /// Folds up to `max` to-dos numbered from the cursor to below `below`, oldest first,
    /// into leaves, in one engine batch that also deletes them (so a crash folds them
    /// again, to the same result), marks their buckets dirty, and moves the cursor on,
    /// never past the watermark. Each named key's leaf is recomputed from its record
    /// under the key's stripe lock (merkle/leaf_writes.rs). The caller holds `folding`
    /// (which owns `state`).
    pub(super) fn fold_locked(
        &self,
        state: &mut FoldState,
        max: usize,
        below: u64,
    ) -> Result<usize, StoreError> {
        let cursor = &mut state.cursor;
        if max == 0 {
            return Ok(0);
        }
        // Read before iterating: every to-do below it is committed, so visible below.
        let watermark = self.todo_seqs.lock().watermark();
        let (start, end) = (layout::todo_key(*cursor), layout::todo_key(below));
        let mut todo_keys = Vec::new();
        // The leaf a to-do may carry (written by builds before 2026-12-04) is not
        // trusted: a leaf written beside its record since may be newer. Every key is
        // read back instead.
        let mut keys: BTreeSet<ItemKey> = BTreeSet::new();
        for entry in self
            .db
            .iter(self.tree, Some(&start), Some(&end), None)?
            .take(max)
        {
            let entry = entry?;
            match layout::decode_todo(&entry.value) {
                Some(todo) => {
                    keys.insert(todo.key);
                }
                // Dropped: the slow rebuild recomputes whatever it named.
                None => {
                    self.damaged.fetch_add(1, Ordering::Relaxed);
                }
            }
            todo_keys.push(entry.key);
        }
        // Where the scan stopped: after the last to-do taken if `max` cut it short,
        // else at `below`.
        let reached = match todo_keys.last() {
            Some(last) if todo_keys.len() == max => {
                layout::decode_todo_seq(last).map_or(*cursor, |s| s.saturating_add(1))
            }
            _ => below,
        };
        let advance = |cursor: &mut u64| *cursor = (*cursor).max(reached.min(watermark));
        if todo_keys.is_empty() {
            advance(cursor);
            return Ok(0);
        }
        let guards = self.stripes.lock(keys.iter());
        let mut batch = WriteBatch::new();
        let places = self.correct_leaves(&mut batch, keys.iter())?;
        for key in &todo_keys {
            batch.delete(self.tree, key);
        }
        self.db.write(batch)?;
        drop(guards);
        advance(cursor);
        self.mark_dirty(&places);
        Ok(todo_keys.len())
    }

    /// Brings `partition`'s stored bucket hashes up to date with its leaves: all of them
    /// if the partition is stale (since open, as dirty marks are not kept across a
    /// restart), else its dirty buckets, each recomputed from its leaves (which fixes a
    /// damaged leaf met on the way). Buckets are hashed here and not by writers,
    /// because a bucket hash covers all its leaves in order: under writes a bucket is
    /// rehashed once per query instead of once per write.
    pub(super) fn refresh_buckets(
        &self,
        state: &mut FoldState,
        partition: u16,
    ) -> Result<(), StoreError> {
        if state.stale.contains(&partition) {
            return self.rehash_all_buckets(state, partition);
        }
        // Taken before the leaves are read (merkle/dirty.rs), put back if this fails.
        let dirty = self.dirty.take(partition);
        if dirty.is_empty() {
            return Ok(());
        }
        let refreshed = (|| {
            let mut batch = WriteBatch::new();
            let mut changes = LeafChanges::new();
            for &bucket in &dirty {
                let hash = self.bucket_with(partition, bucket, &mut changes)?;
                self.put_bucket(&mut batch, partition, bucket, hash);
            }
            self.write_leaves(&mut batch, &changes);
            self.db.write(batch)?;
            Ok(())
        })();
        if refreshed.is_err() {
            self.dirty.restore(partition, &dirty);
        }
        refreshed
    }

    /// Recomputes every bucket hash of `partition` from its leaves; the partition is
    /// then no longer stale. The caller holds `folding` (which owns `state`).
    pub(super) fn rehash_all_buckets(
        &self,
        state: &mut FoldState,
        partition: u16,
    ) -> Result<(), StoreError> {
        // Every bucket is rehashed, so the marks taken here are covered; taken first so
        // that a leaf written during the rehash leaves its mark for the next one.
        let dirty = self.dirty.take(partition);
        match self.rehash_buckets(partition) {
            Ok(()) => {
                state.stale.remove(&partition);
                Ok(())
            }
            Err(e) => {
                self.dirty.restore(partition, &dirty);
                Err(e)
            }
        }
    }

    /// The leaf `key` should have: the hash of its record; none when it has no record
    /// or one that does not decode (counted as damage: reads report it by name).
    pub(super) fn expected_leaf(&self, key: &ItemKey) -> Result<Option<Hash16>, StoreError> {
        match read_record(&self.db, self.data, key) {
            Ok(record) => Ok(record.map(|r| item_hash(key, &r))),
            Err(StoreError::Corrupt { .. }) => {
                self.damaged.fetch_add(1, Ordering::Relaxed);
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    pub(super) fn write_leaves(&self, batch: &mut WriteBatch, changes: &LeafChanges) {
        for (leaf, hash) in changes {
            match hash {
                Some(h) => batch.put(self.tree, leaf, h),
                None => batch.delete(self.tree, leaf),
            };
        }
    }

    /// The hash of a bucket as stored, with `changes` (not yet written) laid over it.
    /// A stored leaf that does not decode is recomputed from the data on the way, under
    /// its key's stripe lock and written at once (`fix_leaves`), so damage never stalls
    /// folding; one whose key does not decode either is deleted with `changes`.
    fn bucket_with(
        &self,
        partition: u16,
        bucket: u8,
        changes: &mut LeafChanges,
    ) -> Result<Hash16, StoreError> {
        let prefix = layout::leaf_prefix(partition, Some(bucket));
        let mut leaves: BTreeMap<Vec<u8>, Hash16> = BTreeMap::new();
        for entry in self.db.iter_prefix(self.tree, &prefix, None)? {
            let entry = entry?;
            match decode_hash(&entry.value) {
                Some(hash) => {
                    leaves.insert(entry.key.to_vec(), hash);
                }
                None if !changes.contains_key(&entry.key[..]) => {
                    self.damaged.fetch_add(1, Ordering::Relaxed);
                    match layout::decode_leaf_key(&entry.key) {
                        // Only if the key still names this very leaf.
                        Some((_, key)) if layout::leaf_key(&key) == entry.key[..] => {
                            self.fix_leaves(std::slice::from_ref(&key))?;
                            if let Some(hash) = self.db.get(self.tree, &entry.key)? {
                                if let Some(h) = decode_hash(&hash.value) {
                                    leaves.insert(entry.key.to_vec(), h);
                                }
                            }
                        }
                        _ => {
                            changes.insert(entry.key.to_vec(), None);
                        }
                    }
                }
                None => {}
            }
        }
        let overlay = changes
            .range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix));
        for (leaf, hash) in overlay {
            match hash {
                Some(h) => leaves.insert(leaf.clone(), *h),
                None => leaves.remove(leaf),
            };
        }
        Ok(bucket_hash(leaves.values()))
    }

    /// Stores a bucket hash (an empty bucket has no record).
    pub(super) fn put_bucket(
        &self,
        batch: &mut WriteBatch,
        partition: u16,
        bucket: u8,
        hash: Hash16,
    ) {
        let key = layout::bucket_key(partition, bucket);
        if hash == EMPTY_BUCKET {
            batch.delete(self.tree, &key);
        } else {
            batch.put(self.tree, &key, &hash);
        }
    }
}
