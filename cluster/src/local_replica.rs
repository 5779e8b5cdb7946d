//! This node's replica, as the coordinator and anti-entropy see it: [`ReplicaApi`] over
//! the [`ReplicaStore`] and its Merkle trees.
//!
//! Point reads and writes that cannot block run inline on the calling task, as the
//! single-node server runs them (`commands::may_block`): a hand-off to tokio's blocking
//! pool costs a futex wake, a context switch and a park on both sides, several times
//! the engine work of a memtable read or a group-committed WAL append
//! (docs/performance.md, "Where the cluster's CPU goes"). A write the engine says may
//! block (`Db::write_may_block`: fsync `always`, a memtable switch or a write stall
//! ahead), a batch of many items (a snapshot page, a repair batch: a read per item before
//! the write, milliseconds of work) and the heavier calls (Merkle queries, scans, folds,
//! rebuilds) still run on the blocking pool, so no runtime thread waits on an fsync or a
//! stall, or holds up client commands for a bulk write.

use crate::replica_api::{
    Hash16, ItemKey, MerkleLeaf, PartitionPage, PrepareOutcome, ReplicaApi, ReplicaError, ScanPage,
    WriteItem, WriteOutcome,
};
use crate::replica_store::{Commit, ReplicaStore, StoreError};
use crate::{Body, Record, Version};
use async_trait::async_trait;
use bytes::Bytes;
use kv_keyspace::data_key::ScanPosition;
use std::sync::Arc;

/// The local replica store behind the [`ReplicaApi`] trait.
#[derive(Clone)]
pub struct LocalReplica {
    store: Arc<ReplicaStore>,
}

impl LocalReplica {
    /// Serves `store`.
    pub fn new(store: Arc<ReplicaStore>) -> LocalReplica {
        LocalReplica { store }
    }

    /// The store served.
    pub fn store(&self) -> &Arc<ReplicaStore> {
        &self.store
    }

    /// Folds up to `max` pending Merkle to-dos; returns how many (0: none pending). For
    /// the background folder, which keeps the backlog that queries fold first small.
    pub async fn fold_todos(&self, max: usize) -> Result<usize, ReplicaError> {
        self.blocking(move |s| s.merkle().process_todos(max)).await
    }

    /// Recomputes one partition's tree from its data (the slow schedule that catches
    /// silent damage); returns how many leaves were wrong.
    pub async fn rebuild_partition(&self, partition: u16) -> Result<usize, ReplicaError> {
        self.blocking(move |s| s.merkle().rebuild_partition(partition))
            .await
    }

    /// `answer`, once every WAL record a deferred write left buffered reached the
    /// operating system: what a replica answers may be read by a peer, whose client must
    /// not see a record a crash of this process could still take back
    /// (crate::wal_deferral). One atomic comparison when nothing is buffered.
    fn answering<T>(&self, answer: T) -> Result<T, ReplicaError> {
        self.store.db().write_out_wal().map_err(|e| {
            ReplicaError::Failed(format!("writing the WAL out before answering: {e}"))
        })?;
        Ok(answer)
    }

    async fn blocking<T, F>(&self, work: F) -> Result<T, ReplicaError>
    where
        T: Send + 'static,
        F: FnOnce(&ReplicaStore) -> Result<T, StoreError> + Send + 'static,
    {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || work(&store))
            .await
            .map_err(|e| ReplicaError::Failed(format!("replica store task failed: {e}")))?
            .map_err(ReplicaError::from)
    }
}

/// Bytes per item besides key and payload: the record header, the engine key prefix and
/// the Merkle leaf of the same batch (a generous estimate is enough here).
const ITEM_OVERHEAD: usize = 96;

/// Most items a write applies inline: coordinators' writes to a peer come batched as
/// many as queued while the previous RPC ran (tens under 50 clients); bigger batches
/// are snapshot pages (2048) and repairs, where a hand-off costs little per item and
/// their reads before writing would hold a runtime thread for milliseconds.
const INLINE_WRITE_ITEMS: usize = 256;

/// About the bytes `items` add to the WAL, for `write_may_block`.
fn write_bytes(items: &[WriteItem]) -> usize {
    items
        .iter()
        .map(|i| {
            let payload = match &i.record.body {
                Body::Value { payload, .. } => payload.len(),
                Body::Tombstone => 0,
                Body::Siblings(_) | Body::SiblingsWrite(_) => i.record.encode().len(),
            };
            2 * i.key.key.len() + payload + ITEM_OVERHEAD
        })
        .sum()
}

#[async_trait]
impl ReplicaApi for LocalReplica {
    async fn write(&self, items: Vec<WriteItem>) -> Result<Vec<WriteOutcome>, ReplicaError> {
        if items.len() > INLINE_WRITE_ITEMS || self.store.db().write_may_block(write_bytes(&items))
        {
            return self.blocking(move |s| s.apply(&items)).await;
        }
        let commit = match crate::wal_deferral::active() {
            true => Commit::Deferred,
            false => Commit::Now,
        };
        self.store
            .apply_with(&items, commit)
            .map_err(ReplicaError::from)
    }

    /// Inline: a point read does what a single-node GET does on a runtime thread.
    async fn read(&self, keys: Vec<ItemKey>) -> Result<Vec<Option<Record>>, ReplicaError> {
        let records = keys
            .iter()
            .map(|k| self.store.get(k))
            .collect::<Result<_, _>>()?;
        self.answering(records)
    }

    /// On the blocking pool: the promise is fsynced before the answer.
    async fn prepare(&self, key: ItemKey, ballot: Version) -> Result<PrepareOutcome, ReplicaError> {
        self.blocking(move |s| s.prepare(&key, ballot)).await
    }

    /// On the blocking pool: the accepted record is fsynced before the answer.
    async fn accept(&self, item: WriteItem) -> Result<WriteOutcome, ReplicaError> {
        self.blocking(move |s| s.accept(&item)).await
    }

    async fn merkle_roots(&self, partitions: Vec<u16>) -> Result<Vec<Hash16>, ReplicaError> {
        self.blocking(move |s| s.merkle().roots(&partitions)).await
    }

    async fn merkle_buckets(&self, partition: u16) -> Result<Vec<Hash16>, ReplicaError> {
        self.blocking(move |s| s.merkle().buckets(partition)).await
    }

    async fn merkle_leaves(
        &self,
        partition: u16,
        bucket: u8,
    ) -> Result<Vec<MerkleLeaf>, ReplicaError> {
        self.blocking(move |s| s.merkle().leaves(partition, bucket))
            .await
    }

    async fn scan(
        &self,
        partition: u16,
        db: u32,
        from: ScanPosition,
        limit: usize,
    ) -> Result<ScanPage, ReplicaError> {
        let page = self
            .blocking(move |s| s.scan(partition, db, from, limit))
            .await?;
        self.answering(page)
    }

    async fn scan_partition(
        &self,
        partition: u16,
        from: Option<Bytes>,
        limit: usize,
    ) -> Result<PartitionPage, ReplicaError> {
        let page = self
            .blocking(move |s| s.scan_partition(partition, from.as_deref(), limit))
            .await?;
        self.answering(page)
    }
}
