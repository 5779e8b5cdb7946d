//! The coordinator: whichever node a client reached runs a request against the key's N
//! replicas with quorums (docs/cluster-replication.md). It depends only on traits, so
//! the same code runs over the local store, gRPC peers and the test fakes.

mod batch_write;
mod layout_retry;
mod multi;
mod paxos;
mod read;
mod read_many;
#[cfg(test)]
mod replica_set_tests;
mod round;
mod siblings;
mod tally;
mod txn;
mod write;

pub use layout_retry::LayoutSource;
pub use multi::{KeyWrite, MAX_KEYS_IN_FLIGHT};
pub use paxos::{Change, ChangeFn};
pub use txn::{Snapshot, TxnDecision, TxnFn};

use crate::hints::HintStore;
use crate::metadata::FlushFloors;
use crate::quorum::{CoordinatorConfig, Target};
use crate::replica_api::{Liveness, PeerState, ReplicaApi, Replicas};
use crate::{NodeId, Version};
use kv_keyspace::slot::key_partition;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Where keys live: the layout's preference lists.
pub trait Placement: Send + Sync + 'static {
    /// The N replicas of `partition`, in preference order.
    fn partition_preflist(&self, partition: u16) -> Vec<NodeId>;

    /// The N replicas of `key`, in preference order.
    fn preflist(&self, key: &[u8]) -> Vec<NodeId> {
        self.partition_preflist(key_partition(key))
    }

    /// The replica groups a write of `key` needs a quorum in, the first in preference
    /// order: the key's replicas, and during a layout change also the previous layout's
    /// (reads then use [`Placement::preflist`], the previous replicas).
    fn write_groups(&self, key: &[u8]) -> Vec<Vec<NodeId>> {
        vec![self.preflist(key)]
    }
}

/// The node's hybrid logical clock.
pub trait VersionClock: Send + Sync + 'static {
    /// A version newer than every version this clock made or observed; an error when the
    /// clock cannot guarantee that (its persisted floor could not be written).
    fn next(&self) -> Result<Version, String>;
    /// Moves the clock past `v` (a version seen on a replica).
    fn observe(&self, v: Version);
}

/// Coordinator counters, for CLUSTER INFO.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CoordinatorStats {
    /// Replicas brought up to date by read repair.
    pub read_repairs: u64,
    /// Read repair writes that failed or timed out (the read still succeeded).
    pub read_repair_failures: u64,
    /// Writes retried with a newer version after a replica answered Stale.
    pub stale_retries: u64,
    /// Consensus rounds lost to a higher ballot and retried.
    pub consensus_retries: u64,
    /// Consensus rounds started (a command's first round and every retry).
    pub consensus_rounds: u64,
    /// Multi-key transactions committed by this node.
    pub transactions_committed: u64,
    /// Multi-key transactions this node released without committing (a failed WATCH,
    /// a lost lock, an error).
    pub transactions_aborted: u64,
    /// Other nodes' transactions this node aborted because their locks had expired.
    pub transactions_aborted_expired: u64,
    /// Locks of other transactions this node found on a key and settled.
    pub locks_resolved: u64,
    /// Requests run again under a newer layout after a replica refused their layout
    /// version (coordinator/layout_retry.rs).
    pub layout_retries: u64,
    /// Siblings writes that left a key with more than `dvv::WARN_SIBLINGS` values.
    pub siblings_warnings: u64,
}

#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) read_repairs: AtomicU64,
    pub(crate) read_repair_failures: AtomicU64,
    pub(crate) stale_retries: AtomicU64,
    pub(crate) consensus_retries: AtomicU64,
    pub(crate) consensus_rounds: AtomicU64,
    pub(crate) transactions_committed: AtomicU64,
    pub(crate) transactions_aborted: AtomicU64,
    pub(crate) transactions_aborted_expired: AtomicU64,
    pub(crate) locks_resolved: AtomicU64,
    pub(crate) layout_retries: AtomicU64,
    pub(crate) siblings_warnings: AtomicU64,
}

pub(crate) struct Inner {
    pub(crate) me: NodeId,
    pub(crate) placement: Arc<dyn Placement>,
    pub(crate) clock: Arc<dyn VersionClock>,
    pub(crate) replicas: Arc<dyn Replicas>,
    pub(crate) liveness: Arc<dyn Liveness>,
    pub(crate) hints: HintStore,
    pub(crate) config: CoordinatorConfig,
    pub(crate) counters: Counters,
    /// Database flush floors: records below them are gone, whatever a replica answers.
    pub(crate) floors: FlushFloors,
    /// One consensus command per key at a time from this node (coordinator/paxos.rs).
    pub(crate) proposing: paxos::KeyTurns,
    /// Where a newer layout comes from when a replica refuses ours (none: no retry).
    pub(crate) layout_source: Option<Arc<dyn LayoutSource>>,
}

/// Runs reads and writes against replicas with quorums. Cheap to clone.
#[derive(Clone)]
pub struct Coordinator {
    pub(crate) inner: Arc<Inner>,
}

/// Each node's failure-detector state and endpoint, looked up once for all the keys of
/// one batch (a pipeline's reads, a round of writes): a lookup takes two or three read
/// locks and hash probes, about 350 instructions per key for three replicas
/// (docs/performance.md, "A batch's node lookups; a command's reads in a sorted
/// vector"), and a batch's
/// keys share the ring's few nodes. A batch thus sees one view of the nodes, taken at
/// its start, as each key's request always did.
#[derive(Default)]
pub(crate) struct NodeLookups(Vec<(NodeId, NodeLookup)>);

/// A node's state and its endpoint (none if it is down or unknown).
type NodeLookup = (PeerState, Option<Arc<dyn ReplicaApi>>);

/// The replicas of one request: those the coordinator will send to, in preference
/// order, and those it skips (suspect, down or unknown) and hints for instead; and the
/// groups it needs a quorum in (one, or two during a layout change: `tally.rs`).
pub(crate) struct ReplicaSet {
    pub(crate) live: Vec<Target>,
    pub(crate) skipped: Vec<NodeId>,
    pub(crate) n: usize,
    pub(crate) groups: Vec<Vec<NodeId>>,
    /// Stale-layout refusals the request met (coordinator/layout_retry.rs).
    pub(crate) refusals: Arc<layout_retry::Refusals>,
}

impl Coordinator {
    /// A coordinator running on node `me`.
    pub fn new(
        me: NodeId,
        placement: Arc<dyn Placement>,
        clock: Arc<dyn VersionClock>,
        replicas: Arc<dyn Replicas>,
        liveness: Arc<dyn Liveness>,
        hints: HintStore,
        config: CoordinatorConfig,
    ) -> Coordinator {
        Coordinator {
            inner: Arc::new(Inner {
                me,
                placement,
                clock,
                replicas,
                liveness,
                hints,
                config,
                counters: Counters::default(),
                floors: FlushFloors::default(),
                proposing: paxos::KeyTurns::default(),
                layout_source: None,
            }),
        }
    }

    /// The same coordinator, filtering by `floors` (docs/cluster.md, "Flushing a
    /// database"): reads and scans never return a record below its database's floor,
    /// even from a replica that has not learned of the flush yet, and writes get
    /// versions above it. Call before the coordinator is cloned.
    pub fn with_flush_floors(mut self, floors: FlushFloors) -> Coordinator {
        match Arc::get_mut(&mut self.inner) {
            Some(inner) => inner.floors = floors,
            None => tracing::error!("flush floors set on a shared coordinator: ignored"),
        }
        self
    }

    /// The same coordinator, fetching a newer layout from `source` when a replica
    /// refuses a request for its layout version, then retrying the request once under
    /// the new placement (coordinator/layout_retry.rs). Call before it is cloned.
    pub fn with_layout_source(mut self, source: Arc<dyn LayoutSource>) -> Coordinator {
        match Arc::get_mut(&mut self.inner) {
            Some(inner) => inner.layout_source = Some(source),
            None => tracing::error!("layout source set on a shared coordinator: ignored"),
        }
        self
    }

    /// The node this coordinator runs on.
    pub fn node(&self) -> NodeId {
        self.inner.me
    }

    /// The settings.
    pub fn config(&self) -> &CoordinatorConfig {
        &self.inner.config
    }

    /// The hint store writes go to for replicas that miss them.
    pub fn hints(&self) -> &HintStore {
        &self.inner.hints
    }

    /// Counters.
    pub fn stats(&self) -> CoordinatorStats {
        let c = &self.inner.counters;
        CoordinatorStats {
            read_repairs: c.read_repairs.load(Ordering::Relaxed),
            read_repair_failures: c.read_repair_failures.load(Ordering::Relaxed),
            stale_retries: c.stale_retries.load(Ordering::Relaxed),
            consensus_retries: c.consensus_retries.load(Ordering::Relaxed),
            consensus_rounds: c.consensus_rounds.load(Ordering::Relaxed),
            transactions_committed: c.transactions_committed.load(Ordering::Relaxed),
            transactions_aborted: c.transactions_aborted.load(Ordering::Relaxed),
            transactions_aborted_expired: c.transactions_aborted_expired.load(Ordering::Relaxed),
            locks_resolved: c.locks_resolved.load(Ordering::Relaxed),
            layout_retries: c.layout_retries.load(Ordering::Relaxed),
            siblings_warnings: c.siblings_warnings.load(Ordering::Relaxed),
        }
    }

    /// Splits a preference list into the replicas to ask and those to skip. Up replicas
    /// come first, this node first of them, then in preference order; suspect ones follow them, so they are asked only
    /// when the up ones are not enough (a read falls back to them, a write still sends to
    /// them and hints on failure). Failure detectors flap under load: refusing a write
    /// because a live replica looked suspect for a moment would trade availability for
    /// nothing, since a suspect replica that does not answer costs a hint, not
    /// correctness. Down replicas (silent for long) and unknown ones are skipped.
    pub(crate) fn replica_set(&self, preflist: Vec<NodeId>) -> ReplicaSet {
        self.read_set_among(preflist, None)
    }

    /// The replica set of a read (or a request with one group) of `preflist`.
    fn read_set_among(&self, preflist: Vec<NodeId>, seen: Option<&mut NodeLookups>) -> ReplicaSet {
        let mut set = self.replica_set_among(&preflist, seen);
        set.groups = vec![preflist];
        set
    }

    /// [`Coordinator::replica_set`] of `preflist` without its groups (the caller's to
    /// set), with the nodes' states and endpoints taken from `seen` when a key of the
    /// same batch already looked them up.
    fn replica_set_among(
        &self,
        preflist: &[NodeId],
        mut seen: Option<&mut NodeLookups>,
    ) -> ReplicaSet {
        let inner = &self.inner;
        let mut set = ReplicaSet {
            live: Vec::with_capacity(preflist.len()),
            skipped: Vec::new(),
            n: preflist.len(),
            groups: Vec::new(),
            refusals: Arc::default(),
        };
        let mut suspect = Vec::new();
        for &node in preflist {
            match self.look_up(node, seen.as_deref_mut()) {
                (PeerState::Up, Some(api)) => set.live.push(Target { node, api }),
                (_, Some(api)) => suspect.push(Target { node, api }),
                (_, None) => set.skipped.push(node),
            }
        }
        // This node first among the up replicas: a read asks the first R of them, and
        // its own answer costs no RPC (Cassandra's coordinator prefers itself likewise).
        // Any R replicas overlap every write quorum, so which ones are asked does not
        // change what a read returns; writes go to all of them anyway.
        if let Some(i) = set.live.iter().position(|t| t.node == inner.me) {
            set.live[..=i].rotate_right(1);
        }
        set.live.extend(suspect);
        set
    }

    /// What failure detection says of `node`, and its endpoint unless it is down or
    /// unknown; from `seen` if it holds the node, else looked up (and noted there).
    fn look_up(&self, node: NodeId, seen: Option<&mut NodeLookups>) -> NodeLookup {
        let known = seen.as_ref().and_then(|s| s.0.iter().find(|e| e.0 == node));
        if let Some((_, lookup)) = known {
            return lookup.clone();
        }
        let inner = &self.inner;
        let state = inner.liveness.state(node);
        let api = (state != PeerState::Down)
            .then(|| inner.replicas.replica(node))
            .flatten();
        if let Some(seen) = seen {
            seen.0.push((node, (state, api.clone())));
        }
        (state, api)
    }

    /// The replicas of `partition`.
    pub(crate) fn partition_replicas(&self, partition: u16) -> ReplicaSet {
        self.replica_set(self.inner.placement.partition_preflist(partition))
    }

    /// The replicas a read of `key` asks.
    pub(crate) fn key_replicas(&self, key: &[u8]) -> ReplicaSet {
        self.replica_set(self.inner.placement.preflist(key))
    }

    /// [`Coordinator::key_replicas`] for one key of a batch whose keys share `seen`.
    pub(crate) fn key_replicas_among(
        &self,
        key: &[u8],
        seen: Option<&mut NodeLookups>,
    ) -> ReplicaSet {
        self.read_set_among(self.inner.placement.preflist(key), seen)
    }

    /// The node that proposes for `key` (crate::forward): the first replica of its
    /// newest placement that failure detection sees up (this node counts as up).
    /// Nodes that see the cluster alike pick the same one. A suspect node is passed
    /// over: it may be cut off (a partition), and a command sent there would wait and
    /// end in TIMEOUT while the key's other replicas could serve it; while it is
    /// suspect in every view, every node sends to the next replica alike.
    pub fn proposer(&self, key: &[u8]) -> Option<NodeId> {
        let inner = &self.inner;
        let groups = inner.placement.write_groups(key);
        groups
            .first()?
            .iter()
            .copied()
            .find(|&n| n == inner.me || inner.liveness.state(n) == PeerState::Up)
    }

    /// The replicas a write of `key` goes to: every member of its write groups, each
    /// group needing its own quorum.
    pub(crate) fn key_write_set(&self, key: &[u8]) -> ReplicaSet {
        self.key_write_set_among(key, None)
    }

    /// [`Coordinator::key_write_set`], with the nodes' lookups shared through `seen`
    /// by the keys of one batch.
    pub(crate) fn key_write_set_among(
        &self,
        key: &[u8],
        seen: Option<&mut NodeLookups>,
    ) -> ReplicaSet {
        let groups = self.inner.placement.write_groups(key);
        let mut set = match groups.as_slice() {
            [only] => self.replica_set_among(only, seen),
            _ => {
                let mut all: Vec<NodeId> = Vec::new();
                for &node in groups.iter().flatten() {
                    if !all.contains(&node) {
                        all.push(node);
                    }
                }
                self.replica_set_among(&all, seen)
            }
        };
        set.n = groups.first().map_or(0, Vec::len);
        set.groups = groups;
        set
    }
}
