//! What a coordinator asks of a replica. One trait, three implementations: the local
//! replica store (this node), a gRPC client (another node), and in-memory fakes for
//! tests and the simulation, so the coordinator's logic never knows which it talks to.

use crate::{NodeId, Record, Version};
use async_trait::async_trait;
use bytes::Bytes;
use kv_keyspace::data_key::ScanPosition;

/// A map keyed by ring keys (or other request contents), hashed with foldhash: a few
/// instructions per key where std's SipHash cost hundreds on every replicated write
/// (docs/performance.md, "Fewer instructions per key"). Seeded per process, as the
/// server's maps of client keys are.
pub type KeyMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

/// A key on the ring: logical database and Redis key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ItemKey {
    /// Logical database (SELECT n).
    pub db: u32,
    /// Redis key.
    pub key: Bytes,
}

/// One replicated write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteItem {
    /// Where.
    pub key: ItemKey,
    /// What: a value or a tombstone, with its version.
    pub record: Record,
}

/// A replica's answer to one write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteOutcome {
    /// Stored durably (under the replica's fsync policy), or already held.
    Applied,
    /// Refused: the replica holds a newer version of the key (which it returns), so the
    /// coordinator must move its clock past it and retry with a newer version.
    Stale {
        /// The version the replica holds.
        current: Version,
    },
    /// Stored as `Applied` would be, but the replica is catching up after an unclean
    /// restart and may lack writes acknowledged before its crash (cluster/src/catch_up.rs):
    /// it may have taken a version older than one it lost, so its acknowledgement must
    /// not count toward W. Coordinators count it like a hint (durable somewhere, not
    /// toward the quorum); repair, hints and streams take it as delivered.
    StoredNotCounted,
}

/// An acceptor's answer to phase 1 of single-key consensus (docs/consistency.md).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrepareOutcome {
    /// The ballot is promised (durably); the record held (the value accepted last).
    Promised {
        /// Tombstones and expired values included; `None` if the key was never written
        /// or its record was collected.
        record: Option<Record>,
        /// The promise held before this one (ZERO if none). A record below it may have
        /// arrived by repair after a higher ballot was promised, so it does not count
        /// as accepted by this replica (docs/consistency.md, "What repair may do").
        promised_before: Version,
    },
    /// Refused: the acceptor saw a ballot at least as high (a promise, its record's
    /// version or the database's flush floor), which it returns.
    Rejected {
        /// The highest ballot seen.
        seen: Version,
    },
}

/// Merkle tree hashes are 16 bytes (xxh3-128): replicas are not adversaries.
pub type Hash16 = [u8; 16];

/// One leaf of a partition's Merkle tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MerkleLeaf {
    /// The key.
    pub key: ItemKey,
    /// Hash of key, version, expiry and kind of the record held.
    pub hash: Hash16,
}

/// A page of a partition scan.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ScanPage {
    /// Keys with their records (tombstones and expired values included; the caller
    /// decides what is live).
    pub items: Vec<(Bytes, Record)>,
    /// Where the next page starts; `None` when the partition is done.
    pub next: Option<ScanPosition>,
}

/// A page of a whole partition, every database at once, in engine key order: what a new
/// replica streams (crate::snapshot_stream).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PartitionPage {
    /// The records, as writes of their keys (tombstones and expired values included).
    pub items: Vec<WriteItem>,
    /// Their engine key and value bytes (what [`crate::partition_size`] measures).
    pub bytes: u64,
    /// The engine key the next page starts at; `None` when the partition is done.
    pub next: Option<Bytes>,
}

/// Why a replica did not answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplicaError {
    /// No answer within the deadline: the request may still have been applied.
    #[error("timed out")]
    Timeout,
    /// Not sent: the peer is unreachable or refused the connection.
    #[error("unreachable: {0}")]
    Unreachable(String),
    /// Too many requests already in flight to this peer.
    #[error("overloaded")]
    Overloaded,
    /// The replica is catching up after an unclean restart and may lack acknowledged
    /// writes: its reads must not count toward a quorum (cluster/src/catch_up.rs).
    #[error("catching up after an unclean restart")]
    CatchingUp,
    /// The replica holds a newer layout than the one the request was tagged with and
    /// refused it (rpc/layout_tag.rs): nothing was applied. The coordinator fetches the
    /// newer layout and retries under its placement.
    #[error("refused: the replica holds the newer layout version {version}")]
    StaleLayout {
        /// The replica's layout version.
        version: u64,
    },
    /// The request or its answer would be larger than a bus message
    /// (crate::record_size): nothing was applied. A read of several keys is asked
    /// again in parts (rpc/client.rs).
    #[error("too large for the bus: {0}")]
    TooLarge(String),
    /// The replica answered with an error (storage failure, refused peer...).
    #[error("{0}")]
    Failed(String),
}

const NO_CONSENSUS: &str = "this replica does not take part in consensus";

/// What a replica without [`ReplicaApi::scan_partition`] answers (test fakes; a peer
/// built before it answers `Unimplemented`, which the bus client turns into this).
pub const NO_PARTITION_SCAN: &str = "this replica does not scan whole partitions";

/// Whether `e` says the replica cannot scan whole partitions (the caller then scans
/// database by database).
pub fn is_no_partition_scan(e: &ReplicaError) -> bool {
    matches!(e, ReplicaError::Failed(m) if m == NO_PARTITION_SCAN)
}

/// What a write's answer is handed to, once ([`QueuedWrites::write_then`]).
pub type WriteDone = Box<dyn FnOnce(Result<Vec<WriteOutcome>, ReplicaError>) + Send>;

/// A replica that queues writes and hands each one's answer to a callback, so a caller
/// that does not wait for it needs no task of its own: a peer's client, whose batcher's
/// flusher runs the callback when the RPC answers (rpc/batcher.rs). A write round sends
/// its requests to peers this way (coordinator/round.rs).
pub trait QueuedWrites {
    /// Queues `items` (one durable batch on the replica, as [`ReplicaApi::write`]);
    /// `done` gets the outcomes or the error exactly once, within the client's request
    /// timeout of the RPC that carries them.
    fn write_then(&self, items: Vec<WriteItem>, done: WriteDone);
}

/// Operations a replica serves.
#[async_trait]
pub trait ReplicaApi: Send + Sync + 'static {
    /// Applies writes in one durable batch; one outcome per item, in order.
    async fn write(&self, items: Vec<WriteItem>) -> Result<Vec<WriteOutcome>, ReplicaError>;
    /// This replica's [`QueuedWrites`], if it has them (a peer's client); others are
    /// written through [`ReplicaApi::write`].
    fn write_queue(&self) -> Option<&dyn QueuedWrites> {
        None
    }
    /// The records held for `keys` (tombstones included), in order.
    async fn read(&self, keys: Vec<ItemKey>) -> Result<Vec<Option<Record>>, ReplicaError>;
    /// Consensus phase 1: promise `ballot` for `key` (durably) and return its record.
    /// (Test fakes that never take part in consensus keep this default.)
    async fn prepare(
        &self,
        _key: ItemKey,
        _ballot: Version,
    ) -> Result<PrepareOutcome, ReplicaError> {
        Err(ReplicaError::Failed(NO_CONSENSUS.into()))
    }
    /// Consensus phase 2: accept `item.record` at its version (durably) unless a higher
    /// ballot was promised or a newer record is held (`Stale` with the highest seen).
    async fn accept(&self, _item: WriteItem) -> Result<WriteOutcome, ReplicaError> {
        Err(ReplicaError::Failed(NO_CONSENSUS.into()))
    }
    /// Root hash of each partition's Merkle tree, in order of `partitions`.
    async fn merkle_roots(&self, partitions: Vec<u16>) -> Result<Vec<Hash16>, ReplicaError>;
    /// The 256 bucket hashes of one partition.
    async fn merkle_buckets(&self, partition: u16) -> Result<Vec<Hash16>, ReplicaError>;
    /// The leaves of one bucket of one partition.
    async fn merkle_leaves(
        &self,
        partition: u16,
        bucket: u8,
    ) -> Result<Vec<MerkleLeaf>, ReplicaError>;
    /// Up to `limit` records of database `db` in `partition` from `from` on, in scan
    /// order; a page never ends between two keys of the same scan position.
    async fn scan(
        &self,
        partition: u16,
        db: u32,
        from: ScanPosition,
        limit: usize,
    ) -> Result<ScanPage, ReplicaError>;
    /// Up to `limit` records of every database of `partition` from engine key `from` on
    /// (`None`: the partition's start), in engine key order: one range scan, however
    /// many databases hold keys there. Replicas without it keep this default, and the
    /// caller scans database by database.
    async fn scan_partition(
        &self,
        _partition: u16,
        _from: Option<Bytes>,
        _limit: usize,
    ) -> Result<PartitionPage, ReplicaError> {
        Err(ReplicaError::Failed(NO_PARTITION_SCAN.into()))
    }
}

/// How failure detection sees a peer. Liveness never changes ownership: it only tells
/// coordinators whom to skip (and hint for) and hint replay when to start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerState {
    /// Answering gossip.
    Up,
    /// Missed enough gossip that its failure detector crossed the threshold.
    Suspect,
    /// Not heard from for long (or never).
    Down,
}

impl PeerState {
    /// `up`, `suspect` or `down`, as operators read it (`GET /cluster/nodes`, metrics).
    pub fn name(self) -> &'static str {
        match self {
            PeerState::Up => "up",
            PeerState::Suspect => "suspect",
            PeerState::Down => "down",
        }
    }
}

/// The membership view the coordinator and the background workers read.
pub trait Liveness: Send + Sync + 'static {
    /// The state of `node` (this node is always `Up`).
    fn state(&self, node: NodeId) -> PeerState;
}

/// Finds the [`ReplicaApi`] for a node (local for this node, gRPC for others).
pub trait Replicas: Send + Sync + 'static {
    /// The replica endpoint of `node`; `None` if the node is unknown.
    fn replica(&self, node: NodeId) -> Option<std::sync::Arc<dyn ReplicaApi>>;
}
