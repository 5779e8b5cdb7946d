//! What the server asks of the ring (docs/cluster.md). The server hands the cluster a key
//! and what to do with it; it never sees replicas, quorums or hints. A cluster node
//! implements this trait; tests can put a fake behind it.

use crate::config::Consistency;
use crate::replica_api::{ItemKey, PeerState};
use crate::{Body, NodeId, Record, Version};
use async_trait::async_trait;
use bytes::Bytes;

/// Why a ring request failed. The texts are Redis-style error lines (the first word is
/// the error code a client sees).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RingError {
    /// No layout yet: the first one is made once `cluster-bootstrap-expect` nodes met.
    #[error("CLUSTERDOWN the cluster has no layout yet: waiting for {expected} nodes to meet (cluster-bootstrap-expect)")]
    NoLayout {
        /// Nodes that must meet.
        expected: usize,
    },
    /// Not enough replicas reachable before sending: nothing was done.
    #[error("CLUSTERDOWN {op} needs {needed} of the key's replicas but only {alive} are reachable; nothing was written")]
    Unavailable {
        /// "write" or "read".
        op: &'static str,
        /// Replicas needed (W or R).
        needed: usize,
        /// Replicas believed reachable.
        alive: usize,
    },
    /// Sent, but too few replicas answered in time. A write may still be applied.
    #[error("TIMEOUT {op} got {acked} of {needed} required replica answers within {millis} ms{}", if *op == "write" { "; the write may still be applied" } else { "" })]
    Timeout {
        /// "write" or "read".
        op: &'static str,
        /// Answers received.
        acked: usize,
        /// Answers needed.
        needed: usize,
        /// The request timeout.
        millis: u64,
    },
    /// This node may not coordinate now (for example its clock is too far off).
    #[error("TRYAGAIN this node cannot coordinate requests now: {0}")]
    NotReady(String),
    /// A replica's storage failed or returned damaged data.
    #[error("ERR cluster storage error: {0}")]
    Storage(String),
    /// Any other failure; the text is a complete error line.
    #[error("{0}")]
    Other(String),
}

/// One row of CLUSTER NODES / `kvtool cluster status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeRow {
    /// Node id.
    pub id: NodeId,
    /// Address clients use (host:port).
    pub resp_addr: String,
    /// Address of the bus (host:port).
    pub bus_addr: String,
    /// This node.
    pub myself: bool,
    /// As failure detection sees it.
    pub state: PeerState,
    /// Partitions for which the node is first in the preference list.
    pub first_partitions: Vec<u16>,
    /// Partitions it holds a replica of.
    pub partitions: usize,
}

/// What an on-demand repair did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RepairReport {
    /// Partitions compared.
    pub partitions: usize,
    /// Keys whose replicas differed and were repaired.
    pub keys_repaired: u64,
    /// Replica pairs that could not be compared (unreachable).
    pub failures: usize,
}

/// A replica operation this node serves for another coordinator.
#[derive(Debug)]
pub enum ReplicaEvent<'a> {
    /// A replicated write (value or tombstone) arrived.
    Write {
        /// The key.
        key: &'a ItemKey,
        /// What is written.
        record: &'a Record,
    },
    /// A replica read arrived.
    Read {
        /// The key.
        key: &'a ItemKey,
    },
}

/// Receives [`ReplicaEvent`]s (the server feeds MONITOR with them).
pub type ReplicaObserver = std::sync::Arc<dyn Fn(&ReplicaEvent<'_>) + Send + Sync>;

/// The ring as the server sees it.
#[async_trait]
pub trait Ring: Send + Sync + 'static {
    /// This node's id.
    fn my_id(&self) -> NodeId;
    /// CLUSTER INFO fields in order (`name`, `value`).
    fn info(&self) -> Vec<(String, String)>;
    /// Every node of the layout (or, before one exists, every node met).
    fn nodes(&self) -> Vec<NodeRow>;
    /// The cluster as this node sees it, for operators (`GET /cluster/nodes`, cluster
    /// metrics and readiness); `None` from a ring that keeps no such view (test fakes).
    fn view(&self) -> Option<crate::view::ClusterView> {
        None
    }
    /// The replicas of `key` in preference order.
    fn preflist(&self, key: &[u8]) -> Result<Vec<NodeRow>, RingError>;
    /// The newest record of `key` among the replicas `level` asks (R for QUORUM),
    /// tombstones included, after read repair of stale replicas.
    async fn get(&self, key: ItemKey, level: Consistency) -> Result<Option<Record>, RingError>;
    /// What [`Ring::get`] answers for each of `keys`, in order; a ring may read them
    /// together (the cluster node: one request per replica node).
    async fn get_many(
        &self,
        keys: Vec<ItemKey>,
        level: Consistency,
    ) -> Vec<Result<Option<Record>, RingError>> {
        futures::future::join_all(keys.into_iter().map(|k| self.get(k, level))).await
    }
    /// Writes `body` (a value or a tombstone) with a new version on the replicas `level`
    /// asks (W for QUORUM). A [`Body::SiblingsWrite`] is a siblings database's write:
    /// one replica gives it a dot, then its state goes to the others (docs/consistency.md).
    async fn put(
        &self,
        key: ItemKey,
        body: Body,
        expire_at: Option<i64>,
        level: Consistency,
    ) -> Result<Version, RingError>;
    /// Writes several keys as [`Ring::put`] writes each (no atomicity across them): one
    /// result per write, in order. A ring may send them in one round (one request per
    /// replica); this default writes them one by one, concurrently.
    async fn put_many(
        &self,
        writes: Vec<(ItemKey, Body, Option<i64>)>,
        level: Consistency,
    ) -> Vec<Result<Version, RingError>> {
        let puts = writes
            .into_iter()
            .map(|(key, body, expire_at)| self.put(key, body, expire_at, level));
        futures::future::join_all(puts).await
    }
    /// The node that proposes consensus rounds on `key`, when it is not this one
    /// (crate::forward; docs/consistency.md, "One proposer per key"): the first of the
    /// key's replicas that failure detection sees up. `None`: run them here.
    fn proposer(&self, _key: &ItemKey) -> Option<NodeId> {
        None
    }
    /// Sends a command to `node`, its key's proposer, and returns its encoded reply.
    async fn forward(
        &self,
        node: NodeId,
        _command: crate::forward::Forwarded,
    ) -> Result<Bytes, crate::forward::ForwardError> {
        Err(crate::forward::ForwardError::NotSent(format!(
            "this ring forwards nothing (to node {node})"
        )))
    }
    /// Runs the commands other nodes forward here with `server` from now on.
    fn serve_forwarded(&self, _server: crate::forward::ForwardServer) {}
    /// Runs one command on `key` through single-key consensus (docs/consistency.md):
    /// `change` sees the key's state and says what to write; linearizable with every
    /// other consensus command on the key. Returns the version written, `None` when the
    /// command wrote nothing.
    async fn consensus(
        &self,
        _key: ItemKey,
        _level: Consistency,
        _change: crate::coordinator::ChangeFn<'_>,
    ) -> Result<Option<Version>, RingError> {
        Err(RingError::Other(
            "ERR this ring does not run consensus".into(),
        ))
    }
    /// Runs a multi-key transaction (docs/consistency.md, "Transactions on the ring"):
    /// every key of `keys` is locked, `decide` sees their states and says what each
    /// becomes, and the whole commits atomically, linearizable with every other
    /// consensus command on those keys. Returns the commit version, `None` when the
    /// transaction aborted or wrote nothing.
    async fn transaction(
        &self,
        _keys: &[ItemKey],
        _level: Consistency,
        _decide: crate::coordinator::TxnFn<'_>,
    ) -> Result<Option<Version>, RingError> {
        Err(RingError::Other(
            "ERR this ring does not run transactions".into(),
        ))
    }
    /// One page of a cluster-wide SCAN of `db` from `cursor` over the partitions of
    /// `scope`: the next cursor (0 when done) and the live keys (every key of the scope
    /// present for the whole scan is returned once the cursor comes back to 0).
    async fn scan(
        &self,
        scope: &crate::partition_set::PartitionSet,
        db: u32,
        cursor: u64,
        count: usize,
        level: Consistency,
    ) -> Result<(u64, Vec<Bytes>), RingError>;
    /// Runs anti-entropy now for one partition, or every partition this node holds.
    async fn repair(&self, partition: Option<u16>) -> Result<RepairReport, RingError>;
    /// This node's Merkle root of each partition (`None` for partitions it does not
    /// hold), after folding every pending write: replicas holding the same data have
    /// equal roots, which is how tests and operators check convergence.
    async fn merkle_roots(&self) -> Result<Vec<Option<crate::replica_api::Hash16>>, RingError>;
    /// Stores cluster-wide entries `name -> value` (docs/cluster.md, "Cluster
    /// metadata") with one new version on every node it can reach; succeeds once a
    /// majority of the layout's nodes hold them. On failure the entries may still be on
    /// some nodes and spread to the others on contact: the error says so.
    async fn publish_metadata(&self, _entries: Vec<(String, Bytes)>) -> Result<Version, RingError> {
        Err(RingError::Other(
            "ERR this ring keeps no cluster metadata".into(),
        ))
    }
    /// Calls `listener` with every cluster metadata entry held now, then with every
    /// entry that changes (whichever node wrote it), in order.
    fn listen_metadata(&self, _listener: crate::metadata::MetadataListener) {}
    /// Reports the replica operations this node serves for other coordinators to
    /// `observer` from now on.
    fn observe_replica_ops(&self, observer: ReplicaObserver);
    /// Sends a message PUBLISHed through this node to every other node's subscribers
    /// (docs/pubsub.md, "Cluster mode"): queued, never waited for, at most once; the
    /// order of one caller's messages is kept at each node.
    fn broadcast_pubsub(&self, _message: crate::pubsub_fanout::PubSubMessage) {}
    /// Calls `listener` with every message published through another node, in the order
    /// that node sent them.
    fn listen_pubsub(&self, _listener: crate::pubsub_fanout::PubSubListener) {}
    /// Layout administration (CLUSTER LAYOUT, `kvtool cluster join|leave|replace|plan|
    /// apply`; docs/cluster.md, "Changing the layout"): a report of `key: value` lines.
    async fn layout_admin(&self, _request: LayoutRequest) -> Result<String, RingError> {
        Err(RingError::Other(
            "ERR this ring has no layout to administer".into(),
        ))
    }
}

/// A layout administration request. Nodes are named by their 40-hex-digit id or by
/// the bus address they introduced themselves with (`host:port`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LayoutRequest {
    /// The layout in force, the change under way, the staged changes and the nodes met
    /// that are not members.
    Show,
    /// Stages adding `node` (or setting a member's zone and capacity).
    Assign {
        /// The node.
        node: String,
        /// Its failure domain (unchanged or empty when absent).
        zone: Option<String>,
        /// Its relative capacity (unchanged or 1 when absent).
        capacity: Option<u32>,
    },
    /// Stages removing a member.
    Remove {
        /// The member.
        node: String,
    },
    /// Stages putting node `with` in member `node`'s place.
    Replace {
        /// The member replaced.
        node: String,
        /// Its replacement.
        with: String,
    },
    /// Drops the staged changes.
    Revert,
    /// This node's progress through the change under way (its incoming partitions:
    /// bytes streamed, rate, time left) and which departing nodes may be switched off.
    Status,
    /// What applying the staged changes would do, and the version it would make.
    Plan,
    /// Applies the staged changes if they make layout version `version` (the one PLAN
    /// showed): a change reviewed on one layout never applies to another.
    Apply {
        /// The version PLAN showed.
        version: u64,
    },
}
