//! The replica a node serves to its peers, with an observer: the server feeds MONITOR
//! with the replica operations this node serves for other coordinators, so an operator
//! can follow a key across nodes (issue 8). Only writes and reads are shown; Merkle and
//! scan requests are background traffic.

use crate::replica_api::{
    Hash16, ItemKey, MerkleLeaf, PrepareOutcome, ReplicaApi, ReplicaError, ScanPage, WriteItem,
    WriteOutcome,
};
use crate::ring::{ReplicaEvent, ReplicaObserver};
use crate::{Record, Version};
use async_trait::async_trait;
use kv_keyspace::data_key::ScanPosition;
use parking_lot::RwLock;
use std::sync::Arc;

/// A [`ReplicaApi`] that reports writes and reads to an observer, if one is set.
pub struct ObservedReplica {
    inner: Arc<dyn ReplicaApi>,
    observer: Arc<RwLock<Option<ReplicaObserver>>>,
}

impl ObservedReplica {
    /// Wraps `inner`; events go to whatever observer `observer` holds at the time.
    pub fn new(
        inner: Arc<dyn ReplicaApi>,
        observer: Arc<RwLock<Option<ReplicaObserver>>>,
    ) -> ObservedReplica {
        ObservedReplica { inner, observer }
    }

    fn tell(&self, event: ReplicaEvent<'_>) {
        if let Some(o) = self.observer.read().as_ref() {
            o(&event);
        }
    }
}

#[async_trait]
impl ReplicaApi for ObservedReplica {
    async fn write(&self, items: Vec<WriteItem>) -> Result<Vec<WriteOutcome>, ReplicaError> {
        for item in &items {
            self.tell(ReplicaEvent::Write {
                key: &item.key,
                record: &item.record,
            });
        }
        self.inner.write(items).await
    }

    async fn read(&self, keys: Vec<ItemKey>) -> Result<Vec<Option<Record>>, ReplicaError> {
        for key in &keys {
            self.tell(ReplicaEvent::Read { key });
        }
        self.inner.read(keys).await
    }

    async fn prepare(&self, key: ItemKey, ballot: Version) -> Result<PrepareOutcome, ReplicaError> {
        self.tell(ReplicaEvent::Read { key: &key });
        self.inner.prepare(key, ballot).await
    }

    async fn accept(&self, item: WriteItem) -> Result<WriteOutcome, ReplicaError> {
        self.tell(ReplicaEvent::Write {
            key: &item.key,
            record: &item.record,
        });
        self.inner.accept(item).await
    }

    async fn merkle_roots(&self, partitions: Vec<u16>) -> Result<Vec<Hash16>, ReplicaError> {
        self.inner.merkle_roots(partitions).await
    }

    async fn merkle_buckets(&self, partition: u16) -> Result<Vec<Hash16>, ReplicaError> {
        self.inner.merkle_buckets(partition).await
    }

    async fn merkle_leaves(
        &self,
        partition: u16,
        bucket: u8,
    ) -> Result<Vec<MerkleLeaf>, ReplicaError> {
        self.inner.merkle_leaves(partition, bucket).await
    }

    async fn scan(
        &self,
        partition: u16,
        db: u32,
        from: ScanPosition,
        limit: usize,
    ) -> Result<ScanPage, ReplicaError> {
        self.inner.scan(partition, db, from, limit).await
    }

    async fn scan_partition(
        &self,
        partition: u16,
        from: Option<bytes::Bytes>,
        limit: usize,
    ) -> Result<crate::replica_api::PartitionPage, ReplicaError> {
        self.inner.scan_partition(partition, from, limit).await
    }
}
