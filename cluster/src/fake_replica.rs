//! In-memory stand-ins for tests and the simulation: a replica with the real apply rule
//! and injectable faults, a settable liveness view, a replica directory, a fixed
//! placement and a manual clock.

use crate::coordinator::{Placement, VersionClock};
use crate::replica_api::{
    Hash16, ItemKey, Liveness, MerkleLeaf, PeerState, ReplicaApi, ReplicaError, Replicas, ScanPage,
    WriteItem, WriteOutcome,
};
use crate::{Body, NodeId, Record, Version};
use async_trait::async_trait;
use bytes::Bytes;
use kv_keyspace::data_key::{data_key, key_hash, partition_range, split_data_key, ScanPosition};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use xxhash_rust::xxh3::xxh3_128;

/// How a [`FakeReplica`] misbehaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Fault {
    /// Answers normally.
    #[default]
    None,
    /// Refuses every request with `Unreachable`.
    Down,
    /// Never answers: the caller's timeout fires.
    BlackHole,
    /// Answers after this delay.
    Slow(Duration),
    /// Applies writes, then answers `Timeout` (the reply was lost).
    DropAfterApply,
    /// Panics while serving (a bug on the request's path): the caller must count a
    /// failed replica, not fail itself.
    Panic,
}

/// An in-memory replica: records keyed by their engine data key, so iteration order is
/// scan order, applying writes by the same rule as the real store.
#[derive(Default)]
pub struct FakeReplica {
    records: Mutex<BTreeMap<Vec<u8>, Record>>,
    fault: Mutex<Fault>,
    writes_served: AtomicU64,
    reads_served: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A test that panicked while holding the lock must not hide its own failure.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl FakeReplica {
    /// An empty, healthy replica.
    pub fn new() -> Arc<FakeReplica> {
        Arc::new(FakeReplica::default())
    }

    /// Sets the fault injected from now on.
    pub fn set_fault(&self, fault: Fault) {
        *lock(&self.fault) = fault;
    }

    /// The record held for `key`, bypassing faults.
    pub fn get(&self, key: &ItemKey) -> Option<Record> {
        lock(&self.records)
            .get(&data_key(key.db, &key.key))
            .cloned()
    }

    /// Stores `record` unconditionally (to build divergent replicas in tests).
    pub fn put_raw(&self, key: &ItemKey, record: Record) {
        lock(&self.records).insert(data_key(key.db, &key.key), record);
    }

    /// Records held, tombstones included.
    pub fn len(&self) -> usize {
        lock(&self.records).len()
    }

    /// True when no record is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Read requests received so far (each may name many keys).
    pub fn reads_served(&self) -> u64 {
        self.reads_served.load(Ordering::Relaxed)
    }

    /// Write requests answered (or applied) so far.
    pub fn writes_served(&self) -> u64 {
        self.writes_served.load(Ordering::Relaxed)
    }

    /// Runs the injected fault before serving; `Err` ends the request.
    async fn before(&self) -> Result<Fault, ReplicaError> {
        let fault = *lock(&self.fault);
        match fault {
            Fault::Down => Err(ReplicaError::Unreachable("fake replica is down".into())),
            Fault::BlackHole => std::future::pending().await,
            Fault::Panic => panic!("the fake replica's request panics"),
            Fault::Slow(d) => {
                tokio::time::sleep(d).await;
                Ok(fault)
            }
            Fault::None | Fault::DropAfterApply => Ok(fault),
        }
    }

    fn apply(&self, item: WriteItem) -> WriteOutcome {
        let mut records = lock(&self.records);
        let k = data_key(item.key.db, &item.key.key);
        match records.get(&k) {
            Some(held) if held.version > item.record.version => WriteOutcome::Stale {
                current: held.version,
            },
            Some(held) if held.version == item.record.version => WriteOutcome::Applied,
            _ => {
                records.insert(k, item.record);
                WriteOutcome::Applied
            }
        }
    }

    /// Leaf hashes of `partition`, by bucket, in key order.
    fn leaves(&self, partition: u16) -> BTreeMap<u8, Vec<MerkleLeaf>> {
        let (start, end) = partition_range(partition);
        let records = lock(&self.records);
        let mut buckets: BTreeMap<u8, Vec<MerkleLeaf>> = BTreeMap::new();
        for (k, r) in records.range(start..) {
            if end.as_ref().is_some_and(|e| k >= e) {
                break;
            }
            let Some(dk) = split_data_key(k) else {
                continue;
            };
            let key = ItemKey {
                db: dk.ns,
                key: Bytes::copy_from_slice(dk.key),
            };
            let bucket = (key_hash(dk.key) >> 24) as u8;
            let hash = leaf_hash(&key, r);
            buckets
                .entry(bucket)
                .or_default()
                .push(MerkleLeaf { key, hash });
        }
        buckets
    }
}

/// The fake's own leaf hash: key, version, expiry and kind, as the real tree hashes.
fn leaf_hash(key: &ItemKey, r: &Record) -> Hash16 {
    let mut b = Vec::with_capacity(key.key.len() + 32);
    b.extend_from_slice(&key.db.to_be_bytes());
    b.extend_from_slice(&key.key);
    b.extend_from_slice(&r.version.encode());
    b.extend_from_slice(&r.expire_at.unwrap_or(0).to_be_bytes());
    b.push(matches!(r.body, Body::Tombstone) as u8);
    xxh3_128(&b).to_be_bytes()
}

fn hash_of(hashes: impl Iterator<Item = Hash16>) -> Hash16 {
    let all: Vec<u8> = hashes.flatten().collect();
    xxh3_128(&all).to_be_bytes()
}

#[async_trait]
impl ReplicaApi for FakeReplica {
    async fn write(&self, items: Vec<WriteItem>) -> Result<Vec<WriteOutcome>, ReplicaError> {
        let fault = self.before().await?;
        self.writes_served.fetch_add(1, Ordering::Relaxed);
        let outcomes = items.into_iter().map(|i| self.apply(i)).collect();
        match fault {
            Fault::DropAfterApply => Err(ReplicaError::Timeout),
            _ => Ok(outcomes),
        }
    }

    async fn read(&self, keys: Vec<ItemKey>) -> Result<Vec<Option<Record>>, ReplicaError> {
        self.reads_served.fetch_add(1, Ordering::Relaxed);
        self.before().await?;
        Ok(keys.iter().map(|k| self.get(k)).collect())
    }

    async fn merkle_roots(&self, partitions: Vec<u16>) -> Result<Vec<Hash16>, ReplicaError> {
        self.before().await?;
        let mut roots = Vec::with_capacity(partitions.len());
        for p in partitions {
            roots.push(hash_of(self.merkle_buckets(p).await?.into_iter()));
        }
        Ok(roots)
    }

    async fn merkle_buckets(&self, partition: u16) -> Result<Vec<Hash16>, ReplicaError> {
        self.before().await?;
        let leaves = self.leaves(partition);
        Ok((0..=255u8)
            .map(|b| match leaves.get(&b) {
                Some(l) => hash_of(l.iter().map(|leaf| leaf.hash)),
                None => [0; 16],
            })
            .collect())
    }

    async fn merkle_leaves(
        &self,
        partition: u16,
        bucket: u8,
    ) -> Result<Vec<MerkleLeaf>, ReplicaError> {
        self.before().await?;
        Ok(self.leaves(partition).remove(&bucket).unwrap_or_default())
    }

    async fn scan(
        &self,
        partition: u16,
        db: u32,
        from: ScanPosition,
        limit: usize,
    ) -> Result<ScanPage, ReplicaError> {
        self.before().await?;
        let (start, end) = partition_range(partition);
        let records = lock(&self.records);
        let mut page = ScanPage::default();
        let mut last: Option<ScanPosition> = None;
        for (k, r) in records.range(start..) {
            if end.as_ref().is_some_and(|e| k >= e) {
                break;
            }
            let Some(dk) = split_data_key(k) else {
                continue;
            };
            if dk.ns != db || dk.position() < from {
                continue;
            }
            // A page never ends between two keys of one position.
            if page.items.len() >= limit.max(1) && last != Some(dk.position()) {
                page.next = Some(dk.position());
                break;
            }
            last = Some(dk.position());
            page.items.push((Bytes::copy_from_slice(dk.key), r.clone()));
        }
        Ok(page)
    }
}

/// A settable liveness view; unknown nodes are `Up`.
#[derive(Default)]
pub struct FakeLiveness {
    states: Mutex<HashMap<NodeId, PeerState>>,
}

impl FakeLiveness {
    /// Everyone up.
    pub fn new() -> Arc<FakeLiveness> {
        Arc::new(FakeLiveness::default())
    }

    /// Sets what failure detection says of `node`.
    pub fn set(&self, node: NodeId, state: PeerState) {
        lock(&self.states).insert(node, state);
    }
}

impl Liveness for FakeLiveness {
    fn state(&self, node: NodeId) -> PeerState {
        lock(&self.states)
            .get(&node)
            .copied()
            .unwrap_or(PeerState::Up)
    }
}

/// A directory of replica endpoints.
#[derive(Default)]
pub struct FakeReplicas {
    nodes: Mutex<HashMap<NodeId, Arc<dyn ReplicaApi>>>,
}

impl FakeReplicas {
    /// An empty directory.
    pub fn new() -> Arc<FakeReplicas> {
        Arc::new(FakeReplicas::default())
    }

    /// Registers `api` as `node`'s endpoint.
    pub fn insert(&self, node: NodeId, api: Arc<dyn ReplicaApi>) {
        lock(&self.nodes).insert(node, api);
    }
}

impl Replicas for FakeReplicas {
    fn replica(&self, node: NodeId) -> Option<Arc<dyn ReplicaApi>> {
        lock(&self.nodes).get(&node).cloned()
    }
}

/// Every partition on the same nodes, in the same order.
pub struct StaticPlacement(pub Vec<NodeId>);

impl Placement for StaticPlacement {
    fn partition_preflist(&self, _partition: u16) -> Vec<NodeId> {
        self.0.clone()
    }
}

/// A hybrid clock whose wall time the test sets: `next` is above both the wall time
/// and everything seen, like the real HLC.
pub struct ManualClock {
    node: NodeId,
    wall_ms: AtomicU64,
    last: Mutex<u64>,
}

impl ManualClock {
    /// A clock of `node` that reads `wall_ms`.
    pub fn new(node: NodeId, wall_ms: u64) -> Arc<ManualClock> {
        Arc::new(ManualClock {
            node,
            wall_ms: AtomicU64::new(wall_ms),
            last: Mutex::new(0),
        })
    }

    /// Moves the wall time (forwards or backwards).
    pub fn set_wall_ms(&self, ms: u64) {
        self.wall_ms.store(ms, Ordering::Relaxed);
    }
}

impl VersionClock for ManualClock {
    fn next(&self) -> Result<Version, String> {
        let mut last = lock(&self.last);
        let wall = self.wall_ms.load(Ordering::Relaxed) << 16;
        *last = (*last + 1).max(wall);
        Ok(Version {
            ts: *last,
            node: self.node,
        })
    }

    fn observe(&self, v: Version) {
        let mut last = lock(&self.last);
        *last = (*last).max(v.ts);
    }
}
