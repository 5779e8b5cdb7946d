//! The slow "rebuild from data" pass that catches silent damage: every record must have
//! the leaf its hash says, every leaf a record, every bucket the hash of its leaves.

use super::hash::{bucket_hash, decode_hash, BUCKETS, EMPTY_BUCKET};
use super::{layout, Merkle};
use crate::replica_api::{Hash16, ItemKey};
use crate::replica_store::{check_partition, decode_engine_key, read_record, StoreError};
use kv_engine::WriteBatch;
use kv_keyspace::data_key::partition_range;

/// Repairs written per engine batch, so memory stays bounded on a big partition.
const REBUILD_CHUNK: usize = 1024;

impl Merkle {
    /// Recomputes `partition`'s tree from its data, fixes what differs and returns how
    /// many leaves were wrong (wrong hash, missing, or without a record). Pending
    /// to-dos are folded first, and a leaf found wrong is checked again and fixed under
    /// its key's stripe lock, so a write racing with the pass is neither undone nor
    /// counted (merkle/leaf_writes.rs).
    pub fn rebuild_partition(&self, partition: u16) -> Result<usize, StoreError> {
        check_partition(partition)?;
        let mut state = self.folding.lock();
        self.catch_up_locked(&mut state)?;
        let wrong = self.check_records(partition)? + self.check_leaves(partition)?;
        self.rehash_all_buckets(&mut state, partition)?;
        Ok(wrong)
    }

    /// Every record has the leaf it should.
    fn check_records(&self, partition: u16) -> Result<usize, StoreError> {
        let (start, end) = partition_range(partition);
        let mut wrong = 0;
        let mut suspects = Vec::new();
        for entry in self
            .db
            .iter(self.data, Some(&start), end.as_deref(), None)?
        {
            let entry = entry?;
            let Ok((key, _)) = decode_engine_key(&entry.key) else {
                // A key that is not a data key has no leaf to check.
                continue;
            };
            if self.wrong_leaf(&key)?.is_some() {
                suspects.push(key);
            }
            if suspects.len() >= REBUILD_CHUNK {
                wrong += self.fix_suspects(&mut suspects)?;
            }
        }
        wrong += self.fix_suspects(&mut suspects)?;
        Ok(wrong)
    }

    /// Every leaf has a record (one that decodes).
    fn check_leaves(&self, partition: u16) -> Result<usize, StoreError> {
        let mut wrong = 0;
        let mut suspects = Vec::new();
        let mut undecodable = super::fold::LeafChanges::new();
        let prefix = layout::leaf_prefix(partition, None);
        for entry in self.db.iter_prefix(self.tree, &prefix, None)? {
            let entry = entry?;
            match layout::decode_leaf_key(&entry.key) {
                // No writer writes a leaf under a key that does not decode.
                None => {
                    wrong += 1;
                    undecodable.insert(entry.key.to_vec(), None);
                }
                Some((_, key)) => match read_record(&self.db, self.data, &key) {
                    Ok(Some(_)) => {}
                    Ok(None) | Err(StoreError::Corrupt { .. }) => suspects.push(key),
                    Err(e) => return Err(e),
                },
            }
            if suspects.len() >= REBUILD_CHUNK {
                wrong += self.fix_suspects(&mut suspects)?;
            }
        }
        wrong += self.fix_suspects(&mut suspects)?;
        self.write_changes(&mut undecodable)?;
        Ok(wrong)
    }

    /// Checks and fixes the leaves of `suspects` under their stripe locks; returns how
    /// many were really wrong, and empties `suspects`.
    fn fix_suspects(&self, suspects: &mut Vec<ItemKey>) -> Result<usize, StoreError> {
        let fixed = self.fix_leaves(suspects)?;
        suspects.clear();
        Ok(fixed)
    }

    fn write_changes(&self, changes: &mut super::fold::LeafChanges) -> Result<(), StoreError> {
        if changes.is_empty() {
            return Ok(());
        }
        let mut batch = WriteBatch::new();
        self.write_leaves(&mut batch, changes);
        self.db.write(batch)?;
        changes.clear();
        Ok(())
    }

    /// Every bucket hash is the hash of its leaves; only those that differ are written.
    /// Leaf keys are in bucket order, so one bucket's leaves are in memory at a time.
    /// The caller holds `folding`.
    pub(super) fn rehash_buckets(&self, partition: u16) -> Result<(), StoreError> {
        let mut batch = WriteBatch::new();
        // Damaged bucket records are replaced below or, if not even their key decodes,
        // deleted here.
        for entry in self
            .db
            .iter_prefix(self.tree, &layout::bucket_prefix(partition), None)?
        {
            let entry = entry?;
            if layout::decode_bucket_key(&entry.key).is_none() {
                batch.delete(self.tree, &entry.key);
            }
        }
        let mut hashes = vec![EMPTY_BUCKET; BUCKETS];
        let mut current: Option<(u8, Vec<Hash16>)> = None;
        let prefix = layout::leaf_prefix(partition, None);
        for entry in self.db.iter_prefix(self.tree, &prefix, None)? {
            let entry = entry?;
            let bucket = layout::decode_leaf_key(&entry.key).map(|(b, _)| b);
            let (Some(bucket), Some(hash)) = (bucket, decode_hash(&entry.value)) else {
                continue;
            };
            match &mut current {
                Some((b, leaves)) if *b == bucket => leaves.push(hash),
                _ => {
                    if let Some((b, leaves)) = current.take() {
                        hashes[b as usize] = bucket_hash(&leaves);
                    }
                    current = Some((bucket, vec![hash]));
                }
            }
        }
        if let Some((b, leaves)) = current {
            hashes[b as usize] = bucket_hash(&leaves);
        }
        let stored = self.stored_buckets(partition).ok();
        for (bucket, hash) in hashes.into_iter().enumerate() {
            if stored.as_ref().is_none_or(|s| s[bucket] != hash) {
                self.put_bucket(&mut batch, partition, bucket as u8, hash);
            }
        }
        self.db.write(batch)?;
        Ok(())
    }
}
