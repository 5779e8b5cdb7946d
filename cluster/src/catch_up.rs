//! Catching up after an unclean restart (docs/cluster.md, "After an unclean restart").
//!
//! Under `appendfsync everysec` a replica that crashed may have lost up to a second of
//! writes it had acknowledged. Until it has compared its partitions with enough of their
//! other replicas, its answers could hide an acknowledged write, so they must not count
//! toward a read quorum. [`CatchUp`] holds that state and the rule for when it ends;
//! [`CatchingUpReplica`] is the replica as coordinators (this node's own and its peers',
//! over the bus) see it: reads and scans of a partition not caught up yet are refused
//! with [`ReplicaError::CatchingUp`], so the coordinator asks the next replica instead;
//! writes (client writes, hints, read repair) are applied as usual, but answered
//! [`WriteOutcome::StoredNotCounted`], so they do not count toward W either.

use crate::replica_api::{
    Hash16, ItemKey, MerkleLeaf, PrepareOutcome, ReplicaApi, ReplicaError, ScanPage, WriteItem,
    WriteOutcome,
};
use crate::{NodeId, Record, Version};
use async_trait::async_trait;
use kv_keyspace::data_key::ScanPosition;
use kv_keyspace::slot::key_partition;
use parking_lot::Mutex;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// How many of a partition's other replicas a node that may have lost acknowledged
/// writes must compare with before it counts again, with `n` replicas and write quorum
/// `w`. An acknowledged write reached `w` replicas; if this one lost it, at least `w - 1`
/// others hold it. Leaving `u` others uncompared is safe only if `u < w - 1`, so at least
/// `n - w + 1` of the `n - 1` others (all of them at N=3, W=2). With `w = 1` no number
/// is enough (the write may have been on this replica alone); all others are required.
pub fn peers_needed(n: usize, w: usize) -> usize {
    let others = n.saturating_sub(1);
    (n + 1).saturating_sub(w).min(others)
}

/// One partition still to catch up: the other replicas still to compare with, and how
/// many comparisons are still needed.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Pending {
    peers: BTreeSet<NodeId>,
    still_needed: usize,
}

/// Whether this node is catching up, and with which partitions and peers.
#[derive(Debug, Default)]
pub struct CatchUp {
    /// Read by every replica read: a flag, not the lock.
    active: AtomicBool,
    /// None until the layout told which partitions this node holds: all are refused.
    pending: Mutex<Option<BTreeMap<u16, Pending>>>,
    /// Peers whose last comparison failed (unreachable, down, refusing).
    unreached: Mutex<BTreeSet<NodeId>>,
}

impl CatchUp {
    /// A node that has nothing to catch up (clean stop, new node, `appendfsync always`).
    pub fn done() -> Arc<CatchUp> {
        Arc::new(CatchUp::default())
    }

    /// A node that must catch up before it counts; the partitions are given by
    /// [`CatchUp::plan`] once the layout is known.
    pub fn needed() -> Arc<CatchUp> {
        let c = CatchUp::default();
        c.active.store(true, Ordering::SeqCst);
        Arc::new(c)
    }

    /// Whether some partition is still catching up.
    pub fn is_active(&self) -> bool {
        self.active.load(Ordering::Acquire)
    }

    /// Whether reads of `partition` must be refused: it may lack acknowledged writes.
    pub fn refuses(&self, partition: u16) -> bool {
        if !self.is_active() {
            return false;
        }
        match &*self.pending.lock() {
            None => true,
            Some(pending) => pending.contains_key(&partition),
        }
    }

    /// Sets the partitions to catch up: `(partition, its other replicas)` with `n`
    /// replicas per partition and write quorum `w` ([`peers_needed`]). Ends the catch-up
    /// at once if nothing is needed (no partitions, or a single replica).
    pub fn plan(&self, partitions: impl IntoIterator<Item = (u16, Vec<NodeId>)>, w: usize) {
        let mut planned = BTreeMap::new();
        for (p, others) in partitions {
            let still_needed = peers_needed(others.len() + 1, w);
            if still_needed > 0 {
                let peers = others.into_iter().collect();
                planned.insert(
                    p,
                    Pending {
                        peers,
                        still_needed,
                    },
                );
            }
        }
        let mut pending = self.pending.lock();
        self.finish_if_done(pending.insert(planned));
    }

    /// The peers still to compare with, each with the partitions it shares with us that
    /// still need comparing.
    pub fn work(&self) -> BTreeMap<NodeId, Vec<u16>> {
        let mut work: BTreeMap<NodeId, Vec<u16>> = BTreeMap::new();
        for (&p, pending) in self.pending.lock().iter().flatten() {
            for &peer in &pending.peers {
                work.entry(peer).or_default().push(p);
            }
        }
        work
    }

    /// Records that `partition` was compared (and synced) with `peer`. Ends the catch-up
    /// once every partition has had enough comparisons.
    pub fn compared(&self, partition: u16, peer: NodeId) {
        let mut guard = self.pending.lock();
        let Some(pending) = guard.as_mut() else {
            return;
        };
        if let Some(p) = pending.get_mut(&partition) {
            if p.peers.remove(&peer) {
                p.still_needed = p.still_needed.saturating_sub(1);
            }
            if p.still_needed == 0 {
                pending.remove(&partition);
            }
        }
        self.finish_if_done(pending);
    }

    /// Records whether the last attempt to compare with `peer` reached it.
    pub fn set_reached(&self, peer: NodeId, reached: bool) {
        let mut unreached = self.unreached.lock();
        if reached {
            unreached.remove(&peer);
        } else {
            unreached.insert(peer);
        }
    }

    /// Partitions that still need comparisons (all of them before the layout is known).
    pub fn partitions_left(&self) -> usize {
        match &*self.pending.lock() {
            None if self.is_active() => kv_keyspace::slot::PARTITIONS as usize,
            None => 0,
            Some(pending) => pending.len(),
        }
    }

    /// Peers still to compare with whose last comparison failed.
    pub fn unreached_peers(&self) -> Vec<NodeId> {
        let work = self.work();
        self.unreached
            .lock()
            .iter()
            .copied()
            .filter(|p| work.contains_key(p))
            .collect()
    }

    fn finish_if_done(&self, pending: &BTreeMap<u16, Pending>) {
        if pending.is_empty() {
            self.unreached.lock().clear();
            self.active.store(false, Ordering::Release);
        }
    }
}

/// A replica whose reads and scans are refused, and whose write acknowledgements do not
/// count, while its node catches up.
pub struct CatchingUpReplica {
    inner: Arc<dyn ReplicaApi>,
    state: Arc<CatchUp>,
}

impl CatchingUpReplica {
    /// `inner` as coordinators see it while `state` is active.
    pub fn new(inner: Arc<dyn ReplicaApi>, state: Arc<CatchUp>) -> CatchingUpReplica {
        CatchingUpReplica { inner, state }
    }

    fn refuse_while_catching_up(
        &self,
        mut partitions: impl Iterator<Item = u16>,
    ) -> Result<(), ReplicaError> {
        if self.state.is_active() && partitions.any(|p| self.state.refuses(p)) {
            return Err(ReplicaError::CatchingUp);
        }
        Ok(())
    }
}

#[async_trait]
impl ReplicaApi for CatchingUpReplica {
    /// Applies the writes; an item of a partition still catching up is answered
    /// [`WriteOutcome::StoredNotCounted`] instead of `Applied`: this replica may have
    /// taken a version older than one it lost, and a coordinator counting it could
    /// acknowledge a write ordered before an acknowledged one (docs/cluster.md, "After
    /// an unclean restart"). Decided before applying: a partition that catches up
    /// while the batch is applied may have received the newer version from a peer
    /// after this write, so only "caught up before" may count.
    async fn write(&self, items: Vec<WriteItem>) -> Result<Vec<WriteOutcome>, ReplicaError> {
        let uncounted: Vec<bool> = match self.state.is_active() {
            true => items
                .iter()
                .map(|i| self.state.refuses(key_partition(&i.key.key)))
                .collect(),
            false => Vec::new(),
        };
        let mut outcomes = self.inner.write(items).await?;
        for (outcome, &uncounted) in outcomes.iter_mut().zip(&uncounted) {
            if uncounted && *outcome == WriteOutcome::Applied {
                *outcome = WriteOutcome::StoredNotCounted;
            }
        }
        Ok(outcomes)
    }

    async fn read(&self, keys: Vec<ItemKey>) -> Result<Vec<Option<Record>>, ReplicaError> {
        self.refuse_while_catching_up(keys.iter().map(|k| key_partition(&k.key)))?;
        self.inner.read(keys).await
    }

    async fn prepare(&self, key: ItemKey, ballot: Version) -> Result<PrepareOutcome, ReplicaError> {
        // Promises and accepted records are fsynced: a catching-up acceptor lost none.
        self.inner.prepare(key, ballot).await
    }

    async fn accept(&self, item: WriteItem) -> Result<WriteOutcome, ReplicaError> {
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
        self.refuse_while_catching_up(std::iter::once(partition))?;
        self.inner.scan(partition, db, from, limit).await
    }

    async fn scan_partition(
        &self,
        partition: u16,
        from: Option<bytes::Bytes>,
        limit: usize,
    ) -> Result<crate::replica_api::PartitionPage, ReplicaError> {
        self.refuse_while_catching_up(std::iter::once(partition))?;
        self.inner.scan_partition(partition, from, limit).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enough_peers_cover_every_quorum_acknowledged_write() {
        // N=3 W=2: both others. N=3 W=3: one other suffices. N=5 W=3: three of four.
        assert_eq!(peers_needed(3, 2), 2);
        assert_eq!(peers_needed(3, 3), 1);
        assert_eq!(peers_needed(5, 3), 3);
        // W=1 cannot be covered; all others are compared. A single replica has none.
        assert_eq!(peers_needed(3, 1), 2);
        assert_eq!(peers_needed(1, 1), 0);
    }

    #[test]
    fn it_ends_only_when_every_partition_had_enough_comparisons() {
        let c = CatchUp::needed();
        let (a, b) = (NodeId(2), NodeId(3));
        assert!(c.refuses(5), "before the plan every partition is refused");
        assert_eq!(c.partitions_left(), 256);
        c.plan([(0, vec![a, b]), (1, vec![a, b])], 2);
        assert_eq!(c.partitions_left(), 2);
        assert!(
            c.refuses(0) && !c.refuses(5),
            "partitions not held are not refused"
        );
        assert_eq!(c.work().get(&a), Some(&vec![0, 1]));
        c.compared(0, a);
        c.compared(0, a); // a repeat does not count twice
        c.compared(1, a);
        c.set_reached(b, false);
        assert!(
            c.is_active(),
            "b, maybe the only other holder, was not compared"
        );
        assert_eq!(c.unreached_peers(), vec![b]);
        c.compared(0, b);
        assert!(c.is_active());
        assert_eq!(c.partitions_left(), 1);
        assert!(
            !c.refuses(0) && c.refuses(1),
            "a caught-up partition counts again"
        );
        c.compared(1, b);
        assert!(!c.is_active() && !c.refuses(1));
        assert!(c.unreached_peers().is_empty());
    }

    #[test]
    fn with_w_equal_n_one_peer_suffices() {
        let c = CatchUp::needed();
        c.plan([(7, vec![NodeId(2), NodeId(3)])], 3);
        c.compared(7, NodeId(3));
        assert!(!c.is_active());
    }

    #[test]
    fn nothing_to_compare_ends_at_once() {
        let c = CatchUp::needed();
        c.plan([(0, vec![])], 1);
        assert!(!c.is_active());
        assert!(!CatchUp::done().is_active());
    }
}
