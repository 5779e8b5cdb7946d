//! Deleting a partition this node no longer holds, once a layout change ended and every
//! node acknowledged it (docs/cluster.md, "Changing the layout"). Each key goes the way a
//! tombstone purge goes: its record and its Merkle leaf deleted in the same batch.

use super::{ReplicaStore, StoreError};
use crate::replica_api::ItemKey;
use kv_engine::WriteBatch;

/// What one step of deleting a partition did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropStep {
    /// Deleted this many records; more may be left.
    Deleted(usize),
    /// Nothing of the partition is left.
    Done,
    /// Deleted nothing: the caller's check said the partition may be held again.
    Stopped,
}

impl ReplicaStore {
    /// Deletes up to `limit` records of `partition` (all databases). A caller deletes in
    /// steps until `Done`, so that one huge partition does not make one huge batch.
    /// Records that cannot be decoded are skipped (left for kvtool).
    ///
    /// `still_dropped` is asked under the stripe locks of the step's keys, right before
    /// its batch is written; when it says no, nothing is deleted. A layout that gives the
    /// partition back to this node can arrive while a clean-up runs, and a replica
    /// serves a write tagged with a layout newer than its own before installing it: a
    /// write of that layout that lands on one of these keys holds its stripe, so it
    /// either comes after this step (and is kept) or its layout is known by the time
    /// the check runs (and the step deletes nothing). Without the check, a record this
    /// node was counted on as a replica (an acknowledged write, a streamed copy) could
    /// be deleted.
    pub fn drop_partition(
        &self,
        partition: u16,
        limit: usize,
        still_dropped: &dyn Fn() -> bool,
    ) -> Result<DropStep, StoreError> {
        let keys: Vec<ItemKey> = self
            .partition_records(partition)?
            .filter_map(Result::ok)
            .map(|(key, _)| key)
            .take(limit)
            .collect();
        if keys.is_empty() {
            return Ok(DropStep::Done);
        }
        let _guards = self.stripes.lock(keys.iter());
        if !still_dropped() {
            return Ok(DropStep::Stopped);
        }
        let mut batch = WriteBatch::new();
        let mut leaves = self.merkle.begin_leaves();
        for key in &keys {
            self.delete_keyed(&mut batch, &mut leaves, key);
        }
        self.db.write(batch)?;
        Ok(DropStep::Deleted(keys.len()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::replica_api::WriteItem;
    use crate::{Record, Version};
    use bytes::Bytes;
    use kv_engine::Db;
    use kv_keyspace::slot::key_partition;
    use std::sync::Arc;

    #[test]
    fn a_dropped_partition_is_empty_and_the_others_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let db = Arc::new(Db::open(dir.path(), kv_engine::Options::default()).unwrap());
        let store = ReplicaStore::open(db).unwrap();
        let items: Vec<WriteItem> = (0..200)
            .map(|i| WriteItem {
                key: ItemKey {
                    db: 0,
                    key: Bytes::from(format!("key{i}")),
                },
                record: Record::tombstone(Version {
                    ts: 1 << 16,
                    node: crate::NodeId(1),
                }),
            })
            .collect();
        store.apply(&items).unwrap();
        let gone = key_partition(b"key0");
        let held = |p: u16| store.partition_records(p).unwrap().count();
        let before = held(gone);
        assert!(before > 0);
        let others: usize = (0..256).filter(|&p| p != gone).map(held).sum();
        let mut dropped = 0;
        while let DropStep::Deleted(n) = store.drop_partition(gone, 1, &|| true).unwrap() {
            dropped += n;
        }
        assert_eq!(dropped, before);
        assert_eq!(held(gone), 0);
        let after: usize = (0..256).filter(|&p| p != gone).map(held).sum();
        assert_eq!(after, others);
    }

    /// A step whose check says the partition may be held again deletes nothing: not the
    /// record, not its leaf.
    #[test]
    fn a_step_stopped_by_its_check_deletes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let db = Arc::new(Db::open(dir.path(), kv_engine::Options::default()).unwrap());
        let store = ReplicaStore::open(db).unwrap();
        let key = ItemKey {
            db: 0,
            key: Bytes::from_static(b"kept"),
        };
        let version = |ts| Version {
            ts,
            node: crate::NodeId(1),
        };
        let write = |ts| WriteItem {
            key: key.clone(),
            record: Record::tombstone(version(ts)),
        };
        store.apply(&[write(1 << 16)]).unwrap();
        let partition = key_partition(b"kept");
        let root = store.merkle().root(partition).unwrap();
        let step = store.drop_partition(partition, 10, &|| false).unwrap();
        assert_eq!(step, DropStep::Stopped);
        assert_eq!(store.get(&key).unwrap(), Some(write(1 << 16).record));
        assert_eq!(store.merkle().root(partition).unwrap(), root);
        let step = store.drop_partition(partition, 10, &|| true).unwrap();
        assert_eq!(step, DropStep::Deleted(1));
    }
}
