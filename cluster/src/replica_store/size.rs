//! Measuring a partition for a layout plan (cluster/src/partition_size.rs): a counted
//! scan of its engine key range. The engine keeps no size estimate per key range, and a
//! partition is one contiguous range, so counting reads only that partition's blocks.

use super::records::check_partition;
use super::{ReplicaStore, StoreError};
use crate::partition_size::PartitionSize;
use kv_keyspace::data_key::partition_range;

impl ReplicaStore {
    /// The records of `partition` held here and their engine key and value bytes (all
    /// databases; tombstones and consensus records included, flushed ones too until
    /// they are purged).
    pub fn partition_size(&self, partition: u16) -> Result<PartitionSize, StoreError> {
        check_partition(partition)?;
        let (start, end) = partition_range(partition);
        let mut size = PartitionSize::default();
        for entry in self
            .db()
            .iter(self.data_keyspace(), Some(&start), end.as_deref(), None)?
        {
            let entry = entry?;
            size.keys += 1;
            size.bytes += (entry.key.len() + entry.value.len()) as u64;
        }
        Ok(size)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::replica_api::{ItemKey, WriteItem};
    use crate::{Record, Version};
    use bytes::Bytes;
    use kv_engine::Db;
    use kv_keyspace::slot::key_partition;
    use std::sync::Arc;

    #[test]
    fn a_partition_counts_its_own_records_and_bytes_only() {
        let dir = tempfile::tempdir().unwrap();
        let db = Arc::new(Db::open(dir.path(), kv_engine::Options::default()).unwrap());
        let store = ReplicaStore::open(db).unwrap();
        let version = Version {
            ts: 1 << 16,
            node: crate::NodeId(1),
        };
        let items: Vec<WriteItem> = (0..300)
            .map(|i| WriteItem {
                key: ItemKey {
                    db: i % 3,
                    key: Bytes::from(format!("key{i}")),
                },
                record: Record::string(version, Bytes::from(vec![b'v'; 100]), None),
            })
            .collect();
        store.apply(&items).unwrap();
        let p = key_partition(b"key0");
        let held = items
            .iter()
            .filter(|i| key_partition(&i.key.key) == p)
            .count() as u64;
        let size = store.partition_size(p).unwrap();
        assert_eq!(size.keys, held);
        // Each record carries its 100-byte value, plus key and record header.
        assert!(size.bytes > held * 100, "{size:?}");
        let all: u64 = (0..256)
            .map(|p| store.partition_size(p).unwrap().keys)
            .sum();
        assert_eq!(all, 300);
        assert!(store.partition_size(256).is_err());
    }
}
