//! The node as the server's [`Ring`]: requests go through the coordinator once a layout
//! exists and the clock is within bounds.

use super::ClusterNode;
use crate::config::Consistency;
use crate::coordinator::{ChangeFn, TxnFn};
use crate::partition_set::PartitionSet;
use crate::quorum::ClusterError;
use crate::replica_api::{Hash16, ItemKey, Liveness};
use crate::ring::{NodeRow, RepairReport, Ring, RingError};
use crate::{Body, NodeId, Record, Version};
use async_trait::async_trait;
use bytes::Bytes;
use kv_keyspace::slot::key_partition;

impl ClusterNode {
    /// Refuses requests while there is no layout or the clock does not allow `op`
    /// (`"read"` or `"write"`: a clock that resumed ahead after a crash stops writes only).
    pub(super) fn ready(&self, op: &'static str) -> Result<(), RingError> {
        if let Some(version) = self.removed_in() {
            return Err(RingError::Other(format!(
                "ERR this node was removed from the cluster in layout version {version}: it serves no requests; wipe its data directory to use it again (docs/operations.md)"
            )));
        }
        if self.layout.get().is_none() {
            return Err(RingError::NoLayout {
                expected: self.config.expect,
            });
        }
        if let Some(why) = self.clock.stops(op == "write") {
            return Err(RingError::NotReady(format!(
                "{why} (CLUSTER INFO kvd_clock_state; docs/cluster.md, clocks)"
            )));
        }
        Ok(())
    }

    pub(super) fn ring_error(&self, op: &'static str, e: ClusterError) -> RingError {
        match e {
            ClusterError::Unavailable { needed, alive } => {
                RingError::Unavailable { op, needed, alive }
            }
            ClusterError::Timeout { acked, needed } => RingError::Timeout {
                op,
                acked,
                needed,
                millis: self.config.cluster.request_timeout.as_millis() as u64,
            },
            other => RingError::Other(other.to_string()),
        }
    }

    fn row(&self, id: NodeId, resp_addr: &str, bus_addr: &str) -> NodeRow {
        let layout = self.layout.get();
        let (first, held) = match &layout {
            Some(l) => {
                let first = (0..kv_keyspace::slot::PARTITIONS)
                    .filter(|&p| l.preflist(p).first() == Some(&id))
                    .collect();
                (first, l.partitions_of(id).len())
            }
            None => (Vec::new(), 0),
        };
        NodeRow {
            id,
            resp_addr: resp_addr.to_string(),
            bus_addr: bus_addr.to_string(),
            myself: id == self.me.id,
            state: self.live.state(id),
            first_partitions: first,
            partitions: held,
        }
    }
}

#[async_trait]
impl Ring for ClusterNode {
    fn my_id(&self) -> NodeId {
        self.me.id
    }

    fn info(&self) -> Vec<(String, String)> {
        super::info::fields(self)
    }

    fn nodes(&self) -> Vec<NodeRow> {
        match self.layout.get() {
            Some(l) => l
                .nodes
                .iter()
                .map(|n| self.row(n.id, &n.resp_addr, &n.bus_addr))
                .collect(),
            None => self
                .met
                .lock()
                .values()
                .map(|n| self.row(n.id, &n.resp_addr, &n.bus_addr))
                .collect(),
        }
    }

    fn view(&self) -> Option<crate::view::ClusterView> {
        Some(ClusterNode::view(self))
    }

    fn preflist(&self, key: &[u8]) -> Result<Vec<NodeRow>, RingError> {
        let layout = self.layout.get().ok_or(RingError::NoLayout {
            expected: self.config.expect,
        })?;
        Ok(layout
            .preflist(key_partition(key))
            .iter()
            .filter_map(|id| layout.node(*id))
            .map(|n| self.row(n.id, &n.resp_addr, &n.bus_addr))
            .collect())
    }

    async fn get(&self, key: ItemKey, level: Consistency) -> Result<Option<Record>, RingError> {
        self.ready("read")?;
        self.coordinator
            .get(key, level)
            .await
            .map_err(|e| self.ring_error("read", e))
    }

    async fn get_many(
        &self,
        keys: Vec<ItemKey>,
        level: Consistency,
    ) -> Vec<Result<Option<Record>, RingError>> {
        if let Err(e) = self.ready("read") {
            return keys.iter().map(|_| Err(e.clone())).collect();
        }
        self.coordinator
            .get_many(&keys, level)
            .await
            .into_iter()
            .map(|r| r.map_err(|e| self.ring_error("read", e)))
            .collect()
    }

    fn proposer(&self, key: &ItemKey) -> Option<NodeId> {
        self.proposer_of(key)
    }

    async fn forward(
        &self,
        node: NodeId,
        command: crate::forward::Forwarded,
    ) -> Result<Bytes, crate::forward::ForwardError> {
        self.forward_to(node, command).await
    }

    fn serve_forwarded(&self, server: crate::forward::ForwardServer) {
        ClusterNode::serve_forwarded(self, server)
    }

    async fn consensus(
        &self,
        key: ItemKey,
        level: Consistency,
        change: ChangeFn<'_>,
    ) -> Result<Option<Version>, RingError> {
        self.ready("write")?;
        self.coordinator
            .consensus(key, level, change)
            .await
            .map_err(|e| self.ring_error("write", e))
    }

    async fn transaction(
        &self,
        keys: &[ItemKey],
        level: Consistency,
        decide: TxnFn<'_>,
    ) -> Result<Option<Version>, RingError> {
        self.ready("write")?;
        self.coordinator
            .transaction(keys, level, decide)
            .await
            .map_err(|e| self.ring_error("write", e))
    }

    async fn put(
        &self,
        key: ItemKey,
        body: Body,
        expire_at: Option<i64>,
        level: Consistency,
    ) -> Result<Version, RingError> {
        self.ready("write")?;
        let put = match body {
            Body::Value { ty, payload } => {
                self.coordinator
                    .put(key, Some((ty, payload)), expire_at, level)
                    .await
            }
            Body::Tombstone => self.coordinator.put(key, None, None, level).await,
            Body::SiblingsWrite(write) => self.coordinator.siblings_put(key, write, level).await,
            // A state is made by a replica, never sent by a client.
            Body::Siblings(_) => Err(ClusterError::Protocol(
                "a siblings state is not a write".into(),
            )),
        };
        put.map_err(|e| self.ring_error("write", e))
    }

    /// Values and tombstones go in one round (coordinator/batch_write.rs); a siblings
    /// database's writes one by one.
    async fn put_many(
        &self,
        writes: Vec<(ItemKey, Body, Option<i64>)>,
        level: Consistency,
    ) -> Vec<Result<Version, RingError>> {
        if let Err(e) = self.ready("write") {
            return writes.iter().map(|_| Err(e.clone())).collect();
        }
        let blind = writes
            .iter()
            .all(|(_, body, _)| matches!(body, Body::Value { .. } | Body::Tombstone));
        if !blind {
            let puts = writes
                .into_iter()
                .map(|(key, body, expire_at)| self.put(key, body, expire_at, level));
            return futures::future::join_all(puts).await;
        }
        let batch = writes
            .into_iter()
            .map(|(key, body, expire_at)| match body {
                Body::Value { ty, payload } => (key, Some((ty, payload)), expire_at),
                _ => (key, None, None),
            })
            .collect();
        self.coordinator
            .put_batch(batch, level)
            .await
            .into_iter()
            .map(|r| r.map_err(|e| self.ring_error("write", e)))
            .collect()
    }

    async fn scan(
        &self,
        scope: &PartitionSet,
        db: u32,
        cursor: u64,
        count: usize,
        level: Consistency,
    ) -> Result<(u64, Vec<Bytes>), RingError> {
        self.ready("read")?;
        let now = crate::hints::system_clock_ms()();
        self.coordinator
            .scan(scope, db, cursor, count, now as i64, level)
            .await
            .map_err(|e| self.ring_error("read", e))
    }

    async fn repair(&self, partition: Option<u16>) -> Result<RepairReport, RingError> {
        self.repair_now(partition).await
    }

    async fn publish_metadata(&self, entries: Vec<(String, Bytes)>) -> Result<Version, RingError> {
        self.publish(entries).await
    }

    fn listen_metadata(&self, listener: crate::metadata::MetadataListener) {
        ClusterNode::listen_metadata(self, listener)
    }

    fn observe_replica_ops(&self, observer: crate::ring::ReplicaObserver) {
        *self.observer.write() = Some(observer);
    }

    fn broadcast_pubsub(&self, message: crate::pubsub_fanout::PubSubMessage) {
        self.broadcast(message)
    }

    fn listen_pubsub(&self, listener: crate::pubsub_fanout::PubSubListener) {
        self.pubsub.listen(listener)
    }

    async fn layout_admin(&self, request: crate::ring::LayoutRequest) -> Result<String, RingError> {
        if let Some(version) = self.removed_in() {
            return Err(RingError::Other(format!(
                "ERR this node was removed from the cluster in layout version {version}; ask a member"
            )));
        }
        ClusterNode::layout_admin(self, request).await
    }

    async fn merkle_roots(&self) -> Result<Vec<Option<Hash16>>, RingError> {
        let held: Vec<u16> = match self.layout.get() {
            Some(l) => l.partitions_of(self.me.id),
            None => Vec::new(),
        };
        let roots = self
            .local
            .merkle_roots(held.clone())
            .await
            .map_err(|e| RingError::Storage(e.to_string()))?;
        let mut out = vec![None; kv_keyspace::slot::PARTITIONS as usize];
        for (p, root) in held.into_iter().zip(roots) {
            out[p as usize] = Some(root);
        }
        Ok(out)
    }
}
