//! A real replica (LocalReplica over a store) whose calls a test sees first: to count
//! them, or to script what another proposer does just before one arrives.

use async_trait::async_trait;
use kv_cluster::local_replica::LocalReplica;
use kv_cluster::replica_api::{
    Hash16, ItemKey, MerkleLeaf, PrepareOutcome, ReplicaApi, ReplicaError, ScanPage, WriteItem,
    WriteOutcome,
};
use kv_cluster::{Record, Version};
use kv_keyspace::data_key::ScanPosition;

/// What a test does before a call reaches its [`Watched`] replica (by default nothing).
/// An error from a `before_` hook is the replica's answer instead of the call's.
#[async_trait]
pub trait Watch: Send + Sync + 'static {
    fn on_write(&self, _items: &[WriteItem]) {}
    fn on_read(&self, _keys: &[ItemKey]) {}
    async fn before_prepare(
        &self,
        _replica: &LocalReplica,
        _key: &ItemKey,
    ) -> Result<(), ReplicaError> {
        Ok(())
    }
    async fn before_accept(
        &self,
        _replica: &LocalReplica,
        _item: &WriteItem,
    ) -> Result<(), ReplicaError> {
        Ok(())
    }
}

/// `replica`, with `watch` seeing each call first.
pub struct Watched<W> {
    pub replica: LocalReplica,
    pub watch: W,
}

#[async_trait]
impl<W: Watch> ReplicaApi for Watched<W> {
    async fn write(&self, items: Vec<WriteItem>) -> Result<Vec<WriteOutcome>, ReplicaError> {
        self.watch.on_write(&items);
        self.replica.write(items).await
    }
    async fn read(&self, keys: Vec<ItemKey>) -> Result<Vec<Option<Record>>, ReplicaError> {
        self.watch.on_read(&keys);
        self.replica.read(keys).await
    }
    async fn prepare(&self, key: ItemKey, ballot: Version) -> Result<PrepareOutcome, ReplicaError> {
        self.watch.before_prepare(&self.replica, &key).await?;
        self.replica.prepare(key, ballot).await
    }
    async fn accept(&self, item: WriteItem) -> Result<WriteOutcome, ReplicaError> {
        self.watch.before_accept(&self.replica, &item).await?;
        self.replica.accept(item).await
    }
    async fn merkle_roots(&self, partitions: Vec<u16>) -> Result<Vec<Hash16>, ReplicaError> {
        self.replica.merkle_roots(partitions).await
    }
    async fn merkle_buckets(&self, partition: u16) -> Result<Vec<Hash16>, ReplicaError> {
        self.replica.merkle_buckets(partition).await
    }
    async fn merkle_leaves(
        &self,
        partition: u16,
        bucket: u8,
    ) -> Result<Vec<MerkleLeaf>, ReplicaError> {
        self.replica.merkle_leaves(partition, bucket).await
    }
    async fn scan(
        &self,
        partition: u16,
        db: u32,
        from: ScanPosition,
        limit: usize,
    ) -> Result<ScanPage, ReplicaError> {
        self.replica.scan(partition, db, from, limit).await
    }
}
