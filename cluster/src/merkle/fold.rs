//! Folding to-do records into leaves, and bringing the bucket hashes of changed leaves
//! up to date when they are asked for.

use super::hash::{bucket_hash, decode_hash, item_hash, EMPTY_BUCKET};
use super::{layout, FoldState, Merkle};
use crate::replica_api::{Hash16, ItemKey};
use crate::replica_store::{read_record, StoreError};
use kv_engine::WriteBatch;
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

/// Leaf key -> new leaf hash (`None`: the leaf goes away).
pub(super) type LeafChanges = BTreeMap<Vec<u8>, Option<Hash16>>;

impl Merkle {
    /// Folds up to `max` to-dos numbered from the cursor to below `below`, oldest first,
    /// into leaves, in one engine batch that also deletes them (so a crash folds them
    /// again, to the same result), marks their buckets dirty, and moves the cursor on,
    /// never past the watermark. The caller holds `folding` (which owns `state`).
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
        // Key -> the leaf its to-dos carry; `None` once any of them carries none (then
        // the record is read back). The last carried leaf wins: a writer that carries
        // one holds the key's stripe from numbering to commit, so a key's to-dos are
        // numbered in commit order and the last describes the data.
        let mut keys: BTreeMap<ItemKey, Option<Hash16>> = BTreeMap::new();
        for entry in self
            .db
            .iter(self.tree, Some(&start), Some(&end), None)?
            .take(max)
        {
            let entry = entry?;
            match layout::decode_todo(&entry.value) {
                Some(todo) => {
                    keys.entry(todo.key)
                        .and_modify(|leaf| {
                            if leaf.is_some() {
                                *leaf = todo.leaf;
                            }
                        })
                        .or_insert(todo.leaf);
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
        let mut changes = LeafChanges::new();
        for (key, carried) in &keys {
            let leaf = match carried {
                Some(hash) => Some(*hash),
                None => self.expected_leaf(key)?,
            };
            changes.insert(layout::leaf_key(key), leaf);
        }
        let mut batch = WriteBatch::new();
        self.write_leaves(&mut batch, &changes);
        for key in &todo_keys {
            batch.delete(self.tree, key);
        }
        self.db.write(batch)?;
        advance(cursor);
        state.dirty.extend(keys.keys().map(layout::leaf_place));
        Ok(todo_keys.len())
    }

    /// Brings `partition`'s stored bucket hashes up to date with its leaves: all of them
    /// if the partition is stale (since open, as dirty marks are not kept across a
    /// restart), else its dirty buckets, each recomputed from its leaves (which fixes a
    /// damaged leaf met on the way). Buckets are hashed here and not while folding,
    /// because a bucket hash covers all its leaves in order: under writes a bucket is
    /// rehashed once per query instead of once per fold.
    pub(super) fn refresh_buckets(
        &self,
        state: &mut FoldState,
        partition: u16,
    ) -> Result<(), StoreError> {
        if state.stale.contains(&partition) {
            self.rehash_buckets(partition)?;
            state.mark_clean(partition);
            return Ok(());
        }
        let dirty: Vec<u8> = state
            .dirty
            .range((partition, 0)..=(partition, u8::MAX))
            .map(|&(_, bucket)| bucket)
            .collect();
        if dirty.is_empty() {
            return Ok(());
        }
        let mut batch = WriteBatch::new();
        let mut changes = LeafChanges::new();
        for &bucket in &dirty {
            let hash = self.bucket_with(partition, bucket, &mut changes)?;
            self.put_bucket(&mut batch, partition, bucket, hash);
        }
        self.write_leaves(&mut batch, &changes);
        self.db.write(batch)?;
        for bucket in dirty {
            state.dirty.remove(&(partition, bucket));
        }
        Ok(())
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
    /// A stored leaf that does not decode is recomputed from the data on the way (and
    /// the fix added to `changes`), so damage never stalls folding.
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
                    let fixed = match layout::decode_leaf_key(&entry.key) {
                        // Only if the key still names this very leaf.
                        Some((_, key)) if layout::leaf_key(&key) == entry.key[..] => {
                            self.expected_leaf(&key)?
                        }
                        _ => None,
                    };
                    changes.insert(entry.key.to_vec(), fixed);
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
