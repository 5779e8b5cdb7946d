//! Deleting a partition this node no longer holds, once a layout change ended and every
//! node acknowledged it (docs/cluster.md, "Changing the layout"). Each key goes the way a
//! tombstone purge goes: its record and its Merkle leaf deleted in the same batch.

use super::{ReplicaStore, StoreError};
use crate::replica_api::ItemKey;
use kv_engine::WriteBatch;

impl ReplicaStore {
    /// Deletes up to `limit` records of `partition` (all databases); returns how many. A
    /// caller deletes in steps until 0, so that one huge partition does not make one
    /// huge batch. Records that cannot be decoded are skipped (left for kvtool).
    pub fn drop_partition(&self, partition: u16, limit: usize) -> Result<usize, StoreError> {
        let keys: Vec<ItemKey> = self
            .partition_records(partition)?
            .filter_map(Result::ok)
            .map(|(key, _)| key)
            .take(limit)
            .collect();
        if keys.is_empty() {
            return Ok(0);
        }
        let _guards = self.stripes.lock(keys.iter());
        let mut batch = WriteBatch::new();
        let mut leaves = self.merkle.begin_leaves();
        for key in &keys {
            self.delete_keyed(&mut batch, &mut leaves, key);
        }
        self.db.write(batch)?;
        Ok(keys.len())
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
        loop {
            let n = store.drop_partition(gone, 1).unwrap();
            if n == 0 {
                break;
            }
            dropped += n;
        }
        assert_eq!(dropped, before);
        assert_eq!(held(gone), 0);
        let after: usize = (0..256).filter(|&p| p != gone).map(held).sum();
        assert_eq!(after, others);
    }
}
