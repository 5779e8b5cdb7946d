//! The simulated network: one [`ReplicaApi`] per (sender incarnation, receiver) that
//! carries each call as a message through the simulator. A message waits a seeded
//! delay, may be lost before it is applied (the caller's deadline then fires, as a gRPC
//! deadline would), is refused when the receiver is down, is applied to the receiver's
//! real [`ReplicaStore`] on arrival, and its reply waits another delay and may be lost
//! after the apply (the caller sees a timeout although the write landed). A link that
//! a partition cuts loses everything. A sender that crashed sends nothing more, and
//! the replies to its earlier messages are lost.
//!
//! A write round's requests to a peer take the path they take on a real node: onto the
//! link's batcher (rpc/batcher.rs, with a real peer client's bounds) with a callback,
//! sent by a flusher task that carries each batch as one message and answers every
//! callback, so concurrent rounds' records share messages (and replica batches) here as
//! they do on the bus. Reads of a peer are batched the same way, their callers waiting
//! (as `PeerClient::read` does).

use super::world::World;
use super::Sabotage;
use crate::replica_api::{
    Hash16, ItemKey, MerkleLeaf, PrepareOutcome, QueuedWrites, ReplicaApi, ReplicaError, Replicas,
    ScanPage, WriteDone, WriteItem, WriteOutcome,
};
use crate::replica_store::{ReplicaStore, StoreError};
use crate::rpc::batcher::{spawn_flusher, Batcher};
use crate::rpc::ClientConfig;
use crate::{NodeId, Record, Version};
use async_trait::async_trait;
use kv_engine::WriteBatch;
use kv_keyspace::data_key::{data_key, ScanPosition};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// The deadline a peer client puts on one call (the real one is the request timeout).
pub(crate) const RPC_DEADLINE: Duration = Duration::from_secs(2);

/// Calls from one incarnation of `from` to `to`. Clones share the link's batcher.
#[derive(Clone)]
pub(crate) struct SimLink {
    world: Arc<World>,
    from: NodeId,
    incarnation: u64,
    to: NodeId,
    sabotage: Sabotage,
    writes: Arc<Batcher<WriteItem, WriteOutcome>>,
    reads: Arc<Batcher<ItemKey, Option<Record>>>,
}

impl SimLink {
    /// One message carrying a read of `keys`.
    async fn read_now(&self, keys: Vec<ItemKey>) -> Result<Vec<Option<Record>>, ReplicaError> {
        self.call("read", move |s| keys.iter().map(|k| s.get(k)).collect())
            .await
    }

    fn new(
        world: Arc<World>,
        from: NodeId,
        incarnation: u64,
        to: NodeId,
        sabotage: Sabotage,
    ) -> Self {
        // A real peer client's bounds: as many messages in flight, as large batches.
        let c = ClientConfig::default();
        SimLink {
            world,
            from,
            incarnation,
            to,
            sabotage,
            writes: Arc::new(c.write_batcher()),
            reads: Arc::new(c.read_batcher()),
        }
    }

    /// Carries one call to `to` and runs `serve` on its store when it arrives.
    async fn call<T: Send>(
        &self,
        what: &str,
        serve: impl FnOnce(&ReplicaStore) -> Result<T, StoreError> + Send,
    ) -> Result<T, ReplicaError> {
        let world = &self.world;
        let (from, to) = (self.from, self.to);
        if !world.is_running(from, self.incarnation) {
            return Err(ReplicaError::Unreachable("the sender crashed".into()));
        }
        if from == to {
            // This node's own store: no network, but still a suspension point, as the
            // real local replica's hop to the blocking pool is.
            tokio::task::yield_now().await;
            let running = world
                .running(to)
                .filter(|r| r.incarnation == self.incarnation)
                .ok_or_else(|| ReplicaError::Unreachable("the node crashed".into()))?;
            return serve(&running.store).map_err(ReplicaError::from);
        }
        let deadline = Instant::now() + RPC_DEADLINE;
        let trip = world.plan_trip();
        tokio::time::sleep(trip.request_delay).await;
        if trip.request_lost || world.is_cut(from, to) {
            world.trace(format_args!("{what} {from:?}->{to:?} request lost"));
            world.count(|s| s.messages_lost += 1);
            tokio::time::sleep_until(deadline).await;
            return Err(ReplicaError::Timeout);
        }
        let Some(running) = world.running(to) else {
            world.trace(format_args!("{what} {from:?}->{to:?} refused"));
            return Err(ReplicaError::Unreachable("connection refused".into()));
        };
        let result = serve(&running.store).map_err(ReplicaError::from);
        world.trace(format_args!(
            "{what} {from:?}->{to:?} served ok={}",
            result.is_ok()
        ));
        tokio::time::sleep(trip.reply_delay).await;
        if trip.reply_lost || world.is_cut(from, to) || !world.is_running(from, self.incarnation) {
            world.trace(format_args!("{what} {from:?}->{to:?} reply lost"));
            world.count(|s| s.messages_lost += 1);
            tokio::time::sleep_until(deadline).await;
            return Err(ReplicaError::Timeout);
        }
        result
    }
}

/// The broken replica of [`Sabotage::IgnoreVersions`]: every write is stored as it
/// arrives, newer or older than what is held (last arrival wins).
fn apply_ignoring_versions(
    store: &ReplicaStore,
    items: &[WriteItem],
) -> Result<Vec<WriteOutcome>, StoreError> {
    let mut batch = WriteBatch::new();
    let mut todos = store.merkle().begin_todos();
    for item in items {
        let key = data_key(item.key.db, &item.key.key);
        batch.put(store.data_keyspace(), &key, &item.record.encode());
        todos.add(&mut batch, &item.key);
    }
    store.db().write(batch)?;
    Ok(vec![WriteOutcome::Applied; items.len()])
}

/// As a peer client's (rpc/client.rs): the callback is a waiter of the batch its items
/// leave in, answered by the flusher when that message is answered or lost.
impl QueuedWrites for SimLink {
    fn write_then(&self, items: Vec<WriteItem>, done: WriteDone) {
        self.writes.call_then(items, done, || {
            let link = self.clone();
            spawn_flusher(self.writes.clone(), move |items, requests| {
                let link = link.clone();
                async move {
                    if requests > 1 {
                        link.world.count(|s| s.write_messages_shared += 1);
                    }
                    link.write(items).await
                }
            });
        });
    }
}

#[async_trait]
impl ReplicaApi for SimLink {
    async fn write(&self, items: Vec<WriteItem>) -> Result<Vec<WriteOutcome>, ReplicaError> {
        let ignore_versions = self.sabotage == Sabotage::IgnoreVersions;
        self.call("write", move |s| match ignore_versions {
            true => apply_ignoring_versions(s, &items),
            false => s.apply(&items),
        })
        .await
    }

    /// A peer's link queues writes, as a peer client does; this node's own store is
    /// written directly, as its local replica is.
    fn write_queue(&self) -> Option<&dyn QueuedWrites> {
        (self.from != self.to).then_some(self as &dyn QueuedWrites)
    }

    /// A peer's reads are batched and wait as a peer client's are (their own deadline
    /// covers the queue and the message); this node's own store is read directly.
    async fn read(&self, keys: Vec<ItemKey>) -> Result<Vec<Option<Record>>, ReplicaError> {
        if self.from == self.to {
            return self.read_now(keys).await;
        }
        self.reads
            .call(keys, RPC_DEADLINE, || {
                let link = self.clone();
                spawn_flusher(self.reads.clone(), move |keys, _| {
                    let link = link.clone();
                    async move { link.read_now(keys).await }
                });
            })
            .await
    }

    async fn prepare(&self, key: ItemKey, ballot: Version) -> Result<PrepareOutcome, ReplicaError> {
        self.call("prepare", move |s| s.prepare(&key, ballot)).await
    }

    async fn accept(&self, item: WriteItem) -> Result<WriteOutcome, ReplicaError> {
        let ignore_promises = self.sabotage == Sabotage::AcceptIgnoresPromises;
        self.call("accept", move |s| match ignore_promises {
            true => s
                .apply(std::slice::from_ref(&item))
                .map(|mut o| o.remove(0)),
            false => s.accept(&item),
        })
        .await
    }

    async fn merkle_roots(&self, partitions: Vec<u16>) -> Result<Vec<Hash16>, ReplicaError> {
        self.call("roots", move |s| s.merkle().roots(&partitions))
            .await
    }

    async fn merkle_buckets(&self, partition: u16) -> Result<Vec<Hash16>, ReplicaError> {
        self.call("buckets", move |s| s.merkle().buckets(partition))
            .await
    }

    async fn merkle_leaves(
        &self,
        partition: u16,
        bucket: u8,
    ) -> Result<Vec<MerkleLeaf>, ReplicaError> {
        self.call("leaves", move |s| s.merkle().leaves(partition, bucket))
            .await
    }

    async fn scan(
        &self,
        partition: u16,
        db: u32,
        from: ScanPosition,
        limit: usize,
    ) -> Result<ScanPage, ReplicaError> {
        self.call("scan", move |s| s.scan(partition, db, from, limit))
            .await
    }
}

/// The replica directory of one node incarnation: every node through a [`SimLink`],
/// one per node for the incarnation's life (so its batcher is shared, as a peer
/// client is).
pub(crate) struct SimReplicas {
    links: Vec<(NodeId, Arc<SimLink>)>,
}

impl SimReplicas {
    pub(crate) fn new(
        world: &Arc<World>,
        me: NodeId,
        incarnation: u64,
        nodes: &[NodeId],
        sabotage: Sabotage,
    ) -> SimReplicas {
        let links = nodes
            .iter()
            .map(|&to| {
                let link = SimLink::new(world.clone(), me, incarnation, to, sabotage);
                (to, Arc::new(link))
            })
            .collect();
        SimReplicas { links }
    }
}

impl Replicas for SimReplicas {
    fn replica(&self, node: NodeId) -> Option<Arc<dyn ReplicaApi>> {
        self.links
            .iter()
            .find(|(to, _)| *to == node)
            .map(|(_, link)| link.clone() as Arc<dyn ReplicaApi>)
    }
}
