//! Folding to-do records into leaves and bucket hashes.

use super::hash::{bucket_hash, decode_hash, item_hash, xor, EMPTY_BUCKET};
use super::{layout, Merkle};
use crate::replica_api::{Hash16, ItemKey};
use crate::replica_store::{read_record, StoreError};
use kv_engine::WriteBatch;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::Ordering;

/// Leaf key -> new leaf hash (`None`: the leaf goes away).
pub(super) type LeafChanges = BTreeMap<Vec<u8>, Option<Hash16>>;

impl Merkle {
    /// Folds up to `max` to-dos numbered from `cursor` to below `below`, oldest first,
    /// in one engine batch that also deletes them (so a crash folds them again, to the
    /// same result), and moves the cursor on, never past the watermark. The caller
    /// holds `folding` (which owns `cursor`).
    pub(super) fn fold_locked(
        &self,
        cursor: &mut u64,
        max: usize,
        below: u64,
    ) -> Result<usize, StoreError> {
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
        self.write_leaves_and_buckets(&mut batch, &mut changes)?;
        for key in &todo_keys {
            batch.delete(self.tree, key);
        }
        self.db.write(batch)?;
        advance(cursor);
        Ok(todo_keys.len())
    }

    /// Adds `changes` and the new hash of every bucket they touch to `batch`, so that
    /// every stored bucket stays the XOR of its stored leaves. A bucket is updated from
    /// its old and new leaves alone; one whose stored hash or old leaf does not decode
    /// is recomputed from all its leaves (which may add fixes to `changes`).
    pub(super) fn write_leaves_and_buckets(
        &self,
        batch: &mut WriteBatch,
        changes: &mut LeafChanges,
    ) -> Result<(), StoreError> {
        let buckets: BTreeSet<(u16, u8)> = changes
            .keys()
            .filter_map(|leaf| layout::decode_leaf_place(leaf))
            .collect();
        for (partition, bucket) in buckets {
            let hash = match self.bucket_updated(partition, bucket, changes)? {
                Some(hash) => hash,
                None => self.bucket_with(partition, bucket, changes)?,
            };
            self.put_bucket(batch, partition, bucket, hash);
        }
        self.write_leaves(batch, changes);
        Ok(())
    }

    /// The stored hash of a bucket with each changed leaf's old hash taken out and its
    /// new one put in; `None` if the stored bucket hash or an old leaf does not decode
    /// (counted as damage).
    fn bucket_updated(
        &self,
        partition: u16,
        bucket: u8,
        changes: &LeafChanges,
    ) -> Result<Option<Hash16>, StoreError> {
        let mut hash = match self
            .db
            .get(self.tree, &layout::bucket_key(partition, bucket))?
        {
            None => EMPTY_BUCKET,
            Some(stored) => match decode_hash(&stored.value) {
                Some(hash) => hash,
                None => return Ok(self.damage_met()),
            },
        };
        let prefix = layout::leaf_prefix(partition, Some(bucket));
        let touched = changes
            .range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix));
        for (leaf, new) in touched {
            if let Some(stored) = self.db.get(self.tree, leaf)? {
                match decode_hash(&stored.value) {
                    Some(old) => hash = xor(&hash, &old),
                    None => return Ok(self.damage_met()),
                }
            }
            if let Some(new) = new {
                hash = xor(&hash, new);
            }
        }
        Ok(Some(hash))
    }

    /// Counts damage that sends a bucket to be recomputed from all its leaves.
    fn damage_met(&self) -> Option<Hash16> {
        self.damaged.fetch_add(1, Ordering::Relaxed);
        None
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

    /// The hash of a bucket from all its stored leaves, with `changes` (not yet written)
    /// laid over them.
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
